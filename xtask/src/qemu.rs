//! Running Xen under `qemu-system-aarch64` (TCG): installing qemu if it is
//! missing, generating the dom0less device tree and `-device loader`
//! arguments, and running qemu either interactively or in check mode
//! (timestamped log, progress, done marker, timeout).
//!
//! The DTB is qemu's own `virt` tree (dumped with `dumpdtb=` using the very
//! same machine arguments) with Xen's boot configuration merged into
//! `/chosen`: Xen and dom0 command lines, dom0 kernel/ramdisk modules and
//! one `xen,domain` node per domU, in manifest order (so domids are 1, 2,
//! ... in that order). Modules are loaded by qemu's generic loader from
//! [`MODULE_BASE`] upward, each starting on a 2 MiB boundary.

use crate::fdt::{self, Fdt, Node};
use crate::manifest::Manifest;
use crate::util::{Paths, is_root, run, step, which};
use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const QEMU: &str = "qemu-system-aarch64";
pub const MODULE_BASE: u64 = 0x4900_0000;
const MODULE_ALIGN: u64 = 2 << 20;
const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 2 << 30;
const HEARTBEAT: Duration = Duration::from_secs(10);
const FLUSH_AFTER_DONE: Duration = Duration::from_secs(2);

/// Machine arguments shared by the DTB dump and the real run.
/// `machine_extra` is appended to the `-machine` value (e.g. `,dumpdtb=f`).
pub fn machine_args(machine_extra: &str) -> Vec<String> {
    [
        "-machine",
        &format!("virt,virtualization=on,gic-version=3{machine_extra}"),
        "-cpu",
        "cortex-a57",
        "-smp",
        "2",
        "-m",
        "2G",
        "-nographic",
        // No default NIC: it is not needed and wants an option ROM that
        // minimal qemu installs (no ipxe-qemu) lack.
        "-nic",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Makes sure qemu-system-aarch64 exists; installs it from
/// bookworm-backports when running as root.
pub fn ensure_qemu() -> Result<PathBuf> {
    if let Some(p) = which(QEMU) {
        return Ok(p);
    }
    let mirror = crate::apt::host_mirror().unwrap_or_else(|_| "<your Debian mirror>/debian".into());
    let sources = format!(
        "Types: deb\nURIs: {mirror}\nSuites: bookworm-backports\nComponents: main\nSigned-By: {}\n",
        crate::apt::KEYRING
    );
    if !is_root() {
        eprintln!(
            "{QEMU} is not installed. As root, add /etc/apt/sources.list.d/bookworm-backports.sources:\n\n{sources}\n\
             then run:\n  apt-get update\n  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
             -t bookworm-backports qemu-system-arm"
        );
        bail!("{QEMU} missing");
    }
    step(&format!(
        "{QEMU} missing: installing qemu-system-arm from bookworm-backports"
    ));
    let path = Path::new("/etc/apt/sources.list.d/bookworm-backports.sources");
    if !path.exists() {
        std::fs::write(path, sources)?;
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "-t",
            "bookworm-backports",
            "qemu-system-arm",
        ]))?;
    which(QEMU).context("qemu-system-aarch64 still missing after install")
}

/// Dumps qemu's own virt device tree.
pub fn dump_virt_dtb(out: &Path) -> Result<Fdt> {
    let st = Command::new(QEMU)
        .args(machine_args(&format!(",dumpdtb={}", qemu_path(out))))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    ensure!(
        st.status.success(),
        "qemu dumpdtb failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    Fdt::parse(&std::fs::read(out)?)
}

/// A path inside a qemu option value (commas doubled).
fn qemu_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// One blob qemu places in guest RAM.
#[derive(Debug, Clone)]
pub struct Module {
    pub label: String,
    pub path: PathBuf,
    pub addr: u64,
    pub size: u64,
}

/// Allocates modules 2 MiB-aligned from [`MODULE_BASE`].
#[derive(Debug)]
pub struct Placer {
    next: u64,
    pub modules: Vec<Module>,
}

impl Default for Placer {
    fn default() -> Self {
        Placer {
            next: MODULE_BASE,
            modules: Vec::new(),
        }
    }
}

impl Placer {
    pub fn place_sized(&mut self, label: &str, path: &Path, size: u64) -> Result<(u64, u64)> {
        let addr = self.next;
        self.next = (addr + size).next_multiple_of(MODULE_ALIGN);
        ensure!(
            self.next <= RAM_BASE + RAM_SIZE,
            "modules do not fit in guest RAM (at {label})"
        );
        self.modules.push(Module {
            label: label.into(),
            path: path.to_path_buf(),
            addr,
            size,
        });
        Ok((addr, size))
    }

    pub fn place(&mut self, label: &str, path: &Path) -> Result<(u64, u64)> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .len();
        self.place_sized(label, path, size)
    }

    pub fn loader_args(&self) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for m in &self.modules {
            let abs = m
                .path
                .canonicalize()
                .with_context(|| format!("{}", m.path.display()))?;
            v.push("-device".into());
            v.push(format!(
                "loader,file={},addr={:#x},force-raw=on",
                qemu_path(&abs),
                m.addr
            ));
        }
        Ok(v)
    }
}

/// What a domU boots: kernel (+ ramdisk) at placed addresses.
#[derive(Debug, Clone)]
pub struct DomUBoot {
    pub kernel: (u64, u64),
    pub ramdisk: Option<(u64, u64)>,
}

fn module_node(name: &str, kind: &str, (addr, size): (u64, u64)) -> Node {
    Node::new(format!("{name}@{addr:x}"))
        .with(
            "compatible",
            fdt::strings(&[&format!("multiboot,{kind}"), "multiboot,module"]),
        )
        .with("reg", fdt::cells64(&[addr, size]))
}

/// Merges the dom0less configuration into a virt tree.
pub fn configure_tree(
    t: &mut Fdt,
    m: &Manifest,
    dom0_bootargs: &str,
    dom0_kernel: (u64, u64),
    dom0_ramdisk: (u64, u64),
    domus: &[DomUBoot],
) -> Result<()> {
    ensure!(domus.len() == m.domu.len(), "one boot entry per domU");
    let chosen = t.node_mut_or_create("/chosen");
    chosen.set_prop("#address-cells", fdt::cells(&[2]));
    chosen.set_prop("#size-cells", fdt::cells(&[2]));
    chosen.set_prop("xen,xen-bootargs", fdt::string(&m.xen_args()));
    chosen.set_prop("xen,dom0-bootargs", fdt::string(dom0_bootargs));
    chosen.add_child(module_node("dom0-kernel", "kernel", dom0_kernel));
    chosen.add_child(module_node("dom0-ramdisk", "ramdisk", dom0_ramdisk));
    for (d, boot) in m.domu.iter().zip(domus) {
        let mut n = Node::new(&d.name)
            .with("compatible", fdt::string("xen,domain"))
            .with("#address-cells", fdt::cells(&[2]))
            .with("#size-cells", fdt::cells(&[2]))
            .with("memory", fdt::cells64(&[u64::from(d.memory_mb) * 1024]))
            .with("cpus", fdt::cells(&[d.vcpus]));
        if d.vpl011 {
            n.set_prop("vpl011", fdt::empty());
        }
        if d.enhanced {
            n.set_prop("xen,enhanced", fdt::string("enabled"));
        }
        let mut k = module_node("module", "kernel", boot.kernel);
        k.set_prop("bootargs", fdt::string(&d.bootargs()));
        n.children.push(k);
        if let Some(r) = boot.ramdisk {
            n.children.push(module_node("module", "ramdisk", r));
        }
        chosen.add_child(n);
    }
    // As Xen's CI does: keep dom0 away from the GPIO power key.
    if let Some(gpio) = t.node_mut("/pl061@9030000") {
        gpio.set_prop("status", fdt::string("disabled"));
    }
    Ok(())
}

/// Sanity check of a generated blob: every placed module is referenced
/// by exactly one `multiboot,module` node whose `reg` matches.
fn verify_tree(t: &Fdt, m: &Manifest, modules: &[Module]) -> Result<()> {
    let chosen = t.node("/chosen").context("no /chosen")?;
    ensure!(
        chosen.prop("xen,xen-bootargs").is_some(),
        "no xen,xen-bootargs"
    );
    let mut regs = Vec::new();
    fn collect(n: &Node, regs: &mut Vec<(u64, u64)>) {
        let is_module = n.prop("compatible").is_some_and(|c| {
            fdt::decode_strings(c)
                .iter()
                .any(|s| s == "multiboot,module")
        });
        if is_module && let Some(r) = n.prop("reg") {
            let c = fdt::decode_cells(r);
            if c.len() == 4 {
                regs.push((
                    (u64::from(c[0]) << 32) | u64::from(c[1]),
                    (u64::from(c[2]) << 32) | u64::from(c[3]),
                ));
            }
        }
        for ch in &n.children {
            collect(ch, regs);
        }
    }
    collect(chosen, &mut regs);
    ensure!(
        regs.len() == modules.len(),
        "{} module nodes for {} modules",
        regs.len(),
        modules.len()
    );
    for md in modules {
        ensure!(
            regs.contains(&(md.addr, md.size)),
            "module {} not in the tree",
            md.label
        );
    }
    for d in &m.domu {
        ensure!(
            chosen.child(&d.name).is_some(),
            "domU node {} missing",
            d.name
        );
    }
    Ok(())
}

/// Everything needed to start qemu.
#[derive(Debug)]
pub struct Plan {
    pub args: Vec<String>,
    pub dtb: PathBuf,
    pub modules: Vec<Module>,
    /// Passed-through devices (src/passthrough.rs).
    pub passthrough: crate::passthrough::Prepared,
}

impl Plan {
    pub fn command_line(&self) -> String {
        std::iter::once(QEMU.to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Inputs to [`make_plan`]: the files each domain boots.
pub struct Boot<'a> {
    pub xen: &'a Path,
    pub dom0_kernel: &'a Path,
    pub dom0_ramdisk: &'a Path,
    /// Per domU (manifest order): kernel and optional ramdisk.
    pub domus: Vec<(PathBuf, Option<PathBuf>)>,
}

/// Places modules, writes the DTB, assembles the qemu arguments.
pub fn make_plan(paths: &Paths, m: &Manifest, boot: &Boot, interactive: bool) -> Result<Plan> {
    let dir = paths.img();
    std::fs::create_dir_all(&dir)?;
    let mut placer = Placer::default();
    let k0 = placer.place("dom0 kernel", boot.dom0_kernel)?;
    let r0 = placer.place("dom0 ramdisk", boot.dom0_ramdisk)?;
    let mut domus = Vec::new();
    for (d, (k, r)) in m.domu.iter().zip(&boot.domus) {
        let kernel = placer.place(&format!("{} kernel", d.name), k)?;
        let ramdisk = match r {
            Some(r) => Some(placer.place(&format!("{} ramdisk", d.name), r)?),
            None => None,
        };
        domus.push(DomUBoot { kernel, ramdisk });
    }
    let mut pt = crate::passthrough::Prepared::new(paths, m)?;
    pt.place(m, &dir, &mut placer)?;
    // Per-process names: concurrent runs must not clobber each other's files.
    let dump = dir.join(format!("virt-gic3.{}.dtb", std::process::id()));
    let dumped = dump_virt_dtb(&dump);
    let _ = std::fs::remove_file(&dump);
    let mut t = dumped?;
    let mode = if interactive {
        "xtask=interactive"
    } else {
        "xtask=check"
    };
    configure_tree(
        &mut t,
        m,
        &format!("{} {mode}", m.dom0_bootargs()),
        k0,
        r0,
        &domus,
    )?;
    pt.configure_tree(&mut t, m)?;
    let dtb = dir.join(format!("{}.dtb", m.name));
    let tmp = dir.join(format!("{}.dtb.{}", m.name, std::process::id()));
    let blob = t.to_bytes();
    verify_tree(&Fdt::parse(&blob)?, m, &placer.modules)?;
    std::fs::write(&tmp, blob)?;
    std::fs::rename(&tmp, &dtb)?;
    let mut args = machine_args("");
    args.extend([
        "-no-reboot".into(),
        "-kernel".into(),
        boot.xen.display().to_string(),
    ]);
    args.extend(["-dtb".into(), dtb.display().to_string()]);
    args.extend(placer.loader_args()?);
    args.extend(pt.qemu_args());
    pt.write_blobs(paths, m, &std::fs::read(&dtb)?, boot.xen, &args)?;
    args.extend(pt.monitor_args(paths));
    Ok(Plan {
        args,
        dtb,
        modules: placer.modules,
        passthrough: pt,
    })
}

/// Runs qemu attached to the terminal (Ctrl-a x quits).
pub fn run_interactive(plan: &Plan) -> Result<()> {
    step(
        "starting qemu interactively: Ctrl-a x quits, Ctrl-a c toggles the monitor; \
          Ctrl-a three times in Xen switches console input (dom0 / Xen / domUs)",
    );
    let st = Command::new(QEMU).args(&plan.args).status()?;
    println!("qemu exited: {st}");
    Ok(())
}

/// How a check-mode run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    DoneMarker,
    Timeout,
    QemuExited(Option<i32>),
}

#[derive(Debug, Clone)]
pub struct RunLog {
    /// (seconds since qemu start, line without \r\n).
    pub lines: Vec<(f64, String)>,
    pub ending: Ending,
    pub elapsed: f64,
    pub log_path: PathBuf,
}

enum Msg {
    Line(Instant, String),
    Eof,
}

/// Lines worth echoing while a check run is in progress.
fn notable(line: &str) -> Option<&'static str> {
    if line.contains("Xen version") {
        Some("Xen banner")
    } else if line.contains("hello[") || line.contains("=== ") {
        Some("")
    } else if line.contains("PANIC")
        || line.contains("Panic on CPU")
        || line.contains("Kernel panic")
    {
        Some("PANIC")
    } else {
        None
    }
}

/// Runs qemu headless: logs every line as `[+  12.345] text`, prints
/// progress, stops at the done marker (+2 s), on timeout or qemu exit.
pub fn run_check(
    paths: &Paths,
    plan: &Plan,
    name: &str,
    done_marker: &str,
    timeout: Duration,
) -> Result<RunLog> {
    let done_re = Regex::new(done_marker)?;
    std::fs::create_dir_all(&paths.logs)?;
    // Written live under a dated name, copied to <name>.log at the end (so
    // concurrent runs of one scenario cannot interleave into one file).
    let log_path = paths.logs.join(format!("{name}.log"));
    let mut dated = paths
        .logs
        .join(format!("{name}-{}.log", crate::util::utc_stamp()));
    let mut n = 1;
    while dated.exists() {
        n += 1;
        dated = paths
            .logs
            .join(format!("{name}-{}-{n}.log", crate::util::utc_stamp()));
    }
    let mut log = std::io::BufWriter::new(std::fs::File::create(&dated)?);
    writeln!(log, "# {}", plan.command_line())?;
    for m in &plan.modules {
        writeln!(
            log,
            "# module {:#x} {:>10} {} ({})",
            m.addr,
            m.size,
            m.label,
            m.path.display()
        )?;
    }
    step(&format!(
        "running {name} headless (timeout {} s), live log {}",
        timeout.as_secs(),
        dated.display()
    ));

    let (reader, writer) = std::io::pipe()?;
    let mut cmd = Command::new(QEMU);
    cmd.args(&plan.args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("starting qemu")?;
    drop(cmd); // close our copies of the pipe's write end
    let (tx, rx) = mpsc::channel();
    let reader_thread = std::thread::spawn(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 65536];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        let s = String::from_utf8_lossy(&line)
                            .trim_end_matches(['\r', '\n'])
                            .to_string();
                        if tx.send(Msg::Line(Instant::now(), s)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if !pending.is_empty() {
            let s = String::from_utf8_lossy(&pending)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let _ = tx.send(Msg::Line(Instant::now(), s));
        }
        let _ = tx.send(Msg::Eof);
    });

    let mut lines = Vec::new();
    let mut deadline = t0 + timeout;
    let mut ending = None;
    let mut next_beat = t0 + HEARTBEAT;
    let mut dots = false;
    let mut stdout = std::io::stdout();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_beat {
            print!(".");
            stdout.flush().ok();
            dots = true;
            next_beat += HEARTBEAT;
        }
        let wait = deadline.min(next_beat).saturating_duration_since(now);
        match rx.recv_timeout(wait) {
            Ok(Msg::Line(at, s)) => {
                let ts = at.duration_since(t0).as_secs_f64();
                writeln!(log, "[+{ts:8.3}] {s}")?;
                if let Some(tag) = notable(&s) {
                    if dots {
                        println!();
                        dots = false;
                    }
                    let short: String = s.chars().take(160).collect();
                    if tag.is_empty() {
                        println!("  [+{ts:7.1}] {short}");
                    } else {
                        println!("  [+{ts:7.1}] {tag}: {short}");
                    }
                }
                if ending.is_none() && done_re.is_match(&s) {
                    ending = Some(Ending::DoneMarker);
                    deadline = deadline.min(Instant::now() + FLUSH_AFTER_DONE);
                    writeln!(
                        log,
                        "[+{:8.3}] ### DONE MARKER matched",
                        t0.elapsed().as_secs_f64()
                    )?;
                }
                lines.push((ts, s));
            }
            Ok(Msg::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait()?;
                if ending.is_none() {
                    ending = Some(Ending::QemuExited(st.code()));
                }
                writeln!(
                    log,
                    "[+{:8.3}] ### QEMU EXITED {st}",
                    t0.elapsed().as_secs_f64()
                )?;
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    if dots {
        println!();
    }
    let ending = ending.unwrap_or(Ending::Timeout);
    if ending == Ending::Timeout {
        writeln!(
            log,
            "[+{:8.3}] ### TIMEOUT after {} s",
            t0.elapsed().as_secs_f64(),
            timeout.as_secs()
        )?;
    }
    if child.try_wait()?.is_none() {
        child.kill().ok();
        child.wait().ok();
    }
    drop(rx);
    let _ = reader_thread.join();
    let elapsed = t0.elapsed().as_secs_f64();
    log.flush()?;
    drop(log);
    let tmp = log_path.with_extension(format!("log.{}", std::process::id()));
    std::fs::copy(&dated, &tmp)?;
    std::fs::rename(&tmp, &log_path)?;
    step(&format!(
        "qemu stopped after {elapsed:.1} s ({ending:?}); log {} (copy of {})",
        log_path.display(),
        dated.display()
    ));
    Ok(RunLog {
        lines,
        ending,
        elapsed,
        log_path,
    })
}

/// How a saved log ended (from the runner's `###` lines).
pub fn ending_from_log(text: &str) -> Ending {
    if text.contains("### DONE MARKER matched") {
        Ending::DoneMarker
    } else if let Some(i) = text.find("### QEMU EXITED") {
        let code = text[i..]
            .lines()
            .next()
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|c| c.parse().ok());
        Ending::QemuExited(code)
    } else {
        Ending::Timeout
    }
}

/// Reads a timestamped log back (`[+  12.345] text`).
pub fn parse_log(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("[+")?;
            let (ts, text) = rest.split_once("] ")?;
            Some((ts.trim().parse().ok()?, text.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
name = "t"
timeout_s = 10
done_marker = "DONE"
[dom0]
memory_mb = 512
[[domu]]
name = "hello-a"
image = { crate = "hello-domain" }
memory_mb = 16
bootargs = "role=server peer=2"
[[domu]]
name = "lx"
image = "linux"
memory_mb = 256
vpl011 = false
enhanced = false
"#,
            Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn placement_is_2mib_aligned() {
        let mut p = Placer::default();
        assert_eq!(
            p.place_sized("a", Path::new("a"), 0x23e_a7c0).unwrap(),
            (0x4900_0000, 0x23e_a7c0)
        );
        assert_eq!(
            p.place_sized("b", Path::new("b"), 0x46_238a).unwrap().0,
            0x4b40_0000
        );
        assert_eq!(
            p.place_sized("c", Path::new("c"), 0x20_0000).unwrap().0,
            0x4ba0_0000
        );
        assert_eq!(
            p.place_sized("d", Path::new("d"), 1).unwrap().0,
            0x4bc0_0000
        );
        assert!(p.place_sized("huge", Path::new("e"), 4 << 30).is_err());
    }

    #[test]
    fn chosen_nodes_parse_back() {
        let m = manifest();
        let mut t = Fdt {
            boot_cpuid_phys: 0,
            reserved: vec![],
            root: Node::new("")
                .with("#address-cells", fdt::cells(&[2]))
                .with("compatible", fdt::string("linux,dummy-virt")),
        };
        t.root
            .children
            .push(Node::new("chosen").with("stdout-path", fdt::string("/pl011@9000000")));
        t.root.children.push(Node::new("pl061@9030000"));
        let domus = vec![
            DomUBoot {
                kernel: (0x4ba0_0000, 0x2258),
                ramdisk: None,
            },
            DomUBoot {
                kernel: (0x4bc0_0000, 0x23e_a7c0),
                ramdisk: Some((0x4e00_0000, 0x10_55b8)),
            },
        ];
        configure_tree(
            &mut t,
            &m,
            "console=hvc0",
            (0x4900_0000, 0x23e_a7c0),
            (0x4b40_0000, 0x46_238a),
            &domus,
        )
        .unwrap();
        let back = Fdt::parse(&t.to_bytes()).unwrap();
        let c = back.node("/chosen").unwrap();
        assert_eq!(c.prop("stdout-path").unwrap(), b"/pl011@9000000\0");
        let xen_args = fdt::decode_strings(c.prop("xen,xen-bootargs").unwrap());
        assert!(xen_args[0].contains("xsm=dummy") && xen_args[0].contains("dom0_mem=512M"));
        assert_eq!(c.prop("xen,dom0-bootargs").unwrap(), b"console=hvc0\0");
        let k = back.node("/chosen/dom0-kernel@49000000").unwrap();
        assert_eq!(
            fdt::decode_strings(k.prop("compatible").unwrap()),
            ["multiboot,kernel", "multiboot,module"]
        );
        assert_eq!(
            fdt::decode_cells(k.prop("reg").unwrap()),
            [0, 0x4900_0000, 0, 0x23e_a7c0]
        );
        let r = back.node("/chosen/dom0-ramdisk@4b400000").unwrap();
        assert_eq!(
            fdt::decode_strings(r.prop("compatible").unwrap()),
            ["multiboot,ramdisk", "multiboot,module"]
        );
        // domU order = manifest order = domid order.
        let names: Vec<&str> = c.children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dom0-kernel@49000000",
                "dom0-ramdisk@4b400000",
                "hello-a",
                "lx"
            ]
        );
        let a = back.node("/chosen/hello-a").unwrap();
        assert_eq!(a.prop("compatible").unwrap(), b"xen,domain\0");
        assert_eq!(fdt::decode_cells(a.prop("memory").unwrap()), [0, 16 * 1024]);
        assert_eq!(fdt::decode_cells(a.prop("cpus").unwrap()), [1]);
        assert_eq!(a.prop("vpl011").unwrap(), b"");
        assert_eq!(a.prop("xen,enhanced").unwrap(), b"enabled\0");
        let am = a.child("module@4ba00000").unwrap();
        assert_eq!(am.prop("bootargs").unwrap(), b"role=server peer=2\0");
        let lx = back.node("/chosen/lx").unwrap();
        assert!(lx.prop("vpl011").is_none() && lx.prop("xen,enhanced").is_none());
        assert!(
            lx.child("module@4bc00000")
                .unwrap()
                .prop("bootargs")
                .unwrap()
                .starts_with(b"console=ttyAMA0")
        );
        assert!(lx.child("module@4e000000").is_some());
        assert_eq!(
            back.node("/pl061@9030000").unwrap().prop("status").unwrap(),
            b"disabled\0"
        );
    }

    #[test]
    fn log_parsing() {
        let l = parse_log("# cmd\n[+   0.379] (XEN) Xen version 4.20\n[+  12.000] x] y\n");
        assert_eq!(
            l,
            vec![
                (0.379, "(XEN) Xen version 4.20".to_string()),
                (12.0, "x] y".to_string())
            ]
        );
    }
}
