//! Fuzz drivers for every parser of peer-controlled data in this crate
//! (feature `fuzzing`; never part of a domain image). Each takes arbitrary
//! bytes and panics only when an invariant breaks, so the same function
//! serves cargo-fuzz (`fuzz/fuzz_targets/<name>.rs`) and the host smoke
//! test (`tests/fuzz_corpus.rs`, which replays `fuzz/corpus/<name>/` and
//! thousands of mutated inputs in every `cargo xtask test`).

use crate::console;
use crate::ring::{bytes, shared};
use crate::xenstore::{
    self, Assembler, ClientCore, HEADER_LEN, Header, MsgType, PAYLOAD_MAX, Request, TX_NONE,
    WatchEvent, XsError,
};

/// Reads little pieces of the input, yielding zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

fn every_reply_parser(p: &[u8]) {
    let _ = xenstore::parse_directory(p).map(|l| l.iter().count());
    let _ = xenstore::parse_perms(p).map(|i| i.count());
    let _ = WatchEvent::parse(p);
    let _ = xenstore::parse_transaction_id(p);
    let _ = xenstore::parse_string(p);
    let _ = xenstore::parse_read_str(p);
    let _ = xenstore::parse_ok(p);
    let _ = XsError::from_payload(p);
    let _ = xenstore::parse_decimal(p);
}

/// Target `xenstore_assembler`: the first byte is a chunk size, the rest a
/// raw response-ring byte stream, fed through the `Assembler` (every
/// complete message through every reply parser) and through a
/// `ClientCore` with outstanding requests.
pub fn xenstore_assembler(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).max(1);
    let _ = Header::parse_slice(stream);
    let mut asm = Assembler::new();
    for chunk in stream.chunks(cut) {
        let mut input = chunk;
        loop {
            match asm.feed(&mut input) {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= PAYLOAD_MAX);
                    every_reply_parser(m.payload);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.is_fatal());
                    break;
                }
            }
        }
    }
    let mut client: ClientCore<4, 256> = ClientCore::new();
    for i in 0..4 {
        let path = if i % 2 == 0 { "a" } else { "/b" };
        let _ = client.send(TX_NONE, &Request::Read { path });
    }
    let mut buf = [0u8; PAYLOAD_MAX];
    for chunk in stream.chunks(cut) {
        let mut input = chunk;
        while !input.is_empty() {
            let before = input.len();
            match client.receive(&mut input) {
                Ok(_) => {}
                Err(e) if e.is_fatal() => return,
                Err(_) => {}
            }
            assert!(input.len() <= before);
            if input.len() == before {
                break;
            }
        }
        while client.pop_watch_event(&mut buf).is_some() {}
    }
}

/// Target `xenstore_client`: structured replies and watch events for a
/// client with real outstanding requests. Input: a request mix, then
/// records `[type][id selector][tx][len lo][len hi][flags] payload`, each
/// turned into a wire message whose header is right (or, per the flags,
/// deliberately wrong), delivered in input-chosen chunks.
pub fn xenstore_client(data: &[u8]) {
    let mut u = Input(data);
    let mut client: ClientCore<8, 1024> = ClientCore::new();
    let mut ids = [0u32; 8];
    let mut n_ids = 0;
    let mix = u.u8();
    for i in 0..(mix % 8 + 1) {
        let path = "/local/domain/1/data";
        let req = match (mix >> 3).wrapping_add(i) % 6 {
            0 => Request::Read { path },
            1 => Request::Directory { path },
            2 => Request::GetPerms { path },
            3 => Request::TransactionStart,
            4 => Request::Watch { path, token: "tok" },
            _ => Request::Write { path, value: b"v" },
        };
        if let Ok(id) = client.send(TX_NONE, &req)
            && let Some(slot) = ids.get_mut(n_ids)
        {
            *slot = id.0;
            n_ids += 1;
        }
    }
    let mut msg = [0u8; HEADER_LEN + PAYLOAD_MAX + 64];
    let mut ev = [0u8; PAYLOAD_MAX];
    while !u.0.is_empty() {
        let ty = match u.u8() % 8 {
            0 => MsgType::WatchEvent.to_u32(),
            1 => MsgType::Error.to_u32(),
            2 => MsgType::Read.to_u32(),
            3 => MsgType::Directory.to_u32(),
            4 => MsgType::TransactionStart.to_u32(),
            5 => MsgType::GetPerms.to_u32(),
            6 => MsgType::Write.to_u32(),
            _ => u32::from(u.u8()),
        };
        let sel = u.u8();
        let req_id = if n_ids > 0 && sel < 200 {
            ids.get(usize::from(sel) % n_ids).copied().unwrap_or(0)
        } else {
            u32::from(sel)
        };
        let tx_id = u32::from(u.u8());
        let want = usize::from(u.u16()) % (PAYLOAD_MAX + 32);
        let flags = u.u8();
        let payload = u.take(want);
        let len = if flags & 1 == 1 {
            u32::from(flags) << 8 // lie about the length
        } else {
            payload.len() as u32
        };
        let h = Header {
            msg_type: MsgType::from_u32(ty),
            req_id,
            tx_id,
            len,
        };
        let Some((hdr, body)) = msg.split_at_mut_checked(HEADER_LEN) else {
            return;
        };
        hdr.copy_from_slice(&h.to_bytes());
        let Some(dst) = body.get_mut(..payload.len()) else {
            return;
        };
        dst.copy_from_slice(payload);
        let total = HEADER_LEN + payload.len();
        let cut = usize::from(flags >> 1).max(1);
        for chunk in msg.get(..total).unwrap_or(&[]).chunks(cut) {
            let mut input = chunk;
            while !input.is_empty() {
                let before = input.len();
                match client.receive(&mut input) {
                    Ok(Some(r)) => {
                        if let Ok(p) = r.result {
                            every_reply_parser(p);
                        }
                    }
                    Ok(None) => {}
                    Err(e) if e.is_fatal() => return,
                    Err(_) => {}
                }
                if input.len() == before {
                    break;
                }
            }
        }
        while let Some(e) = client.pop_watch_event(&mut ev) {
            assert!(e.path.len() + e.token.len() < PAYLOAD_MAX);
        }
    }
}

/// Target `ring_bytes`: peer-chosen `cons`/`prod` (as read from a
/// xenstore or console interface page) and ring size, then reads and
/// writes through `read_from`/`write_to`. Invariants: indexes are
/// accepted iff `prod - cons <= size`; never more than asked or than the
/// ring holds is copied; bytes written come back unchanged.
pub fn ring_bytes(data: &[u8]) {
    let mut u = Input(data);
    let shift = u.u8() % 12;
    let size = 1u32 << shift;
    let mut cons = u.u32();
    let mut prod = u.u32();
    let mut ring = [0u8; 2048];
    let Some(ring) = ring.get_mut(..size as usize) else {
        return;
    };
    let bad_size = u.u32();
    if !bad_size.is_power_of_two() {
        assert_eq!(
            bytes::readable(cons, prod, bad_size),
            Err(bytes::RingError::BadSize(bad_size))
        );
    }
    while !u.0.is_empty() {
        let op = u.u8();
        let n = usize::from(u.u16()) % 4096;
        let used = prod.wrapping_sub(cons);
        let r = bytes::readable(cons, prod, size);
        let w = bytes::writable(cons, prod, size);
        assert_eq!(r.is_ok(), used <= size);
        assert_eq!(w.is_ok(), used <= size);
        if let (Ok(r), Ok(w)) = (r, w) {
            assert_eq!(r.total + w.total, size);
            assert!(r.contiguous <= r.total && w.contiguous <= w.total);
            assert!(r.offset + r.contiguous <= size && w.offset + w.contiguous <= size);
        }
        match op % 4 {
            0 => {
                let src = u.take(n);
                let before = prod;
                if let Ok(k) = bytes::write_to(ring, cons, prod, src) {
                    assert!(k <= src.len() && k as u32 <= size - used);
                    prod = prod.wrapping_add(k as u32);
                    // Read back what was just written.
                    let mut back = [0u8; 2048];
                    let mut c2 = before;
                    let mut got = 0;
                    while got < k {
                        let Some(dst) = back.get_mut(got..k) else {
                            break;
                        };
                        let Ok(m) = bytes::read_from(ring, c2, prod, dst) else {
                            break;
                        };
                        if m == 0 {
                            break;
                        }
                        got += m;
                        c2 = c2.wrapping_add(m as u32);
                    }
                    assert_eq!(back.get(..k), src.get(..k));
                }
            }
            1 => {
                let mut dst = [0u8; 4096];
                let dst = dst.get_mut(..n).unwrap_or(&mut []);
                if let Ok(k) = bytes::read_from(ring, cons, prod, dst) {
                    assert!(k <= n && k as u32 <= used);
                    cons = cons.wrapping_add(k as u32);
                }
            }
            // The peer moves its index arbitrarily.
            2 => prod = u.u32(),
            _ => cons = cons.wrapping_add(u32::from(u.u16())),
        }
    }
}

/// Target `ring_shared`: a back end and a front end driven by a hostile
/// peer's producer and event indexes (as read from a shared ring page).
/// Invariants: slots are always `< size`, counts never exceed `size`, and
/// the index arithmetic never accepts a peer index that claims more than
/// the ring holds.
pub fn ring_shared(data: &[u8]) {
    let mut u = Input(data);
    let size = 1u32 << (u.u8() % 9);
    let start = u.u32();
    let _ = shared::ring_size(
        usize::from(u.u16()),
        usize::from(u.u8()),
        usize::from(u.u8()),
    );
    let (Ok(mut back), Ok(mut front)) = (
        shared::BackRingIndices::attach(size, start),
        shared::FrontRingIndices::new(size),
    ) else {
        panic!("valid size rejected");
    };
    assert!(shared::BackRingIndices::new(size.wrapping_add(1).max(3)).is_err() || size == 1);
    while !u.0.is_empty() {
        let peer = u.u32();
        let ev = u.u32();
        match u.u8() % 8 {
            0 => {
                if let Ok(n) = back.unconsumed_requests(peer) {
                    assert!(n <= size);
                }
            }
            1 => {
                if let Ok(Some(slot)) = back.consume_request(peer) {
                    assert!(slot < size);
                    assert!(back.unanswered() <= size);
                }
            }
            2 => {
                if let Ok(slot) = back.next_response_slot() {
                    assert!(slot < size);
                }
                let p = back.push_responses(peer, ev);
                assert_eq!(p.new_prod, back.rsp_prod_pvt);
            }
            3 => {
                if let Ok(shared::FinalCheck::Work(n)) = back.final_check_for_requests(peer) {
                    assert!(n > 0 && n <= size);
                }
            }
            4 => {
                if let Ok(slot) = front.next_request_slot() {
                    assert!(slot < size);
                }
                assert!(front.free_requests() <= size);
                let _ = front.push_requests(peer, ev);
            }
            5 => {
                if let Ok(n) = front.unconsumed_responses(peer) {
                    assert!(n <= size);
                }
            }
            6 => {
                if let Ok(Some(slot)) = front.consume_response(peer) {
                    assert!(slot < size);
                }
                let _ = front.final_check_for_responses(peer);
            }
            _ => {
                let _ = shared::notify_needed(peer, ev, u.u32());
                let _ = back.request_cons_overflow();
                let _ = front.is_full();
            }
        }
    }
}

/// Hostile blkif ring entries: the first 10 bytes choose the vbd (sectors,
/// read-only, flush, discard, indirect limit), the rest are request entries
/// of 112 bytes each (short tails zero-padded); an accepted indirect
/// request takes its segment descriptors from the bytes that follow it.
/// Every accepted request must satisfy the invariants the backend relies
/// on.
pub fn blkif_request(data: &[u8]) {
    use crate::blkif::{self, Request, RequestKind};
    let mut u = Input(data);
    let sectors = u64::from(u.u32()) | (u64::from(u.u32()) << 32);
    let flags = u.u8();
    let indirect = u.u8();
    let vbd = blkif::Vbd {
        sectors,
        read_only: flags & 1 != 0,
        flush: flags & 2 != 0,
        discard: flags & 4 != 0,
        max_indirect_segments: u16::from(indirect),
    };
    let all = u.0;
    for (k, chunk) in all.chunks(blkif::REQUEST_SIZE).enumerate() {
        let rest = all.get((k + 1) * blkif::REQUEST_SIZE..).unwrap_or(&[]);
        let mut entry = [0u8; blkif::REQUEST_SIZE];
        if let Some(dst) = entry.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        let view = blkif::RequestView::new(&entry);
        for i in 0..12 {
            let _ = view.segment(i);
            let _ = view.indirect_gref(i);
        }
        let _ = (
            view.indirect_op(),
            view.indirect_nr_segments(),
            view.indirect_handle(),
        );
        let _ = view.discard_nr_sectors();
        match Request::parse(&entry, &vbd) {
            Ok(r) => {
                assert_eq!(r.id, view.id());
                match r.kind {
                    RequestKind::Read(t) | RequestKind::Write(t) => {
                        if matches!(r.kind, RequestKind::Write(_)) {
                            assert!(!vbd.read_only);
                        }
                        let segs = t.segments();
                        assert!(!segs.is_empty() && segs.len() <= blkif::MAX_SEGMENTS);
                        let mut total = 0u64;
                        for s in segs {
                            assert!(s.first_sect <= s.last_sect && s.last_sect < 8);
                            assert!(usize::from(s.offset()) + usize::from(s.len()) <= 4096);
                            total += u64::from(s.sectors());
                        }
                        assert_eq!(total, t.sectors);
                        assert!(
                            t.sector
                                .checked_add(t.sectors)
                                .is_some_and(|e| e <= sectors)
                        );
                    }
                    RequestKind::Flush => assert!(vbd.flush),
                    RequestKind::Discard { sector, sectors: n } => {
                        assert!(vbd.discard && !vbd.read_only);
                        assert!(sector.checked_add(n).is_some_and(|e| e <= sectors));
                    }
                    RequestKind::Indirect(ind) => {
                        assert!(ind.nr_segments > 0 && ind.nr_segments <= vbd.indirect_limit());
                        assert!(!(ind.write && vbd.read_only));
                        assert!(ind.pages() <= blkif::MAX_INDIRECT_PAGES);
                        let mut copied = 0usize;
                        for p in 0..ind.pages() {
                            copied += ind.segment_bytes_in_page(p);
                        }
                        assert_eq!(copied, usize::from(ind.nr_segments) * blkif::SEGMENT_SIZE);
                        if let Ok(t) = ind.transfer(rest, &vbd) {
                            assert_eq!(t.nr_segments, ind.nr_segments);
                            let mut total = 0u64;
                            for s in t.segments() {
                                assert!(s.first_sect <= s.last_sect && s.last_sect < 8);
                                total += u64::from(s.sectors());
                            }
                            assert_eq!(total, t.sectors);
                            assert!(
                                t.sector
                                    .checked_add(t.sectors)
                                    .is_some_and(|e| e <= sectors)
                            );
                        }
                    }
                }
            }
            Err(rej) => {
                assert_eq!(rej.id, view.id());
                assert!(rej.status() < 0);
                let resp = blkif::encode_response(rej.id, rej.operation, rej.status());
                assert_eq!(
                    blkif::decode_response(&resp),
                    (rej.id, rej.operation, rej.status())
                );
            }
        }
    }
}

/// Target `netif_tx`: a hostile netfront's tx ring. Input: `[first u32]
/// [available u16] [flags u8]`, then 12-byte ring entries written from
/// ring index `first` on (short tails zero-padded). A backend loop parses
/// packet after packet with `netif::parse_tx_packet` until the published
/// requests run out, it must wait, or the frontend is fatal. Flags bit 7:
/// the fetch fails at index `first + (flags & 0x3f)`. Invariants: each
/// slot is fetched at most once per parse, in order, and only among the
/// published ones; a packet consumes exactly the slots it fetched; its
/// fragments stay within their pages, are non-empty and add up to its
/// size; responses cover every consumed slot. The remaining 8-byte chunks
/// also go through the rx request parser and the extra-info codec.
pub fn netif_tx(data: &[u8]) {
    use crate::netif::{
        self, ExtraInfo, RxRequest, TX_RING_SIZE, TX_SLOT_SIZE, TxError, TxParse, TxSlot,
    };
    let mut u = Input(data);
    let first = u.u32();
    let mut available = u32::from(u.u16()) % (TX_RING_SIZE + 2);
    let flags = u.u8();
    let fail_at = (flags & 0x80 != 0).then(|| first.wrapping_add(u32::from(flags & 0x3f)));
    let body = u.0;
    let mut ring = [[0u8; TX_SLOT_SIZE]; TX_RING_SIZE as usize];
    for (k, chunk) in body
        .chunks(TX_SLOT_SIZE)
        .take(TX_RING_SIZE as usize)
        .enumerate()
    {
        let i = first.wrapping_add(k as u32) % TX_RING_SIZE;
        if let Some(dst) = ring
            .get_mut(i as usize)
            .and_then(|s| s.get_mut(..chunk.len()))
        {
            dst.copy_from_slice(chunk);
        }
    }
    let mut cons = first;
    loop {
        let mut fetched: u32 = 0;
        let mut fetch = |i: u32| -> Option<TxSlot> {
            // In order, from `cons`, never past the published requests.
            assert_eq!(i, cons.wrapping_add(fetched));
            fetched += 1;
            assert!(fetched <= available);
            if Some(i) == fail_at {
                return None;
            }
            ring.get((i % TX_RING_SIZE) as usize).copied()
        };
        let res = netif::parse_tx_packet(&mut fetch, cons, available);
        let slots = match res {
            Ok(TxParse::Packet(p)) => {
                let frags = p.fragments();
                assert!(!frags.is_empty() && frags.len() <= netif::MAX_TX_FRAGS);
                let mut sum = 0u32;
                for f in frags {
                    assert!(f.len > 0);
                    assert!(u32::from(f.offset) + u32::from(f.len) <= netif::PAGE_SIZE);
                    sum += u32::from(f.len);
                }
                assert_eq!(sum, u32::from(p.size));
                assert!(frags.first().is_some_and(|f| f.len >= netif::ETH_HLEN));
                if let Some(g) = p.gso {
                    assert!(g.size > 0);
                }
                let r = p.responses;
                assert_eq!(r.fragment_ids().len() + 1, frags.len());
                let all: usize = r.iter(netif::status::OKAY).count();
                assert_eq!(all as u32, r.slots());
                p.slots()
            }
            Ok(TxParse::Mcast(m)) => m.responses.slots(),
            Ok(TxParse::Incomplete { needed }) => {
                assert!(needed > available && available < TX_RING_SIZE);
                return;
            }
            Err(TxError::Drop { responses, .. }) => {
                for (k, b) in responses.iter(netif::status::ERROR).enumerate() {
                    let (_, st) = netif::decode_tx_response(&b);
                    let extra = k >= 1 && k <= usize::from(responses.extra_slots());
                    assert_eq!(st, if extra { netif::status::NULL } else { -1 });
                }
                responses.slots()
            }
            Err(TxError::Fatal(_)) => return,
        };
        assert_eq!(slots, fetched);
        assert!(slots >= 1 && slots <= available);
        cons = cons.wrapping_add(slots);
        available -= slots;
        if available == 0 {
            break;
        }
    }
    for chunk in body.chunks(netif::RX_REQUEST_SIZE) {
        let mut b = [0u8; netif::RX_REQUEST_SIZE];
        if let Some(dst) = b.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        let r = RxRequest::parse(&b);
        assert_eq!(RxRequest::parse(&r.encode()), r);
        if let Ok(e) = ExtraInfo::parse(&b) {
            assert_eq!(ExtraInfo::parse(&e.encode()), Ok(e));
            assert_eq!(netif::encode_rx_extra(&e), e.encode());
        }
        let off = u16::from_le_bytes([b[0], b[1]]);
        let len = u16::from_le_bytes([b[2], b[3]]);
        if let Some(rsp) = netif::RxResponse::data(r.id, off, len, 0) {
            assert!(u32::from(off) + u32::from(len) <= netif::PAGE_SIZE);
            assert_eq!(netif::RxResponse::parse(&rsp.encode()), rsp);
        }
    }
}

/// A fixed-capacity byte FIFO for the fuzz models (no allocation here).
struct Fifo<const N: usize> {
    buf: [u8; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Fifo<N> {
    const fn new() -> Self {
        Fifo {
            buf: [0; N],
            head: 0,
            len: 0,
        }
    }
    /// Appends `b`; false (and nothing kept) when full.
    fn push(&mut self, b: u8) -> bool {
        if self.len >= N {
            return false;
        }
        if let Some(s) = self.buf.get_mut((self.head + self.len) % N) {
            *s = b;
        }
        self.len += 1;
        true
    }
    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let b = self.buf.get(self.head).copied();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        b
    }
}

/// The console page of the `console_ring` target: a [`console::MemPage`]
/// that checks every access the backend makes against the rules of
/// `console.h`, as the page stands when the backend copied the indices
/// (nothing else changes it during a poll).
struct CheckedPage {
    mem: console::MemPage,
    /// The block the backend copied in this poll.
    seen: Option<console::RawIndices>,
}

/// Whether ring positions `[at, at + len)` of a ring of `size` bytes (as
/// page offsets from `base`) lie inside `span`.
fn inside(span: bytes::Span, base: usize, size: u32, at: usize, len: usize) -> bool {
    let (a, b) = span.ranges();
    let Some(rel) = at.checked_sub(base) else {
        return false;
    };
    let end = rel + len;
    end <= size as usize && ((rel >= a.start && end <= a.end) || (rel >= b.start && end <= b.end))
}

impl console::Page for CheckedPage {
    type Error = console::OutOfPage;
    fn read_indices(&mut self) -> Result<[u8; console::INDEX_BLOCK], Self::Error> {
        let raw = self.mem.indices();
        self.seen = Some(raw);
        Ok(raw.encode())
    }
    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<(), Self::Error> {
        let raw = self.seen.expect("ring read before the indices");
        let v = console::Indices::check(raw).expect("ring read after refused indices");
        // Only live bytes: unconsumed output, or (for a snapshot) unread
        // input.
        assert!(
            inside(
                v.output(),
                console::OUT_OFFSET,
                console::OUT_SIZE,
                offset,
                out.len()
            ) || inside(
                v.input_unread(),
                console::IN_OFFSET,
                console::IN_SIZE,
                offset,
                out.len()
            ),
            "read outside the live bytes: {offset}+{}",
            out.len()
        );
        self.mem.read(offset, out)
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), Self::Error> {
        let raw = self.seen.expect("ring write before the indices");
        let v = console::Indices::check(raw).expect("ring write after refused indices");
        assert!(
            inside(
                v.input_room(),
                console::IN_OFFSET,
                console::IN_SIZE,
                offset,
                data.len()
            ),
            "write outside the input room: {offset}+{}",
            data.len()
        );
        self.mem.write(offset, data)
    }
    fn publish(&mut self, offset: usize, value: u32) -> Result<(), Self::Error> {
        let raw = self.seen.expect("publish before the indices");
        let v = console::Indices::check(raw).expect("publish after refused indices");
        match offset {
            console::OUT_CONS => {
                let n = value.wrapping_sub(raw.out_cons);
                assert!(n >= 1 && n <= v.output().total, "out_cons moved by {n}");
            }
            console::IN_PROD => {
                let n = value.wrapping_sub(raw.in_prod);
                assert!(n >= 1 && n <= v.input_room().total, "in_prod moved by {n}");
            }
            o => panic!("published offset {o}"),
        }
        self.mem.publish(offset, value)
    }
}

/// Target `console_ring`: a console backend ([`console::Backend`]) against
/// a frontend that is honest or hostile by turns. Input: `[flags]` (bit
/// 0: echo on), the 16-byte index block the backend attaches to, then
/// operations, each followed by a poll of the backend:
///
/// * `0` snapshot: `[block 16][out_len u16][out][in_len u16][in]` — the
///   frontend writes all four indices and the live bytes of both rings
///   (from the block's `out_cons` and `in_cons`), as a captured ring
///   state (`conscap` lines; `cargo xtask fuzz --import-capture`);
/// * `1` write: `[len u8][bytes]` — the honest frontend appends output;
/// * `2` read: `[n u16]` — the honest frontend reads input;
/// * `3` poke: `[index u8][value u32]` — one index set to anything;
/// * `4` scribble: `[offset u16][len u8][bytes]` — raw page bytes.
///
/// Invariants: the backend reads only live bytes and the index block,
/// writes only into the input room, moves only its own indices and by no
/// more than the ring allows (checked by the page); it refuses exactly
/// the blocks that break `console.h` (the frontend's indices out of
/// reach, or the backend's changed); every printed piece is printable and
/// bounded; and while the frontend has been honest, what is printed is
/// the sanitised stream it wrote, and the input it reads is exactly the
/// echo of every piece (until an echo line is dropped for want of room).
pub fn console_ring(data: &[u8]) {
    use console::{
        Backend, ECHO_PREFIX, Event, IN_CONS, IN_OFFSET, IN_PROD, IN_SIZE, INDEX_BLOCK, MAX_LINE,
        OUT_CONS, OUT_OFFSET, OUT_PROD, OUT_SIZE, PollError, RawIndices,
    };
    let mut u = Input(data);
    let echo = u.u8() & 1 == 1;
    let mut page = CheckedPage {
        mem: console::MemPage::default(),
        seen: None,
    };
    let mut attach = [0u8; INDEX_BLOCK];
    for b in attach.iter_mut() {
        *b = u.u8();
    }
    let start = RawIndices::parse(&attach);
    for (o, v) in [
        (IN_CONS, start.in_cons),
        (IN_PROD, start.in_prod),
        (OUT_CONS, start.out_cons),
        (OUT_PROD, start.out_prod),
    ] {
        page.mem.set(o, v);
    }
    let mut backend = match Backend::attach(&mut page, echo) {
        Ok(b) => b,
        Err(PollError::Index(_)) => {
            assert!(console::Indices::check(start).is_err());
            return;
        }
        Err(PollError::Page(_)) => panic!("page access at attach"),
    };
    // Models, valid while the frontend has been honest.
    let mut honest = true;
    let mut printed_model: Fifo<4096> = Fifo::new();
    let mut echo_model: Fifo<8192> = Fifo::new();
    let mut echo_exact = echo;
    // Output the frontend wrote before the backend attached (zero bytes
    // of the fresh page) is printed first.
    for k in 0..start.out_prod.wrapping_sub(start.out_cons) {
        let at = OUT_OFFSET + (start.out_cons.wrapping_add(k) % OUT_SIZE) as usize;
        if let Some(c) = page.mem.bytes.get(at).copied().and_then(console::sanitise) {
            assert!(printed_model.push(c));
        }
    }
    // Likewise input the backend had produced before it attached.
    for k in 0..start.in_prod.wrapping_sub(start.in_cons) {
        let at = IN_OFFSET + (start.in_cons.wrapping_add(k) % IN_SIZE) as usize;
        assert!(echo_model.push(page.mem.bytes.get(at).copied().unwrap_or(0)));
    }
    while !u.0.is_empty() {
        match u.u8() % 5 {
            0 => {
                honest = false;
                let mut block = [0u8; INDEX_BLOCK];
                for b in block.iter_mut() {
                    *b = u.u8();
                }
                let raw = RawIndices::parse(&block);
                for (o, v) in [
                    (IN_CONS, raw.in_cons),
                    (IN_PROD, raw.in_prod),
                    (OUT_CONS, raw.out_cons),
                    (OUT_PROD, raw.out_prod),
                ] {
                    page.mem.set(o, v);
                }
                let n = usize::from(u.u16());
                for (k, &b) in u.take(n).iter().enumerate().take(OUT_SIZE as usize) {
                    let at = (raw.out_cons as usize + k) % OUT_SIZE as usize;
                    if let Some(s) = page.mem.bytes.get_mut(OUT_OFFSET + at) {
                        *s = b;
                    }
                }
                let n = usize::from(u.u16());
                for (k, &b) in u.take(n).iter().enumerate().take(IN_SIZE as usize) {
                    let at = (raw.in_cons as usize + k) % IN_SIZE as usize;
                    if let Some(s) = page.mem.bytes.get_mut(IN_OFFSET + at) {
                        *s = b;
                    }
                }
            }
            1 => {
                let n = usize::from(u.u8());
                let r = page.mem.indices();
                let mut prod = r.out_prod;
                for &b in u.take(n) {
                    if prod.wrapping_sub(r.out_cons) >= OUT_SIZE {
                        break;
                    }
                    let at = OUT_OFFSET + (prod % OUT_SIZE) as usize;
                    if let Some(s) = page.mem.bytes.get_mut(at) {
                        *s = b;
                    }
                    prod = prod.wrapping_add(1);
                    // Never more than a ring and a partial line waits.
                    let c = if b == b'\n' {
                        Some(b)
                    } else {
                        console::sanitise(b)
                    };
                    if honest && let Some(c) = c {
                        assert!(printed_model.push(c), "printed model overflow");
                    }
                }
                page.mem.set(OUT_PROD, prod);
            }
            2 => {
                let n = u.u16();
                let r = page.mem.indices();
                let mut cons = r.in_cons;
                let mut k = 0;
                while cons != r.in_prod && k < n && r.in_prod.wrapping_sub(cons) <= IN_SIZE {
                    let at = IN_OFFSET + (cons % IN_SIZE) as usize;
                    let b = page.mem.bytes.get(at).copied().unwrap_or(0);
                    if honest && echo_exact {
                        assert_eq!(Some(b), echo_model.pop(), "echo read back");
                    }
                    cons = cons.wrapping_add(1);
                    k += 1;
                }
                page.mem.set(IN_CONS, cons);
            }
            3 => {
                honest = false;
                let which = u.u8();
                let v = u.u32();
                page.mem.set(
                    [IN_CONS, IN_PROD, OUT_CONS, OUT_PROD][usize::from(which % 4)],
                    v,
                );
            }
            _ => {
                honest = false;
                let off = usize::from(u.u16()) % console::CONNECTION;
                let n = usize::from(u.u8());
                for (k, &b) in u.take(n).iter().enumerate() {
                    if let Some(s) = page.mem.bytes.get_mut(off + k) {
                        *s = b;
                    }
                }
            }
        }
        let before = page.mem.indices();
        let dropped = backend.stats().echo_dropped;
        let mut fail = false;
        let r = backend.poll(&mut page, true, &mut |e| match e {
            Event::Line(l) => {
                assert!(l.text.len() <= MAX_LINE);
                assert!(l.text.bytes().all(|c| (0x20..0x7f).contains(&c)));
                if honest {
                    for c in l.text.bytes() {
                        if printed_model.pop() != Some(c) {
                            fail = true;
                        }
                    }
                    if l.complete && printed_model.pop() != Some(b'\n') {
                        fail = true;
                    }
                }
                if echo_exact && !l.text.as_bytes().starts_with(ECHO_PREFIX) {
                    for &c in ECHO_PREFIX.iter().chain(l.text.as_bytes()).chain(b"\n") {
                        echo_exact &= echo_model.push(c);
                    }
                }
            }
            Event::State(s) => {
                assert_eq!(s.block, before.encode());
                let mut rec = [0u8; 4096];
                let n = s.encode(&mut rec);
                assert_eq!(n, s.encoded_len());
            }
        });
        assert!(!fail, "printed stream differs from what the frontend wrote");
        if backend.stats().echo_dropped != dropped {
            echo_exact = false;
        }
        let published = backend.indices();
        match r {
            Ok(p) => {
                assert!(console::Indices::check(before).is_ok());
                assert_eq!(p.notify(), p.consumed > 0 || p.produced > 0);
                let after = page.mem.indices();
                assert_eq!(after.out_cons, published.out_cons());
                assert_eq!(after.in_prod, published.in_prod());
                assert_eq!(after.out_cons, after.out_prod, "all output consumed");
            }
            Err(PollError::Index(_)) => {
                // Refused: the block really broke a rule. The frontend is
                // disconnected; nothing more happens on this console.
                let own_changed = before.out_cons != published.out_cons()
                    || before.in_prod != published.in_prod();
                assert!(own_changed || console::Indices::check(before).is_err());
                return;
            }
            Err(PollError::Page(_)) => panic!("page access outside the page"),
        }
    }
}
