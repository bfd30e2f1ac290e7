//! The "Xen world": Debian trixie arm64 packages (Xen hypervisor, Xen tools,
//! busybox, the Linux kernel and the tools' shared libraries), fetched with
//! a private, unprivileged-layout apt configuration under
//! `target/xen-world/apt` and unpacked with `dpkg-deb -x` into
//! `target/xen-world/root`.
//!
//! The Debian mirror is taken from the host's own apt sources (the entry
//! serving `bookworm`/`bookworm-updates`), so no host name is hard-coded.
//! Packages are verified by apt against the signed index (Debian archive
//! keyring). A stamp file records the exact versions unpacked; when they
//! are unchanged nothing is downloaded or unpacked again.

use crate::util::{Paths, run, step};
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

pub const SUITE: &str = "trixie";
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Packages fetched by name.
pub const PACKAGES: &[&str] = &[
    "xen-hypervisor-4.20-arm64",
    "xen-utils-4.20",
    "xenstore-utils",
    "busybox-static",
];
/// Metapackage whose dependency names the kernel image package.
pub const KERNEL_META: &str = "linux-image-arm64";
/// Packages whose shared-library dependencies (transitively) are fetched.
/// The tools themselves are not recursed into (xen-utils would drag python3).
pub const LIB_CLOSURE_OF: &[&str] = &["xen-utils-4.20", "xenstore-utils"];
/// The closure as known when this was written; verified against apt's.
pub const EXPECTED_LIBS: &[&str] = &[
    "libc6",
    "gcc-14-base",
    "libgcc-s1",
    "libext2fs2t64",
    "libfdt1",
    "libncurses6",
    "libtinfo6",
    "libuuid1",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenhypfs1",
    "libxenmisc4.20",
    "libxenstore4",
    "libxentoolcore1",
    "libxentoollog1",
    "libyajl2",
    "zlib1g",
];
/// Bump when the unpack layout changes, to force a re-unpack.
const LAYOUT_REV: &str = "layout-1";
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What `fetch` produced: the unpacked root and the interesting files in it.
#[derive(Debug, Clone)]
pub struct World {
    pub root: PathBuf,
    pub kernel: PathBuf,
    pub kernel_release: String,
    pub xen: PathBuf,
    pub versions: Vec<(String, String)>,
}

// ---------------------------------------------------------------- mirror --

/// One apt source entry, from either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub types: Vec<String>,
    pub uris: Vec<String>,
    pub suites: Vec<String>,
}

/// Parses deb822 `.sources` text (stanzas separated by blank lines).
pub fn parse_deb822(text: &str) -> Vec<SourceEntry> {
    let mut out = Vec::new();
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut last_key: Option<String> = None;
    let mut flush = |fields: &mut BTreeMap<String, String>| {
        if fields.is_empty() {
            return;
        }
        let get = |k: &str| -> Vec<String> {
            fields
                .get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let enabled = fields
            .get("enabled")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"));
        if enabled {
            out.push(SourceEntry {
                types: get("types"),
                uris: get("uris"),
                suites: get("suites"),
            });
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields);
            last_key = None;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(k) = &last_key {
                let v = fields.entry(k.clone()).or_default();
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            fields.insert(k.clone(), v.trim().to_string());
            last_key = Some(k);
        }
    }
    flush(&mut fields);
    out
}

/// Parses one-line `sources.list` text (`deb [opts] uri suite comp...`).
pub fn parse_one_line(text: &str) -> Vec<SourceEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = line;
        let Some((ty, r)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        if ty != "deb" && ty != "deb-src" {
            continue;
        }
        rest = r.trim_start();
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            rest = rest[end + 1..].trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(SourceEntry {
            types: vec![ty.into()],
            uris: vec![uri.into()],
            suites: vec![suite.into()],
        });
    }
    out
}

/// Picks the Debian mirror: a `deb` entry whose suites include `bookworm`
/// (preferred) or `bookworm-updates`, with a URI ending in `/debian`.
pub fn pick_mirror(entries: &[SourceEntry]) -> Option<String> {
    for wanted in ["bookworm", "bookworm-updates"] {
        for e in entries {
            if !e.types.iter().any(|t| t == "deb") || !e.suites.iter().any(|s| s == wanted) {
                continue;
            }
            if let Some(u) = e
                .uris
                .iter()
                .map(|u| u.trim_end_matches('/'))
                .find(|u| u.ends_with("/debian"))
            {
                return Some(u.to_string());
            }
        }
    }
    None
}

/// Reads the host's apt sources (`/etc/apt/sources.list`,
/// `sources.list.d/*.list` and `*.sources`) and picks the mirror.
pub fn host_mirror() -> Result<String> {
    let mut entries = Vec::new();
    let base = Path::new("/etc/apt");
    if let Ok(t) = std::fs::read_to_string(base.join("sources.list")) {
        entries.extend(parse_one_line(&t));
    }
    if let Ok(rd) = std::fs::read_dir(base.join("sources.list.d")) {
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let Ok(t) = std::fs::read_to_string(&f) else {
                continue;
            };
            match f.extension().and_then(|e| e.to_str()) {
                Some("list") => entries.extend(parse_one_line(&t)),
                Some("sources") => entries.extend(parse_deb822(&t)),
                _ => {}
            }
        }
    }
    pick_mirror(&entries).context(
        "no Debian mirror (a `deb` entry for bookworm with a URI ending in /debian) in /etc/apt",
    )
}

// ------------------------------------------------------------ private apt --

struct Apt {
    dir: PathBuf,
}

impl Apt {
    fn opts(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            format!("Dir::Etc::SourceList={d}/etc/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".into(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            format!("Dir::State::status={d}/status"),
            "APT::Architecture=arm64".into(),
            "APT::Architectures=arm64".into(),
            "Debug::NoLocking=1".into(),
            // Files land in a root-owned directory; skip the _apt sandbox user.
            "APT::Sandbox::User=root".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args(self.opts());
        c
    }

    fn setup(&self, mirror: &str) -> Result<()> {
        for d in ["etc", "lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(self.dir.join(d))?;
        }
        let status = self.dir.join("status");
        if !status.exists() {
            std::fs::write(&status, "")?;
        }
        let line = format!("deb [arch=arm64 signed-by={KEYRING}] {mirror} {SUITE} main\n");
        let list = self.dir.join("etc/sources.list");
        if std::fs::read_to_string(&list).ok().as_deref() != Some(line.as_str()) {
            std::fs::write(&list, line)?;
            // New source: old lists are meaningless.
            let _ = std::fs::remove_file(self.dir.join("lists/.xtask-updated"));
        }
        Ok(())
    }

    fn lists_fresh(&self) -> bool {
        let marker = self.dir.join("lists/.xtask-updated");
        std::fs::metadata(marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < LISTS_MAX_AGE)
    }

    fn lists_updated_at(&self) -> Option<SystemTime> {
        std::fs::metadata(self.dir.join("lists/.xtask-updated"))
            .and_then(|m| m.modified())
            .ok()
    }

    fn update(&self) -> Result<()> {
        step(&format!(
            "apt-get update ({SUITE}, arm64, private lists in {})",
            self.dir.display()
        ));
        run(self.cmd("apt-get").args(["-q", "update"]))?;
        std::fs::write(self.dir.join("lists/.xtask-updated"), "")?;
        Ok(())
    }

    fn output(&self, tool: &str, args: &[&str]) -> Result<String> {
        let out = self
            .cmd(tool)
            .args(args)
            .output()
            .with_context(|| format!("running {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Direct `Depends:` of a package (real package names only).
    fn depends(&self, pkgs: &[&str], recurse: bool) -> Result<Vec<String>> {
        let mut args = vec![
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ];
        if recurse {
            args.push("--recurse");
        }
        args.extend(pkgs);
        let text = self.output("apt-cache", &args)?;
        Ok(if recurse {
            parse_recursive_depends(&text)
        } else {
            parse_direct_depends(&text)
        })
    }

    /// Candidate versions (`apt-cache show --no-all-versions`).
    fn versions(&self, pkgs: &[String]) -> Result<BTreeMap<String, String>> {
        let mut args = vec!["show", "--no-all-versions"];
        args.extend(pkgs.iter().map(String::as_str));
        let text = self.output("apt-cache", &args)?;
        let mut out = BTreeMap::new();
        let mut pkg = None;
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("Package: ") {
                pkg = Some(p.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Version: ")
                && let Some(p) = pkg.take()
            {
                out.insert(p, v.trim().to_string());
            }
        }
        for p in pkgs {
            ensure!(out.contains_key(p), "apt has no candidate for {p}");
        }
        Ok(out)
    }
}

/// Real packages named on `Depends:` lines of non-recursive output.
fn parse_direct_depends(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .or_else(|| l.trim().strip_prefix("|Depends: "))
        })
        .map(|d| d.trim().to_string())
        .filter(|d| !d.starts_with('<'))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Package names heading each block of `--recurse` output.
fn parse_recursive_depends(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with([' ', '\t', '<']) && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Asks apt which packages (and versions) make up the world.
fn resolve(apt: &Apt) -> Result<BTreeMap<String, String>> {
    step("resolving packages");
    let kernel_deps = apt.depends(&[KERNEL_META], false)?;
    let kernel_pkg = kernel_deps
        .iter()
        .find(|d| d.starts_with("linux-image-") && !d.ends_with("-unsigned"))
        .cloned()
        .with_context(|| {
            format!("{KERNEL_META} has no linux-image-* dependency: {kernel_deps:?}")
        })?;
    let direct: Vec<String> = apt
        .depends(LIB_CLOSURE_OF, false)?
        .into_iter()
        .filter(|d| d.starts_with("lib") || d == "zlib1g")
        .collect();
    let seeds: Vec<&str> = direct.iter().map(String::as_str).collect();
    let mut libs = apt.depends(&seeds, true)?;
    let missing: Vec<&&str> = EXPECTED_LIBS
        .iter()
        .filter(|e| !libs.iter().any(|l| l == **e))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: expected libraries not in apt's closure (fetching them anyway): {missing:?}"
        );
        libs.extend(missing.iter().map(|s| s.to_string()));
    }
    let extra: Vec<&String> = libs
        .iter()
        .filter(|l| !EXPECTED_LIBS.contains(&l.as_str()))
        .collect();
    if !extra.is_empty() {
        step(&format!(
            "note: library closure grew beyond the known list: {extra:?}"
        ));
    }
    let mut all: Vec<String> = PACKAGES.iter().map(|s| s.to_string()).collect();
    all.push(kernel_pkg.clone());
    all.extend(libs);
    all.sort();
    all.dedup();
    let versions = apt.versions(&all)?;
    Ok(versions)
}

fn format_versions(v: &BTreeMap<String, String>) -> String {
    v.iter().map(|(p, v)| format!("{p} {v}\n")).collect()
}

fn parse_versions(t: &str) -> BTreeMap<String, String> {
    t.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// `apt-get download` file name for a package version (epoch `:` → `%3a`).
pub fn deb_file_name(pkg: &str, version: &str) -> String {
    format!("{pkg}_{}_arm64.deb", version.replace(':', "%3a"))
}

/// Resolves, downloads (if needed) and unpacks the world. Network is used
/// only when the private lists are older than a day or `refresh` is set,
/// and for .debs not already in target/xen-world/debs. `verbose` prints
/// every package version (they are always written to versions.txt).
pub fn fetch(paths: &Paths, refresh: bool, verbose: bool) -> Result<World> {
    let t0 = std::time::Instant::now();
    let mirror = host_mirror()?;
    step(&format!("Debian mirror from host apt sources: {mirror}"));
    let apt = Apt {
        dir: paths.world.join("apt"),
    };
    apt.setup(&mirror)?;
    if refresh || !apt.lists_fresh() {
        apt.update()?;
    } else {
        step(
            "package lists are less than a day old; not updating (use `fetch --refresh` to force)",
        );
    }

    // Resolution only changes when the lists do: reuse it until the next update.
    let resolved_path = paths.world.join("resolved.txt");
    let lists_time = apt.lists_updated_at();
    let cached = std::fs::metadata(&resolved_path)
        .and_then(|m| m.modified())
        .ok()
        .filter(|t| lists_time.is_some_and(|l| *t >= l))
        .and_then(|_| std::fs::read_to_string(&resolved_path).ok())
        .map(|t| parse_versions(&t))
        .filter(|v| !v.is_empty());
    let versions = match cached {
        Some(v) => {
            step("package resolution unchanged since the last list update");
            v
        }
        None => {
            let v = resolve(&apt)?;
            std::fs::write(&resolved_path, format_versions(&v))?;
            v
        }
    };

    let mut stamp = format!("{LAYOUT_REV}\nsuite {SUITE}\n");
    for (p, v) in &versions {
        stamp.push_str(&format!("{p} {v}\n"));
    }
    let root = paths.world.join("root");
    let stamp_path = paths.world.join("root.stamp");
    let versions_txt = format_versions(&versions);
    std::fs::write(paths.world.join("versions.txt"), &versions_txt)?;
    if verbose {
        for l in versions_txt.lines() {
            println!("    {l}");
        }
    } else {
        let key: Vec<String> = versions
            .iter()
            .filter(|(p, _)| p.starts_with("xen-hypervisor") || p.starts_with("linux-image"))
            .map(|(p, v)| format!("{p} {v}"))
            .collect();
        step(&format!(
            "{} packages ({}; all in {})",
            versions.len(),
            key.join(", "),
            paths.world.join("versions.txt").display()
        ));
    }

    if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) && root.is_dir()
    {
        step(&format!(
            "{} packages already unpacked at these versions ({:.1} s)",
            versions.len(),
            t0.elapsed().as_secs_f64()
        ));
    } else {
        let debs = paths.world.join("debs");
        std::fs::create_dir_all(&debs)?;
        let want: Vec<(String, PathBuf)> = versions
            .iter()
            .map(|(p, v)| (format!("{p}={v}"), debs.join(deb_file_name(p, v))))
            .collect();
        let missing: Vec<&str> = want
            .iter()
            .filter(|(_, f)| !f.is_file())
            .map(|(s, _)| s.as_str())
            .collect();
        if !missing.is_empty() {
            step(&format!(
                "downloading {} packages into {}",
                missing.len(),
                debs.display()
            ));
            let mut c = apt.cmd("apt-get");
            c.current_dir(&debs).args(["-q", "download"]).args(&missing);
            run(&mut c)?;
        }
        for (spec, f) in &want {
            ensure!(
                f.is_file(),
                "{spec}: expected {} after download",
                f.display()
            );
        }
        step(&format!(
            "unpacking {} packages into {}",
            want.len(),
            root.display()
        ));
        let _ = std::fs::remove_file(&stamp_path);
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .with_context(|| format!("removing {}", root.display()))?;
        }
        std::fs::create_dir_all(&root)?;
        for (_, f) in &want {
            run(Command::new("dpkg-deb").arg("-x").arg(f).arg(&root))?;
        }
        std::fs::write(&stamp_path, &stamp)?;
        step(&format!(
            "world ready ({:.1} s)",
            t0.elapsed().as_secs_f64()
        ));
    }
    let mut w = World::locate(&root)?;
    w.versions = versions.into_iter().collect();
    Ok(w)
}

impl World {
    /// Finds the kernel and Xen in an unpacked root.
    pub fn locate(root: &Path) -> Result<World> {
        let boot = root.join("boot");
        let mut kernel = None;
        let mut xen = None;
        for e in std::fs::read_dir(&boot)
            .with_context(|| format!("{} (run `cargo xtask fetch`)", boot.display()))?
        {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(rel) = name.strip_prefix("vmlinuz-") {
                kernel = Some((boot.join(&name), rel.to_string()));
            } else if name.starts_with("xen-") && name.ends_with("-arm64") {
                xen = Some(boot.join(&name));
            }
        }
        let (kernel, kernel_release) = kernel.context("no boot/vmlinuz-* in the world root")?;
        let xen = xen.context("no boot/xen-*-arm64 in the world root")?;
        let mut versions = Vec::new();
        if let Ok(t) = std::fs::read_to_string(root.with_file_name("versions.txt")) {
            versions = t
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(a, b)| (a.into(), b.into()))
                .collect();
        }
        Ok(World {
            root: root.to_path_buf(),
            kernel,
            kernel_release,
            xen,
            versions,
        })
    }

    /// `lib/modules/<release>` inside the root (usr-merged or not).
    pub fn modules_dir(&self) -> PathBuf {
        let merged = self.root.join("usr/lib/modules").join(&self.kernel_release);
        if merged.is_dir() {
            merged
        } else {
            self.root.join("lib/modules").join(&self.kernel_release)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://other.example/node_20.x
Suites: nodistro
Components: main
";

    #[test]
    fn deb822_mirror() {
        let e = parse_deb822(DEB822);
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].suites, vec!["bookworm", "bookworm-updates"]);
        assert_eq!(
            pick_mirror(&e).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn deb822_updates_only_and_disabled() {
        let t = "Types: deb\nURIs: http://up.example/debian\nSuites: bookworm-updates\n\n\
                 Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n";
        assert_eq!(
            pick_mirror(&parse_deb822(t)).as_deref(),
            Some("http://up.example/debian")
        );
    }

    #[test]
    fn deb822_security_only_is_not_a_mirror() {
        let t =
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(pick_mirror(&parse_deb822(t)), None);
    }

    #[test]
    fn one_line_mirror() {
        let t = "\
# deb http://commented.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://src.example/debian bookworm main
deb https://packages.example/apt cloud-sdk-bookworm main
";
        let e = parse_one_line(t);
        assert_eq!(e.len(), 4);
        assert_eq!(
            pick_mirror(&e).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn depends_output_parsing() {
        let direct = "xen-utils-4.20\n  Depends: libc6\n  Depends: <python3:any>\n    python3\n  Depends: libxenstore4\n  Recommends: bridge-utils\n";
        assert_eq!(parse_direct_depends(direct), vec!["libc6", "libxenstore4"]);
        let rec =
            "libxenstore4\n  Depends: libc6\nlibc6\n  Depends: libgcc-s1\n<virtual>\nlibgcc-s1\n";
        assert_eq!(
            parse_recursive_depends(rec),
            vec!["libc6", "libgcc-s1", "libxenstore4"]
        );
    }

    #[test]
    fn deb_names() {
        assert_eq!(
            deb_file_name("zlib1g", "1:1.3.dfsg-1"),
            "zlib1g_1%3a1.3.dfsg-1_arm64.deb"
        );
        assert_eq!(deb_file_name("libc6", "2.41-12"), "libc6_2.41-12_arm64.deb");
    }
}
