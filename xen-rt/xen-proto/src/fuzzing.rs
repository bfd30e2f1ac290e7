//! Fuzz drivers for every parser of peer-controlled data in this crate
//! (feature `fuzzing`; never part of a domain image). Each takes arbitrary
//! bytes and panics only when an invariant breaks, so the same function
//! serves cargo-fuzz (`fuzz/fuzz_targets/<name>.rs`) and the host smoke
//! test (`tests/fuzz_corpus.rs`, which replays `fuzz/corpus/<name>/` and
//! thousands of mutated inputs in every `cargo xtask test`).

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
