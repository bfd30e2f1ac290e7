//! blkback: serves Xen blkif (`io/blkif.h`) to xen-blkfront guests from the
//! passed-through virtio-blk disk.
//!
//! xenbus: xen-rt's [`BackendBus`] for type `vbd` with
//! [`ConnectPolicy::OnInitialised`]. Probe writes the feature nodes; connect
//! reads `ring-ref`, `event-channel` and `protocol` (only the native ABI),
//! maps the one-page ring and binds the event channel. Requests are copied
//! out of the ring once, validated by `xen_proto::blkif`, and carried out
//! through a local bounce buffer with grant copies (the guest's data pages
//! are never mapped). A request that fails validation or I/O is answered
//! with an error status; a frontend that breaks the ring indices is
//! disconnected (backend Closing).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use xen_rt::gnttab::{self, GrantTable, MappedGrant};
use xen_rt::hypercall::{DomId, EvtchnPort, GrantRef};
use xen_rt::mem::ForeignSpace;
use xen_rt::mem::virtio_hal::XenHal;
use xen_rt::println;
use xen_rt::proto::blkif::{self, Request, RequestKind, Transfer, Vbd};
use xen_rt::proto::ring::shared::{BackRingIndices, FinalCheck};
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
    ring: Option<MappedGrant>,
    pub port: EvtchnPort,
    back: BackRingIndices,
    /// `rsp_prod` as we last published it (we are its only writer).
    published: u32,
    pub requests: u64,
    pub errors: u64,
}

/// Backend state shared between the xenbus callbacks and the data path.
pub struct Blkback {
    /// Sectors of the disk.
    pub capacity: u64,
    pub conns: Vec<Conn>,
    /// Event channels of disconnected devices, to close.
    pub to_close: Vec<EvtchnPort>,
    bounce: Vec<u8>,
}

impl Blkback {
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            conns: Vec::new(),
            to_close: Vec::new(),
            bounce: vec![0u8; 4096],
        }
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
        let params = store
            .read_string(&format!("{be}/params"))
            .unwrap_or_default();
        let ro = read_only(store, dev);
        println!(
            "blkback: probe {be}: frontend dom{} params {:?} mode {} sectors {}",
            dev.frontend_id.0,
            params,
            if ro { "r" } else { "w" },
            self.state.capacity
        );
        let info = if ro { 4u32 } else { 0 }; // VDISK_READONLY
        for (k, v) in [
            ("feature-flush-cache", String::from("1")),
            ("sectors", format!("{}", self.state.capacity)),
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
        let ring_ref = store
            .read_u32(&format!("{fe}/ring-ref"))
            .map_err(|e| format!("reading {fe}/ring-ref: {e:?}"))?;
        let port = store
            .read_u32(&format!("{fe}/event-channel"))
            .map_err(|e| format!("reading {fe}/event-channel: {e:?}"))?;
        match store.read_string(&format!("{fe}/protocol")) {
            Ok(p) if p == NATIVE_PROTOCOL => {}
            Err(XsOpError::Store(_)) => {} // absent: native
            Ok(p) => return Err(format!("unsupported protocol {p:?}")),
            Err(e) => return Err(format!("reading {fe}/protocol: {e:?}")),
        }
        if let Ok(order) = store.read_u32(&format!("{fe}/ring-page-order"))
            && order != 0
        {
            return Err(format!("ring-page-order {order} not offered"));
        }
        let vbd = Vbd {
            sectors: self.state.capacity,
            read_only: read_only(store, dev),
            flush: true,
        };
        let back = BackRingIndices::new(blkif::RING_SIZE).map_err(|e| format!("{e:?}"))?;
        let ring = self
            .grants
            .map(self.foreign, dev.frontend_id, GrantRef(ring_ref), false)
            .map_err(|e| format!("mapping ring-ref {ring_ref}: {e:?}"))?;
        let local = match store
            .events()
            .bind_interdomain(dev.frontend_id, EvtchnPort(port))
        {
            Ok(p) => p,
            Err(e) => {
                let _ = self.grants.unmap(self.foreign, ring);
                return Err(format!("binding event channel {port}: {e:?}"));
            }
        };
        println!(
            "blkback: connect {}: ring-ref {ring_ref} event-channel {port} (local {}) protocol {NATIVE_PROTOCOL} {}",
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
            ring: Some(ring),
            port: local,
            back,
            published: 0,
            requests: 0,
            errors: 0,
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
        println!(
            "blkback: disconnect {}: {} requests, {} errors",
            dev.backend_path, c.requests, c.errors
        );
        if let Some(ring) = c.ring.take()
            && let Err((_ring, e)) = self.grants.unmap(self.foreign, ring)
        {
            println!("blkback: unmapping the ring failed: {e:?}");
        }
        self.state.to_close.push(c.port);
    }
}

/// Serves every pending request of `c`. `Ok(true)` if the frontend must be
/// notified; `Err` (a reason) if it broke the ring protocol.
pub fn serve(c: &mut Conn, disk: &mut Disk, bounce: &mut [u8]) -> Result<bool, String> {
    let Some(ring) = c.ring.as_ref() else {
        return Ok(false);
    };
    let Some(page) = ring.page() else {
        return Ok(false);
    };
    let mem = |e| format!("ring page access: {e:?}");
    let mut notify = false;
    loop {
        // Copy the producer index once; Acquire orders the entry reads.
        let req_prod = page.load_u32(REQ_PROD, Ordering::Acquire).map_err(mem)?;
        let mut answered = false;
        while let Some(slot) = c
            .back
            .consume_request(req_prod)
            .map_err(|e| format!("ring index violation: {e:?}"))?
        {
            let mut entry = [0u8; blkif::REQUEST_SIZE];
            page.copy_out(blkif::slot_offset(slot), &mut entry)
                .map_err(mem)?;
            c.requests += 1;
            let (id, op, status) = match Request::parse(&entry, &c.vbd) {
                Ok(req) => {
                    let st = match perform(c.frontend, &req, disk, bounce) {
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
            page.copy_in(
                blkif::slot_offset(rslot),
                &blkif::encode_response(id, op, status),
            )
            .map_err(mem)?;
            answered = true;
        }
        if answered {
            // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: entries, then rsp_prod
            // (Release), full barrier, then the frontend's rsp_event.
            let push_old = c.published;
            let new_prod = c.back.rsp_prod_pvt;
            page.store_u32(RSP_PROD, new_prod, Ordering::Release)
                .map_err(mem)?;
            fence(Ordering::SeqCst);
            let rsp_event = page.load_u32(RSP_EVENT, Ordering::Acquire).map_err(mem)?;
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
                page.store_u32(REQ_EVENT, event, Ordering::Release)
                    .map_err(mem)?;
                fence(Ordering::SeqCst);
                let again = page.load_u32(REQ_PROD, Ordering::Acquire).map_err(mem)?;
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

fn perform(peer: DomId, req: &Request, disk: &mut Disk, bounce: &mut [u8]) -> Result<(), String> {
    match req.kind {
        RequestKind::Read(t) => transfer(peer, &t, disk, bounce, false),
        RequestKind::Write(t) => transfer(peer, &t, disk, bounce, true),
        RequestKind::Flush => disk.flush().map_err(|e| format!("flush: {e}")),
    }
}

fn transfer(
    peer: DomId,
    t: &Transfer,
    disk: &mut Disk,
    bounce: &mut [u8],
    write: bool,
) -> Result<(), String> {
    let mut sector = t.sector;
    for seg in t.segments() {
        let len = usize::from(seg.len());
        let buf = bounce
            .get_mut(..len)
            .ok_or_else(|| format!("segment of {len} bytes"))?;
        let block = usize::try_from(sector).map_err(|_| format!("sector {sector}"))?;
        let gref = GrantRef(seg.gref);
        if write {
            gnttab::copy_from(peer, gref, seg.offset(), buf)
                .map_err(|e| format!("grant copy from gref {}: {e:?}", seg.gref))?;
            disk.write_blocks(block, buf)
                .map_err(|e| format!("disk write at {sector}: {e}"))?;
        } else {
            disk.read_blocks(block, buf)
                .map_err(|e| format!("disk read at {sector}: {e}"))?;
            gnttab::copy_to(peer, gref, seg.offset(), buf)
                .map_err(|e| format!("grant copy to gref {}: {e:?}", seg.gref))?;
        }
        sector += u64::from(seg.sectors());
    }
    Ok(())
}

/// Splits the state for the data path: the connections and the bounce
/// buffer.
pub fn parts(b: &mut Blkback) -> (&mut Vec<Conn>, &mut [u8]) {
    (&mut b.conns, &mut b.bounce)
}
