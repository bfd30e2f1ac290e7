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
use std::collections::BTreeMap;

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
        .find(|d| {
            d.bootargs
                .as_deref()
                .is_some_and(|b| b.split_whitespace().any(|w| w == format!("role={role}")))
        })
        .and_then(|d| input.manifest.domid(&d.name))
        .map(u64::from)
        .unwrap_or(if role == "server" { 1 } else { 2 })
}

/// One `hello[ROLE] EVENT ...` line: timestamp, positional words and
/// `key=value` fields (extra fields are allowed and ignored).
struct Event {
    t: f64,
    words: Vec<String>,
    kv: BTreeMap<String, String>,
}

impl Event {
    fn get(&self, k: &str) -> &str {
        self.kv.get(k).map_or("", String::as_str)
    }
    fn num(&self, k: &str) -> Option<u64> {
        parse_num(self.get(k))
    }
}

/// First `hello[role] <event>` line (`event` may be several words).
fn event(input: &Input, role: &str, event: &str) -> Option<Event> {
    let re = re(&format!(
        r"hello\[{role}\] {}(?:\s+(.*))?$",
        regex::escape(event)
    ));
    let (t, c) = input.find(&re)?;
    let rest = c.get(1).map_or("", |m| m.as_str());
    let mut words = Vec::new();
    let mut kv = BTreeMap::new();
    for tok in rest.split_whitespace() {
        match tok.split_once('=') {
            Some((k, v)) => {
                kv.insert(k.to_string(), v.to_string());
            }
            None => words.push(tok.to_string()),
        }
    }
    Some(Event { t, words, kv })
}

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();

    for role in ROLES {
        let banner = event(input, role, "banner");
        r.checks.push(match &banner {
            Some(e) => {
                let ok = e.words.first().map(String::as_str) == Some("xen-rt")
                    && e.words.len() >= 2
                    && e.num("image").is_some()
                    && e.num("t_ms").is_some();
                Check::new(
                    &format!("{role}-banner"),
                    ok,
                    format!(
                        "{} image={} t_ms={} at +{:.3} s",
                        e.words.join(" "),
                        e.get("image"),
                        e.get("t_ms"),
                        e.t
                    ),
                )
            }
            None => Check::new(&format!("{role}-banner"), false, "no banner line"),
        });
        if let Some(e) = &banner {
            r.timings
                .push(format!("qemu start -> {role} banner: {:.3} s", e.t));
            r.timings.push(format!(
                "{role}: domain start -> banner: {} ms",
                e.get("t_ms")
            ));
            if e.num("entry_ms").is_some() {
                r.timings.push(format!(
                    "{role}: domain start -> first instruction: {} ms (Xen unpauses domUs after its boot warnings' 3 s countdown)",
                    e.get("entry_ms")
                ));
            }
            if e.num("boot_us").is_some() {
                r.timings.push(format!(
                    "{role}: first instruction -> banner (xen-rt boot): {} us",
                    e.get("boot_us")
                ));
            }
        }

        let want = expected_domid(input, role);
        let ready = event(input, role, "xenstore ready");
        r.checks.push(match &ready {
            Some(e) => Check::new(
                &format!("{role}-xenstore-ready"),
                e.num("domid") == Some(want) && !e.get("name").is_empty(),
                format!(
                    "domid={} (want {want}) name={:?} t_ms={}",
                    e.get("domid"),
                    e.get("name"),
                    e.get("t_ms")
                ),
            ),
            None => Check::new(
                &format!("{role}-xenstore-ready"),
                false,
                "no `xenstore ready` line",
            ),
        });
        if let Some(e) = &ready {
            r.timings.push(format!(
                "{role}: domain start -> xenstore ready: {} ms",
                e.get("t_ms")
            ));
        }

        let watch = event(input, role, "watch fired");
        r.checks.push(match &watch {
            Some(e) => Check::new(
                &format!("{role}-watch-fired"),
                e.get("value") == POKE_VALUE,
                format!("path={} value={}", e.get("path"), e.get("value")),
            ),
            None => Check::new(
                &format!("{role}-watch-fired"),
                false,
                "no `watch fired` line",
            ),
        });
    }

    let published = event(input, "server", "published");
    let mapped = event(input, "client", "mapped");
    r.checks.push(match (&published, &mapped) {
        (Some(p), Some(m)) => Check::new(
            "grant-shared",
            p.num("gref").is_some() && p.num("gref") == m.num("gref") && m.get("magic") == "ok",
            format!(
                "published gref={} port={}; mapped gref={} port={} magic={}",
                p.get("gref"),
                p.get("port"),
                m.get("gref"),
                m.get("port"),
                m.get("magic")
            ),
        ),
        (None, _) => Check::new("grant-shared", false, "server never published a grant"),
        (_, None) => Check::new("grant-shared", false, "client never mapped the grant"),
    });

    let events = event(input, "client", "events");
    r.checks.push(match &events {
        Some(e) => Check::new(
            "event-ping-pong",
            e.num("n") == Some(EVENTS),
            format!(
                "n={} (want {EVENTS}) avg={} ns",
                e.get("n"),
                e.get("rtt_avg_ns")
            ),
        ),
        None => Check::new("event-ping-pong", false, "no `events` line"),
    });
    if let Some(e) = &events {
        r.timings.push(format!(
            "event round trip: avg {} ns, min {} ns, max {} ns",
            e.get("rtt_avg_ns"),
            e.get("rtt_min_ns"),
            e.get("rtt_max_ns")
        ));
    }

    let sent = event(input, "server", "payload sent");
    let recv = event(input, "client", "payload received");
    r.checks.push(match (&sent, &recv) {
        (Some(s), Some(c)) => Check::new(
            "payload",
            s.num("bytes") == Some(PAYLOAD_BYTES)
                && c.num("bytes") == Some(PAYLOAD_BYTES)
                && s.num("fnv").is_some()
                && s.num("fnv") == c.num("fnv"),
            format!(
                "sent {} fnv={}; received {} fnv={}",
                s.get("bytes"),
                s.get("fnv"),
                c.get("bytes"),
                c.get("fnv")
            ),
        ),
        (None, _) => Check::new("payload", false, "no `payload sent` line"),
        (_, None) => Check::new("payload", false, "no `payload received` line"),
    });

    for role in ROLES {
        let done = event(input, role, "done");
        r.checks.push(Check::new(
            &format!("{role}-done"),
            done.is_some(),
            done.map_or("no `done` line".into(), |e| format!("at +{:.3} s", e.t)),
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
[+   4.253] (XEN) DOM1: hello[server] banner xen-rt 0.1.0 xen=4.20 image=40960 t_ms=3
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
[+  30.100] (XEN) DOM2: hello[client] payload received bytes=0x100000 fnv=0xCBF29CE484222325 ms=102
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
