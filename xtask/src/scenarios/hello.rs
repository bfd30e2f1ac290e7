//! Checks for the `hello` scenario: two hello-domain instances (server =
//! domid 1, client = domid 2) that meet through xenstore, share a granted
//! page, ping-pong 10000 events and move a 1 MiB payload, while dom0 pokes
//! both through xenstore watches.
//!
//! The domains print `hello[ROLE] ...` lines; Xen prefixes them with
//! `(XEN) DOMn: `, so every pattern matches anywhere in a line. Numbers are
//! decimal unless `0x`-prefixed.

use super::{Check, Input, Report};
use crate::util::parse_num;
use regex::Regex;

const ROLES: [&str; 2] = ["server", "client"];
pub const EVENTS: u64 = 10_000;
pub const PAYLOAD_BYTES: u64 = 1_048_576;
pub const POKE_VALUE: &str = "poke-from-dom0";

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// Expected domid for a role: the domU whose bootargs say `role=<role>`
/// (1-based manifest order), else server 1 / client 2.
fn expected_domid(input: &Input, role: &str) -> u64 {
    input
        .manifest
        .domu
        .iter()
        .position(|d| {
            d.bootargs
                .as_deref()
                .is_some_and(|b| b.split_whitespace().any(|w| w == format!("role={role}")))
        })
        .map(|i| i as u64 + 1)
        .unwrap_or(if role == "server" { 1 } else { 2 })
}

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();
    let num = |s: &str| parse_num(s);

    for role in ROLES {
        let banner = input.find(&re(&format!(
            r"hello\[{role}\] banner xen-rt (\S+) image=(\S+) t_ms=(\S+)"
        )));
        r.checks.push(match &banner {
            Some((t, c)) => Check::new(
                &format!("{role}-banner"),
                true,
                format!(
                    "xen-rt {} image={} t_ms={} at +{t:.3} s",
                    &c[1], &c[2], &c[3]
                ),
            ),
            None => Check::new(&format!("{role}-banner"), false, "no banner line"),
        });
        if let Some((t, c)) = &banner {
            r.timings
                .push(format!("qemu start -> {role} banner: {t:.3} s"));
            r.timings
                .push(format!("{role}: domain start -> banner: {} ms", &c[3]));
        }

        let want = expected_domid(input, role);
        let ready = input.find(&re(&format!(
            r"hello\[{role}\] xenstore ready domid=(\S+) name=(\S*) t_ms=(\S+)"
        )));
        r.checks.push(match &ready {
            Some((_, c)) => {
                let domid = num(&c[1]);
                let ok = domid == Some(want) && !c[2].is_empty();
                Check::new(
                    &format!("{role}-xenstore-ready"),
                    ok,
                    format!(
                        "domid={} (want {want}) name={:?} t_ms={}",
                        &c[1], &c[2], &c[3]
                    ),
                )
            }
            None => Check::new(
                &format!("{role}-xenstore-ready"),
                false,
                "no `xenstore ready` line",
            ),
        });
        if let Some((_, c)) = &ready {
            r.timings.push(format!(
                "{role}: domain start -> xenstore ready: {} ms",
                &c[3]
            ));
        }

        let watch = input.find(&re(&format!(
            r"hello\[{role}\] watch fired path=(\S+) value=(\S*)"
        )));
        r.checks.push(match &watch {
            Some((_, c)) => Check::new(
                &format!("{role}-watch-fired"),
                &c[2] == POKE_VALUE,
                format!("path={} value={}", &c[1], &c[2]),
            ),
            None => Check::new(
                &format!("{role}-watch-fired"),
                false,
                "no `watch fired` line",
            ),
        });
    }

    let published = input.find(&re(r"hello\[server\] published gref=(\S+) port=(\S+)"));
    let mapped = input.find(&re(
        r"hello\[client\] mapped gref=(\S+) port=(\S+) magic=(\S+)",
    ));
    r.checks.push(match (&published, &mapped) {
        (Some((_, p)), Some((_, m))) => {
            let same = num(&p[1]).is_some() && num(&p[1]) == num(&m[1]);
            Check::new(
                "grant-shared",
                same && &m[3] == "ok",
                format!(
                    "published gref={} port={}; mapped gref={} port={} magic={}",
                    &p[1], &p[2], &m[1], &m[2], &m[3]
                ),
            )
        }
        (None, _) => Check::new("grant-shared", false, "server never published a grant"),
        (_, None) => Check::new("grant-shared", false, "client never mapped the grant"),
    });

    let events = input.find(&re(
        r"hello\[client\] events n=(\S+) rtt_avg_ns=(\S+) rtt_min_ns=(\S+) rtt_max_ns=(\S+)",
    ));
    r.checks.push(match &events {
        Some((_, c)) => Check::new(
            "event-ping-pong",
            num(&c[1]) == Some(EVENTS),
            format!("n={} (want {EVENTS}) avg={} ns", &c[1], &c[2]),
        ),
        None => Check::new("event-ping-pong", false, "no `events` line"),
    });
    if let Some((_, c)) = &events {
        r.timings.push(format!(
            "event round trip: avg {} ns, min {} ns, max {} ns",
            &c[2], &c[3], &c[4]
        ));
    }

    let sent = input.find(&re(r"hello\[server\] payload sent bytes=(\S+) fnv=(\S+)"));
    let recv = input.find(&re(
        r"hello\[client\] payload received bytes=(\S+) fnv=(\S+)",
    ));
    r.checks.push(match (&sent, &recv) {
        (Some((_, s)), Some((_, c))) => {
            let ok = num(&s[1]) == Some(PAYLOAD_BYTES)
                && num(&c[1]) == Some(PAYLOAD_BYTES)
                && num(&s[2]).is_some()
                && num(&s[2]) == num(&c[2]);
            Check::new(
                "payload",
                ok,
                format!(
                    "sent {} fnv={}; received {} fnv={}",
                    &s[1], &s[2], &c[1], &c[2]
                ),
            )
        }
        (None, _) => Check::new("payload", false, "no `payload sent` line"),
        (_, None) => Check::new("payload", false, "no `payload received` line"),
    });

    for role in ROLES {
        let done = input.find(&re(&format!(r"hello\[{role}\] done\b")));
        r.checks.push(Check::new(
            &format!("{role}-done"),
            done.is_some(),
            done.map_or("no `done` line".into(), |(t, _)| format!("at +{t:.3} s")),
        ));
    }

    let result = input.find(&re(r"=== DOM0: result (.*)"));
    r.checks.push(match &result {
        Some((_, c)) if !c[1].trim().is_empty() => {
            Check::new("dom0-result", true, c[1].trim().to_string())
        }
        _ => Check::new("dom0-result", false, "dom0 never read the client's result"),
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::qemu::Ending;
    use crate::scenarios::{Input, evaluate};
    use std::path::Path;

    fn manifest() -> Manifest {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap();
        let root = root.parent().unwrap();
        Manifest::load(&root.join("tests/scenarios/hello.toml")).unwrap()
    }

    const GOOD: &str = "\
# qemu-system-aarch64 ...
[+   0.379] (XEN) Xen version 4.20.4-pre (Debian 4.20.3+127-gc42374a105-0+deb13u1) debug=n
[+   4.253] (XEN) DOM1: hello[server] banner xen-rt 0.1.0 image=40960 t_ms=3
[+   4.260] (XEN) DOM2: hello[client] banner xen-rt 0.1.0 image=40960 t_ms=4
[+  23.800] === DOM0 INIT REACHED: uptime 9.45 0.00 ===
[+  26.540] (XEN) DOM1: hello[server] xenstore ready domid=1 name=dom0less-1 t_ms=22300
[+  26.541] (XEN) DOM2: hello[client] xenstore ready domid=0x2 name=dom0less-2 t_ms=22310
[+  27.174] === DOM0 SETUP DONE: uptime 12.85 0.00 ===
[+  27.300] (XEN) DOM1: hello[server] published gref=0x8 port=5
[+  27.310] (XEN) DOM2: hello[client] mapped gref=8 port=6 magic=ok
[+  27.500] === DOM0: poked 1
[+  27.510] (XEN) DOM1: hello[server] watch fired path=data/hello/poke value=poke-from-dom0
[+  27.600] === DOM0: poked 2
[+  27.610] (XEN) DOM2: hello[client] watch fired path=data/hello/poke value=poke-from-dom0
[+  29.000] (XEN) DOM2: hello[client] events n=10000 rtt_avg_ns=51234 rtt_min_ns=20000 rtt_max_ns=900000
[+  30.000] (XEN) DOM1: hello[server] payload sent bytes=1048576 fnv=0xcbf29ce484222325
[+  30.100] (XEN) DOM2: hello[client] payload received bytes=0x100000 fnv=0xCBF29CE484222325
[+  30.200] (XEN) DOM1: hello[server] done
[+  30.210] (XEN) DOM2: hello[client] done
[+  31.000] === DOM0: result ok rtt_avg_ns=51234
[+  31.200] === DOM0 SCENARIO DONE
";

    fn run(log: &str, ending: Ending) -> Report {
        let m = manifest();
        let lines = crate::qemu::parse_log(log);
        let input = Input {
            manifest: &m,
            lines: &lines,
            ending: &ending,
            image_sizes: vec![("hello-domain".into(), 40960)],
        };
        evaluate(&input)
    }

    #[test]
    fn passing_log() {
        let r = run(GOOD, Ending::DoneMarker);
        for c in &r.checks {
            assert!(c.ok, "{} failed: {}", c.name, c.detail);
        }
        assert!(r.success());
        assert_eq!(r.checks.len(), 16);
        assert!(r.timings.iter().any(|t| t.contains("Xen banner: 0.379")));
        assert!(r.timings.iter().any(|t| t.contains("avg 51234 ns")));
        assert!(
            r.timings
                .iter()
                .any(|t| t.contains("image hello-domain: 40960 bytes"))
        );
    }

    #[test]
    fn failing_log() {
        let bad = GOOD
            .replace("domid=0x2", "domid=3")
            .replace(
                "value=poke-from-dom0\n[+  27.600]",
                "value=wrong\n[+  27.600]",
            )
            .replace("mapped gref=8", "mapped gref=9")
            .replace("events n=10000", "events n=9999")
            .replace("fnv=0xCBF29CE484222325", "fnv=0x1")
            .replace(
                "[+  30.210] (XEN) DOM2: hello[client] done\n",
                "[+  30.210] (XEN) DOM2: xen-rt: PANIC at src/main.rs:1\n",
            )
            .replace("=== DOM0 SCENARIO DONE\n", "");
        let r = run(&bad, Ending::Timeout);
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            vec![
                "no-panic",
                "finished-before-timeout",
                "server-watch-fired",
                "client-xenstore-ready",
                "grant-shared",
                "event-ping-pong",
                "payload",
                "client-done"
            ]
        );
        assert!(!r.success());
        // Other checks are still evaluated and pass.
        assert!(r.checks.iter().any(|c| c.name == "server-done" && c.ok));
    }

    #[test]
    fn empty_log_fails_everything_but_no_panic() {
        let r = run("", Ending::QemuExited(Some(1)));
        assert!(!r.success());
        assert_eq!(r.passed(), 1);
    }
}
