//! Scenario manifests: `tests/scenarios/<name>.toml`.
//!
//! ```toml
//! name = "hello"
//! timeout_s = 300
//! done_marker = "=== DOM0 SCENARIO DONE"   # regex on the console
//! # xen_args = "..."                        # optional, replaces the default
//! # boots = 2   # run the whole qemu system N times in a row on the same
//! #             # passthrough disks; each domain's bootargs get `boot=<n>`
//!
//! [dom0]
//! memory_mb = 512
//! bootargs = "console=hvc0 earlycon=xen rdinit=/init"   # optional
//! script = "tests/scenarios/hello/dom0.sh"              # becomes /scenario.sh
//!
//! [[domu]]
//! name = "hello-a"
//! image = { crate = "hello-domain" }   # target/images/hello-domain.img
//! memory_mb = 16
//! vcpus = 1
//! bootargs = "role=server peer=2"
//! # enhanced = true  (xen,enhanced = "enabled": xenstore + grants)
//! # vpl011 = true    (virtual PL011 console)
//!
//! [[domu]]
//! name = "linux-guest"
//! image = "linux"                      # Debian kernel + guest initramfs
//! script = "tests/scenarios/x/guest.sh" # optional, /scenario.sh in the guest
//!
//! [[domu.passthrough]]                 # a virtio-mmio device for the domU above
//! kind = "blk"                         # or "net" (qemu user networking)
//! disk_mb = 16                         # blk: fresh image target/pt/<scenario>-<domu>-<k>.img
//! # iommu_platform = true              # default: true for linux, false for our domains
//! ```
//!
//! Linux domUs may also ask for `modules = ["virtio_mmio", ...]` (extra
//! kernel modules, loaded after the frontends), `programs = ["blkload"]`
//! (workspace crates built static for aarch64-unknown-linux-musl, in
//! /usr/bin) and `xenstore_tools = true` (xenstore-read/write/... with
//! their libraries).
//!
//! A domU with passthrough devices needs a power-of-two `memory_mb`; see
//! `src/passthrough.rs` for the DMA-window calibration and verification.
//!
//! Domain ids: dom0 is 0; the `[[domu]]` entries become domains 1, 2, ...
//! in manifest order, because Xen creates dom0less domains in device-tree
//! order and the DTB lists them in manifest order.

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_XEN_ARGS: &str = "console=dtuart dtuart=/pl011@9000000 dom0_mem={dom0_mb}M dom0_max_vcpus=1 \
     bootscrub=0 loglvl=all guest_loglvl=all xsm=dummy";
pub const DEFAULT_DOM0_BOOTARGS: &str = "console=hvc0 earlycon=xen rdinit=/init";
pub const DEFAULT_LINUX_GUEST_BOOTARGS: &str = "console=ttyAMA0 rdinit=/init";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub timeout_s: u64,
    pub done_marker: String,
    #[serde(default)]
    pub xen_args: Option<String>,
    /// Whole-system boots in a row on the same passthrough disks.
    #[serde(default = "one")]
    pub boots: u32,
    /// Which of the `boots` this is (1-based; not a TOML field).
    #[serde(skip)]
    pub boot: u32,
    pub dom0: Dom0,
    #[serde(default)]
    pub domu: Vec<DomU>,
    /// Where the manifest was read from (not a TOML field).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dom0 {
    pub memory_mb: u32,
    #[serde(default)]
    pub bootargs: Option<String>,
    #[serde(default)]
    pub script: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomU {
    pub name: String,
    pub image: Image,
    pub memory_mb: u32,
    #[serde(default = "one")]
    pub vcpus: u32,
    #[serde(default)]
    pub bootargs: Option<String>,
    #[serde(default = "yes")]
    pub enhanced: bool,
    #[serde(default = "yes")]
    pub vpl011: bool,
    /// Linux guests only: a shell script copied into the guest initramfs.
    #[serde(default)]
    pub script: Option<PathBuf>,
    /// virtio-mmio devices passed through to this domU (see
    /// `src/passthrough.rs`): `[[domu.passthrough]]` with `kind = "blk"`
    /// (a fresh disk image under target/pt/, `disk_mb` MiB, default 16) or
    /// `kind = "net"` (qemu user networking).
    #[serde(default)]
    pub passthrough: Vec<Passthrough>,
    /// Linux guests only: extra kernel modules (with their dependencies),
    /// loaded by the guest's /init after the default frontends.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Linux guests only: workspace crates built for
    /// `aarch64-unknown-linux-musl` (static) and installed as
    /// `/usr/bin/<crate>` (see `src/bench.rs`).
    #[serde(default)]
    pub programs: Vec<String>,
    /// Linux guests only: the `xenstore-*` tools with the glibc and Xen
    /// libraries they need (a driver domain's hotplug loop).
    #[serde(default)]
    pub xenstore_tools: bool,
    /// ` boot=<n>` in multi-boot runs (not a TOML field).
    #[serde(skip)]
    pub boot_suffix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passthrough {
    pub kind: PtKind,
    /// blk: size of the disk image in MiB.
    #[serde(default)]
    pub disk_mb: Option<u32>,
    /// Offer VIRTIO_F_ACCESS_PLATFORM (qemu `iommu_platform=on`). Linux
    /// needs it to use the DMA API (and so dma-ranges); default: on for
    /// Linux guests, off for our domains (virtio-drivers does not
    /// negotiate the feature, and our HAL translates anyway).
    #[serde(default)]
    pub iommu_platform: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtKind {
    Blk,
    Net,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Image {
    /// `"linux"`: the Debian kernel with the guest initramfs.
    Named(String),
    /// `{ crate = "hello-domain" }`: target/images/<crate>.img.
    Crate {
        #[serde(rename = "crate")]
        krate: String,
    },
}

impl Image {
    pub fn crate_name(&self) -> Option<&str> {
        match self {
            Image::Crate { krate } => Some(krate),
            Image::Named(_) => None,
        }
    }
    pub fn is_linux(&self) -> bool {
        matches!(self, Image::Named(n) if n == "linux")
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

impl Manifest {
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let mut m: Manifest =
            toml::from_str(text).with_context(|| format!("parsing {}", path.display()))?;
        m.path = path.to_path_buf();
        m.boot = 1;
        m.validate()
            .with_context(|| format!("invalid manifest {}", path.display()))?;
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path)
    }

    fn validate(&self) -> Result<()> {
        ensure!(!self.name.is_empty(), "empty name");
        ensure!(self.timeout_s > 0, "timeout_s must be > 0");
        ensure!((1..=4).contains(&self.boots), "boots must be 1..=4");
        regex::Regex::new(&self.done_marker).context("done_marker is not a valid regex")?;
        ensure!(self.dom0.memory_mb >= 64, "dom0.memory_mb too small");
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.domu {
            ensure!(
                !d.name.is_empty()
                    && d.name.len() <= 31
                    && d.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ",._+-".contains(c)),
                "domU name {:?} is not a valid device-tree node name",
                d.name
            );
            ensure!(
                seen.insert(d.name.clone()),
                "duplicate domU name {}",
                d.name
            );
            ensure!(
                d.memory_mb > 0 && d.vcpus > 0,
                "domU {}: memory_mb and vcpus must be > 0",
                d.name
            );
            if !d.passthrough.is_empty() {
                ensure!(
                    d.memory_mb.is_power_of_two(),
                    "domU {}: passthrough needs a power-of-two memory_mb (one naturally aligned RAM chunk)",
                    d.name
                );
            }
            match &d.image {
                Image::Named(n) if n == "linux" => {}
                Image::Named(n) => bail!(
                    "domU {}: unknown image {n:?} (use \"linux\" or {{ crate = \"...\" }})",
                    d.name
                ),
                Image::Crate { krate } => {
                    ensure!(!krate.is_empty(), "domU {}: empty crate", d.name);
                    ensure!(
                        d.script.is_none(),
                        "domU {}: `script` is only for linux guests",
                        d.name
                    );
                    ensure!(
                        d.modules.is_empty() && d.programs.is_empty() && !d.xenstore_tools,
                        "domU {}: `modules`, `programs` and `xenstore_tools` are only for linux guests",
                        d.name
                    );
                }
            }
        }
        let devices: usize = self.domu.iter().map(|d| d.passthrough.len()).sum();
        ensure!(
            devices <= crate::passthrough::MAX_DEVICES,
            "at most {} passthrough devices in all",
            crate::passthrough::MAX_DEVICES
        );
        Ok(())
    }

    /// Xen's command line (default or override), with `{dom0_mb}` expanded.
    pub fn xen_args(&self) -> String {
        self.xen_args
            .as_deref()
            .unwrap_or(DEFAULT_XEN_ARGS)
            .replace("{dom0_mb}", &self.dom0.memory_mb.to_string())
    }

    pub fn dom0_bootargs(&self) -> String {
        let base = self
            .dom0
            .bootargs
            .clone()
            .unwrap_or_else(|| DEFAULT_DOM0_BOOTARGS.to_string());
        self.with_boot(base)
    }

    /// Appends `boot=<n>` for multi-boot scenarios.
    fn with_boot(&self, args: String) -> String {
        if self.boots > 1 {
            format!("{args} boot={}", self.boot)
        } else {
            args
        }
    }

    /// The manifest as seen by boot `n` (1-based) of a multi-boot run.
    pub fn for_boot(&self, n: u32) -> Manifest {
        let mut m = self.clone();
        m.boot = n;
        for d in &mut m.domu {
            d.boot_suffix = if self.boots > 1 {
                format!(" boot={n}")
            } else {
                String::new()
            };
        }
        m
    }

    /// Domain id of a domU by name (1-based manifest order).
    pub fn domid(&self, name: &str) -> Option<u32> {
        self.domu
            .iter()
            .position(|d| d.name == name)
            .map(|i| i as u32 + 1)
    }

    /// Distinct crates the domUs need, in first-use order.
    pub fn crates(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for d in &self.domu {
            if let Some(c) = d.image.crate_name()
                && !v.iter().any(|x| x == c)
            {
                v.push(c.to_string());
            }
        }
        v
    }
}

impl DomU {
    pub fn bootargs(&self) -> String {
        let args = match (&self.bootargs, self.image.is_linux()) {
            (Some(b), true) => format!("{DEFAULT_LINUX_GUEST_BOOTARGS} {b}"),
            (Some(b), false) => b.clone(),
            (None, true) => DEFAULT_LINUX_GUEST_BOOTARGS.to_string(),
            (None, false) => String::new(),
        };
        format!("{args}{}", self.boot_suffix).trim().to_string()
    }
}

/// Resolves `--scenario` to a manifest path: a name under
/// tests/scenarios/, or a path to a `.toml` file.
pub fn resolve(root: &Path, scenario: &str) -> PathBuf {
    if scenario.ends_with(".toml") || scenario.contains('/') {
        let p = PathBuf::from(scenario);
        if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
        }
    } else {
        root.join("tests/scenarios")
            .join(format!("{scenario}.toml"))
    }
}

/// All manifests under tests/scenarios, sorted by file name.
pub fn all(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("tests/scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"
name = "hello"
timeout_s = 300
done_marker = "=== DOM0 SCENARIO DONE"

[dom0]
memory_mb = 512
script = "tests/scenarios/hello/dom0.sh"

[[domu]]
name = "hello-a"
image = { crate = "hello-domain" }
memory_mb = 16
vcpus = 1
bootargs = "role=server peer=2"

[[domu]]
name = "hello-b"
image = { crate = "hello-domain" }
memory_mb = 16
bootargs = "role=client peer=1"
vpl011 = false

[[domu]]
name = "lx"
image = "linux"
memory_mb = 256
enhanced = false
"#;

    #[test]
    fn parses_hello_shape() {
        let m = Manifest::parse(HELLO, Path::new("hello.toml")).unwrap();
        assert_eq!(m.name, "hello");
        assert_eq!(m.timeout_s, 300);
        assert_eq!(m.dom0.memory_mb, 512);
        assert_eq!(
            m.dom0.script.as_deref(),
            Some(Path::new("tests/scenarios/hello/dom0.sh"))
        );
        assert_eq!(m.domu.len(), 3);
        assert_eq!(
            m.domu[0].image,
            Image::Crate {
                krate: "hello-domain".into()
            }
        );
        assert!(m.domu[0].enhanced && m.domu[0].vpl011);
        assert_eq!(m.domu[1].vcpus, 1);
        assert!(!m.domu[1].vpl011);
        assert!(m.domu[2].image.is_linux());
        assert!(!m.domu[2].enhanced);
        assert_eq!(m.domid("hello-a"), Some(1));
        assert_eq!(m.domid("hello-b"), Some(2));
        assert_eq!(m.domid("nope"), None);
        assert_eq!(m.crates(), vec!["hello-domain".to_string()]);
        assert!(m.xen_args().contains("dom0_mem=512M"));
        assert!(m.xen_args().contains("xsm=dummy"));
        assert_eq!(m.dom0_bootargs(), DEFAULT_DOM0_BOOTARGS);
        assert_eq!(m.domu[0].bootargs(), "role=server peer=2");
        assert_eq!(m.domu[2].bootargs(), DEFAULT_LINUX_GUEST_BOOTARGS);
    }

    #[test]
    fn rejects_bad_manifests() {
        let bad_image = HELLO.replace("image = \"linux\"", "image = \"windows\"");
        assert!(Manifest::parse(&bad_image, Path::new("x")).is_err());
        let unknown_field = HELLO.replace("vpl011 = false", "vpl011 = false\ncolour = 1");
        assert!(Manifest::parse(&unknown_field, Path::new("x")).is_err());
        let dup = HELLO.replace("name = \"lx\"", "name = \"hello-a\"");
        assert!(Manifest::parse(&dup, Path::new("x")).is_err());
        let bad_re = HELLO.replace("=== DOM0 SCENARIO DONE", "(unclosed");
        assert!(Manifest::parse(&bad_re, Path::new("x")).is_err());
        let bad_node = HELLO.replace("name = \"lx\"", "name = \"l x\"");
        assert!(Manifest::parse(&bad_node, Path::new("x")).is_err());
    }

    #[test]
    fn repo_manifests_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap();
        let root = root.parent().unwrap();
        for p in all(root).unwrap() {
            let m = Manifest::load(&p).unwrap();
            if let Some(s) = &m.dom0.script {
                assert!(
                    root.join(s).is_file(),
                    "{}: missing dom0 script {}",
                    p.display(),
                    s.display()
                );
            }
        }
    }

    #[test]
    fn override_xen_args() {
        let t = HELLO.replace(
            "timeout_s = 300",
            "timeout_s = 300\nxen_args = \"console=dtuart dom0_mem={dom0_mb}M\"",
        );
        let m = Manifest::parse(&t, Path::new("x")).unwrap();
        assert_eq!(m.xen_args(), "console=dtuart dom0_mem=512M");
    }
}
