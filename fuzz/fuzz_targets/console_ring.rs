//! A console backend against a hostile frontend's `xencons_interface`
//! page (`io/console.h`: the four ring indices and both rings) through
//! `xen_proto::console::Backend`; see `xen_proto::fuzzing::console_ring`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::console_ring(data);
});
