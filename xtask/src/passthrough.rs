//! Passing qemu virtio-mmio devices through to dom0less domUs.
//!
//! What Xen 4.20 (no IOMMU on qemu's virt machine) needs, as established by
//! hand first:
//! - qemu: modern virtio-mmio (`-global virtio-mmio.force-legacy=false`),
//!   each passed-through device alone in a 4 KiB page: transport N sits at
//!   `0x0a000000 + 0x200 N` with SPI `16 + N`, so devices go on transports
//!   8, 16, 24 (pages 0x0a001000, 0x0a002000, 0x0a003000).
//!   `iommu_platform=on` offers VIRTIO_F_ACCESS_PLATFORM, which Linux needs
//!   to use the DMA API (and so `dma-ranges`).
//! - host device tree: `xen,passthrough` on the device node (Xen keeps it
//!   from dom0).
//! - a partial device tree per domU (`multiboot,device-tree` module of the
//!   domU node): `/passthrough` with the device node (`reg`, `interrupts`
//!   with interrupt-parent 65000, `xen,reg` of the whole page, `xen,path`,
//!   `xen,force-assign-without-iommu`) and `dma-ranges` mapping the domU's
//!   RAM bank (guest physical 0x40000000) to its host physical address:
//!   without an IOMMU the device sees host addresses.
//! - calibration: Xen gives a domU with a power-of-two memory size one
//!   naturally aligned chunk from its buddy allocator, at a host address
//!   that is deterministic for a fixed configuration but known only to
//!   Xen. We boot once with device address 0 in `dma-ranges` (xen-rt then
//!   writes a pattern at two pages of its RAM, prints where, and halts
//!   without touching the device), dump host RAM through qemu's monitor
//!   (`pmemsave`), find the pattern and derive the bank's host address.
//!   The result is cached in `target/pt/calibration.json` under a key
//!   hashing everything that decides Xen's allocations (the host DTB with
//!   all module addresses and sizes, the Xen binary, the qemu command).
//!   The domain checks the result itself: its first DMA reads sector 0 of
//!   the disk, where xtask wrote a signature, and it refuses to go on if
//!   the data is wrong.

use crate::fdt::{self, Fdt, Node};
use crate::manifest::{Manifest, PtKind};
use crate::util::{Fnv, Paths, step};
use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Transports 8, 16 and 24: one device per page.
pub const MAX_DEVICES: usize = 3;
const VIRTIO_MMIO_BASE: u64 = 0x0a00_0000;
const TRANSPORT_SIZE: u64 = 0x200;
const FIRST_SPI: u32 = 16;
/// Where Xen puts a domU's first RAM bank (GUEST_RAM0_BASE).
pub const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// qemu's RAM (`-m 2G` at 0x40000000), dumped for calibration.
const HOST_RAM: (u64, u64) = (0x4000_0000, 2 << 30);
/// Xen's phandle for the guest GIC in partial device trees.
const GUEST_GIC_PHANDLE: u32 = 65000;
/// What the storage domain expects at the start of sector 0.
pub const SIGNATURE: &[u8] = b"XEN-RT PASSTHROUGH DISK v1 ";
const DEFAULT_DISK_MB: u32 = 16;
const CALIBRATION_TIMEOUT: Duration = Duration::from_secs(240);

/// One passed-through device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Index of the domU in the manifest.
    pub domu: usize,
    pub kind: PtKind,
    /// qemu virtio-mmio transport number.
    pub bus: u32,
    pub iommu_platform: bool,
    /// blk: the disk image and the id written into its sector 0.
    pub disk: Option<(PathBuf, String)>,
}

impl Device {
    pub fn addr(&self) -> u64 {
        VIRTIO_MMIO_BASE + TRANSPORT_SIZE * u64::from(self.bus)
    }
    pub fn spi(&self) -> u32 {
        FIRST_SPI + self.bus
    }
    pub fn node_name(&self) -> String {
        format!("virtio_mmio@{:x}", self.addr())
    }
}

/// The passthrough part of a plan.
#[derive(Debug, Default)]
pub struct Prepared {
    pub devices: Vec<Device>,
    /// Per domU with devices: (domU index, partial DTB path, placed module).
    modules: Vec<(usize, PathBuf, (u64, u64))>,
    /// Calibration cache key (set by [`Prepared::write_blobs`]).
    pub key: String,
    /// Host address of each passthrough domU's RAM bank, once calibrated.
    pub windows: BTreeMap<String, u64>,
    /// The run's monitor socket (see [`Prepared::monitor_args`]).
    monitor: Option<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(m) = &self.monitor {
            let _ = std::fs::remove_file(m);
        }
    }
}

/// Disk image of device `k` of a domU (fresh each run).
pub fn disk_path(paths: &Paths, scenario: &str, domu: &str, k: usize) -> PathBuf {
    paths
        .target
        .join("pt")
        .join(format!("{scenario}-{domu}-{k}.img"))
}

impl Prepared {
    /// Assigns transports and writes fresh disk images.
    pub fn new(paths: &Paths, m: &Manifest) -> Result<Prepared> {
        let mut devices = Vec::new();
        let mut n = 0u32;
        for (i, d) in m.domu.iter().enumerate() {
            for (k, p) in d.passthrough.iter().enumerate() {
                n += 1;
                let disk = match p.kind {
                    PtKind::Blk => {
                        let path = disk_path(paths, &m.name, &d.name, k);
                        // Later boots of a multi-boot run keep the disk.
                        let id = if m.boot > 1 {
                            disk_id(&path)?
                        } else {
                            write_disk(&path, p.disk_mb.unwrap_or(DEFAULT_DISK_MB))?
                        };
                        Some((path, id))
                    }
                    PtKind::Net => None,
                };
                devices.push(Device {
                    domu: i,
                    kind: p.kind,
                    bus: 8 * n,
                    iommu_platform: p.iommu_platform.unwrap_or(d.image.is_linux()),
                    disk,
                });
            }
        }
        let mut p = Prepared::default();
        p.devices = devices;
        Ok(p)
    }

    fn of_domu(&self, i: usize) -> Vec<&Device> {
        self.devices.iter().filter(|d| d.domu == i).collect()
    }

    /// Places one partial-DTB module per domU with devices (its size does
    /// not depend on the calibrated address).
    pub fn place(
        &mut self,
        m: &Manifest,
        dir: &Path,
        placer: &mut crate::qemu::Placer,
    ) -> Result<()> {
        for (i, d) in m.domu.iter().enumerate() {
            let devs = self.of_domu(i);
            if devs.is_empty() {
                continue;
            }
            let size = partial_dtb(&devs, 0, mem_bytes(m, i)).len() as u64;
            let path = dir.join(format!("{}-{}.pt.dtb", m.name, d.name));
            // qemu's loader needs the file to exist when the plan is made.
            std::fs::write(&path, vec![0u8; size as usize])?;
            let placed = placer.place_sized(&format!("{} partial dtb", d.name), &path, size)?;
            self.modules.push((i, path, placed));
        }
        Ok(())
    }

    /// Marks the host nodes `xen,passthrough` and attaches each partial DTB
    /// to its domU node.
    pub fn configure_tree(&self, t: &mut Fdt, m: &Manifest) -> Result<()> {
        for dev in &self.devices {
            let path = format!("/{}", dev.node_name());
            let node = t
                .node_mut(&path)
                .with_context(|| format!("qemu's tree has no {path}"))?;
            let reg = node.prop("reg").map(fdt::decode_cells);
            ensure!(
                reg.as_deref() == Some(&[0, dev.addr() as u32, 0, TRANSPORT_SIZE as u32][..]),
                "{path}: unexpected reg {reg:x?}"
            );
            let irq = node.prop("interrupts").map(fdt::decode_cells);
            ensure!(
                irq.as_deref() == Some(&[0, dev.spi(), 1][..]),
                "{path}: unexpected interrupts {irq:x?}"
            );
            node.set_prop("xen,passthrough", fdt::empty());
        }
        for (i, _, (addr, size)) in &self.modules {
            let name = &m.domu[*i].name;
            let n = t
                .node_mut(&format!("/chosen/{name}"))
                .with_context(|| format!("no /chosen/{name}"))?;
            n.children.push(
                Node::new(format!("module@{addr:x}"))
                    .with(
                        "compatible",
                        fdt::strings(&["multiboot,device-tree", "multiboot,module"]),
                    )
                    .with("reg", fdt::cells64(&[*addr, *size])),
            );
        }
        Ok(())
    }

    /// The qemu arguments for the devices.
    pub fn qemu_args(&self) -> Vec<String> {
        if self.devices.is_empty() {
            return Vec::new();
        }
        let mut v: Vec<String> = vec!["-global".into(), "virtio-mmio.force-legacy=false".into()];
        for (k, d) in self.devices.iter().enumerate() {
            let iommu = if d.iommu_platform {
                ",iommu_platform=on"
            } else {
                ""
            };
            match (&d.kind, &d.disk) {
                (PtKind::Blk, Some((path, _))) => {
                    v.push("-drive".into());
                    v.push(format!(
                        "if=none,id=pt{k},format=raw,file={}",
                        path.display().to_string().replace(',', ",,")
                    ));
                    v.push("-device".into());
                    v.push(format!(
                        "virtio-blk-device,drive=pt{k},bus=virtio-mmio-bus.{}{iommu}",
                        d.bus
                    ));
                }
                _ => {
                    v.push("-netdev".into());
                    v.push(format!("user,id=pt{k}"));
                    v.push("-device".into());
                    v.push(format!(
                        "virtio-net-device,netdev=pt{k},bus=virtio-mmio-bus.{}{iommu}",
                        d.bus
                    ));
                }
            }
        }
        v
    }

    /// Computes the calibration key from the final host DTB and the rest
    /// of the command, looks the windows up and writes the partial DTBs
    /// (device address 0 where uncalibrated).
    pub fn write_blobs(
        &mut self,
        paths: &Paths,
        m: &Manifest,
        host_dtb: &[u8],
        xen: &Path,
        args: &[String],
    ) -> Result<()> {
        if self.devices.is_empty() {
            return Ok(());
        }
        // qemu puts fresh random seeds in every dumped tree: not part of
        // the key (they do not decide where Xen puts a domain's RAM).
        let mut t = Fdt::parse(host_dtb)?;
        if let Some(c) = t.node_mut("/chosen") {
            c.props
                .retain(|(n, _)| n != "rng-seed" && n != "kaslr-seed");
        }
        let mut h = Fnv::default();
        h.write(&t.to_bytes());
        h.write(&std::fs::read(xen).with_context(|| format!("{}", xen.display()))?);
        for a in args {
            h.write(a.as_bytes());
            h.write(b"\0");
        }
        self.key = h.hex();
        self.windows = load_cache(paths).remove(&self.key).unwrap_or_default();
        for (i, path, (_, size)) in &self.modules {
            let base = self.windows.get(&m.domu[*i].name).copied().unwrap_or(0);
            let blob = partial_dtb(&self.of_domu(*i), base, mem_bytes(m, *i));
            ensure!(blob.len() as u64 == *size, "partial dtb size changed");
            std::fs::write(path, blob)?;
        }
        Ok(())
    }

    /// `-monitor` for the run's verifier (added after the calibration key
    /// was computed: its path changes per process).
    pub fn monitor_args(&mut self, paths: &Paths) -> Vec<String> {
        if self.devices.is_empty() {
            return Vec::new();
        }
        let p = paths
            .target
            .join("pt")
            .join(format!("run.{}.mon", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let arg = format!("unix:{},server,nowait", p.display());
        self.monitor = Some(p);
        vec!["-monitor".into(), arg]
    }

    /// Starts the DMA-window verifier of a run: for every passed-through
    /// disk of a calibrated domU it watches, through qemu's monitor, the
    /// host address where the window puts the domain's beacon page; once
    /// the domain's beacon pattern shows there, it grows the disk by one
    /// page, the domain's go signal. A wrong window never shows the
    /// pattern, so the domain never gets the signal and never starts DMA.
    pub fn start_verifier(&self, m: &Manifest, timeout: Duration) {
        let Some(mon) = self.monitor.clone() else {
            return;
        };
        let mut todo = Vec::new();
        for (k, d) in self.devices.iter().enumerate() {
            let domu = &m.domu[d.domu];
            let (Some(base), Some((path, _))) = (self.windows.get(&domu.name), &d.disk) else {
                continue;
            };
            // Linux shows no beacon and waits for no go signal.
            if domu.image.is_linux() {
                continue;
            }
            let size = std::fs::metadata(path).map(|md| md.len()).unwrap_or(0);
            let beacon = base + mem_bytes(m, d.domu) - 4096;
            todo.push((domu.name.clone(), format!("pt{k}"), beacon, size + 4096));
        }
        if todo.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            if let Err(e) = verify(&mon, todo, Instant::now() + timeout) {
                println!("    dma verifier: {e:#}");
            }
        });
    }

    /// True when some passthrough domU has no calibrated window yet.
    pub fn needs_calibration(&self, m: &Manifest) -> bool {
        self.modules
            .iter()
            .any(|(i, _, _)| !self.windows.contains_key(&m.domu[*i].name))
    }
}

fn mem_bytes(m: &Manifest, i: usize) -> u64 {
    u64::from(m.domu[i].memory_mb) << 20
}

/// The partial device tree of one domU.
pub fn partial_dtb(devs: &[&Device], window_device: u64, mem_bytes: u64) -> Vec<u8> {
    let mut pt = Node::new("passthrough")
        .with("compatible", fdt::string("simple-bus"))
        .with("ranges", fdt::empty())
        .with(
            "dma-ranges",
            fdt::cells64(&[window_device, GUEST_RAM_BASE, mem_bytes]),
        )
        .with("#address-cells", fdt::cells(&[2]))
        .with("#size-cells", fdt::cells(&[2]));
    for d in devs {
        let page = d.addr() & !0xfff;
        pt.children.push(
            Node::new(d.node_name())
                .with("compatible", fdt::string("virtio,mmio"))
                .with("reg", fdt::cells64(&[d.addr(), TRANSPORT_SIZE]))
                .with("interrupt-parent", fdt::cells(&[GUEST_GIC_PHANDLE]))
                .with("interrupts", fdt::cells(&[0, d.spi(), 1]))
                .with("dma-coherent", fdt::empty())
                .with("xen,reg", fdt::cells64(&[page, 0x1000, page]))
                .with("xen,path", fdt::string(&format!("/{}", d.node_name())))
                .with("xen,force-assign-without-iommu", fdt::empty()),
        );
    }
    let mut root = Node::new("")
        .with("#address-cells", fdt::cells(&[2]))
        .with("#size-cells", fdt::cells(&[2]));
    root.children.push(pt);
    Fdt {
        boot_cpuid_phys: 0,
        reserved: vec![],
        root,
    }
    .to_bytes()
}

/// Writes a zeroed disk image with the signature and a fresh id in
/// sector 0; returns the id.
fn write_disk(path: &Path, mb: u32) -> Result<String> {
    std::fs::create_dir_all(path.parent().context("disk path")?)?;
    let mut h = Fnv::default();
    h.write(
        format!(
            "{:?}{}{}",
            std::time::SystemTime::now(),
            std::process::id(),
            path.display()
        )
        .as_bytes(),
    );
    let id = h.hex();
    let head = format!("{}id={id}\n", String::from_utf8_lossy(SIGNATURE));
    // A sparse file of zeros with the signature in sector 0.
    let _ = std::fs::remove_file(path);
    let f = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut &f, head.as_bytes())?;
    f.set_len(u64::from(mb) << 20)?;
    Ok(id)
}

/// The id xtask wrote into sector 0 of an existing disk image.
fn disk_id(path: &Path) -> Result<String> {
    let s = read_sector(path, 0)?;
    let rest = s
        .strip_prefix(SIGNATURE)
        .and_then(|r| r.strip_prefix(b"id="))
        .and_then(|r| r.get(..16))
        .with_context(|| format!("{}: no xtask signature in sector 0", path.display()))?;
    Ok(String::from_utf8_lossy(rest).into_owned())
}

/// Reads sector `n` of a disk image.
pub fn read_sector(path: &Path, n: u64) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(n * 512))?;
    let mut b = vec![0u8; 512];
    f.read_exact(&mut b)?;
    Ok(b)
}

fn cache_path(paths: &Paths) -> PathBuf {
    paths.target.join("pt").join("calibration.json")
}

fn load_cache(paths: &Paths) -> BTreeMap<String, BTreeMap<String, u64>> {
    std::fs::read_to_string(cache_path(paths))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn save_cache(paths: &Paths, key: &str, windows: &BTreeMap<String, u64>) -> Result<()> {
    let mut c = load_cache(paths);
    c.insert(key.to_string(), windows.clone());
    let p = cache_path(paths);
    std::fs::create_dir_all(p.parent().context("cache path")?)?;
    let tmp = p.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(&c)? + "\n")?;
    std::fs::rename(&tmp, &p)?;
    Ok(())
}

/// The 64-byte pattern xen-rt writes (`mem::calibration_pattern`).
pub fn calibration_pattern(nonce: u64) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        let v = (nonce ^ 0xa5a5_5a5a_c3c3_3c3c).rotate_left(7 * i as u32 + 1);
        w.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// One domain's beacon line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    pub nonce: u64,
    pub dev: u64,
    pub at: (u64, u64),
    pub ram: (u64, u64),
}

pub fn parse_beacon(line: &str) -> Option<Beacon> {
    let re = Regex::new(
        r"xen-rt: dma-calibrate nonce=([0-9a-f]{16}) dev=0x([0-9a-f]+) at=0x([0-9a-f]+),0x([0-9a-f]+) ram=0x([0-9a-f]+)\+0x([0-9a-f]+)",
    )
    .ok()?;
    let c = re.captures(line)?;
    let h = |i: usize| u64::from_str_radix(&c[i], 16).ok();
    Some(Beacon {
        nonce: h(1)?,
        dev: h(2)?,
        at: (h(3)?, h(4)?),
        ram: (h(5)?, h(6)?),
    })
}

/// Host address of the RAM bank from a dump of host RAM starting at
/// `dump_base`: both pattern copies must be found, exactly once each, at
/// the distance the domain reported.
pub fn locate(dump: &[u8], dump_base: u64, b: &Beacon) -> Result<u64> {
    let pat = calibration_pattern(b.nonce);
    let hits: Vec<u64> = dump
        .chunks(4096)
        .enumerate()
        .filter(|(_, page)| page.starts_with(&pat))
        .map(|(i, _)| dump_base + 4096 * i as u64)
        .collect();
    ensure!(
        hits.len() == 2,
        "pattern of nonce {:016x} found {} times (want 2): {hits:x?}",
        b.nonce,
        hits.len()
    );
    ensure!(
        hits[1] - hits[0] == b.at.1 - b.at.0,
        "pattern copies {:#x} apart in host memory, {:#x} in the guest: RAM bank not contiguous",
        hits[1] - hits[0],
        b.at.1 - b.at.0
    );
    let base = hits[0] - (b.at.0 - b.ram.0);
    Ok(base)
}

/// Host address of a Linux domU's RAM bank from a dump of host RAM:
/// Xen wrote the domU's DTB (`size` bytes, its `/chosen/bootargs` being
/// `bootargs`) at guest address `dtb_gpa`. Exactly one page-aligned
/// flattened tree of that size holding those bootargs must be in the
/// dump (the host tree and Xen's copy of it are larger).
pub fn locate_dtb(
    dump: &[u8],
    dump_base: u64,
    dtb_gpa: u64,
    size: u64,
    bootargs: &str,
) -> Result<u64> {
    ensure!(
        dtb_gpa >= GUEST_RAM_BASE && size >= 40,
        "DTB at {dtb_gpa:#x} size {size:#x}"
    );
    let mut needle = bootargs.as_bytes().to_vec();
    needle.push(0);
    let hits: Vec<u64> = dump
        .chunks(4096)
        .enumerate()
        .filter(|(i, page)| {
            page.len() >= 8
                && page[..4] == [0xd0, 0x0d, 0xfe, 0xed]
                && u64::from(u32::from_be_bytes([page[4], page[5], page[6], page[7]])) == size
                && dump
                    .get(i * 4096..i * 4096 + size as usize)
                    .is_some_and(|blob| blob.windows(needle.len()).any(|w| w == needle))
        })
        .map(|(i, _)| dump_base + 4096 * i as u64)
        .collect();
    ensure!(
        hits.len() == 1,
        "a {size:#x}-byte DTB with bootargs {bootargs:?} found {} times (want 1): {hits:x?}",
        hits.len()
    );
    Ok(hits[0] - (dtb_gpa - GUEST_RAM_BASE))
}

/// Boots the plan once in calibration mode (partial DTBs with device
/// address 0), dumps host RAM when every passthrough domU showed its
/// beacon, and caches the bank addresses.
pub fn calibrate(paths: &Paths, m: &Manifest, plan: &crate::qemu::Plan) -> Result<()> {
    let pt = &plan.passthrough;
    let t0 = Instant::now();
    let dir = paths.target.join("pt");
    std::fs::create_dir_all(&dir)?;
    let mon = dir.join(format!("calibrate.{}.mon", std::process::id()));
    let dump = dir.join(format!("calibrate.{}.ram", std::process::id()));
    let _ = std::fs::remove_file(&mon);
    step(&format!(
        "calibrating the DMA window of {} (key {}): one boot in calibration mode",
        m.name, pt.key
    ));
    // domU name per device address the beacon reports (its first device).
    let mut want: BTreeMap<u64, String> = BTreeMap::new();
    for d in &pt.devices {
        want.entry(d.addr())
            .or_insert_with(|| m.domu[d.domu].name.clone());
    }
    let mut first_dev_of: BTreeMap<String, u64> = BTreeMap::new();
    // Linux domUs show no beacon: their bank is found through the DTB Xen
    // wrote into it (see `locate_dtb`). domU name -> domid.
    let mut linux: BTreeMap<String, u32> = BTreeMap::new();
    for d in &pt.devices {
        let domu = &m.domu[d.domu];
        if domu.image.is_linux() {
            linux.insert(domu.name.clone(), d.domu as u32 + 1);
            continue;
        }
        first_dev_of.entry(domu.name.clone()).or_insert(d.addr());
    }
    let dtb_line = Regex::new(r"Loading d(\d+) DTB to 0x([0-9a-f]+)-0x([0-9a-f]+)")?;
    let started_line = Regex::new(r"\(XEN\) Freed \d+kB init memory")?;
    // domid -> (guest address, size) of the DTB Xen wrote.
    let mut dtbs: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut started = false;
    let mut args = plan.args.clone();
    args.push("-monitor".into());
    args.push(format!("unix:{},server,nowait", mon.display()));
    let mut child = Command::new(crate::qemu::QEMU)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting qemu for calibration")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::fs::create_dir_all(&paths.logs)?;
    let mut log = std::fs::File::create(paths.logs.join(format!("{}-calibrate.log", m.name)))?;
    let mut beacons: BTreeMap<String, Beacon> = BTreeMap::new();
    let result = (|| -> Result<BTreeMap<String, u64>> {
        let linux_ready = |started: bool, dtbs: &BTreeMap<u32, (u64, u64)>| {
            linux.is_empty() || (started && linux.values().all(|id| dtbs.contains_key(id)))
        };
        while beacons.len() < first_dev_of.len() || !linux_ready(started, &dtbs) {
            let left = CALIBRATION_TIMEOUT.saturating_sub(t0.elapsed());
            ensure!(
                !left.is_zero(),
                "no calibration beacon within {:?}",
                CALIBRATION_TIMEOUT
            );
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(_) => bail!("qemu exited before every domain showed its calibration beacon"),
            };
            writeln!(
                log,
                "[+{:8.3}] {}",
                t0.elapsed().as_secs_f64(),
                line.trim_end()
            )?;
            if let Some(c) = dtb_line.captures(&line) {
                let h = |i: usize| u64::from_str_radix(&c[i], 16).unwrap_or(0);
                if let Ok(id) = c[1].parse::<u32>() {
                    dtbs.insert(id, (h(2), h(3).saturating_sub(h(2))));
                }
            }
            if started_line.is_match(&line) {
                started = true;
            }
            if let Some(b) = parse_beacon(&line) {
                let Some(name) = first_dev_of
                    .iter()
                    .find(|(_, a)| **a == b.dev)
                    .map(|(n, _)| n.clone())
                else {
                    bail!("beacon for unknown device {:#x}", b.dev);
                };
                println!(
                    "    beacon of {name} at +{:.1} s: {line}",
                    t0.elapsed().as_secs_f64()
                );
                beacons.insert(name, b);
            }
        }
        let t_dump = Instant::now();
        monitor_pmemsave(&mon, &dump)?;
        let data = std::fs::read(&dump).context("reading the RAM dump")?;
        let _ = std::fs::remove_file(&dump);
        ensure!(
            data.len() as u64 == HOST_RAM.1,
            "RAM dump is {} bytes",
            data.len()
        );
        let mut out = BTreeMap::new();
        for (name, id) in &linux {
            let i = *id as usize - 1;
            let (gpa, size) = dtbs[id];
            let base = locate_dtb(&data, HOST_RAM.0, gpa, size, &m.domu[i].bootargs())
                .with_context(|| format!("domU {name} (Linux)"))?;
            let mem = mem_bytes(m, i);
            println!(
                "    {name}: DTB at guest {gpa:#x}; RAM bank guest {GUEST_RAM_BASE:#x}+{mem:#x} is host {base:#x}{}",
                if base % mem == 0 {
                    " (naturally aligned)"
                } else {
                    " (NOT naturally aligned)"
                }
            );
            out.insert(name.clone(), base);
        }
        for (name, b) in &beacons {
            let base = locate(&data, HOST_RAM.0, b).with_context(|| format!("domU {name}"))?;
            let aligned = base % b.ram.1 == 0;
            println!(
                "    {name}: RAM bank guest {:#x}+{:#x} is host {base:#x}{}",
                b.ram.0,
                b.ram.1,
                if aligned {
                    " (naturally aligned)"
                } else {
                    " (NOT naturally aligned)"
                }
            );
            out.insert(name.clone(), base);
        }
        println!(
            "    dump + search took {:.1} s",
            t_dump.elapsed().as_secs_f64()
        );
        Ok(out)
    })();
    let _ = child.kill();
    let _ = child.wait();
    drop(rx);
    let _ = reader.join();
    let _ = std::fs::remove_file(&mon);
    let _ = std::fs::remove_file(&dump);
    let windows = result?;
    save_cache(paths, &pt.key, &windows)?;
    step(&format!(
        "calibrated in {:.1} s; cached in {}",
        t0.elapsed().as_secs_f64(),
        cache_path(paths).display()
    ));
    Ok(())
}

/// Whether 64 bytes (eight little-endian words as `xp /8gx` prints them)
/// are a calibration pattern: word i is the same value rotated by 7 i + 1.
pub fn is_pattern(words: &[u64]) -> bool {
    if words.len() != 8 || words[0] == 0 {
        return false;
    }
    let y = words[0].rotate_right(1);
    words
        .iter()
        .enumerate()
        .all(|(i, w)| *w == y.rotate_left(7 * i as u32 + 1))
}

fn read_prompt(s: &mut std::os::unix::net::UnixStream) -> Result<String> {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("(qemu)") {
        let n = s.read(&mut buf).context("reading the monitor")?;
        ensure!(n > 0, "monitor closed");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(seen)
}

/// The verifier loop (see [`Prepared::start_verifier`]).
fn verify(mon: &Path, mut todo: Vec<(String, String, u64, u64)>, deadline: Instant) -> Result<()> {
    let mut s = loop {
        match std::os::unix::net::UnixStream::connect(mon) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => bail!("no monitor at {}: {e}", mon.display()),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    read_prompt(&mut s)?;
    let word = Regex::new(r"0x([0-9a-f]{16})")?;
    let t0 = Instant::now();
    while !todo.is_empty() {
        ensure!(Instant::now() < deadline, "no beacon seen for {:?}", todo);
        let mut left = Vec::new();
        for (name, drive, beacon, new_size) in todo {
            writeln!(s, "xp /8gx {beacon:#x}")?;
            let out = read_prompt(&mut s)?;
            let words: Vec<u64> = word
                .captures_iter(&out)
                .filter_map(|c| u64::from_str_radix(&c[1], 16).ok())
                .collect();
            if is_pattern(&words) {
                // HMP reads a bare size as MiB: say bytes.
                writeln!(s, "block_resize {drive} {new_size}B")?;
                let reply = read_prompt(&mut s)?;
                let reply = reply
                    .lines()
                    .map(str::trim)
                    .filter(|l| {
                        !l.is_empty() && !l.starts_with("(qemu)") && !l.contains("block_resize")
                    })
                    .collect::<Vec<_>>()
                    .join(" / ");
                println!(
                    "    dma window of {name} verified: beacon at host {beacon:#x} after {:.1} s; go signal sent{}",
                    t0.elapsed().as_secs_f64(),
                    if reply.is_empty() {
                        String::new()
                    } else {
                        format!(" (monitor: {reply})")
                    }
                );
            } else {
                left.push((name, drive, beacon, new_size));
            }
        }
        todo = left;
        if !todo.is_empty() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(())
}

/// `pmemsave` of all host RAM through qemu's human monitor.
fn monitor_pmemsave(mon: &Path, out: &Path) -> Result<()> {
    let mut s = std::os::unix::net::UnixStream::connect(mon)
        .with_context(|| format!("connecting to the monitor {}", mon.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut read_until_prompt =
        |s: &mut std::os::unix::net::UnixStream, seen: &mut String| -> Result<()> {
            seen.clear();
            while !seen.contains("(qemu)") {
                let n = s.read(&mut buf).context("reading the monitor")?;
                ensure!(n > 0, "monitor closed");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            Ok(())
        };
    read_until_prompt(&mut s, &mut seen)?;
    writeln!(
        s,
        "pmemsave {:#x} {:#x} \"{}\"",
        HOST_RAM.0,
        HOST_RAM.1,
        out.display()
    )?;
    read_until_prompt(&mut s, &mut seen)?;
    let _ = writeln!(s, "quit");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_tree_shape() {
        let d = Device {
            domu: 0,
            kind: PtKind::Blk,
            bus: 16,
            iommu_platform: false,
            disk: None,
        };
        let blob = partial_dtb(&[&d], 0x9000_0000, 16 << 20);
        assert_eq!(blob.len(), partial_dtb(&[&d], 0, 16 << 20).len());
        let t = Fdt::parse(&blob).unwrap();
        let pt = t.node("/passthrough").unwrap();
        assert_eq!(
            fdt::decode_cells(pt.prop("dma-ranges").unwrap()),
            [0, 0x9000_0000, 0, 0x4000_0000, 0, 0x100_0000]
        );
        let n = t.node("/passthrough/virtio_mmio@a002000").unwrap();
        assert_eq!(
            fdt::decode_cells(n.prop("interrupts").unwrap()),
            [0, 0x20, 1]
        );
        assert_eq!(
            fdt::decode_cells(n.prop("xen,reg").unwrap()),
            [0, 0x0a00_2000, 0, 0x1000, 0, 0x0a00_2000]
        );
        assert_eq!(n.prop("xen,path").unwrap(), b"/virtio_mmio@a002000\0");
        assert!(n.prop("xen,force-assign-without-iommu").is_some());
    }

    #[test]
    fn beacon_and_locate() {
        let line = "(XEN) DOM1: xen-rt: dma-calibrate nonce=0123456789abcdef dev=0xa002000 at=0x40810000,0x40fff000 ram=0x40000000+0x1000000";
        let b = parse_beacon(line).unwrap();
        assert_eq!(b.dev, 0xa00_2000);
        let mut dump = vec![0u8; 64 << 20];
        let base = 0x4000_0000u64 + (32 << 20);
        let pat = calibration_pattern(b.nonce);
        for at in [b.at.0, b.at.1] {
            let off = (base + (at - b.ram.0) - 0x4000_0000) as usize;
            dump[off..off + 64].copy_from_slice(&pat);
        }
        assert_eq!(locate(&dump, 0x4000_0000, &b).unwrap(), base);
        // A third copy (or a missing one) is an error, never a guess.
        dump[4096..4096 + 64].copy_from_slice(&pat);
        assert!(locate(&dump, 0x4000_0000, &b).is_err());
    }

    #[test]
    fn dtb_locate() {
        let mut dump = vec![0u8; 8 << 20];
        let args = "console=ttyAMA0 rdinit=/init role=driver";
        let mut blob = vec![0u8; 0x580];
        blob[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
        blob[4..8].copy_from_slice(&0x580u32.to_be_bytes());
        blob[0x200..0x200 + args.len()].copy_from_slice(args.as_bytes());
        // The domU's copy at host 0x40000000 + 6 MiB, its guest address
        // 0x40000000 + 2 MiB: the bank starts at host 0x40400000.
        dump[6 << 20..(6 << 20) + 0x580].copy_from_slice(&blob);
        // A larger tree with the same bootargs (the host's) does not count.
        let mut host = blob.clone();
        host[4..8].copy_from_slice(&0x2000u32.to_be_bytes());
        dump[1 << 20..(1 << 20) + 0x580].copy_from_slice(&host);
        assert_eq!(
            locate_dtb(&dump, 0x4000_0000, 0x4020_0000, 0x580, args).unwrap(),
            0x4040_0000
        );
        // Other bootargs (a prefix is not enough), or two copies: errors.
        assert!(locate_dtb(&dump, 0x4000_0000, 0x4020_0000, 0x580, "console=ttyAMA0").is_err());
        dump[3 << 20..(3 << 20) + 0x580].copy_from_slice(&blob);
        assert!(locate_dtb(&dump, 0x4000_0000, 0x4020_0000, 0x580, args).is_err());
    }

    #[test]
    fn pattern_words() {
        let p = calibration_pattern(0x1234_5678_9abc_def0);
        let words: Vec<u64> = p
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(is_pattern(&words));
        let mut bad = words.clone();
        bad[5] ^= 1;
        assert!(!is_pattern(&bad));
        assert!(!is_pattern(&[0; 8]));
        assert!(!is_pattern(&words[..7]));
    }
}
