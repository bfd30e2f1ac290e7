//! # storage-domain
//!
//! A dom0less service domain that owns a disk and serves the standard Xen
//! blkif protocol (blkback, `io/blkif.h`) to unmodified Linux xen-blkfront
//! guests, so that nothing of dom0 is in the data path and one guest can
//! never reach another guest's data.
//!
//! Design rules:
//! * The disk is a virtio-blk device (virtio-mmio, driven with the
//!   `virtio-drivers` crate) passed through to this domain. No DMA before
//!   xtask confirmed the DMA window (the beacon/go-signal handshake), and a
//!   guard check on sector 0: a wrong window fails loudly, never corrupts
//!   memory silently.
//! * Each vbd reaches only its extent of the disk: the extent table is this
//!   domain's own boot argument (`extents=name@start+sectors[:r],...`), the
//!   toolstack's `params` (xl `target=`) only names an extent, and every
//!   request's sector range is checked against the extent's size.
//! * Everything a frontend writes (ring indices, request entries, indirect
//!   segment pages) is copied once, then validated by `xen_proto::blkif`;
//!   a bad request gets an error response, a frontend that breaks the ring
//!   is disconnected with the reason logged. Guest data moves by grant copy
//!   (guest pages are never mapped).
//! * Up to 16 requests (about 1 MiB of data) are on the disk at once;
//!   each is answered, with its id, as the device completes it. A flush
//!   or discard waits until nothing is in flight, and a flush is answered
//!   only after the device's flush completed.
//! * While requests are in flight the domain first polls the disk's used
//!   ring a counted number of times (never reading the clock meanwhile:
//!   under qemu TCG that takes qemu's global lock); a disk that stays
//!   silent longer wakes it with its interrupt (the `interrupts` of the
//!   passed-through node, enabled with `Events::enable_device_interrupt`),
//!   and until then the domain sleeps in WFI.
//!
//! Boot arguments: `blkback=1` serves (otherwise the domain only runs its
//! disk self test), `extents=...`, `capture=N` (print the first N requests
//! of each kind per vbd as hex for the fuzz corpus), `xscapture=N`
//! (xen-rt: xenstore reply bytes as hex). See [`blkback`] for the protocol
//! side and README.md for attaching vbds with `xl block-attach`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod blkback;

use alloc::format;
use core::time::Duration;
use xen_rt::mem::virtio_hal::{XenHal, mmio_transport};
use xen_rt::time::Instant;
use xen_rt::virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use xen_rt::virtio_drivers::transport::Transport;
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

/// What xtask writes at the start of sector 0 of a passthrough disk,
/// followed by `id=<16 hex digits>\n`.
const SIGNATURE: &[u8] = b"XEN-RT PASSTHROUGH DISK v1 ";
/// Polls of the disk's used ring per round of the data path while
/// requests are in flight.
const DISK_POLL_SPINS: u32 = 4096;
/// Rounds of the data path between visits to xenstore while the disk
/// keeps completing requests.
const DATA_ROUNDS: u32 = 256;
/// Rounds in a row without a completion after which the loop sleeps until
/// the disk's interrupt.
const IDLE_ROUNDS: u32 = 16;
/// The event loop's tick with nothing in flight on the disk.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// The tick while requests are in flight and the disk's interrupt wakes
/// the loop: only a safety net against a lost interrupt.
const IRQ_SAFETY_TICK: Duration = Duration::from_millis(100);
/// The tick while requests are in flight on a disk without an interrupt.
const NO_IRQ_POLL: Duration = Duration::from_millis(1);
/// A disk that completes nothing for this long while requests are in
/// flight is reported (once per stall).
const STALL_REPORT: Duration = Duration::from_secs(2);
/// How long to wait for xtask's go signal.
const GO_TIMEOUT: Duration = Duration::from_secs(60);

/// virtio-blk `capacity` (sectors) read from the config space over MMIO.
fn config_capacity(t: &impl Transport) -> Option<u64> {
    let lo: u32 = t.read_config_space(0).ok()?;
    let hi: u32 = t.read_config_space(4).ok()?;
    Some(u64::from(lo) | (u64::from(hi) << 32))
}

/// The sector the write/read-back test uses.
const TEST_SECTOR: usize = 8;

fn main(rt: &mut Runtime) {
    let (major, minor) = rt.xen_version();
    println!(
        "storage-domain: xen-rt {} on Xen {}.{}",
        xen_rt::VERSION,
        major,
        minor
    );
    let Some(window) = rt.dt.dma_window else {
        println!("storage-domain: no passthrough disk; nothing to serve, shutting down");
        return;
    };
    let Some((index, dev)) = rt
        .dt
        .passthrough
        .iter()
        .enumerate()
        .find(|(_, d)| d.virtio_mmio)
    else {
        panic!("storage-domain: /passthrough has no virtio,mmio device");
    };
    let dev = *dev;
    let transport = match mmio_transport(index, &dev) {
        Some(Ok(t)) => t,
        Some(Err(e)) => panic!("storage-domain: virtio-mmio at {:#x}: {e}", dev.reg.0),
        None => panic!(
            "storage-domain: virtio-mmio at {:#x} unavailable",
            dev.reg.0
        ),
    };
    println!(
        "storage-domain: virtio-mmio {:#x} {:?} {:?} intid {:?}",
        dev.reg.0,
        transport.version(),
        transport.device_type(),
        dev.intid,
    );
    println!(
        "storage-domain: dma window guest {:#x} -> device {:#x} size {:#x}",
        window.guest, window.device, window.size
    );
    // No DMA before xtask confirmed, through qemu's monitor, that the
    // window points at our RAM: it looks for the beacon at the host
    // address the window gives for our top page, then grows the disk by
    // one page as the go signal (a config-space change, read over MMIO).
    let before = match config_capacity(&transport) {
        Some(c) => c,
        None => panic!("storage-domain: cannot read the virtio-blk config space"),
    };
    let nonce = xen_rt::mem::show_dma_beacon(rt.dt.ram);
    println!("storage-domain: dma beacon {nonce:016x} shown, waiting for the go signal");
    let t_wait = Instant::now();
    let deadline = t_wait.after(GO_TIMEOUT);
    while config_capacity(&transport) == Some(before) {
        if Instant::now() >= deadline {
            panic!(
                "storage-domain: no go signal within {} s: DMA window unverified, refusing to use the disk",
                GO_TIMEOUT.as_secs()
            );
        }
        rt.events.sleep_for(Duration::from_millis(20));
    }
    xen_rt::mem::clear_dma_beacon(rt.dt.ram);
    println!(
        "storage-domain: dma window verified by xtask (go signal after {} ms)",
        t_wait.elapsed().as_millis()
    );
    let t0 = Instant::now();
    let mut blk = match VirtIOBlk::<XenHal, _>::new(transport) {
        Ok(b) => b,
        Err(e) => panic!("storage-domain: virtio-blk init failed: {e}"),
    };
    let capacity = blk.capacity();
    let mut sector = [0u8; SECTOR_SIZE];
    if let Err(e) = blk.read_blocks(0, &mut sector) {
        panic!("storage-domain: reading sector 0 failed: {e}");
    }
    let t_read = t0.elapsed();
    // Guard check: the first DMA must bring back what xtask wrote. Any
    // other content means the DMA window is wrong: refuse to go on.
    let id = sector
        .strip_prefix(SIGNATURE)
        .and_then(|rest| rest.strip_prefix(b"id="))
        .and_then(|rest| rest.get(..16))
        .and_then(|id| core::str::from_utf8(id).ok())
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(id) = id else {
        panic!(
            "storage-domain: GUARD CHECK FAILED: sector 0 starts {:02x?}, not the xtask signature; wrong dma-ranges? refusing to use the disk",
            &sector[..16]
        );
    };
    let mut id_buf = [0u8; 16];
    id_buf.copy_from_slice(id.as_bytes());
    println!(
        "storage-domain: virtio-blk capacity={capacity} sectors, sector0 signature ok id={id} (init+read {} us)",
        t_read.as_micros()
    );

    let mut out = [0u8; SECTOR_SIZE];
    let text = b"STORAGE-DOMAIN WROTE THIS SECTOR id=";
    out[..text.len()].copy_from_slice(text);
    out[text.len()..text.len() + 16].copy_from_slice(&id_buf);
    out[text.len() + 16] = b'\n';
    for (i, b) in out[64..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7) ^ id_buf[i % 16];
    }
    let t1 = Instant::now();
    if let Err(e) = blk.write_blocks(TEST_SECTOR, &out) {
        panic!("storage-domain: writing sector {TEST_SECTOR} failed: {e}");
    }
    if let Err(e) = blk.flush() {
        panic!("storage-domain: flush failed: {e}");
    }
    let mut back = [0u8; SECTOR_SIZE];
    if let Err(e) = blk.read_blocks(TEST_SECTOR, &mut back) {
        panic!("storage-domain: reading sector {TEST_SECTOR} back failed: {e}");
    }
    if back != out {
        panic!("storage-domain: sector {TEST_SECTOR} read back differs from what was written");
    }
    println!(
        "storage-domain: wrote sector {TEST_SECTOR} and read it back ({} us)",
        t1.elapsed().as_micros()
    );
    println!("storage-domain: disk ok");
    if rt.dt.bootarg("blkback") == Some("1") {
        // The disk's completions wake the event loop through its shared
        // interrupt; without one (or if Xen refuses it) the loop falls
        // back to looking at the used ring every NO_IRQ_POLL.
        let irq = match dev.intid.map(|i| rt.events.enable_device_interrupt(i)) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                println!(
                    "storage-domain: disk interrupt {:?} refused: {e:?}; polling",
                    dev.intid
                );
                false
            }
            None => {
                println!("storage-domain: the disk has no interrupt in the device tree; polling");
                false
            }
        };
        serve_blkback(rt, blkback::QueuedDisk::new(blk), capacity, irq);
    }
}

/// The blkback event loop: xenstore watch events drive the xenbus state
/// machine; ring events (and a periodic tick) drive the data path.
fn serve_blkback(rt: &mut Runtime, mut disk: blkback::QueuedDisk, capacity: u64, irq: bool) {
    use xen_rt::proto::xenbus::ConnectPolicy;
    use xen_rt::xenbus::BackendBus;
    use xen_rt::xenstore::XsOpError;

    let Some(self_id) = rt.domid() else {
        println!("storage-domain: blkback: no domid in xenstore; not serving");
        return;
    };
    let Some(xs_port) = rt.store_port() else {
        println!("storage-domain: blkback: no xenstore connection; not serving");
        return;
    };
    let mut bus = match rt.store() {
        Ok(mut store) => {
            match BackendBus::new(&mut store, self_id, "vbd", ConnectPolicy::OnInitialised) {
                Ok(b) => b,
                Err(e) => {
                    println!("storage-domain: blkback: watching backend/vbd failed: {e:?}");
                    return;
                }
            }
        }
        Err(e) => {
            println!("storage-domain: blkback: xenstore: {e:?}");
            return;
        }
    };
    println!(
        "storage-domain: blkback serving as dom{} ({} sectors) at +{} ms",
        self_id.0,
        capacity,
        rt.booted_at().elapsed().as_millis()
    );
    // The extent table: what each vbd may reach. Without `extents=`, one
    // extent `disk` covers everything after the reserved sectors.
    let default_extent = format!(
        "disk@{}+{}",
        blkback::RESERVED_SECTORS,
        capacity.saturating_sub(blkback::RESERVED_SECTORS)
    );
    let arg = rt.dt.bootarg("extents").unwrap_or(&default_extent);
    let (extents, rejected) = blkback::parse_extents(arg, capacity);
    for why in &rejected {
        println!("storage-domain: blkback: extent refused: {why}");
    }
    for e in &extents {
        println!(
            "storage-domain: blkback: extent {} sectors {}..{} ({} MiB){}",
            e.name,
            e.start,
            e.start + e.sectors,
            e.sectors / 2048,
            if e.read_only { " read-only" } else { "" }
        );
    }
    let capture = rt
        .dt
        .bootarg("capture")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut state = blkback::Blkback::new(extents, capture);
    let mut ports: alloc::vec::Vec<xen_rt::hypercall::EvtchnPort> = alloc::vec::Vec::new();
    let mut last_progress = Instant::now();
    let mut stall_reported = false;
    // Why the loop woke while requests were in flight: (disk interrupt,
    // ring or xenstore event, safety tick), reported every 10 s.
    let mut wakes = (0u64, 0u64, 0u64);
    let mut wakes_shown = wakes;
    let mut next_wake_report = Instant::now();
    loop {
        let mut more;
        let busy;
        {
            let Ok((mut store, grants, foreign)) = rt.store_and_grants() else {
                println!("storage-domain: blkback: xenstore lost; stopping");
                return;
            };
            loop {
                match store.next_watch_event(Duration::ZERO) {
                    Ok((path, token)) => {
                        if bus.owns(&path, &token) {
                            let mut drv = blkback::Driver {
                                grants: &mut *grants,
                                foreign: &mut *foreign,
                                state: &mut state,
                            };
                            bus.handle_event(&mut store, &mut drv, &path, &token);
                        }
                    }
                    Err(XsOpError::TimedOut) => break,
                    Err(e) => {
                        println!("storage-domain: blkback: watch: {e:?}");
                        break;
                    }
                }
            }
            // Acknowledge the disk's interrupt before looking at its used
            // ring: a completion after the look raises it again.
            disk.ack_interrupt();
            // A stall is counted from the pass that gave an idle disk work,
            // not from before the sleep that preceded it.
            let was_idle = disk.in_flight() == 0;
            let mut pass = blkback::serve_all(&mut state, &mut disk);
            let mut completed = pass.completed;
            more = pass.more;
            // While the disk works, first stay on the data path: poll the
            // used ring, then the rings, a counted number of times (most
            // requests complete within a few polls, and under qemu TCG an
            // interrupt's round trip costs far more). No clock reads in
            // here: under TCG each read of the system counter takes qemu's
            // global lock, which the device emulation needs. A disk that
            // stays silent for IDLE_ROUNDS rounds (a flush, a slow host)
            // is left to wake us with its interrupt.
            let mut rounds = 0;
            let mut idle_rounds = 0;
            while (disk.in_flight() > 0 || pass.more)
                && pass.failed.is_empty()
                && rounds < DATA_ROUNDS
                && idle_rounds < IDLE_ROUNDS
            {
                for port in pass.notify.drain(..) {
                    let _ = store.events().notify(port);
                }
                for _ in 0..DISK_POLL_SPINS {
                    if disk.has_completion() {
                        break;
                    }
                    core::hint::spin_loop();
                }
                disk.ack_interrupt();
                pass = blkback::serve_all(&mut state, &mut disk);
                completed += pass.completed;
                more = pass.more;
                rounds += 1;
                idle_rounds = if pass.completed > 0 {
                    0
                } else {
                    idle_rounds + 1
                };
            }
            busy = idle_rounds < IDLE_ROUNDS && disk.in_flight() > 0;
            if completed > 0 || was_idle || disk.in_flight() == 0 {
                last_progress = Instant::now();
                stall_reported = false;
            } else if !stall_reported && last_progress.elapsed() > STALL_REPORT {
                println!(
                    "storage-domain: disk has completed nothing for {} ms with {} requests in flight",
                    last_progress.elapsed().as_millis(),
                    disk.in_flight()
                );
                stall_reported = true;
            }
            for port in pass.notify {
                let _ = store.events().notify(port);
            }
            for (fe, devid, reason) in pass.failed {
                let mut drv = blkback::Driver {
                    grants: &mut *grants,
                    foreign: &mut *foreign,
                    state: &mut state,
                };
                bus.fail_device(&mut store, &mut drv, fe, devid, &reason);
            }
            bus.tick(&mut store);
            for p in state.to_close.drain(..) {
                let _ = store.events().close(p);
            }
        }
        if more || busy {
            continue;
        }
        // Sleep until a ring or xenstore event, the disk's interrupt, or
        // the next tick. While requests are in flight the tick is only a
        // safety net against a lost interrupt (or the whole mechanism
        // when the disk has none).
        ports.clear();
        ports.push(xs_port);
        ports.extend(state.conns.iter().map(|c| c.port));
        let tick = match (disk.in_flight() > 0, irq) {
            (false, _) => IDLE_TICK,
            (true, true) => IRQ_SAFETY_TICK,
            (true, false) => NO_IRQ_POLL,
        };
        let woke = rt
            .events
            .wait_any_or_device(&ports, Some(Instant::now().after(tick)));
        if disk.in_flight() > 0 {
            match woke {
                Ok(None) => wakes.0 += 1,
                Ok(Some(_)) => wakes.1 += 1,
                Err(_) => wakes.2 += 1,
            }
        }
        if wakes != wakes_shown && Instant::now() >= next_wake_report {
            println!(
                "storage-domain: wakes with requests in flight: disk {}, event {}, tick {} (disk irqs {})",
                wakes.0,
                wakes.1,
                wakes.2,
                rt.events.device_interrupts()
            );
            wakes_shown = wakes;
            next_wake_report = Instant::now().after(Duration::from_secs(10));
        }
    }
}
