//! `cargo xtask fuzz [TARGET] [--seconds N]`: real libFuzzer runs through
//! `cargo +nightly fuzz run` (installs cargo-fuzz when missing). The fuzz
//! crate (fuzz/) is its own workspace; seeds live in fuzz/corpus/<target>/
//! and stay untouched: libFuzzer writes what it discovers to
//! target/fuzz-corpus/<target>/, crashes to fuzz/artifacts/<target>/.
//!
//! Without nightly, `cargo xtask test` replays every corpus plus thousands
//! of pseudo-random and mutated inputs through the same target functions
//! (xen-rt/xen-proto/tests/fuzz_corpus.rs, vchan/tests/fuzz_corpus.rs).

use crate::util::{Paths, step};
use anyhow::{Result, bail};
use std::process::Command;
use std::time::Instant;

/// cargo-fuzz targets (fuzz/fuzz_targets/<name>.rs).
pub const TARGETS: &[&str] = &[
    "xenstore_assembler",
    "xenstore_client",
    "ring_bytes",
    "ring_shared",
    "vchan_header",
    "blkif_request",
    "netif_tx",
];

/// Parsers of peer-controlled data that have no target yet because the
/// code does not exist yet.
pub const PENDING: &[&str] = &[
    "netif xenstore feature keys (the frontend's feature-*/request-* nodes; no parser yet)",
    "blkif indirect descriptors (BLKIF_OP_INDIRECT is rejected, not parsed; no target until it is offered)",
];

/// cargo-fuzz version installed when missing.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// A `cargo` for the nightly toolchain, independent of the pinned one this
/// process runs under.
fn nightly_cargo() -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly");
    for v in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "CARGO_TARGET_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

fn ensure_cargo_fuzz() -> Result<()> {
    let ok = nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    step(&format!(
        "cargo-fuzz missing: cargo install cargo-fuzz --version {CARGO_FUZZ_VERSION} --locked"
    ));
    let t = Instant::now();
    crate::util::run(nightly_cargo().args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
    ]))?;
    step(&format!(
        "cargo-fuzz installed in {:.0} s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Runs libFuzzer on `targets` for `seconds` each; returns whether none
/// crashed.
pub fn run(paths: &Paths, targets: &[String], seconds: u64) -> Result<bool> {
    for t in targets {
        if !TARGETS.contains(&t.as_str()) {
            bail!("unknown fuzz target {t} (targets: {})", TARGETS.join(", "));
        }
    }
    ensure_cargo_fuzz()?;
    let mut all_ok = true;
    for t in targets {
        let work = paths.target.join("fuzz-corpus").join(t);
        std::fs::create_dir_all(&work)?;
        let seeds = paths.root.join("fuzz/corpus").join(t);
        let artifacts = paths.root.join("fuzz/artifacts").join(t);
        std::fs::create_dir_all(&artifacts)?;
        step(&format!(
            "fuzz {t} for {seconds} s (seeds {})",
            seeds.display()
        ));
        let t0 = Instant::now();
        let st = nightly_cargo()
            .current_dir(paths.root.join("fuzz"))
            .args(["fuzz", "run", t])
            .arg(&work)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .status()?;
        println!(
            "{} fuzz {t}: {:.0} s, {st}",
            if st.success() { "ok  " } else { "FAIL" },
            t0.elapsed().as_secs_f64()
        );
        all_ok &= st.success();
    }
    Ok(all_ok)
}
