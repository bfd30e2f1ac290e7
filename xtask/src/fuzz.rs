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
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
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
    "console page (xencons_interface in/out indices: no console backend yet; ring_bytes covers the index arithmetic)",
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

/// Bytes of a hex string (two digits per byte), as xen-rt's
/// `print_hex_lines` writes them.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// One captured blkif request: the ring entry and, for an indirect
/// request, its segment descriptors.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CapturedRequest {
    pub frontend: String,
    pub number: u64,
    pub entry: Vec<u8>,
    pub segments: Vec<u8>,
}

/// Reads storage-domain's `blkcap <fe>/<devid> <n> req|seg <offset> <hex>`
/// lines (boot argument `capture=N`) out of a console log.
pub fn parse_capture(log: &str) -> Vec<CapturedRequest> {
    let mut out: Vec<CapturedRequest> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.split("blkcap ").nth(1) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let [fe, n, what, off, hex] = f[..] else {
            continue;
        };
        let (Ok(n), Ok(off)) = (n.parse::<u64>(), off.parse::<usize>()) else {
            continue;
        };
        let Some(bytes) = decode_hex(hex) else {
            continue;
        };
        let pos = match out.iter().position(|r| r.frontend == fe && r.number == n) {
            Some(p) => p,
            None => {
                out.push(CapturedRequest {
                    frontend: fe.to_string(),
                    number: n,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let dst = if what == "seg" {
            &mut out[pos].segments
        } else {
            &mut out[pos].entry
        };
        if dst.len() == off {
            dst.extend_from_slice(&bytes);
        }
    }
    out.retain(|r| r.entry.len() == 112);
    out
}

/// The fuzz input for one captured request (see
/// `xen_proto::fuzzing::blkif_request`): a vbd header (80 MiB, read-write,
/// flush, discard, 64 indirect segments), the entry, its segments.
pub fn capture_seed(r: &CapturedRequest) -> Vec<u8> {
    let sectors: u64 = 163_840;
    let mut v = Vec::new();
    v.extend_from_slice(&(sectors as u32).to_le_bytes());
    v.extend_from_slice(&((sectors >> 32) as u32).to_le_bytes());
    v.push(2 | 4);
    v.push(64);
    v.extend_from_slice(&r.entry);
    v.extend_from_slice(&r.segments);
    v
}

/// `cargo xtask fuzz --import-capture LOG`: writes up to `per_kind`
/// captured requests of each kind (operation byte, and for indirect
/// requests their `indirect_op`) into fuzz/corpus/blkif_request as
/// `captured-<kind>-<k>`. Returns the files written.
pub fn import_capture(paths: &Paths, log: &Path, per_kind: usize) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let reqs = parse_capture(&text);
    let streams = parse_xs_capture(&text);
    anyhow::ensure!(
        !reqs.is_empty() || !streams.is_empty(),
        "no `blkcap` or `xscap` lines in {} (boot storage-domain with capture=N, or a domain with xscapture=N)",
        log.display()
    );
    let mut written = Vec::new();
    // xenstore_assembler seeds: a chunk size, then the captured stream.
    let xs_dir = paths.root.join("fuzz/corpus/xenstore_assembler");
    for (dom, stream) in &streams {
        std::fs::create_dir_all(&xs_dir)?;
        for cut in [64u8, 255] {
            let path = xs_dir.join(format!("captured-dom{dom}-cut{cut}"));
            let mut seed = vec![cut];
            seed.extend_from_slice(stream);
            std::fs::write(&path, seed)?;
            written.push(path);
        }
    }
    let dir = paths.root.join("fuzz/corpus/blkif_request");
    std::fs::create_dir_all(&dir)?;
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &reqs {
        let kind = match (r.entry[0], r.entry[1]) {
            (0, _) => "read".to_string(),
            (1, _) => "write".to_string(),
            (3, _) => "flush".to_string(),
            (5, _) => "discard".to_string(),
            (6, 0) => "indirect-read".to_string(),
            (6, 1) => "indirect-write".to_string(),
            (op, _) => format!("op{op}"),
        };
        let k = counts.entry(kind.clone()).or_default();
        if *k >= per_kind {
            continue;
        }
        *k += 1;
        let path = dir.join(format!("captured-{kind}-{k}"));
        std::fs::write(&path, capture_seed(r))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads xen-rt's `xscap <offset> <hex>` lines (boot argument
/// `xscapture=N`): the xenstore response-ring bytes each domain received,
/// by domain id (`(XEN) DOMn:` prefix).
pub fn parse_xs_capture(log: &str) -> std::collections::BTreeMap<u32, Vec<u8>> {
    let mut out: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
    for line in log.lines() {
        let Some((head, rest)) = line.split_once("xscap ") else {
            continue;
        };
        let Some(dom) = head
            .rsplit_once("DOM")
            .and_then(|(_, d)| d.trim_end().trim_end_matches(':').parse::<u32>().ok())
        else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (Some(off), Some(hex)) = (f.next().and_then(|o| o.parse::<usize>().ok()), f.next())
        else {
            continue;
        };
        let Some(bytes) = decode_hex(hex) else {
            continue;
        };
        let v = out.entry(dom).or_default();
        if v.len() == off {
            v.extend_from_slice(&bytes);
        }
    }
    out
}

#[cfg(test)]
mod capture_tests {
    use super::*;

    #[test]
    fn parses_split_lines() {
        let hex40 = "ab".repeat(40);
        let hex32 = "cd".repeat(32);
        let log = format!(
            "[+ 1.0] (XEN) DOM1: blkcap 2/51728 3 req 0 {hex40}\n\
             [+ 1.0] (XEN) DOM1: blkcap 2/51728 3 req 40 {hex40}\n\
             [+ 1.0] (XEN) DOM1: blkcap 2/51728 3 req 80 {hex32}\n\
             [+ 1.1] (XEN) DOM1: blkcap 2/51728 3 seg 0 0102\n\
             [+ 1.2] (XEN) DOM1: blkcap 2/51728 4 req 0 {hex40}\n"
        );
        let r = parse_capture(&log);
        assert_eq!(r.len(), 1, "the half-captured request 4 is dropped");
        assert_eq!(r[0].entry.len(), 112);
        assert_eq!(r[0].segments, vec![1, 2]);
        assert_eq!(capture_seed(&r[0]).len(), 10 + 112 + 2);
    }

    #[test]
    fn parses_xenstore_capture() {
        let log = "[+ 1.0] (XEN) DOM2: xscap 0 0102\n\
                   [+ 1.0] (XEN) DOM2: xscap 2 03\n\
                   [+ 1.1] (XEN) DOM1: xscap 0 ff\n\
                   [+ 1.1] (XEN) DOM1: xscap 5 ee\n";
        let m = parse_xs_capture(log);
        assert_eq!(m[&2], vec![1, 2, 3]);
        assert_eq!(m[&1], vec![0xff], "a gap stops the stream");
    }
}
