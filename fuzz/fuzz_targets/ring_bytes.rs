//! Peer-controlled console/xenstore byte-ring indices and sizes through
//! `xen_proto::ring::bytes`; see `xen_proto::fuzzing::ring_bytes`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::ring_bytes(data);
});
