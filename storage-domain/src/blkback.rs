//! blkback: serves Xen blkif (`io/blkif.h`) to xen-blkfront guests from the
//! passed-through virtio-blk disk.
//!
//! xenbus: xen-rt's [`BackendBus`] for type `vbd` with
//! [`ConnectPolicy::OnInitialised`]. Probe looks up the extent the
//! toolstack named in `params` (xl's `target=`) in the domain's own extent
//! table (boot argument `extents=`, see [`Extent`]); a vbd can only ever
//! reach the sectors of its extent. It then writes the feature nodes.
//! Connect reads `ring-ref`, `event-channel` and `protocol` (only the
//! native ABI), maps the one-page ring and binds the event channel.
//!
//! Requests are copied out of the ring once, validated by
//! `xen_proto::blkif` against the vbd (extent size, mode, features), and
//! carried out through local buffers with grant copies (the guest's data
//! pages are never mapped): read, write, flush, discard and indirect
//! requests (whose segment pages are grant-copied once, then validated).
//! One disk operation per request; reads and writes from every ring are
//! in flight on the disk together ([`QueuedDisk`], up to the device queue
//! and [`MAX_BYTES_IN_FLIGHT`]) and answered in the order the disk
//! completes them; a flush or discard waits until nothing is in flight
//! (flush then covers every write answered before it). A request that fails
//! validation or I/O is answered with an error status; a frontend that
//! breaks the ring indices is disconnected (backend Closing) with the
//! reason logged.
//!
//! Discard is carried out by writing zeros: virtio-drivers 0.13 has no
//! discard request, and zeroing keeps a discarded range from exposing old
//! data (`discard-secure` is not offered).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use xen_rt::gnttab::{self, GrantTable, MappedGrant};
use xen_rt::hypercall::{DomId, EvtchnPort, GrantRef};
use xen_rt::mem::ForeignSpace;
use xen_rt::mem::virtio_hal::XenHal;
use xen_rt::mem::virtio_queue::{Completed, QueuedBlk};
use xen_rt::println;
use xen_rt::proto::blkif::{self, Request, RequestKind, Transfer, Vbd};
use xen_rt::proto::ring::shared::{self, BackRingIndices, FinalCheck, SRING_HEADER_SIZE};
use xen_rt::virtio_drivers::device::blk::VirtIOBlk;
use xen_rt::virtio_drivers::transport::mmio::MmioTransport;
use xen_rt::xenbus::{BackendDriver, Device};
use xen_rt::xenstore::{Store, XsOpError};

/// The disk type this backend drives.
pub type Disk = VirtIOBlk<XenHal, MmioTransport<'static>>;

/// Offsets in the shared ring header (`io/ring.h`).
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;

/// Sectors at the start of the disk the domain keeps for itself (the
/// xtask signature in sector 0, its own write test at sector 8); no
/// extent may overlap them.
pub const RESERVED_SECTORS: u64 = 2048;
/// Largest `ring-page-order` accepted (`max-ring-page-order`): 16 pages,
/// 512 entries, as Linux blkback offers.
const MAX_RING_PAGE_ORDER: u32 = 4;
/// Indirect segments advertised (`feature-max-indirect-segments`).
const MAX_INDIRECT_SEGMENTS: u16 = blkif::MAX_INDIRECT_SEGMENTS as u16;
/// Bytes of the largest transfer (and of the zeroing buffer of discard).
pub const BOUNCE_BYTES: usize = blkif::MAX_TRANSFER_SEGMENTS * 4096;

/// A named range of the disk that one vbd serves: `name@start+sectors`,
/// optionally `:r` for read-only whatever the toolstack's `mode` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub name: String,
    pub start: u64,
    pub sectors: u64,
    pub read_only: bool,
}

/// Parses `extents=` (comma-separated `name@start+sectors[:r]`) and checks
/// each extent against the disk: inside it, past the reserved sectors, not
/// overlapping another. Returns the extents and the rejected items.
pub fn parse_extents(arg: &str, capacity: u64) -> (Vec<Extent>, Vec<String>) {
    let mut ok: Vec<Extent> = Vec::new();
    let mut bad = Vec::new();
    for item in arg.split(',').filter(|s| !s.is_empty()) {
        let (body, ro) = match item.strip_suffix(":r") {
            Some(b) => (b, true),
            None => (item.strip_suffix(":w").unwrap_or(item), false),
        };
        let parsed = body.split_once('@').and_then(|(name, range)| {
            let (start, len) = range.split_once('+')?;
            Some((name, start.parse::<u64>().ok()?, len.parse::<u64>().ok()?))
        });
        let Some((name, start, sectors)) = parsed else {
            bad.push(format!("{item}: not name@start+sectors[:r]"));
            continue;
        };
        let end = start.checked_add(sectors);
        let why = if name.is_empty() || sectors == 0 {
            Some("empty")
        } else if start < RESERVED_SECTORS {
            Some("overlaps the reserved sectors")
        } else if end.is_none_or(|e| e > capacity) {
            Some("beyond the disk")
        } else if ok.iter().any(|e| e.name == name) {
            Some("duplicate name")
        } else if ok
            .iter()
            .any(|e| start < e.start + e.sectors && e.start < start + sectors)
        {
            Some("overlaps another extent")
        } else {
            None
        };
        match why {
            Some(w) => bad.push(format!("{item}: {w}")),
            None => ok.push(Extent {
                name: String::from(name),
                start,
                sectors,
                read_only: ro,
            }),
        }
    }
    (ok, bad)
}

/// The native protocol string of this architecture (`XEN_IO_PROTO_ABI_*`).
#[cfg(target_arch = "aarch64")]
const NATIVE_PROTOCOL: &str = "arm-abi";
#[cfg(target_arch = "x86_64")]
const NATIVE_PROTOCOL: &str = "x86_64-abi";
#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
const NATIVE_PROTOCOL: &str = "arm-abi";

/// One connected frontend.
pub struct Conn {
    pub frontend: DomId,
    pub devid: u32,
    vbd: Vbd,
    /// First disk sector of the vbd's extent.
    base: u64,
    ring: Option<RingPages>,
    pub port: EvtchnPort,
    back: BackRingIndices,
    /// `rsp_prod` as we last published it (we are its only writer).
    published: u32,
    pub requests: u64,
    pub errors: u64,
    /// Requests by kind, for the disconnect report.
    counts: Counts,
    /// [`Blkback::capture`], and requests printed so far by kind.
    capture: u64,
    captured: [u64; 8],
    /// Unique per connection (a reconnect gets a new one): completions of
    /// requests from an earlier connection are dropped.
    serial: u64,
    /// A flush or discard waiting for the disk's requests in flight.
    deferred: Option<Request>,
    /// Responses written but not yet published.
    unpublished: bool,
}

/// The shared ring: `2^ring-page-order` pages, each a separately mapped
/// grant. Entries (112 bytes) may straddle two pages; the indices live in
/// the first page.
pub struct RingPages {
    pages: Vec<MappedGrant>,
    /// Entries of the ring (`__RING_SIZE` for its byte size).
    size: u32,
}

impl RingPages {
    fn page(&self, i: usize) -> Result<&xen_rt::mem::SharedPage, String> {
        self.pages
            .get(i)
            .and_then(MappedGrant::page)
            .ok_or_else(|| format!("ring page {i} not mapped"))
    }
    fn load_u32(&self, off: usize, order: Ordering) -> Result<u32, String> {
        self.page(0)?
            .load_u32(off, order)
            .map_err(|e| format!("ring access: {e:?}"))
    }
    fn store_u32(&self, off: usize, v: u32, order: Ordering) -> Result<(), String> {
        self.page(0)?
            .store_u32(off, v, order)
            .map_err(|e| format!("ring access: {e:?}"))
    }
    /// Byte offset of entry `slot`.
    fn slot_offset(&self, slot: u32) -> usize {
        SRING_HEADER_SIZE + (slot % self.size.max(1)) as usize * blkif::REQUEST_SIZE
    }
    /// Copies out of (`out: Some`) or into the ring at `off`, page by page.
    fn copy(&self, off: usize, out: Option<&mut [u8]>, data: &[u8]) -> Result<(), String> {
        let len = out.as_ref().map_or(data.len(), |o| o.len());
        let mut out = out;
        let mut done = 0;
        while done < len {
            let at = off + done;
            let (p, o) = (at / 4096, at % 4096);
            let n = (4096 - o).min(len - done);
            let page = self.page(p)?;
            let r = match out.as_deref_mut() {
                Some(buf) => page.copy_out(o, &mut buf[done..done + n]),
                None => page.copy_in(o, &data[done..done + n]),
            };
            r.map_err(|e| format!("ring access: {e:?}"))?;
            done += n;
        }
        Ok(())
    }
}

/// Prints `bytes` as `blkcap <fe>/<devid> <n> <what> <offset> <hex>` lines
/// of 40 bytes (each fits one 128-character Xen console line).
fn capture_hex(c: &Conn, what: &str, bytes: &[u8]) {
    xen_rt::console::print_hex_lines(
        format_args!("blkcap {}/{} {} {what}", c.frontend.0, c.devid, c.requests),
        0,
        bytes,
    );
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    read: u64,
    write: u64,
    indirect: u64,
    flush: u64,
    discard: u64,
    sectors: u64,
}

impl Counts {
    fn note(&mut self, kind: &RequestKind) {
        match kind {
            RequestKind::Read(t) => {
                self.read += 1;
                self.sectors += t.sectors;
            }
            RequestKind::Write(t) => {
                self.write += 1;
                self.sectors += t.sectors;
            }
            RequestKind::Indirect(i) => {
                self.indirect += 1;
                if i.write {
                    self.write += 1;
                } else {
                    self.read += 1;
                }
            }
            RequestKind::Flush => self.flush += 1,
            RequestKind::Discard { .. } => self.discard += 1,
        }
    }
}

/// Backend state shared between the xenbus callbacks and the data path.
pub struct Blkback {
    pub extents: Vec<Extent>,
    /// Boot argument `capture=N`: print the first N request entries of
    /// each kind (operation; indirect reads and writes apart), with the
    /// segment descriptors of indirect ones, of each connection as hex, for
    /// the fuzz corpus (`cargo xtask fuzz --import-capture LOG`).
    pub capture: u64,
    pub conns: Vec<Conn>,
    /// Event channels of disconnected devices, to close.
    pub to_close: Vec<EvtchnPort>,
    data: DataPath,
    next_serial: u64,
    /// Rotation of [`Blkback::conns`] for fair turns on the disk.
    next_turn: usize,
}

impl Blkback {
    pub fn new(extents: Vec<Extent>, capture: u64) -> Self {
        Self {
            extents,
            capture,
            conns: Vec::new(),
            to_close: Vec::new(),
            data: DataPath {
                pool: Vec::new(),
                disk_broken: false,
            },
            next_serial: 0,
            next_turn: 0,
        }
    }

    /// The extent the toolstack's `params` names.
    fn extent(&self, store: &mut Store<'_>, dev: &Device) -> Result<&Extent, String> {
        let params = store
            .read_string(&format!("{}/params", dev.backend_path))
            .map_err(|e| format!("reading params: {e:?}"))?;
        // xl puts everything after `target=` into params; the extent name
        // is the part before any comma.
        let name = params.split(',').next().unwrap_or("");
        self.extents
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("params {params:?} names no extent of this domain"))
    }
}

/// The [`BackendDriver`] view of [`Blkback`] for one round of xenstore
/// events (it borrows the grant table and foreign space meanwhile).
pub struct Driver<'a> {
    pub grants: &'a mut GrantTable,
    pub foreign: &'a mut ForeignSpace,
    pub state: &'a mut Blkback,
}

fn read_only(store: &mut Store<'_>, dev: &Device) -> bool {
    store
        .read(&format!("{}/mode", dev.backend_path))
        .is_ok_and(|m| m.first() == Some(&b'r') && !m.contains(&b'w'))
}

impl BackendDriver for Driver<'_> {
    fn probe(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), XsOpError> {
        let be = &dev.backend_path;
        let extent = match self.state.extent(store, dev) {
            Ok(e) => e.clone(),
            Err(why) => {
                println!("blkback: probe {be}: refused: {why}");
                let _ = store.write(&format!("{be}/error"), why.as_bytes());
                return Err(XsOpError::Store(xen_rt::proto::xenstore::XsError::EINVAL));
            }
        };
        let ro = extent.read_only || read_only(store, dev);
        println!(
            "blkback: probe {be}: frontend dom{} extent {} sectors {}..{} mode {}",
            dev.frontend_id.0,
            extent.name,
            extent.start,
            extent.start + extent.sectors,
            if ro { "r" } else { "w" },
        );
        let info = if ro { 4u32 } else { 0 }; // VDISK_READONLY
        for (k, v) in [
            ("feature-flush-cache", String::from("1")),
            ("feature-discard", String::from("1")),
            ("discard-granularity", String::from("4096")),
            ("discard-alignment", String::from("0")),
            ("discard-secure", String::from("0")),
            (
                "feature-max-indirect-segments",
                format!("{MAX_INDIRECT_SEGMENTS}"),
            ),
            ("max-ring-page-order", format!("{MAX_RING_PAGE_ORDER}")),
            ("multi-queue-max-queues", String::from("1")),
            ("sectors", format!("{}", extent.sectors)),
            ("info", format!("{info}")),
            ("sector-size", String::from("512")),
            ("physical-sector-size", String::from("512")),
            ("hotplug-status", String::from("connected")),
        ] {
            store.write(&format!("{be}/{k}"), v.as_bytes())?;
        }
        Ok(())
    }

    fn connect(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), String> {
        let fe = &dev.frontend_path;
        // ring-page-order absent: one page at ring-ref; else ring-ref0..N-1.
        let order = match store.read_u32(&format!("{fe}/ring-page-order")) {
            Ok(o) if o <= MAX_RING_PAGE_ORDER => o,
            Ok(o) => {
                return Err(format!(
                    "ring-page-order {o} above the {MAX_RING_PAGE_ORDER} offered"
                ));
            }
            Err(XsOpError::Store(_)) => 0,
            Err(e) => return Err(format!("reading {fe}/ring-page-order: {e:?}")),
        };
        let mut ring_refs = Vec::new();
        if order == 0 {
            ring_refs.push(
                store
                    .read_u32(&format!("{fe}/ring-ref"))
                    .map_err(|e| format!("reading {fe}/ring-ref: {e:?}"))?,
            );
        } else {
            for i in 0..1u32 << order {
                ring_refs.push(
                    store
                        .read_u32(&format!("{fe}/ring-ref{i}"))
                        .map_err(|e| format!("reading {fe}/ring-ref{i}: {e:?}"))?,
                );
            }
        }
        let port = store
            .read_u32(&format!("{fe}/event-channel"))
            .map_err(|e| format!("reading {fe}/event-channel: {e:?}"))?;
        match store.read_string(&format!("{fe}/protocol")) {
            Ok(p) if p == NATIVE_PROTOCOL => {}
            Err(XsOpError::Store(_)) => {} // absent: native
            Ok(p) => return Err(format!("unsupported protocol {p:?}")),
            Err(e) => return Err(format!("reading {fe}/protocol: {e:?}")),
        }
        if let Ok(queues) = store.read_u32(&format!("{fe}/multi-queue-num-queues"))
            && queues > 1
        {
            return Err(format!("multi-queue-num-queues {queues} not offered"));
        }
        let extent = self.state.extent(store, dev)?.clone();
        let vbd = Vbd {
            sectors: extent.sectors,
            read_only: extent.read_only || read_only(store, dev),
            flush: true,
            discard: true,
            max_indirect_segments: MAX_INDIRECT_SEGMENTS,
        };
        let size = shared::ring_size(4096 << order, blkif::REQUEST_SIZE, blkif::RESPONSE_SIZE)
            .ok_or_else(|| format!("no ring fits order {order}"))?;
        let back = BackRingIndices::new(size).map_err(|e| format!("{e:?}"))?;
        let mut ring = RingPages {
            pages: Vec::new(),
            size,
        };
        let mut failed = None;
        for r in &ring_refs {
            match self
                .grants
                .map(self.foreign, dev.frontend_id, GrantRef(*r), false)
            {
                Ok(m) => ring.pages.push(m),
                Err(e) => {
                    failed = Some(format!("mapping ring-ref {r}: {e:?}"));
                    break;
                }
            }
        }
        let bound = match failed {
            Some(why) => Err(why),
            None => store
                .events()
                .bind_interdomain(dev.frontend_id, EvtchnPort(port))
                .map_err(|e| format!("binding event channel {port}: {e:?}")),
        };
        let local = match bound {
            Ok(p) => p,
            Err(why) => {
                unmap_ring(self.grants, self.foreign, ring);
                return Err(why);
            }
        };
        println!(
            "blkback: connect {}: ring-page-order {order} ({size} entries) event-channel {port} (local {}) protocol {NATIVE_PROTOCOL} {}",
            dev.backend_path,
            local.0,
            if vbd.read_only {
                "read-only"
            } else {
                "read-write"
            }
        );
        self.state.conns.push(Conn {
            frontend: dev.frontend_id,
            devid: dev.devid,
            vbd,
            base: extent.start,
            ring: Some(ring),
            port: local,
            back,
            published: 0,
            requests: 0,
            errors: 0,
            counts: Counts::default(),
            capture: self.state.capture,
            captured: [0; 8],
            serial: self.state.next_serial,
            deferred: None,
            unpublished: false,
        });
        self.state.next_serial += 1;
        Ok(())
    }

    fn disconnect(&mut self, dev: &Device) {
        let Some(i) = self
            .state
            .conns
            .iter()
            .position(|c| c.frontend == dev.frontend_id && c.devid == dev.devid)
        else {
            return;
        };
        let mut c = self.state.conns.swap_remove(i);
        let k = c.counts;
        // Short enough for one Xen console line.
        println!(
            "blkback: vbd {}/{} closed: {} req ({} r, {} w, {} ind, {} fl, {} dis), {} err",
            c.frontend.0,
            c.devid,
            c.requests,
            k.read,
            k.write,
            k.indirect,
            k.flush,
            k.discard,
            c.errors
        );
        if let Some(ring) = c.ring.take() {
            unmap_ring(self.grants, self.foreign, ring);
        }
        self.state.to_close.push(c.port);
    }
}

fn unmap_ring(grants: &mut GrantTable, foreign: &mut ForeignSpace, ring: RingPages) {
    for page in ring.pages {
        if let Err((_page, e)) = grants.unmap(foreign, page) {
            println!("blkback: unmapping a ring page failed: {e:?}");
        }
    }
}

/// The disk, with the requests it is working on.
pub type QueuedDisk = QueuedBlk<MmioTransport<'static>, Pending>;

/// Soft limit on data buffers in flight on the disk (one more request may
/// pass it): a few maximal indirect requests, or many small ones, while
/// the domain still fits in 8 MiB.
const MAX_BYTES_IN_FLIGHT: usize = 1 << 20;
/// Requests taken from one ring per pass of the data path.
const TURN: usize = 8;
/// Free data buffers kept for reuse, by total capacity.
const POOL_BYTES: usize = 2 << 20;

/// A request the disk is working on: where its response goes.
pub struct Pending {
    /// [`Conn::serial`] of the connection it came from.
    serial: u64,
    peer: DomId,
    id: u64,
    operation: u8,
    /// For reads: the frontend's pages the data is copied into.
    read_into: Option<Transfer>,
}

/// The data path's state besides the connections: reusable buffers, and
/// whether the disk's queue is still trustworthy.
pub struct DataPath {
    pool: Vec<Vec<u8>>,
    disk_broken: bool,
}

/// Outcome of one pass of the data path.
#[derive(Default)]
pub struct Pass {
    /// Event channels to notify.
    pub notify: Vec<EvtchnPort>,
    /// Connections that broke the protocol: (frontend, devid, reason).
    pub failed: Vec<(DomId, u32, String)>,
    /// Requests the disk finished in this pass.
    pub completed: usize,
    /// A ring still holds requests: come back without waiting.
    pub more: bool,
}

/// One pass of the data path: completes what the disk finished, takes new
/// requests from every ring while the disk has room, and publishes the
/// responses.
pub fn serve_all(b: &mut Blkback, disk: &mut QueuedDisk) -> Pass {
    let mut pass = Pass::default();
    while let Some(done) = disk.poll() {
        match done {
            Ok(done) => {
                pass.completed += 1;
                complete(b, done, &mut pass);
            }
            Err(e) => {
                println!("blkback: disk queue broken: {e:?}; failing every request from now on");
                b.data.disk_broken = true;
                break;
            }
        }
    }
    // Each pass starts at the next connection and takes a bounded turn
    // from each, so one busy frontend cannot keep the disk's room to
    // itself.
    let n = b.conns.len().max(1);
    let first = b.next_turn % n;
    b.next_turn = b.next_turn.wrapping_add(1);
    b.conns.rotate_left(first);
    let (conns, data) = (&mut b.conns, &mut b.data);
    for c in conns.iter_mut() {
        if let Err(reason) = take_requests(c, disk, data, &mut pass.more) {
            pass.failed.push((c.frontend, c.devid, reason));
            continue;
        }
        match push_responses(c) {
            Ok(true) => pass.notify.push(c.port),
            Ok(false) => {}
            Err(reason) => pass.failed.push((c.frontend, c.devid, reason)),
        }
    }
    pass
}

/// Whether the disk may take another request now.
fn disk_has_room(disk: &QueuedDisk) -> bool {
    disk.has_room() && disk.bytes_in_flight() < MAX_BYTES_IN_FLIGHT
}

/// Takes requests from `c`'s ring while the disk has room. A flush or
/// discard waits (in [`Conn::deferred`]) until nothing is in flight.
fn take_requests(
    c: &mut Conn,
    disk: &mut QueuedDisk,
    data: &mut DataPath,
    more: &mut bool,
) -> Result<(), String> {
    if c.ring.is_none() {
        return Ok(());
    }
    loop {
        if let Some(req) = c.deferred.take() {
            if disk.in_flight() > 0 {
                c.deferred = Some(req);
                return Ok(());
            }
            let st = perform_alone(c, &req, disk, data);
            respond(c, req.id, req.operation, st)?;
        }
        let Some(ring) = c.ring.as_ref() else {
            return Ok(());
        };
        // Copy the producer index once; Acquire orders the entry reads.
        let req_prod = ring.load_u32(REQ_PROD, Ordering::Acquire)?;
        let mut taken = 0;
        while disk_has_room(disk) {
            if taken == TURN {
                // The rest waits for the next pass, which comes without
                // waiting for an event.
                *more = true;
                return Ok(());
            }
            taken += 1;
            let Some(slot) = c
                .back
                .consume_request(req_prod)
                .map_err(|e| format!("ring index violation: {e:?}"))?
            else {
                break;
            };
            let mut entry = [0u8; blkif::REQUEST_SIZE];
            c.ring.as_ref().ok_or("ring gone")?.copy(
                ring_slot_offset(c, slot),
                Some(&mut entry),
                &[],
            )?;
            c.requests += 1;
            // Capture kind: the operation, indirect reads and writes apart.
            let kind = match (entry[0], entry[1]) {
                (6, io) => 6 + usize::from(io.min(1)),
                (op, _) => usize::from(op.min(5)),
            };
            let capturing = c.captured.get(kind).is_some_and(|n| *n < c.capture);
            if capturing {
                capture_hex(c, "req", &entry);
                if let Some(n) = c.captured.get_mut(kind) {
                    *n += 1;
                }
            }
            let req = match Request::parse(&entry, &c.vbd) {
                Ok(req) => req,
                Err(rej) => {
                    c.errors += 1;
                    println!(
                        "blkback: dom{} request {} op {} rejected: {}",
                        c.frontend.0, rej.id, rej.operation, rej.error
                    );
                    respond(c, rej.id, rej.operation, rej.status())?;
                    continue;
                }
            };
            c.counts.note(&req.kind);
            let transfer = match &req.kind {
                RequestKind::Read(t) => Ok((*t, false)),
                RequestKind::Write(t) => Ok((*t, true)),
                RequestKind::Indirect(ind) => {
                    indirect_transfer(c, ind, capturing).map(|t| (t, ind.write))
                }
                RequestKind::Flush | RequestKind::Discard { .. } => {
                    if disk.in_flight() > 0 {
                        c.deferred = Some(req);
                        return Ok(());
                    }
                    let st = perform_alone(c, &req, disk, data);
                    respond(c, req.id, req.operation, st)?;
                    continue;
                }
            };
            let started = transfer.and_then(|(t, write)| start(c, &req, t, write, disk, data));
            if let Err(why) = started {
                c.errors += 1;
                println!("blkback: dom{} request {}: {why}", c.frontend.0, req.id);
                respond(c, req.id, req.operation, blkif::status::ERROR)?;
            }
        }
        if !disk_has_room(disk) {
            // More may be waiting; the disk's next completion (its
            // interrupt) brings the caller back.
            return Ok(());
        }
        // RING_FINAL_CHECK_FOR_REQUESTS.
        match c
            .back
            .final_check_for_requests(req_prod)
            .map_err(|e| format!("ring index violation: {e:?}"))?
        {
            FinalCheck::Work(_) => continue,
            FinalCheck::Arm { event } => {
                let ring = c.ring.as_ref().ok_or("ring gone")?;
                ring.store_u32(REQ_EVENT, event, Ordering::Release)?;
                fence(Ordering::SeqCst);
                let again = ring.load_u32(REQ_PROD, Ordering::Acquire)?;
                if c.back
                    .unconsumed_requests(again)
                    .map_err(|e| format!("ring index violation: {e:?}"))?
                    == 0
                {
                    return Ok(());
                }
            }
        }
    }
}

fn ring_slot_offset(c: &Conn, slot: u32) -> usize {
    c.ring.as_ref().map_or(0, |r| r.slot_offset(slot))
}

/// Writes one response entry (published later by [`push_responses`]).
fn respond(c: &mut Conn, id: u64, operation: u8, status: i16) -> Result<(), String> {
    let rslot = c
        .back
        .next_response_slot()
        .map_err(|e| format!("response slot: {e:?}"))?;
    let off = ring_slot_offset(c, rslot);
    c.ring.as_ref().ok_or("ring gone")?.copy(
        off,
        None,
        &blkif::encode_response(id, operation, status),
    )?;
    c.unpublished = true;
    Ok(())
}

/// RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: entries, then rsp_prod
/// (Release), full barrier, then the frontend's rsp_event. `Ok(true)` if
/// the frontend must be notified.
fn push_responses(c: &mut Conn) -> Result<bool, String> {
    if !c.unpublished {
        return Ok(false);
    }
    let Some(ring) = c.ring.as_ref() else {
        return Ok(false);
    };
    let push_old = c.published;
    let new_prod = c.back.rsp_prod_pvt;
    ring.store_u32(RSP_PROD, new_prod, Ordering::Release)?;
    fence(Ordering::SeqCst);
    let rsp_event = ring.load_u32(RSP_EVENT, Ordering::Acquire)?;
    let push = c.back.push_responses(push_old, rsp_event);
    c.published = push.new_prod;
    c.unpublished = false;
    Ok(push.notify)
}

/// The segments of an indirect request: its descriptor pages copied out
/// of the frontend once, then validated.
fn indirect_transfer(
    c: &Conn,
    ind: &blkif::IndirectRequest,
    capturing: bool,
) -> Result<Transfer, String> {
    let mut descriptors = [0u8; blkif::MAX_TRANSFER_SEGMENTS * blkif::SEGMENT_SIZE];
    let mut have = 0usize;
    for (page, gref) in ind.grefs.iter().enumerate().take(ind.pages()) {
        let n = ind.segment_bytes_in_page(page);
        let dst = descriptors
            .get_mut(have..have + n)
            .ok_or_else(|| format!("{} indirect segments", ind.nr_segments))?;
        gnttab::copy_from(c.frontend, GrantRef(*gref), 0, dst)
            .map_err(|e| format!("grant copy of indirect page gref {gref}: {e:?}"))?;
        have += n;
    }
    if capturing {
        capture_hex(c, "seg", &descriptors[..have]);
    }
    ind.transfer(&descriptors[..have], &c.vbd)
        .map_err(|e| format!("indirect segments: {e}"))
}

/// The grant-copy pieces of `t`, laid out back to back in one buffer.
fn copy_segments(
    peer: DomId,
    t: &Transfer,
) -> ([gnttab::CopySegment; blkif::MAX_TRANSFER_SEGMENTS], usize) {
    let mut segs = [gnttab::CopySegment::default(); blkif::MAX_TRANSFER_SEGMENTS];
    let mut at = 0usize;
    for (slot, seg) in segs.iter_mut().zip(t.segments()) {
        *slot = gnttab::CopySegment {
            peer,
            gref: GrantRef(seg.gref),
            offset: seg.offset(),
            at,
            len: seg.len(),
        };
        at += usize::from(seg.len());
    }
    (segs, t.segments().len())
}

/// One batched grant copy between `buf` and the frontend's pages of `t`
/// (`fill`: from the frontend into `buf`).
fn grant_copy(peer: DomId, t: &Transfer, buf: &mut [u8], fill: bool) -> Result<(), String> {
    let (segs, n) = copy_segments(peer, t);
    let segs = &segs[..n];
    let mut ok = [false; blkif::MAX_TRANSFER_SEGMENTS];
    let r = if fill {
        gnttab::copy_batch(segs, gnttab::CopyBuffer::Fill(buf), &mut ok)
    } else {
        gnttab::copy_batch(segs, gnttab::CopyBuffer::Drain(buf), &mut ok)
    };
    r.map_err(|e| format!("grant copy: {e:?}"))?;
    match segs.iter().zip(ok).find(|(_, ok)| !*ok) {
        Some((s, _)) => Err(format!("grant copy of gref {} failed", s.gref.0)),
        None => Ok(()),
    }
}

/// A data buffer of `len` bytes: a free one from the pool, else a new one
/// (never a panic when memory runs out).
fn buffer(data: &mut DataPath, len: usize) -> Result<Vec<u8>, String> {
    let best = data
        .pool
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i);
    let mut buf = match best {
        Some(i) => data.pool.swap_remove(i),
        None => {
            let mut v = Vec::new();
            v.try_reserve_exact(len)
                .map_err(|_| format!("no memory for a {len}-byte buffer"))?;
            v
        }
    };
    // Old contents are overwritten in full (by the grant copy of a write,
    // by the disk for a read) before anything reads them.
    buf.resize(len, 0);
    Ok(buf)
}

fn recycle(data: &mut DataPath, buf: Vec<u8>) {
    let held: usize = data.pool.iter().map(Vec::capacity).sum();
    if held + buf.capacity() <= POOL_BYTES {
        data.pool.push(buf);
    }
}

/// Starts a read or write on the disk; a write's data is grant-copied in
/// first.
fn start(
    c: &Conn,
    req: &Request,
    t: Transfer,
    write: bool,
    disk: &mut QueuedDisk,
    data: &mut DataPath,
) -> Result<(), String> {
    if data.disk_broken {
        return Err("disk queue broken".into());
    }
    let total = usize::try_from(t.sectors * 512).map_err(|_| "size".to_string())?;
    let sector = c.base + t.sector;
    let block = usize::try_from(sector).map_err(|_| format!("sector {sector}"))?;
    let mut buf = buffer(data, total)?;
    if write && let Err(why) = grant_copy(c.frontend, &t, &mut buf, true) {
        recycle(data, buf);
        return Err(why);
    }
    let tag = Pending {
        serial: c.serial,
        peer: c.frontend,
        id: req.id,
        operation: req.operation,
        read_into: (!write).then_some(t),
    };
    let submitted = if write {
        disk.submit_write(block, buf, tag)
    } else {
        disk.submit_read(block, buf, tag)
    };
    submitted.map_err(|(e, buf, _)| {
        recycle(data, buf);
        format!(
            "disk {} at {sector}: {e:?}",
            if write { "write" } else { "read" }
        )
    })
}

/// A request the disk finished: copy a read's data to the frontend, answer.
fn complete(b: &mut Blkback, done: Completed<Pending>, pass: &mut Pass) {
    let p = done.tag;
    // The frontend may have gone (or reconnected) meanwhile: then the
    // result is dropped.
    if let Some(c) = b.conns.iter_mut().find(|c| c.serial == p.serial) {
        let outcome = match (done.result, &p.read_into) {
            (Err(e), _) => Err(format!("disk error: {e:?}")),
            (Ok(()), Some(t)) => {
                let mut buf = done.buf;
                let r = grant_copy(p.peer, t, &mut buf, false);
                recycle(&mut b.data, buf);
                r
            }
            (Ok(()), None) => {
                recycle(&mut b.data, done.buf);
                Ok(())
            }
        };
        let st = match outcome {
            Ok(()) => blkif::status::OKAY,
            Err(why) => {
                c.errors += 1;
                println!("blkback: dom{} request {}: {why}", c.frontend.0, p.id);
                blkif::status::ERROR
            }
        };
        if let Err(reason) = respond(c, p.id, p.operation, st) {
            pass.failed.push((c.frontend, c.devid, reason));
        }
    } else {
        recycle(&mut b.data, done.buf);
    }
}

/// Flush and discard, carried out with nothing else in flight.
fn perform_alone(c: &mut Conn, req: &Request, disk: &mut QueuedDisk, data: &mut DataPath) -> i16 {
    let r = match (disk.idle_device(), &req.kind) {
        (_, _) if data.disk_broken => Err("disk queue broken".to_string()),
        (None, _) => Err("disk busy".to_string()),
        (Some(dev), RequestKind::Flush) => dev.flush().map_err(|e| format!("flush: {e}")),
        (Some(dev), RequestKind::Discard { sector, sectors }) => {
            zero_range(c.base + sector, *sectors, dev, data)
        }
        (Some(_), _) => Err("not a flush or discard".to_string()),
    };
    match r {
        Ok(()) => blkif::status::OKAY,
        Err(why) => {
            c.errors += 1;
            println!("blkback: dom{} request {}: {why}", c.frontend.0, req.id);
            blkif::status::ERROR
        }
    }
}

/// Writes zeros over `sectors` sectors from disk sector `first`.
fn zero_range(
    first: u64,
    sectors: u64,
    disk: &mut Disk,
    data: &mut DataPath,
) -> Result<(), String> {
    let mut zeros = buffer(data, BOUNCE_BYTES)?;
    zeros.fill(0);
    let chunk = (zeros.len() / 512) as u64;
    let mut done = 0u64;
    let mut result = Ok(());
    while done < sectors {
        let n = chunk.min(sectors - done);
        let at = first + done;
        let Ok(block) = usize::try_from(at) else {
            result = Err(format!("sector {at}"));
            break;
        };
        if let Err(e) = disk.write_blocks(block, &zeros[..n as usize * 512]) {
            result = Err(format!("discard (zeroing) at {at}: {e}"));
            break;
        }
        done += n;
    }
    recycle(data, zeros);
    result
}
