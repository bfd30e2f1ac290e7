//! Assurance gates that `cargo xtask test` runs before the qemu scenarios:
//! image-size budgets, the `unsafe` policy, crate-root lint attributes,
//! clippy, rustfmt, cargo-deny and the no-panic link probe. Each gate is one
//! [`Check`] line; see docs/AUDIT.md.

use crate::audit;
use crate::images;
use crate::scenarios::Check;
use crate::util::{Paths, cargo, step};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The budgets file (checked in).
pub const BUDGETS: &str = "targets/budgets.toml";

/// The request/ring/parse paths the no-panic probe calls (kept in sync
/// with tests/no-panic-probe/src/main.rs).
pub const NO_PANIC_PATHS: &[&str] = &[
    "xen_proto::xenstore::Assembler::feed",
    "xen_proto::xenstore::ClientCore::receive (+ pop_watch_event)",
    "xen_proto::xenstore::{parse_directory, parse_perms, parse_transaction_id, parse_string, WatchEvent::parse, XsError::from_payload, Header::parse_slice, parse_decimal}",
    "xen_proto::ring::bytes::{readable, writable, read_from, write_to, Span::ranges}",
    "xen_proto::ring::shared::{BackRingIndices, FrontRingIndices}: unconsumed_*, consume_*, push_*, final checks; notify_needed; ring_size",
    "xen_proto::blkif::{Request::parse, RequestView accessors, Transfer::segments, encode_response, slot_offset}",
    "xen_proto::netif::{parse_tx_packet (+ TxPacket::fragments, TxResponses::iter), RxRequest::parse, RxResponse::{data, encode}, ExtraInfo::{parse, encode}, tx_slot_offset, rx_slot_offset}",
    "xen_proto::netif::switch::{MacTable::forward, MacTable::forget_port, Header::parse}; xen_proto::netif::RxLayout::{new, slot}",
    "xen_proto::console::{Backend::attach, Backend::poll (index checks, lines, echo, snapshots), Backend::flush}",
    "vchan::Vchan::{try_read, try_write, data_ready, buffer_space, peer_state} (over a panic-free SharedMemory, after Client::connect reads the peer's header)",
];

/// Lints denied for every crate (in addition to `-D warnings`).
pub const CLIPPY_LINTS: &[&str] = &[
    "-D",
    "warnings",
    "-D",
    "clippy::undocumented_unsafe_blocks",
    "-D",
    "unsafe_op_in_unsafe_fn",
];

/// Crates checked with clippy for aarch64-unknown-none (the images and the
/// probe).
pub const BARE_METAL_CLIPPY: &[&str] = &[
    "xen-rt",
    "net-domain",
    "storage-domain",
    "console-domain",
    "hello-domain",
    "vchan-domain",
    "blk-hostile-domain",
    "net-hostile-domain",
    "frontend-kit",
    "no-panic-probe",
];

/// cargo-deny: the version `cargo xtask test` installs when missing.
pub const CARGO_DENY_VERSION: &str = "0.20.2";

fn run_quiet(cmd: &mut Command) -> Result<(bool, String)> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// Last `n` lines of `s` that look like diagnostics (or just the last ones).
fn tail(s: &str, n: usize) -> String {
    let interesting: Vec<&str> = s
        .lines()
        .filter(|l| {
            l.starts_with("error")
                || l.starts_with("warning")
                || l.contains("-->")
                || l.starts_with("Diff in")
                || l.contains("undefined symbol")
                || l.contains(">>> referenced by")
                || l.contains("rejected")
                || l.contains("failed")
        })
        .collect();
    let v: Vec<&str> = if interesting.is_empty() {
        s.lines().collect()
    } else {
        interesting
    };
    v[v.len().saturating_sub(n)..].join("\n")
}

/// Image budgets from targets/budgets.toml: (crate, max bytes).
pub fn load_budgets(paths: &Paths) -> Result<Vec<(String, u64)>> {
    let p = paths.root.join(BUDGETS);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let v: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    let t = v
        .get("image_bytes")
        .and_then(|t| t.as_table())
        .context("budgets.toml: no [image_bytes] table")?;
    let mut out = Vec::new();
    for (k, v) in t {
        let n = v
            .as_integer()
            .with_context(|| format!("budgets.toml: {k} is not an integer"))?;
        out.push((k.clone(), n as u64));
    }
    Ok(out)
}

/// One check per budgeted image (images must be built).
pub fn budget_checks(paths: &Paths) -> Vec<Check> {
    let budgets = match load_budgets(paths) {
        Ok(b) => b,
        Err(e) => return vec![Check::new("image-budgets", false, format!("{e:#}"))],
    };
    budgets
        .iter()
        .map(|(k, max)| {
            let name = format!("image-size {k}");
            match std::fs::metadata(images::image_path(paths, k)) {
                Ok(m) => Check::new(
                    &name,
                    m.len() <= *max,
                    format!(
                        "{} bytes, budget {max} ({:.1}% used)",
                        m.len(),
                        m.len() as f64 * 100.0 / *max as f64
                    ),
                ),
                Err(_) => Check::new(&name, false, "image not built"),
            }
        })
        .collect()
}

/// The `unsafe` policy checks.
pub fn unsafe_checks(paths: &Paths) -> Vec<Check> {
    let ws = match audit::workspace_unsafe(&paths.root) {
        Ok(w) => w,
        Err(e) => return vec![Check::new("unsafe-scan", false, format!("{e:#}"))],
    };
    let fmt = |v: &[crate::rustsrc::UnsafeSite]| {
        v.iter()
            .take(5)
            .map(|s| format!("{}:{} {}", s.file, s.line, s.kind.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        Check::new(
            "unsafe-only-in-allowed-modules",
            ws.outside_allowed.is_empty(),
            if ws.outside_allowed.is_empty() {
                format!(
                    "{} sites, all in {} (+{} in the test-only probe)",
                    ws.sites.len(),
                    audit::ALLOWED_UNSAFE.join(" "),
                    ws.test_exceptions.len()
                )
            } else {
                format!(
                    "{} outside: {}",
                    ws.outside_allowed.len(),
                    fmt(&ws.outside_allowed)
                )
            },
        ),
        Check::new(
            "unsafe-has-safety-comment",
            ws.undocumented.is_empty(),
            if ws.undocumented.is_empty() {
                format!("{} of {} documented", ws.sites.len(), ws.sites.len())
            } else {
                format!(
                    "{} undocumented: {}",
                    ws.undocumented.len(),
                    fmt(&ws.undocumented)
                )
            },
        ),
    ]
}

/// Every crate root carries `#![forbid(unsafe_code)]` (exempt packages:
/// `#![deny(unsafe_code)]`).
pub fn forbid_check(paths: &Paths) -> Check {
    match audit::forbid_violations(&paths.root) {
        Ok((n, bad)) if bad.is_empty() => Check::new(
            "crate-roots-forbid-unsafe",
            true,
            format!(
                "{n} crate roots; deny+scoped allow only in {}",
                audit::FORBID_EXEMPT.join(", ")
            ),
        ),
        Ok((n, bad)) => Check::new(
            "crate-roots-forbid-unsafe",
            false,
            format!(
                "{} of {n} crate roots lack it: {}",
                bad.len(),
                bad.iter()
                    .map(|(f, w)| format!("{f} ({w})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => Check::new("crate-roots-forbid-unsafe", false, format!("{e:#}")),
    }
}

fn timed(name: &str, f: impl FnOnce() -> Result<(bool, String)>) -> Check {
    let t = Instant::now();
    match f() {
        Ok((ok, detail)) => Check::new(
            name,
            ok,
            format!("{detail} ({:.1} s)", t.elapsed().as_secs_f64()),
        ),
        Err(e) => Check::new(name, false, format!("{e:#}")),
    }
}

/// clippy on the host crates (all targets) with the denied lints.
pub fn clippy_host(paths: &Paths) -> Check {
    timed("clippy-host", || {
        let mut c = cargo();
        c.current_dir(&paths.root)
            .args(["clippy", "--workspace", "--all-targets"]);
        for e in crate::HOST_TEST_EXCLUDES {
            c.args(["--exclude", e]);
        }
        c.arg("--").args(CLIPPY_LINTS);
        let (ok, out) = run_quiet(&mut c)?;
        Ok((ok, if ok { "clean".into() } else { tail(&out, 12) }))
    })
}

/// clippy on the bare-metal crates for aarch64-unknown-none.
pub fn clippy_bare_metal(paths: &Paths) -> Check {
    timed("clippy-aarch64-unknown-none", || {
        let mut c = cargo();
        c.current_dir(&paths.root)
            .args(["clippy", "--release", "--target", images::TARGET]);
        for k in BARE_METAL_CLIPPY {
            c.args(["-p", k]);
        }
        c.arg("--").args(CLIPPY_LINTS);
        let (ok, out) = run_quiet(&mut c)?;
        Ok((ok, if ok { "clean".into() } else { tail(&out, 12) }))
    })
}

/// `cargo fmt --all --check` (the main workspace) and the fuzz crate.
pub fn fmt_check(paths: &Paths) -> Check {
    timed("rustfmt", || {
        let (ok, out) = run_quiet(
            cargo()
                .current_dir(&paths.root)
                .args(["fmt", "--all", "--check"]),
        )?;
        let (ok2, out2) = run_quiet(
            cargo()
                .current_dir(paths.root.join("fuzz"))
                .args(["fmt", "--all", "--check"]),
        )?;
        let files: Vec<&str> = out
            .lines()
            .chain(out2.lines())
            .filter_map(|l| l.strip_prefix("Diff in "))
            .map(|l| l.split(':').next().unwrap_or(l))
            .collect();
        let mut files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        files.dedup();
        Ok((
            ok && ok2,
            if ok && ok2 {
                "cargo fmt --all --check clean (workspace + fuzz)".into()
            } else {
                format!("needs formatting: {}", files.join(", "))
            },
        ))
    })
}

/// The `cargo-deny` to run: on PATH (`cargo deny`), else the copy under
/// target/tools, else installed there now — pinned version, `--locked`;
/// it compiles for ~7 minutes on a 2-core machine, once per target/ dir
/// (CI can cache target/tools). Prints what it does.
pub fn cargo_deny(paths: &Paths) -> Result<Command> {
    let on_path = cargo()
        .args(["deny", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if on_path {
        let mut c = cargo();
        c.arg("deny");
        return Ok(c);
    }
    let root = paths.target.join("tools");
    let bin = root.join("bin/cargo-deny");
    if !bin.is_file() {
        step(&format!(
            "cargo-deny missing: cargo install cargo-deny --version {CARGO_DENY_VERSION} --locked --root {} (compiles for several minutes, once)",
            root.display()
        ));
        let t = Instant::now();
        crate::util::run(
            cargo()
                .args([
                    "install",
                    "cargo-deny",
                    "--version",
                    CARGO_DENY_VERSION,
                    "--locked",
                    "--root",
                ])
                .arg(&root),
        )?;
        step(&format!(
            "cargo-deny installed in {:.0} s",
            t.elapsed().as_secs_f64()
        ));
    }
    let mut c = Command::new(bin);
    c.arg("deny");
    Ok(c)
}

/// cargo-deny: licenses, bans, sources (advisories need the network DB and
/// are not checked; see deny.toml).
pub fn deny_check(paths: &Paths) -> Check {
    timed("cargo-deny licenses bans sources", || {
        let mut c = cargo_deny(paths)?;
        c.current_dir(&paths.root).args([
            "--offline",
            "--all-features",
            "check",
            "licenses",
            "bans",
            "sources",
        ]);
        let (ok, out) = run_quiet(&mut c)?;
        Ok((ok, if ok { "ok".into() } else { tail(&out, 12) }))
    })
}

/// Result of the no-panic probe.
pub struct ProbeResult {
    pub ok: bool,
    pub detail: String,
}

/// Builds tests/no-panic-probe for aarch64-unknown-none in release (LTO):
/// it must link (no panic reachable from the covered paths), and its
/// `canary` feature (one deliberately reachable panic) must fail to link
/// with the probe's undefined symbol, proving the probe can fail.
pub fn no_panic_probe(paths: &Paths) -> ProbeResult {
    let build = |canary: bool| -> Result<(bool, String)> {
        let mut c = cargo();
        c.current_dir(&paths.root).args([
            "build",
            "--release",
            "--target",
            images::TARGET,
            "-p",
            "no-panic-probe",
        ]);
        if canary {
            c.args(["--features", "canary"]);
        }
        run_quiet(&mut c)
    };
    let t = Instant::now();
    let (ok, out) = match build(false) {
        Ok(r) => r,
        Err(e) => {
            return ProbeResult {
                ok: false,
                detail: format!("{e:#}"),
            };
        }
    };
    if !ok {
        let reachable = out.contains(PROBE_SYMBOL);
        return ProbeResult {
            ok: false,
            detail: if reachable {
                format!(
                    "a panic is reachable from a covered path (undefined {PROBE_SYMBOL}):\n{}",
                    tail(&out, 8)
                )
            } else {
                format!("probe did not build:\n{}", tail(&out, 12))
            },
        };
    }
    let (canary_ok, canary_out) = match build(true) {
        Ok(r) => r,
        Err(e) => {
            return ProbeResult {
                ok: false,
                detail: format!("canary: {e:#}"),
            };
        }
    };
    let canary_caught = !canary_ok && canary_out.contains(PROBE_SYMBOL);
    ProbeResult {
        ok: canary_caught,
        detail: if canary_caught {
            format!(
                "{} paths link panic-free; canary panic rejected by the linker ({:.1} s)",
                NO_PANIC_PATHS.len(),
                t.elapsed().as_secs_f64()
            )
        } else {
            "canary: a deliberate panic did NOT fail the link; the probe proves nothing".into()
        },
    }
}

/// The probe's panic handler calls this never-defined symbol.
pub const PROBE_SYMBOL: &str = "xen_no_panic_probe_panic_reachable";

/// Host smoke fuzzing of every target is part of the host tests
/// (xen-rt/xen-proto/tests/fuzz_corpus.rs, vchan/tests/fuzz_corpus.rs);
/// this checks that each cargo-fuzz target has a seed corpus, and counts
/// the seeds captured from live traffic (`captured-*`, see
/// `cargo xtask fuzz --import-capture`).
pub fn corpus_check(paths: &Paths) -> Check {
    let mut missing = Vec::new();
    let (mut total, mut captured) = (0, 0);
    for t in crate::fuzz::TARGETS {
        let dir = paths.root.join("fuzz/corpus").join(t);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() {
            missing.push(*t);
        }
        total += names.len();
        captured += names.iter().filter(|n| n.starts_with("captured-")).count();
    }
    Check::new(
        "fuzz-seed-corpora",
        missing.is_empty(),
        if missing.is_empty() {
            format!(
                "{} targets, {total} seeds ({captured} captured from live traffic) in fuzz/corpus",
                crate::fuzz::TARGETS.len()
            )
        } else {
            format!("no seeds for {}", missing.join(", "))
        },
    )
}

/// All gates, in order (images must be built for the budgets).
pub fn all(paths: &Paths) -> Vec<Check> {
    let mut v = Vec::new();
    let mut push = |c: Check| {
        println!(
            "{} {} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
        v.push(c);
    };
    for c in budget_checks(paths) {
        push(c);
    }
    for c in unsafe_checks(paths) {
        push(c);
    }
    push(forbid_check(paths));
    push(fmt_check(paths));
    push(clippy_host(paths));
    push(clippy_bare_metal(paths));
    push(deny_check(paths));
    push(advisories_check(paths));
    let p = no_panic_probe(paths);
    push(Check::new("no-panic-probe", p.ok, p.detail));
    push(corpus_check(paths));
    v
}

/// Name cargo-deny gives the default advisory database's directory (a hash
/// of its URL, https://github.com/rustsec/advisory-db).
const ADVISORY_DB_DIR: &str = "advisory-db-3157b0e258782691";

/// Crate names in the workspace and fuzz lock files.
fn locked_crates(paths: &Paths) -> Result<std::collections::BTreeSet<String>> {
    let mut names = std::collections::BTreeSet::new();
    for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let p = paths.root.join(lock);
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for line in text.lines() {
            if let Some(n) = line
                .strip_prefix("name = \"")
                .and_then(|r| r.strip_suffix('"'))
            {
                names.insert(n.to_string());
            }
        }
    }
    Ok(names)
}

/// `cargo xtask advisories --refresh-from DIR`: re-vendors
/// deny/advisory-db from a checkout of rustsec/advisory-db.
pub fn refresh_advisories(paths: &Paths, from: &Path) -> Result<usize> {
    let dst = paths.root.join("deny/advisory-db");
    let crates = locked_crates(paths)?;
    let _ = std::fs::remove_dir_all(dst.join("crates"));
    let mut n = 0;
    for c in &crates {
        let src = from.join("crates").join(c);
        if src.is_dir() {
            let to = dst.join("crates").join(c);
            std::fs::create_dir_all(&to)?;
            for e in std::fs::read_dir(&src)? {
                let e = e?;
                std::fs::copy(e.path(), to.join(e.file_name()))?;
                n += 1;
            }
        }
    }
    let list: String = crates.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(dst.join("checked-crates.txt"), list)?;
    let git = |args: &[&str]| -> Result<String> {
        let o = Command::new("git")
            .arg("-C")
            .arg(from)
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let date = git(&["show", "-s", "--format=%cI", "HEAD"])?;
    std::fs::write(
        dst.join("SNAPSHOT"),
        format!("commit {commit}\ndate {date}\n"),
    )?;
    Ok(n)
}

/// cargo-deny advisories against the vendored snapshot, offline.
pub fn advisories_check(paths: &Paths) -> Check {
    timed("cargo-deny advisories", || {
        let src = paths.root.join("deny/advisory-db");
        let snapshot = std::fs::read_to_string(src.join("SNAPSHOT")).context("SNAPSHOT")?;
        let field = |k: &str| {
            snapshot
                .lines()
                .find_map(|l| l.strip_prefix(k).map(str::trim))
                .unwrap_or("")
                .to_string()
        };
        let (commit, date) = (field("commit "), field("date "));
        // Every locked crate must have been looked up in the snapshot.
        let checked: std::collections::BTreeSet<String> =
            std::fs::read_to_string(src.join("checked-crates.txt"))
                .context("checked-crates.txt")?
                .lines()
                .map(str::to_string)
                .collect();
        let missing: Vec<String> = locked_crates(paths)?
            .into_iter()
            .filter(|c| !checked.contains(c))
            .collect();
        if !missing.is_empty() {
            return Ok((
                false,
                format!(
                    "crates not in the vendored advisory snapshot (see deny/advisory-db/README.md): {}",
                    missing.join(", ")
                ),
            ));
        }
        // cargo-deny reads its database from a git repository.
        let root = paths.target.join("advisory-db");
        let db = root.join(ADVISORY_DB_DIR);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&db)?;
        copy_tree(&src.join("crates"), &db.join("crates"))?;
        let git = |args: &[&str]| -> Result<bool> {
            Ok(Command::new("git")
                .arg("-C")
                .arg(&db)
                .args(["-c", "user.name=xtask", "-c", "user.email=xtask@localhost"])
                .args(args)
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .output()?
                .status
                .success())
        };
        anyhow::ensure!(
            git(&["init", "-q"])? && git(&["add", "-A"])? && git(&["commit", "-q", "-m", &commit])?,
            "git could not build the advisory database repository"
        );
        let base = std::fs::read_to_string(paths.root.join("deny.toml"))?;
        let config = root.join("deny.toml");
        std::fs::write(
            &config,
            base.replace(
                "[advisories]",
                &format!(
                    "[advisories]\ndb-path = {:?}\nmaximum-db-staleness = \"P3650D\"",
                    root.display().to_string()
                ),
            ),
        )?;
        let mut c = cargo_deny(paths)?;
        c.current_dir(&paths.root)
            .args(["--offline", "--all-features", "--config"])
            .arg(&config)
            .args(["check", "advisories"]);
        let (ok, out) = run_quiet(&mut c)?;
        let mut detail = format!(
            "{} (RustSec snapshot {} of {date}, {} crates looked up)",
            if ok { "no advisories" } else { "FOUND" },
            commit.get(..12).unwrap_or(&commit),
            checked.len()
        );
        if !ok {
            detail.push('\n');
            detail.push_str(&tail(&out, 20));
        }
        Ok((ok, detail))
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()))?;
        } else {
            std::fs::copy(&p, to.join(e.file_name()))?;
        }
    }
    Ok(())
}
