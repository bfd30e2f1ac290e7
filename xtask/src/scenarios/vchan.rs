//! Checks for the `vchan` scenario: tests/vchan-domain (our `vchan` crate
//! on xen-rt) against libxenvchan in dom0 (`vchan-socket-proxy`), see
//! tests/scenarios/vchan.toml and tests/scenarios/vchan/dom0.sh.
//!
//! Each domU's boot arguments list its runs
//! (`runs=READ_ORDER:WRITE_ORDER:SEND:RECV,...`, run i at xenstore port i);
//! the domain prints `vchan[ROLE] run=I ...` lines, dom0 one
//! `=== DOM0: vchan run=NAME ... dom=D port=I ... rx_bytes=N rx_md5=H ms=T`
//! line per session and `=== DOM0: vchan tx bytes=N md5=H` for what it
//! sends. A run passes when both directions carried the expected number of
//! bytes with matching MD5s on both ends and the domain closed cleanly.
//! The benchmark compares dom0 -> domain throughput (run with SEND 0)
//! against libxenvchan talking to itself inside dom0 (`run=loopback`).

use super::{Check, Input, Report};
use crate::util::parse_num;
use regex::Regex;
use std::collections::BTreeMap;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// `key=value` fields and their timestamp.
struct Fields {
    t: f64,
    kv: BTreeMap<String, String>,
}

impl Fields {
    fn parse(t: f64, rest: &str) -> Fields {
        let kv = rest
            .split_whitespace()
            .filter_map(|tok| tok.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Fields { t, kv }
    }
    fn get(&self, k: &str) -> &str {
        self.kv.get(k).map_or("", String::as_str)
    }
    fn num(&self, k: &str) -> Option<u64> {
        parse_num(self.get(k))
    }
}

/// First `vchan[role] <event> ...` line, with `run=I` if `run` is given.
fn event(input: &Input, role: &str, run: Option<usize>, event: &str) -> Option<Fields> {
    let run = run.map_or(String::new(), |i| format!("run={i} "));
    let re = re(&format!(
        r"vchan\[{role}\] {run}{}(?:\s+(.*))?$",
        regex::escape(event)
    ));
    let (t, c) = input.find(&re)?;
    Some(Fields::parse(t, c.get(1).map_or("", |m| m.as_str())))
}

/// dom0's session line for `dom`/`port`.
fn dom0_run(input: &Input, dom: u32, port: &str) -> Option<Fields> {
    let re = re(r"=== DOM0: vchan run=(\S+) (.*)$");
    input.lines.iter().find_map(|(t, l)| {
        let c = re.captures(l)?;
        let f = Fields::parse(*t, &c[2]);
        (f.get("dom") == dom.to_string() && f.get("port") == port).then(|| {
            let mut f = f;
            f.kv.insert("name".into(), c[1].to_string());
            f
        })
    })
}

/// One run of a domain, from its boot arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub read_order: u8,
    pub write_order: u8,
    pub send: u64,
    pub recv: u64,
}

fn parse_size(s: &str) -> Option<u64> {
    let (n, m) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<u64>().ok()?.checked_mul(m)
}

/// Parses `runs=...` (the domain's own default when absent).
pub fn parse_runs(bootargs: &str) -> Option<Vec<Run>> {
    let spec = bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("runs="))
        .unwrap_or("10:11:1M:1M");
    spec.split(',')
        .map(|item| {
            let f: Vec<&str> = item.split(':').collect();
            if f.len() != 4 {
                return None;
            }
            Some(Run {
                read_order: f[0].parse().ok()?,
                write_order: f[1].parse().ok()?,
                send: parse_size(f[2])?,
                recv: parse_size(f[3])?,
            })
        })
        .collect()
}

fn mib_s(bytes: u64, ms: u64) -> f64 {
    if ms == 0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / (ms as f64 / 1000.0)
}

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();
    let tx = input
        .find(&re(r"=== DOM0: vchan tx (.*)$"))
        .map(|(t, c)| Fields::parse(t, &c[1]));
    r.checks.push(match &tx {
        Some(f) if f.num("bytes").is_some() && f.get("md5").len() == 32 => Check::new(
            "dom0-payload",
            true,
            format!("bytes={} md5={}", f.get("bytes"), f.get("md5")),
        ),
        _ => Check::new("dom0-payload", false, "no `vchan tx` line from dom0"),
    });

    // dom0 -> domain benchmark: fastest receive-only in-page run.
    let mut bench: Option<(u64, u64)> = None;
    for (i, d) in input.manifest.domu.iter().enumerate() {
        let domid = i as u32 + 1;
        let args = d.bootargs.as_deref().unwrap_or("");
        let role = if args.split_whitespace().any(|w| w == "role=client") {
            "client"
        } else {
            "server"
        };
        let banner = event(input, role, None, "banner");
        r.checks.push(Check::new(
            &format!("{role}-banner"),
            banner.is_some(),
            banner.map_or("no banner line".into(), |b| {
                format!(
                    "image={} t_ms={} at +{:.3} s",
                    b.get("image"),
                    b.get("t_ms"),
                    b.t
                )
            }),
        ));
        let Some(runs) = parse_runs(args) else {
            r.checks.push(Check::new(
                &format!("{role}-runs"),
                false,
                format!("bad runs= in {args:?}"),
            ));
            continue;
        };
        for (i, run) in runs.iter().enumerate() {
            let name = format!("{role}-run{i}");
            let dom0 = dom0_run(input, domid, &i.to_string());
            let sent = event(input, role, Some(i), "sent");
            let received = event(input, role, Some(i), "received");
            let closed = event(input, role, Some(i), "closed");
            let error = event(input, role, Some(i), "error");
            let mut problems = Vec::new();
            if let Some(e) = &error {
                problems.push(format!(
                    "domain error: {}",
                    e.kv.values().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
            let Some(d0) = &dom0 else {
                r.checks
                    .push(Check::new(&name, false, "no dom0 session line"));
                continue;
            };
            let (tx_bytes, tx_md5) = (d0.num("tx_bytes"), d0.get("tx_md5"));
            if run.recv > 0 {
                match &received {
                    Some(f) => {
                        if f.num("bytes") != Some(run.recv) || tx_bytes != Some(run.recv) {
                            problems.push(format!(
                                "domain received {} of {} (dom0 sent {:?})",
                                f.get("bytes"),
                                run.recv,
                                tx_bytes
                            ));
                        }
                        if f.get("md5") != "-" && f.get("md5") != tx_md5 {
                            problems.push(format!(
                                "received md5 {} != dom0's {}",
                                f.get("md5"),
                                tx_md5
                            ));
                        }
                    }
                    None => problems.push("no `received` line".into()),
                }
            }
            if d0.num("rx_bytes") != Some(run.send) {
                problems.push(format!(
                    "dom0 received {} bytes, want {}",
                    d0.get("rx_bytes"),
                    run.send
                ));
            }
            if run.send > 0 {
                match &sent {
                    Some(f) if f.get("md5") == "-" || f.get("md5") == d0.get("rx_md5") => {}
                    Some(f) => problems.push(format!(
                        "sent md5 {} != dom0 received {}",
                        f.get("md5"),
                        d0.get("rx_md5")
                    )),
                    None => problems.push("no `sent` line".into()),
                }
            }
            if closed.is_none() {
                problems.push("no `closed` line".into());
            }
            let dom_ms = closed.as_ref().and_then(|c| c.num("ms")).unwrap_or(0);
            let d0_ms = d0.num("ms").unwrap_or(0);
            let detail = format!(
                "{} rings {}:{} send={} recv={} domain {} ms, dom0 session {} ms ({:.2} MiB/s total){}",
                d0.get("name"),
                run.read_order,
                run.write_order,
                run.send,
                run.recv,
                dom_ms,
                d0_ms,
                mib_s(run.send + run.recv, dom_ms),
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(": {}", problems.join("; "))
                }
            );
            r.timings.push(format!("{name}: {detail}"));
            if run.send == 0
                && run.recv > 0
                && run.read_order <= 11
                && problems.is_empty()
                && d0_ms > 0
            {
                bench = Some((run.recv, d0_ms));
            }
            r.checks
                .push(Check::new(&name, problems.is_empty(), detail));
        }
        let done = event(input, role, None, "done");
        r.checks.push(Check::new(
            &format!("{role}-done"),
            done.is_some(),
            done.map_or("no `done` line".into(), |e| format!("at +{:.3} s", e.t)),
        ));
    }

    // libxenvchan <-> libxenvchan inside dom0, same payload, same ring
    // sizes (proxy server defaults: client->server ring 1 KiB).
    let lb = dom0_run(input, 0, "loop");
    let lb_ok = lb.as_ref().is_some_and(|f| {
        f.num("tx_bytes").is_some()
            && f.num("rx_bytes") == f.num("tx_bytes")
            && f.get("rx_md5") == f.get("tx_md5")
    });
    match (&lb, bench) {
        (Some(f), Some((bytes, ms))) if lb_ok => {
            let ours = mib_s(bytes, ms);
            let theirs = mib_s(bytes, f.num("ms").unwrap_or(0));
            r.timings.push(format!(
                "bench dom0->domain (1 KiB ring): {ours:.2} MiB/s; dom0->dom0 libxenvchan: {theirs:.2} MiB/s; ratio {:.2}",
                if theirs > 0.0 { ours / theirs } else { 0.0 }
            ));
        }
        (Some(f), _) => r.timings.push(format!(
            "bench: loopback rx_bytes={} ms={} (incomplete or no domain bench run)",
            f.get("rx_bytes"),
            f.get("ms")
        )),
        (None, _) => r.timings.push("bench: no loopback line from dom0".into()),
    }
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
        Manifest::load(&root.join("tests/scenarios/vchan.toml")).unwrap()
    }

    /// A log in the shape of a real run, with the sizes of vchan.toml.
    fn good_log(m: &Manifest) -> String {
        let runs = parse_runs(m.domu[0].bootargs.as_deref().unwrap()).unwrap();
        let n = runs[0].recv;
        let tx = "1f7ecd63fa6db5bdac5a461c5932fc15";
        let ours = "e0d5c0bdd4b194e855501786ed56b411";
        let mut log = String::from(
            "[+   0.264] (XEN) Xen version 4.20.4-pre (Debian) debug=n\n\
             [+   4.215] (XEN) DOM2: vchan[client] banner xen-rt 0.1.0 image=101808 t_ms=3066 xen=4.20\n\
             [+   4.218] (XEN) DOM1: vchan[server] banner xen-rt 0.1.0 image=101808 t_ms=3091 xen=4.20\n\
             [+  14.611] === DOM0 SETUP DONE: uptime 8.38 0.88 ===\n",
        );
        log += &format!("[+  16.300] === DOM0: vchan tx bytes={n} md5={tx} gen_ms=1570\n");
        let names = [
            "srv-inpage",
            "srv-multipage",
            "bench-dom-inpage",
            "bench-dom-multipage",
        ];
        for (i, r) in runs.iter().enumerate() {
            if r.send > 0 {
                log += &format!(
                    "[+  20.000] (XEN) DOM1: vchan[server] run={i} sent bytes={} md5={ours}\n",
                    r.send
                );
            }
            log += &format!(
                "[+  21.000] (XEN) DOM1: vchan[server] run={i} received bytes={} md5={} ms=1000\n\
                 [+  21.100] (XEN) DOM1: vchan[server] run={i} closed ms=1100 kib_s=1 waits=3\n\
                 [+  21.200] === DOM0: vchan run={} mode=client dom=1 port={i} rc=0 tx_bytes={} tx_md5={tx} rx_bytes={} rx_md5={} ms=1200\n",
                r.recv,
                if r.recv > 0 { tx } else { "-" },
                names[i],
                r.recv,
                r.send,
                if r.send > 0 {
                    ours
                } else {
                    "d41d8cd98f00b204e9800998ecf8427e"
                },
            );
        }
        log += &format!(
            "[+  30.000] (XEN) DOM1: vchan[server] done\n\
             [+  40.000] (XEN) DOM2: vchan[client] run=0 sent bytes={n} md5={ours}\n\
             [+  40.100] (XEN) DOM2: vchan[client] run=0 received bytes={n} md5={tx} ms=900\n\
             [+  40.200] (XEN) DOM2: vchan[client] run=0 closed ms=950 kib_s=1 waits=3\n\
             [+  40.300] (XEN) DOM2: vchan[client] done\n\
             [+  40.400] === DOM0: vchan run=cli mode=server dom=2 port=0 rc=0 tx_bytes={n} tx_md5={tx} rx_bytes={n} rx_md5={ours} ms=1000\n\
             [+  50.000] === DOM0: vchan run=loopback mode=both dom=0 port=loop rc=0 tx_bytes={n} tx_md5={tx} rx_bytes={n} rx_md5={tx} ms=2400\n\
             [+  51.000] === DOM0 SCENARIO DONE\n"
        );
        log
    }

    fn run(log: &str, m: &Manifest) -> Report {
        let lines = crate::qemu::parse_log(log);
        let input = Input {
            manifest: m,
            lines: &lines,
            ending: &Ending::DoneMarker,
            image_sizes: vec![],
        };
        evaluate(&input)
    }

    #[test]
    fn runs_parse() {
        assert_eq!(
            parse_runs("role=server runs=10:11:4M:1K,16:16:0:7").unwrap(),
            vec![
                Run {
                    read_order: 10,
                    write_order: 11,
                    send: 4 << 20,
                    recv: 1024
                },
                Run {
                    read_order: 16,
                    write_order: 16,
                    send: 0,
                    recv: 7
                },
            ]
        );
        assert!(parse_runs("runs=10:11:4M").is_none());
        assert_eq!(parse_runs("role=client").unwrap().len(), 1);
    }

    #[test]
    fn passing_log() {
        let m = manifest();
        let r = run(&good_log(&m), &m);
        for c in &r.checks {
            assert!(c.ok, "{} failed: {}", c.name, c.detail);
        }
        assert!(r.success());
        assert!(
            r.timings.iter().any(|t| t.contains("ratio")),
            "{:?}",
            r.timings
        );
    }

    #[test]
    fn corrupted_transfer_fails() {
        let m = manifest();
        let log = good_log(&m).replacen(
            "rx_md5=e0d5c0bdd4b194e855501786ed56b411",
            "rx_md5=00000000000000000000000000000000",
            1,
        );
        let r = run(&log, &m);
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, vec!["server-run0"]);
    }
}
