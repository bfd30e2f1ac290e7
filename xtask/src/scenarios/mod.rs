//! Scenario checks: after a check-mode run, each scenario's Rust checks
//! read the timestamped console log and report one line per check plus
//! timings. Checks common to every scenario live here; scenario-specific
//! ones in a module named after the scenario (see [`hello`]).

pub mod blk;
pub mod blkdisk;
pub mod console;
pub mod hello;
pub mod net;
pub mod panic;
pub mod vchan;

use crate::manifest::Manifest;
use crate::qemu::Ending;
use regex::Regex;

/// One check result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok,
            detail: detail.into(),
        }
    }
}

/// Everything the checks may look at.
pub struct Input<'a> {
    pub manifest: &'a Manifest,
    /// (seconds since qemu start, console line).
    pub lines: &'a [(f64, String)],
    pub ending: &'a Ending,
    /// (crate, image size in bytes) for the crates the scenario boots.
    pub image_sizes: Vec<(String, u64)>,
}

impl Input<'_> {
    /// First line matching `re`, with its timestamp and captures.
    pub fn find(&self, re: &Regex) -> Option<(f64, regex::Captures<'_>)> {
        self.lines
            .iter()
            .find_map(|(t, l)| re.captures(l).map(|c| (*t, c)))
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    pub timings: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }
    /// Success: at least one check and none failed.
    pub fn success(&self) -> bool {
        self.failed() == 0 && self.passed() > 0
    }

    pub fn print(&self) {
        for c in &self.checks {
            println!(
                "{} {} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if !self.timings.is_empty() {
            println!("timings:");
            for t in &self.timings {
                println!("    {t}");
            }
        }
        println!("{} passed, {} failed", self.passed(), self.failed());
    }
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// Checks every scenario gets.
pub fn common(input: &Input) -> Report {
    let mut r = Report::default();
    let xen = input.find(&re(r"\(XEN\) Xen version"));
    r.checks.push(Check::new(
        "xen-banner",
        xen.is_some(),
        xen.as_ref()
            .map_or("no `Xen version` line".into(), |(t, _)| {
                format!("at +{t:.3} s")
            }),
    ));
    let setup = input.find(&re(r"=== DOM0 SETUP DONE"));
    r.checks.push(Check::new(
        "dom0-setup-done",
        setup.is_some(),
        setup
            .as_ref()
            .map_or("dom0 /init never reported setup done".into(), |(t, _)| {
                format!("at +{t:.3} s")
            }),
    ));
    let panics: Vec<&(f64, String)> = input
        .lines
        .iter()
        .filter(|(_, l)| {
            l.contains("PANIC") || l.contains("Panic on CPU") || l.contains("Kernel panic")
        })
        .collect();
    r.checks.push(Check::new(
        "no-panic",
        panics.is_empty(),
        panics.first().map_or("no panic lines".into(), |(t, l)| {
            format!("{} panic line(s), first at +{t:.3}: {l}", panics.len())
        }),
    ));
    let done = input.find(&re(&input.manifest.done_marker));
    let (ok, detail) = match (input.ending, &done) {
        (Ending::DoneMarker, Some((t, _))) => (true, format!("done marker at +{t:.3} s")),
        (Ending::Timeout, _) => (
            false,
            format!("timeout after {} s", input.manifest.timeout_s),
        ),
        (Ending::QemuExited(c), _) => (false, format!("qemu exited early (code {c:?})")),
        (Ending::DoneMarker, None) => (false, "done marker reported but not in the log".into()),
    };
    r.checks
        .push(Check::new("finished-before-timeout", ok, detail));
    if let Some((t, _)) = xen {
        r.timings
            .push(format!("qemu start -> Xen banner: {t:.3} s"));
    }
    if let Some((t, _)) = input.find(&re(r"=== DOM0 INIT REACHED")) {
        r.timings
            .push(format!("qemu start -> dom0 /init: {t:.3} s"));
    }
    if let Some((t, _)) = setup {
        r.timings
            .push(format!("qemu start -> dom0 setup done: {t:.3} s"));
    }
    r
}

/// Runs common checks plus the scenario's own (chosen by name).
pub fn evaluate(input: &Input) -> Report {
    let mut r = common(input);
    if input.manifest.name == "panic" {
        r.checks
            .retain(|c| !panic::REPLACES_COMMON.contains(&c.name.as_str()));
    }
    let specific = match input.manifest.name.as_str() {
        "hello" => Some(hello::checks(input)),
        "panic" => Some(panic::checks(input)),
        "vchan" => Some(vchan::checks(input)),
        "blkdisk" => Some(blkdisk::checks(input)),
        "blk" => Some(blk::checks(input)),
        "net" => Some(net::checks(input)),
        "console" => Some(console::checks(input)),
        _ => None,
    };
    if let Some(s) = specific {
        r.checks.extend(s.checks);
        r.timings.extend(s.timings);
    }
    for (k, size) in &input.image_sizes {
        r.timings.push(format!("image {k}: {size} bytes"));
    }
    r
}
