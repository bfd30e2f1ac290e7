//! Shared helpers: repository paths, running commands, small hashes, time.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where things are. Everything generated lives under `target/`.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Workspace root (parent of the xtask crate).
    pub root: PathBuf,
    pub target: PathBuf,
    /// target/xen-world: apt state, .debs, unpacked root, built initramfs.
    pub world: PathBuf,
    /// target/images: flat domain images built from the domain crates.
    pub images: PathBuf,
    /// target/logs: timestamped console logs.
    pub logs: PathBuf,
}

impl Paths {
    pub fn discover() -> Result<Paths> {
        let root = match std::env::var_os("XTASK_ROOT") {
            Some(r) => PathBuf::from(r),
            None => {
                let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
                let dir = manifest_dir
                    .canonicalize()
                    .unwrap_or_else(|_| manifest_dir.to_path_buf());
                dir.parent()
                    .context("xtask has no parent directory")?
                    .to_path_buf()
            }
        };
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        Ok(Paths {
            world: target.join("xen-world"),
            images: target.join("images"),
            logs: target.join("logs"),
            root,
            target,
        })
    }

    /// target/xen-world/img: initramfs images and DTBs.
    pub fn img(&self) -> PathBuf {
        self.world.join("img")
    }
}

/// Prints a step message.
pub fn step(msg: &str) {
    println!("==> {msg}");
}

/// Runs a command with inherited stdio; fails on non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("starting {desc}"))?;
    if !st.success() {
        bail!("command failed ({st}): {desc}");
    }
    Ok(())
}

/// Runs a command with a time limit. On timeout the command and every
/// process it started (found through /proc parent links) are killed and
/// `None` is returned. The command stays in our process group, so Ctrl-C
/// still reaches it.
pub fn run_with_timeout(
    cmd: &mut Command,
    timeout: std::time::Duration,
) -> Result<Option<std::process::ExitStatus>> {
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("starting {desc}"))?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if std::time::Instant::now() >= deadline {
            let pids: Vec<String> = descendants(child.id()).iter().map(u32::to_string).collect();
            if !pids.is_empty() {
                let _ = Command::new("kill").arg("-KILL").args(&pids).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// All transitive children of `pid` (from /proc/<pid>/stat).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may contain spaces.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(x) = frontier.pop() {
        for &(p, pp) in &parent_of {
            if pp == x && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

/// The `cargo` that runs us (or `cargo` from PATH).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// 64-bit FNV-1a, used for cheap content fingerprints.
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Parses a decimal or `0x`-prefixed hexadecimal number.
pub fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// UTC date-time `YYYYMMDD-HHMMSS` for file names.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Whether we run as root (uid 0), from /proc/self/status.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Finds an executable in PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_kills_the_tree() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & sleep 30"]);
        let t = std::time::Instant::now();
        let r = run_with_timeout(&mut c, std::time::Duration::from_millis(300)).unwrap();
        assert!(r.is_none());
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        let mut ok = Command::new("true");
        assert!(
            run_with_timeout(&mut ok, std::time::Duration::from_secs(10))
                .unwrap()
                .unwrap()
                .success()
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_num("42"), Some(42));
        assert_eq!(parse_num("0x2a"), Some(42));
        assert_eq!(parse_num("0xdeadBEEF"), Some(0xdead_beef));
        assert_eq!(parse_num("x"), None);
    }

    #[test]
    fn fnv_known_value() {
        let mut h = Fnv::default();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn stamp_shape() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15);
        assert_eq!(&s[8..9], "-");
    }
}
