//! `cargo xtask audit`: what each domain image is made of, for a safety
//! reviewer — our lines of code per crate, third-party crates with version
//! and license, every `unsafe` with whether it is justified, image size —
//! and the workspace-wide `unsafe` policy. Printed, and written as JSON to
//! `target/audit.json`. See docs/AUDIT.md for the rules behind each figure.

use crate::rustsrc::{self, Cfg, UnsafeSite};
use crate::util::{Paths, cargo};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The domain images the audit reports on.
pub const AUDIT_DOMAINS: &[&str] = &[
    "net-domain",
    "storage-domain",
    "console-domain",
    "hello-domain",
];

/// Architectures: (name, rust target, built today).
pub const ARCHES: &[(&str, &str, bool)] = &[
    ("aarch64", "aarch64-unknown-none", true),
    ("x86_64", "x86_64-unknown-none", false),
];

/// Where `unsafe` may appear (paths relative to the workspace root; a
/// trailing `/` means the whole directory).
pub const ALLOWED_UNSAFE: &[&str] = &[
    "xen-rt/rt/src/arch/",
    "xen-rt/rt/src/mem.rs",
    "xen-rt/xen-hypercall/src/arch/",
];

/// Test-only code outside every image that needs one `unsafe extern`
/// block: the no-panic probe's undefined panic symbol (see
/// tests/no-panic-probe). Reported separately, never linked into a domain.
pub const UNSAFE_TEST_EXCEPTIONS: &[&str] = &["tests/no-panic-probe/src/link.rs"];

/// Packages whose crate roots may use `#![deny(unsafe_code)]` with scoped
/// `#[allow]`s instead of `#![forbid(unsafe_code)]`.
pub const FORBID_EXEMPT: &[&str] = &["xen-rt/xen-hypercall", "xen-rt/rt", "tests/no-panic-probe"];

/// Goal: lines of our own code linked into net-domain.
pub const NET_DOMAIN_LOC_GOAL: usize = 6000;

/// Whether `rel` (workspace-relative, `/`-separated) is an allowed place for
/// `unsafe`.
pub fn unsafe_allowed(rel: &str) -> bool {
    ALLOWED_UNSAFE.iter().any(|a| {
        if a.ends_with('/') {
            rel.starts_with(a)
        } else {
            rel == *a
        }
    })
}

/// A package in a domain's dependency tree.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub license: String,
    /// Local path (our crates), None for registry crates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub features: Vec<String>,
}

/// Parses `cargo tree --prefix none --format '{p}|{l}|{f}'` output into
/// unique packages (first occurrence wins).
pub fn parse_tree(out: &str) -> Vec<Package> {
    let mut pkgs: Vec<Package> = Vec::new();
    for line in out.lines() {
        let line = line.trim_end().trim_end_matches("(*)").trim_end();
        let mut parts = line.splitn(3, '|');
        let (Some(p), Some(l), f) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mut w = p.split_whitespace();
        let (Some(name), Some(ver)) = (w.next(), w.next()) else {
            continue;
        };
        let rest: Vec<&str> = w.collect();
        let path = rest
            .first()
            .filter(|s| {
                s.starts_with('(') && !s.contains("registry") && !s.starts_with("(proc-macro")
            })
            .map(|s| PathBuf::from(s.trim_start_matches('(').trim_end_matches(')')));
        let version = ver.trim_start_matches('v').to_string();
        if pkgs.iter().any(|x| x.name == name && x.version == version) {
            continue;
        }
        pkgs.push(Package {
            name: name.to_string(),
            version,
            license: l.trim().to_string(),
            path,
            features: f
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        });
    }
    pkgs
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateLoc {
    pub name: String,
    pub lines: usize,
    pub files: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThirdParty {
    pub name: String,
    pub version: String,
    pub license: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DomainAudit {
    pub domain: String,
    pub arch: String,
    pub built: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub our_lines: usize,
    pub our_crates: Vec<CrateLoc>,
    pub third_party: Vec<ThirdParty>,
    /// `unsafe` sites compiled into the image (live under its cfg).
    pub unsafe_sites: Vec<UnsafeSite>,
    pub image: Option<String>,
    pub image_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceUnsafe {
    /// Every `unsafe` in our sources (all crates, tests included).
    pub sites: Vec<UnsafeSite>,
    pub outside_allowed: Vec<UnsafeSite>,
    pub undocumented: Vec<UnsafeSite>,
    pub test_exceptions: Vec<UnsafeSite>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub line_rule: &'static str,
    pub allowed_unsafe: &'static [&'static str],
    pub domains: Vec<DomainAudit>,
    pub workspace_unsafe: WorkspaceUnsafe,
    pub no_panic_paths: Vec<String>,
    pub fuzz_targets: Vec<String>,
    pub fuzz_pending: Vec<String>,
    pub goals: Vec<Goal>,
}

pub const LINE_RULE: &str = "non-blank lines after blanking comments (//, /* */, doc comments), \
in the module tree of each of our crates linked into the image, skipping items under a cfg that \
is false for the image build (#[cfg(test)] always; features, target and loom as resolved by cargo \
tree); tests/, benches/, examples/ and build.rs are never counted";

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn crate_root_file(dir: &Path) -> Option<PathBuf> {
    ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Runs `cargo tree` for one package and target.
pub fn tree(paths: &Paths, krate: &str, target: &str) -> Result<Vec<Package>> {
    let out = cargo()
        .current_dir(&paths.root)
        .args([
            "tree",
            "-p",
            krate,
            "--target",
            target,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}|{l}|{f}",
        ])
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {krate} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(parse_tree(&String::from_utf8_lossy(&out.stdout)))
}

/// Audits one domain for one (built) architecture.
pub fn audit_domain(paths: &Paths, krate: &str, arch: &str, target: &str) -> Result<DomainAudit> {
    let pkgs = tree(paths, krate, target)?;
    let mut ours = Vec::new();
    let mut third = Vec::new();
    let mut sites = Vec::new();
    let mut total = 0;
    for p in &pkgs {
        match &p.path {
            Some(dir) if dir.starts_with(&paths.root) => {
                let Some(root_file) = crate_root_file(dir) else {
                    continue;
                };
                let cfg = Cfg::aarch64_none(p.features.iter().cloned().collect::<BTreeSet<_>>());
                let files = rustsrc::module_tree(&root_file, &cfg);
                let lines: usize = files.iter().map(|f| f.code_lines()).sum();
                for f in &files {
                    let r = rel(&paths.root, &f.path);
                    sites.extend(
                        rustsrc::unsafe_sites(&r, &f.text, Some(&f.live))
                            .into_iter()
                            .filter(|s| s.live),
                    );
                }
                total += lines;
                ours.push(CrateLoc {
                    name: p.name.clone(),
                    lines,
                    files: files.len(),
                });
            }
            _ => third.push(ThirdParty {
                name: p.name.clone(),
                version: p.version.clone(),
                license: p.license.clone(),
            }),
        }
    }
    third.sort_by(|a, b| a.name.cmp(&b.name));
    let img = crate::images::image_path(paths, krate);
    let size = std::fs::metadata(&img).ok().map(|m| m.len());
    Ok(DomainAudit {
        domain: krate.to_string(),
        arch: arch.to_string(),
        built: true,
        note: size
            .is_none()
            .then(|| "image not built: run `cargo xtask build`".to_string()),
        our_lines: total,
        our_crates: ours,
        third_party: third,
        unsafe_sites: sites,
        image: size.map(|_| rel(&paths.root, &img)),
        image_bytes: size,
    })
}

/// Every `.rs` file of ours: the workspace members and the fuzz crate,
/// without build output.
pub fn our_rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let skip = ["target", ".git", ".mirror", "corpus", "artifacts"];
    fn walk(d: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        let mut ents: Vec<_> = rd.flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !skip.contains(&name.as_str()) && !name.starts_with('.') {
                    walk(&p, skip, out);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    walk(root, &skip, &mut out);
    out
}

/// The workspace-wide unsafe inventory and policy.
pub fn workspace_unsafe(root: &Path) -> Result<WorkspaceUnsafe> {
    let mut sites = Vec::new();
    for f in our_rust_files(root) {
        let text = std::fs::read_to_string(&f)?;
        sites.extend(rustsrc::unsafe_sites(&rel(root, &f), &text, None));
    }
    let test_exceptions: Vec<_> = sites
        .iter()
        .filter(|s| UNSAFE_TEST_EXCEPTIONS.contains(&s.file.as_str()))
        .cloned()
        .collect();
    let outside_allowed = sites
        .iter()
        .filter(|s| !unsafe_allowed(&s.file) && !UNSAFE_TEST_EXCEPTIONS.contains(&s.file.as_str()))
        .cloned()
        .collect();
    let undocumented = sites.iter().filter(|s| !s.documented).cloned().collect();
    Ok(WorkspaceUnsafe {
        sites,
        outside_allowed,
        undocumented,
        test_exceptions,
    })
}

/// Crate roots of a package directory: src/lib.rs, src/main.rs,
/// src/bin/*.rs, build.rs, tests/*.rs, benches/*.rs, examples/*.rs,
/// fuzz_targets/*.rs.
pub fn crate_roots(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["src/lib.rs", "src/main.rs", "build.rs"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    for sub in ["src/bin", "tests", "benches", "examples", "fuzz_targets"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect();
            v.sort();
            out.extend(v);
        }
    }
    out
}

/// Package directories: workspace members plus the fuzz crate.
pub fn package_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let v: toml::Value = toml::from_str(&text).context("parsing Cargo.toml")?;
    let mut dirs: Vec<PathBuf> = v
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(|s| root.join(s))
                .collect()
        })
        .unwrap_or_default();
    if root.join("fuzz/Cargo.toml").is_file() {
        dirs.push(root.join("fuzz"));
    }
    Ok(dirs)
}

/// Crate roots lacking `#![forbid(unsafe_code)]` (exempt packages need
/// `#![deny(unsafe_code)]`): (path, what is missing).
pub fn forbid_violations(root: &Path) -> Result<(usize, Vec<(String, String)>)> {
    let mut bad = Vec::new();
    let mut n = 0;
    for dir in package_dirs(root)? {
        let pkg = rel(root, &dir);
        let exempt = FORBID_EXEMPT.contains(&pkg.as_str());
        for f in crate_roots(&dir) {
            n += 1;
            let text = std::fs::read_to_string(&f)?;
            let bl = rustsrc::blank(&text);
            let code = String::from_utf8_lossy(&bl.nocomment).replace(char::is_whitespace, "");
            let forbid = code.contains("#![forbid(unsafe_code)]");
            let deny = code.contains("#![deny(unsafe_code)]");
            if exempt {
                // build.rs of exempt packages is host code: forbid it too.
                let is_build = f.file_name().is_some_and(|n| n == "build.rs");
                if is_build && !forbid {
                    bad.push((rel(root, &f), "#![forbid(unsafe_code)]".into()));
                } else if !is_build && !forbid && !deny {
                    bad.push((rel(root, &f), "#![deny(unsafe_code)]".into()));
                }
            } else if !forbid {
                bad.push((rel(root, &f), "#![forbid(unsafe_code)]".into()));
            }
        }
    }
    Ok((n, bad))
}

/// Runs the full audit.
pub fn run(paths: &Paths, with_probe: bool) -> Result<Audit> {
    let mut domains = Vec::new();
    for (arch, target, built) in ARCHES {
        for d in AUDIT_DOMAINS {
            if *built {
                domains.push(audit_domain(paths, d, arch, target)?);
            } else {
                domains.push(DomainAudit {
                    domain: d.to_string(),
                    arch: arch.to_string(),
                    built: false,
                    note: Some(format!("{arch} ({target}) is not built yet")),
                    our_lines: 0,
                    our_crates: Vec::new(),
                    third_party: Vec::new(),
                    unsafe_sites: Vec::new(),
                    image: None,
                    image_bytes: None,
                });
            }
        }
    }
    let ws = workspace_unsafe(&paths.root)?;
    let mut goals = Vec::new();
    if let Some(net) = domains.iter().find(|d| d.domain == "net-domain" && d.built) {
        goals.push(Goal {
            name: "net-domain-loc".into(),
            ok: net.our_lines <= NET_DOMAIN_LOC_GOAL,
            detail: format!(
                "{} lines of our code (goal <= {NET_DOMAIN_LOC_GOAL})",
                net.our_lines
            ),
        });
    }
    goals.push(Goal {
        name: "unsafe-in-allowed-modules".into(),
        ok: ws.outside_allowed.is_empty(),
        detail: format!(
            "{} of {} unsafe sites outside {}",
            ws.outside_allowed.len(),
            ws.sites.len(),
            ALLOWED_UNSAFE.join(", ")
        ),
    });
    goals.push(Goal {
        name: "unsafe-documented".into(),
        ok: ws.undocumented.is_empty(),
        detail: format!(
            "{} of {} unsafe sites without a SAFETY comment",
            ws.undocumented.len(),
            ws.sites.len()
        ),
    });
    let mut no_panic_paths: Vec<String> = crate::gates::NO_PANIC_PATHS
        .iter()
        .map(|s| s.to_string())
        .collect();
    if with_probe {
        let r = crate::gates::no_panic_probe(paths);
        goals.push(Goal {
            name: "no-panic-paths".into(),
            ok: r.ok,
            detail: r.detail,
        });
    } else {
        no_panic_paths.push("(probe not run: --no-probe)".into());
    }
    Ok(Audit {
        line_rule: LINE_RULE,
        allowed_unsafe: ALLOWED_UNSAFE,
        domains,
        workspace_unsafe: ws,
        no_panic_paths,
        fuzz_targets: crate::fuzz::TARGETS.iter().map(|s| s.to_string()).collect(),
        fuzz_pending: crate::fuzz::PENDING.iter().map(|s| s.to_string()).collect(),
        goals,
    })
}

/// Prints the audit.
pub fn print(a: &Audit) {
    println!("line rule: {}", a.line_rule);
    for d in &a.domains {
        println!();
        if !d.built {
            println!(
                "== {} [{}]: {}",
                d.domain,
                d.arch,
                d.note.as_deref().unwrap_or("")
            );
            continue;
        }
        println!(
            "== {} [{}]: {} lines of our code, {} third-party crates, {} unsafe sites, image {}",
            d.domain,
            d.arch,
            d.our_lines,
            d.third_party.len(),
            d.unsafe_sites.len(),
            d.image_bytes
                .map_or("not built (run cargo xtask build)".into(), |b| format!(
                    "{b} bytes ({})",
                    d.image.as_deref().unwrap_or("")
                ))
        );
        println!("   our crates (lines, files):");
        for c in &d.our_crates {
            println!("     {:<16} {:>6}  {:>3} files", c.name, c.lines, c.files);
        }
        println!("   third-party crates:");
        for t in &d.third_party {
            println!("     {:<24} {:<10} {}", t.name, t.version, t.license);
        }
        println!("   unsafe (file:line kind documented):");
        for s in &d.unsafe_sites {
            println!(
                "     {}:{} {} {}",
                s.file,
                s.line,
                s.kind.name(),
                if s.documented {
                    "SAFETY"
                } else {
                    "UNDOCUMENTED"
                }
            );
        }
    }
    println!();
    let ws = &a.workspace_unsafe;
    println!(
        "== workspace unsafe: {} sites in our sources (tests included), {} outside the allowed modules, {} undocumented",
        ws.sites.len(),
        ws.outside_allowed.len(),
        ws.undocumented.len()
    );
    let mut per_file: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &ws.sites {
        *per_file.entry(s.file.as_str()).or_default() += 1;
    }
    for (f, n) in per_file {
        let tag = if unsafe_allowed(f) {
            "allowed"
        } else if UNSAFE_TEST_EXCEPTIONS.contains(&f) {
            "test-only exception (never linked into an image)"
        } else {
            "NOT ALLOWED"
        };
        println!("     {f}: {n} ({tag})");
    }
    for s in ws.outside_allowed.iter().chain(&ws.undocumented) {
        println!(
            "     violation: {}:{} {} {}",
            s.file,
            s.line,
            s.kind.name(),
            if s.documented {
                ""
            } else {
                "(no SAFETY comment)"
            }
        );
    }
    println!();
    println!("== no-panic paths (link fails if a panic is reachable):");
    for p in &a.no_panic_paths {
        println!("     {p}");
    }
    println!();
    println!(
        "== fuzz targets (fuzz/fuzz_targets, seeds in fuzz/corpus): {}",
        a.fuzz_targets.join(", ")
    );
    for p in &a.fuzz_pending {
        println!("     pending (parser not written yet): {p}");
    }
    println!();
    println!("== goals:");
    for g in &a.goals {
        println!(
            "{} {} {}",
            if g.ok { "ok  " } else { "FAIL" },
            g.name,
            g.detail
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_parsing() {
        let out = "\
net-domain v0.1.0 (/w/net-domain)|Apache-2.0|
xen-rt v0.1.0 (/w/xen-rt/rt)|Apache-2.0|default
fdt v0.1.5|MPL-2.0|
lock_api v0.4.14|MIT OR Apache-2.0|atomic_usize,default
lock_api v0.4.14|MIT OR Apache-2.0|atomic_usize,default (*)
";
        let p = parse_tree(out);
        assert_eq!(p.len(), 4);
        assert_eq!(p[1].path.as_deref(), Some(Path::new("/w/xen-rt/rt")));
        assert_eq!(p[1].features, ["default"]);
        assert_eq!(p[2].path, None);
        assert_eq!(p[3].features, ["atomic_usize", "default"]);
    }

    #[test]
    fn allowed_paths() {
        assert!(unsafe_allowed("xen-rt/rt/src/arch/aarch64/mmu.rs"));
        assert!(unsafe_allowed("xen-rt/rt/src/mem.rs"));
        assert!(!unsafe_allowed("xen-rt/rt/src/memx.rs"));
        assert!(!unsafe_allowed("vchan/src/chan.rs"));
    }
}
