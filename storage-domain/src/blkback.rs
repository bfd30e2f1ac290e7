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
//! carried out through a local bounce buffer with grant copies (the
//! guest's data pages are never mapped): read, write, flush, discard and
//! indirect requests (whose segment pages are grant-copied once, then
//! validated). One disk operation per request. A request that fails
//! validation or I/O is answered with an error status; a frontend that
//! breaks the ring indices is disconnected (backend Closing) with the
//! reason logged.
//!
//! Discard is carried out by writing zeros: virtio-drivers 0.13 has no
//! discard request, and zeroing keeps a discarded range from exposing old
//! data (`discard-secure` is not offered).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use xen_rt::gnttab::{self, GrantTable, MappedGrant};
use xen_rt::hypercall::{DomId, EvtchnPort, GrantRef};
use xen_rt::mem::ForeignSpace;
use xen_rt::mem::virtio_hal::XenHal;
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
/// Bytes of the bounce buffer: the largest transfer.
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
    bounce: Vec<u8>,
}

impl Blkback {
    pub fn new(extents: Vec<Extent>, capture: u64) -> Self {
        Self {
            extents,
            capture,
            conns: Vec::new(),
            to_close: Vec::new(),
            bounce: vec![0u8; BOUNCE_BYTES],
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
        });
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

/// Serves every pending request of `c`. `Ok(true)` if the frontend must be
/// notified; `Err` (a reason) if it broke the ring protocol.
pub fn serve(c: &mut Conn, disk: &mut Disk, bounce: &mut [u8]) -> Result<bool, String> {
    let Some(ring) = c.ring.as_ref() else {
        return Ok(false);
    };
    let mut notify = false;
    loop {
        // Copy the producer index once; Acquire orders the entry reads.
        let req_prod = ring.load_u32(REQ_PROD, Ordering::Acquire)?;
        let mut answered = false;
        while let Some(slot) = c
            .back
            .consume_request(req_prod)
            .map_err(|e| format!("ring index violation: {e:?}"))?
        {
            let mut entry = [0u8; blkif::REQUEST_SIZE];
            ring.copy(ring.slot_offset(slot), Some(&mut entry), &[])?;
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
            let (id, op, status) = match Request::parse(&entry, &c.vbd) {
                Ok(req) => {
                    c.counts.note(&req.kind);
                    let st = match perform(c, &req, disk, bounce, capturing) {
                        Ok(()) => blkif::status::OKAY,
                        Err(why) => {
                            c.errors += 1;
                            println!("blkback: dom{} request {}: {why}", c.frontend.0, req.id);
                            blkif::status::ERROR
                        }
                    };
                    (req.id, req.operation, st)
                }
                Err(rej) => {
                    c.errors += 1;
                    println!(
                        "blkback: dom{} request {} op {} rejected: {}",
                        c.frontend.0, rej.id, rej.operation, rej.error
                    );
                    (rej.id, rej.operation, rej.status())
                }
            };
            let rslot = c
                .back
                .next_response_slot()
                .map_err(|e| format!("response slot: {e:?}"))?;
            ring.copy(
                ring.slot_offset(rslot),
                None,
                &blkif::encode_response(id, op, status),
            )?;
            answered = true;
        }
        if answered {
            // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: entries, then rsp_prod
            // (Release), full barrier, then the frontend's rsp_event.
            let push_old = c.published;
            let new_prod = c.back.rsp_prod_pvt;
            ring.store_u32(RSP_PROD, new_prod, Ordering::Release)?;
            fence(Ordering::SeqCst);
            let rsp_event = ring.load_u32(RSP_EVENT, Ordering::Acquire)?;
            let push = c.back.push_responses(push_old, rsp_event);
            c.published = push.new_prod;
            notify |= push.notify;
        }
        // RING_FINAL_CHECK_FOR_REQUESTS.
        match c
            .back
            .final_check_for_requests(req_prod)
            .map_err(|e| format!("ring index violation: {e:?}"))?
        {
            FinalCheck::Work(_) => continue,
            FinalCheck::Arm { event } => {
                ring.store_u32(REQ_EVENT, event, Ordering::Release)?;
                fence(Ordering::SeqCst);
                let again = ring.load_u32(REQ_PROD, Ordering::Acquire)?;
                if c.back
                    .unconsumed_requests(again)
                    .map_err(|e| format!("ring index violation: {e:?}"))?
                    == 0
                {
                    return Ok(notify);
                }
            }
        }
    }
}

fn perform(
    c: &Conn,
    req: &Request,
    disk: &mut Disk,
    bounce: &mut [u8],
    capturing: bool,
) -> Result<(), String> {
    let peer = c.frontend;
    match req.kind {
        RequestKind::Read(t) => transfer(peer, c.base, &t, disk, bounce, false),
        RequestKind::Write(t) => transfer(peer, c.base, &t, disk, bounce, true),
        RequestKind::Flush => disk.flush().map_err(|e| format!("flush: {e}")),
        RequestKind::Discard { sector, sectors } => {
            zero_range(c.base + sector, sectors, disk, bounce)
        }
        RequestKind::Indirect(ind) => {
            // Copy the segment descriptors out of the frontend's indirect
            // pages once, then validate the copy.
            let mut descriptors = [0u8; blkif::MAX_TRANSFER_SEGMENTS * blkif::SEGMENT_SIZE];
            let mut have = 0usize;
            for (page, gref) in ind.grefs.iter().enumerate().take(ind.pages()) {
                let n = ind.segment_bytes_in_page(page);
                let dst = descriptors
                    .get_mut(have..have + n)
                    .ok_or_else(|| format!("{} indirect segments", ind.nr_segments))?;
                gnttab::copy_from(peer, GrantRef(*gref), 0, dst)
                    .map_err(|e| format!("grant copy of indirect page gref {gref}: {e:?}"))?;
                have += n;
            }
            if capturing {
                capture_hex(c, "seg", &descriptors[..have]);
            }
            let t = ind
                .transfer(&descriptors[..have], &c.vbd)
                .map_err(|e| format!("indirect segments: {e}"))?;
            transfer(peer, c.base, &t, disk, bounce, ind.write)
        }
    }
}

/// Writes zeros over `sectors` sectors from disk sector `first`.
fn zero_range(first: u64, sectors: u64, disk: &mut Disk, bounce: &mut [u8]) -> Result<(), String> {
    bounce.fill(0);
    let chunk = (bounce.len() / 512) as u64;
    let mut done = 0u64;
    while done < sectors {
        let n = chunk.min(sectors - done);
        let at = first + done;
        let block = usize::try_from(at).map_err(|_| format!("sector {at}"))?;
        disk.write_blocks(block, &bounce[..n as usize * 512])
            .map_err(|e| format!("discard (zeroing) at {at}: {e}"))?;
        done += n;
    }
    Ok(())
}

/// One disk operation for the whole request: a write gathers every
/// segment into the bounce buffer first; a read scatters it afterwards.
fn transfer(
    peer: DomId,
    base: u64,
    t: &Transfer,
    disk: &mut Disk,
    bounce: &mut [u8],
    write: bool,
) -> Result<(), String> {
    let total = usize::try_from(t.sectors * 512).map_err(|_| "size".to_string())?;
    let buf = bounce
        .get_mut(..total)
        .ok_or_else(|| format!("transfer of {total} bytes"))?;
    let sector = base + t.sector;
    let block = usize::try_from(sector).map_err(|_| format!("sector {sector}"))?;
    // All segments in one batched grant copy (one hypercall per 64 pieces).
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
    let segs = &segs[..t.segments().len()];
    let mut ok = [false; blkif::MAX_TRANSFER_SEGMENTS];
    let failed = |ok: &[bool]| {
        segs.iter()
            .zip(ok)
            .find(|(_, ok)| !**ok)
            .map(|(s, _)| s.gref.0)
    };
    if write {
        gnttab::copy_batch(segs, gnttab::CopyBuffer::Fill(buf), &mut ok)
            .map_err(|e| format!("grant copy from the frontend: {e:?}"))?;
        if let Some(g) = failed(&ok) {
            return Err(format!("grant copy from gref {g} failed"));
        }
        disk.write_blocks(block, buf)
            .map_err(|e| format!("disk write at {sector}: {e}"))?;
    } else {
        disk.read_blocks(block, buf)
            .map_err(|e| format!("disk read at {sector}: {e}"))?;
        gnttab::copy_batch(segs, gnttab::CopyBuffer::Drain(buf), &mut ok)
            .map_err(|e| format!("grant copy to the frontend: {e:?}"))?;
        if let Some(g) = failed(&ok) {
            return Err(format!("grant copy to gref {g} failed"));
        }
    }
    Ok(())
}

/// Splits the state for the data path: the connections and the bounce
/// buffer.
pub fn parts(b: &mut Blkback) -> (&mut Vec<Conn>, &mut [u8]) {
    (&mut b.conns, &mut b.bounce)
}
