//! Bounded fuzzing without nightly or cargo-fuzz, run by every
//! `cargo xtask test`: each cargo-fuzz target's driver
//! (`xen_proto::fuzzing`) gets its seed corpus (`fuzz/corpus/<target>/`),
//! then pseudo-random inputs and mutations of the seeds (bit flips, byte
//! overwrites, insertions, truncations, splices). Any panic is a failure;
//! reproduce it with `cargo xtask fuzz <target>` or by adding the printed
//! input to the corpus.
#![forbid(unsafe_code)]

#[path = "common/fuzz_engine.rs"]
mod engine;
use engine::run;

#[test]
fn xenstore_assembler() {
    run(
        "xenstore_assembler",
        xen_proto::fuzzing::xenstore_assembler,
        0x1234_5678_9abc_def1,
    );
}

#[test]
fn xenstore_client() {
    run(
        "xenstore_client",
        xen_proto::fuzzing::xenstore_client,
        0x0fed_cba9_8765_4321,
    );
}

#[test]
fn ring_bytes() {
    run(
        "ring_bytes",
        xen_proto::fuzzing::ring_bytes,
        0x5eed_0000_0000_0003,
    );
}

#[test]
fn ring_shared() {
    run(
        "ring_shared",
        xen_proto::fuzzing::ring_shared,
        0x5eed_0000_0000_0004,
    );
}

#[test]
fn blkif_request() {
    run(
        "blkif_request",
        xen_proto::fuzzing::blkif_request,
        0x5eed_0000_0000_0006,
    );
}

#[test]
fn netif_tx() {
    run(
        "netif_tx",
        xen_proto::fuzzing::netif_tx,
        0x5eed_0000_0000_0007,
    );
}

#[test]
fn console_ring() {
    run(
        "console_ring",
        xen_proto::fuzzing::console_ring,
        0x5eed_0000_0000_0008,
    );
}
