//! A hostile peer: corrupt indices, orders, grants and live bytes give a
//! typed error and close the channel; nothing panics or stalls.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;

use vchan::layout::*;
use vchan::sim::{PAIR_PATH, SimMemory, SimXen, pair};
use vchan::*;

/// A pair plus a read-write mapping of the header as a hostile client
/// would hold it.
fn pair_with_header(lo: u8, ro: u8, init: u32) -> (vchan::sim::Pair, SimMemory) {
    let p = pair(lo, ro, init).unwrap();
    let r: u32 = p
        .xen
        .store_get(&format!("{PAIR_PATH}/ring-ref"))
        .unwrap()
        .parse()
        .unwrap();
    let hdr = GrantMap::map(&mut p.xen.domain(1), 0, &[r], true, None).unwrap();
    (p, hdr)
}

fn assert_broken<M: SharedMemory, E: EventChannel>(
    v: &mut Vchan<M, E>,
    hdr: &SimMemory,
    live_off: usize,
) {
    assert!(v.protocol_error().is_some());
    assert!(!v.is_open());
    assert!(matches!(v.try_read(&mut [0; 4]), Err(Error::Protocol(_))));
    assert!(matches!(v.try_write(b"x"), Err(Error::Protocol(_))));
    assert!(matches!(v.data_ready(), Err(Error::Protocol(_))));
    assert_eq!(
        hdr.load_u8(live_off, Relaxed),
        0,
        "victim announced its exit"
    );
}

#[test]
fn producer_index_beyond_ring() {
    for init in [0, u32::MAX - 3] {
        let (mut p, hdr) = pair_with_header(10, 11, init);
        // libxenvchan would report 0 bytes ready forever here.
        hdr.store_u32(LEFT_PROD, init.wrapping_add(1025), Relaxed);
        assert_eq!(
            p.server.data_ready(),
            Err(Error::Protocol(ProtocolError::ReadIndexOverflow {
                prod: init.wrapping_add(1025),
                cons: init,
                size: 1024
            }))
        );
        assert_broken(&mut p.server, &hdr, SRV_LIVE);
        // the honest client sees the server gone
        assert_eq!(p.client.try_write(b"x"), Err(Error::PeerClosed));
    }
}

#[test]
fn producer_index_behind_consumer_and_backwards() {
    let (mut p, hdr) = pair_with_header(10, 11, 100);
    hdr.store_u32(LEFT_PROD, 99, Relaxed);
    assert!(matches!(
        p.server.try_read(&mut [0; 8]),
        Err(Error::Protocol(ProtocolError::ReadIndexOverflow { .. }))
    ));

    let (mut p, hdr) = pair_with_header(10, 11, 100);
    hdr.store_u32(LEFT_PROD, 150, Relaxed);
    assert_eq!(p.server.data_ready(), Ok(50));
    hdr.store_u32(LEFT_PROD, 120, Relaxed);
    assert_eq!(
        p.server.data_ready(),
        Err(Error::Protocol(ProtocolError::IndexWentBackwards {
            previous: 150,
            now: 120
        }))
    );
    assert_broken(&mut p.server, &hdr, SRV_LIVE);
}

#[test]
fn consumer_index_ahead_of_producer() {
    let (mut p, hdr) = pair_with_header(10, 11, u32::MAX);
    p.server.try_write(&[1; 10]).unwrap();
    // right.cons past right.prod: "free space" beyond the ring
    hdr.store_u32(RIGHT_CONS, u32::MAX.wrapping_add(11), Relaxed);
    assert!(matches!(
        p.server.buffer_space(),
        Err(Error::Protocol(ProtocolError::WriteIndexOverflow { .. }))
    ));
    assert_broken(&mut p.server, &hdr, SRV_LIVE);

    let (mut p, hdr) = pair_with_header(10, 11, 0);
    p.server.try_write(&[1; 10]).unwrap();
    hdr.store_u32(RIGHT_CONS, 8, Relaxed);
    assert_eq!(p.server.buffer_space(), Ok(2046));
    hdr.store_u32(RIGHT_CONS, 4, Relaxed);
    assert!(matches!(
        p.server.try_write(b"x"),
        Err(Error::Protocol(ProtocolError::IndexWentBackwards { .. }))
    ));
}

#[test]
fn live_byte_flips() {
    // client live goes 1 → 2
    let (mut p, hdr) = pair_with_header(10, 11, 0);
    assert_eq!(p.server.peer_state(), Ok(PeerState::Live));
    hdr.store_u8(CLI_LIVE, 2, Relaxed);
    assert_eq!(
        p.server.peer_state(),
        Err(Error::Protocol(ProtocolError::BadLiveByte {
            previous: 1,
            now: 2
        }))
    );
    assert_broken(&mut p.server, &hdr, SRV_LIVE);
    // garbage value
    let (mut p, hdr) = pair_with_header(10, 11, 0);
    hdr.store_u8(CLI_LIVE, 0x80, Relaxed);
    assert!(matches!(
        p.server.try_write(b"x"),
        Err(Error::Protocol(ProtocolError::BadLiveByte { .. }))
    ));
    // a client victim sees the server's live byte become 2
    let (mut p, hdr) = pair_with_header(10, 11, 0);
    hdr.store_u8(SRV_LIVE, 2, Relaxed);
    assert!(matches!(
        p.client.try_read(&mut [0; 1]),
        Err(Error::Protocol(ProtocolError::BadLiveByte { .. }))
    ));
    assert_broken(&mut p.client, &hdr, CLI_LIVE);
    // once closed, a "revived" live byte is not believed
    let (mut p, hdr) = pair_with_header(10, 11, 0);
    hdr.store_u8(CLI_LIVE, 0, Relaxed);
    assert_eq!(p.server.try_read(&mut [0; 1]), Ok(0));
    hdr.store_u8(CLI_LIVE, 1, Relaxed);
    assert_eq!(p.server.try_read(&mut [0; 1]), Ok(0));
    assert_eq!(p.server.try_write(b"x"), Err(Error::PeerClosed));
}

#[test]
fn notify_byte_garbage_is_harmless() {
    let (mut p, hdr) = pair_with_header(10, 11, 0);
    for v in [0u8, 0xff, 0x5a] {
        hdr.store_u8(SRV_NOTIFY, v, Relaxed);
        hdr.store_u8(CLI_NOTIFY, v, Relaxed);
        p.server.try_write(b"ab").unwrap();
        let mut b = [0u8; 2];
        assert_eq!(p.client.try_read(&mut b), Ok(2));
        assert_eq!(&b, b"ab");
    }
    assert!(p.server.is_open() && p.client.is_open());
}

/// A hostile server publishes a header; the client must refuse it.
fn hostile_server(setup: impl FnOnce(&SimMemory, &mut [u32])) -> (SimXen, Result<(), Error>) {
    let xen = SimXen::new();
    let mut sd = xen.domain(0);
    let (_evt, port) = EventChannels::alloc_unbound(&mut sd, 1).unwrap();
    let mut r = [0u32; 1];
    let hdr = GrantAlloc::share(&mut sd, 1, &mut r, true, None).unwrap();
    hdr.store_u16(LEFT_ORDER, 10, Relaxed);
    hdr.store_u16(RIGHT_ORDER, 11, Relaxed);
    hdr.store_u8(SRV_LIVE, 1, Relaxed);
    hdr.store_u8(CLI_LIVE, 2, Relaxed);
    let mut adv = [r[0], port];
    setup(&hdr, &mut adv);
    xen.store_set(&format!("{PAIR_PATH}/ring-ref"), &adv[0].to_string(), 0, 1);
    xen.store_set(
        &format!("{PAIR_PATH}/event-channel"),
        &adv[1].to_string(),
        0,
        1,
    );
    let cd = xen.domain(1);
    let (mut g, mut e, mut s) = (cd.clone(), cd.clone(), cd);
    let before = xen.port_count();
    let res = Client {
        peer: 0,
        path: PAIR_PATH,
    }
    .connect(&mut g, &mut e, &mut s)
    .map(|c| Client::close(c, &mut g, &mut e));
    if res.is_err() {
        assert_eq!(xen.port_count(), before, "failed connect leaked a port");
    }
    (xen, res)
}

#[test]
fn hostile_server_headers() {
    assert!(hostile_server(|_, _| {}).1.is_ok(), "baseline is valid");
    let bad_order = |l: u16, r: u16| {
        hostile_server(move |h, _| {
            h.store_u16(LEFT_ORDER, l, Relaxed);
            h.store_u16(RIGHT_ORDER, r, Relaxed);
        })
        .1
    };
    assert_eq!(
        bad_order(9, 11),
        Err(Error::Protocol(ProtocolError::BadOrder { order: 9 }))
    );
    assert_eq!(
        bad_order(10, 21),
        Err(Error::Protocol(ProtocolError::BadOrder { order: 21 }))
    );
    assert_eq!(
        bad_order(10, 0xffff),
        Err(Error::Protocol(ProtocolError::BadOrder { order: 0xffff }))
    );
    assert_eq!(
        bad_order(11, 11),
        Err(Error::Protocol(ProtocolError::OrderConflict {
            left: 11,
            right: 11
        }))
    );
    // 256 grants would run into the ring at offset 1024
    assert_eq!(
        bad_order(10, 20),
        Err(Error::Protocol(ProtocolError::OrderConflict {
            left: 10,
            right: 20
        }))
    );
    // valid orders but garbage (zero) grant refs: mapping fails cleanly
    assert!(matches!(bad_order(12, 11), Err(Error::Grant(_))));
    // server not live / weird live
    let live = |v: u8| hostile_server(move |h, _| h.store_u8(SRV_LIVE, v, Relaxed)).1;
    assert_eq!(live(0), Err(Error::PeerClosed));
    assert!(matches!(
        live(2),
        Err(Error::Protocol(ProtocolError::BadLiveByte { .. }))
    ));
    assert!(matches!(
        live(9),
        Err(Error::Protocol(ProtocolError::BadLiveByte { .. }))
    ));
    // inconsistent initial indices
    let idx = |off: usize, v: u32| hostile_server(move |h, _| h.store_u32(off, v, Relaxed)).1;
    assert_eq!(
        idx(LEFT_CONS, 5),
        Err(Error::Protocol(ProtocolError::BadInitialIndices))
    );
    assert_eq!(
        idx(RIGHT_PROD, 2049),
        Err(Error::Protocol(ProtocolError::BadInitialIndices))
    );
    assert!(idx(RIGHT_PROD, 2048).is_ok(), "a full ring is fine");
    // advertisement pointing at a page that was not granted to us
    let (_, r) = hostile_server(|_, adv| adv[0] = 12345);
    assert!(matches!(r, Err(Error::Grant(_))));
}

#[test]
fn reads_exactly_the_ring_slots_the_peer_announced() {
    // The hostile client fills the 1 KiB left ring (at offset 1024 of the
    // header page) itself and announces arbitrary legal amounts; the server
    // must return exactly those bytes, from exactly those slots, across the
    // index wrap.
    for start in [0u32, 1000, u32::MAX - 1500, u32::MAX - 10] {
        let (mut p, hdr) = pair_with_header(10, 11, start);
        let mut prod = start;
        let mut cons = start;
        let mut b = vec![0u8; 2048];
        for step in 0..200u32 {
            let n = (step * 97 + 13) % 1025;
            for k in 0..n {
                let i = prod.wrapping_add(k);
                hdr.copy_in(1024 + (i & 1023) as usize, &[(i % 251) as u8]);
            }
            prod = prod.wrapping_add(n);
            hdr.store_u32(LEFT_PROD, prod, Relaxed);
            let mut got = 0;
            while got < n as usize {
                let k = p
                    .server
                    .try_read(&mut b[..(n as usize - got).min(700)])
                    .unwrap();
                for (j, &x) in b[..k].iter().enumerate() {
                    assert_eq!(x as u32, cons.wrapping_add(j as u32) % 251);
                }
                cons = cons.wrapping_add(k as u32);
                got += k;
            }
            assert_eq!(hdr.load_u32(LEFT_CONS, Relaxed), cons);
        }
        assert!(p.server.protocol_error().is_none());
    }
}
