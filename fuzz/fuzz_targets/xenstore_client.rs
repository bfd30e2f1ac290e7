//! Structured xenstore replies and watch events (right or lying headers,
//! chunked delivery) for a `ClientCore` with real outstanding requests;
//! see `xen_proto::fuzzing::xenstore_client`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::xenstore_client(data);
});
