//! Peer-controlled vchan header fields (orders, indices, live and notify
//! bytes, grant list, xenstore advertisement) against a server or client
//! victim; see `vchan::sim::fuzz_header` for the invariants checked.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vchan::sim::fuzz_header(data);
});
