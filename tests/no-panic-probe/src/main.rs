//! # no-panic-probe: a reachable panic on a data path is a link error
//!
//! Hubris-style: every entry point below feeds opaque input
//! ([`core::hint::black_box`]) to one of the request/ring/parse paths that
//! handle peer-controlled data, and the `#[panic_handler]` calls a function
//! that is declared but never defined ([`link`]). Built for
//! `aarch64-unknown-none` in release with LTO (the images' profile), the
//! binary links only if the optimizer proved that no covered path can
//! reach a panic. `cargo xtask test` builds it, and builds it again with
//! `--features canary` (one deliberate panic) to check that the link does
//! fail when it should.
//!
//! Covered (keep `xtask/src/gates.rs` `NO_PANIC_PATHS` in sync):
//! * `xen_proto::xenstore`: `Assembler::feed`, `ClientCore::receive` and
//!   `pop_watch_event`, every reply parser;
//! * `xen_proto::ring::bytes` and `xen_proto::ring::shared` arithmetic;
//! * `xen_proto::blkif`: `Request::parse`, the request view, responses;
//! * `xen_proto::netif`: `parse_tx_packet` over a whole peer-written tx
//!   ring (fragments, extras, responses), `RxRequest::parse`,
//!   `RxResponse`, the extra-info codec and the slot offsets; the
//!   switch (`MacTable::forward`, `Header::parse`) and `RxLayout`;
//! * `xen_proto::console`: `Backend::attach` and `Backend::poll` over a
//!   peer-written console page (index checks, line assembly, echo,
//!   snapshots), `Backend::flush`;
//! * `vchan`: `Client::connect` over a peer-written header, then
//!   `Vchan::{try_read, try_write, data_ready, buffer_space, peer_state}`.
//!
//! The platform doubles (shared memory, event channels, xenstore) are
//! themselves panic-free, so a panic found here is in the covered crates.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod link;

use core::hint::black_box;
use core::sync::atomic::{AtomicU8, Ordering};
use core::time::Duration;

use vchan::{
    Client, DomId, Errno, EventChannel, EventChannels, GrantMap, GrantRef, Perms, Port,
    SharedMemory, Store, UnmapNotify,
};
use xen_proto::ring::{bytes, shared};
use xen_proto::xenstore::{
    self, Assembler, ClientCore, Header, PAYLOAD_MAX, Request, TX_NONE, WatchEvent, XsError,
};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    link::xen_no_panic_probe_panic_reachable()
}

/// Peer-controlled bytes: the optimizer knows nothing about them.
static INPUT: [AtomicU8; 8192] = [const { AtomicU8::new(0) }; 8192];

fn input() -> &'static [AtomicU8] {
    black_box(&INPUT[..])
}

/// Copies `n` opaque bytes into `buf` and returns an opaque-length prefix.
fn opaque_bytes(buf: &mut [u8]) -> &[u8] {
    for (d, s) in buf.iter_mut().zip(input()) {
        *d = s.load(Ordering::Relaxed);
    }
    let n = black_box(buf.len());
    buf.get(..n).unwrap_or(&[])
}

fn xenstore_paths() {
    let mut raw = [0u8; 4096];
    let data = opaque_bytes(&mut raw);
    let cut = black_box(1usize).max(1);

    let mut asm = Assembler::new();
    for chunk in data.chunks(cut) {
        let mut inp = chunk;
        while let Ok(Some(m)) = asm.feed(&mut inp) {
            let p = m.payload;
            black_box(xenstore::parse_directory(p).map(|l| l.iter().count()).ok());
            black_box(xenstore::parse_perms(p).map(|i| i.count()).ok());
            black_box(WatchEvent::parse(p).ok().map(|e| e.path.len()));
            black_box(xenstore::parse_transaction_id(p).ok());
            black_box(xenstore::parse_string(p).ok().map(str::len));
            black_box(XsError::from_payload(p));
            black_box(xenstore::parse_decimal(p));
        }
    }
    black_box(Header::parse_slice(data).ok());

    let mut client: ClientCore<4, 256> = ClientCore::new();
    let _ = client.send(TX_NONE, &Request::Read { path: "a" });
    let mut ev = [0u8; PAYLOAD_MAX];
    for chunk in data.chunks(cut) {
        let mut inp = chunk;
        while !inp.is_empty() {
            match client.receive(&mut inp) {
                Ok(r) => {
                    black_box(r.map(|r| r.result.map(<[u8]>::len)));
                }
                Err(e) if e.is_fatal() => return,
                Err(_) => {}
            }
        }
        while let Some(e) = client.pop_watch_event(&mut ev) {
            black_box(e.token.len());
        }
    }
}

fn ring_bytes_paths() {
    let mut ring = [0u8; 1024];
    let (cons, prod, size) = black_box((0u32, 0u32, 1024u32));
    black_box(bytes::readable(cons, prod, size).map(|s| s.ranges()).ok());
    black_box(bytes::writable(cons, prod, size).map(|s| s.ranges()).ok());
    let mut dst = [0u8; 300];
    let n = black_box(dst.len());
    let dst = dst.get_mut(..n).unwrap_or(&mut []);
    black_box(bytes::read_from(black_box(&ring[..]), cons, prod, dst).ok());
    let mut raw = [0u8; 300];
    let src = opaque_bytes(&mut raw);
    let ring = black_box(&mut ring[..]);
    black_box(bytes::write_to(ring, cons, prod, src).ok());
}

fn ring_shared_paths() {
    let (size, start, p, e) = black_box((32u32, 0u32, 0u32, 0u32));
    black_box(shared::ring_size(
        black_box(4096),
        black_box(112),
        black_box(112),
    ));
    black_box(shared::notify_needed(start, p, e));
    if let Ok(mut b) = shared::BackRingIndices::attach(size, start) {
        black_box(b.unconsumed_requests(p).ok());
        black_box(b.consume_request(p).ok());
        black_box(b.request_cons_overflow());
        black_box(b.unanswered());
        black_box(b.next_response_slot().ok());
        black_box(b.push_responses(start, e));
        black_box(b.final_check_for_requests(p).ok());
    }
    if let Ok(mut f) = shared::FrontRingIndices::new(size) {
        black_box(f.free_requests());
        black_box(f.is_full());
        black_box(f.next_request_slot().ok());
        black_box(f.push_requests(start, e));
        black_box(f.unconsumed_responses(p).ok());
        black_box(f.consume_response(p).ok());
        black_box(f.final_check_for_responses(p).ok());
    }
}

fn blkif_paths() {
    use xen_proto::blkif;
    let mut raw = [0u8; blkif::REQUEST_SIZE];
    let src = opaque_bytes(&mut raw);
    let mut entry = [0u8; blkif::REQUEST_SIZE];
    if let Some(dst) = entry.get_mut(..src.len()) {
        dst.copy_from_slice(src);
    }
    let vbd = blkif::Vbd {
        sectors: black_box(2048),
        read_only: black_box(false),
        flush: black_box(true),
        discard: black_box(true),
        max_indirect_segments: black_box(32),
    };
    let v = blkif::RequestView::new(&entry);
    black_box(v.segment(black_box(3)));
    black_box(v.indirect_gref(black_box(3)));
    match blkif::Request::parse(&entry, &vbd) {
        Ok(r) => {
            if let blkif::RequestKind::Read(t) | blkif::RequestKind::Write(t) = r.kind {
                for s in t.segments() {
                    black_box((s.offset(), s.len(), s.sectors()));
                }
            }
            if let blkif::RequestKind::Indirect(ind) = r.kind {
                // The segment descriptors come from peer-written pages too.
                let mut page = [0u8; 512];
                let seg_bytes = opaque_bytes(&mut page);
                for p in 0..ind.pages() {
                    black_box(ind.segment_bytes_in_page(p));
                }
                if let Ok(t) = ind.transfer(seg_bytes, &vbd) {
                    for s in t.segments() {
                        black_box((s.gref, s.offset(), s.len()));
                    }
                }
            }
            black_box(blkif::encode_response(r.id, r.operation, 0));
        }
        Err(rej) => {
            black_box(blkif::encode_response(rej.id, rej.operation, rej.status()));
        }
    }
    black_box(blkif::slot_offset(black_box(77)));
}

fn netif_paths() {
    use xen_proto::netif::{self, TxParse, TxSlot};
    // A whole tx ring of peer-written entries.
    let mut raw = [0u8; netif::TX_RING_SIZE as usize * netif::TX_SLOT_SIZE];
    let ring = opaque_bytes(&mut raw);
    let mut fetch = |i: u32| -> Option<TxSlot> {
        let off = (i % netif::TX_RING_SIZE) as usize * netif::TX_SLOT_SIZE;
        ring.get(off..)?.get(..netif::TX_SLOT_SIZE)?.try_into().ok()
    };
    let (mut cons, mut avail) = black_box((0u32, 0u32));
    while avail > 0 {
        let slots = match netif::parse_tx_packet(&mut fetch, cons, avail) {
            Ok(TxParse::Packet(p)) => {
                for f in p.fragments() {
                    black_box((f.gref, f.offset, f.len));
                }
                black_box((p.gso, p.hash, p.csum_blank));
                for r in p.responses.iter(netif::status::OKAY) {
                    black_box(r);
                }
                p.slots()
            }
            Ok(TxParse::Mcast(m)) => {
                black_box(m.responses.response(black_box(1), netif::status::OKAY));
                m.responses.slots()
            }
            Ok(TxParse::Incomplete { needed }) => {
                black_box(needed);
                break;
            }
            Err(netif::TxError::Drop { reason, responses }) => {
                black_box(reason);
                for r in responses.iter(netif::status::ERROR) {
                    black_box(r);
                }
                responses.slots()
            }
            Err(netif::TxError::Fatal(r)) => {
                black_box(r);
                break;
            }
        };
        cons = cons.wrapping_add(slots);
        avail = avail.saturating_sub(slots);
        black_box(netif::tx_slot_offset(cons));
    }
    let mut rx = [0u8; netif::RX_REQUEST_SIZE];
    let src = opaque_bytes(&mut rx);
    let mut entry = [0u8; netif::RX_REQUEST_SIZE];
    if let Some(dst) = entry.get_mut(..src.len()) {
        dst.copy_from_slice(src);
    }
    let req = netif::RxRequest::parse(&entry);
    let (off, len) = black_box((0u16, 1514u16));
    if let Some(rsp) = netif::RxResponse::data(req.id, off, len, netif::rxf::CSUM_BLANK) {
        black_box(rsp.encode());
    }
    if let Ok(e) = netif::ExtraInfo::parse(&entry) {
        black_box(netif::encode_rx_extra(&e));
    }
    black_box(netif::rx_slot_offset(black_box(300)));
    netif_switch_paths();
}

/// The switch and the rx layout over a peer-written frame (net-domain).
fn netif_switch_paths() {
    use xen_proto::netif::switch::{Header, MacTable};
    use xen_proto::netif::{self, Gso, RxFeatures, RxLayout, RxSlot};
    let mut raw = [0u8; 64];
    let frame = opaque_bytes(&mut raw);
    let mut table = MacTable::new();
    let (port, now) = black_box((3u32, 1000u64));
    black_box(table.forward(frame, port, now));
    black_box(table.forward(frame, black_box(4), now));
    black_box(Header::parse(frame));
    table.forget_port(black_box(4));
    let (len, csum, valid, ipv6) = black_box((65_000usize, true, false, false));
    let gso = Gso::new(black_box(1448), black_box(1), 0).ok();
    let features = black_box(RxFeatures {
        sg: true,
        gso_tcpv4: true,
        gso_tcpv6: false,
        csum: true,
        ipv6_csum: false,
    });
    if let Ok(l) = RxLayout::new(len, csum, valid, gso, ipv6, &features) {
        for k in 0..=l.slots() {
            match l.slot(k) {
                Some(RxSlot::Data { start, len, flags }) => {
                    black_box(netif::RxResponse::data(1, 0, len, flags));
                    black_box(start);
                }
                Some(RxSlot::Extra(b)) => {
                    black_box(b);
                }
                None => {}
            }
        }
    }
}

/// Shared pages the "peer" writes: opaque contents.
static PAGES: [AtomicU8; 5 * 4096] = [const { AtomicU8::new(0) }; 5 * 4096];

/// A mapping of `PAGES[start..start + len]`; every access is bounds-checked
/// without panicking (out of range reads 0, writes are dropped).
struct Mem {
    bytes: &'static [AtomicU8],
}

impl Mem {
    fn at(&self, off: usize) -> Option<&AtomicU8> {
        self.bytes.get(off)
    }
    fn load_le<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut v = [0u8; N];
        for (i, b) in v.iter_mut().enumerate() {
            *b = off
                .checked_add(i)
                .and_then(|o| self.at(o))
                .map_or(0, |a| a.load(Ordering::Relaxed));
        }
        v
    }
    fn store_le(&self, off: usize, v: &[u8]) {
        for (i, b) in v.iter().enumerate() {
            if let Some(a) = off.checked_add(i).and_then(|o| self.at(o)) {
                a.store(*b, Ordering::Relaxed);
            }
        }
    }
}

impl SharedMemory for Mem {
    fn len(&self) -> usize {
        self.bytes.len()
    }
    fn load_u8(&self, off: usize, _: Ordering) -> u8 {
        self.load_le::<1>(off)[0]
    }
    fn store_u8(&self, off: usize, val: u8, _: Ordering) {
        self.store_le(off, &[val]);
    }
    fn fetch_or_u8(&self, off: usize, val: u8, o: Ordering) -> u8 {
        self.at(off).map_or(0, |a| a.fetch_or(val, o))
    }
    fn fetch_and_u8(&self, off: usize, val: u8, o: Ordering) -> u8 {
        self.at(off).map_or(0, |a| a.fetch_and(val, o))
    }
    fn load_u16(&self, off: usize, _: Ordering) -> u16 {
        u16::from_le_bytes(self.load_le(off))
    }
    fn store_u16(&self, off: usize, val: u16, _: Ordering) {
        self.store_le(off, &val.to_le_bytes());
    }
    fn load_u32(&self, off: usize, _: Ordering) -> u32 {
        u32::from_le_bytes(self.load_le(off))
    }
    fn store_u32(&self, off: usize, val: u32, _: Ordering) {
        self.store_le(off, &val.to_le_bytes());
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = self.load_le::<1>(off.wrapping_add(i))[0];
        }
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        self.store_le(off, src);
    }
}

struct Maps;

impl GrantMap for Maps {
    type Mem = Mem;
    fn map(
        &mut self,
        _peer: DomId,
        refs: &[GrantRef],
        _writable: bool,
        _notify: Option<UnmapNotify>,
    ) -> Result<Mem, Errno> {
        let first = refs.first().copied().unwrap_or(0) as usize;
        let bytes = first
            .checked_mul(4096)
            .and_then(|s| Some(s..s.checked_add(refs.len().checked_mul(4096)?)?))
            .and_then(|r| PAGES.get(r))
            .ok_or(Errno(22))?;
        Ok(Mem {
            bytes: black_box(bytes),
        })
    }
    fn unmap(&mut self, mem: Mem) {
        black_box(mem.bytes.len());
    }
}

struct Evt;

impl EventChannel for Evt {
    fn port(&self) -> Port {
        black_box(7)
    }
    fn notify(&mut self) -> Result<(), Errno> {
        if black_box(false) {
            Err(Errno(5))
        } else {
            Ok(())
        }
    }
    fn wait(&mut self, _timeout: Option<Duration>) -> Result<bool, Errno> {
        Ok(black_box(true))
    }
}

struct Evts;

impl EventChannels for Evts {
    type Channel = Evt;
    fn alloc_unbound(&mut self, _remote: DomId) -> Result<(Evt, Port), Errno> {
        Ok((Evt, black_box(3)))
    }
    fn bind_interdomain(&mut self, _remote: DomId, _port: Port) -> Result<Evt, Errno> {
        Ok(Evt)
    }
    fn close(&mut self, c: Evt) {
        black_box(c.port());
    }
}

/// A xenstore whose node values are opaque bytes.
struct Xs;

impl Store for Xs {
    fn write_nodes(&mut self, _: &str, _: &[(&str, &str)], _: Perms) -> Result<(), Errno> {
        Ok(())
    }
    fn read_node(&mut self, _: &str, _: &str, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
        let n = opaque_bytes(buf).len();
        Ok(black_box(Some(n)))
    }
    fn remove(&mut self, _: &str) -> Result<(), Errno> {
        Ok(())
    }
    fn wait_change(&mut self, _: &str, _: Option<Duration>) -> Result<bool, Errno> {
        Ok(black_box(false))
    }
}

fn vchan_paths() {
    let client = Client {
        peer: black_box(0),
        path: "/local/domain/0/data/vchan/1/0",
    };
    let Ok(mut ch) = client.connect(&mut Maps, &mut Evts, &mut Xs) else {
        return;
    };
    let mut buf = [0u8; 2048];
    let n = black_box(buf.len());
    let rd = buf.get_mut(..n).unwrap_or(&mut []);
    black_box(ch.try_read(rd).ok());
    black_box(ch.data_ready().ok());
    black_box(ch.buffer_space().ok());
    black_box(ch.peer_state().ok());
    let mut raw = [0u8; 2048];
    let src = opaque_bytes(&mut raw);
    black_box(ch.try_write(src).ok());
    black_box(ch.read_capacity());
    black_box(ch.write_capacity());
}

#[cfg(feature = "canary")]
fn canary() {
    let v = [1u8, 2, 3];
    black_box(v[black_box(7usize)]);
}

fn console_paths() {
    use xen_proto::console::{Backend, Event, MemPage};
    let mut page = MemPage::default();
    for (d, s) in page.bytes.iter_mut().zip(input()) {
        *d = s.load(Ordering::Relaxed);
    }
    let Ok(mut b) = Backend::attach(&mut page, black_box(true)) else {
        return;
    };
    for _ in 0..black_box(2) {
        for (d, s) in page.bytes.iter_mut().zip(input()) {
            *d = s.load(Ordering::Relaxed);
        }
        let r = b.poll(&mut page, black_box(true), &mut |e| match e {
            Event::Line(l) => {
                black_box((l.text.len(), l.continued, l.complete));
            }
            Event::State(s) => {
                let mut rec = [0u8; 4096];
                black_box(s.encode(&mut rec));
            }
        });
        black_box(r.ok().map(|p| p.notify()));
    }
    b.flush(&mut |l| {
        black_box(l.text.len());
    });
    black_box(b.stats());
}

/// The roots: `#[used]` keeps them (and everything they reach) through
/// LTO and the linker's garbage collection.
#[used]
static ENTRIES: &[fn()] = &[
    xenstore_paths,
    ring_bytes_paths,
    ring_shared_paths,
    blkif_paths,
    netif_paths,
    console_paths,
    vchan_paths,
    #[cfg(feature = "canary")]
    canary,
];
