//! Checks for the `blkdisk` scenario: the storage domain drives the
//! virtio-blk disk passed through to it (see src/passthrough.rs), and the
//! disk image on the host shows what it wrote.

use super::{Check, Input, Report};
use crate::passthrough;
use regex::Regex;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex")
}

/// The domU that owns the disk and the sector it writes.
const DOMU: &str = "storage";
const TEST_SECTOR: u64 = 8;

pub fn checks(input: &Input) -> Report {
    let mut r = Report::default();
    let probed = input.find(&re(
        r"storage-domain: virtio-mmio (0x[0-9a-f]+) Modern Block intid Some\((\d+)\)",
    ));
    r.checks.push(Check::new(
        "device-probed",
        probed.is_some(),
        probed
            .as_ref()
            .map_or("no `virtio-mmio ... Modern Block` line".into(), |(t, c)| {
                format!("{} intid {} at +{t:.3} s", &c[1], &c[2])
            }),
    ));
    let window = input.find(&re(
        r"storage-domain: dma window guest (0x[0-9a-f]+) -> device (0x[0-9a-f]+)",
    ));
    r.checks.push(Check::new(
        "dma-window-calibrated",
        window.as_ref().is_some_and(|(_, c)| &c[2] != "0x0"),
        window
            .as_ref()
            .map_or("no dma window line".into(), |(_, c)| {
                format!("guest {} -> device {}", &c[1], &c[2])
            }),
    ));
    let verified = input.find(&re(
        r"storage-domain: dma window verified by xtask \(go signal after (\d+) ms\)",
    ));
    r.checks.push(Check::new(
        "dma-window-verified-before-dma",
        verified.is_some(),
        verified
            .as_ref()
            .map_or("the domain never got xtask's go signal".into(), |(t, c)| {
                format!("go signal after {} ms, at +{t:.3} s", &c[1])
            }),
    ));
    // The id the domain read from sector 0 must be the one xtask wrote
    // into this run's disk image.
    let root = crate::util::Paths::discover().ok();
    let disk = root
        .as_ref()
        .map(|p| passthrough::disk_path(p, &input.manifest.name, DOMU, 0));
    let sector0 = disk
        .as_ref()
        .and_then(|d| passthrough::read_sector(d, 0).ok());
    let want_id = sector0.as_ref().and_then(|s| {
        let rest = s
            .strip_prefix(passthrough::SIGNATURE)?
            .strip_prefix(b"id=")?;
        Some(String::from_utf8_lossy(rest.get(..16)?).into_owned())
    });
    let guard = input.find(&re(
        r"storage-domain: virtio-blk capacity=(\d+) sectors, sector0 signature ok id=([0-9a-f]{16})",
    ));
    r.checks.push(Check::new(
        "guard-check",
        matches!((&guard, &want_id), (Some((_, c)), Some(w)) if &c[2] == w),
        match (&guard, &want_id) {
            (Some((t, c)), Some(w)) => format!(
                "capacity {} sectors, id {} (disk image has {w}) at +{t:.3} s",
                &c[1], &c[2]
            ),
            (None, _) => "no `sector0 signature ok` line".into(),
            (_, None) => "disk image missing or without signature".into(),
        },
    ));
    let rw = input.find(&re(
        r"storage-domain: wrote sector 8 and read it back \((\d+) us\)",
    ));
    r.checks.push(Check::new(
        "write-read-back",
        rw.is_some(),
        rw.as_ref()
            .map_or("no write/read-back line".into(), |(_, c)| {
                format!("{} us", &c[1])
            }),
    ));
    let ok = input.find(&re(r"storage-domain: disk ok"));
    r.checks.push(Check::new(
        "disk-ok",
        ok.is_some(),
        ok.as_ref()
            .map_or("no `disk ok` line".into(), |(t, _)| format!("at +{t:.3} s")),
    ));
    let written = disk
        .as_ref()
        .and_then(|d| passthrough::read_sector(d, TEST_SECTOR).ok());
    let expect = want_id
        .as_ref()
        .map(|id| format!("STORAGE-DOMAIN WROTE THIS SECTOR id={id}\n"));
    r.checks.push(Check::new(
        "host-image-has-sector",
        matches!((&written, &expect), (Some(w), Some(e)) if w.starts_with(e.as_bytes())),
        match (&written, &disk) {
            (Some(w), Some(d)) => format!(
                "{} sector {TEST_SECTOR}: {:?}",
                d.display(),
                String::from_utf8_lossy(
                    &w[..w.iter().position(|&b| b == b'\n').unwrap_or(40).min(60)]
                )
            ),
            _ => "disk image unreadable".into(),
        },
    ));
    let state = input.find(&re(r"=== DOM0: domain 1 state '([^']*)'"));
    r.checks.push(Check::new(
        "domain-shut-down-cleanly",
        state
            .as_ref()
            .is_some_and(|(_, c)| c[1].contains('s') && !c[1].contains('c')),
        state
            .as_ref()
            .map_or("dom0 never reported the domain state".into(), |(_, c)| {
                format!("xl state '{}'", &c[1])
            }),
    ));
    if let (Some((t0, _)), Some((t1, _))) = (&probed, &ok) {
        r.timings
            .push(format!("storage-domain probe -> disk ok: {:.3} s", t1 - t0));
    }
    r
}
