//! Checks for the `blk` scenario (tests/scenarios/blk.toml): storage-domain
//! serving blkback to two Linux guests and a hostile Rust frontend, over
//! two boots of the whole system on the same passthrough disk.
//!
//! The guests print one `=== GUEST(x) <WHAT> RESULT OK|FAIL ...` line per
//! test; the storage domain prints a per-connection summary when a vbd
//! disconnects; the hostile domain prints `blk-hostile: RESULT ...`. After
//! the run, the disk image itself is scanned: each guest's isolation marker
//! must lie inside that guest's extent only.

use super::{Check, Input, Report};
use crate::passthrough;
use regex::Regex;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// Extents of tests/scenarios/blk.toml (start sector, sectors).
const EXTENT_A: (u64, u64) = (2048, 163_840);
const EXTENT_B: (u64, u64) = (165_888, 163_840);
const MARK: &[u8] = b"XENRT-ISOLATION-MARK guest=";
const CYCLES: usize = 10;
/// Hostile cases the test domain runs (it prints one line per case).
const HOSTILE_MIN_CASES: usize = 17;

/// Lines of boot `n` (1-based): split at the runner's `### XTASK BOOT n`.
fn boot_lines<'a>(input: &'a Input, n: u32) -> &'a [(f64, String)] {
    let marker = |k: u32| {
        input
            .lines
            .iter()
            .position(|(_, l)| l == &format!("### XTASK BOOT {k}"))
    };
    let start = if n == 1 { Some(0) } else { marker(n) };
    let Some(start) = start else {
        return &[];
    };
    let end = marker(n + 1).unwrap_or(input.lines.len());
    &input.lines[start..end]
}

fn find<'a>(lines: &'a [(f64, String)], re: &Regex) -> Option<(f64, regex::Captures<'a>)> {
    lines
        .iter()
        .find_map(|(t, l)| re.captures(l).map(|c| (*t, c)))
}

/// A `RESULT OK|FAIL` line of a guest as a check.
fn result(r: &mut Report, lines: &[(f64, String)], name: &str, guest: &str, what: &str) {
    let line = find(
        lines,
        &re(&format!(
            r"=== GUEST\({guest}\) {what} RESULT (OK|FAIL)(.*)"
        )),
    );
    r.checks.push(Check::new(
        name,
        line.as_ref().is_some_and(|(_, c)| &c[1] == "OK"),
        line.as_ref().map_or(
            format!("guest-{guest} never printed its {what} result"),
            |(t, c)| format!("{}{} at +{t:.1} s", &c[1], c[2].trim_end()),
        ),
    ));
}

/// The storage domain's summary for a vbd, e.g. frontend 2 devid 51728:
/// (requests, read, write, indirect, flush, discard, errors).
fn summaries(lines: &[(f64, String)], fe: u32, devid: u32) -> Vec<[u64; 7]> {
    let re = re(&format!(
        r"blkback: vbd {fe}/{devid} closed: (\d+) req \((\d+) r, (\d+) w, (\d+) ind, (\d+) fl, (\d+) dis\), (\d+) err"
    ));
    lines
        .iter()
        .filter_map(|(_, l)| re.captures(l))
        .map(|c| {
            let mut v = [0u64; 7];
            for (i, x) in v.iter_mut().enumerate() {
                *x = c[i + 1].parse().unwrap_or(0);
            }
            v
        })
        .collect()
}

/// Sector numbers at which `needle` starts in the disk image.
fn occurrences(disk: &[u8], needle: &[u8]) -> Vec<u64> {
    disk.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i as u64 / 512)
        .collect()
}

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();
    let b1 = boot_lines(input, 1);
    let b2 = boot_lines(input, 2);

    let serving = find(
        b1,
        &re(r"storage-domain: blkback serving as dom1 \((\d+) sectors\) at \+(\d+) ms"),
    );
    let extents = b1
        .iter()
        .filter(|(_, l)| l.contains("storage-domain: blkback: extent ") && !l.contains("refused"))
        .count();
    r.checks.push(Check::new(
        "storage-serving",
        serving.is_some() && extents == 4,
        serving
            .as_ref()
            .map_or("no `blkback serving` line".into(), |(t, c)| {
                format!(
                    "{} sectors, {extents} extents, serving {} ms after domain start (+{t:.1} s)",
                    &c[1], &c[2]
                )
            }),
    ));

    // Every attach went through (libxl's 10 s InitWait window included).
    let attach_ok = |lines: &[(f64, String)]| {
        lines
            .iter()
            .filter(|(_, l)| l.contains("=== DOM0: blk attach") && l.contains(" ok (try"))
            .count()
    };
    let attach_failed = input
        .lines
        .iter()
        .filter(|(_, l)| l.contains("=== DOM0: blk attach") && l.contains("FAILED"))
        .count();
    let (n1, n2) = (attach_ok(b1), attach_ok(b2));
    r.checks.push(Check::new(
        "vbds-connected",
        n1 == 5 + CYCLES && n2 == 2 && attach_failed == 0,
        format!(
            "boot 1: {n1} attaches ok (want {}), boot 2: {n2} (want 2), {attach_failed} failed",
            5 + CYCLES
        ),
    ));
    let connects = input
        .lines
        .iter()
        .filter(|(_, l)| l.contains("blkback: connect /local/domain/1/backend/vbd/"))
        .count();
    r.timings
        .push(format!("blkback connects over both boots: {connects}"));

    result(&mut r, b1, "odirect-64mib", "a", "ODIRECT");
    result(&mut r, b1, "filesystem", "a", "FS");

    // Indirect requests: guest-a's xvdb saw some, and blkfront's limit
    // shows they were negotiated (> 44 KiB per request).
    let a_sum = summaries(b1, 2, 51728);
    let hw = find(b1, &re(r"=== GUEST\(a\) xvdb .* max_hw_sectors_kb=(\d+)"));
    let hw_kb: u64 = hw
        .as_ref()
        .and_then(|(_, c)| c[1].parse().ok())
        .unwrap_or(0);
    let indirect = a_sum.first().map_or(0, |s| s[3]);
    r.checks.push(Check::new(
        "indirect-requests",
        indirect > 0 && hw_kb > 44 && a_sum.first().is_some_and(|s| s[6] == 0),
        match a_sum.first() {
            Some(s) => format!(
                "guest-a xvdb: {} requests, {} indirect, {} errors; max_hw_sectors_kb={hw_kb}",
                s[0], s[3], s[6]
            ),
            None => "no disconnect summary for guest-a's xvdb".into(),
        },
    ));

    result(&mut r, b1, "discard", "a", "DISCARD");
    let discards = a_sum.first().map_or(0, |s| s[5]);
    r.checks.push(Check::new(
        "discard-served",
        discards > 0,
        format!("{discards} discard requests on guest-a's xvdb"),
    ));

    // Linux honours the read-only flag itself (a write never reaches the
    // backend), so the backend's own refusal is shown by the hostile
    // frontend writing to its read-only vbd.
    result(&mut r, b1, "read-only", "a", "RO");
    let ro_rejected = b1
        .iter()
        .any(|(_, l)| l.contains("blkback: dom4 request") && l.contains("rejected: ReadOnly"));
    let ro_case = find(
        b1,
        &re(r"blk-hostile: case read-only-write status (-?\d+) ok"),
    );
    r.checks.push(Check::new(
        "read-only-enforced-by-backend",
        ro_rejected && ro_case.is_some(),
        format!(
            "backend log `rejected: ReadOnly` for dom4: {}; hostile case read-only-write: {}",
            if ro_rejected { "yes" } else { "no" },
            ro_case
                .as_ref()
                .map_or("not ok".to_string(), |(_, c)| format!("status {}", &c[1]))
        ),
    ));

    // guest-b asks for a 4-page ring (xen_blkfront.max_ring_page_order=2).
    let multi = find(
        b1,
        &re(
            r"blkback: connect /local/domain/1/backend/vbd/3/51728: ring-page-order (\d+) \((\d+) entries\)",
        ),
    );
    r.checks.push(Check::new(
        "multi-page-ring",
        multi
            .as_ref()
            .is_some_and(|(_, c)| &c[1] == "2" && &c[2] == "128"),
        multi
            .as_ref()
            .map_or("no connect line for guest-b's xvdb".into(), |(_, c)| {
                format!("guest-b: ring-page-order {} ({} entries)", &c[1], &c[2])
            }),
    ));

    result(&mut r, b1, "persistence-written", "b", "PERSIST-WRITE");
    result(&mut r, b1, "reattach-10-cycles", "b", "CYCLES");
    let b_sum = summaries(b1, 3, 51728);
    let b_errors: u64 = b_sum.iter().map(|s| s[6]).sum();
    r.checks.push(Check::new(
        "reattach-backend-clean",
        b_sum.len() == CYCLES + 1 && b_errors == 0,
        format!(
            "{} connections of guest-b's xvdb summarized (want {}), {b_errors} errors",
            b_sum.len(),
            CYCLES + 1
        ),
    ));

    // The hostile frontend: every case answered as expected, then
    // disconnected for breaking the ring, with a logged reason.
    let hostile = find(
        b1,
        &re(r"blk-hostile: RESULT (\d+) passed, (\d+) failed(.*)"),
    );
    let cases = b1
        .iter()
        .filter(|(_, l)| l.contains("blk-hostile: case "))
        .count();
    let failed_cases: Vec<&str> = b1
        .iter()
        .filter(|(_, l)| l.contains("blk-hostile: case ") && l.contains("FAIL"))
        .map(|(_, l)| l.as_str())
        .collect();
    r.checks.push(Check::new(
        "hostile-cases",
        hostile.as_ref().is_some_and(|(_, c)| {
            &c[2] == "0" && c[1].parse::<usize>().unwrap_or(0) >= HOSTILE_MIN_CASES
        }) && cases >= HOSTILE_MIN_CASES,
        match &hostile {
            Some((_, c)) => format!(
                "{} passed, {} failed{}{}",
                &c[1],
                &c[2],
                c[3].trim_end(),
                failed_cases
                    .first()
                    .map_or(String::new(), |l| format!("; first failure: {l}"))
            ),
            None => "the hostile domain never printed its result".into(),
        },
    ));
    let fatal = find(
        b1,
        &re(r"xenbus: closing /local/domain/1/backend/vbd/4/51712: (.*)"),
    );
    r.checks.push(Check::new(
        "hostile-disconnected",
        fatal.is_some(),
        fatal.as_ref().map_or(
            "no logged disconnect of the hostile frontend".into(),
            |(t, c)| format!("{} at +{t:.1} s", &c[1]),
        ),
    ));
    let honest_errors: u64 = summaries(b1, 2, 51728)
        .iter()
        .chain(&b_sum)
        .map(|s| s[6])
        .sum();
    r.checks.push(Check::new(
        "honest-io-intact",
        honest_errors == 0 && !a_sum.is_empty() && !b_sum.is_empty(),
        format!(
            "{honest_errors} errors on the honest read-write vbds while the hostile frontend ran"
        ),
    ));

    // Boot 2: data flushed in boot 1 is there; each device holds only its
    // own guest's marker.
    result(&mut r, b2, "persistence-a", "a", "PERSIST");
    result(&mut r, b2, "persistence-b", "b", "PERSIST");
    result(&mut r, b2, "isolation-a", "a", "ISOLATION");
    result(&mut r, b2, "isolation-b", "b", "ISOLATION");

    let disk = crate::util::Paths::discover()
        .ok()
        .map(|p| passthrough::disk_path(&p, &input.manifest.name, "storage", 0))
        .and_then(|d| std::fs::read(d).ok());
    let inside = |s: &u64, (start, len): (u64, u64)| *s >= start && *s < start + len;
    let (ok, detail) = match &disk {
        Some(d) => {
            let a: Vec<u64> = occurrences(d, &[MARK, b"a"].concat());
            let b: Vec<u64> = occurrences(d, &[MARK, b"b"].concat());
            let ok = !a.is_empty()
                && !b.is_empty()
                && a.iter().all(|s| inside(s, EXTENT_A))
                && b.iter().all(|s| inside(s, EXTENT_B));
            (
                ok,
                format!("marker a at sectors {a:?}, marker b at sectors {b:?}"),
            )
        }
        None => (false, "disk image unreadable".into()),
    };
    r.checks
        .push(Check::new("host-image-extents-respected", ok, detail));

    for (what, re_s) in [(
        "guest-a 64 MiB O_DIRECT",
        r"=== GUEST\(a\) ODIRECT RESULT OK .*write_s=([\d.]+)\.\.([\d.]+) read_s=([\d.]+)\.\.([\d.]+)",
    )] {
        if let Some((_, c)) = find(b1, &re(re_s)) {
            let f = |i: usize| c[i].parse::<f64>().unwrap_or(0.0);
            let (w, rd) = (f(2) - f(1), f(4) - f(3));
            r.timings.push(format!(
                "{what}: write {w:.2} s ({:.1} MiB/s), read {rd:.2} s ({:.1} MiB/s)",
                64.0 / w.max(1e-3),
                64.0 / rd.max(1e-3)
            ));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_positions() {
        let mut d = vec![0u8; 4096];
        d[1024..1024 + MARK.len()].copy_from_slice(MARK);
        d[1024 + MARK.len()] = b'a';
        assert_eq!(occurrences(&d, &[MARK, b"a"].concat()), vec![2]);
        assert!(occurrences(&d, &[MARK, b"b"].concat()).is_empty());
    }
}
