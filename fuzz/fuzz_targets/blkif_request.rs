//! Hostile blkif request entries (`io/blkif.h`) against a vbd through
//! `xen_proto::blkif::Request::parse`; see `xen_proto::fuzzing::blkif_request`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::blkif_request(data);
});
