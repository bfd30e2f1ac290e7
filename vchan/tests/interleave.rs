//! Exhaustive interleaving test of the notify-bit protocol (no lost
//! wake-up), running the real `Vchan` code.
//!
//! Each of the two ends runs on its own thread, but a scheduler lets only
//! one thread run at a time and makes every access to the shared header a
//! scheduling point (the data copies are ordered by the indices and are not
//! points). Event channels are simulated inside the scheduler with latching
//! pending bits. A depth-first search replays every schedule: all of them
//! for the small scenarios, all with at most `k` preemptions for the larger
//! ones. A state where both threads wait for an event (or one has finished
//! and the other waits forever) is a lost wake-up and fails the test.
//!
//! The search is sequentially consistent; `tests/loom_notify.rs` (run with
//! `RUSTFLAGS="--cfg loom"`) checks the same protocol under the C11 model.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use embedded_io::{Read, Write};
use vchan::sim::{SimDomain, SimMemory, SimXen};
use vchan::*;

#[derive(Default)]
struct St {
    active: bool,
    current: usize,
    done: [bool; 2],
    blocked: [bool; 2],
    pending: [bool; 2],
    prefix: Vec<usize>,
    trace: Vec<(usize, usize)>,
    pos: usize,
    preemptions: usize,
    bound: Option<usize>,
    deadlock: bool,
    points: usize,
}

#[derive(Default)]
struct Sched {
    m: Mutex<St>,
    cv: Condvar,
}

impl Sched {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pick the next thread to run; called with the lock held by the
    /// current thread (or by a thread that just blocked or finished).
    fn schedule(&self, st: &mut St) {
        let cur = st.current;
        let runnable = |t: usize| !st.done[t] && !st.blocked[t];
        let mut options = Vec::with_capacity(2);
        let cur_runs = runnable(cur);
        if cur_runs {
            options.push(cur);
        }
        let other = 1 - cur;
        let may_preempt = !cur_runs || st.bound.is_none_or(|b| st.preemptions < b);
        if runnable(other) && may_preempt {
            options.push(other);
        }
        if options.is_empty() {
            if st.blocked.iter().any(|&b| b) {
                st.deadlock = true;
            }
            self.cv.notify_all();
            return;
        }
        let choice = if options.len() > 1 {
            let c = st
                .prefix
                .get(st.pos)
                .copied()
                .unwrap_or(0)
                .min(options.len() - 1);
            st.trace.push((c, options.len()));
            st.pos += 1;
            c
        } else {
            0
        };
        let next = options[choice];
        if cur_runs && next != cur {
            st.preemptions += 1;
        }
        st.current = next;
        self.cv.notify_all();
    }

    /// A scheduling point before a shared access by thread `tid`.
    fn point(&self, tid: usize) {
        let mut st = self.lock();
        if !st.active || st.deadlock {
            return;
        }
        st.points += 1;
        self.schedule(&mut st);
        while st.current != tid && !st.deadlock {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn start(&self, tid: usize) {
        let mut st = self.lock();
        while st.current != tid && !st.deadlock {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finish(&self, tid: usize) {
        let mut st = self.lock();
        st.done[tid] = true;
        if st.current == tid {
            self.schedule(&mut st);
        }
    }

    fn notify(&self, from: usize) {
        self.point(from);
        let mut st = self.lock();
        let to = 1 - from;
        st.pending[to] = true;
        st.blocked[to] = false;
    }

    fn wait(&self, tid: usize) -> Result<bool, Errno> {
        let mut st = self.lock();
        if !st.active {
            // Setup phase: behave like a latch without scheduling.
            let p = st.pending[tid];
            st.pending[tid] = false;
            return Ok(p);
        }
        loop {
            if st.pending[tid] {
                st.pending[tid] = false;
                return Ok(true);
            }
            if st.deadlock {
                return Err(Errno(-99));
            }
            st.blocked[tid] = true;
            self.schedule(&mut st);
            while (st.current != tid || st.blocked[tid]) && !st.deadlock {
                st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

struct Mem {
    inner: SimMemory,
    s: Arc<Sched>,
    tid: usize,
    /// Checker self-test: drop every notification request (fetch_or).
    sabotage: bool,
}

impl SharedMemory for Mem {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn load_u8(&self, off: usize, o: Ordering) -> u8 {
        self.s.point(self.tid);
        self.inner.load_u8(off, o)
    }
    fn store_u8(&self, off: usize, v: u8, o: Ordering) {
        self.s.point(self.tid);
        self.inner.store_u8(off, v, o)
    }
    fn fetch_or_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
        self.s.point(self.tid);
        if self.sabotage && self.s.lock().active {
            return self.inner.load_u8(off, o);
        }
        self.inner.fetch_or_u8(off, v, o)
    }
    fn fetch_and_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
        self.s.point(self.tid);
        self.inner.fetch_and_u8(off, v, o)
    }
    fn load_u16(&self, off: usize, o: Ordering) -> u16 {
        self.s.point(self.tid);
        self.inner.load_u16(off, o)
    }
    fn store_u16(&self, off: usize, v: u16, o: Ordering) {
        self.s.point(self.tid);
        self.inner.store_u16(off, v, o)
    }
    fn load_u32(&self, off: usize, o: Ordering) -> u32 {
        self.s.point(self.tid);
        self.inner.load_u32(off, o)
    }
    fn store_u32(&self, off: usize, v: u32, o: Ordering) {
        self.s.point(self.tid);
        self.inner.store_u32(off, v, o)
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        self.inner.copy_out(off, dst)
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        self.inner.copy_in(off, src)
    }
}

struct Evt {
    s: Arc<Sched>,
    tid: usize,
}

impl EventChannel for Evt {
    fn port(&self) -> Port {
        self.tid as Port + 1
    }
    fn notify(&mut self) -> Result<(), Errno> {
        self.s.notify(self.tid);
        Ok(())
    }
    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, Errno> {
        assert!(timeout.is_none(), "scenarios block without timeouts");
        self.s.wait(self.tid)
    }
}

/// One domain's platform, wrapping the simulation's grants and store and
/// replacing memory and event channels by scheduled versions.
struct Plat {
    dom: SimDomain,
    s: Arc<Sched>,
    tid: usize,
    sabotage: bool,
}

impl GrantAlloc for Plat {
    type Mem = Mem;
    fn share(
        &mut self,
        peer: DomId,
        refs: &mut [GrantRef],
        w: bool,
        _: Option<UnmapNotify>,
    ) -> Result<Mem, Errno> {
        let inner = self.dom.share(peer, refs, w, None)?;
        Ok(Mem {
            inner,
            s: self.s.clone(),
            tid: self.tid,
            sabotage: self.sabotage,
        })
    }
    fn unshare(&mut self, m: Mem) {
        self.dom.unshare(m.inner)
    }
}

impl GrantMap for Plat {
    type Mem = Mem;
    fn map(
        &mut self,
        peer: DomId,
        refs: &[GrantRef],
        w: bool,
        _: Option<UnmapNotify>,
    ) -> Result<Mem, Errno> {
        let inner = GrantMap::map(&mut self.dom, peer, refs, w, None)?;
        Ok(Mem {
            inner,
            s: self.s.clone(),
            tid: self.tid,
            sabotage: self.sabotage,
        })
    }
    fn unmap(&mut self, m: Mem) {
        GrantMap::unmap(&mut self.dom, m.inner)
    }
}

impl EventChannels for Plat {
    type Channel = Evt;
    fn alloc_unbound(&mut self, _: DomId) -> Result<(Evt, Port), Errno> {
        Ok((
            Evt {
                s: self.s.clone(),
                tid: self.tid,
            },
            1,
        ))
    }
    fn bind_interdomain(&mut self, _: DomId, _: Port) -> Result<Evt, Errno> {
        Ok(Evt {
            s: self.s.clone(),
            tid: self.tid,
        })
    }
    fn close(&mut self, _: Evt) {}
}

impl Store for Plat {
    fn write_nodes(&mut self, d: &str, e: &[(&str, &str)], p: Perms) -> Result<(), Errno> {
        self.dom.write_nodes(d, e, p)
    }
    fn read_node(&mut self, d: &str, k: &str, b: &mut [u8]) -> Result<Option<usize>, Errno> {
        self.dom.read_node(d, k, b)
    }
    fn remove(&mut self, d: &str) -> Result<(), Errno> {
        self.dom.remove(d)
    }
    fn wait_change(&mut self, d: &str, t: Option<Duration>) -> Result<bool, Errno> {
        self.dom.wait_change(d, t)
    }
}

type Chan = Vchan<Mem, Evt>;

/// A scenario: setup (unscheduled) and the two thread bodies.
struct Scenario {
    name: &'static str,
    orders: (u8, u8),
    init: u32,
    setup: fn(&mut Chan, &mut Chan),
    server: fn(&mut Chan),
    client: fn(&mut Chan),
    sabotage: bool,
}

struct Outcome {
    trace: Vec<(usize, usize)>,
    deadlock: bool,
    panicked: bool,
}

fn run_once(sc: &Scenario, prefix: &[usize], bound: Option<usize>) -> Outcome {
    let s = Arc::new(Sched::default());
    let xen = SimXen::new();
    let path = "/local/domain/0/data/vchan/1/x";
    let plat = |d: u16, tid| Plat {
        dom: xen.domain(d),
        s: s.clone(),
        tid,
        sabotage: sc.sabotage,
    };
    let cfg = Server {
        local: 0,
        peer: 1,
        path,
        read_order: sc.orders.0,
        write_order: sc.orders.1,
        initial_index: sc.init,
    };
    let mut srv = cfg
        .listen(&mut plat(0, 0), &mut plat(0, 0), &mut plat(0, 0))
        .unwrap();
    let mut cli = Client { peer: 0, path }
        .connect(&mut plat(1, 1), &mut plat(1, 1), &mut plat(1, 1))
        .unwrap();
    (sc.setup)(&mut srv, &mut cli);
    {
        let mut st = s.lock();
        st.active = true;
        st.current = 0;
        st.pending = [false; 2];
        st.prefix = prefix.to_vec();
        st.bound = bound;
    }
    struct Finish(Arc<Sched>, usize);
    impl Drop for Finish {
        fn drop(&mut self) {
            self.0.finish(self.1);
        }
    }
    let (sf, cf) = (sc.server, sc.client);
    let s1 = s.clone();
    let t = thread::spawn(move || {
        let _f = Finish(s1.clone(), 1);
        s1.start(1);
        cf(&mut cli);
    });
    let r0 = {
        let s0 = s.clone();
        thread::spawn(move || {
            let _f = Finish(s0.clone(), 0);
            s0.start(0);
            sf(&mut srv);
        })
        .join()
    };
    let r1 = t.join();
    let st = s.lock();
    Outcome {
        trace: st.trace.clone(),
        deadlock: st.deadlock,
        panicked: r0.is_err() || r1.is_err(),
    }
}

fn explore(sc: &Scenario, bound: Option<usize>, max_runs: usize) -> usize {
    match try_explore(sc, bound, max_runs) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

fn try_explore(sc: &Scenario, bound: Option<usize>, max_runs: usize) -> Result<usize, String> {
    let mut prefix: Vec<usize> = Vec::new();
    let mut runs = 0;
    loop {
        let out = run_once(sc, &prefix, bound);
        runs += 1;
        if out.deadlock {
            return Err(format!(
                "{}: lost wake-up (deadlock) with schedule {:?}",
                sc.name, out.trace
            ));
        }
        if out.panicked {
            return Err(format!(
                "{}: scenario failed with schedule {:?}",
                sc.name, out.trace
            ));
        }
        assert!(
            runs <= max_runs,
            "{}: state space larger than expected",
            sc.name
        );
        let mut t = out.trace;
        loop {
            match t.pop() {
                None => return Ok(runs),
                Some((c, n)) if c + 1 < n => {
                    prefix = t.iter().map(|x| x.0).collect();
                    prefix.push(c + 1);
                    break;
                }
                Some(_) => {}
            }
        }
    }
}

fn nothing(_: &mut Chan, _: &mut Chan) {}

/// Reader blocks for data while the writer writes: WRITE-bit wake-up.
#[test]
fn data_wakeup_exhaustive() {
    let sc = Scenario {
        name: "data wake-up",
        orders: (10, 11),
        init: u32::MAX,
        setup: nothing,
        server: |s| s.write_all(b"ab").unwrap(),
        sabotage: false,
        client: |c| {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ab");
        },
    };
    let runs = explore(&sc, None, 1_000_000);
    eprintln!("{}: {runs} schedules", sc.name);
    assert!(runs > 10);
}

/// Writer blocks on a full ring while the reader drains: READ-bit wake-up.
#[test]
fn space_wakeup_exhaustive() {
    let sc = Scenario {
        name: "space wake-up",
        orders: (11, 10),
        init: u32::MAX - 1,
        setup: |s, _| s.write_all(&[9; 1024]).unwrap(),
        server: |s| s.write_all(&[7; 3]).unwrap(),
        sabotage: false,
        client: |c| {
            let mut b = [0u8; 1027];
            c.read_exact(&mut b).unwrap();
            assert!(b[..1024].iter().all(|&x| x == 9) && b[1024..] == [7; 3]);
        },
    };
    let runs = explore(&sc, None, 1_000_000);
    eprintln!("{}: {runs} schedules", sc.name);
    assert!(runs > 10);
}

/// Ping-pong both ways with both ends blocking, plus a close: all
/// schedules with up to 2 preemptions.
#[test]
fn ping_pong_bounded() {
    let sc = Scenario {
        name: "ping-pong",
        orders: (10, 11),
        init: 0,
        setup: nothing,
        server: |s| {
            s.write_all(b"p").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"q");
            s.write_all(b"r").unwrap();
            s.shutdown();
        },
        sabotage: false,
        client: |c| {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"p");
            c.write_all(b"q").unwrap();
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"r");
            assert_eq!(c.read(&mut b).unwrap(), 0);
        },
    };
    let runs = explore(&sc, Some(3), 2_000_000);
    eprintln!("{}: {runs} schedules", sc.name);
    assert!(runs > 10);
}

/// The checker itself: with notification requests sabotaged (the reader
/// "forgets" to set the WRITE bit before sleeping), some schedule loses
/// the wake-up for the second write, and the search must find it.
#[test]
fn checker_catches_a_lost_wakeup() {
    let sc = Scenario {
        name: "sabotaged",
        orders: (10, 11),
        init: 0,
        setup: nothing,
        server: |s| {
            s.write_all(b"a").unwrap();
            s.write_all(b"b").unwrap();
        },
        client: |c| {
            let mut b = [0u8; 2];
            let _ = c.read_exact(&mut b);
        },
        sabotage: true,
    };
    let r = try_explore(&sc, None, 1_000_000);
    assert!(
        r.as_ref().is_err_and(|e| e.contains("lost wake-up")),
        "{r:?}"
    );
    eprintln!("sabotaged: {}", r.unwrap_err());
    let ok = Scenario {
        sabotage: false,
        name: "two writes",
        ..sc
    };
    let runs = explore(&ok, Some(3), 1_000_000);
    eprintln!("two writes (<= 3 preemptions): {runs} schedules");
}

/// The two-writes scenario without a preemption bound: ~700k schedules,
/// about two minutes in release mode (`cargo test --release -- --ignored`).
#[test]
#[ignore]
fn two_writes_exhaustive() {
    let sc = Scenario {
        name: "two writes",
        orders: (10, 11),
        init: 0,
        setup: nothing,
        server: |s| {
            s.write_all(b"a").unwrap();
            s.write_all(b"b").unwrap();
        },
        client: |c| {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ab");
        },
        sabotage: false,
    };
    let runs = explore(&sc, None, 2_000_000);
    eprintln!("{}: {runs} schedules", sc.name);
}
