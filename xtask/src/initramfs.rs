//! Initramfs assembly for dom0 and for Linux test guests, entirely in Rust
//! (no host cpio, no root privileges): files are gathered from the unpacked
//! Debian world into an in-memory tree, written as cpio newc and gzipped.
//!
//! Layout is usr-merged like Debian trixie: `bin`, `sbin`, `lib` are
//! symlinks into `usr/`. Kernel modules (`.ko.xz` in the Debian kernel) are
//! decompressed into `/lib/modules/xen/<name>.ko`, with their `depends=`
//! (read from `.modinfo`) pulled in first; `/lib/modules/xen/modules.order`
//! lists them in load order for the init scripts.
//!
//! Rebuilds are cheap to decide: the uncompressed archive is fingerprinted
//! and gzip runs only when the fingerprint differs from the last build.

use crate::apt::World;
use crate::cpio::CpioWriter;
use crate::util::{Fnv, Paths};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Modules dom0 loads (backends and the Xen device files).
pub const DOM0_MODULES: &[&str] = &[
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
    "xen-netback",
    "xen-blkback",
    "loop",
];
/// Modules a Linux test guest loads (PV frontends).
/// ext4 (which also mounts ext2; it needs crc32c, loaded through the crypto
/// API, not a module dependency) for the blk scenario's filesystem checks.
pub const GUEST_MODULES: &[&str] = &["xen-netfront", "xen-blkfront", "crc32c_generic", "ext4"];
/// Tool binaries left out of dom0 (python, OCaml xenstored).
const SKIP_XEN_BINS: &[&str] = &["pygrub", "oxenstored"];

#[derive(Debug, Clone)]
enum Entry {
    Dir,
    File { perm: u32, data: Vec<u8> },
    Symlink(String),
}

/// An initramfs under construction: relative path → entry.
#[derive(Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    /// Resolves symlinked parent directories (e.g. `lib/x` → `usr/lib/x`)
    /// so every entry is stored under its real directory.
    fn resolve_parent(&self, path: &str) -> String {
        let mut parts: Vec<String> = Vec::new();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            parts.push(c.to_string());
            if i + 1 == comps.len() {
                break;
            }
            let mut hops = 0;
            while let Some(Entry::Symlink(t)) = self.entries.get(&parts.join("/")) {
                hops += 1;
                if hops > 8 {
                    break;
                }
                let last = parts.pop();
                let _ = last;
                if t.starts_with('/') {
                    parts.clear();
                }
                for tc in t.split('/').filter(|c| !c.is_empty() && *c != ".") {
                    if tc == ".." {
                        parts.pop();
                    } else {
                        parts.push(tc.to_string());
                    }
                }
            }
        }
        parts.join("/")
    }

    pub fn dir(&mut self, path: &str) {
        let p = self.resolve_parent(path);
        let mut acc = String::new();
        for c in p.split('/').filter(|c| !c.is_empty()) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            self.entries.entry(acc.clone()).or_insert(Entry::Dir);
        }
    }

    fn parent_dirs(&mut self, p: &str) {
        if let Some((parent, _)) = p.rsplit_once('/') {
            self.dir(parent);
        }
    }

    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) {
        let p = self.resolve_parent(path);
        self.parent_dirs(&p);
        self.entries.insert(p, Entry::File { perm, data });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        let p = self.resolve_parent(path);
        self.parent_dirs(&p);
        self.entries.insert(p, Entry::Symlink(target.to_string()));
    }

    /// Copies a host file or symlink (not following it) into the tree.
    pub fn copy_host(&mut self, path: &str, host: &Path) -> Result<()> {
        let md = std::fs::symlink_metadata(host).with_context(|| format!("{}", host.display()))?;
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(host)?;
            self.symlink(path, &t.to_string_lossy());
        } else if md.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let perm = md.permissions().mode() & 0o7777;
            self.file(path, perm, std::fs::read(host)?);
        } else if md.is_dir() {
            self.dir(path);
        }
        Ok(())
    }

    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&self.resolve_parent(path))
    }

    /// Serializes (parents sort before children in a BTreeMap).
    pub fn to_cpio(&self) -> Result<Vec<u8>> {
        let mut w = CpioWriter::new();
        for (p, e) in &self.entries {
            match e {
                Entry::Dir => w.dir(p, 0o755)?,
                Entry::File { perm, data } => w.file(p, *perm, data)?,
                Entry::Symlink(t) => w.symlink(p, t)?,
            }
        }
        Ok(w.finish())
    }
}

/// Base layout shared by dom0 and guests: usr-merged dirs and busybox.
fn base_layout(t: &mut Tree, world: &World) -> Result<()> {
    for d in [
        "usr/bin", "usr/sbin", "usr/lib", "etc", "proc", "sys", "dev", "tmp", "run", "root", "mnt",
        "var/log",
    ] {
        t.dir(d);
    }
    t.symlink("bin", "usr/bin");
    t.symlink("sbin", "usr/sbin");
    t.symlink("lib", "usr/lib");
    let bb = ["usr/bin/busybox", "bin/busybox"]
        .iter()
        .map(|p| world.root.join(p))
        .find(|p| p.is_file())
        .context("busybox not found in the world root (busybox-static)")?;
    t.copy_host("usr/bin/busybox", &bb)?;
    t.symlink("usr/bin/sh", "busybox");
    t.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
    );
    t.file("etc/group", 0o644, b"root:x:0:\n".to_vec());
    Ok(())
}

/// Adds kernel modules (and their dependencies) in load order.
/// Returns notes for modules that are built into the kernel.
fn add_modules(t: &mut Tree, world: &World, names: &[&str]) -> Result<Vec<String>> {
    let moddir = world.modules_dir();
    let mut index: BTreeMap<String, PathBuf> = BTreeMap::new();
    walk(&moddir.join("kernel"), &mut |p| {
        let n = p.file_name().unwrap().to_string_lossy();
        for ext in [".ko.xz", ".ko"] {
            if let Some(stem) = n.strip_suffix(ext) {
                index.insert(norm(stem), p.to_path_buf());
            }
        }
    })?;
    let builtin: BTreeSet<String> = std::fs::read_to_string(moddir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| norm(f.trim_end_matches(".ko")))
        .collect();
    let mut order: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        builtin: &BTreeSet<String>,
        t: &mut Tree,
        order: &mut Vec<String>,
        notes: &mut Vec<String>,
        depth: usize,
    ) -> Result<()> {
        let key = norm(name);
        if order.iter().any(|o| norm(o) == key) || depth > 16 {
            return Ok(());
        }
        let Some(path) = index.get(&key) else {
            if builtin.contains(&key) {
                notes.push(format!("{name} is built into the kernel; skipped"));
                return Ok(());
            }
            bail!("kernel module {name} not found (neither a .ko nor built in)");
        };
        let raw = std::fs::read(path)?;
        let ko = if path.extension().is_some_and(|e| e == "xz") {
            unxz(&raw).with_context(|| format!("{}", path.display()))?
        } else {
            raw
        };
        for dep in modinfo_depends(&ko)? {
            visit(&dep, index, builtin, t, order, notes, depth + 1)?;
        }
        let file_name = path.file_name().unwrap().to_string_lossy();
        let stem = file_name
            .trim_end_matches(".xz")
            .trim_end_matches(".ko")
            .to_string();
        t.file(&format!("lib/modules/xen/{stem}.ko"), 0o644, ko);
        order.push(stem);
        Ok(())
    }
    for n in names {
        visit(n, &index, &builtin, t, &mut order, &mut notes, 0)?;
    }
    let mut list = order.join("\n");
    list.push('\n');
    t.file("lib/modules/xen/modules.order", 0o644, list.into_bytes());
    Ok(notes)
}

fn norm(s: &str) -> String {
    s.replace('-', "_")
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&e.path(), f)?;
        } else {
            f(&e.path());
        }
    }
    Ok(())
}

/// Decompresses an .xz stream (pure Rust).
pub fn unxz(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    lzma_rs::xz_decompress(&mut std::io::BufReader::new(data), &mut out)
        .map_err(|e| anyhow::anyhow!("xz: {e:?}"))?;
    Ok(out)
}

/// `depends=` of a kernel module, from its `.modinfo` section.
pub fn modinfo_depends(ko: &[u8]) -> Result<Vec<String>> {
    use object::{Object, ObjectSection};
    let f = object::File::parse(ko).context("module is not an ELF object")?;
    let Some(sec) = f.section_by_name(".modinfo") else {
        return Ok(Vec::new());
    };
    let data = sec.data()?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok()?.strip_prefix("depends="))
        .flat_map(|d| {
            d.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Shared libraries (`*.so*` files and symlinks) of a library directory.
fn add_libs(t: &mut Tree, world: &World, rel_dir: &str) -> Result<usize> {
    let dir = world.root.join(rel_dir);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".so") && !e.file_type()?.is_dir() {
            t.copy_host(&format!("{rel_dir}/{name}"), &e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// The dom0 tree: busybox, glibc + Xen tool libraries, Xen tools, modules,
/// `/init` and optionally `/scenario.sh`.
pub fn dom0_tree(
    paths: &Paths,
    world: &World,
    scenario_script: Option<&Path>,
) -> Result<(Tree, Vec<String>)> {
    let mut t = Tree::default();
    base_layout(&mut t, world)?;
    for d in [
        "var/lib/xen/dump",
        "var/log/xen",
        "run/xen",
        "run/xenstored",
        "etc/xen",
    ] {
        t.dir(d);
    }
    t.symlink("var/run", "../run");
    for d in ["usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu"] {
        add_libs(&mut t, world, d)?;
    }
    for l in ["usr/lib/ld-linux-aarch64.so.1", "lib/ld-linux-aarch64.so.1"] {
        let p = world.root.join(l);
        if std::fs::symlink_metadata(&p).is_ok() {
            t.copy_host(l, &p)?;
        }
    }
    if !t.contains("lib/ld-linux-aarch64.so.1") {
        bail!("no ld-linux-aarch64.so.1 in the world root (libc6)");
    }
    // Xen tools: /usr/lib/xen-<ver>/bin/* and xenstore-utils' /usr/bin/xenstore*.
    let mut xen_bin = None;
    for e in std::fs::read_dir(world.root.join("usr/lib"))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("xen-") && world.root.join("usr/lib").join(&name).join("bin").is_dir() {
            xen_bin = Some(format!("usr/lib/{name}/bin"));
        }
    }
    let xen_bin = xen_bin.context("no usr/lib/xen-*/bin in the world root (xen-utils)")?;
    for e in std::fs::read_dir(world.root.join(&xen_bin))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !SKIP_XEN_BINS.contains(&name.as_str()) {
            t.copy_host(&format!("{xen_bin}/{name}"), &e.path())?;
        }
    }
    for e in std::fs::read_dir(world.root.join("usr/bin"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("xenstore") {
            t.copy_host(&format!("usr/bin/{name}"), &e.path())?;
        }
    }
    for tool in ["xenstored", "xen-init-dom0", "init-dom0less", "xl"] {
        if !t.contains(&format!("{xen_bin}/{tool}")) {
            bail!("{tool} missing from {xen_bin}");
        }
        t.symlink(
            &format!("usr/sbin/{tool}"),
            &format!("../lib/{}/{tool}", xen_bin.trim_start_matches("usr/lib/")),
        );
    }
    if !t.contains("usr/bin/xenstore-read") {
        bail!("xenstore-read missing (xenstore-utils)");
    }
    let notes = add_modules(&mut t, world, DOM0_MODULES)?;
    let init = paths.root.join("tests/initramfs/dom0/init");
    t.file(
        "init",
        0o755,
        std::fs::read(&init).with_context(|| format!("{}", init.display()))?,
    );
    if let Some(s) = scenario_script {
        t.file(
            "scenario.sh",
            0o755,
            std::fs::read(s).with_context(|| format!("{}", s.display()))?,
        );
    }
    Ok((t, notes))
}

/// What a manifest may add to a Linux guest's tree (`modules`,
/// `programs`, `xenstore_tools` of its `[[domu]]`).
#[derive(Debug, Default, Clone)]
pub struct GuestExtras {
    /// Kernel modules loaded after [`GUEST_MODULES`].
    pub modules: Vec<String>,
    /// (name in /usr/bin, host file): static programs.
    pub programs: Vec<(String, PathBuf)>,
    /// xenstore-* with their shared libraries and the dynamic loader.
    pub xenstore_tools: bool,
}

/// The Linux guest tree: static busybox, frontend modules, `/init`,
/// optionally `/scenario.sh`, plus a manifest's [`GuestExtras`].
pub fn guest_tree_with(
    paths: &Paths,
    world: &World,
    scenario_script: Option<&Path>,
    extras: &GuestExtras,
) -> Result<(Tree, Vec<String>)> {
    let mut t = Tree::default();
    base_layout(&mut t, world)?;
    let mut modules: Vec<&str> = GUEST_MODULES.to_vec();
    modules.extend(extras.modules.iter().map(String::as_str));
    let notes = add_modules(&mut t, world, &modules)?;
    for (name, host) in &extras.programs {
        t.file(
            &format!("usr/bin/{name}"),
            0o755,
            std::fs::read(host).with_context(|| format!("{}", host.display()))?,
        );
    }
    if extras.xenstore_tools {
        add_xenstore_tools(&mut t, world)?;
    }
    let init = paths.root.join("tests/initramfs/guest/init");
    t.file(
        "init",
        0o755,
        std::fs::read(&init).with_context(|| format!("{}", init.display()))?,
    );
    if let Some(s) = scenario_script {
        t.file(
            "scenario.sh",
            0o755,
            std::fs::read(s).with_context(|| format!("{}", s.display()))?,
        );
    }
    Ok((t, notes))
}

/// Library directories of the world root searched for `DT_NEEDED` names.
const LIB_DIRS: &[&str] = &["usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu"];

/// The `xenstore` multi-call binary (one copy, `xenstore-*` as symlinks),
/// its shared-library closure (by `DT_NEEDED`) and the dynamic loader.
fn add_xenstore_tools(t: &mut Tree, world: &World) -> Result<()> {
    let bin = world.root.join("usr/bin/xenstore");
    t.copy_host("usr/bin/xenstore", &bin)?;
    for e in std::fs::read_dir(world.root.join("usr/bin"))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("xenstore-") {
            t.symlink(&format!("usr/bin/{name}"), "xenstore");
        }
    }
    let mut todo = vec![bin];
    let mut seen = BTreeSet::new();
    while let Some(elf) = todo.pop() {
        for lib in elf_needed(&std::fs::read(&elf)?)
            .with_context(|| format!("reading DT_NEEDED of {}", elf.display()))?
        {
            if !seen.insert(lib.clone()) {
                continue;
            }
            let rel = LIB_DIRS
                .iter()
                .map(|d| format!("{d}/{lib}"))
                .find(|r| std::fs::symlink_metadata(world.root.join(r)).is_ok())
                .with_context(|| {
                    format!("{lib} (needed by {}) not in the world root", elf.display())
                })?;
            todo.push(copy_following(t, world, &rel)?);
        }
    }
    copy_following(t, world, "usr/lib/ld-linux-aarch64.so.1")?;
    Ok(())
}

/// Copies `rel` from the world root; symlinks are kept and their targets
/// copied too. Returns the host path of the final file.
fn copy_following(t: &mut Tree, world: &World, rel: &str) -> Result<PathBuf> {
    let mut rel = rel.to_string();
    for _ in 0..8 {
        let host = world.root.join(&rel);
        t.copy_host(&rel, &host)?;
        if !std::fs::symlink_metadata(&host)?.file_type().is_symlink() {
            return Ok(host);
        }
        let target = std::fs::read_link(&host)?.to_string_lossy().into_owned();
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        rel = if let Some(abs) = target.strip_prefix('/') {
            abs.to_string()
        } else {
            format!("{dir}/{target}")
        };
    }
    bail!("too many symlinks at {rel}")
}

/// `DT_NEEDED` entries of a 64-bit ELF file.
pub fn elf_needed(data: &[u8]) -> Result<Vec<String>> {
    use object::read::elf::{Dyn, FileHeader};
    let hdr = object::elf::FileHeader64::<object::Endianness>::parse(data)?;
    let endian = hdr.endian()?;
    let sections = hdr.sections(endian, data)?;
    let Some((dyns, link)) = sections.dynamic(endian, data)? else {
        return Ok(Vec::new());
    };
    let strings = sections.strings(endian, data, link)?;
    let mut out = Vec::new();
    for d in dyns {
        if d.tag32(endian) == Some(object::elf::DT_NEEDED) {
            out.push(String::from_utf8_lossy(d.string(endian, strings)?).into_owned());
        }
    }
    Ok(out)
}

/// Writes `out` (gzip of the tree's cpio) unless an identical archive was
/// already written. Returns whether it was rebuilt.
pub fn write_image(tree: &Tree, out: &Path) -> Result<bool> {
    let cpio = tree.to_cpio()?;
    let mut h = Fnv::default();
    h.write(&cpio);
    let fp = format!("{} {}\n", h.hex(), cpio.len());
    let stamp = out.with_extension("gz.fingerprint");
    if out.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(fp.as_str()) {
        return Ok(false);
    }
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = out.with_extension("gz.tmp");
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(&tmp)?, flate2::Compression::fast());
    gz.write_all(&cpio)?;
    gz.finish()?.sync_all()?;
    std::fs::rename(&tmp, out)?;
    std::fs::write(&stamp, fp)?;
    Ok(true)
}

/// Reads a built image back (gunzip + cpio parse).
pub fn read_image(path: &Path) -> Result<Vec<crate::cpio::CpioEntry>> {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut raw)?;
    crate::cpio::parse(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio;

    #[test]
    fn tree_resolves_symlinked_dirs() {
        let mut t = Tree::default();
        t.dir("usr/lib");
        t.symlink("lib", "usr/lib");
        t.file("lib/modules/xen/a.ko", 0o644, b"ko".to_vec());
        t.symlink(
            "lib/ld-linux-aarch64.so.1",
            "aarch64-linux-gnu/ld-linux-aarch64.so.1",
        );
        assert!(t.contains("usr/lib/modules/xen/a.ko"));
        assert!(t.contains("lib/modules/xen/a.ko"));
        let a = t.to_cpio().unwrap();
        let e = cpio::parse(&a).unwrap();
        let names: Vec<&str> = e.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "lib",
                "usr",
                "usr/lib",
                "usr/lib/ld-linux-aarch64.so.1",
                "usr/lib/modules",
                "usr/lib/modules/xen",
                "usr/lib/modules/xen/a.ko"
            ]
        );
        assert_eq!(e[0].mode, 0o120777);
        assert_eq!(e[0].data, b"usr/lib");
    }

    #[test]
    fn unxz_roundtrip() {
        let mut comp = Vec::new();
        lzma_rs::xz_compress(
            &mut std::io::BufReader::new(&b"hello module"[..]),
            &mut comp,
        )
        .unwrap();
        assert_eq!(unxz(&comp).unwrap(), b"hello module");
        assert!(unxz(b"not xz").is_err());
    }
}
