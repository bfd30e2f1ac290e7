//! netback: serves Xen netif (`io/netif.h`) to xen-netfront guests and
//! switches the frames between the vifs.
//!
//! xenbus: xen-rt's [`BackendBus`](xen_rt::xenbus::BackendBus) for type
//! `vif` with `ConnectPolicy::OnConnected` (netfront goes from
//! Initialising straight to Connected). Probe writes the feature nodes and
//! `hotplug-status` (no hotplug script runs for a unikernel backend).
//! Connect reads the frontend's features and, per queue, `tx-ring-ref`,
//! `rx-ring-ref` and `event-channel` or `event-channel-tx`/`-rx`, maps the
//! two one-page rings and binds the event channels. `request-rx-copy` and
//! `feature-rx-notify` are required, as Linux's netback requires them.
//!
//! Transmit (guest to switch): each packet's slots are copied out of the
//! ring once and validated by `xen_proto::netif::parse_tx_packet`, its
//! fragments are grant-copied into a local buffer, every slot is answered,
//! and the frame goes to the switch. A packet the validation drops is
//! answered with `NETIF_RSP_ERROR`; a fatal one (or a broken ring index)
//! disconnects the frontend (`xenbus: closing ...`, with the reason).
//!
//! Receive (switch to guest): the frame is laid out by
//! `xen_proto::netif::RxLayout` (page-sized chunks, a GSO extra-info slot,
//! checksum flags passed through) and grant-copied into the pages of the
//! frontend's rx requests. A frame the frontend cannot take (GSO type or
//! size it did not announce) is dropped and counted. When the ring has too
//! few requests, frames wait in a bounded backlog (then are dropped) and
//! `req_event` asks the frontend for an event. Rx always uses queue 0.
//!
//! Rate limit: a vif whose backend directory has `rate = "<bytes>,<usec>"`
//! (xl's vif option `rate=`) gets Linux netback's credit scheme per queue
//! (`xen_proto::netif::credit`): a packet larger than the credit left stays
//! on the tx ring, unconsumed, until the next window; the event loop wakes
//! for it. The limit is read at connect time, as Linux does.
//!
//! Counters per vif are seen from the switch port, as Linux's vif devices
//! count: `rx` is what the guest sent, `tx` what the switch gave it.
//!
//! Capture (boot argument `capture=N`, off by default): the first N tx
//! packets of each kind (protocol × slot shape) per vif are printed as
//! `netcap` hex lines, the seeds of the `netif_tx` fuzz target (see
//! [`capture_tx`] and `cargo xtask fuzz --import-capture`).

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use core::fmt::Write;
use xen_rt::events::Events;
use xen_rt::gnttab::{self, CopyBuffer, CopySegment, GrantTable, MappedGrant};
use xen_rt::hypercall::{DomId, EvtchnPort, GrantRef};
use xen_rt::mem::{ForeignSpace, SharedPage};
use xen_rt::println;

use crate::mgmt::Mgmt;
use xen_rt::proto::netif::credit::{Credit, Rate, Verdict};
use xen_rt::proto::netif::switch::{self, Forward, MacTable, PortId};
use xen_rt::proto::netif::{
    self, Gso, RX_REQUEST_SIZE, RX_RING_SIZE, RxFeatures, RxLayout, RxRequest, RxResponse, RxSlot,
    TX_RING_SIZE, TX_SLOT_SIZE, TxError, TxParse, TxResponses, status,
};
use xen_rt::proto::ring::shared::BackRingIndices;
use xen_rt::xenbus::{BackendDriver, Device};
use xen_rt::xenstore::{Store, XsOpError};

/// `multi-queue-max-queues`.
pub const MAX_QUEUES: u32 = 4;
/// Frames a vif's rx backlog holds, and their bytes; bytes of all
/// backlogs together (the heap is a few MiB: a guest that posts no rx
/// buffers must not exhaust it).
const BACKLOG_FRAMES: usize = 512;
const BACKLOG_BYTES: usize = 2 << 20;
const BACKLOG_TOTAL: usize = 4 << 20;
/// Slots of the largest frame on an rx ring: 17 pages and a GSO extra.
const RX_MAX_SLOTS: usize = netif::MAX_RX_FRAME.div_ceil(netif::PAGE_SIZE as usize) + 1;
/// Packets taken from one tx queue per round (fairness between vifs).
const TX_BUDGET: u32 = 64;
/// Rejected packets logged per vif (the rest are only counted).
const LOG_LIMIT: u64 = 8;
/// Capture: packet kinds (5 protocols × 3 slot shapes), and the bytes of
/// one captured packet (the 7-byte `netif_tx` input header and up to 24
/// slots; longer packets are not captured).
const CAPTURE_KINDS: usize = 15;
const CAPTURE_BYTES: usize = 7 + 24 * TX_SLOT_SIZE;

/// Offsets in the shared ring header (`io/ring.h`).
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;

type Res<T> = Result<T, String>;

fn mem_err(e: xen_rt::mem::MemError) -> String {
    format!("ring page access: {e:?}")
}

fn idx_err(e: xen_rt::proto::ring::shared::SharedRingError) -> String {
    format!("ring index violation: {e:?}")
}

/// The back end of one shared ring.
struct Ring {
    map: Option<MappedGrant>,
    back: BackRingIndices,
    /// `rsp_prod` as we last published it (we are its only writer).
    published: u32,
}

impl Ring {
    fn page(&self) -> Res<&SharedPage> {
        self.map
            .as_ref()
            .and_then(MappedGrant::page)
            .ok_or_else(|| String::from("ring not mapped"))
    }

    /// The frontend's `req_prod`, copied once (Acquire orders the entry
    /// reads after it).
    fn req_prod(&self) -> Res<u32> {
        self.page()?
            .load_u32(REQ_PROD, Ordering::Acquire)
            .map_err(mem_err)
    }

    /// Unconsumed requests, and the `req_prod` they were computed from.
    fn available(&self) -> Res<(u32, u32)> {
        let prod = self.req_prod()?;
        Ok((self.back.unconsumed_requests(prod).map_err(idx_err)?, prod))
    }

    /// Asks for an event once `req_prod` passes `event`, then re-reads
    /// (the final check of `RING_FINAL_CHECK_FOR_REQUESTS`). Returns the
    /// unconsumed requests after the re-read.
    fn arm(&mut self, event: u32) -> Res<u32> {
        self.page()?
            .store_u32(REQ_EVENT, event, Ordering::Release)
            .map_err(mem_err)?;
        fence(Ordering::SeqCst);
        Ok(self.available()?.0)
    }

    /// Consumes one request (of the `prod` published) and copies it out.
    fn consume(&mut self, prod: u32, offset: fn(u32) -> usize, out: &mut [u8]) -> Res<()> {
        let slot = self
            .back
            .consume_request(prod)
            .map_err(idx_err)?
            .ok_or_else(|| String::from("request vanished"))?;
        self.page()?.copy_out(offset(slot), out).map_err(mem_err)
    }

    /// Writes the response to the oldest unanswered request.
    fn respond(&mut self, offset: fn(u32) -> usize, bytes: &[u8]) -> Res<()> {
        let slot = self.back.next_response_slot().map_err(idx_err)?;
        self.page()?.copy_in(offset(slot), bytes).map_err(mem_err)
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: responses, then `rsp_prod`
    /// (Release), full barrier, then the frontend's `rsp_event`. True if
    /// the frontend wants an event.
    fn push(&mut self) -> Res<bool> {
        if self.back.rsp_prod_pvt == self.published {
            return Ok(false);
        }
        let page = self.page()?;
        let new = self.back.rsp_prod_pvt;
        page.store_u32(RSP_PROD, new, Ordering::Release)
            .map_err(mem_err)?;
        fence(Ordering::SeqCst);
        let event = page
            .load_u32(RSP_EVENT, Ordering::Acquire)
            .map_err(mem_err)?;
        let push = self.back.push_responses(self.published, event);
        self.published = push.new_prod;
        Ok(push.notify)
    }
}

/// A frame waiting for rx requests.
struct Pending {
    data: Vec<u8>,
    layout: RxLayout,
}

/// One queue of a vif: a tx and an rx ring with their event channels
/// (the same port twice without split event channels).
struct Queue {
    tx: Ring,
    rx: Ring,
    tx_port: EvtchnPort,
    rx_port: EvtchnPort,
    backlog: VecDeque<Pending>,
    backlog_bytes: usize,
    /// Packets the guest sent on this queue.
    sent: u64,
    /// The vif's `rate` limit, if the toolstack set one (per queue, as
    /// Linux netback keeps it).
    credit: Option<Credit>,
    /// Out of credit: the tx ring is left alone until this time (µs since
    /// creation).
    throttled_until: Option<u64>,
    /// How often this queue ran out of credit.
    throttled: u64,
}

/// Per-vif counters, seen from the switch port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Frames the guest sent that reached the switch, and their bytes.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Packets refused by validation or whose grant copy failed.
    pub rx_errors: u64,
    /// Frames from the guest the switch dropped (runt, filtered, no other
    /// port).
    pub rx_dropped: u64,
    /// Frames given to the guest, and their bytes.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames whose copy into the guest failed (answered with an error).
    pub tx_errors: u64,
    /// Frames for the guest dropped (backlog full, or not acceptable).
    pub tx_dropped: u64,
}

impl Stats {
    /// rx packets, bytes, errors, drops, then tx the same (the order of
    /// every counters line).
    fn counts(&self) -> [u64; 8] {
        [
            self.rx_packets,
            self.rx_bytes,
            self.rx_errors,
            self.rx_dropped,
            self.tx_packets,
            self.tx_bytes,
            self.tx_errors,
            self.tx_dropped,
        ]
    }
}

/// One connected vif: a switch port.
pub struct Vif {
    pub frontend: DomId,
    pub devid: u32,
    port: PortId,
    features: RxFeatures,
    queues: Vec<Queue>,
    pub stats: Stats,
    /// Set when the frontend broke the protocol; the vif is then closed.
    broken: Option<String>,
    logged: u64,
    /// Counters as last printed.
    printed: Stats,
    /// Tx packets captured so far, by kind (see [`capture_tx`]).
    captured: [u16; CAPTURE_KINDS],
    /// Frames from this vif that went to the management host and to no
    /// vif, and frames the management host gave this vif (both also in
    /// `stats`): what the scenario's counter checks need to account for
    /// every frame.
    mgmt_only: u64,
    from_mgmt: u64,
}

impl Vif {
    fn note(&mut self, what: core::fmt::Arguments<'_>) {
        if self.logged < LOG_LIMIT {
            self.logged += 1;
            println!("netback: vif {}/{}: {what}", self.frontend.0, self.devid);
        }
    }

    fn fail(&mut self, reason: String) {
        self.broken.get_or_insert(reason);
    }
}

/// Metadata of the frame in the transmit buffer.
#[derive(Debug, Clone, Copy)]
struct Meta {
    len: usize,
    csum_blank: bool,
    data_validated: bool,
    gso: Option<Gso>,
}

/// The backend: its vifs, the switch's MAC table and the frame buffer.
pub struct Netback {
    pub vifs: Vec<Vif>,
    table: MacTable,
    /// Event channels of disconnected vifs, to close.
    pub to_close: Vec<EvtchnPort>,
    next_port: PortId,
    buf: Vec<u8>,
    /// Bytes in all backlogs.
    backlog: usize,
    /// Boot argument `capture=N`: tx packets of each kind to print per vif.
    pub capture: u16,
    /// The management host (boot argument `mgmt=`), switch port
    /// [`MGMT_PORT`].
    pub mgmt: Option<Mgmt>,
}

/// The switch port of the management host (vif ports count up from 1).
pub const MGMT_PORT: PortId = PortId::MAX;

/// What one step on a tx ring produced.
enum Tx {
    /// A frame is in the buffer.
    Frame(Meta),
    /// Slots were consumed without a frame (dropped packet, multicast
    /// filter request).
    Consumed,
    /// Nothing to do until the frontend sends an event.
    Idle,
}

impl Default for Netback {
    fn default() -> Self {
        Self::new()
    }
}

impl Netback {
    pub fn new() -> Self {
        Self {
            vifs: Vec::new(),
            table: MacTable::new(),
            to_close: Vec::new(),
            next_port: 1,
            buf: vec![0u8; usize::from(netif::MAX_TX_SIZE)],
            backlog: 0,
            capture: 0,
            mgmt: None,
        }
    }

    /// The event channels to wait on.
    pub fn ports(&self, out: &mut Vec<EvtchnPort>) {
        for q in self.vifs.iter().flat_map(|v| v.queues.iter()) {
            out.push(q.tx_port);
            if q.rx_port != q.tx_port {
                out.push(q.rx_port);
            }
        }
    }

    /// `(frontend, devid, reason)` of the vifs that broke the protocol.
    pub fn take_failed(&mut self) -> Vec<(DomId, u32, String)> {
        self.vifs
            .iter_mut()
            .filter_map(|v| v.broken.take().map(|r| (v.frontend, v.devid, r)))
            .collect()
    }

    /// Prints the counters of each vif that changed since the last time;
    /// true if it printed any.
    pub fn print_stats(&mut self) -> bool {
        let mut any = false;
        for v in self.vifs.iter_mut() {
            if v.stats != v.printed {
                print_stats(v, "stats");
                v.printed = v.stats;
                any = true;
            }
        }
        any
    }

    /// One round of the data path: rx backlogs, then up to [`TX_BUDGET`]
    /// packets of every tx queue, then the responses are published and the
    /// frontends notified. Returns true if a tx queue has more packets.
    /// The earliest time (µs since creation) a queue held back by its
    /// `rate` limit may transmit again.
    pub fn next_credit(&self) -> Option<u64> {
        self.vifs
            .iter()
            .flat_map(|v| v.queues.iter())
            .filter_map(|q| q.throttled_until)
            .min()
    }

    pub fn round(&mut self, events: &Events) -> bool {
        // One clock read per round (under qemu TCG each read is costly).
        let clock = xen_rt::time::Instant::now().since_creation();
        let now = clock.as_millis() as u64;
        let now_us = clock.as_micros() as u64;
        let Self {
            vifs,
            table,
            buf,
            backlog,
            capture,
            mgmt,
            ..
        } = self;
        for v in vifs.iter_mut() {
            if let Err(reason) = drain_backlog(v, backlog) {
                v.fail(reason);
            }
        }
        let mut busy = false;
        for i in 0..vifs.len() {
            let nq = vifs.get(i).map_or(0, |v| v.queues.len());
            for qi in 0..nq {
                let mut n = 0;
                while let Some(v) = vifs.get_mut(i) {
                    if v.broken.is_some() {
                        break;
                    }
                    if n == TX_BUDGET {
                        busy = true;
                        break;
                    }
                    n += 1;
                    match tx_next(v, qi, buf, *capture, now_us) {
                        Ok(Tx::Frame(meta)) => {
                            let frame = buf.get(..meta.len).unwrap_or(&[]);
                            let ports = Ports {
                                vifs: &mut *vifs,
                                mgmt: mgmt.as_mut(),
                            };
                            forward(ports, Some(i), frame, meta, table, now, backlog);
                        }
                        Ok(Tx::Consumed) => {}
                        Ok(Tx::Idle) => break,
                        Err(reason) => v.fail(reason),
                    }
                }
            }
        }
        // The management host: what it received, then what it sends.
        if let Some(m) = mgmt.as_mut() {
            m.poll(now, || counters_text(vifs));
            while let Some(frame) = m.transmit() {
                let meta = Meta {
                    len: frame.len(),
                    csum_blank: false,
                    data_validated: false,
                    gso: None,
                };
                let ports = Ports {
                    vifs: &mut *vifs,
                    mgmt: None,
                };
                forward(ports, None, &frame, meta, table, now, backlog);
            }
        }
        for v in vifs.iter_mut() {
            for q in v.queues.iter_mut() {
                match (q.tx.push(), q.rx.push()) {
                    (Ok(t), Ok(r)) => {
                        if t {
                            let _ = events.notify(q.tx_port);
                        }
                        if r {
                            let _ = events.notify(q.rx_port);
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        v.broken.get_or_insert(e);
                    }
                }
            }
        }
        busy
    }
}

fn print_stats(v: &Vif, what: &str) {
    let s = &v.stats;
    // Short enough for one Xen console line.
    let [rp, rb, re, rd, tp, tb, te, td] = s.counts();
    println!(
        "netback: vif {}/{} {what}: rx {rp} pkts {rb} B {re} err {rd} drop, tx {tp} pkts {tb} B {te} err {td} drop",
        v.frontend.0, v.devid
    );
}

/// Answers every slot of a packet with `st` (extra-info slots with
/// `NETIF_RSP_NULL`).
fn answer_tx(ring: &mut Ring, prod: u32, r: &TxResponses, st: i16) -> Res<()> {
    for k in 0..r.slots() {
        // The slots were copied and parsed already: consume, answer.
        ring.consume(prod, netif::tx_slot_offset, &mut [])?;
        let rsp = r.response(k, st).unwrap_or_default();
        ring.respond(netif::tx_slot_offset, &rsp)?;
    }
    Ok(())
}

/// Takes the next packet from tx queue `qi` of `v` into `buf`.
fn tx_next(v: &mut Vif, qi: usize, buf: &mut [u8], capture: u16, now_us: u64) -> Res<Tx> {
    let peer = v.frontend;
    let Some(q) = v.queues.get_mut(qi) else {
        return Ok(Tx::Idle);
    };
    match q.throttled_until {
        Some(t) if now_us < t => return Ok(Tx::Idle),
        _ => q.throttled_until = None,
    }
    let ring = &mut q.tx;
    let (mut avail, mut prod) = ring.available()?;
    if avail == 0 {
        if ring.arm(ring.back.req_cons.wrapping_add(1))? == 0 {
            return Ok(Tx::Idle);
        }
        (avail, prod) = ring.available()?;
    }
    // With `capture=N`, the slots are also kept as copied, after the
    // `netif_tx` input header `[first u32][slots u16][flags u8]`.
    let capturing = capture > 0 && v.captured.iter().any(|c| *c < capture);
    let first = ring.back.req_cons;
    let mut cap = [0u8; CAPTURE_BYTES];
    let mut cap_len = 7;
    let parsed = {
        let page = ring.page()?;
        let mut fetch = |i: u32| {
            let mut s = [0u8; TX_SLOT_SIZE];
            page.copy_out(netif::tx_slot_offset(i), &mut s).ok()?;
            if capturing && let Some(dst) = cap.get_mut(cap_len..cap_len + TX_SLOT_SIZE) {
                dst.copy_from_slice(&s);
                cap_len += TX_SLOT_SIZE;
            }
            Some(s)
        };
        netif::parse_tx_packet(&mut fetch, first, avail)
    };
    match parsed {
        Ok(TxParse::Packet(p)) => {
            // Over the `rate` limit: the packet stays on the ring (nothing
            // consumed) until the credit's next window.
            if let Some(c) = q.credit.as_mut()
                && let Verdict::WaitUntil(t) = c.spend(u64::from(p.size), now_us)
            {
                q.throttled_until = Some(t);
                q.throttled += 1;
                return Ok(Tx::Idle);
            }
            // All fragments in one batch of grant copies.
            let mut segs = [CopySegment::default(); netif::MAX_TX_FRAGS];
            let mut at = 0usize;
            for (seg, f) in segs.iter_mut().zip(p.fragments()) {
                *seg = CopySegment {
                    peer,
                    gref: GrantRef(f.gref),
                    offset: f.offset,
                    at,
                    len: f.len,
                };
                at += usize::from(f.len);
            }
            let segs = segs.get(..p.fragments().len()).unwrap_or(&[]);
            let mut ok = [false; netif::MAX_TX_FRAGS];
            let copied = match gnttab::copy_batch(segs, CopyBuffer::Fill(buf), &mut ok) {
                Ok(()) => match ok.iter().take(segs.len()).position(|o| !o) {
                    None => Ok(()),
                    Some(k) => Err(format!("grant copy of fragment {k} failed")),
                },
                Err(e) => Err(format!("grant copy: {e:?}")),
            };
            let st = if copied.is_ok() {
                status::OKAY
            } else {
                status::ERROR
            };
            answer_tx(ring, prod, &p.responses, st)?;
            let slots = p.slots() as usize;
            if capturing && copied.is_ok() && cap_len == 7 + slots * TX_SLOT_SIZE {
                let shape = if p.responses.extra_slots() > 0 {
                    2
                } else {
                    usize::from(slots > 1)
                };
                let frame = buf.get(..at).unwrap_or(&[]);
                let cap = cap.get_mut(..cap_len).unwrap_or(&mut []);
                let what = (first, slots as u16, shape);
                let who = (v.frontend, v.devid);
                capture_tx(&mut v.captured, who, capture, what, cap, frame);
            }
            match copied {
                Ok(()) => {
                    q.sent += 1;
                    v.stats.rx_packets += 1;
                    v.stats.rx_bytes += at as u64;
                    Ok(Tx::Frame(Meta {
                        len: at,
                        csum_blank: p.csum_blank,
                        data_validated: p.data_validated,
                        gso: p.gso,
                    }))
                }
                Err(why) => {
                    v.stats.rx_errors += 1;
                    v.note(format_args!("tx packet: {why}"));
                    Ok(Tx::Consumed)
                }
            }
        }
        Ok(TxParse::Mcast(m)) => {
            // Every group frame is flooded, so any filter is satisfied.
            answer_tx(ring, prod, &m.responses, status::OKAY)?;
            Ok(Tx::Consumed)
        }
        Ok(TxParse::Incomplete { .. }) => {
            // netfront publishes whole packets; wait for the rest anyway.
            if ring.arm(prod.wrapping_add(1))? == avail {
                return Ok(Tx::Idle);
            }
            Ok(Tx::Consumed)
        }
        Err(TxError::Drop { reason, responses }) => {
            answer_tx(ring, prod, &responses, status::ERROR)?;
            v.stats.rx_errors += 1;
            v.note(format_args!("tx packet dropped: {reason:?}"));
            Ok(Tx::Consumed)
        }
        Err(TxError::Fatal(reason)) => Err(format!("tx ring: {reason:?}")),
    }
}

/// Boot argument `capture=N`: prints a tx packet of vif `fe/devid` as
/// `netcap <fe>/<devid> <n> <proto> <offset> <hex>` lines (40 bytes each)
/// if fewer than N of its kind were printed for this vif (`captured`).
/// The kind is the protocol (`arp`, `icmp` (v4 or v6), `tcp`, `udp`,
/// `other`, from the copied frame) and the slot `shape` (0: one slot, 1:
/// several, 2: with extra-info slots). The bytes are the `netif_tx` fuzz
/// input for this packet alone: `first` (its ring index) as u32, `slots`
/// as u16, a zero flags byte, then the ring entries as copied (`cap`
/// holds them after its first 7 bytes).
fn capture_tx(
    captured: &mut [u16; CAPTURE_KINDS],
    (fe, devid): (DomId, u32),
    n: u16,
    (first, slots, shape): (u32, u16, usize),
    cap: &mut [u8],
    frame: &[u8],
) {
    let byte = |i: usize| frame.get(i).copied().unwrap_or(0);
    // Ethertype, and the IPv4 protocol or IPv6 next header.
    let (proto, name) = match ([byte(12), byte(13)], byte(23), byte(20)) {
        ([8, 6], _, _) => (0, "arp"),
        ([8, 0], 1, _) | ([0x86, 0xdd], _, 58) => (1, "icmp"),
        ([8, 0], 6, _) | ([0x86, 0xdd], _, 6) => (2, "tcp"),
        ([8, 0], 17, _) | ([0x86, 0xdd], _, 17) => (3, "udp"),
        _ => (4, "other"),
    };
    let total: u32 = captured.iter().map(|c| u32::from(*c)).sum();
    let Some(count) = captured.get_mut(proto * 3 + shape) else {
        return;
    };
    if *count >= n {
        return;
    }
    *count += 1;
    let mut header = [0u8; 7];
    header[..4].copy_from_slice(&first.to_le_bytes());
    header[4..6].copy_from_slice(&slots.to_le_bytes());
    if let Some(h) = cap.get_mut(..7) {
        h.copy_from_slice(&header);
    }
    xen_rt::console::print_hex_lines(
        format_args!("netcap {}/{devid} {total} {name}", fe.0),
        0,
        cap,
    );
}

/// Hands a frame from vif `from` to the switch and on to its ports.
fn forward(
    ports: Ports<'_>,
    from: Option<usize>,
    frame: &[u8],
    meta: Meta,
    t: &mut MacTable,
    now: u64,
    backlog: &mut usize,
) {
    let Ports { vifs, mut mgmt } = ports;
    // `from`: the ingress vif; `None`: the management host.
    let ingress = match from {
        Some(i) => match vifs.get(i) {
            Some(v) => v.port,
            None => return,
        },
        None => MGMT_PORT,
    };
    let mut to_vifs = 0u64;
    let mut to_mgmt = false;
    match t.forward(frame, ingress, now) {
        Forward::Unicast(MGMT_PORT) => {
            if let Some(m) = mgmt.as_mut() {
                m.receive(frame);
                to_mgmt = true;
            }
        }
        Forward::Unicast(p) => {
            if let Some(v) = vifs.iter_mut().find(|v| v.port == p) {
                deliver(v, frame, meta, backlog);
                v.from_mgmt += u64::from(from.is_none());
                to_vifs += 1;
            }
        }
        Forward::Flood => {
            for (j, v) in vifs.iter_mut().enumerate() {
                if Some(j) != from {
                    deliver(v, frame, meta, backlog);
                    v.from_mgmt += u64::from(from.is_none());
                    to_vifs += 1;
                }
            }
            if let Some(m) = mgmt.as_mut() {
                m.receive(frame);
                to_mgmt = true;
            }
        }
        Forward::Drop(_) => {}
    }
    if let Some(v) = from.and_then(|i| vifs.get_mut(i)) {
        match (to_vifs, to_mgmt) {
            (0, true) => v.mgmt_only += 1,
            (0, false) => v.stats.rx_dropped += 1,
            _ => {}
        }
    }
}

/// The switch's ports besides the ingress: the vifs and the management
/// host (absent when it is the ingress, or not configured).
struct Ports<'a> {
    vifs: &'a mut [Vif],
    mgmt: Option<&'a mut Mgmt>,
}

/// The management host's counters answer: one line per vif and the
/// number of connected frontends.
fn counters_text(vifs: &[Vif]) -> String {
    let mut text = String::new();
    for v in vifs {
        let [rp, rb, re, rd, tp, tb, te, td] = v.stats.counts();
        let _ = writeln!(
            text,
            "vif {}/{} rx {rp} {rb} {re} {rd} tx {tp} {tb} {te} {td}",
            v.frontend.0, v.devid
        );
    }
    let _ = writeln!(text, "frontends {}", vifs.len());
    text
}

/// Gives a frame to vif `v`: straight into its rx ring, or into the
/// backlog if the ring lacks requests (or older frames wait).
fn deliver(v: &mut Vif, frame: &[u8], meta: Meta, backlog: &mut usize) {
    if v.broken.is_some() {
        v.stats.tx_dropped += 1;
        return;
    }
    let ipv6 = switch::Header::parse(frame).is_some_and(|h| h.ethertype == 0x86dd);
    let layout = match RxLayout::new(
        meta.len,
        meta.csum_blank,
        meta.data_validated,
        meta.gso,
        ipv6,
        &v.features,
    ) {
        Ok(l) => l,
        Err(why) => {
            v.stats.tx_dropped += 1;
            v.note(format_args!("frame not deliverable: {why:?}"));
            return;
        }
    };
    let peer = v.frontend;
    let Some(q) = v.queues.first_mut() else {
        v.stats.tx_dropped += 1;
        return;
    };
    if q.backlog.is_empty() {
        match rx_room(q, layout.slots()) {
            Ok(true) => {
                match rx_put(q, peer, frame, &layout) {
                    Ok(true) => {
                        v.stats.tx_packets += 1;
                        v.stats.tx_bytes += frame.len() as u64;
                    }
                    Ok(false) => v.stats.tx_errors += 1,
                    Err(reason) => v.fail(reason),
                }
                return;
            }
            Ok(false) => {}
            Err(reason) => {
                v.fail(reason);
                return;
            }
        }
    }
    if q.backlog.len() >= BACKLOG_FRAMES
        || q.backlog_bytes + frame.len() > BACKLOG_BYTES
        || *backlog + frame.len() > BACKLOG_TOTAL
    {
        v.stats.tx_dropped += 1;
        return;
    }
    q.backlog_bytes += frame.len();
    *backlog += frame.len();
    q.backlog.push_back(Pending {
        data: frame.to_vec(),
        layout,
    });
}

/// Whether `q`'s rx ring holds `needed` requests; if not, asks the
/// frontend for an event when it has posted them.
fn rx_room(q: &mut Queue, needed: u32) -> Res<bool> {
    let (avail, _) = q.rx.available()?;
    if avail >= needed {
        return Ok(true);
    }
    let event = q.rx.back.req_cons.wrapping_add(needed);
    Ok(q.rx.arm(event)? >= needed)
}

/// Moves as much of `v`'s backlog into its rx ring as it has room for.
fn drain_backlog(v: &mut Vif, backlog: &mut usize) -> Res<()> {
    let peer = v.frontend;
    for q in v.queues.iter_mut() {
        while let Some(slots) = q.backlog.front().map(|p| p.layout.slots()) {
            if !rx_room(q, slots)? {
                break;
            }
            let Some(p) = q.backlog.pop_front() else {
                break;
            };
            q.backlog_bytes = q.backlog_bytes.saturating_sub(p.data.len());
            *backlog = backlog.saturating_sub(p.data.len());
            if rx_put(q, peer, &p.data, &p.layout)? {
                v.stats.tx_packets += 1;
                v.stats.tx_bytes += p.data.len() as u64;
            } else {
                v.stats.tx_errors += 1;
            }
        }
    }
    Ok(())
}

/// Puts a frame on `q`'s rx ring (the caller checked there is room):
/// consumes its requests, grant-copies every data chunk in one batch, then
/// answers. `Ok(false)` if a copy failed (that slot is answered with an
/// error and the frame is lost; the ring stays in step).
fn rx_put(q: &mut Queue, peer: DomId, frame: &[u8], layout: &RxLayout) -> Res<bool> {
    let (_, prod) = q.rx.available()?;
    let n = layout.slots() as usize;
    if n > RX_MAX_SLOTS {
        return Err(String::from("rx layout"));
    }
    let mut reqs = [RxRequest::default(); RX_MAX_SLOTS];
    let mut segs = [CopySegment::default(); RX_MAX_SLOTS];
    let mut nsegs = 0;
    for (k, req) in reqs.iter_mut().enumerate().take(n) {
        let mut b = [0u8; RX_REQUEST_SIZE];
        q.rx.consume(prod, netif::rx_slot_offset, &mut b)?;
        *req = RxRequest::parse(&b);
        if let Some(RxSlot::Data { start, len, .. }) = layout.slot(k as u32)
            && let Some(seg) = segs.get_mut(nsegs)
        {
            *seg = CopySegment {
                peer,
                gref: GrantRef(req.gref),
                offset: 0,
                at: start,
                len,
            };
            nsegs += 1;
        }
    }
    let mut ok = [false; RX_MAX_SLOTS];
    let segs = segs.get(..nsegs).unwrap_or(&[]);
    if gnttab::copy_batch(segs, CopyBuffer::Drain(frame), &mut ok).is_err() {
        ok = [false; RX_MAX_SLOTS];
    }
    let mut copied = ok.iter();
    let mut all = true;
    for (k, req) in reqs.iter().enumerate().take(n) {
        let rsp = match layout.slot(k as u32) {
            Some(RxSlot::Data { len, flags, .. }) => {
                let done = copied.next().copied().unwrap_or(false);
                all &= done;
                RxResponse {
                    id: req.id,
                    offset: 0,
                    flags,
                    status: if done { len as i16 } else { status::ERROR },
                }
                .encode()
            }
            Some(RxSlot::Extra(bytes)) => bytes,
            None => return Err(String::from("rx layout")),
        };
        q.rx.respond(netif::rx_slot_offset, &rsp)?;
    }
    Ok(all)
}

/// The [`BackendDriver`] view of [`Netback`] for one round of xenstore
/// events (it borrows the grant table and foreign space meanwhile).
pub struct Driver<'a> {
    pub grants: &'a mut GrantTable,
    pub foreign: &'a mut ForeignSpace,
    pub nb: &'a mut Netback,
}

/// A frontend node as a number; absent means `default`.
fn read_num(store: &mut Store<'_>, path: &str, default: u32) -> Res<u32> {
    match store.read_u32(path) {
        Ok(v) => Ok(v),
        Err(XsOpError::Store(_)) => Ok(default),
        Err(e) => Err(format!("reading {path}: {e:?}")),
    }
}

fn read_flag(store: &mut Store<'_>, path: &str) -> Res<bool> {
    Ok(read_num(store, path, 0)? == 1)
}

impl Driver<'_> {
    /// Maps a ring and attaches at the `rsp_prod` it shows (0 on a fresh
    /// ring); its `req_prod` must be within reach.
    fn map_ring(&mut self, peer: DomId, gref: u32, size: u32) -> Res<Ring> {
        let map = self
            .grants
            .map(self.foreign, peer, GrantRef(gref), false)
            .map_err(|e| format!("mapping ring-ref {gref}: {e:?}"))?;
        let start = map
            .page()
            .map(|p| p.load_u32(RSP_PROD, Ordering::Acquire))
            .unwrap_or(Ok(0))
            .unwrap_or(0);
        let mut ring = Ring {
            map: Some(map),
            back: BackRingIndices::attach(size, start).map_err(idx_err)?,
            published: start,
        };
        if let Err(e) = ring.available() {
            self.release_ring(&mut ring);
            return Err(e);
        }
        Ok(ring)
    }

    fn release_ring(&mut self, ring: &mut Ring) {
        if let Some(map) = ring.map.take()
            && let Err((_map, e)) = self.grants.unmap(self.foreign, map)
        {
            println!("netback: unmapping a ring failed: {e:?}");
        }
    }

    fn release_queue(&mut self, q: &mut Queue, events: Option<&mut Events>) {
        self.release_ring(&mut q.tx);
        self.release_ring(&mut q.rx);
        let ports = [q.tx_port, q.rx_port];
        let ports = if q.rx_port == q.tx_port {
            &ports[..1]
        } else {
            &ports[..]
        };
        match events {
            Some(ev) => {
                for p in ports {
                    let _ = ev.close(*p);
                }
            }
            None => self.nb.to_close.extend_from_slice(ports),
        }
    }

    /// Connects queue `path` (the frontend directory or its `queue-N`).
    fn connect_queue(&mut self, store: &mut Store<'_>, dev: &Device, path: &str) -> Res<Queue> {
        let peer = dev.frontend_id;
        let tx_ref = store
            .read_u32(&format!("{path}/tx-ring-ref"))
            .map_err(|e| format!("reading {path}/tx-ring-ref: {e:?}"))?;
        let rx_ref = store
            .read_u32(&format!("{path}/rx-ring-ref"))
            .map_err(|e| format!("reading {path}/rx-ring-ref: {e:?}"))?;
        let (tx_ev, rx_ev) = match (
            read_num(store, &format!("{path}/event-channel-tx"), u32::MAX)?,
            read_num(store, &format!("{path}/event-channel-rx"), u32::MAX)?,
        ) {
            (u32::MAX, _) | (_, u32::MAX) => {
                let ev = store
                    .read_u32(&format!("{path}/event-channel"))
                    .map_err(|e| format!("reading {path}/event-channel: {e:?}"))?;
                (ev, ev)
            }
            split => split,
        };
        let mut tx = self.map_ring(peer, tx_ref, TX_RING_SIZE)?;
        let mut rx = match self.map_ring(peer, rx_ref, RX_RING_SIZE) {
            Ok(r) => r,
            Err(e) => {
                self.release_ring(&mut tx);
                return Err(e);
            }
        };
        let bind = |store: &mut Store<'_>, p: u32| {
            store
                .events()
                .bind_interdomain(peer, EvtchnPort(p))
                .map_err(|e| format!("binding event channel {p}: {e:?}"))
        };
        let tx_port = match bind(store, tx_ev) {
            Ok(p) => p,
            Err(e) => {
                self.release_ring(&mut tx);
                self.release_ring(&mut rx);
                return Err(e);
            }
        };
        let rx_port = if rx_ev == tx_ev {
            tx_port
        } else {
            match bind(store, rx_ev) {
                Ok(p) => p,
                Err(e) => {
                    self.release_ring(&mut tx);
                    self.release_ring(&mut rx);
                    let _ = store.events().close(tx_port);
                    return Err(e);
                }
            }
        };
        println!(
            "netback: connect {path}: tx-ring-ref {tx_ref} rx-ring-ref {rx_ref} event-channel {tx_ev}/{rx_ev}"
        );
        Ok(Queue {
            tx,
            rx,
            tx_port,
            rx_port,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            sent: 0,
            credit: None,
            throttled_until: None,
            throttled: 0,
        })
    }
}

impl BackendDriver for Driver<'_> {
    fn probe(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), XsOpError> {
        let be = &dev.backend_path;
        println!(
            "netback: probe {be}: frontend dom{} devid {}",
            dev.frontend_id.0, dev.devid
        );
        let max_queues = format!("{MAX_QUEUES}");
        for (k, v) in [
            ("feature-sg", "1"),
            ("feature-gso-tcpv4", "1"),
            ("feature-gso-tcpv6", "1"),
            ("feature-ipv6-csum-offload", "1"),
            ("feature-rx-copy", "1"),
            ("feature-rx-flip", "0"),
            ("feature-split-event-channels", "1"),
            ("multi-queue-max-queues", max_queues.as_str()),
            ("hotplug-status", "connected"),
        ] {
            store.write(&format!("{be}/{k}"), v.as_bytes())?;
        }
        Ok(())
    }

    fn connect(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), String> {
        let fe = dev.frontend_path.clone();
        if !read_flag(store, &format!("{fe}/request-rx-copy"))? {
            return Err(String::from(
                "request-rx-copy is not 1: only the copying rx path is offered",
            ));
        }
        if !read_flag(store, &format!("{fe}/feature-rx-notify"))? {
            return Err(String::from("feature-rx-notify is mandatory"));
        }
        let features = RxFeatures {
            sg: read_flag(store, &format!("{fe}/feature-sg"))?,
            gso_tcpv4: read_flag(store, &format!("{fe}/feature-gso-tcpv4"))?,
            gso_tcpv6: read_flag(store, &format!("{fe}/feature-gso-tcpv6"))?,
            csum: !read_flag(store, &format!("{fe}/feature-no-csum-offload"))?,
            ipv6_csum: read_flag(store, &format!("{fe}/feature-ipv6-csum-offload"))?,
        };
        let nq = read_num(store, &format!("{fe}/multi-queue-num-queues"), 1)?;
        if nq == 0 || nq > MAX_QUEUES {
            return Err(format!(
                "multi-queue-num-queues {nq} (1 to {MAX_QUEUES} offered)"
            ));
        }
        let mut queues: Vec<Queue> = Vec::new();
        for i in 0..nq {
            let path = if nq == 1 {
                fe.clone()
            } else {
                format!("{fe}/queue-{i}")
            };
            match self.connect_queue(store, dev, &path) {
                Ok(q) => queues.push(q),
                Err(e) => {
                    for mut q in queues {
                        self.release_queue(&mut q, Some(store.events()));
                    }
                    return Err(e);
                }
            }
        }
        let mac = store
            .read_string(&format!("{}/mac", dev.backend_path))
            .unwrap_or_default();
        // The `rate` limit (`<bytes>,<usec>`), as Linux netback reads it at
        // connect time; an unreadable value means no limit, as there.
        let rate_node = store
            .read_string(&format!("{}/rate", dev.backend_path))
            .ok();
        let rate = rate_node.as_deref().and_then(Rate::parse);
        if let (Some(node), None) = (&rate_node, rate) {
            println!(
                "netback: vif {}/{}: rate {node:?} not understood; not limited",
                dev.frontend_id.0, dev.devid
            );
        }
        let now_us = xen_rt::time::Instant::now().since_creation().as_micros() as u64;
        for q in queues.iter_mut() {
            q.credit = rate.map(|r| Credit::new(r, now_us));
        }
        let port = self.nb.next_port;
        self.nb.next_port = self.nb.next_port.wrapping_add(1);
        println!(
            "netback: vif {}/{} connected: mac {mac} {nq} queue(s) sg {} gso {}/{} csum {}/{} port {port} rate {}",
            dev.frontend_id.0,
            dev.devid,
            u8::from(features.sg),
            u8::from(features.gso_tcpv4),
            u8::from(features.gso_tcpv6),
            u8::from(features.csum),
            u8::from(features.ipv6_csum),
            rate.map_or(String::from("unlimited"), |r| format!(
                "{} bytes per {} us",
                r.bytes, r.usec
            )),
        );
        self.nb.vifs.push(Vif {
            frontend: dev.frontend_id,
            devid: dev.devid,
            port,
            features,
            queues,
            stats: Stats::default(),
            broken: None,
            logged: 0,
            printed: Stats::default(),
            captured: [0; CAPTURE_KINDS],
            mgmt_only: 0,
            from_mgmt: 0,
        });
        Ok(())
    }

    fn disconnect(&mut self, dev: &Device) {
        let Some(i) = self
            .nb
            .vifs
            .iter()
            .position(|v| v.frontend == dev.frontend_id && v.devid == dev.devid)
        else {
            return;
        };
        let mut v = self.nb.vifs.swap_remove(i);
        // Frames still waiting for the guest are lost.
        for q in &v.queues {
            v.stats.tx_dropped += q.backlog.len() as u64;
            self.nb.backlog = self.nb.backlog.saturating_sub(q.backlog_bytes);
        }
        print_stats(&v, "closed");
        if self.nb.mgmt.is_some() {
            println!(
                "netback: vif {}/{} mgmt: only-to-mgmt {} from-mgmt {}",
                v.frontend.0, v.devid, v.mgmt_only, v.from_mgmt
            );
        }
        if v.queues.iter().any(|q| q.credit.is_some()) {
            let waits: u64 = v.queues.iter().map(|q| q.throttled).sum();
            println!(
                "netback: vif {}/{} rate limit: tx waited for credit {waits} times",
                v.frontend.0, v.devid
            );
        }
        if v.queues.len() > 1 {
            let sent: Vec<u64> = v.queues.iter().map(|q| q.sent).collect();
            println!(
                "netback: vif {}/{} packets per tx queue: {sent:?}",
                v.frontend.0, v.devid
            );
        }
        self.nb.table.forget_port(v.port);
        for mut q in core::mem::take(&mut v.queues) {
            self.release_queue(&mut q, None);
        }
    }
}
