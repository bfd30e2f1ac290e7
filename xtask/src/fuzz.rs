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
    "console_ring",
];

/// Parsers of peer-controlled data that have no target yet because the
/// code does not exist yet.
pub const PENDING: &[&str] = &[];

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

/// The scenario a console log belongs to: its file name without the
/// extension and without the `-YYYYMMDD-HHMMSS` suffix of kept logs
/// (`target/logs/net-20261122-063954.log` is `net`).
pub fn log_scenario(log: &Path) -> String {
    let stem = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let b = stem.as_bytes();
    let stamped = b.len() > 16
        && b[b.len() - 16] == b'-'
        && b[b.len() - 7] == b'-'
        && b[b.len() - 15..b.len() - 7].iter().all(u8::is_ascii_digit)
        && b[b.len() - 6..].iter().all(u8::is_ascii_digit);
    if stamped {
        stem[..stem.len() - 16].to_string()
    } else {
        stem
    }
}

/// `cargo xtask fuzz --import-capture LOG`: turns every kind of capture
/// line in a console log into `captured-*` seeds and returns the files
/// written:
/// * `blkcap` (storage-domain `capture=N`): up to `per_kind` requests of
///   each kind (operation byte, and for indirect requests their
///   `indirect_op`) into `blkif_request/captured-<kind>-<k>`;
/// * `xscap` (xen-rt `xscapture=N`): each domain's reply stream into
///   `xenstore_assembler/captured-[<scenario>-]dom<d>-cut<c>` (the
///   `hello` scenario's names carry no scenario: they predate it) and,
///   re-encoded, into `xenstore_client/captured-<scenario>-dom<d>-<k>`;
/// * `netcap` (net-domain `capture=N`): up to `per_kind` packets of each
///   kind into `netif_tx/captured-<proto>-<shape>-<k>`, plus one seed per
///   vif with its captured packets in a row;
/// * `conscap` (console-domain `capture=N`): the first `per_kind` ring
///   states with guest output of each connection alone into
///   `console_ring/captured-dom<fe>-<devid>-c<conn>-<n>`, and all of a
///   connection's states in a row into
///   `console_ring/captured-stream-dom<fe>-<devid>-c<conn>`;
/// * `vchancap` (vchan-domain `capture=1`): each header snapshot, as
///   published by a hostile server (client victim) and replayed by a
///   hostile client (server victim), into
///   `vchan_header/captured-<role><run>-<point>-<victim>`.
pub fn import_capture(paths: &Paths, log: &Path, per_kind: usize) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let scenario = log_scenario(log);
    let reqs = parse_capture(&text);
    let streams = parse_xs_capture(&text);
    let packets = parse_net_capture(&text);
    let headers = parse_vchan_capture(&text);
    let states = parse_console_capture(&text);
    anyhow::ensure!(
        !reqs.is_empty()
            || !streams.is_empty()
            || !packets.is_empty()
            || !headers.is_empty()
            || !states.is_empty(),
        "no `blkcap`, `xscap`, `netcap`, `vchancap` or `conscap` lines in {} (boot \
         storage-domain, net-domain or console-domain with capture=N, vchan-domain with \
         capture=1, or a domain with xscapture=N)",
        log.display()
    );
    let corpus = paths.root.join("fuzz/corpus");
    let mut written = Vec::new();
    let mut write = |target: &str, name: &str, seed: &[u8]| -> Result<()> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        std::fs::write(&path, seed)?;
        written.push(path);
        Ok(())
    };
    // xenstore_assembler seeds: a chunk size, then the captured stream.
    let tag = if scenario == "hello" {
        String::new()
    } else {
        format!("{scenario}-")
    };
    for (dom, stream) in &streams {
        for cut in [64u8, 255] {
            let mut seed = vec![cut];
            seed.extend_from_slice(stream);
            write(
                "xenstore_assembler",
                &format!("captured-{tag}dom{dom}-cut{cut}"),
                &seed,
            )?;
        }
        for (k, seed) in xs_client_seeds(stream).iter().enumerate() {
            let name = format!("captured-{scenario}-dom{dom}-{}", k + 1);
            write("xenstore_client", &name, seed)?;
        }
    }
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
        write(
            "blkif_request",
            &format!("captured-{kind}-{k}"),
            &capture_seed(r),
        )?;
    }
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut by_vif: std::collections::BTreeMap<String, Vec<&CapturedPacket>> = Default::default();
    for p in &packets {
        let kind = format!("{}-{}", p.proto, p.shape());
        let k = counts.entry(kind.clone()).or_default();
        if *k < per_kind {
            *k += 1;
            write("netif_tx", &format!("captured-{kind}-{k}"), &p.seed)?;
        }
        by_vif.entry(p.vif.clone()).or_default().push(p);
    }
    for (vif, ps) in &by_vif {
        let name = format!("captured-stream-vif{}", vif.replace('/', "-"));
        write("netif_tx", &name, &net_stream_seed(ps))?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for h in &headers {
        for (victim, seed) in [
            ("client-victim", vchan_client_victim_seed(&h.bytes)),
            ("server-victim", vchan_server_victim_seed(&h.bytes)),
        ] {
            if seen.insert(seed.clone()) {
                let name = format!("captured-{}{}-{}-{victim}", h.role, h.run, h.point);
                write("vchan_header", &name, &seed)?;
            }
        }
    }
    let mut by_conn: std::collections::BTreeMap<(String, u32), Vec<&CapturedState>> =
        Default::default();
    for st in &states {
        by_conn
            .entry((st.console.clone(), st.conn))
            .or_default()
            .push(st);
    }
    for ((console, conn), sts) in &by_conn {
        let tag = format!("dom{}-c{conn}", console.replace('/', "-"));
        // Alone: the first states that carry guest output.
        let with_output = sts
            .iter()
            .filter(|s| s.record[16] != 0 || s.record[17] != 0);
        for st in with_output.take(per_kind) {
            let seed = console_seed(&[&st.record]);
            write("console_ring", &format!("captured-{tag}-{}", st.n), &seed)?;
        }
        let recs: Vec<&[u8]> = sts.iter().map(|s| s.record.as_slice()).collect();
        write(
            "console_ring",
            &format!("captured-stream-{tag}"),
            &console_seed(&recs),
        )?;
    }
    Ok(written)
}

/// One console ring state console-domain printed (`conscap <fe>/<devid>
/// <conn> <n> <offset> <hex>`, boot argument `capture=N`): the record
/// `block[16] out_len:u16 out[] in_len:u16 in[]` of
/// `xen_proto::console::Snapshot::encode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedState {
    /// `<frontend domid>/<devid>`.
    pub console: String,
    /// console-domain's connection number.
    pub conn: u32,
    /// The state's number within its connection.
    pub n: u32,
    pub record: Vec<u8>,
}

/// Whether `r` is one whole snapshot record (lengths consistent, live
/// bytes within the rings).
pub fn console_record_ok(r: &[u8]) -> bool {
    let u16_at = |o: usize| {
        r.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let Some(out) = u16_at(16) else {
        return false;
    };
    let Some(inp) = u16_at(18 + out) else {
        return false;
    };
    out <= 2048 && inp <= 1024 && r.len() == 16 + 2 + out + 2 + inp
}

/// Reads console-domain's `conscap` lines out of a console log; records
/// with a lost line are dropped.
pub fn parse_console_capture(log: &str) -> Vec<CapturedState> {
    parse_hex_records(log, "conscap ", 3)
        .into_iter()
        .filter_map(|(label, record)| {
            (console_record_ok(&record)).then_some(())?;
            Some(CapturedState {
                console: label[0].clone(),
                conn: label[1].parse().ok()?,
                n: label[2].parse().ok()?,
                record,
            })
        })
        .collect()
}

/// The `console_ring` input replaying captured ring states of one
/// connection (see `xen_proto::fuzzing::console_ring`): echo on, the
/// backend attached at the first state's index block, then one snapshot
/// operation (and poll) per state.
pub fn console_seed(records: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(records.first().map_or(&[0u8; 16][..], |r| &r[..16]));
    for r in records {
        v.push(0);
        v.extend_from_slice(r);
    }
    v
}

/// Lines `<tag> <fields...> <offset> <hex>` as xen-rt's `print_hex_lines`
/// writes them: for each line carrying `tag`, its `nfields` label fields
/// and the bytes. A line at offset 0 starts a record; a later one extends
/// the newest record with the same label whose length is its offset (so
/// that a label used again, e.g. after a reconnection, starts afresh and
/// a lost line ends a record).
fn parse_hex_records(log: &str, tag: &str, nfields: usize) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut out: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.split(tag).nth(1) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() != nfields + 2 {
            continue;
        }
        let label: Vec<String> = f[..nfields].iter().map(|s| s.to_string()).collect();
        let (Ok(off), Some(bytes)) = (f[nfields].parse::<usize>(), decode_hex(f[nfields + 1]))
        else {
            continue;
        };
        if off == 0 {
            out.push((label, bytes));
        } else if let Some(r) = out.iter_mut().rev().find(|r| r.0 == label)
            && r.1.len() == off
        {
            r.1.extend_from_slice(&bytes);
        }
    }
    out
}

/// One tx packet net-domain printed (`netcap <fe>/<devid> <n> <proto>
/// <offset> <hex>`, boot argument `capture=N`): `seed` is already the
/// `netif_tx` input for it (`[first u32][slots u16][flags u8]`, then the
/// ring slots as copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPacket {
    pub vif: String,
    pub proto: String,
    pub seed: Vec<u8>,
}

/// `NETTXF_extra_info`, `NETTXF_more_data`; `XEN_NETIF_EXTRA_TYPE_GSO`.
const TXF_EXTRA: u16 = 8;
const TXF_MORE: u16 = 4;
const EXTRA_GSO: u8 = 1;

impl CapturedPacket {
    /// The ring slots.
    pub fn slots(&self) -> &[u8] {
        &self.seed[7..]
    }

    /// `plain` (one slot), `multi` (chained requests), `gso` (a GSO
    /// extra-info slot) or `extra` (another extra-info slot).
    pub fn shape(&self) -> &'static str {
        let s = self.slots();
        let flags = u16::from_le_bytes([s[6], s[7]]);
        if flags & TXF_EXTRA != 0 {
            if s.get(12) == Some(&EXTRA_GSO) {
                "gso"
            } else {
                "extra"
            }
        } else if flags & TXF_MORE != 0 {
            "multi"
        } else {
            "plain"
        }
    }
}

/// Reads net-domain's `netcap` lines out of a console log; incomplete
/// packets are dropped.
pub fn parse_net_capture(log: &str) -> Vec<CapturedPacket> {
    parse_hex_records(log, "netcap ", 3)
        .into_iter()
        .filter_map(|(label, seed)| {
            let slots = usize::from(u16::from_le_bytes([*seed.get(4)?, *seed.get(5)?]));
            (slots > 0 && seed.len() == 7 + 12 * slots).then(|| CapturedPacket {
                vif: label[0].clone(),
                proto: label[2].clone(),
                seed,
            })
        })
        .collect()
}

/// One `netif_tx` input with the packets of one vif back to back, as if
/// the frontend had published them together (from the first packet's
/// ring index on); at most 32 packets.
pub fn net_stream_seed(packets: &[&CapturedPacket]) -> Vec<u8> {
    let packets = &packets[..packets.len().min(32)];
    let slots: Vec<u8> = packets.iter().flat_map(|p| p.slots()).copied().collect();
    let mut v = packets.first().map_or(vec![0; 4], |p| p.seed[..4].to_vec());
    v.extend_from_slice(&((slots.len() / 12) as u16).to_le_bytes());
    v.push(0);
    v.extend_from_slice(&slots);
    v
}

/// One vchan header snapshot (`vchancap <role> <run> <point> <offset>
/// <hex>`, vchan-domain's boot argument `capture=1`): the
/// `vchan_interface` bytes, grant list included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedHeader {
    pub role: String,
    pub run: u32,
    pub point: String,
    pub bytes: Vec<u8>,
}

/// Reads vchan-domain's `vchancap` lines out of a console log; snapshots
/// shorter than their grant list are dropped.
pub fn parse_vchan_capture(log: &str) -> Vec<CapturedHeader> {
    parse_hex_records(log, "vchancap ", 3)
        .into_iter()
        .filter_map(|(label, bytes)| {
            let h = VchanHeader::parse(&bytes)?;
            let run = label[1].parse().ok()?;
            (bytes.len() >= 24 + 4 * h.grants()).then(|| CapturedHeader {
                role: label[0].clone(),
                run,
                point: label[2].clone(),
                bytes,
            })
        })
        .collect()
}

/// The fixed part of `struct vchan_interface` (`io/libxenvchan.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VchanHeader {
    pub left_cons: u32,
    pub left_prod: u32,
    pub right_cons: u32,
    pub right_prod: u32,
    pub left_order: u16,
    pub right_order: u16,
    pub cli_live: u8,
    pub srv_live: u8,
    pub cli_notify: u8,
    pub srv_notify: u8,
}

impl VchanHeader {
    pub fn parse(b: &[u8]) -> Option<Self> {
        let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
        Some(VchanHeader {
            left_cons: u32_at(0)?,
            left_prod: u32_at(4)?,
            right_cons: u32_at(8)?,
            right_prod: u32_at(12)?,
            left_order: u16_at(16)?,
            right_order: u16_at(18)?,
            cli_live: *b.get(20)?,
            srv_live: *b.get(21)?,
            cli_notify: *b.get(22)?,
            srv_notify: *b.get(23)?,
        })
    }

    /// Grant refs listed after the fixed part (orders 12 and up use
    /// `2^(order-12)` pages; smaller rings live in the header page).
    pub fn grants(&self) -> usize {
        let pages = |o: u16| {
            if (12..=20).contains(&o) {
                1 << (o - 12)
            } else {
                0
            }
        };
        pages(self.left_order) + pages(self.right_order)
    }
}

/// `vchan::sim::fuzz_header` input encoders (see its `Bytes` reader):
/// an order (`10 + b % 11` for `b < 0xf0`, else a u16), a ring index
/// (selector 3: an exact u32), a live-like byte (exact for 0..=2 and
/// 0xf0..).
fn vchan_order(v: &mut Vec<u8>, o: u16) {
    if (10..=20).contains(&o) {
        v.push((o - 10) as u8);
    } else {
        v.push(0xf0);
        v.extend_from_slice(&o.to_le_bytes());
    }
}

fn vchan_index(v: &mut Vec<u8>, i: u32) {
    v.push(3);
    v.extend_from_slice(&i.to_le_bytes());
}

fn vchan_small_exact(b: u8) -> Option<u8> {
    (b <= 2 || b >= 0xf0).then_some(b)
}

/// The operations that follow each victim's setup: `data_ready`,
/// `try_read` of `read` bytes, `buffer_space`, `try_write` of `write`
/// bytes, then `data_ready` again (`fuzz_header` op codes 4, 2, 5, 3).
fn vchan_ops(v: &mut Vec<u8>, read: u16, write: u16) {
    v.push(4);
    v.push(2);
    v.extend_from_slice(&read.to_le_bytes());
    v.push(5);
    v.push(3);
    v.extend_from_slice(&write.to_le_bytes());
    v.push(4);
}

/// Bytes a single `fuzz_header` read or write may move (its buffer holds
/// 5000).
const VCHAN_OP_MAX: u32 = 4096;

/// A `vchan_header` input with a client victim connecting to a hostile
/// server that publishes exactly the captured header: orders, all four
/// indices, live and notify bytes (a live byte outside 0..=2 is reduced
/// modulo 3), and as many grant refs as the orders need. The refs
/// themselves are the simulator's real ones (the captured refs mean
/// nothing there), as are the xenstore ring-ref and event channel.
pub fn vchan_client_victim_seed(hdr: &[u8]) -> Vec<u8> {
    let Some(h) = VchanHeader::parse(hdr) else {
        return Vec::new();
    };
    let mut v = vec![1];
    vchan_order(&mut v, h.left_order);
    vchan_order(&mut v, h.right_order);
    for i in [h.left_cons, h.left_prod, h.right_cons, h.right_prod] {
        vchan_index(&mut v, i);
    }
    v.push(vchan_small_exact(h.srv_live).unwrap_or(h.srv_live % 3));
    v.push(vchan_small_exact(h.cli_live).unwrap_or(h.cli_live % 3));
    v.push(h.srv_notify);
    v.push(h.cli_notify);
    // Real grants; the first (up to) 4 are not replaced by garbage; then
    // no extra entries; real ring-ref and event channel.
    v.push(1);
    v.extend(std::iter::repeat_n(0, h.grants().min(4)));
    v.extend_from_slice(&[1, 1, 1]);
    let ready = h.right_prod.wrapping_sub(h.right_cons).min(VCHAN_OP_MAX);
    vchan_ops(&mut v, ready.max(1) as u16, 1024);
    v
}

/// Ring orders `fuzz_header` offers a server victim (read, write).
const VCHAN_SERVER_ORDERS: [(u16, u16); 6] =
    [(10, 11), (11, 10), (12, 10), (11, 13), (16, 20), (20, 11)];

/// A `vchan_header` input with a server victim and a hostile client that
/// replays what the captured client had written: the server's geometry
/// from `fuzz_header`'s list (the captured one, else one with the same
/// read order), its initial index the captured `left.cons`, then the
/// client's writes: `cli_live`, `srv_notify` (when exactly encodable) and
/// `left.prod` (the data it had produced). The right ring is shifted: the
/// server writes as many bytes as the client had not consumed yet.
pub fn vchan_server_victim_seed(hdr: &[u8]) -> Vec<u8> {
    let Some(h) = VchanHeader::parse(hdr) else {
        return Vec::new();
    };
    let orders = (h.left_order, h.right_order);
    let sel = VCHAN_SERVER_ORDERS
        .iter()
        .position(|o| *o == orders)
        .or_else(|| VCHAN_SERVER_ORDERS.iter().position(|o| o.0 == orders.0))
        .unwrap_or(0);
    let mut v = vec![0, sel as u8];
    vchan_index(&mut v, h.left_cons);
    // Hostile writes: op 8k writes field k of fuzz_header's list
    // [LEFT_CONS, LEFT_PROD, RIGHT_CONS, RIGHT_PROD, CLI_LIVE, SRV_LIVE,
    // CLI_NOTIFY, SRV_NOTIFY].
    if let Some(b) = vchan_small_exact(h.cli_live) {
        v.extend_from_slice(&[4 * 8, b]);
    }
    if let Some(b) = vchan_small_exact(h.srv_notify) {
        v.extend_from_slice(&[7 * 8, b]);
    }
    v.push(8);
    vchan_index(&mut v, h.left_prod);
    let unread = h.right_prod.wrapping_sub(h.right_cons).min(VCHAN_OP_MAX);
    let ready = h.left_prod.wrapping_sub(h.left_cons).min(VCHAN_OP_MAX);
    if unread > 0 {
        v.push(3);
        v.extend_from_slice(&(unread as u16).to_le_bytes());
    }
    vchan_ops(&mut v, ready.max(1) as u16, 1024);
    v
}

/// xenstore message types (`xs_wire.h`).
mod xs_type {
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const TRANSACTION_START: u32 = 6;
    pub const WRITE: u32 = 11;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
}

/// `xenstore_client` inputs carrying a captured reply stream. The input
/// (see `xen_proto::fuzzing::xenstore_client`) starts with a request mix;
/// mix 7 makes the client send 8 requests, READ, DIRECTORY, GET_PERMS,
/// TRANSACTION_START, WATCH, WRITE, READ, DIRECTORY (ids 1 to 8). Each
/// captured message becomes a record `[type selector][id selector][tx]
/// [len u16][flags]` plus its payload, with a truthful length and 127-byte
/// chunks: a reply is addressed to an outstanding request of its type (an
/// ERROR to any), a watch event to no request, any other message (e.g.
/// TRANSACTION_END) to an unknown id. When a reply finds no outstanding
/// request of its type left, the next input starts. At most 8 inputs.
pub fn xs_client_seeds(stream: &[u8]) -> Vec<Vec<u8>> {
    use xs_type::*;
    const KINDS: [u32; 8] = [
        READ,
        DIRECTORY,
        GET_PERMS,
        TRANSACTION_START,
        WATCH,
        WRITE,
        READ,
        DIRECTORY,
    ];
    let mut seeds = Vec::new();
    let mut seed = vec![7u8];
    let mut used = [false; 8];
    let mut rest = stream;
    while rest.len() >= 16 && seeds.len() < 8 {
        let word = |o: usize| u32::from_le_bytes(rest[o..o + 4].try_into().unwrap());
        let (ty, tx, len) = (word(0), word(8), word(12) as usize);
        let Some(payload) = rest.get(16..16 + len) else {
            break;
        };
        let tsel: &[u8] = match ty {
            WATCH_EVENT => &[0],
            ERROR => &[1],
            READ => &[2],
            DIRECTORY => &[3],
            TRANSACTION_START => &[4],
            GET_PERMS => &[5],
            WRITE => &[6],
            _ => &[7, ty as u8],
        };
        let wanted = |k: &u32| match ty {
            ERROR => true,
            WATCH_EVENT => false,
            t => *k == t,
        };
        let takes_slot = ty == ERROR || KINDS.contains(&ty);
        let mut slot = KINDS
            .iter()
            .enumerate()
            .position(|(i, k)| wanted(k) && !used[i]);
        if takes_slot && slot.is_none() {
            seeds.push(std::mem::replace(&mut seed, vec![7u8]));
            used = [false; 8];
            slot = KINDS.iter().position(wanted);
        }
        let sel = match slot {
            Some(i) => {
                used[i] = true;
                i as u8
            }
            None => 250,
        };
        seed.extend_from_slice(tsel);
        seed.extend_from_slice(&[sel, tx as u8]);
        seed.extend_from_slice(&(len as u16).to_le_bytes());
        seed.push(0xfe);
        seed.extend_from_slice(payload);
        rest = &rest[16 + len..];
    }
    if seed.len() > 1 && seeds.len() < 8 {
        seeds.push(seed);
    }
    seeds
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
    fn parses_net_capture() {
        // A 3-slot GSO packet (request, GSO extra, follow-on request):
        // 7 + 36 bytes, split 40 + 3; a packet whose second line was lost
        // (2 slots announced, 1 present); the reconnected vif starts at 0
        // again.
        let req = |flags: u16, size: u16| {
            let mut r = vec![1, 0, 0, 0, 0, 0];
            r.extend_from_slice(&flags.to_le_bytes());
            r.extend_from_slice(&[7, 0]);
            r.extend_from_slice(&size.to_le_bytes());
            r
        };
        let hex = |b: &[u8]| -> String { b.iter().map(|b| format!("{b:02x}")).collect() };
        let mut seed = vec![0xfe, 0xff, 0xff, 0xff, 3, 0, 0];
        seed.extend(req(TXF_EXTRA | TXF_MORE | 1, 3000));
        seed.extend([EXTRA_GSO, 0, 0xa8, 5, 1, 0, 0, 0, 0, 0, 0, 0]);
        seed.extend(req(0, 1000));
        let gso = hex(&seed);
        let lost = hex(&[&[10, 0, 0, 0, 2, 0, 0][..], &req(TXF_MORE, 60)].concat());
        let plain = hex(&[&[1, 0, 0, 0, 1, 0, 0][..], &req(0, 42)].concat());
        let log = format!(
            "[+ 1.0] (XEN) DOM1: netcap 2/0 0 tcp 0 {}\n\
             [+ 1.0] (XEN) DOM1: netcap 2/0 0 tcp 40 {}\n\
             [+ 1.1] (XEN) DOM1: netcap 2/0 1 icmp 0 {lost}\n\
             [+ 1.2] (XEN) DOM1: netcap 2/0 0 arp 0 {plain}\n",
            &gso[..80],
            &gso[80..]
        );
        let p = parse_net_capture(&log);
        assert_eq!(p.len(), 2, "the packet with a lost line is dropped");
        assert_eq!((p[0].proto.as_str(), p[0].shape()), ("tcp", "gso"));
        assert_eq!(p[0].seed, seed);
        assert_eq!((p[1].vif.as_str(), p[1].shape()), ("2/0", "plain"));
        let s = net_stream_seed(&[&p[0], &p[1]]);
        assert_eq!(&s[..7], &[0xfe, 0xff, 0xff, 0xff, 4, 0, 0]);
        assert_eq!(s.len(), 7 + 4 * 12);
    }

    #[test]
    fn parses_vchan_capture_and_builds_seeds() {
        // Server header, orders 16/16 (32 grants), mid-transfer: the
        // client has produced 100 bytes not yet read, and not consumed 30.
        let mut h = Vec::new();
        for i in [1000u32, 1100, 5000, 5030] {
            h.extend_from_slice(&i.to_le_bytes());
        }
        h.extend_from_slice(&[16, 0, 16, 0, 1, 1, 0, 3]);
        h.extend((0..32u32).flat_map(|g| (g + 8).to_le_bytes()));
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        let log: String = hex
            .as_bytes()
            .chunks(80)
            .enumerate()
            .map(|(k, c)| {
                let c = std::str::from_utf8(c).unwrap();
                format!("(XEN) DOM1: vchancap srv 1 mid {} {c}\n", k * 40)
            })
            .collect();
        let short = format!(
            "(XEN) DOM2: vchancap cli 0 open 0 {}0a000b0001010000\n",
            "0".repeat(32)
        );
        let caps = parse_vchan_capture(&(log + &short));
        assert_eq!(caps.len(), 2);
        assert_eq!(caps[0].bytes, h);
        assert_eq!((caps[1].role.as_str(), caps[1].run), ("cli", 0));
        let hdr = VchanHeader::parse(&h).unwrap();
        assert_eq!((hdr.grants(), hdr.srv_notify), (32, 3));
        let c = vchan_client_victim_seed(&h);
        // victim, 2 orders, 4 indices, 4 live/notify bytes, real grants,
        // 4 kept refs, end of list, real ref and port, then the ops.
        assert_eq!(&c[..3], &[1, 6, 6]);
        assert_eq!(&c[3..8], &[3, 0xe8, 3, 0, 0]);
        assert_eq!(&c[23..36], &[1, 1, 3, 0, 1, 0, 0, 0, 0, 1, 1, 1, 4]);
        assert_eq!(&c[36..39], &[2, 30, 0], "reads the 30 unread bytes");
        let s = vchan_server_victim_seed(&h);
        // (16, 20) is the listed geometry with read order 16; srv_notify 3
        // is not encodable and skipped.
        assert_eq!(&s[..7], &[0, 4, 3, 0xe8, 3, 0, 0]);
        assert_eq!(&s[7..9], &[32, 1]);
        assert_eq!(&s[9..15], &[8, 3, 0x4c, 4, 0, 0]);
        assert_eq!(
            &s[15..18],
            &[3, 30, 0],
            "the server writes what the client left"
        );
        assert_eq!(&s[18..21], &[4, 2, 100]);
    }

    #[test]
    fn xenstore_stream_to_client_seeds() {
        let msg = |ty: u32, id: u32, payload: &[u8]| {
            let mut m = Vec::new();
            for w in [ty, id, 0, payload.len() as u32] {
                m.extend_from_slice(&w.to_le_bytes());
            }
            m.extend_from_slice(payload);
            m
        };
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend(msg(xs_type::READ, 1, b"v"));
        }
        stream.extend(msg(xs_type::WATCH_EVENT, 0, b"/a\0t\0"));
        stream.extend(msg(7, 4, b"OK\0"));
        stream.extend(msg(xs_type::WATCH, 5, b"OK\0"));
        stream.extend(msg(xs_type::ERROR, 6, b"ENOENT\0"));
        stream.extend(&msg(xs_type::READ, 7, b"cut off")[..20]);
        let seeds = xs_client_seeds(&stream);
        assert_eq!(seeds.len(), 2, "the third READ starts a new input");
        assert_eq!(
            seeds[0],
            [
                &[7u8, 2, 0, 0, 1, 0, 0xfe, b'v'][..],
                &[2, 6, 0, 1, 0, 0xfe, b'v']
            ]
            .concat()
        );
        let s = &seeds[1];
        assert_eq!(&s[..8], &[7, 2, 0, 0, 1, 0, 0xfe, b'v']);
        assert_eq!(&s[8..14], &[0, 250, 0, 5, 0, 0xfe], "watch event");
        assert_eq!(&s[19..26], &[7, 7, 250, 0, 3, 0, 0xfe], "TRANSACTION_END");
        assert_eq!(&s[29..36], &[7, 4, 4, 0, 3, 0, 0xfe], "WATCH reply");
        assert_eq!(
            &s[39..45],
            &[1, 1, 0, 7, 0, 0xfe],
            "ERROR to the first free request"
        );
        assert_eq!(s.len(), 52, "the incomplete message is left out");
    }

    #[test]
    fn parses_console_capture() {
        // Two states of connection 0 (the second split over two lines),
        // and one whose second line was lost.
        let mut a = vec![0u8; 16];
        a[12] = 3; // out_prod
        a.extend_from_slice(&3u16.to_le_bytes());
        a.extend_from_slice(b"hi\n");
        a.extend_from_slice(&0u16.to_le_bytes());
        let mut b = vec![0u8; 16];
        b[4] = 50; // in_prod
        b[8] = 3; // out_cons
        b[12] = 3;
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&50u16.to_le_bytes());
        b.extend_from_slice(&[b'e'; 50]);
        let hex = |b: &[u8]| -> String { b.iter().map(|b| format!("{b:02x}")).collect() };
        let bh = hex(&b);
        let log = format!(
            "(XEN) DOM1: conscap 2/1 0 0 0 {}\n\
             (XEN) DOM1: conscap 2/1 0 1 0 {}\n\
             (XEN) DOM1: conscap 2/1 0 1 40 {}\n\
             (XEN) DOM1: conscap 2/1 1 0 0 {}\n",
            hex(&a),
            &bh[..80],
            &bh[80..],
            &bh[..80]
        );
        let st = parse_console_capture(&log);
        assert_eq!(st.len(), 2);
        assert_eq!((st[0].console.as_str(), st[0].conn, st[0].n), ("2/1", 0, 0));
        assert_eq!(st[0].record, a);
        assert_eq!(st[1].record, b);
        let seed = console_seed(&[&st[0].record, &st[1].record]);
        assert_eq!(seed[0], 1);
        assert_eq!(&seed[1..17], &a[..16]);
        assert_eq!(seed[17], 0);
        assert_eq!(&seed[18..18 + a.len()], &a[..]);
        assert_eq!(seed.len(), 1 + 16 + 2 + a.len() + b.len());
    }

    #[test]
    fn scenario_of_a_log() {
        assert_eq!(log_scenario(Path::new("target/logs/net.log")), "net");
        assert_eq!(
            log_scenario(Path::new("target/logs/net-20261122-063954.log")),
            "net"
        );
        assert_eq!(log_scenario(Path::new("blk-boot2.log")), "blk-boot2");
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
