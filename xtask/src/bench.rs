//! `cargo xtask bench blk`: storage-domain against a Linux xen-blkback
//! driver domain, the same guest workload on the same kind of disk, both
//! measured in the same invocation; results (with the command) in
//! `bench/blk.md`.
//!
//! The two systems are `tests/bench/blk-ours.toml` and
//! `tests/bench/blk-linux.toml`: dom1 owns a passed-through virtio-blk disk
//! (storage-domain, or a Linux domU with virtio_blk + xen-blkback), dom2 is
//! a Linux guest that runs `tests/blkload` on its xvdb. Each system runs
//! once through `cargo xtask qemu --check` in a child process that holds
//! the host's qemu lock (`flock /tmp/qemu.lock`; only one qemu at a time
//! on this 2-core host). Then the storage domain is run again with less
//! memory (`--mem`, default 8, 4 and 2 MiB) until the workload no longer
//! completes.
//!
//! Figures come only from the console logs of those runs
//! (`target/logs/<name>.log`): blkload's `BLKLOAD ...` lines, dom0's
//! `=== DOM0: bench ...` lines and Xen's own lines; file sizes from the
//! files booted. Nothing is carried over from earlier invocations.

use crate::manifest::Manifest;
use crate::util::{Paths, cargo, run, step};
use anyhow::{Context, Result, ensure};
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Target of the static Linux programs the guests run.
pub const MUSL_TARGET: &str = "aarch64-unknown-linux-musl";
/// The host-wide lock every qemu run holds.
pub const QEMU_LOCK: &str = "/tmp/qemu.lock";
const OURS: &str = "tests/bench/blk-ours.toml";
const LINUX: &str = "tests/bench/blk-linux.toml";
const REPORT: &str = "bench/blk.md";
const BEGIN: &str = "<!-- bench:blk:begin (everything up to bench:blk:end is written by `cargo xtask bench blk`) -->";
const END: &str = "<!-- bench:blk:end -->";
/// Upper bound for one child run (build, calibration, lock wait, qemu).
const RUN_TIMEOUT: Duration = Duration::from_secs(3 * 3600);
/// The issue's goals.
const GOAL_RATIO: f64 = 1.2;
const GOAL_MEM_MB: u32 = 8;
const GOAL_IMAGE: u64 = 256 * 1024;

/// Builds workspace crates for `aarch64-unknown-linux-musl` (release,
/// static, linked by rust-lld with Rust's self-contained musl); returns
/// (name, binary) for each.
pub fn build_programs(paths: &Paths, names: &[String]) -> Result<Vec<(String, PathBuf)>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    ensure_musl_target(paths)?;
    let env = MUSL_TARGET.to_uppercase().replace('-', "_");
    let mut out = Vec::new();
    for n in names {
        let mut c = cargo();
        c.current_dir(&paths.root)
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                MUSL_TARGET,
                "-p",
                n,
            ])
            .env(format!("CARGO_TARGET_{env}_LINKER"), "rust-lld")
            .env(
                format!("CARGO_TARGET_{env}_RUSTFLAGS"),
                "-C link-self-contained=yes -C strip=symbols",
            );
        run(&mut c).with_context(|| format!("building {n} for {MUSL_TARGET}"))?;
        let bin = paths.target.join(MUSL_TARGET).join("release").join(n);
        ensure!(bin.is_file(), "{} missing after the build", bin.display());
        out.push((n.clone(), bin));
    }
    Ok(out)
}

/// Installs the musl target's standard library with rustup when missing.
fn ensure_musl_target(paths: &Paths) -> Result<()> {
    let out = Command::new("rustc")
        .current_dir(&paths.root)
        .args(["--print", "target-libdir", "--target", MUSL_TARGET])
        .output()
        .context("running rustc")?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && dir.join("self-contained").is_dir() {
        return Ok(());
    }
    step(&format!(
        "installing the {MUSL_TARGET} standard library (rustup)"
    ));
    run(Command::new("rustup")
        .current_dir(&paths.root)
        .args(["target", "add", MUSL_TARGET]))
}

/// Options of `cargo xtask bench blk`.
#[derive(Debug, Clone)]
pub struct BlkOpts {
    /// Seconds per blkload test.
    pub seconds: f64,
    /// Storage-domain memory sizes (MiB) to try after the main run, in
    /// this order; the probe stops at the first that fails.
    pub mems: Vec<u32>,
    /// Do not take the qemu lock (the caller holds it).
    pub no_lock: bool,
    /// The xtask binary the runs use (a private copy, see [`blk`]).
    pub exe: PathBuf,
}

impl Default for BlkOpts {
    fn default() -> Self {
        BlkOpts {
            seconds: 5.0,
            mems: vec![8, 4, 2],
            no_lock: false,
            exe: PathBuf::new(),
        }
    }
}

/// One blkload figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub ops: u64,
    pub secs: f64,
    pub mbps: f64,
    pub iops: f64,
    pub errors: u64,
}

/// What one run's log says.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// The child `cargo xtask qemu --check` succeeded.
    pub checks_ok: bool,
    /// (test, qd) -> figure.
    pub figures: BTreeMap<(String, u32), Figure>,
    pub verify: Option<bool>,
    pub done: Option<bool>,
    /// Log timestamps (s since qemu start).
    pub t_domains: Option<f64>,
    pub t_dom0_setup: Option<f64>,
    pub t_attach: Option<f64>,
    pub t_initwait: Option<f64>,
    pub wall_s: f64,
    /// Waiting for the qemu lock before the run.
    pub lock_wait_s: f64,
    /// Last log timestamp: time in qemu.
    pub qemu_s: Option<f64>,
    /// Host 1-minute load average during the run: (mean, max).
    pub load: (f64, f64),
    pub log: PathBuf,
    pub first_error: Option<String>,
    /// Xen's panic message (e.g. a domain it could not build).
    pub xen_panic: Option<String>,
}

/// The table's rows: label, blkload test, queue depth, IOPS (else MB/s).
pub const FIGURES: &[(&str, &str, u32, bool)] = &[
    ("sequential read, 1 MiB, QD1 (MB/s)", "seq-read", 1, false),
    ("sequential write, 1 MiB, QD1 (MB/s)", "seq-write", 1, false),
    ("sequential read, 1 MiB, QD32 (MB/s)", "seq-read", 32, false),
    (
        "sequential write, 1 MiB, QD32 (MB/s)",
        "seq-write",
        32,
        false,
    ),
    ("random read, 4 KiB, QD1 (IOPS)", "rand-read", 1, true),
    ("random write, 4 KiB, QD1 (IOPS)", "rand-write", 1, true),
    ("random read, 4 KiB, QD32 (IOPS)", "rand-read", 32, true),
    ("random write, 4 KiB, QD32 (IOPS)", "rand-write", 32, true),
];

impl Run {
    fn value(&self, test: &str, qd: u32, iops: bool) -> Option<f64> {
        self.figures
            .get(&(test.to_string(), qd))
            .filter(|f| f.errors == 0)
            .map(|f| if iops { f.iops } else { f.mbps })
    }

    /// The workload completed: every figure without errors, verify ok.
    pub fn passed(&self) -> bool {
        self.checks_ok
            && self.done == Some(true)
            && self.verify == Some(true)
            && FIGURES
                .iter()
                .all(|(_, t, qd, iops)| self.value(t, *qd, *iops).is_some())
    }

    /// Domains started (Xen freed its init memory right after unpausing
    /// them) -> the backend's InitWait on the guest's vbd, seen by dom0.
    pub fn boot_to_initwait(&self) -> Option<f64> {
        Some(self.t_initwait? - self.t_domains?)
    }

    /// Why a run did not pass, in a few words.
    pub fn failure(&self) -> String {
        if self.passed() {
            return "passed".into();
        }
        let mut why = Vec::new();
        if !self.checks_ok {
            why.push("scenario checks failed".to_string());
        }
        match self.done {
            None => why.push("blkload never finished".into()),
            Some(false) => why.push("blkload reported FAIL".into()),
            Some(true) => {}
        }
        if self.verify == Some(false) {
            why.push("verify FAIL".into());
        }
        if let Some(e) = &self.first_error {
            why.push(format!("first error: {e}"));
        }
        if let Some(p) = &self.xen_panic {
            why.push(format!("Xen panic: {p}"));
        }
        why.join("; ")
    }
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// Parses a run's console log.
pub fn parse_run(lines: &[(f64, String)]) -> Run {
    let fig = re(
        r"BLKLOAD test=(\S+) bs=\d+ qd=(\d+) ops=(\d+) secs=([\d.]+) mbps=([\d.]+) iops=([\d.]+) errors=(\d+)",
    );
    let verify = re(r"BLKLOAD verify result=(ok|FAIL)");
    let done = re(r"BLKLOAD done status=(ok|FAIL)");
    let err = re(r"BLKLOAD error (.*)");
    let domains = re(r"\(XEN\) Freed \d+kB init memory");
    let mut r = Run::default();
    let first = |re: &Regex| lines.iter().find(|(_, l)| re.is_match(l)).map(|(t, _)| *t);
    r.t_domains = first(&domains);
    r.t_dom0_setup = first(&re(r"^=== DOM0 SETUP DONE"));
    r.t_attach = first(&re(r"^=== DOM0: bench attach start"));
    r.t_initwait = first(&re(r"^=== DOM0: bench INITWAIT"));
    r.xen_panic = xen_panic(lines);
    for (_, l) in lines {
        if let Some(c) = fig.captures(l) {
            let f = Figure {
                ops: c[3].parse().unwrap_or(0),
                secs: c[4].parse().unwrap_or(0.0),
                mbps: c[5].parse().unwrap_or(0.0),
                iops: c[6].parse().unwrap_or(0.0),
                errors: c[7].parse().unwrap_or(u64::MAX),
            };
            if &c[1] != "prefill" {
                r.figures
                    .insert((c[1].to_string(), c[2].parse().unwrap_or(0)), f);
            }
        } else if let Some(c) = verify.captures(l) {
            r.verify = Some(&c[1] == "ok");
        } else if let Some(c) = done.captures(l) {
            r.done = Some(&c[1] == "ok");
        } else if let Some(c) = err.captures(l)
            && r.first_error.is_none()
        {
            r.first_error = Some(c[1].trim().to_string());
        }
    }
    r
}

/// The manifest text of a variant: new `name`, storage memory (the line
/// marked `# bench:mem`) and seconds per test (`secs=` on the line marked
/// `# bench:secs`). Fails when a marked line is missing.
pub fn variant(text: &str, name: &str, mem_mb: Option<u32>, seconds: f64) -> Result<String> {
    let name_re = re(r#"(?m)^name = "[^"]*""#);
    ensure!(name_re.is_match(text), "no `name = ...` line");
    let mut t = name_re
        .replace(text, format!("name = \"{name}\"").as_str())
        .into_owned();
    if let Some(mb) = mem_mb {
        let mem_re = re(r"(?m)^memory_mb = \d+ # bench:mem$");
        ensure!(mem_re.is_match(&t), "no `memory_mb = N # bench:mem` line");
        t = mem_re
            .replace(&t, format!("memory_mb = {mb} # bench:mem").as_str())
            .into_owned();
    }
    let secs_re = re(r"(?m)^(bootargs = .*)secs=[0-9.]+(.*# bench:secs)$");
    ensure!(
        secs_re.is_match(&t),
        "no `secs=` bootargs line marked bench:secs"
    );
    t = secs_re
        .replace_all(&t, format!("${{1}}secs={seconds}${{2}}").as_str())
        .into_owned();
    Ok(t)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// Writes the variant manifest under target/bench/, runs it through a
/// child `cargo xtask qemu --check` under the qemu lock, parses its log.
fn run_variant(
    paths: &Paths,
    base: &str,
    name: &str,
    mem_mb: Option<u32>,
    o: &BlkOpts,
) -> Result<Run> {
    let src = paths.root.join(base);
    let text =
        std::fs::read_to_string(&src).with_context(|| format!("reading {}", src.display()))?;
    let text = variant(&text, name, mem_mb, o.seconds)?;
    let dir = paths.target.join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, &text)?;
    let m = Manifest::load(&path)?;
    ensure!(m.name == name, "variant manifest has name {}", m.name);
    // Only this invocation's logs count: remove any left from earlier runs.
    let log = paths.logs.join(format!("{name}.log"));
    let cal_log = paths.logs.join(format!("{name}-calibrate.log"));
    for f in [&log, &cal_log] {
        let _ = std::fs::remove_file(f);
    }
    let mut c = Command::new(&o.exe);
    c.current_dir(&paths.root)
        .args(["qemu", "--check", "--scenario"])
        .arg(&path);
    step(&format!(
        "bench run {name}{}: {}",
        mem_mb
            .map(|m| format!(" (storage {m} MiB)"))
            .unwrap_or_default(),
        if o.no_lock {
            "no lock (--no-lock)".to_string()
        } else {
            format!("waiting for {QEMU_LOCK}")
        }
    ));
    let t_lock = Instant::now();
    let lock = if o.no_lock {
        None
    } else {
        Some(QemuLock::acquire()?)
    };
    let lock_wait_s = t_lock.elapsed().as_secs_f64();
    let sampler = LoadSampler::start();
    let t0 = Instant::now();
    let status = crate::util::run_with_timeout(&mut c, RUN_TIMEOUT)?;
    let wall_s = t0.elapsed().as_secs_f64();
    let load = sampler.stop();
    drop(lock);
    let lines = match std::fs::read_to_string(&log) {
        Ok(t) => crate::qemu::parse_log(&t),
        Err(_) => Vec::new(),
    };
    let mut r = parse_run(&lines);
    r.checks_ok = status.is_some_and(|s| s.success());
    r.wall_s = wall_s;
    r.lock_wait_s = lock_wait_s;
    r.qemu_s = lines.last().map(|(t, _)| *t);
    r.load = load;
    if r.xen_panic.is_none() {
        // A domain Xen could not build shows up in the calibration boot.
        let cal = std::fs::read_to_string(&cal_log).unwrap_or_default();
        r.xen_panic = xen_panic(&crate::qemu::parse_log(&cal));
    }
    // A run that ended in its calibration boot has only that log.
    r.log = if !log.exists() && cal_log.exists() {
        cal_log
    } else {
        log
    };
    step(&format!(
        "bench run {name}: {} in {wall_s:.0} s (after {lock_wait_s:.0} s waiting for the lock)",
        r.failure()
    ));
    Ok(r)
}

/// Xen's panic reason (the line after `Panic on CPU n:`), if any.
fn xen_panic(lines: &[(f64, String)]) -> Option<String> {
    let i = lines
        .iter()
        .position(|(_, l)| l.contains("(XEN) Panic on CPU"))?;
    lines
        .get(i + 1)
        .map(|(_, l)| l.trim_start_matches("(XEN)").trim().to_string())
}

/// The host-wide qemu lock, held by a `flock` child for as long as this
/// value lives (its stdin is our pipe: when we drop it, or die, the
/// child's `cat` sees EOF and the lock is released).
struct QemuLock {
    child: std::process::Child,
}

impl QemuLock {
    fn acquire() -> Result<QemuLock> {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = Command::new("flock")
            .args([QEMU_LOCK, "sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running flock (util-linux)")?;
        let mut line = String::new();
        let out = child.stdout.take().context("flock stdout")?;
        std::io::BufReader::new(out).read_line(&mut line)?;
        ensure!(line.trim() == "locked", "flock {QEMU_LOCK} failed");
        Ok(QemuLock { child })
    }
}

impl Drop for QemuLock {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Samples the host's 1-minute load average every 5 s during a run.
struct LoadSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl LoadSampler {
    fn start() -> LoadSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut v = Vec::new();
            let mut k = 0u32;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if k.is_multiple_of(50)
                    && let Some(x) = loadavg()
                        .split_whitespace()
                        .next()
                        .and_then(|x| x.parse().ok())
                {
                    v.push(x);
                }
                k += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            v
        });
        LoadSampler { stop, thread }
    }

    /// (mean, max) of the samples.
    fn stop(self) -> (f64, f64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let v = self.thread.join().unwrap_or_default();
        if v.is_empty() {
            return (0.0, 0.0);
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, v.iter().copied().fold(0.0, f64::max))
    }
}

/// Result of the storage-domain memory probe: (MiB, run).
pub type MemProbe = Vec<(u32, Run)>;

/// `cargo xtask bench blk`. Returns whether both main runs passed.
pub fn blk(paths: &Paths, o: &BlkOpts, command: &str) -> Result<bool> {
    let t0 = Instant::now();
    ensure!(
        o.seconds > 0.0 && o.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    let ours_m = Manifest::load(&paths.root.join(OURS))?;
    let main_mem = ours_m
        .domu
        .iter()
        .find(|d| d.image.crate_name() == Some("storage-domain"))
        .map(|d| d.memory_mb)
        .context("blk-ours.toml has no storage-domain")?;
    let started = crate::util::utc_stamp();
    // The runs use a copy of this very binary: a `cargo build` elsewhere
    // during the benchmark must not swap xtask under it.
    let dir = paths.target.join("bench");
    std::fs::create_dir_all(&dir)?;
    let exe = dir.join(format!("xtask.{}", std::process::id()));
    std::fs::copy("/proc/self/exe", &exe).context("copying the xtask binary")?;
    let o = &BlkOpts {
        exe: exe.clone(),
        ..o.clone()
    };
    let result = blk_runs(paths, o, command, &started, main_mem, t0);
    let _ = std::fs::remove_file(&exe);
    result
}

fn blk_runs(
    paths: &Paths,
    o: &BlkOpts,
    command: &str,
    started: &str,
    main_mem: u32,
    t0: Instant,
) -> Result<bool> {
    let ours = run_variant(paths, OURS, "bench-blk-ours", None, o)?;
    let image = std::fs::metadata(crate::images::image_path(paths, "storage-domain"))
        .map(|m| m.len())
        .ok();
    let linux = run_variant(paths, LINUX, "bench-blk-linux", None, o)?;
    let linux_sizes = linux_sizes(paths);
    let mut probe: MemProbe = vec![(main_mem, ours.clone())];
    if ours.passed() {
        for &mb in &o.mems {
            ensure!(
                mb.is_power_of_two(),
                "--mem {mb}: passthrough needs power-of-two MiB"
            );
            let r = run_variant(paths, OURS, &format!("bench-blk-ours-m{mb}"), Some(mb), o)?;
            let ok = r.passed();
            probe.push((mb, r));
            if !ok {
                break;
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let table = render(&Report {
        ours: &ours,
        linux: &linux,
        probe: &probe,
        image,
        linux_sizes,
        command,
        started,
        seconds: o.seconds,
        wall_s: wall,
    });
    println!("{table}");
    let path = paths.root.join(REPORT);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::create_dir_all(path.parent().context("report path")?)?;
    std::fs::write(&path, splice(&old, &table))?;
    step(&format!(
        "wrote {} (bench wall time {wall:.0} s)",
        path.display()
    ));
    Ok(ours.passed() && linux.passed())
}

/// Sizes of what the Linux driver domain boots: (kernel Image, its
/// initramfs), from the files of the run.
fn linux_sizes(paths: &Paths) -> Option<(u64, u64)> {
    let world = paths.world.join("root/boot");
    let kernel = std::fs::read_dir(&world)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))?
        .metadata()
        .ok()?
        .len();
    let rd = std::fs::metadata(paths.img().join("guest-bench-blk-linux-driver.cpio.gz"))
        .ok()?
        .len();
    Some((kernel, rd))
}

/// Replaces the generated part of the report (between the markers), or
/// appends it.
pub fn splice(old: &str, generated: &str) -> String {
    let block = format!("{BEGIN}\n{generated}\n{END}\n");
    match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(b)) if b > a => {
            let tail = &old[b + END.len()..];
            format!(
                "{}{block}{}",
                &old[..a],
                tail.strip_prefix('\n').unwrap_or(tail)
            )
        }
        _ if old.trim().is_empty() => format!("# Block backend benchmark\n\n{block}"),
        _ => format!("{}\n{block}", old.trim_end()),
    }
}

/// Everything the generated section shows.
pub struct Report<'a> {
    pub ours: &'a Run,
    pub linux: &'a Run,
    pub probe: &'a [(u32, Run)],
    pub image: Option<u64>,
    pub linux_sizes: Option<(u64, u64)>,
    pub command: &'a str,
    pub started: &'a str,
    pub seconds: f64,
    pub wall_s: f64,
}

fn num(v: Option<f64>, iops: bool) -> String {
    match v {
        Some(x) if iops => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
        None => "—".into(),
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= GOAL_RATIO => format!("**{r:.2}** (goal ≥ {GOAL_RATIO}: met)"),
        Some(r) => format!("{r:.2} (goal ≥ {GOAL_RATIO}: not met)"),
        None => "—".into(),
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.1} s"))
}

/// The generated Markdown (also printed to stdout).
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let (ours, linux) = (r.ours, r.linux);
    let mut s = String::new();
    let run_line = |x: &Run| {
        format!(
            "{:.0} s ({}in qemu; {:.0} s waiting for the lock before), host 1-min load average during the run mean {:.2}, max {:.2}",
            x.wall_s,
            x.qemu_s.map_or(String::new(), |q| format!("{q:.0} s ")),
            x.lock_wait_s,
            x.load.0,
            x.load.1
        )
    };
    let _ = writeln!(
        s,
        "Measured {} UTC by\n\n    {}\n\n{} s per test; bench wall time {:.0} s. \
         storage-domain run: {}. Linux run: {}. \
         (qemu alone keeps the load near 2 on this 2-core host: more means other work competed.)\n",
        r.started,
        r.command,
        r.seconds,
        r.wall_s,
        run_line(ours),
        run_line(linux)
    );
    let _ = writeln!(
        s,
        "| figure | storage-domain | Linux xen-blkback | ratio (ours / Linux) |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for (label, test, qd, iops) in FIGURES {
        let a = ours.value(test, *qd, *iops);
        let b = linux.value(test, *qd, *iops);
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} |",
            num(a, *iops),
            num(b, *iops),
            ratio_cell(ratio)
        );
    }
    let (ba, bb) = (ours.boot_to_initwait(), linux.boot_to_initwait());
    let boot_ratio = match (ba, bb) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };
    let _ = writeln!(
        s,
        "| boot: domains started → backend InitWait (s; ratio = Linux / ours) | {} | {} | {} |",
        secs(ba),
        secs(bb),
        ratio_cell(boot_ratio)
    );
    let xs = |x: &Run| match (x.t_initwait, x.t_dom0_setup) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let _ = writeln!(
        s,
        "| of which after dom0's xenstore was up (s) | {} | {} | |",
        secs(xs(ours)),
        secs(xs(linux))
    );
    let lx = r.linux_sizes.map_or("—".into(), |(k, i)| {
        format!("kernel Image {k} B + initramfs {i} B (gzip)")
    });
    let img = r.image.map_or("—".into(), |b| {
        format!(
            "{b} B ({:.1} KiB; goal ≤ 256 KiB: {})",
            b as f64 / 1024.0,
            if b <= GOAL_IMAGE { "met" } else { "not met" }
        )
    });
    let _ = writeln!(s, "| image size | {img} | {lx} | |");
    let smallest = r
        .probe
        .iter()
        .filter(|(_, run)| run.passed())
        .map(|(mb, _)| *mb)
        .min();
    let failed_at = r.probe.iter().find(|(_, run)| !run.passed());
    let mem = match smallest {
        Some(mb) => format!(
            "{mb} MiB{} (goal ≤ {GOAL_MEM_MB} MiB: {})",
            failed_at.map_or(" (smallest tried)".into(), |(f, run)| format!(
                "; {f} MiB failed: {}",
                run.failure()
            )),
            if mb <= GOAL_MEM_MB { "met" } else { "not met" }
        ),
        None => "no size passed".into(),
    };
    let _ = writeln!(
        s,
        "| smallest memory that passes the workload | {mem} | not searched (256 MiB configured) | |"
    );
    let _ = writeln!(
        s,
        "| workload result | {} | {} | |",
        ours.failure(),
        linux.failure()
    );
    let _ = writeln!(
        s,
        "\nStorage-domain memory probe (same workload; passthrough needs power-of-two MiB):\n"
    );
    let _ = writeln!(
        s,
        "| storage-domain memory | result | seq read QD1 MB/s | seq write QD1 MB/s | rand read QD32 IOPS | rand write QD32 IOPS | log |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (mb, run) in r.probe {
        let _ = writeln!(
            s,
            "| {mb} MiB | {} | {} | {} | {} | {} | `{}` |",
            run.failure(),
            num(run.value("seq-read", 1, false), false),
            num(run.value("seq-write", 1, false), false),
            num(run.value("rand-read", 32, true), true),
            num(run.value("rand-write", 32, true), true),
            log_name(&run.log)
        );
    }
    let _ = writeln!(
        s,
        "\nLogs: `{}` (storage-domain), `{}` (Linux).",
        log_name(&ours.log),
        log_name(&linux.log)
    );
    s
}

fn log_name(p: &Path) -> String {
    p.file_name()
        .map(|f| format!("target/logs/{}", f.to_string_lossy()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn bench_manifests_parse_and_vary() {
        for f in [OURS, LINUX] {
            let p = root().join(f);
            let text = std::fs::read_to_string(&p).unwrap();
            let m = Manifest::parse(&text, &p).unwrap();
            for d in &m.domu {
                if let Some(s) = &d.script {
                    assert!(root().join(s).is_file(), "{f}: missing {}", s.display());
                }
            }
            let mem = if f == OURS { Some(4) } else { None };
            let v = variant(&text, "bench-x", mem, 1.5).unwrap();
            let m = Manifest::parse(&v, &p).unwrap();
            assert_eq!(m.name, "bench-x");
            let guest = m.domu.iter().find(|d| d.name == "guest").unwrap();
            assert!(
                guest.bootargs().contains("secs=1.5"),
                "{}",
                guest.bootargs()
            );
            assert_eq!(guest.programs, vec!["blkload".to_string()]);
            if f == OURS {
                assert_eq!(m.domu[0].memory_mb, 4);
            } else {
                assert!(m.domu[0].xenstore_tools);
                assert!(variant(&text, "y", Some(4), 1.0).is_err());
            }
        }
    }

    fn sample(iops_scale: f64, initwait: f64) -> Vec<(f64, String)> {
        let mut v = vec![
            (3.9, "(XEN) Freed 368kB init memory.".to_string()),
            (
                20.0,
                "=== DOM0 SETUP DONE: uptime 10.5 0.00 ===".to_string(),
            ),
            (
                20.5,
                "=== DOM0: bench attach start backend dom1 (storage) target disk at 11.0"
                    .to_string(),
            ),
            (
                initwait,
                "=== DOM0: bench INITWAIT state=2 at 12.0".to_string(),
            ),
        ];
        for (_, t, qd, _) in FIGURES {
            v.push((
                40.0,
                format!(
                    "(XEN) DOM2: BLKLOAD test={t} bs=4096 qd={qd} ops=100 secs=5.000 mbps={:.2} iops={:.1} errors=0",
                    2.0 * iops_scale,
                    20.0 * iops_scale
                ),
            ));
        }
        v.push((
            90.0,
            "(XEN) DOM2: BLKLOAD verify result=ok mismatches=0 bytes=8388608 secs=1.0".into(),
        ));
        v.push((91.0, "(XEN) DOM2: BLKLOAD done status=ok".into()));
        v
    }

    #[test]
    fn parses_and_renders() {
        let mut a = parse_run(&sample(1.5, 21.9));
        let mut b = parse_run(&sample(1.0, 33.9));
        a.checks_ok = true;
        b.checks_ok = true;
        assert!(a.passed() && b.passed());
        assert_eq!(a.figures.len(), FIGURES.len());
        assert!((a.boot_to_initwait().unwrap() - 18.0).abs() < 1e-9);
        let mut small = parse_run(&sample(1.0, 30.0));
        small.checks_ok = true;
        small.done = Some(false);
        let probe = vec![(16, a.clone()), (8, a.clone()), (4, small)];
        let text = render(&Report {
            ours: &a,
            linux: &b,
            probe: &probe,
            image: Some(110_000),
            linux_sizes: Some((30_000_000, 5_000_000)),
            command: "cargo xtask bench blk",
            started: "20261122-050000",
            seconds: 5.0,
            wall_s: 600.0,
        });
        assert!(
            text.contains(
                "| random read, 4 KiB, QD32 (IOPS) | 30 | 20 | **1.50** (goal ≥ 1.2: met) |"
            ),
            "{text}"
        );
        assert!(text.contains("| 18.0 s | 30.0 s | **1.67**"), "{text}");
        assert!(
            text.contains("8 MiB; 4 MiB failed: blkload reported FAIL (goal ≤ 8 MiB: met)"),
            "{text}"
        );
        assert!(text.contains("107.4 KiB; goal ≤ 256 KiB: met"), "{text}");
        // An errored figure is not a figure.
        let mut lines = sample(1.0, 30.0);
        lines[4].1 = lines[4].1.replace("errors=0", "errors=1");
        let c = parse_run(&lines);
        assert_eq!(c.value("seq-read", 1, false), None);
    }

    #[test]
    fn xen_panic_reason() {
        let lines: Vec<(f64, String)> = [
            "(XEN) ****************************************",
            "(XEN) Panic on CPU 0:",
            "(XEN) Unable to find suitable location for dtb+initrd",
        ]
        .iter()
        .map(|l| (0.5, l.to_string()))
        .collect();
        assert_eq!(
            xen_panic(&lines).as_deref(),
            Some("Unable to find suitable location for dtb+initrd")
        );
        assert_eq!(xen_panic(&lines[..1]), None);
    }

    #[test]
    fn splices_between_markers() {
        let s = splice("", "T1");
        assert!(s.starts_with("# Block backend benchmark") && s.contains("T1"));
        let s2 = splice(&format!("intro\n{s}outro\n"), "T2");
        assert!(s2.contains("T2") && !s2.contains("T1"));
        assert!(s2.starts_with("intro\n") && s2.ends_with("outro\n"));
        assert_eq!(splice(&s2, "T2"), s2);
    }
}
