//! # blkload: the guest workload of `cargo xtask bench blk`
//!
//! A small, static Linux program that measures a block device the way the
//! benchmark needs it, and nothing else: O_DIRECT I/O (no page cache in
//! the guest) over a fixed region of the device, each test for a fixed
//! time, one parseable line per test. The same binary runs in the guest
//! against storage-domain and against Linux xen-blkback, so both backends
//! see exactly the same request stream.
//!
//! Why not fio: Debian's arm64 `fio` links librbd, librados, glusterfs,
//! RDMA and NFS libraries; with their shared-library closure that is about
//! 50 packages and 75 MB installed, ten times the rest of the guest
//! initramfs. This program is about 400 KiB, statically linked, and every
//! line of it is here to read.
//!
//! Tests, in order (`--seconds` each, except `prefill` and `verify`):
//! - `prefill`: one sequential 1 MiB write pass over the region, so that
//!   reads never hit holes of the sparse disk image on the host;
//! - `seq-read`/`seq-write` at QD1 and QD32, 1 MiB requests: workers take
//!   the next 1 MiB block of the region from one shared cursor (wrapping);
//! - `rand-read`/`rand-write` at QD1 and QD32, 4 KiB requests at uniformly
//!   random 4 KiB-aligned offsets (xorshift64*, fixed seeds);
//! - `verify`: writes a position-dependent pattern over the first 4 MiB of
//!   the region with 4 KiB writes, reads it back with 1 MiB reads, and
//!   the other way round over the next 4 MiB; any difference fails.
//!
//! Queue depth N is N threads, each with one synchronous O_DIRECT
//! `pread`/`pwrite` in flight: the block layer sees up to N outstanding
//! requests. (io_uring or libaio would need `unsafe` for the ring memory;
//! threads keep this crate `forbid(unsafe_code)`.)
//!
//! Output: `BLKLOAD test=<name> bs=<bytes> qd=<n> ops=<n> secs=<s>
//! mbps=<MB/s, 10^6 bytes> iops=<n> errors=<n>` per test (and
//! `BLKLOAD error test=<name> qd=<n> <what>` after a failed one),
//! `BLKLOAD verify result=ok|FAIL ...`, and `BLKLOAD done status=ok|FAIL`.
//! Exit status 0 only if no I/O failed and verify passed.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// `O_DIRECT` (asm-generic on arm64, x86 differs).
#[cfg(target_arch = "aarch64")]
const O_DIRECT: i32 = 0o200000;
#[cfg(not(target_arch = "aarch64"))]
const O_DIRECT: i32 = 0o40000;

const MIB: u64 = 1 << 20;
const SEQ_BS: u64 = MIB;
const RAND_BS: u64 = 4096;
/// Buffer alignment for O_DIRECT (logical block size is at most 4 KiB).
const ALIGN: usize = 4096;
const VERIFY_BYTES: u64 = 4 * MIB;

#[derive(Debug, Clone, PartialEq)]
struct Config {
    dev: String,
    offset: u64,
    region: u64,
    seconds: f64,
    depths: Vec<usize>,
    tests: Vec<String>,
}

const ALL_TESTS: &[&str] = &[
    "prefill",
    "seq-read",
    "seq-write",
    "rand-read",
    "rand-write",
    "verify",
];

const USAGE: &str = "usage: blkload DEVICE [--offset-mib N] [--region-mib N] [--seconds S] [--qd 1,32] [--tests prefill,seq-read,seq-write,rand-read,rand-write,verify]";

fn parse_args(args: &[String]) -> Result<Config, String> {
    let mut c = Config {
        dev: String::new(),
        offset: MIB,
        region: 64 * MIB,
        seconds: 5.0,
        depths: vec![1, 32],
        tests: ALL_TESTS.iter().map(|s| s.to_string()).collect(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--offset-mib" => c.offset = num(&val(a)?)? * MIB,
            "--region-mib" => c.region = num(&val(a)?)? * MIB,
            "--seconds" => {
                c.seconds = val(a)?
                    .parse()
                    .map_err(|_| "--seconds: not a number".to_string())?
            }
            "--qd" => {
                c.depths = val(a)?
                    .split(',')
                    .map(|s| num(s).map(|n| n as usize))
                    .collect::<Result<_, _>>()?
            }
            "--tests" => c.tests = val(a)?.split(',').map(str::to_string).collect(),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            s if c.dev.is_empty() => c.dev = s.to_string(),
            s => return Err(format!("unexpected argument {s}\n{USAGE}")),
        }
    }
    if c.dev.is_empty() {
        return Err(USAGE.to_string());
    }
    if c.region < 2 * VERIFY_BYTES || !c.region.is_multiple_of(SEQ_BS) {
        return Err(format!(
            "--region-mib must be a whole number >= {}",
            2 * VERIFY_BYTES / MIB
        ));
    }
    if !(c.seconds > 0.0 && c.seconds <= 3600.0) {
        return Err("--seconds must be in (0, 3600]".into());
    }
    if c.depths.is_empty() || c.depths.iter().any(|&d| d == 0 || d > 256) {
        return Err("--qd values must be 1..=256".into());
    }
    if let Some(t) = c.tests.iter().find(|t| !ALL_TESTS.contains(&t.as_str())) {
        return Err(format!("unknown test {t}"));
    }
    Ok(c)
}

fn num(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))
}

/// xorshift64* (Vigna): fast, fixed-seed, good enough for offsets.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        // n is far below 2^32 here: the modulo bias is negligible.
        self.next() % n
    }
}

/// An ALIGN-aligned window of `len` bytes inside an owned allocation
/// (no `unsafe`: over-allocate and start at the first aligned byte).
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let buf = vec![0u8; len + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN, "cannot align a byte buffer");
        Aligned { buf, start, len }
    }
    fn get(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Seq,
    Rand,
}

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    ops: u64,
    secs: f64,
    errors: u64,
    first_error: Option<String>,
}

impl Outcome {
    /// One short line (Xen splits guest console lines at about 128
    /// characters); the first error, if any, goes on a line of its own.
    fn line(&self, name: &str, bs: u64, qd: usize) -> String {
        let bytes = self.ops * bs;
        let secs = self.secs.max(1e-9);
        format!(
            "BLKLOAD test={name} bs={bs} qd={qd} ops={} secs={:.3} mbps={:.2} iops={:.1} errors={}",
            self.ops,
            self.secs,
            bytes as f64 / secs / 1e6,
            self.ops as f64 / secs,
            self.errors,
        )
    }
}

/// Fills `b` with bytes that are neither zero nor repeating.
fn fill_noise(b: &mut [u8], seed: u64) {
    let mut r = Rng::new(seed);
    for c in b.chunks_mut(8) {
        let v = r.next().to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

/// Runs `qd` workers for `dur` (or, with `once`, until the cursor has
/// passed the whole region once: the prefill).
fn run(
    f: &File,
    cfg: &Config,
    dir: Dir,
    pat: Pattern,
    qd: usize,
    dur: Duration,
    once: bool,
) -> Outcome {
    let bs = match pat {
        Pattern::Seq => SEQ_BS,
        Pattern::Rand => RAND_BS,
    };
    let blocks = cfg.region / bs;
    let cursor = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(qd + 1));
    let mut start = Instant::now();
    let results: Vec<(u64, u64, Option<String>, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..qd)
            .map(|w| {
                let cursor = Arc::clone(&cursor);
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let mut buf = Aligned::new(bs as usize);
                    fill_noise(buf.get_mut(), 0xb10c_0000 + w as u64);
                    let mut rng = Rng::new(0x5eed_0000 + w as u64);
                    let (mut ops, mut errors, mut first) = (0u64, 0u64, None);
                    barrier.wait();
                    let end = Instant::now() + dur;
                    loop {
                        let block = match pat {
                            Pattern::Seq => {
                                let n = cursor.fetch_add(1, Ordering::Relaxed);
                                if once && n >= blocks {
                                    break;
                                }
                                n % blocks
                            }
                            Pattern::Rand => rng.below(blocks),
                        };
                        if !once && Instant::now() >= end {
                            break;
                        }
                        let off = cfg.offset + block * bs;
                        let r = match dir {
                            Dir::Read => f.read_exact_at(buf.get_mut(), off),
                            Dir::Write => f.write_all_at(buf.get(), off),
                        };
                        match r {
                            Ok(()) => ops += 1,
                            Err(e) => {
                                errors += 1;
                                first.get_or_insert_with(|| format!("at {off}: {e}"));
                                break;
                            }
                        }
                    }
                    (ops, errors, first, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        start = Instant::now();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, 1, Some("worker panicked".into()), Instant::now()))
            })
            .collect()
    });
    let last = results.iter().map(|r| r.3).max().unwrap_or(start);
    Outcome {
        ops: results.iter().map(|r| r.0).sum(),
        secs: last.duration_since(start).as_secs_f64(),
        errors: results.iter().map(|r| r.1).sum(),
        first_error: results.iter().find_map(|r| r.2.clone()),
    }
}

/// The verify pattern of the 8-byte word at device offset `off`.
fn pattern_word(off: u64) -> u64 {
    (off ^ 0x7665_7269_6679_2121).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn fill_pattern(b: &mut [u8], dev_off: u64) {
    for (i, c) in b.chunks_mut(8).enumerate() {
        let v = pattern_word(dev_off + 8 * i as u64).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

/// Writes the pattern with `wbs` requests and reads it back with `rbs`
/// requests over `len` bytes at `base`; returns mismatching read blocks.
fn verify_pass(f: &File, base: u64, len: u64, wbs: u64, rbs: u64) -> Result<u64, String> {
    let mut w = Aligned::new(wbs as usize);
    let mut off = 0;
    while off < len {
        fill_pattern(w.get_mut(), base + off);
        f.write_all_at(w.get(), base + off)
            .map_err(|e| format!("write at {}: {e}", base + off))?;
        off += wbs;
    }
    f.sync_all().map_err(|e| format!("fsync: {e}"))?;
    let mut r = Aligned::new(rbs as usize);
    let mut want = vec![0u8; rbs as usize];
    let mut bad = 0;
    let mut off = 0;
    while off < len {
        f.read_exact_at(r.get_mut(), base + off)
            .map_err(|e| format!("read at {}: {e}", base + off))?;
        fill_pattern(&mut want, base + off);
        if r.get() != want.as_slice() {
            bad += 1;
        }
        off += rbs;
    }
    Ok(bad)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("blkload: {e}");
            std::process::exit(2);
        }
    };
    let f = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_DIRECT)
        .open(&cfg.dev)
    {
        Ok(f) => f,
        Err(e) => {
            println!("BLKLOAD done status=FAIL open {}: {e}", cfg.dev);
            std::process::exit(1);
        }
    };
    println!(
        "BLKLOAD start dev={} offset={} region={} seconds={} qd={:?}",
        cfg.dev, cfg.offset, cfg.region, cfg.seconds, cfg.depths
    );
    let dur = Duration::from_secs_f64(cfg.seconds);
    let mut ok = true;
    let wants = |t: &str| cfg.tests.iter().any(|x| x == t);
    let mut report = |name: &str, bs: u64, qd: usize, o: Outcome| {
        ok &= o.errors == 0;
        println!("{}", o.line(name, bs, qd));
        if let Some(e) = &o.first_error {
            println!("BLKLOAD error test={name} qd={qd} {e}");
        }
    };
    if wants("prefill") {
        let o = run(&f, &cfg, Dir::Write, Pattern::Seq, 1, dur, true);
        report("prefill", SEQ_BS, 1, o);
    }
    for &qd in &cfg.depths {
        for (name, dir, pat, bs) in [
            ("seq-read", Dir::Read, Pattern::Seq, SEQ_BS),
            ("seq-write", Dir::Write, Pattern::Seq, SEQ_BS),
            ("rand-read", Dir::Read, Pattern::Rand, RAND_BS),
            ("rand-write", Dir::Write, Pattern::Rand, RAND_BS),
        ] {
            if wants(name) {
                let o = run(&f, &cfg, dir, pat, qd, dur, false);
                report(name, bs, qd, o);
            }
        }
    }
    if wants("verify") {
        let t = Instant::now();
        let a = verify_pass(&f, cfg.offset, VERIFY_BYTES, RAND_BS, SEQ_BS);
        let b = verify_pass(&f, cfg.offset + VERIFY_BYTES, VERIFY_BYTES, SEQ_BS, RAND_BS);
        let line = match (a, b) {
            (Ok(0), Ok(0)) => "result=ok mismatches=0".to_string(),
            (Ok(x), Ok(y)) => format!("result=FAIL mismatches={}", x + y),
            (Err(e), _) | (_, Err(e)) => format!("result=FAIL error={e:?}"),
        };
        ok &= line.starts_with("result=ok");
        println!(
            "BLKLOAD verify {line} bytes={} secs={:.3}",
            2 * VERIFY_BYTES,
            t.elapsed().as_secs_f64()
        );
    }
    println!("BLKLOAD done status={}", if ok { "ok" } else { "FAIL" });
    std::process::exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn defaults_and_options() {
        let c = parse_args(&args("/dev/xvdb")).unwrap();
        assert_eq!(c.dev, "/dev/xvdb");
        assert_eq!((c.offset, c.region, c.seconds), (MIB, 64 * MIB, 5.0));
        assert_eq!(c.depths, vec![1, 32]);
        assert_eq!(c.tests.len(), ALL_TESTS.len());
        let c = parse_args(&args(
            "--seconds 1.5 /dev/vda --region-mib 16 --offset-mib 0 --qd 4 --tests rand-read,verify",
        ))
        .unwrap();
        assert_eq!((c.offset, c.region, c.seconds), (0, 16 * MIB, 1.5));
        assert_eq!(c.depths, vec![4]);
        assert_eq!(c.tests, vec!["rand-read", "verify"]);
    }

    #[test]
    fn rejects_bad_arguments() {
        for a in [
            "",
            "/dev/x --region-mib 4",
            "/dev/x --seconds 0",
            "/dev/x --qd 0",
            "/dev/x --qd 1,x",
            "/dev/x --tests fio",
            "/dev/x --bogus 1",
            "/dev/x /dev/y",
            "/dev/x --seconds",
        ] {
            assert!(parse_args(&args(a)).is_err(), "{a:?} accepted");
        }
    }

    #[test]
    fn outcome_line_is_parseable() {
        let o = Outcome {
            ops: 500,
            secs: 2.0,
            errors: 0,
            first_error: None,
        };
        assert_eq!(
            o.line("rand-read", 4096, 32),
            "BLKLOAD test=rand-read bs=4096 qd=32 ops=500 secs=2.000 mbps=1.02 iops=250.0 errors=0"
        );
    }

    #[test]
    fn aligned_buffers_and_patterns() {
        for len in [4096usize, 1 << 20] {
            let mut a = Aligned::new(len);
            assert_eq!(a.get().as_ptr() as usize % ALIGN, 0);
            assert_eq!(a.get_mut().len(), len);
        }
        let mut x = vec![0u8; 64];
        let mut y = vec![0u8; 32];
        fill_pattern(&mut x, 4096);
        fill_pattern(&mut y, 4096 + 32);
        assert_eq!(&x[32..], &y[..]);
        fill_noise(&mut x, 1);
        assert!(x.iter().any(|&b| b != 0));
    }

    #[test]
    fn rng_covers_range() {
        let mut r = Rng::new(7);
        let mut seen = [false; 16];
        for _ in 0..1000 {
            seen[r.below(16) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn runs_against_a_file() {
        // Plain file without O_DIRECT: exercises the worker and verify logic.
        let p = std::env::temp_dir().join(format!("blkload-test-{}", std::process::id()));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(9 * MIB).unwrap();
        let cfg = parse_args(&args(&format!(
            "{} --offset-mib 1 --region-mib 8",
            p.display()
        )))
        .unwrap();
        let o = run(
            &f,
            &cfg,
            Dir::Write,
            Pattern::Seq,
            2,
            Duration::from_secs(1),
            true,
        );
        assert_eq!((o.ops, o.errors), (8, 0));
        let o = run(
            &f,
            &cfg,
            Dir::Read,
            Pattern::Rand,
            4,
            Duration::from_millis(50),
            false,
        );
        assert!(o.ops > 0 && o.errors == 0);
        assert_eq!(verify_pass(&f, MIB, VERIFY_BYTES, RAND_BS, SEQ_BS), Ok(0));
        assert_eq!(
            verify_pass(&f, MIB + VERIFY_BYTES, VERIFY_BYTES, SEQ_BS, RAND_BS),
            Ok(0)
        );
        drop(f);
        let _ = std::fs::remove_file(&p);
    }
}
