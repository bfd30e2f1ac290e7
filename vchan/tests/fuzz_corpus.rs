//! Replays the cargo-fuzz seed corpus of `vchan_header`
//! (`fuzz/corpus/vchan_header/`) and mutations of it through
//! `vchan::sim::fuzz_header` (see xen-proto's tests/fuzz_corpus.rs for the
//! mutation engine, shared by `#[path]`).
#![forbid(unsafe_code)]

#[path = "../../xen-rt/xen-proto/tests/common/fuzz_engine.rs"]
mod engine;

#[test]
fn vchan_header_corpus() {
    engine::run(
        "vchan_header",
        vchan::sim::fuzz_header,
        0x5eed_0000_0000_0005,
    );
}
