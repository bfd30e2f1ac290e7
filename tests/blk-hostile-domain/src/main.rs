//! # blk-hostile-domain: a hostile Xen blkif frontend
//!
//! What it is for: proving that our blkback (storage-domain) survives a
//! frontend that breaks the rules of `io/blkif.h`. It is booted as a
//! dom0less domU next to the storage domain; dom0 attaches a vbd to it
//! with `xl block-attach <me> 'format=raw,vdev=xvda,access=rw,backend=1,...'`.
//! The domain then plays blkfront (the handshake of Linux xen-blkfront),
//! sends one malformed request after the other, and reports what the
//! backend answered. The backend must answer each one with an error
//! status, keep serving well-formed requests, and disconnect (backend
//! state Closing or Closed) a frontend that corrupts the ring indices.
//!
//! Design: one request in flight at a time; every wait is bounded (120 s
//! for the attach and each handshake step, 5 s per response, 10 s for
//! the disconnect), nothing panics, and `main` returns when done (the
//! domain then powers off). Requests are encoded with `xen_proto::blkif`
//! (read/write) or by hand below (indirect, which the backend may not
//! support yet); the ring header is `io/ring.h`'s `struct blkif_sring`.
//!
//! Handshake: wait for `/local/domain/<me>/device/vbd/<devid>/backend`
//! (the first devid listed), read `backend-id`, wait for backend `state`
//! 2 (InitWait), read `sectors` and `feature-max-indirect-segments`
//! (absent = 0), grant a one-page ring (read-write), allocate an unbound
//! event channel for the backend, write `ring-ref`, `event-channel` and
//! `protocol` = `arm-abi` in a transaction, then `state` 3 (Initialised);
//! wait for backend state 4 (Connected), then write `state` 4.
//!
//! Boot argument: `sanity-sector=N` moves the sanity write and reads
//! from sector 0 (the default) to sector `N`. Sector 0 of a passthrough
//! disk holds xtask's signature, which storage-domain checks at boot: a
//! scenario that boots again on the same disk must move them.
//!
//! ## Log contract
//!
//! Every line this domain prints itself starts with `blk-hostile: `
//! (xen-rt may add its own, e.g. about a grant it could not end). After
//! the handshake, exactly once:
//! ```text
//! blk-hostile: connected backend dom<id> sectors <n> max-indirect <m>
//! ```
//! then one line per case, in this order:
//! ```text
//! blk-hostile: case <name> status <status> ok
//! blk-hostile: case <name> status <status> FAIL (<why>)
//! ```
//! where `<status>` is the response's status as a decimal `i16`, or `none`
//! when there was no response (then `<why>` is `no response` for a
//! response missing after 30 s, or a ring protocol error). The cases and
//! the statuses that pass (0 = OKAY, -1 = ERROR, -2 = EOPNOTSUPP):
//!
//! | name | request | passes with |
//! |---|---|---|
//! | `sanity-write` | write 8 sectors at `sanity-sector` from page A (a pattern) | 0 |
//! | `sanity-read` | read them back into page B | 0 and B == A |
//! | `out-of-range` | read 8 sectors at `sectors - 4` | -1 |
//! | `sector-overflow` | read 8 sectors at `u64::MAX - 3` | -1 |
//! | `bad-gref` | read 1 sector into gref `0x7fff0000` | -1 |
//! | `too-many-segments` | read, `nr_segments` = 12 | -1 |
//! | `zero-segments` | read, `nr_segments` = 0 | -1 |
//! | `first-after-last` | segment `first_sect` 5, `last_sect` 2 | -1 |
//! | `last-sect-8` | segment `first_sect` 0, `last_sect` 8 | -1 |
//! | `unknown-op` | operation 200 | -1 or -2 |
//! | `indirect-too-many` | indirect read, `nr_segments` = max-indirect + 1 (4097 if 0) | -1 or -2 |
//! | `indirect-garbage-page` | indirect read of 16 segments from a page of random bytes | -1 (-2 if max-indirect is 0) |
//! | `indirect-bad-gref` | indirect read of 4 segments, `indirect_grefs[0]` = `0x7fff0001` | -1 (-2 if max-indirect is 0) |
//! | `sanity-after` | `sanity-read` again | 0 and B == A |
//!
//! Last, the ring indices are corrupted (`req_prod` = `rsp_prod + 64`, past
//! the 32-entry ring, without entries) and the backend must disconnect
//! within 10 s:
//! ```text
//! blk-hostile: case ring-overflow backend state <n> after <ms> ms ok
//! blk-hostile: case ring-overflow backend state <n> after <ms> ms FAIL (<why>)
//! ```
//! (`<n>` is the last backend state read, or `none`). Then the frontend
//! writes `state` 6 and the domain ends with
//! ```text
//! blk-hostile: RESULT <p> passed, <f> failed
//! ```
//! over the 15 cases. A setup failure (no vbd, handshake, grants) ends it at once with
//! ```text
//! blk-hostile: RESULT 0 passed, 1 failed (<reason>)
//! ```
//! Other `blk-hostile: ` lines (progress notes) may appear in between.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use frontend_kit::ring::{self as front, RingNames};
use frontend_kit::store::{
    STATE_CLOSED, STATE_CLOSING, STATE_CONNECTED, STATE_INITIALISED, STATE_INITWAIT, my_domid,
    read_backend_id, read_opt, read_state, set_state, show_state, wait_state_in, wait_until, watch,
};
use frontend_kit::{Tally, release, xs};
use xen_rt::events::Events;
use xen_rt::gnttab::{GrantTable, GrantedPage};
use xen_rt::hypercall::{DomId, EvtchnPort};
use xen_rt::mem::{OwnedPage, PAGE_SIZE, SharedPage};
use xen_rt::proto::blkif::{self, Segment, status};
use xen_rt::time::Instant;
use xen_rt::xenstore::{Store, XsOpError};
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

/// `BLKIF_OP_*` values this domain sends.
const OP_READ: u8 = 0;
const OP_WRITE: u8 = 1;
const OP_INDIRECT: u8 = 6;
/// An operation no version of blkif defines.
const OP_UNKNOWN: u8 = 200;

/// Grant references no domain has (far beyond any grant table's size).
const BAD_GREF: u32 = 0x7fff_0000;
const BAD_INDIRECT_GREF: u32 = 0x7fff_0001;

/// Waiting for dom0's `xl block-attach`, and for each handshake step.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(120);
/// Waiting for the response to one request. Generous: the storage domain
/// answers a flush only after the device's flush and serves nothing else
/// meanwhile; with the host's page cache busy, that fsync of the disk
/// image has taken 7 s under qemu.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for the backend to disconnect after the ring corruption.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Waiting for the backend to let go of the ring after we closed.
const UNMAP_GRACE: Duration = Duration::from_secs(2);

/// The start of every line this domain prints.
const TAG: &str = "blk-hostile";
const FE_TOKEN: &str = "blk-hostile-fe";
const BE_TOKEN: &str = "blk-hostile-be";

fn main(rt: &mut Runtime) {
    frontend_kit::banner(TAG, rt);
    let ro_devid = rt.dt.bootarg("ro-devid").map(String::from);
    let (fe, mut ring) = match connect(rt, Pick::Except(ro_devid.as_deref())) {
        Ok(c) => c,
        Err(why) => {
            println!("blk-hostile: RESULT 0 passed, 1 failed ({why})");
            return;
        }
    };
    let pages = match DataPages::new(&mut rt.grants, fe.backend) {
        Ok(p) => p,
        Err(why) => {
            println!("blk-hostile: RESULT 0 passed, 1 failed ({why})");
            release(TAG, &mut rt.grants, "ring", ring.page);
            return;
        }
    };
    println!(
        "blk-hostile: connected backend dom{} sectors {} max-indirect {}",
        fe.backend.0, fe.sectors, fe.max_indirect
    );
    let sanity_sector = match rt.dt.bootarg("sanity-sector").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            println!("blk-hostile: bad sanity-sector= boot argument; using 0");
            0
        }
    };
    let mut tally = Tally::new(TAG);
    run_cases(
        &mut rt.events,
        &fe,
        &mut ring,
        &pages,
        sanity_sector,
        &mut tally,
    );
    ring_overflow(rt, &fe, &ring, &mut tally);
    if let Ok(mut store) = rt.store() {
        if let Err(e) = set_state(&mut store, &fe.fe, STATE_CLOSED) {
            println!("blk-hostile: writing our state 6 failed: {e:?}");
        }
        await_unmap(&mut store, &fe);
        let _ = store.unwatch(&fe.vbd_dir, FE_TOKEN);
        let _ = store.unwatch(&format!("{}/state", fe.be), BE_TOKEN);
    }
    pages.release(&mut rt.grants);
    release(TAG, &mut rt.grants, "ring", ring.page);
    if let Some(devid) = ro_devid {
        read_only_device(rt, &devid, &mut tally);
    }
    tally.print_result();
}

/// Boot argument `ro-devid=N`: a second vbd, attached read-only. A write
/// must be refused by the backend itself (a frontend need not honour the
/// read-only flag); a read must work.
fn read_only_device(rt: &mut Runtime, devid: &str, t: &mut Tally) {
    let (fe, mut ring) = match connect(rt, Pick::Only(devid)) {
        Ok(c) => c,
        Err(why) => return t.report("ro-connect", "status none", Err(why)),
    };
    println!(
        "blk-hostile: connected read-only vbd {devid} backend dom{} sectors {}",
        fe.backend.0, fe.sectors
    );
    let pages = match DataPages::new(&mut rt.grants, fe.backend) {
        Ok(p) => p,
        Err(why) => {
            t.report("ro-pages", "status none", Err(why));
            release(TAG, &mut rt.grants, "ring", ring.page);
            return;
        }
    };
    let a = pages.a.gref().0;
    let id = ring.new_id();
    let req = blkif::encode_request(OP_WRITE, fe.handle, id, 0, &[seg(a, 0, 7)]);
    let r = ring.submit(&mut rt.events, &req, id);
    case(t, "read-only-write", r, &[status::ERROR], || Ok(()));
    let id = ring.new_id();
    let req = blkif::encode_request(OP_READ, fe.handle, id, 0, &[seg(a, 0, 7)]);
    let r = ring.submit(&mut rt.events, &req, id);
    case(t, "read-only-read", r, &[status::OKAY], || Ok(()));
    if let Ok(mut store) = rt.store() {
        let _ = set_state(&mut store, &fe.fe, STATE_CLOSED);
        await_unmap(&mut store, &fe);
    }
    pages.release(&mut rt.grants);
    release(TAG, &mut rt.grants, "ring", ring.page);
}

/// Gives the backend a moment to unmap the ring after we closed (it goes
/// Closed, or the toolstack removes its directory), so that ending our
/// grant then succeeds; nothing is reported either way.
fn await_unmap(store: &mut Store<'_>, f: &Frontend) {
    let (state_path, closed) = (format!("{}/state", f.be), format!("{STATE_CLOSED}"));
    let _ = wait_until(store, UNMAP_GRACE, |s| {
        Ok(match read_opt(s, &state_path)? {
            Some(v) if v != closed => None,
            _ => Some(()),
        })
    });
}

/// What the handshake learnt.
struct Frontend {
    /// `/local/domain/<me>/device/vbd` (watched).
    vbd_dir: String,
    /// Our device directory.
    fe: String,
    /// The backend's device directory.
    be: String,
    backend: DomId,
    /// `handle` of every request: the devid, as Linux blkfront sends it.
    handle: u16,
    sectors: u64,
    max_indirect: u32,
}

/// How errors name the ring.
const RING: RingNames = RingNames {
    access: "ring page access",
    rsp_prod: "rsp_prod",
    pending: "request(s) in flight",
};

/// Our side of the shared ring. We are the only writer of `req_prod`
/// and `rsp_event`; the backend writes `rsp_prod`, `req_event` and the
/// responses.
struct Ring {
    page: GrantedPage,
    port: EvtchnPort,
    idx: Indices,
}

/// Our private ring indices and the requests in flight.
struct Indices {
    /// `req_prod` as we last published it.
    req_prod: u32,
    /// Responses consumed so far.
    rsp_cons: u32,
    /// Ids of requests sent and not yet answered (late answers to a
    /// request that timed out are recognised, not mistaken for a bug).
    outstanding: Vec<u64>,
    next_id: u64,
}

/// Waits until the backend's `state` is `want`; fails early if it went
/// to Closing or Closed instead.
fn wait_backend_state(store: &mut Store<'_>, be: &str, want: u32) -> Result<(), String> {
    let got = wait_until(store, ATTACH_TIMEOUT, |s| match read_state(s, be)? {
        Some(st) if st == want => Ok(Some(())),
        Some(st) if st >= STATE_CLOSING => {
            Err(format!("backend state {st} while waiting for state {want}"))
        }
        _ => Ok(None),
    })?;
    got.ok_or_else(|| {
        format!(
            "backend state did not become {want} within {} s",
            ATTACH_TIMEOUT.as_secs()
        )
    })
}

/// Waits for the vbd, then performs the blkfront handshake.
/// Which vbd [`connect`] takes: the first listed other than `Except`, or
/// exactly `Only`.
#[derive(Clone, Copy)]
enum Pick<'a> {
    Except(Option<&'a str>),
    Only(&'a str),
}

fn connect(rt: &mut Runtime, pick: Pick<'_>) -> Result<(Frontend, Ring), String> {
    let me = my_domid(rt)?;
    let vbd_dir = format!("/local/domain/{me}/device/vbd");
    let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
    watch(TAG, &mut store, &vbd_dir, FE_TOKEN)?;
    println!("blk-hostile: dom{me} waiting for a vbd under {vbd_dir}");
    let found = wait_until(&mut store, ATTACH_TIMEOUT, |s| {
        let list = match s.directory(&vbd_dir) {
            Ok(l) => l,
            Err(XsOpError::Store(_)) => return Ok(None),
            Err(e) => return Err(format!("listing {vbd_dir}: {e:?}")),
        };
        let Some(devid) = list.into_iter().find(|d| match pick {
            Pick::Except(skip) => Some(d.as_str()) != skip,
            Pick::Only(want) => d == want,
        }) else {
            return Ok(None);
        };
        Ok(read_opt(s, &format!("{vbd_dir}/{devid}/backend"))?.map(|be| (devid, be)))
    })?;
    let Some((devid, be)) = found else {
        return Err(format!(
            "no vbd with a backend under {vbd_dir} within {} s",
            ATTACH_TIMEOUT.as_secs()
        ));
    };
    let handle = devid
        .parse::<u16>()
        .map_err(|_| format!("devid {devid:?} is not a 16-bit number"))?;
    let fe = format!("{vbd_dir}/{devid}");
    let backend = read_backend_id(&mut store, &fe)?;
    watch(TAG, &mut store, &format!("{be}/state"), BE_TOKEN)?;
    wait_backend_state(&mut store, &be, STATE_INITWAIT)?;
    let sectors_text = store
        .read_string(&format!("{be}/sectors"))
        .map_err(xs("reading the backend's sectors"))?;
    let sectors = sectors_text
        .parse::<u64>()
        .map_err(|_| format!("backend sectors {sectors_text:?} is not a number"))?;
    let max_indirect = match store.read_u32(&format!("{be}/feature-max-indirect-segments")) {
        Ok(n) => n,
        Err(XsOpError::Store(_)) => 0,
        Err(e) => return Err(format!("reading feature-max-indirect-segments: {e:?}")),
    };

    let page = front::ring_page(&mut rt.grants, backend, "the ring")?;
    let gref = page.gref().0;
    let port = match rt.events.alloc_unbound(backend) {
        Ok(p) => p,
        Err(e) => {
            release(TAG, &mut rt.grants, "ring", page);
            return Err(format!("allocating the event channel: {e:?}"));
        }
    };
    let ring = Ring {
        page,
        port,
        idx: Indices {
            req_prod: 0,
            rsp_cons: 0,
            outstanding: Vec::new(),
            next_id: 0x4b1d_0000,
        },
    };
    let fe_info = Frontend {
        vbd_dir,
        fe,
        be,
        backend,
        handle,
        sectors,
        max_indirect,
    };
    match publish(rt, &fe_info, gref, port) {
        Ok(()) => Ok((fe_info, ring)),
        Err(why) => {
            release(TAG, &mut rt.grants, "ring", ring.page);
            Err(why)
        }
    }
}

/// Writes the ring's details, switches to Initialised, waits for the
/// backend to connect and switches to Connected.
fn publish(rt: &mut Runtime, f: &Frontend, gref: u32, port: EvtchnPort) -> Result<(), String> {
    let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
    let (ring_ref, evtchn) = (format!("{gref}"), format!("{}", port.0));
    store
        .transaction(|tx| {
            tx.write(&format!("{}/ring-ref", f.fe), ring_ref.as_bytes())?;
            tx.write(&format!("{}/event-channel", f.fe), evtchn.as_bytes())?;
            tx.write(&format!("{}/protocol", f.fe), b"arm-abi")
        })
        .map_err(xs("writing ring-ref, event-channel and protocol"))?;
    set_state(&mut store, &f.fe, STATE_INITIALISED).map_err(xs("writing state 3"))?;
    wait_backend_state(&mut store, &f.be, STATE_CONNECTED)?;
    set_state(&mut store, &f.fe, STATE_CONNECTED).map_err(xs("writing state 4"))
}

/// Pages granted to the backend for the requests.
struct DataPages {
    /// What `sanity-write` writes (a pattern), read-write.
    a: GrantedPage,
    /// Where the sanity reads land, read-write.
    b: GrantedPage,
    /// Pseudo-random bytes posing as an indirect segment page, read-only.
    garbage: GrantedPage,
}

/// A xorshift64 stream.
struct Xorshift(u64);

impl Xorshift {
    fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            c.copy_from_slice(bytes.get(..c.len()).unwrap_or(&[]));
        }
    }
}

fn filled_page(seed: u64) -> Result<OwnedPage, String> {
    let page = OwnedPage::new().map_err(xs("allocating a data page"))?;
    let mut bytes = vec![0u8; PAGE_SIZE];
    Xorshift(seed).fill(&mut bytes);
    page.shared()
        .copy_in(0, &bytes)
        .map_err(xs("filling a data page"))?;
    Ok(page)
}

impl DataPages {
    fn new(grants: &mut GrantTable, backend: DomId) -> Result<Self, String> {
        let mut grant = |page: OwnedPage, readonly: bool| {
            grants
                .grant(page, backend, readonly)
                .map_err(|(_, e)| format!("granting a data page: {e:?}"))
        };
        let a = grant(filled_page(0x5eed_0000_0000_000a)?, false)?;
        let b = grant(
            OwnedPage::new().map_err(xs("allocating a data page"))?,
            false,
        )?;
        let garbage = grant(filled_page(0x6a7b_a6e0_dead_beef)?, true)?;
        Ok(Self { a, b, garbage })
    }

    fn release(self, grants: &mut GrantTable) {
        release(TAG, grants, "data A", self.a);
        release(TAG, grants, "data B", self.b);
        release(TAG, grants, "indirect", self.garbage);
    }

    /// Whether B holds A's bytes; `Err` says where they differ.
    fn b_equals_a(&self) -> Result<(), String> {
        let (Some(a), Some(b)) = (self.a.shared(), self.b.shared()) else {
            return Err(String::from("data page gone"));
        };
        let mut x = vec![0u8; PAGE_SIZE];
        let mut y = vec![0u8; PAGE_SIZE];
        a.copy_out(0, &mut x)
            .and_then(|()| b.copy_out(0, &mut y))
            .map_err(xs("reading the data pages"))?;
        match x.iter().zip(&y).position(|(p, q)| p != q) {
            None => Ok(()),
            Some(i) => Err(format!(
                "read data differs from written data at byte {i}: {:#04x} != {:#04x}",
                y.get(i).copied().unwrap_or(0),
                x.get(i).copied().unwrap_or(0)
            )),
        }
    }

    fn clear_b(&self) {
        if let Some(b) = self.b.shared() {
            b.zero();
        }
    }
}

/// Prints one case line. `outcome`: the response status (or why there is
/// none); `accept`: the statuses that pass; `extra`: a check on the result
/// beyond the status (run only when the status passed).
fn case(
    t: &mut Tally,
    name: &str,
    outcome: Result<i16, String>,
    accept: &[i16],
    extra: impl FnOnce() -> Result<(), String>,
) {
    let st = match outcome {
        Ok(st) => st,
        Err(why) => return t.report(name, "status none", Err(why)),
    };
    let verdict = if accept.contains(&st) {
        extra()
    } else {
        let list: Vec<String> = accept.iter().map(|s| format!("{s}")).collect();
        Err(format!("expected {}", list.join(" or ")))
    };
    t.report(name, &format!("status {st}"), verdict);
}

fn seg(gref: u32, first_sect: u8, last_sect: u8) -> Segment {
    Segment {
        gref,
        first_sect,
        last_sect,
    }
}

/// `struct blkif_request_indirect` in a ring entry.
fn encode_indirect(
    indirect_op: u8,
    nr_segments: u16,
    id: u64,
    sector: u64,
    handle: u16,
    grefs: &[u32],
) -> [u8; blkif::REQUEST_SIZE] {
    let mut b = [0u8; blkif::REQUEST_SIZE];
    b[0] = OP_INDIRECT;
    b[1] = indirect_op;
    b[2..4].copy_from_slice(&nr_segments.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    b[24..26].copy_from_slice(&handle.to_le_bytes());
    for (i, g) in grefs.iter().take(blkif::MAX_INDIRECT_PAGES).enumerate() {
        let off = 28 + 4 * i;
        b[off..off + 4].copy_from_slice(&g.to_le_bytes());
    }
    b
}

/// Runs the request cases in order (see the crate docs); `at` is the
/// sector of the sanity write and reads.
fn run_cases(
    events: &mut Events,
    f: &Frontend,
    ring: &mut Ring,
    p: &DataPages,
    at: u64,
    t: &mut Tally,
) {
    use status::{EOPNOTSUPP, ERROR, OKAY};
    let (a, b, garbage) = (p.a.gref().0, p.b.gref().0, p.garbage.gref().0);
    let h = f.handle;
    let rw = |op: u8, id: u64, sector: u64, segs: &[Segment]| {
        blkif::encode_request(op, h, id, sector, segs)
    };

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_WRITE, id, at, &[seg(a, 0, 7)]), id);
    case(t, "sanity-write", r, &[OKAY], || Ok(()));

    p.clear_b();
    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, at, &[seg(b, 0, 7)]), id);
    case(t, "sanity-read", r, &[OKAY], || p.b_equals_a());

    let id = ring.new_id();
    let end = f.sectors.saturating_sub(4);
    let r = ring.submit(events, &rw(OP_READ, id, end, &[seg(b, 0, 7)]), id);
    case(t, "out-of-range", r, &[ERROR], || Ok(()));

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, u64::MAX - 3, &[seg(b, 0, 7)]), id);
    case(t, "sector-overflow", r, &[ERROR], || Ok(()));

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, 0, &[seg(BAD_GREF, 0, 0)]), id);
    case(t, "bad-gref", r, &[ERROR], || Ok(()));

    // Eleven valid one-sector segments in the array, nr_segments 12.
    let id = ring.new_id();
    let mut req = rw(OP_READ, id, 0, &[seg(b, 0, 0); blkif::MAX_SEGMENTS]);
    req[1] = 12;
    let r = ring.submit(events, &req, id);
    case(t, "too-many-segments", r, &[ERROR], || Ok(()));

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, 0, &[]), id);
    case(t, "zero-segments", r, &[ERROR], || Ok(()));

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, 0, &[seg(b, 5, 2)]), id);
    case(t, "first-after-last", r, &[ERROR], || Ok(()));

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, 0, &[seg(b, 0, 8)]), id);
    case(t, "last-sect-8", r, &[ERROR], || Ok(()));

    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_UNKNOWN, id, 0, &[seg(b, 0, 7)]), id);
    case(t, "unknown-op", r, &[ERROR, EOPNOTSUPP], || Ok(()));

    // More segments than advertised (or than 8 indirect pages can hold).
    let id = ring.new_id();
    let too_many = if f.max_indirect == 0 {
        4097
    } else {
        f.max_indirect.saturating_add(1)
    };
    let r = match u16::try_from(too_many) {
        Ok(n) => {
            let pages = (usize::from(n))
                .div_ceil(blkif::SEGMENTS_PER_INDIRECT_PAGE)
                .min(blkif::MAX_INDIRECT_PAGES);
            let grefs = [garbage; blkif::MAX_INDIRECT_PAGES];
            let req = encode_indirect(OP_READ, n, id, 0, h, grefs.get(..pages).unwrap_or(&[]));
            ring.submit(events, &req, id)
        }
        Err(_) => Err(format!(
            "max-indirect {} leaves no nr_segments above it",
            f.max_indirect
        )),
    };
    case(t, "indirect-too-many", r, &[ERROR, EOPNOTSUPP], || Ok(()));

    // Without indirect support, EOPNOTSUPP is the right answer too.
    let indirect_err: &[i16] = if f.max_indirect == 0 {
        &[ERROR, EOPNOTSUPP]
    } else {
        &[ERROR]
    };
    let id = ring.new_id();
    let req = encode_indirect(OP_READ, 16, id, 0, h, &[garbage]);
    let r = ring.submit(events, &req, id);
    case(t, "indirect-garbage-page", r, indirect_err, || Ok(()));

    let id = ring.new_id();
    let req = encode_indirect(OP_READ, 4, id, 0, h, &[BAD_INDIRECT_GREF]);
    let r = ring.submit(events, &req, id);
    case(t, "indirect-bad-gref", r, indirect_err, || Ok(()));

    p.clear_b();
    let id = ring.new_id();
    let r = ring.submit(events, &rw(OP_READ, id, at, &[seg(b, 0, 7)]), id);
    case(t, "sanity-after", r, &[OKAY], || p.b_equals_a());
}

impl Ring {
    fn new_id(&mut self) -> u64 {
        self.idx.next_id = self.idx.next_id.wrapping_add(1);
        self.idx.next_id
    }

    /// Puts one request on the ring, notifies the backend and waits up to
    /// [`RESPONSE_TIMEOUT`] for the response with `id`: its status, or why
    /// there is none.
    fn submit(
        &mut self,
        events: &mut Events,
        entry: &[u8; blkif::REQUEST_SIZE],
        id: u64,
    ) -> Result<i16, String> {
        let page = self
            .page
            .shared()
            .ok_or_else(|| String::from("ring page gone"))?;
        if self.idx.req_prod.wrapping_sub(self.idx.rsp_cons) >= blkif::RING_SIZE {
            return Err(String::from("ring full of unanswered requests"));
        }
        page.copy_in(blkif::slot_offset(self.idx.req_prod), entry)
            .map_err(xs(RING.access))?;
        self.idx.req_prod = self.idx.req_prod.wrapping_add(1);
        self.idx.outstanding.push(id);
        front::push(&page, self.idx.req_prod, events, self.port, RING.access)?;
        front::poll_until(events, self.port, RESPONSE_TIMEOUT, || {
            self.idx.collect(&page, id)
        })?
        .ok_or_else(|| String::from("no response"))
    }
}

impl Indices {
    /// Consumes every response on the ring (RING_FINAL_CHECK_FOR_RESPONSES
    /// included). Returns the status of `id`'s response if it was among
    /// them; `Err` if the backend broke the ring protocol.
    fn collect(&mut self, page: &SharedPage, id: u64) -> Result<Option<i16>, String> {
        let mut found = None;
        // Each pass consumes at least one response or ends, and there are
        // at most RING_SIZE outstanding; the bound only guards against a
        // backend that keeps moving rsp_prod back and forth.
        for _ in 0..=blkif::RING_SIZE * 2 {
            let ready = front::ready(page, &RING, self.req_prod, self.rsp_cons)?;
            for _ in 0..ready {
                let mut bytes = [0u8; blkif::RESPONSE_SIZE];
                page.copy_out(blkif::slot_offset(self.rsp_cons), &mut bytes)
                    .map_err(xs(RING.access))?;
                self.rsp_cons = self.rsp_cons.wrapping_add(1);
                let (rid, _op, st) = blkif::decode_response(&bytes);
                match self.outstanding.iter().position(|&o| o == rid) {
                    Some(i) => {
                        self.outstanding.swap_remove(i);
                    }
                    None => return Err(format!("response with id {rid:#x} that we never sent")),
                }
                if rid == id {
                    found = Some(st);
                }
            }
            let more = front::final_check(page, self.rsp_cons, RING.access)?;
            if found.is_some() || !more {
                return Ok(found);
            }
        }
        Err(String::from("rsp_prod keeps changing"))
    }
}

/// Corrupts the ring indices and waits for the backend to disconnect.
fn ring_overflow(rt: &mut Runtime, f: &Frontend, ring: &Ring, t: &mut Tally) {
    let mut report = |state: Option<u32>, ms: u64, r: Result<(), String>| {
        let detail = format!("backend state {} after {ms} ms", show_state(state));
        t.report("ring-overflow", &detail, r);
    };
    let before = rt
        .store()
        .ok()
        .and_then(|mut s| read_state(&mut s, &f.be).ok().flatten());
    if before != Some(STATE_CONNECTED) {
        return report(
            before,
            0,
            Err(String::from("backend not Connected before the overflow")),
        );
    }
    let Some(page) = ring.page.shared() else {
        return report(before, 0, Err(String::from("ring page gone")));
    };
    if let Err(why) = front::overflow(&page, 64, &rt.events, ring.port, RING.access) {
        return report(before, 0, Err(why));
    }
    let t0 = Instant::now();
    let mut last = before;
    let outcome = match rt.store() {
        Ok(mut store) => wait_state_in(&mut store, &f.be, CLOSE_TIMEOUT, &mut last, |n| {
            n == STATE_CLOSING || n == STATE_CLOSED
        }),
        Err(e) => Err(format!("connecting to xenstore: {e:?}")),
    };
    let ms = t0.elapsed().as_millis() as u64;
    match outcome {
        Ok(true) => report(last, ms, Ok(())),
        Ok(false) => report(
            last,
            ms,
            Err(format!(
                "backend did not go to Closing or Closed within {} s",
                CLOSE_TIMEOUT.as_secs()
            )),
        ),
        Err(why) => report(last, ms, Err(why)),
    }
}
