//! The rings against a `VecDeque` model: every order, both directions,
//! indices starting near `u32::MAX` so that they wrap during the run.
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use proptest::prelude::*;
use vchan::sim::pair;
use vchan::{Error, Geometry};

#[derive(Clone, Debug)]
enum Op {
    /// Client writes `n` bytes (non-blocking, partial allowed).
    CliWrite(usize),
    /// Server writes `n` bytes.
    SrvWrite(usize),
    /// Server reads up to `n`.
    SrvRead(usize),
    /// Client reads up to `n`.
    CliRead(usize),
    /// All-or-nothing client send.
    CliSend(usize),
    /// All-or-nothing server receive.
    SrvRecv(usize),
    /// Query both sides' counters.
    Query,
}

fn op(max: usize) -> impl Strategy<Value = Op> {
    let n = prop_oneof![0..64usize, 0..=max, Just(max), Just(max + 1)];
    (0..7u8, n).prop_map(|(k, n)| match k {
        0 => Op::CliWrite(n),
        1 => Op::SrvWrite(n),
        2 => Op::SrvRead(n),
        3 => Op::CliRead(n),
        4 => Op::CliSend(n),
        5 => Op::SrvRecv(n),
        _ => Op::Query,
    })
}

fn orders() -> impl Strategy<Value = (u8, u8)> {
    (10u8..=20, 10u8..=20).prop_filter("valid geometry", |&(l, r)| {
        Geometry::from_orders(l.into(), r.into()).is_ok()
    })
}

fn start() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), (u32::MAX - 70_000)..=u32::MAX, any::<u32>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn ring_matches_model((lo, ro) in orders(), init in start(), ops in proptest::collection::vec(op(1 << 20), 1..60)) {
        let mut p = pair(lo, ro, init).unwrap();
        let (lsize, rsize) = (1usize << lo, 1usize << ro);
        // c2s: client → server (left ring), s2c: server → client (right)
        let mut c2s: VecDeque<u8> = VecDeque::new();
        let mut s2c: VecDeque<u8> = VecDeque::new();
        let mut counter = 0u8;
        let mut data = |n: usize| -> Vec<u8> { (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect() };
        let mut buf = vec![0u8; (1 << 20) + 2];
        for op in ops {
            match op {
                Op::CliWrite(n) | Op::SrvWrite(n) => {
                    let (ch, model, size) = match op {
                        Op::CliWrite(_) => (&mut p.client, &mut c2s, lsize),
                        _ => (&mut p.server, &mut s2c, rsize),
                    };
                    let d = data(n);
                    let free = size - model.len();
                    match ch.try_write(&d) {
                        Ok(k) => {
                            prop_assert_eq!(k, n.min(free));
                            model.extend(&d[..k]);
                        }
                        Err(Error::WouldBlock) => prop_assert!(free == 0 && n > 0),
                        Err(e) => prop_assert!(false, "write error {:?}", e),
                    }
                }
                Op::SrvRead(n) | Op::CliRead(n) => {
                    let (ch, model) = match op {
                        Op::SrvRead(_) => (&mut p.server, &mut c2s),
                        _ => (&mut p.client, &mut s2c),
                    };
                    let n = n.min(buf.len());
                    match ch.try_read(&mut buf[..n]) {
                        Ok(k) => {
                            prop_assert_eq!(k, n.min(model.len()));
                            let want: Vec<u8> = model.drain(..k).collect();
                            prop_assert_eq!(&buf[..k], &want[..]);
                        }
                        Err(Error::WouldBlock) => prop_assert!(model.is_empty() && n > 0),
                        Err(e) => prop_assert!(false, "read error {:?}", e),
                    }
                }
                Op::CliSend(n) => {
                    let d = data(n);
                    let r = p.client.try_send(&d);
                    if n > lsize {
                        prop_assert_eq!(r, Err(Error::InvalidArgument));
                    } else if n > lsize - c2s.len() {
                        prop_assert_eq!(r, Err(Error::WouldBlock));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        c2s.extend(&d);
                    }
                }
                Op::SrvRecv(n) => {
                    let n = n.min(buf.len());
                    let r = p.server.try_recv(&mut buf[..n]);
                    if n > lsize {
                        prop_assert_eq!(r, Err(Error::InvalidArgument));
                    } else if n > c2s.len() {
                        prop_assert_eq!(r, Err(Error::WouldBlock));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        let want: Vec<u8> = c2s.drain(..n).collect();
                        prop_assert_eq!(&buf[..n], &want[..]);
                    }
                }
                Op::Query => {
                    prop_assert_eq!(p.server.data_ready().unwrap(), c2s.len());
                    prop_assert_eq!(p.client.data_ready().unwrap(), s2c.len());
                    prop_assert_eq!(p.client.buffer_space().unwrap(), lsize - c2s.len());
                    prop_assert_eq!(p.server.buffer_space().unwrap(), rsize - s2c.len());
                }
            }
        }
        prop_assert!(p.server.is_open() && p.client.is_open());
    }
}

/// Deterministic wrap-around sweep: for every order, push the indices
/// across `u32::MAX` with chunk sizes that straddle the ring end.
#[test]
fn wrap_sweep_every_order() {
    for o in 10..=20u8 {
        let other = if o == 11 { 10 } else { 11 };
        let size = 1usize << o;
        let mut p = pair(other, o, u32::MAX - (size as u32) * 2 - 3).unwrap();
        let mut model = VecDeque::new();
        let mut c = 0u8;
        let mut buf = vec![0u8; size];
        for step in 0..40usize {
            let n = (size / 3 + step * 7) % size + 1;
            let d: Vec<u8> = (0..n)
                .map(|_| {
                    c = c.wrapping_add(13);
                    c
                })
                .collect();
            let k = p.server.try_write(&d).unwrap_or(0);
            model.extend(&d[..k]);
            let m = p.client.try_read(&mut buf[..(n * 2 / 3).max(1)]).unwrap();
            let want: Vec<u8> = model.drain(..m).collect();
            assert_eq!(&buf[..m], &want[..], "order {o} step {step}");
        }
    }
}
