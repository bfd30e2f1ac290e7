//! `cargo xtask`: builds the service-domain images and runs them under Xen
//! in qemu, end to end, from a plain Debian host.
//!
//! ```text
//! cargo xtask setup [--refresh]      host preparation (qemu, tools) + fetch
//! cargo xtask build [--release]      domain crates -> target/images/<crate>.img
//! cargo xtask fetch [--refresh]      Debian trixie arm64 Xen world -> target/xen-world
//! cargo xtask initramfs [--scenario NAME]
//!                                    dom0 (and Linux guest) initramfs -> target/xen-world/img
//! cargo xtask qemu [--scenario NAME] [--check] [--timeout S] [--arch aarch64|x86_64] [--dry-run]
//!                                    boot Xen + dom0 + the scenario's domUs
//! cargo xtask check [--scenario NAME] [--log FILE]
//!                                    re-evaluate a scenario's checks on a saved log
//! cargo xtask test [--no-qemu]       gates, host unit tests, then every scenario in check mode
//! cargo xtask audit [--no-probe]     per-image LOC, deps+licenses, unsafe, sizes -> target/audit.json
//! cargo xtask bench blk [--seconds S] [--mem 8,4,2] [--no-lock]
//!                                    storage-domain vs Linux xen-blkback -> bench/blk.md
//! cargo xtask fuzz [TARGET] [--seconds N]
//!                                    libFuzzer via cargo +nightly fuzz (installs cargo-fuzz)
//! ```
//!
//! Design rules:
//! - Everything generated goes under `target/` (`xen-world/`, `images/`,
//!   `logs/`); nothing outside the repository is read at run time except
//!   the host's apt configuration (to find its Debian mirror), the Debian
//!   archive keyring and the tools `apt-get`, `apt-cache`, `dpkg-deb`,
//!   `qemu-system-aarch64`.
//! - No external helpers for formats we can write: the cpio archive, the
//!   device tree, the ELF-to-Image conversion and xz decompression are Rust.
//! - Steps are cached by content (package versions, archive fingerprints),
//!   so a second run does no network access and little work.
//! - Scenarios are data (`tests/scenarios/*.toml`) plus Rust checks over
//!   the timestamped console log (`src/scenarios/`).
//! - No unsafe code.

#![forbid(unsafe_code)]

mod apt;
mod audit;
mod bench;
mod cpio;
mod fdt;
mod fuzz;
mod gates;
mod images;
mod initramfs;
mod manifest;
mod passthrough;
mod qemu;
mod rustsrc;
mod scenarios;
mod util;

use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use util::{Paths, step};

/// Crates excluded from host `cargo test` (bare-metal targets only).
pub const HOST_TEST_EXCLUDES: &[&str] = &[
    "hello-domain",
    "vchan-domain",
    "blk-hostile-domain",
    "net-hostile-domain",
    "frontend-kit",
    "net-domain",
    "storage-domain",
    "console-domain",
    "xen-rt",
    "no-panic-probe",
];

/// Upper bound for the host `cargo test` step (a hung test must not hang CI).
pub const HOST_TEST_TIMEOUT: Duration = Duration::from_secs(20 * 60);

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup [--refresh]           host preparation: qemu (installed when root), apt/dpkg tools, then fetch
  build [--release]           build the domain crates and convert them to target/images/<crate>.img
  fetch [--refresh]           fetch + unpack the Debian trixie arm64 Xen world (cached by version)
  initramfs [--scenario N] [--list]
                              assemble the dom0 / guest initramfs images (--list: print their contents)
  qemu [options]              boot the scenario under Xen in qemu
      --scenario NAME|FILE    tests/scenarios/NAME.toml or a path to a manifest (default: hello)
      --check                 headless: log, check, exit status (implied when stdin is not a terminal)
      --timeout S             override the manifest's timeout_s
      --arch aarch64|x86_64   target architecture (x86_64: not implemented yet)
      --dry-run               prepare everything and print the qemu command, do not run it
  check [--scenario N] [--log FILE]
                              re-run a scenario's checks on a saved log (default target/logs/<name>.log)
  test [--no-qemu]            assurance gates (budgets, unsafe policy, lints, fmt, cargo-deny,
                              no-panic probe), host unit tests, then every scenario with --check
  audit [--no-probe]          per domain image and arch: our LOC, third-party crates and licenses,
                              unsafe sites, image size, goals; also target/audit.json
  bench blk [--seconds S] [--mem 8,4,2] [--no-lock]
                              storage-domain vs a Linux xen-blkback driver domain, same guest
                              workload (tests/blkload), then the smallest storage-domain memory
                              that passes; each qemu run holds /tmp/qemu.lock (--no-lock: the
                              caller holds it); results -> bench/blk.md
  fuzz [TARGET] [--seconds N] run libFuzzer (cargo +nightly fuzz) on one or all targets (default 60 s each)
  advisories [--refresh-from DIR]
                              RustSec advisories, offline, against deny/advisory-db (refresh from a checkout)
  fuzz --import-capture LOG   captured-* seeds from the capture lines in a console log: blkcap
                              (storage-domain capture=N), netcap (net-domain capture=N), conscap
                              (console-domain capture=N), vchancap (vchan-domain capture=1),
                              xscap (any domain, xscapture=N)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Small hand-rolled option parser: flags and `--key value` pairs.
struct Opts {
    args: Vec<String>,
}

impl Opts {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|a| a != name);
        before != self.args.len()
    }
    fn value(&mut self, name: &str) -> Result<Option<String>> {
        if let Some(i) = self.args.iter().position(|a| a == name) {
            if i + 1 >= self.args.len() {
                bail!("{name} needs a value");
            }
            let v = self.args.remove(i + 1);
            self.args.remove(i);
            return Ok(Some(v));
        }
        let prefix = format!("{name}=");
        if let Some(i) = self.args.iter().position(|a| a.starts_with(&prefix)) {
            let v = self.args.remove(i)[prefix.len()..].to_string();
            return Ok(Some(v));
        }
        Ok(None)
    }
    fn finish(self) -> Result<()> {
        if !self.args.is_empty() {
            bail!("unexpected arguments: {}\n\n{USAGE}", self.args.join(" "));
        }
        Ok(())
    }
}

fn real_main(args: &[String]) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let mut o = Opts {
        args: rest.to_vec(),
    };
    let paths = Paths::discover()?;
    match cmd.as_str() {
        "build" => {
            let _release = o.flag("--release"); // images are always release builds
            o.finish()?;
            let crates: Vec<String> = images::DOMAIN_CRATES
                .iter()
                .map(|s| s.to_string())
                .collect();
            images::build(&paths, &crates)?;
            Ok(ExitCode::SUCCESS)
        }
        "setup" => {
            let refresh = o.flag("--refresh");
            o.finish()?;
            let t0 = Instant::now();
            setup_host()?;
            let w = apt::fetch(&paths, refresh, true)?;
            println!(
                "ready: qemu, kernel {}, xen {} ({:.1} s)",
                w.kernel_release,
                w.xen.display(),
                t0.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        "fetch" => {
            let refresh = o.flag("--refresh");
            o.finish()?;
            let t0 = Instant::now();
            let w = apt::fetch(&paths, refresh, true)?;
            println!(
                "kernel {} ({}), xen {}",
                w.kernel_release,
                w.kernel.display(),
                w.xen.display()
            );
            println!("fetch took {:.1} s", t0.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        "initramfs" => {
            let scenario = o.value("--scenario")?.unwrap_or_else(|| "hello".into());
            let list = o.flag("--list");
            o.finish()?;
            let m = manifest::Manifest::load(&manifest::resolve(&paths.root, &scenario))?;
            let world = apt::fetch(&paths, false, false)?;
            let rd = build_initramfs(&paths, &world, &m, true)?;
            if list {
                use std::fmt::Write as _;
                use std::io::Write as _;
                let mut out = String::new();
                for img in std::iter::once(&rd.dom0).chain(rd.guests.iter().flatten()) {
                    writeln!(out, "{}:", img.display())?;
                    for e in initramfs::read_image(img)? {
                        let kind = match e.mode & 0o170000 {
                            cpio::S_IFDIR => 'd',
                            cpio::S_IFLNK => 'l',
                            _ => '-',
                        };
                        let target = if kind == 'l' {
                            format!(" -> {}", String::from_utf8_lossy(&e.data))
                        } else {
                            String::new()
                        };
                        writeln!(
                            out,
                            "  {kind} {:04o} {:>9} {}{target}",
                            e.mode & 0o7777,
                            e.data.len(),
                            e.name
                        )?;
                    }
                }
                // A closed pipe (`| head`) is not an error worth a panic.
                let _ = std::io::stdout().write_all(out.as_bytes());
            }
            Ok(ExitCode::SUCCESS)
        }
        "qemu" => {
            let q = QemuOpts {
                scenario: o.value("--scenario")?.unwrap_or_else(|| "hello".into()),
                check: o.flag("--check"),
                arch: o.value("--arch")?.unwrap_or_else(|| "aarch64".into()),
                timeout: o
                    .value("--timeout")?
                    .map(|s| s.parse::<u64>().context("--timeout"))
                    .transpose()?,
                dry_run: o.flag("--dry-run"),
            };
            o.finish()?;
            match q.arch.as_str() {
                "aarch64" | "arm64" => {}
                "x86_64" | "x86" => {
                    eprintln!("--arch x86_64 is reserved and not implemented yet");
                    return Ok(ExitCode::from(2));
                }
                a => bail!("unknown --arch {a}"),
            }
            let ok = qemu_cmd(&paths, &q)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "check" => {
            let scenario = o.value("--scenario")?.unwrap_or_else(|| "hello".into());
            let log = o.value("--log")?;
            o.finish()?;
            let m = manifest::Manifest::load(&manifest::resolve(&paths.root, &scenario))?;
            let log = log
                .map(PathBuf::from)
                .unwrap_or_else(|| paths.logs.join(format!("{}.log", m.name)));
            let text = std::fs::read_to_string(&log)
                .with_context(|| format!("reading {}", log.display()))?;
            let lines = qemu::parse_log(&text);
            let ending = qemu::ending_from_log(&text);
            let report = scenarios::evaluate(&scenarios::Input {
                manifest: &m,
                lines: &lines,
                ending: &ending,
                image_sizes: image_sizes(&paths, &m),
            });
            println!(
                "--- checks for scenario {} from {} ---",
                m.name,
                log.display()
            );
            report.print();
            Ok(if report.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "test" => {
            let no_qemu = o.flag("--no-qemu");
            o.finish()?;
            test_cmd(&paths, no_qemu)
        }
        "audit" => {
            let no_probe = o.flag("--no-probe");
            o.finish()?;
            let a = audit::run(&paths, !no_probe)?;
            audit::print(&a);
            let json = paths.target.join("audit.json");
            std::fs::create_dir_all(&paths.target)?;
            std::fs::write(&json, serde_json::to_string_pretty(&a)? + "\n")?;
            println!("wrote {}", json.display());
            Ok(ExitCode::SUCCESS)
        }
        "bench" => {
            let mut b = bench::BlkOpts::default();
            let command = std::iter::once("cargo xtask bench".to_string())
                .chain(o.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(s) = o.value("--seconds")? {
                b.seconds = s.parse().context("--seconds")?;
            }
            if let Some(m) = o.value("--mem")? {
                b.mems = m
                    .split(',')
                    .map(|x| x.trim().parse::<u32>().context("--mem"))
                    .collect::<Result<_>>()?;
            }
            b.no_lock = o.flag("--no-lock");
            if o.args.first().map(String::as_str) != Some("blk") {
                bail!("usage: cargo xtask bench blk [--seconds S] [--mem 8,4,2] [--no-lock]");
            }
            o.args.remove(0);
            o.finish()?;
            let ok = bench::blk(&paths, &b, &command)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "advisories" => {
            let from = o.value("--refresh-from")?;
            o.finish()?;
            if let Some(from) = from {
                let n = gates::refresh_advisories(&paths, std::path::Path::new(&from))?;
                println!("{n} advisories vendored into deny/advisory-db");
            }
            let c = gates::advisories_check(&paths);
            println!(
                "{} {} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
            Ok(if c.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "fuzz" => {
            if let Some(log) = o.value("--import-capture")? {
                o.finish()?;
                let files = fuzz::import_capture(&paths, std::path::Path::new(&log), 3)?;
                for f in &files {
                    println!("{}", f.display());
                }
                println!("{} captured seeds written", files.len());
                return Ok(ExitCode::SUCCESS);
            }
            let seconds = o
                .value("--seconds")?
                .map(|s| s.parse::<u64>().context("--seconds"))
                .transpose()?
                .unwrap_or(60);
            let targets: Vec<String> = if o.args.is_empty() {
                fuzz::TARGETS.iter().map(|s| s.to_string()).collect()
            } else {
                std::mem::take(&mut o.args)
            };
            o.finish()?;
            let ok = fuzz::run(&paths, &targets, seconds)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        c => {
            eprint!("unknown command {c}\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Host tools the world needs: qemu (installed when root) and apt/dpkg.
fn setup_host() -> Result<()> {
    let q = qemu::ensure_qemu()?;
    step(&format!("qemu: {}", q.display()));
    let mut missing = Vec::new();
    for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
        if util::which(tool).is_none() {
            missing.push(tool);
        }
    }
    if !std::path::Path::new(apt::KEYRING).is_file() {
        missing.push("debian-archive-keyring");
    }
    if !missing.is_empty() {
        bail!(
            "missing on this host: {} (install apt, dpkg and debian-archive-keyring)",
            missing.join(", ")
        );
    }
    Ok(())
}

struct QemuOpts {
    scenario: String,
    check: bool,
    arch: String,
    timeout: Option<u64>,
    dry_run: bool,
}

/// Built initramfs images of a scenario.
struct Ramdisks {
    dom0: PathBuf,
    /// Per domU in manifest order: Some(path) for Linux guests.
    guests: Vec<Option<PathBuf>>,
}

fn script_path(paths: &Paths, p: &Option<PathBuf>) -> Option<PathBuf> {
    p.as_ref().map(|p| {
        if p.is_absolute() {
            p.clone()
        } else {
            paths.root.join(p)
        }
    })
}

fn build_initramfs(
    paths: &Paths,
    world: &apt::World,
    m: &manifest::Manifest,
    verbose: bool,
) -> Result<Ramdisks> {
    let t0 = Instant::now();
    let img = paths.img();
    let dom0_script = script_path(paths, &m.dom0.script);
    let (tree, notes) = initramfs::dom0_tree(paths, world, dom0_script.as_deref())?;
    for n in &notes {
        step(&format!("note: {n}"));
    }
    let dom0 = img.join(format!("dom0-{}.cpio.gz", m.name));
    let rebuilt = initramfs::write_image(&tree, &dom0)?;
    let size = std::fs::metadata(&dom0)?.len();
    step(&format!(
        "dom0 initramfs {} ({size} bytes, {}) in {:.2} s",
        dom0.display(),
        if rebuilt { "rebuilt" } else { "unchanged" },
        t0.elapsed().as_secs_f64()
    ));
    let mut guests = Vec::new();
    for d in &m.domu {
        if !d.image.is_linux() {
            guests.push(None);
            continue;
        }
        let t1 = Instant::now();
        let script = script_path(paths, &d.script);
        let extras = initramfs::GuestExtras {
            modules: d.modules.clone(),
            programs: bench::build_programs(paths, &d.programs)?,
            xenstore_tools: d.xenstore_tools,
        };
        let (tree, notes) = initramfs::guest_tree_with(paths, world, script.as_deref(), &extras)?;
        if verbose {
            for n in &notes {
                step(&format!("note: {n}"));
            }
        }
        let name = if script.is_some() {
            format!("guest-{}-{}.cpio.gz", m.name, d.name)
        } else {
            "guest.cpio.gz".into()
        };
        let out = img.join(name);
        let rebuilt = initramfs::write_image(&tree, &out)?;
        step(&format!(
            "guest initramfs for {}: {} ({} bytes, {}) in {:.2} s",
            d.name,
            out.display(),
            std::fs::metadata(&out)?.len(),
            if rebuilt { "rebuilt" } else { "unchanged" },
            t1.elapsed().as_secs_f64()
        ));
        guests.push(Some(out));
    }
    Ok(Ramdisks { dom0, guests })
}

/// `cargo xtask qemu`: returns whether the run passed (always true when
/// interactive).
fn qemu_cmd(paths: &Paths, q: &QemuOpts) -> Result<bool> {
    let t_all = Instant::now();
    let mpath = manifest::resolve(&paths.root, &q.scenario);
    let m = manifest::Manifest::load(&mpath)?;
    let interactive = !q.check && std::io::stdin().is_terminal() && !q.dry_run;
    step(&format!(
        "scenario {} ({}), {} mode",
        m.name,
        mpath.display(),
        if interactive { "interactive" } else { "check" }
    ));
    qemu::ensure_qemu()?;
    let t = Instant::now();
    let world = apt::fetch(paths, false, false)?;
    let t_fetch = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let built = images::build(paths, &m.crates())?;
    let t_build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let rd = build_initramfs(paths, &world, &m, true)?;
    let t_initramfs = t.elapsed().as_secs_f64();
    let mut domus = Vec::new();
    for (d, g) in m.domu.iter().zip(&rd.guests) {
        match d.image.crate_name() {
            Some(k) => {
                let img = built
                    .iter()
                    .find(|b| b.krate == k)
                    .context("image not built")?;
                domus.push((img.path.clone(), None))
            }
            None => domus.push((world.kernel.clone(), g.clone())),
        }
    }
    let boot = qemu::Boot {
        xen: &world.xen,
        dom0_kernel: &world.kernel,
        dom0_ramdisk: &rd.dom0,
        domus,
    };
    let image_sizes: Vec<(String, u64)> = built.iter().map(|b| (b.krate.clone(), b.size)).collect();
    // A multi-boot scenario runs the whole system `boots` times on the same
    // passthrough disks; the checks see one log with a marker line between
    // boots (later boots' timestamps continue from the previous ones).
    let mut all_lines: Vec<(f64, String)> = Vec::new();
    let mut ending = qemu::Ending::DoneMarker;
    let mut total_elapsed = 0.0;
    let mut last_log = PathBuf::new();
    for n in 1..=m.boots {
        let mb = m.for_boot(n);
        let t = Instant::now();
        let mut plan = qemu::make_plan(paths, &mb, &boot, interactive)?;
        if plan.passthrough.needs_calibration(&mb) && !q.dry_run {
            passthrough::calibrate(paths, &mb, &plan)?;
            plan = qemu::make_plan(paths, &mb, &boot, interactive)?;
            anyhow::ensure!(
                !plan.passthrough.needs_calibration(&mb),
                "calibration did not produce a DMA window"
            );
        }
        let t_dtb = t.elapsed().as_secs_f64();
        for md in &plan.modules {
            println!("    {:#010x} {:>10} bytes  {}", md.addr, md.size, md.label);
        }
        step(&format!(
            "prepared {}in {:.1} s (fetch {t_fetch:.1} s, images {t_build:.1} s, initramfs {t_initramfs:.2} s, dtb {t_dtb:.2} s); dtb {}",
            if m.boots > 1 {
                format!("boot {n} of {} ", m.boots)
            } else {
                String::new()
            },
            t_all.elapsed().as_secs_f64(),
            plan.dtb.display()
        ));
        if q.dry_run {
            println!("{}", plan.command_line());
            return Ok(true);
        }
        plan.passthrough
            .start_verifier(&mb, Duration::from_secs(q.timeout.unwrap_or(m.timeout_s)));
        if interactive {
            qemu::run_interactive(&plan)?;
            if n < m.boots {
                continue;
            }
            return Ok(true);
        }
        let timeout = Duration::from_secs(q.timeout.unwrap_or(m.timeout_s));
        let log_name = if n == 1 {
            m.name.clone()
        } else {
            format!("{}-boot{n}", m.name)
        };
        let run = qemu::run_check(paths, &plan, &log_name, &m.done_marker, timeout)?;
        if n > 1 {
            all_lines.push((total_elapsed, format!("### XTASK BOOT {n}")));
        }
        all_lines.extend(
            run.lines
                .iter()
                .map(|(t, l)| (t + total_elapsed, l.clone())),
        );
        total_elapsed += run.elapsed;
        last_log = run.log_path.clone();
        ending = run.ending.clone();
        if run.ending != qemu::Ending::DoneMarker {
            break;
        }
    }
    if m.boots > 1 {
        // One combined log under the scenario's name, for `cargo xtask check`.
        let combined = paths.logs.join(format!("{}.log", m.name));
        let mut text = String::new();
        for (t, l) in &all_lines {
            text.push_str(&format!("[+{t:8.3}] {l}\n"));
        }
        if ending == qemu::Ending::DoneMarker {
            text.push_str(&format!("[+{total_elapsed:8.3}] ### DONE MARKER matched\n"));
        }
        std::fs::write(&combined, text)?;
        last_log = combined;
    }
    let input = scenarios::Input {
        manifest: &m,
        lines: &all_lines,
        ending: &ending,
        image_sizes,
    };
    let report = scenarios::evaluate(&input);
    println!(
        "--- checks for scenario {} ({:.1} s in qemu, log {}) ---",
        m.name,
        total_elapsed,
        last_log.display()
    );
    report.print();
    Ok(report.success())
}

/// Sizes of the images a scenario boots, from target/images.
fn image_sizes(paths: &Paths, m: &manifest::Manifest) -> Vec<(String, u64)> {
    m.crates()
        .into_iter()
        .filter_map(|k| {
            std::fs::metadata(images::image_path(paths, &k))
                .ok()
                .map(|md| (k, md.len()))
        })
        .collect()
}

/// `cargo xtask test`: host tests, then every scenario in check mode.
fn test_cmd(paths: &Paths, no_qemu: bool) -> Result<ExitCode> {
    let t0 = Instant::now();
    let mut results: Vec<(String, bool, f64)> = Vec::new();
    // Assurance gates first (cheap, and a failure is reported before the
    // long qemu part): budgets need the audited images built.
    step("assurance gates");
    let t = Instant::now();
    let audited: Vec<String> = audit::AUDIT_DOMAINS.iter().map(|s| s.to_string()).collect();
    if let Err(e) = images::build(paths, &audited) {
        eprintln!("building images for the budgets: {e:#}");
    }
    let gates = gates::all(paths);
    let gates_failed = gates.iter().filter(|c| !c.ok).count();
    println!(
        "{} passed, {gates_failed} failed",
        gates.len() - gates_failed
    );
    let failed_names: Vec<&str> = gates
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    results.push((
        if failed_names.is_empty() {
            format!("assurance gates ({} checks)", gates.len())
        } else {
            format!(
                "assurance gates ({gates_failed} of {} failed: {})",
                gates.len(),
                failed_names.join(", ")
            )
        },
        gates_failed == 0,
        t.elapsed().as_secs_f64(),
    ));
    step("host tests");
    let t = Instant::now();
    let mut c = util::cargo();
    c.current_dir(&paths.root).args(["test", "--workspace"]);
    for e in HOST_TEST_EXCLUDES {
        c.args(["--exclude", e]);
    }
    let ok = match util::run_with_timeout(&mut c, HOST_TEST_TIMEOUT) {
        Ok(Some(st)) => st.success(),
        Ok(None) => {
            eprintln!(
                "host tests timed out after {} s; killed",
                HOST_TEST_TIMEOUT.as_secs()
            );
            false
        }
        Err(e) => {
            eprintln!("host tests: {e:#}");
            false
        }
    };
    results.push(("host tests".into(), ok, t.elapsed().as_secs_f64()));
    let scenarios = if no_qemu {
        step("qemu scenarios skipped (--no-qemu)");
        Vec::new()
    } else {
        manifest::all(&paths.root)?
    };
    for mpath in scenarios {
        let name = mpath.file_stem().unwrap().to_string_lossy().into_owned();
        step(&format!("scenario {name}"));
        let t = Instant::now();
        let q = QemuOpts {
            scenario: mpath.display().to_string(),
            check: true,
            arch: "aarch64".into(),
            timeout: None,
            dry_run: false,
        };
        let ok = match qemu_cmd(paths, &q) {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("scenario {name}: error: {e:#}");
                false
            }
        };
        results.push((format!("scenario {name}"), ok, t.elapsed().as_secs_f64()));
    }
    println!("--- summary ---");
    for (n, ok, secs) in &results {
        println!("{} {n} ({secs:.1} s)", if *ok { "ok  " } else { "FAIL" });
    }
    let failed = results.iter().filter(|r| !r.1).count();
    println!(
        "{} passed, {failed} failed, wall time {:.1} s",
        results.len() - failed,
        t0.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
