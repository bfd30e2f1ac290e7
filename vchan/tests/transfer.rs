//! Two-thread transfers over the simulated Xen, both roles and directions,
//! many ring orders; lifecycle (close, EOF, peer death, reconnect, timeouts).
#![forbid(unsafe_code)]

use std::thread;
use std::time::Duration;

use embedded_io::{Read, Write};
use vchan::sim::{PAIR_PATH, SimClock, SimXen, pair};
use vchan::{Client, Error, PeerState, Server};

/// xorshift stream so that both threads can generate/verify the same bytes.
struct Gen(u64);
impl Gen {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

fn fnv(h: &mut u64, data: &[u8]) {
    for &b in data {
        *h = (*h ^ b as u64).wrapping_mul(0x100000001b3);
    }
}

/// Stream `total` bytes in both directions at once (each side has a writer
/// and a reader thread sharing the channel through a mutex-free split:
/// here one thread per *side*, alternating non-blocking reads and writes,
/// plus blocking when neither can progress).
fn duplex(read_order: u8, write_order: u8, initial: u32, total: usize, chunk: usize) {
    let p = pair(read_order, write_order, initial).unwrap();
    let (mut s, mut c) = (p.server, p.client);
    let side = move |ch: &mut vchan::Vchan<_, _>, seed_tx: u64, seed_rx: u64| {
        let (mut gtx, mut grx) = (Gen(seed_tx), Gen(seed_rx));
        let mut tx = vec![0u8; chunk];
        let mut rx = vec![0u8; chunk];
        let mut expect = vec![0u8; chunk];
        let (mut sent, mut recvd) = (0usize, 0usize);
        let mut pending = 0usize; // bytes of `tx` still to send
        let mut off = 0usize;
        let (mut h_tx, mut h_rx) = (0xcbf29ce484222325u64, 0xcbf29ce484222325u64);
        while sent < total || recvd < total {
            let mut progress = false;
            if sent < total {
                if pending == 0 {
                    pending = chunk.min(total - sent);
                    off = 0;
                    gtx.fill(&mut tx[..pending]);
                    fnv(&mut h_tx, &tx[..pending]);
                }
                match ch.try_write(&tx[off..off + pending]) {
                    Ok(n) => {
                        off += n;
                        pending -= n;
                        sent += n;
                        progress = true;
                    }
                    Err(Error::WouldBlock) => {}
                    Err(e) => panic!("write: {e:?}"),
                }
            }
            if recvd < total {
                let want = chunk.min(total - recvd);
                match ch.try_read(&mut rx[..want]) {
                    Ok(0) => panic!("unexpected EOF"),
                    Ok(n) => {
                        grx.fill(&mut expect[..n]);
                        assert_eq!(&rx[..n], &expect[..n], "data mismatch at {recvd}");
                        fnv(&mut h_rx, &rx[..n]);
                        recvd += n;
                        progress = true;
                    }
                    Err(Error::WouldBlock) => {}
                    Err(e) => panic!("read: {e:?}"),
                }
            }
            if !progress {
                // Both directions asked for notifications before failing.
                ch.wait_event(Some(Duration::from_secs(10))).unwrap();
            }
        }
        (h_tx, h_rx)
    };
    let t = thread::spawn(move || side(&mut c, 2, 1));
    let (s_tx, s_rx) = side(&mut s, 1, 2);
    let (c_tx, c_rx) = t.join().unwrap();
    assert_eq!(s_tx, c_rx, "server→client checksum");
    assert_eq!(c_tx, s_rx, "client→server checksum");
}

#[test]
fn duplex_many_orders() {
    for (ro, wo, init) in [
        (10, 11, 0),
        (11, 10, u32::MAX - 100),
        (12, 13, u32::MAX - 5000),
        (13, 10, 0x7fff_ff00),
        (16, 12, 3),
        (20, 20, u32::MAX),
    ] {
        duplex(ro, wo, init, 3 << 20, 3000);
    }
}

/// Blocking embedded-io streams, one direction per test run, both roles as
/// writer, a few MiB each with a checksum.
fn one_way(read_order: u8, write_order: u8, server_writes: bool, total: usize, chunk: usize) {
    let p = pair(read_order, write_order, u32::MAX - 77).unwrap();
    let (mut w, mut r) = if server_writes {
        (p.server, p.client)
    } else {
        (p.client, p.server)
    };
    let writer = thread::spawn(move || {
        let mut g = Gen(42);
        let mut buf = vec![0u8; chunk];
        let mut h = 0xcbf29ce484222325u64;
        let mut left = total;
        while left > 0 {
            let n = chunk.min(left);
            g.fill(&mut buf[..n]);
            fnv(&mut h, &buf[..n]);
            w.write_all(&buf[..n]).unwrap();
            left -= n;
        }
        w.shutdown();
        h
    });
    let mut buf = vec![0u8; chunk + 17];
    let mut h = 0xcbf29ce484222325u64;
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        fnv(&mut h, &buf[..n]);
        got += n;
    }
    assert_eq!(got, total);
    assert_eq!(h, writer.join().unwrap());
    assert_eq!(r.peer_state().unwrap(), PeerState::Closed);
    assert_eq!(r.try_write(b"x"), Err(Error::PeerClosed));
}

#[test]
fn one_way_blocking_all_orders() {
    for o in 10..=20u8 {
        let other = if o == 10 { 11 } else { 10 };
        let other = if o == 20 { 11 } else { other };
        one_way(o, other, false, 2 << 20, 4096 + 3);
        one_way(other, o, true, 2 << 20, 65536);
    }
}

#[test]
fn send_recv_exact() {
    let mut p = pair(10, 11, 0).unwrap();
    assert_eq!(p.client.try_send(&[1; 1025]), Err(Error::InvalidArgument));
    p.client.try_send(&[7; 1000]).unwrap();
    assert_eq!(p.client.try_send(&[7; 100]), Err(Error::WouldBlock));
    let mut b = [0u8; 1001];
    assert_eq!(p.server.try_recv(&mut b), Err(Error::WouldBlock));
    p.server.try_recv(&mut b[..600]).unwrap();
    assert_eq!(p.server.data_ready().unwrap(), 400);
    assert_eq!(p.client.buffer_space().unwrap(), 624);
    p.client.try_send(&[7; 100]).unwrap();
    p.server.try_recv(&mut b[..500]).unwrap();
    assert!(b[..500].iter().all(|&x| x == 7));
    // peer closed with fewer bytes than requested
    p.client.shutdown();
    assert_eq!(p.server.try_recv(&mut b[..2]), Err(Error::PeerClosed));
}

#[test]
fn timeouts() {
    let mut p = pair(10, 11, 0).unwrap();
    let clock = SimClock::default();
    let mut b = [0u8; 8];
    let t0 = std::time::Instant::now();
    assert_eq!(
        p.server
            .read_timeout(&mut b, Duration::from_millis(50), &clock),
        Err(Error::TimedOut)
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    // fill the client→server ring, then time out writing
    p.client
        .write_all_timeout(&[0; 1024], Duration::from_secs(1), &clock)
        .unwrap();
    assert_eq!(
        p.client
            .write_timeout(&[0; 1], Duration::from_millis(30), &clock),
        Err(Error::TimedOut)
    );
    // a reader on another thread frees space in time
    let mut s = p.server;
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let mut b = [0u8; 1024];
        s.read_exact_timeout(&mut b, Duration::from_secs(5), &SimClock::default())
            .unwrap();
        s
    });
    p.client
        .write_all_timeout(&[1; 1024], Duration::from_secs(5), &clock)
        .unwrap();
    let mut s = t.join().unwrap();
    s.read_exact_timeout(&mut [0u8; 1024], Duration::from_secs(5), &clock)
        .unwrap();
    assert_eq!(s.try_read(&mut b), Err(Error::WouldBlock));
}

#[test]
fn client_waits_for_server_and_server_for_client() {
    let xen = SimXen::new();
    let path = "/local/domain/0/data/vchan/5/late";
    let x2 = xen.clone();
    let client = thread::spawn(move || {
        let d = x2.domain(5);
        let (mut g, mut e, mut s) = (d.clone(), d.clone(), d);
        let mut c = Client { peer: 0, path }
            .connect_wait(
                &mut g,
                &mut e,
                &mut s,
                Some(Duration::from_secs(5)),
                &SimClock::default(),
            )
            .unwrap();
        c.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"world");
        Client::close(c, &mut g, &mut e);
    });
    thread::sleep(Duration::from_millis(30));
    let d = xen.domain(0);
    let (mut g, mut e, mut s) = (d.clone(), d.clone(), d);
    let cfg = Server {
        local: 0,
        peer: 5,
        path,
        read_order: 12,
        write_order: 10,
        initial_index: 0,
    };
    let mut srv = cfg.listen(&mut g, &mut e, &mut s).unwrap();
    // writes before the client connects are buffered
    srv.write_all(b"world").unwrap();
    Server::wait_for_client(&mut srv, Some(Duration::from_secs(5)), &SimClock::default()).unwrap();
    let mut b = [0u8; 5];
    srv.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello");
    client.join().unwrap();
    assert_eq!(srv.read(&mut b).unwrap(), 0);
    cfg.close(srv, &mut g, &mut e, &mut s).unwrap();
    assert_eq!(xen.grant_count(), 0, "all grants ended");
    assert_eq!(xen.port_count(), 0, "all ports closed");
    assert_eq!(xen.store_get(&format!("{path}/ring-ref")), None);
}

#[test]
fn client_connect_errors() {
    let xen = SimXen::new();
    let d = xen.domain(3);
    let (mut g, mut e, mut s) = (d.clone(), d.clone(), d);
    let c = Client {
        peer: 0,
        path: PAIR_PATH,
    };
    assert!(matches!(
        c.connect(&mut g, &mut e, &mut s),
        Err(Error::NotAdvertised)
    ));
    assert!(matches!(
        c.connect_wait(
            &mut g,
            &mut e,
            &mut s,
            Some(Duration::from_millis(20)),
            &SimClock::default()
        ),
        Err(Error::TimedOut)
    ));
    xen.store_set(&format!("{PAIR_PATH}/ring-ref"), "12x", 0, 3);
    xen.store_set(&format!("{PAIR_PATH}/event-channel"), "1", 0, 3);
    assert!(matches!(
        c.connect(&mut g, &mut e, &mut s),
        Err(Error::Protocol(_))
    ));
    xen.store_set(&format!("{PAIR_PATH}/ring-ref"), "0", 0, 3);
    assert!(matches!(
        c.connect(&mut g, &mut e, &mut s),
        Err(Error::Protocol(_))
    ));
    // valid numbers, but nothing behind them
    xen.store_set(&format!("{PAIR_PATH}/ring-ref"), "4000", 0, 3);
    assert!(matches!(
        c.connect(&mut g, &mut e, &mut s),
        Err(Error::Event(_))
    ));
    // someone else's advertisement is unreadable
    xen.store_set(&format!("{PAIR_PATH}/ring-ref"), "9", 0, 4);
    assert!(matches!(
        c.connect(&mut g, &mut e, &mut s),
        Err(Error::Store(_))
    ));
    assert_eq!(xen.port_count(), 0);
}

#[test]
fn server_setup_failure_releases_everything() {
    let xen = SimXen::new();
    let d = xen.domain(0);
    let (mut g, mut e, mut s) = (d.clone(), d.clone(), d);
    let cfg = Server {
        local: 0,
        peer: 1,
        path: PAIR_PATH,
        read_order: 14,
        write_order: 13,
        initial_index: 0,
    };
    // header, left ring, right ring
    for fail_at in 1..=3 {
        xen.fail_nth_share(fail_at);
        assert!(matches!(
            cfg.listen(&mut g, &mut e, &mut s),
            Err(Error::Grant(_))
        ));
        assert_eq!(xen.grant_count(), 0);
        assert_eq!(xen.port_count(), 0);
    }
    let bad = Server {
        read_order: 10,
        write_order: 10,
        ..cfg
    };
    assert!(matches!(
        bad.listen(&mut g, &mut e, &mut s),
        Err(Error::InvalidArgument)
    ));
    let bad = Server {
        read_order: 21,
        ..cfg
    };
    assert!(matches!(
        bad.listen(&mut g, &mut e, &mut s),
        Err(Error::InvalidArgument)
    ));
    assert_eq!(xen.port_count(), 0);
}

#[test]
fn reconnect_after_client_leaves() {
    let xen = SimXen::new();
    let d = xen.domain(0);
    let (mut g, mut e, mut s) = (d.clone(), d.clone(), d);
    let cfg = Server {
        local: 0,
        peer: 1,
        path: PAIR_PATH,
        read_order: 11,
        write_order: 12,
        initial_index: 0,
    };
    let mut srv = cfg.listen(&mut g, &mut e, &mut s).unwrap();
    for round in 0..3u8 {
        let cd = xen.domain(1);
        let (mut cg, mut ce, mut cs) = (cd.clone(), cd.clone(), cd);
        let mut cli = Client {
            peer: 0,
            path: PAIR_PATH,
        }
        .connect(&mut cg, &mut ce, &mut cs)
        .unwrap();
        cli.write_all(&[round; 100]).unwrap();
        let mut b = [0u8; 100];
        srv.read_exact(&mut b).unwrap();
        assert_eq!(b, [round; 100]);
        srv.write_all(&[round + 1; 10]).unwrap();
        Client::close(cli, &mut cg, &mut ce);
        // pending data for a closed client: write fails, read hits EOF
        assert_eq!(srv.read(&mut b).unwrap(), 0);
        assert_eq!(srv.write(b"x"), Err(Error::PeerClosed));
        srv = cfg.relisten(srv, &mut g, &mut e, &mut s).unwrap();
        assert_eq!(srv.peer_state().unwrap(), PeerState::Pending);
    }
    cfg.close(srv, &mut g, &mut e, &mut s).unwrap();
    assert_eq!(xen.grant_count(), 0);
}

#[test]
fn peer_death_detection() {
    // Crash with unmap notification: the live byte is cleared by the
    // platform, the blocked reader wakes, drains and sees EOF.
    let p = pair(10, 11, 0).unwrap();
    let (mut s, mut c) = (p.server, p.client);
    c.write_all(b"last words").unwrap();
    let xen = p.xen.clone();
    let t = thread::spawn(move || {
        let mut out = Vec::new();
        let mut b = [0u8; 64];
        loop {
            let n = s.read(&mut b).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[..n]);
        }
        (out, s)
    });
    thread::sleep(Duration::from_millis(20));
    xen.crash(1);
    let (out, mut s) = t.join().unwrap();
    assert_eq!(out, b"last words");
    assert_eq!(s.write(b"x"), Err(Error::PeerClosed));
    drop(c);

    // Without unmap notification: the embedder declares the peer dead.
    let mut p = pair(12, 10, 0).unwrap();
    p.server.write_all(b"abc").unwrap();
    p.client.mark_peer_dead();
    let mut b = [0u8; 8];
    assert_eq!(p.client.read(&mut b).unwrap(), 3);
    assert_eq!(p.client.read(&mut b).unwrap(), 0);
    assert_eq!(p.client.try_write(b"x"), Err(Error::PeerClosed));

    // Server crash seen by the client.
    let mut p = pair(10, 11, 0).unwrap();
    p.server.write_all(b"xyz").unwrap();
    p.xen.crash(0);
    assert_eq!(p.client.read(&mut b).unwrap(), 3);
    assert_eq!(p.client.read(&mut b).unwrap(), 0);
}

#[test]
fn local_close_semantics() {
    let mut p = pair(10, 11, 0).unwrap();
    p.server.shutdown();
    p.server.shutdown();
    assert_eq!(p.server.try_read(&mut [0; 4]), Err(Error::Closed));
    assert_eq!(p.server.try_write(b"a"), Err(Error::Closed));
    assert!(!p.server.is_open());
    assert_eq!(p.client.try_write(b"a"), Err(Error::PeerClosed));
    assert_eq!(p.client.try_read(&mut [0; 4]), Ok(0));
}

#[test]
fn path_helper() {
    let mut buf = [0u8; 64];
    assert_eq!(
        vchan::conventional_path(&mut buf, 0, 12, "qrexec").unwrap(),
        "/local/domain/0/data/vchan/12/qrexec"
    );
    let mut small = [0u8; 10];
    assert_eq!(
        vchan::conventional_path(&mut small, 0, 12, "x"),
        Err(Error::InvalidArgument)
    );
    assert_eq!(vchan::parse_u32(b"4294967295"), Some(u32::MAX));
    assert_eq!(vchan::parse_u32(b"4294967296"), None);
    assert_eq!(vchan::parse_u32(b"12\0"), Some(12));
    assert_eq!(vchan::parse_u32(b"-1"), None);
    assert_eq!(vchan::parse_u32(b""), None);
}

#[test]
fn header_snapshot_is_the_shared_header() {
    // In-page rings: the fixed 24 bytes only.
    let mut p = pair(10, 11, 7).unwrap();
    p.client.write_all(b"hello").unwrap();
    let mut h = [0u8; 4096];
    let n = p.server.header_snapshot(&mut h);
    assert_eq!(n, 24);
    let word = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
    // left (client -> server): cons 7, prod 12; right untouched.
    assert_eq!([word(0), word(4), word(8), word(12)], [7, 12, 7, 7]);
    assert_eq!(&h[16..22], &[10, 0, 11, 0, 1, 1], "orders, both live");
    // Multi-page rings: 16 + 16 granted pages follow; both ends agree.
    let p = pair(16, 16, 0).unwrap();
    let n = p.client.header_snapshot(&mut h);
    assert_eq!(n, 24 + 4 * 32);
    let mut h2 = [0u8; 4096];
    assert_eq!(p.server.header_snapshot(&mut h2), n);
    assert_eq!(h[..n], h2[..n]);
    // A short buffer gets what fits.
    assert_eq!(p.server.header_snapshot(&mut h2[..10]), 10);
}
