//! Checks for the `panic` scenario: one hello-domain told to panic
//! (`role=panic`) must print the panic through its console and end with
//! shutdown reason `crash`, which dom0's `xl list` shows as a `c` in the
//! state column. This is the "never hangs silently" guarantee of xen-rt.

use super::{Check, Input, Report};
use regex::Regex;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// The common `no-panic` check does not apply: a panic is expected here.
pub const REPLACES_COMMON: &[&str] = &["no-panic"];

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();
    // core's panic message is `panicked at FILE:LINE:COL:` and the
    // message on the next line.
    let panic = input.find(&re(r"xen-rt: PANIC: (.*)"));
    let message = input.find(&re(r"panic requested by the boot arguments"));
    r.checks.push(Check::new(
        "panic-reported",
        panic.is_some() && message.is_some(),
        match (&panic, &message) {
            (Some((t, c)), Some(_)) => format!("at +{t:.3} s: {} (message seen)", &c[1]),
            (Some(_), None) => "panic line without the requested message".into(),
            _ => "no `xen-rt: PANIC` line".into(),
        },
    ));
    let state = input.find(&re(r"=== DOM0: domain 1 state '([^']*)'"));
    r.checks.push(Check::new(
        "domain-crashed",
        state.as_ref().is_some_and(|(_, c)| c[1].contains('c')),
        state
            .as_ref()
            .map_or("dom0 never reported the domain state".into(), |(_, c)| {
                format!("xl state '{}' (want a 'c' flag)", &c[1])
            }),
    ));
    let unexpected = input.find(&re(r"PANIC: unexpected exception"));
    r.checks.push(Check::new(
        "no-fault",
        unexpected.is_none(),
        unexpected.map_or(
            "the panic came from the panic handler, not a fault".into(),
            |(_, c)| c[0].to_string(),
        ),
    ));
    if let Some((t, _)) = panic {
        r.timings
            .push(format!("qemu start -> domain panic reported: {t:.3} s"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::qemu::Ending;

    fn run(log: &[&str]) -> Report {
        let manifest: Manifest = toml::from_str(
            "name = \"panic\"\ntimeout_s = 10\ndone_marker = \"DONE\"\n[dom0]\nmemory_mb = 512\n",
        )
        .expect("manifest");
        let lines: Vec<(f64, String)> = log
            .iter()
            .enumerate()
            .map(|(i, l)| (i as f64, l.to_string()))
            .collect();
        checks(&Input {
            manifest: &manifest,
            lines: &lines,
            ending: &Ending::DoneMarker,
            image_sizes: vec![],
        })
    }

    #[test]
    fn crash_reported_passes() {
        let r = run(&[
            "(XEN) DOM1: xen-rt: PANIC: panicked at src/main.rs:1:1:",
            "(XEN) DOM1: hello-domain: panic requested by the boot arguments",
            "=== DOM0: domain 1 state '--psc-'",
        ]);
        assert_eq!(r.failed(), 0, "{:?}", r.checks);
    }

    #[test]
    fn silent_hang_fails() {
        let r = run(&["=== DOM0: domain 1 state 'r-----'"]);
        assert_eq!(r.passed(), 1);
        assert_eq!(r.failed(), 2);
    }
}
