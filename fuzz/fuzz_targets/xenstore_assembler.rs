//! Arbitrary response-ring bytes, split at a fuzzer-chosen chunk size,
//! through the xenstore `Assembler`, every reply parser and `ClientCore`;
//! see `xen_proto::fuzzing::xenstore_assembler` for the invariants.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::xenstore_assembler(data);
});
