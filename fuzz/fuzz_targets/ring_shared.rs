//! Peer-controlled shared-ring (io/ring.h) producer and event indices
//! through `xen_proto::ring::shared`; see `xen_proto::fuzzing::ring_shared`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::ring_shared(data);
});
