//! Checks for the `net` scenario (tests/scenarios/net.toml): net-domain
//! serving netback to two Linux netfront guests and switching between them.
//!
//! The guests print `=== GUEST(x) <WHAT> RESULT OK|FAIL ...` lines and
//! their eth0 counters before every unbind; dom0 prints the xenbus states
//! of both vifs; the net domain prints a vif's counters when it closes.
//! guest-b's vif connects 11 times (10 detach/attach cycles). The counters
//! of both sides must agree exactly, connection by connection: what a
//! guest sent is what its switch port received, what a port gave its guest
//! is what the guest received (netfront counts received bytes without the
//! 14-byte Ethernet header), and every frame a port received went to the
//! other guest's port or was counted as dropped.
//!
//! The hostile domain (tests/net-hostile-domain, domid 4) prints
//! `net-hostile: case ...` lines and `net-hostile: RESULT ...` while the
//! transfers run: every case must pass, and net-domain must log the
//! disconnect of its vif 0 once per fatal case, with the reason that case
//! provoked (`xenbus: closing /local/domain/1/backend/vif/4/0: <reason>`).

use super::{Check, Input, Report};
use regex::Regex;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// Bytes each transfer moves.
const TRANSFER_BYTES: u64 = 64 << 20;
/// Guests: (role, domid).
const GUESTS: [(&str, u32); 2] = [("a", 2), ("b", 3)];
const ETH_HLEN: u64 = 14;
/// guest-b's detach/attach cycles.
const CYCLES: usize = 10;
/// The hostile domain: its domid and the number of its cases.
const HOSTILE: u32 = 4;
const HOSTILE_CASES: usize = 16;

/// A `RESULT OK|FAIL` line of a guest: (ok, rest of the line, time).
fn result(input: &Input, guest: &str, what: &str) -> Option<(bool, String, f64)> {
    let (t, c) = input.find(&re(&format!(
        r"=== GUEST\({guest}\) {what} RESULT (OK|FAIL)(.*)"
    )))?;
    Some((&c[1] == "OK", c[2].trim().to_string(), t))
}

fn push_result(r: &mut Report, input: &Input, name: &str, guest: &str, what: &str) {
    let res = result(input, guest, what);
    r.checks.push(Check::new(
        name,
        res.as_ref().is_some_and(|(ok, _, _)| *ok),
        res.as_ref().map_or(
            format!("guest-{guest} never printed its {what} result"),
            |(ok, rest, t)| format!("{} {rest} at +{t:.1} s", if *ok { "OK" } else { "FAIL" }),
        ),
    ));
}

/// Eight numbers of a counters line: rx pkts, bytes, err(s), drop, then
/// tx the same.
fn eight(c: &regex::Captures) -> Option<[u64; 8]> {
    let mut v = [0u64; 8];
    for (i, x) in v.iter_mut().enumerate() {
        *x = c.get(i + 1)?.as_str().parse().ok()?;
    }
    Some(v)
}

/// The net domain's counters of each connection of a vif, from its
/// `closed` lines, in order.
fn vif_counters(input: &Input, domid: u32) -> Vec<[u64; 8]> {
    let re = re(&format!(
        r"netback: vif {domid}/0 closed: rx (\d+) pkts (\d+) B (\d+) err (\d+) drop, tx (\d+) pkts (\d+) B (\d+) err (\d+) drop"
    ));
    input
        .lines
        .iter()
        .filter_map(|(_, l)| re.captures(l).as_ref().and_then(eight))
        .collect()
}

/// The net domain's management counters of each connection of a vif, from
/// its `mgmt:` lines: (frames that went only to the management host,
/// frames the management host gave the vif).
fn vif_mgmt(input: &Input, domid: u32) -> Vec<(u64, u64)> {
    let re = re(&format!(
        r"netback: vif {domid}/0 mgmt: only-to-mgmt (\d+) from-mgmt (\d+)"
    ));
    input
        .lines
        .iter()
        .filter_map(|(_, l)| {
            let c = re.captures(l)?;
            Some((c[1].parse().ok()?, c[2].parse().ok()?))
        })
        .collect()
}

/// A guest's eth0 counters before each unbind, in order.
fn guest_counters(input: &Input, guest: &str) -> Vec<[u64; 8]> {
    let re = re(&format!(
        r"=== GUEST\({guest}\) COUNTERS rx=(\d+)/(\d+)/(\d+)/(\d+) tx=(\d+)/(\d+)/(\d+)/(\d+)"
    ));
    input
        .lines
        .iter()
        .filter_map(|(_, l)| re.captures(l).as_ref().and_then(eight))
        .collect()
}

/// One transfer: the sender's and the receiver's lines agree.
fn transfer(r: &mut Report, input: &Input, from: &str, to: &str, port: u32) {
    let send = input.find(&re(&format!(
        r"=== GUEST\({from}\) SEND RESULT (OK|FAIL) port={port} bytes=(\d+) md5=([0-9a-f]+) secs=([\d.]+)"
    )));
    let recv = input.find(&re(&format!(
        r"=== GUEST\({to}\) RECV RESULT (OK|FAIL) port={port} md5=([0-9a-f]+)"
    )));
    let (ok, detail) = match (&send, &recv) {
        (Some((_, s)), Some((_, d))) => {
            let bytes: u64 = s[2].parse().unwrap_or(0);
            let secs: f64 = s[4].parse().unwrap_or(0.0);
            let ok = &s[1] == "OK" && bytes == TRANSFER_BYTES && s[3] == d[2];
            let rate = bytes as f64 / 1e6 / secs.max(1e-3);
            r.timings.push(format!(
                "tcp {from} -> {to}: {} MiB in {secs:.2} s ({rate:.1} MB/s)",
                bytes >> 20
            ));
            (
                ok,
                format!(
                    "{} MiB, sent md5 {} received md5 {}, {rate:.1} MB/s",
                    bytes >> 20,
                    &s[3],
                    &d[2]
                ),
            )
        }
        (None, _) => (false, format!("guest-{from} never reported its send")),
        (_, None) => (false, format!("guest-{to} never reported what it received")),
    };
    r.checks
        .push(Check::new(&format!("tcp-64mib-{from}-to-{to}"), ok, detail));
}

/// guest-a fetched the management host's counters over TCP: a line for
/// each guest's vif with traffic on it, and the number of frontends.
fn mgmt_counters(r: &mut Report, input: &Input) {
    let serving = input.find(&re(
        r"net-domain: management host 10\.0\.0\.1/24 mac .*, counters on tcp port 7777",
    ));
    let result = result(input, "a", "MGMT");
    let vif = |d: u32| {
        input
            .find(&re(&format!(
                r"=== GUEST\(a\) MGMT COUNTERS vif {d}/0 rx (\d+) (\d+) (\d+) (\d+) tx (\d+)"
            )))
            .and_then(|(_, c)| Some((c[1].parse::<u64>().ok()?, c[5].parse::<u64>().ok()?)))
    };
    let (va, vb) = (vif(2), vif(3));
    let frontends = input
        .find(&re(r"=== GUEST\(a\) MGMT COUNTERS frontends (\d+)"))
        .and_then(|(_, c)| c[1].parse::<u32>().ok());
    let ok = serving.is_some()
        && result.as_ref().is_some_and(|(ok, _, _)| *ok)
        && va.is_some_and(|(rx, tx)| rx > 0 && tx > 0)
        && vb.is_some_and(|(rx, tx)| rx > 0 && tx > 0)
        && frontends.is_some_and(|n| n >= 2);
    r.checks.push(Check::new(
        "mgmt-counters",
        ok,
        format!(
            "management host {}; answer: vif 2/0 rx/tx pkts {}, vif 3/0 {}, frontends {}",
            if serving.is_some() { "up" } else { "NOT up" },
            va.map_or("missing".into(), |(a, b)| format!("{a}/{b}")),
            vb.map_or("missing".into(), |(a, b)| format!("{a}/{b}")),
            frontends.map_or("missing".into(), |n| n.to_string())
        ),
    ));
}

/// guest-b's last connection carries `rate=1Mb/s@20ms` (libxl writes
/// `rate = "2500,20000"`): net-domain must report the limit when the vif
/// connects, hold packets back for credit, and the 512 KiB transfer on it
/// must arrive intact at no more than the limit (payload bytes over the
/// transfer's wall time; frames carry headers on top, so the payload rate
/// of a link held to the limit is below it).
fn rate_limit(r: &mut Report, input: &Input) {
    const LIMIT_BYTES_PER_S: f64 = 2500.0 / 0.02;
    let sent = input.find(&re(
        r"=== GUEST\(b\) RATE RESULT (OK|FAIL) port=5004 bytes=(\d+) md5=([0-9a-f]+) secs=([\d.]+)",
    ));
    let got = input.find(&re(
        r"=== GUEST\(a\) RECV RESULT OK port=5004 md5=([0-9a-f]+)",
    ));
    let announced = input.lines.iter().any(|(_, l)| {
        l.contains("netback: vif 3/0 connected") && l.contains("rate 2500 bytes per 20000 us")
    });
    let waits = input
        .find(&re(
            r"netback: vif 3/0 rate limit: tx waited for credit (\d+) times",
        ))
        .and_then(|(_, c)| c[1].parse::<u64>().ok());
    let (ok, detail) = match (&sent, &got) {
        (Some((_, s)), Some((_, g))) => {
            let bytes: f64 = s[2].parse().unwrap_or(0.0);
            let secs: f64 = s[4].parse().unwrap_or(0.0);
            let rate = bytes / secs.max(1e-3);
            let ok = &s[1] == "OK"
                && s[3] == g[1]
                && announced
                && waits.is_some_and(|w| w > 0)
                && rate <= LIMIT_BYTES_PER_S * 1.1;
            r.timings.push(format!(
                "rate-limited tcp b -> a: {} KiB in {secs:.2} s ({:.0} B/s, limit {LIMIT_BYTES_PER_S:.0})",
                bytes as u64 >> 10,
                rate
            ));
            (
                ok,
                format!(
                    "{} KiB in {secs:.2} s = {rate:.0} B/s (limit {LIMIT_BYTES_PER_S:.0} B/s + 10 %); md5 sent {} received {}; limit announced: {announced}; credit waits: {}",
                    bytes as u64 >> 10,
                    &s[3],
                    &g[1],
                    waits.map_or("no line".into(), |w| w.to_string())
                ),
            )
        }
        (None, _) => (
            false,
            "guest-b never reported its rate-limited transfer".into(),
        ),
        (_, None) => (
            false,
            "guest-a never reported what it received on port 5004".into(),
        ),
    };
    r.checks.push(Check::new("rate-limit-b", ok, detail));
}

/// The disconnect reasons net-domain must log for the hostile domain's
/// fatal cases, in order (from its case lines; `None` for a case that did
/// not pass).
fn hostile_reasons(input: &Input) -> Vec<(&'static str, Option<String>)> {
    let overflow = |case: &str| {
        input
            .find(&re(&format!(
                r"net-hostile: case {case} req_prod (\d+) backend state \d after \d+ ms ok"
            )))
            .map(|(_, c)| {
                format!(
                    "ring index violation: RequestProdOverflow {{ req_prod: {} }}",
                    &c[1]
                )
            })
    };
    let fixed = |case: &str, reason: &str| {
        input
            .find(&re(&format!(
                r"net-hostile: case {case} backend state \d after \d+ ms ok"
            )))
            .map(|_| reason.to_string())
    };
    vec![
        ("rx-ring-overflow", overflow("rx-ring-overflow")),
        (
            "tx-oversized",
            fixed(
                "tx-oversized",
                "tx ring: CrossesPage { offset: 0, size: 65535 }",
            ),
        ),
        (
            "tx-too-many-slots",
            fixed("tx-too-many-slots", "tx ring: TooManySlots"),
        ),
        ("tx-ring-overflow", overflow("tx-ring-overflow")),
    ]
}

/// The hostile frontend: all cases passed, each fatal one logged by
/// net-domain with its reason, and all of it while the transfers ran.
fn hostile(r: &mut Report, input: &Input) {
    let result = input.find(&re(r"net-hostile: RESULT (\d+) passed, (\d+) failed(.*)"));
    let cases = input
        .lines
        .iter()
        .filter(|(_, l)| l.contains("net-hostile: case "))
        .count();
    let failed: Vec<&str> = input
        .lines
        .iter()
        .filter(|(_, l)| l.contains("net-hostile: case ") && l.contains(" FAIL"))
        .map(|(_, l)| l.as_str())
        .collect();
    r.checks.push(Check::new(
        "hostile-cases",
        result.as_ref().is_some_and(|(_, c)| {
            &c[2] == "0" && c[1].parse::<usize>().ok() == Some(HOSTILE_CASES)
        }) && cases == HOSTILE_CASES,
        match &result {
            Some((_, c)) => format!(
                "{} passed, {} failed{} ({cases} case lines, want {HOSTILE_CASES}){}",
                &c[1],
                &c[2],
                c[3].trim_end(),
                failed
                    .first()
                    .map_or(String::new(), |l| format!("; first failure: {l}"))
            ),
            None => "the hostile domain never printed its result".into(),
        },
    ));

    let logged: Vec<(f64, String)> = {
        let closing = re(&format!(
            r"xenbus: closing /local/domain/1/backend/vif/{HOSTILE}/0: (.*)"
        ));
        input
            .lines
            .iter()
            .filter_map(|(t, l)| closing.captures(l).map(|c| (*t, c[1].trim().to_string())))
            .collect()
    };
    let want = hostile_reasons(input);
    let mut bad = Vec::new();
    for (k, (case, reason)) in want.iter().enumerate() {
        match (reason, logged.get(k)) {
            (None, _) => bad.push(format!("case {case} did not pass")),
            (Some(w), Some((_, got))) if got == w => {}
            (Some(w), got) => bad.push(format!(
                "{case}: want `{w}`, logged {}",
                got.map_or("nothing".to_string(), |(_, g)| format!("`{g}`"))
            )),
        }
    }
    if logged.len() > want.len() {
        bad.push(format!(
            "{} disconnects logged, want {}",
            logged.len(),
            want.len()
        ));
    }
    r.checks.push(Check::new(
        "hostile-disconnected",
        bad.is_empty(),
        match (bad.first(), logged.last()) {
            (Some(b), _) => b.clone(),
            (None, Some((t, last))) => format!(
                "{} disconnects of vif {HOSTILE}/0 with the provoked reasons; last `{last}` at +{t:.1} s",
                logged.len()
            ),
            (None, None) => "no disconnect logged".into(),
        },
    ));

    // The cases ran between the start of the first transfer and the end
    // of the second (a SEND line carries the transfer's duration).
    let sent = |g: &str| {
        input
            .find(&re(&format!(
                r"=== GUEST\({g}\) SEND RESULT OK .* secs=([\d.]+)"
            )))
            .map(|(t, c)| (t - c[1].parse::<f64>().unwrap_or(0.0), t))
    };
    let connected = input.find(&re(r"net-hostile: connected vif 0 "));
    let (ok, detail) = match (sent("a"), sent("b"), &connected, &result) {
        (Some((start, _)), Some((_, end)), Some((t0, _)), Some((t1, _))) => (
            start <= *t0 && *t1 <= end,
            format!(
                "hostile connected at +{t0:.1} s, done at +{t1:.1} s; transfers from +{start:.1} s to +{end:.1} s"
            ),
        ),
        _ => (
            false,
            "a transfer or the hostile domain's connected/RESULT line is missing".into(),
        ),
    };
    r.checks
        .push(Check::new("hostile-during-transfers", ok, detail));
}

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();

    let serving = input.find(&re(
        r"net-domain: netback serving as dom1 \(max (\d+) queues per vif\) at \+(\d+) ms",
    ));
    r.checks.push(Check::new(
        "netback-serving",
        serving.is_some(),
        serving
            .as_ref()
            .map_or("no `netback serving` line".into(), |(t, c)| {
                format!(
                    "max {} queues, serving {} ms after domain start (+{t:.1} s)",
                    &c[1], &c[2]
                )
            }),
    ));

    for (g, d) in GUESTS {
        let states = input.find(&re(&format!(
            r"=== DOM0: net vif dom{d} states backend=(\d) frontend=(\d)"
        )));
        let conn = input.find(&re(&format!(
            r"netback: vif {d}/0 connected: mac (\S*) (\d+) queue\(s\) sg (\d) gso (\d)/(\d)"
        )));
        r.checks.push(Check::new(
            &format!("vif-connected-{g}"),
            states
                .as_ref()
                .is_some_and(|(_, c)| &c[1] == "4" && &c[2] == "4")
                && conn.is_some(),
            format!(
                "xenstore: {}; netback: {}",
                states
                    .as_ref()
                    .map_or("no state line".into(), |(t, c)| format!(
                        "backend {} frontend {} at +{t:.1} s",
                        &c[1], &c[2]
                    )),
                conn.as_ref()
                    .map_or("no `connected` line".into(), |(_, c)| format!(
                        "mac {} {} queue(s) sg {} gso {}/{}",
                        &c[1], &c[2], &c[3], &c[4], &c[5]
                    ))
            ),
        ));
    }
    push_result(&mut r, input, "link-up-a", "a", "LINK");
    push_result(&mut r, input, "link-up-b", "b", "LINK");
    push_result(&mut r, input, "ping-100", "a", "PING");
    push_result(&mut r, input, "mgmt-ping", "a", "MGMT PING");
    mgmt_counters(&mut r, input);
    if let Some((_, c)) = input.find(&re(
        r"=== GUEST\(a\) PING RESULT .*rtt_min/avg/max=([\d.]+)/([\d.]+)/([\d.]+)",
    )) {
        r.timings.push(format!(
            "ping a -> b: rtt min {} avg {} max {} ms",
            &c[1], &c[2], &c[3]
        ));
    }
    transfer(&mut r, input, "a", "b", 5001);
    transfer(&mut r, input, "b", "a", 5002);

    // Counters: each connection of a guest against its port, and the
    // ports against each other (every frame a port received went to the
    // other guest's port, or was dropped at the ingress port).
    let vifs: Vec<Vec<[u64; 8]>> = GUESTS
        .iter()
        .map(|(_, d)| vif_counters(input, *d))
        .collect();
    let mgmt: Vec<Vec<(u64, u64)>> = GUESTS.iter().map(|(_, d)| vif_mgmt(input, *d)).collect();
    let guests: Vec<Vec<[u64; 8]>> = GUESTS
        .iter()
        .map(|(g, _)| guest_counters(input, g))
        .collect();
    for (k, (g, d)) in GUESTS.iter().enumerate() {
        let (ports, seen) = (&vifs[k], &guests[k]);
        let want = if *g == "b" { CYCLES + 1 } else { 1 };
        let mut bad = Vec::new();
        for (n, (v, s)) in ports.iter().zip(seen).enumerate() {
            let sent = s[4] == v[0] && s[5] == v[1];
            let got = s[0] == v[4] && s[1] + ETH_HLEN * s[0] == v[5];
            let clean = v[2] == 0 && v[6] == 0 && s[2] == 0 && s[6] == 0;
            if !(sent && got && clean) {
                bad.push(format!(
                    "connection {n}: guest tx {}/{} port rx {}/{}, port tx {}/{} guest rx {}/{}+hdr, errors {}/{}/{}/{}",
                    s[4], s[5], v[0], v[1], v[4], v[5], s[0], s[1], v[2], v[6], s[2], s[6]
                ));
            }
        }
        let sum = |vs: &[[u64; 8]], i: usize| vs.iter().map(|v| v[i]).sum::<u64>();
        let other = &vifs[1 - k];
        let (rx, dropped) = (sum(ports, 0), sum(ports, 3));
        // The management host: frames of this port that reached it alone,
        // and frames it gave the other port (not from this guest).
        let (mine, theirs) = (&mgmt[k], &mgmt[1 - k]);
        let to_mgmt_only: u64 = mine.iter().map(|m| m.0).sum();
        let other_from_mgmt: u64 = theirs.iter().map(|m| m.1).sum();
        let delivered =
            (sum(other, 4) + sum(other, 6) + sum(other, 7)).saturating_sub(other_from_mgmt);
        let ok = ports.len() == want
            && seen.len() == want
            && mine.len() == want
            && bad.is_empty()
            && rx == dropped + delivered + to_mgmt_only;
        r.checks.push(Check::new(
            &format!("counters-consistent-{g}"),
            ok,
            format!(
                "{} connection(s) of dom{d} (want {want}), {} guest snapshots; port rx {rx} = {dropped} dropped + {delivered} to dom{} + {to_mgmt_only} to the management host only; guest tx {} / rx {} pkts in total{}",
                ports.len(),
                seen.len(),
                GUESTS[1 - k].1,
                sum(seen, 4),
                sum(seen, 0),
                bad.first().map_or(String::new(), |b| format!("; MISMATCH {b}"))
            ),
        ));
    }

    // guest-b: 2 queues, and 10 detach/attach cycles with traffic.
    let mq = input.find(&re(r"netback: vif 3/0 connected: mac \S* (\d+) queue\(s\)"));
    r.checks.push(Check::new(
        "multi-queue-b",
        mq.as_ref().is_some_and(|(_, c)| &c[1] == "2"),
        mq.as_ref()
            .map_or("guest-b's vif never connected".into(), |(_, c)| {
                format!("guest-b's vif connected with {} queues (want 2)", &c[1])
            }),
    ));
    if let Some((_, c)) = input.find(&re(r"netback: vif 3/0 packets per tx queue: \[([\d, ]*)\]")) {
        r.timings.push(format!(
            "guest-b packets per tx queue (first connection): {}",
            &c[1]
        ));
    }
    push_result(&mut r, input, "reattach-10-cycles", "b", "CYCLES");
    rate_limit(&mut r, input);
    let connects = input
        .lines
        .iter()
        .filter(|(_, l)| l.contains("netback: vif 3/0 connected"))
        .count();
    let cycles_done = input.find(&re(r"=== DOM0: net cycles done: (\d+) of (\d+)"));
    r.checks.push(Check::new(
        "reattach-backend",
        connects == CYCLES + 1 && cycles_done.as_ref().is_some_and(|(_, c)| c[1] == c[2]),
        format!(
            "{connects} connections of guest-b's vif (want {}); dom0: {}",
            CYCLES + 1,
            cycles_done
                .as_ref()
                .map_or("no cycles line".into(), |(_, c)| format!(
                    "{} of {} cycles",
                    &c[1], &c[2]
                ))
        ),
    ));

    let fatal: Vec<&str> = input
        .lines
        .iter()
        .filter(|(_, l)| {
            GUESTS.iter().any(|(_, d)| {
                l.contains(&format!("xenbus: closing /local/domain/1/backend/vif/{d}/"))
            })
        })
        .map(|(_, l)| l.as_str())
        .collect();
    r.checks.push(Check::new(
        "no-frontend-failed",
        fatal.is_empty(),
        fatal
            .first()
            .map_or("no guest vif was closed for a protocol error".into(), |l| {
                l.to_string()
            }),
    ));
    hostile(&mut r, input);
    let detached = input
        .lines
        .iter()
        .filter(|(_, l)| l.contains("=== DOM0: net detach") && l.contains("rc=0"))
        .count();
    r.checks.push(Check::new(
        "vifs-detached",
        detached == 2 + CYCLES,
        format!(
            "{detached} xl network-detach with rc=0 (want {})",
            2 + CYCLES
        ),
    ));
    if let Some((_, c)) = input.find(&re(r"=== GUEST\(a\) LOOPBACK bytes=(\d+) secs=([\d.]+)")) {
        let (bytes, secs) = (
            c[1].parse::<f64>().unwrap_or(0.0),
            c[2].parse::<f64>().unwrap_or(0.0),
        );
        r.timings.push(format!(
            "tcp over loopback inside guest a (no net domain): {:.1} MB/s",
            bytes / 1e6 / secs.max(1e-3)
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::qemu::Ending;
    use std::path::Path;

    fn manifest() -> Manifest {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap();
        let root = root.parent().unwrap();
        Manifest::load(&root.join("tests/scenarios/net.toml")).unwrap()
    }

    /// The hostile domain's lines of a real run (shortened), inside the
    /// transfers.
    const GOOD: &str = "\
[+ 94.591] (XEN) DOM4: net-hostile: connected vif 0 mac 00:16:3e:00:00:40 vif 1 mac 00:16:3e:00:00:41 backend dom1
[+ 94.799] (XEN) DOM4: net-hostile: case tx-sanity resp 0x1:0 ok
[+ 94.807] (XEN) DOM4: net-hostile: case tx-bad-gref resp 0x2:-1 ok
[+ 94.820] (XEN) DOM4: net-hostile: case tx-zero-length resp 0x3:-1 ok
[+ 94.826] (XEN) DOM4: net-hostile: case tx-runt resp 0x4:-1 ok
[+ 94.836] (XEN) DOM4: net-hostile: case tx-zero-fragment resp 0x5:-1 0x6:-1 ok
[+ 94.847] (XEN) DOM4: net-hostile: case tx-fragment-oversized resp 0x7:-1 0x8:-1 ok
[+ 94.859] (XEN) DOM4: net-hostile: case tx-bad-gref-fragment resp 0x9:-1 0xa:-1 ok
[+ 94.873] (XEN) DOM4: net-hostile: case tx-id-out-of-range resp 0xffff:0 0xffff:0 ok
[+ 94.881] (XEN) DOM4: net-hostile: case rx-bad-gref rx 0xffff:-1 ok
[+ 94.891] (XEN) DOM4: net-hostile: case rx-readonly-gref rx 0x8000:-1 ok
[+ 94.901] (XEN) DOM4: net-hostile: case rx-id-out-of-range rx 0xfffe:60 ok
[+ 94.926] (XEN) DOM4: net-hostile: case tx-after resp 0x11:0 ok
[+ 94.938] (XEN) DOM1: xenbus: closing /local/domain/1/backend/vif/4/0: ring index violation: RequestProdOverflow { req_prod: 1003 }
[+ 94.982] (XEN) DOM4: net-hostile: case rx-ring-overflow req_prod 1003 backend state 5 after 48 ms ok
[+ 95.362] (XEN) DOM1: xenbus: closing /local/domain/1/backend/vif/4/0: tx ring: CrossesPage { offset: 0, size: 65535 }
[+ 95.406] (XEN) DOM4: net-hostile: case tx-oversized backend state 5 after 134 ms ok
[+ 95.825] (XEN) DOM1: xenbus: closing /local/domain/1/backend/vif/4/0: tx ring: TooManySlots
[+ 95.848] (XEN) DOM4: net-hostile: case tx-too-many-slots backend state 5 after 57 ms ok
[+ 96.073] (XEN) DOM1: xenbus: closing /local/domain/1/backend/vif/4/0: ring index violation: RequestProdOverflow { req_prod: 1000 }
[+ 96.102] (XEN) DOM4: net-hostile: case tx-ring-overflow req_prod 1000 backend state 5 after 84 ms ok
[+ 96.206] (XEN) DOM4: net-hostile: RESULT 16 passed, 0 failed
[+ 185.106] (XEN) DOM2: === GUEST(a) SEND RESULT OK port=5001 bytes=67108864 md5=c3 secs=110.91
[+ 443.262] (XEN) DOM3: === GUEST(b) SEND RESULT OK port=5002 bytes=67108864 md5=a0 secs=256.68
";

    fn hostile_checks(log: &str) -> Vec<(String, bool)> {
        let m = manifest();
        let lines = crate::qemu::parse_log(log);
        let input = Input {
            manifest: &m,
            lines: &lines,
            ending: &Ending::DoneMarker,
            image_sizes: vec![],
        };
        let mut r = Report::default();
        hostile(&mut r, &input);
        r.checks.into_iter().map(|c| (c.name, c.ok)).collect()
    }

    fn failed(log: &str) -> Vec<String> {
        hostile_checks(log)
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn hostile_passing() {
        assert_eq!(hostile_checks(GOOD).len(), 3);
        assert!(failed(GOOD).is_empty(), "{:?}", failed(GOOD));
    }

    #[test]
    fn hostile_wrong_reason_or_missing_disconnect() {
        // The logged req_prod must be the one the hostile domain wrote.
        let log = GOOD.replace("RequestProdOverflow { req_prod: 1000 }", "NoSlot");
        assert_eq!(failed(&log), vec!["hostile-disconnected"]);
        let log: String = GOOD
            .lines()
            .filter(|l| !l.contains("TooManySlots"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(failed(&log), vec!["hostile-disconnected"]);
        // A guest's vif closed for a protocol error is not the hostile's.
        let log = GOOD.replace(
            "backend/vif/4/0: tx ring: TooManySlots",
            "backend/vif/3/0: x",
        );
        assert_eq!(failed(&log), vec!["hostile-disconnected"]);
    }

    #[test]
    fn hostile_failed_case_or_outside_transfers() {
        let log = GOOD
            .replace("rx 0xfffe:60 ok", "rx 0xfffe:-1 FAIL (expected status 60)")
            .replace("16 passed, 0 failed", "15 passed, 1 failed");
        assert_eq!(failed(&log), vec!["hostile-cases"]);
        let log = GOOD.replace("secs=110.91", "secs=10.91");
        assert_eq!(failed(&log), vec!["hostile-during-transfers"]);
    }
}
