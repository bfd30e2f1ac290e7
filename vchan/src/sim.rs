//! Host test doubles of the platform traits (feature `sim`, needs `std`).
//!
//! [`SimXen`] simulates the parts of a Xen host a vchan needs: a grant table
//! (pages are `Arc<[AtomicU32]>` words shared by every mapping), event
//! channels with latching pending bits, and a xenstore with permissions,
//! transactions and a change counter for watches. [`SimDomain`] is one
//! domain's view and implements every trait; it is a cheap handle
//! (`Clone`), so one domain can be passed as grant table, event-channel
//! provider and store at once.
//!
//! It is also the reference for an RTOS implementation of the traits, and
//! it checks the crate: a write through a read-only mapping, an
//! out-of-bounds or misaligned access panics here.

use std::collections::{BTreeMap, HashMap};
use std::string::{String, ToString};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::layout::*;
use crate::platform::*;

const WORDS: usize = PAGE_SIZE / 4;

type Page = Arc<[AtomicU32]>;

fn new_page() -> Page {
    (0..WORDS).map(|_| AtomicU32::new(0)).collect()
}

/// A simulated Xen host.
#[derive(Clone, Default)]
pub struct SimXen {
    hub: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    state: Mutex<HubState>,
    store_cv: Condvar,
}

#[derive(Default)]
struct HubState {
    grants: HashMap<(DomId, GrantRef), Grant>,
    next_ref: GrantRef,
    ports: HashMap<(DomId, Port), Arc<SimPort>>,
    next_port: Port,
    store: BTreeMap<String, Node>,
    store_gen: u64,
    unmap_notifies: Vec<(DomId, SimMemory, usize, Arc<SimPort>)>,
    fail_next_share: u32,
}

struct Grant {
    page: Page,
    grantee: DomId,
    writable: bool,
}

struct Node {
    value: String,
    owner: DomId,
    reader: DomId,
}

impl SimXen {
    /// A fresh host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Domain `domid`'s view of the host.
    pub fn domain(&self, domid: DomId) -> SimDomain {
        SimDomain {
            hub: self.hub.clone(),
            domid,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        lock(&self.hub)
    }

    /// Simulate the crash of `domid`: perform the unmap notifications it had
    /// registered (clear the live byte, signal the peer), as Linux's
    /// gntalloc/gntdev would.
    pub fn crash(&self, domid: DomId) {
        let list: Vec<_> = {
            let mut st = self.lock();
            let (mine, rest) = std::mem::take(&mut st.unmap_notifies)
                .into_iter()
                .partition(|n| n.0 == domid);
            st.unmap_notifies = rest;
            mine
        };
        for (_, mem, off, port) in list {
            mem.raw_store_u8(off, 0);
            port.send();
        }
    }

    /// Make the `n`-th next [`GrantAlloc::share`] call fail (1 = the next
    /// one; 0 cancels), for error-path tests.
    pub fn fail_nth_share(&self, n: u32) {
        self.lock().fail_next_share = n;
    }

    /// Number of live grants (to check that teardown releases them).
    pub fn grant_count(&self) -> usize {
        self.lock().grants.len()
    }

    /// Number of bound or unbound event-channel ports.
    pub fn port_count(&self) -> usize {
        self.lock().ports.len()
    }

    /// Read a xenstore node regardless of permissions.
    pub fn store_get(&self, path: &str) -> Option<String> {
        self.lock().store.get(path).map(|n| n.value.clone())
    }

    /// Write a xenstore node regardless of permissions (owner `owner`,
    /// readable by `reader`).
    pub fn store_set(&self, path: &str, value: &str, owner: DomId, reader: DomId) {
        let mut st = self.lock();
        st.store.insert(
            path.to_string(),
            Node {
                value: value.to_string(),
                owner,
                reader,
            },
        );
        st.store_gen += 1;
        drop(st);
        self.hub.store_cv.notify_all();
    }
}

fn lock(hub: &Hub) -> MutexGuard<'_, HubState> {
    hub.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// One domain's handle on a [`SimXen`].
#[derive(Clone)]
pub struct SimDomain {
    hub: Arc<Hub>,
    domid: DomId,
}

impl SimDomain {
    /// This domain's id.
    pub fn domid(&self) -> DomId {
        self.domid
    }
}

/// A mapping of simulated pages.
#[derive(Clone)]
pub struct SimMemory {
    pages: Arc<[Page]>,
    writable: bool,
    /// Grant refs, for `unshare` (server side only).
    refs: Arc<[GrantRef]>,
}

impl SimMemory {
    /// A standalone writable mapping of `pages` zeroed pages (not granted).
    pub fn anonymous(pages: usize) -> Self {
        SimMemory {
            pages: (0..pages).map(|_| new_page()).collect(),
            writable: true,
            refs: Arc::from([]),
        }
    }

    /// A writable alias of the same pages (what a hostile peer that mapped
    /// them read-write would see).
    pub fn writable_alias(&self) -> Self {
        SimMemory {
            writable: true,
            ..self.clone()
        }
    }

    #[inline]
    fn word(&self, off: usize) -> (&AtomicU32, u32) {
        let page = &self.pages[off / PAGE_SIZE];
        (&page[(off % PAGE_SIZE) / 4], ((off % 4) * 8) as u32)
    }

    #[inline]
    fn check_write(&self) {
        assert!(self.writable, "vchan wrote through a read-only mapping");
    }

    fn raw_store_u8(&self, off: usize, val: u8) {
        let (w, sh) = self.word(off);
        let _ = w.fetch_update(Ordering::SeqCst, Relaxed, |x| {
            Some((x & !(0xff << sh)) | ((val as u32) << sh))
        });
    }

    fn fetch_ordering(order: Ordering) -> Ordering {
        match order {
            Ordering::Release | Ordering::Relaxed => Relaxed,
            Ordering::AcqRel => Ordering::Acquire,
            o => o,
        }
    }
}

impl SharedMemory for SimMemory {
    fn len(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
    fn load_u8(&self, off: usize, order: Ordering) -> u8 {
        let (w, sh) = self.word(off);
        (w.load(order) >> sh) as u8
    }
    fn store_u8(&self, off: usize, val: u8, order: Ordering) {
        self.check_write();
        let (w, sh) = self.word(off);
        let _ = w.fetch_update(order, Self::fetch_ordering(order), |x| {
            Some((x & !(0xff << sh)) | ((val as u32) << sh))
        });
    }
    fn fetch_or_u8(&self, off: usize, val: u8, order: Ordering) -> u8 {
        self.check_write();
        let (w, sh) = self.word(off);
        (w.fetch_or((val as u32) << sh, order) >> sh) as u8
    }
    fn fetch_and_u8(&self, off: usize, val: u8, order: Ordering) -> u8 {
        self.check_write();
        let (w, sh) = self.word(off);
        (w.fetch_and(!((!val as u32 & 0xff) << sh), order) >> sh) as u8
    }
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        assert!(off.is_multiple_of(2), "misaligned u16");
        let (w, sh) = self.word(off);
        (w.load(order) >> sh) as u16
    }
    fn store_u16(&self, off: usize, val: u16, order: Ordering) {
        assert!(off.is_multiple_of(2), "misaligned u16");
        self.check_write();
        let (w, sh) = self.word(off);
        let _ = w.fetch_update(order, Self::fetch_ordering(order), |x| {
            Some((x & !(0xffff << sh)) | ((val as u32) << sh))
        });
    }
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        assert!(off.is_multiple_of(4), "misaligned u32");
        self.word(off).0.load(order)
    }
    fn store_u32(&self, off: usize, val: u32, order: Ordering) {
        assert!(off.is_multiple_of(4), "misaligned u32");
        self.check_write();
        self.word(off).0.store(val, order)
    }
    fn copy_out(&self, mut off: usize, mut dst: &mut [u8]) {
        assert!(off + dst.len() <= self.len(), "copy_out out of bounds");
        while !dst.is_empty() {
            if off.is_multiple_of(4) && dst.len() >= 4 {
                // Whole words up to the end of this page.
                let page = &self.pages[off / PAGE_SIZE];
                let start = (off % PAGE_SIZE) / 4;
                let n = (dst.len() / 4).min(WORDS - start);
                let (head, rest) = dst.split_at_mut(n * 4);
                for (w, c) in page[start..start + n].iter().zip(head.chunks_exact_mut(4)) {
                    c.copy_from_slice(&w.load(Relaxed).to_le_bytes());
                }
                off += n * 4;
                dst = rest;
            } else {
                dst[0] = self.load_u8(off, Relaxed);
                off += 1;
                dst = &mut dst[1..];
            }
        }
    }
    fn copy_in(&self, mut off: usize, mut src: &[u8]) {
        self.check_write();
        assert!(off + src.len() <= self.len(), "copy_in out of bounds");
        while !src.is_empty() {
            if off.is_multiple_of(4) && src.len() >= 4 {
                let page = &self.pages[off / PAGE_SIZE];
                let start = (off % PAGE_SIZE) / 4;
                let n = (src.len() / 4).min(WORDS - start);
                let (head, rest) = src.split_at(n * 4);
                for (w, c) in page[start..start + n].iter().zip(head.chunks_exact(4)) {
                    w.store(u32::from_le_bytes([c[0], c[1], c[2], c[3]]), Relaxed);
                }
                off += n * 4;
                src = rest;
            } else {
                self.store_u8(off, src[0], Relaxed);
                off += 1;
                src = &src[1..];
            }
        }
    }
}

impl GrantAlloc for SimDomain {
    type Mem = SimMemory;
    fn share(
        &mut self,
        peer: DomId,
        refs: &mut [GrantRef],
        writable: bool,
        notify: Option<UnmapNotify>,
    ) -> Result<SimMemory, Errno> {
        let mut st = lock(&self.hub);
        if st.fail_next_share > 0 {
            st.fail_next_share -= 1;
            if st.fail_next_share == 0 {
                return Err(Errno(-12));
            }
        }
        let pages: Arc<[Page]> = refs.iter().map(|_| new_page()).collect();
        for (r, p) in refs.iter_mut().zip(pages.iter()) {
            st.next_ref = st.next_ref.max(8) + 1; // refs 0..8 are reserved
            *r = st.next_ref;
            st.grants.insert(
                (self.domid, *r),
                Grant {
                    page: p.clone(),
                    grantee: peer,
                    writable,
                },
            );
        }
        let mem = SimMemory {
            pages,
            writable: true,
            refs: refs.iter().copied().collect(),
        };
        if let Some(n) = notify
            && let Some(port) = st.ports.get(&(self.domid, n.port)).cloned()
        {
            st.unmap_notifies
                .push((self.domid, mem.clone(), n.byte_offset, port));
        }
        Ok(mem)
    }

    fn unshare(&mut self, mem: SimMemory) {
        let mut st = lock(&self.hub);
        for r in mem.refs.iter() {
            st.grants.remove(&(self.domid, *r));
        }
        st.unmap_notifies
            .retain(|n| !(n.0 == self.domid && Arc::ptr_eq(&n.1.pages, &mem.pages)));
    }
}

impl GrantMap for SimDomain {
    type Mem = SimMemory;
    fn map(
        &mut self,
        peer: DomId,
        refs: &[GrantRef],
        writable: bool,
        notify: Option<UnmapNotify>,
    ) -> Result<SimMemory, Errno> {
        let mut st = lock(&self.hub);
        let mut pages = Vec::with_capacity(refs.len());
        for r in refs {
            let g = st.grants.get(&(peer, *r)).ok_or(Errno(-22))?;
            if g.grantee != self.domid || (writable && !g.writable) {
                return Err(Errno(-1));
            }
            pages.push(g.page.clone());
        }
        let mem = SimMemory {
            pages: pages.into(),
            writable,
            refs: Arc::from([]),
        };
        if let Some(n) = notify
            && let Some(port) = st.ports.get(&(self.domid, n.port)).cloned()
        {
            st.unmap_notifies
                .push((self.domid, mem.clone(), n.byte_offset, port));
        }
        Ok(mem)
    }

    fn unmap(&mut self, mem: SimMemory) {
        lock(&self.hub)
            .unmap_notifies
            .retain(|n| !(n.0 == self.domid && Arc::ptr_eq(&n.1.pages, &mem.pages)));
    }
}

struct SimPort {
    pending: Mutex<bool>,
    cv: Condvar,
    peer: Mutex<Option<Weak<SimPort>>>,
    remote: DomId,
    sent: AtomicU64,
    bound: AtomicU8,
}

impl SimPort {
    fn send(&self) {
        self.sent.fetch_add(1, Relaxed);
        let peer = self
            .peer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        if let Some(p) = peer {
            *p.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
            p.cv.notify_all();
        }
    }
}

/// A simulated event-channel endpoint.
pub struct SimEvent {
    port: Arc<SimPort>,
    domid: DomId,
    num: Port,
}

impl SimEvent {
    /// Events sent through this endpoint so far.
    pub fn sent(&self) -> u64 {
        self.port.sent.load(Relaxed)
    }
}

impl EventChannel for SimEvent {
    fn port(&self) -> Port {
        self.num
    }
    fn notify(&mut self) -> Result<(), Errno> {
        self.port.send();
        Ok(())
    }
    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, Errno> {
        let p = &self.port;
        let mut g = p.pending.lock().unwrap_or_else(|e| e.into_inner());
        match timeout {
            None => {
                while !*g {
                    g = p.cv.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
            Some(t) => {
                let deadline = Instant::now() + t;
                while !*g {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(false);
                    }
                    g =
                        p.cv.wait_timeout(g, deadline - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                }
            }
        }
        *g = false;
        Ok(true)
    }
}

impl EventChannels for SimDomain {
    type Channel = SimEvent;
    fn alloc_unbound(&mut self, remote: DomId) -> Result<(SimEvent, Port), Errno> {
        let mut st = lock(&self.hub);
        st.next_port += 1;
        let num = st.next_port;
        let port = Arc::new(SimPort {
            pending: Mutex::new(false),
            cv: Condvar::new(),
            peer: Mutex::new(None),
            remote,
            sent: AtomicU64::new(0),
            bound: AtomicU8::new(0),
        });
        st.ports.insert((self.domid, num), port.clone());
        Ok((
            SimEvent {
                port,
                domid: self.domid,
                num,
            },
            num,
        ))
    }

    fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<SimEvent, Errno> {
        let mut st = lock(&self.hub);
        let r = st
            .ports
            .get(&(remote, remote_port))
            .cloned()
            .ok_or(Errno(-22))?;
        if r.remote != self.domid || r.bound.swap(1, Relaxed) != 0 {
            return Err(Errno(-22));
        }
        st.next_port += 1;
        let num = st.next_port;
        let port = Arc::new(SimPort {
            pending: Mutex::new(false),
            cv: Condvar::new(),
            peer: Mutex::new(Some(Arc::downgrade(&r))),
            remote,
            sent: AtomicU64::new(0),
            bound: AtomicU8::new(1),
        });
        *r.peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(&port));
        st.ports.insert((self.domid, num), port.clone());
        Ok(SimEvent {
            port,
            domid: self.domid,
            num,
        })
    }

    fn close(&mut self, ch: SimEvent) {
        let mut st = lock(&self.hub);
        st.ports.remove(&(ch.domid, ch.num));
        st.unmap_notifies.retain(|n| !Arc::ptr_eq(&n.3, &ch.port));
        *ch.port.peer.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn join(dir: &str, key: &str) -> String {
    let mut s = String::with_capacity(dir.len() + key.len() + 1);
    s.push_str(dir);
    s.push('/');
    s.push_str(key);
    s
}

impl Store for SimDomain {
    fn write_nodes(
        &mut self,
        dir: &str,
        entries: &[(&str, &str)],
        perms: Perms,
    ) -> Result<(), Errno> {
        let mut st = lock(&self.hub);
        for (k, _) in entries {
            if let Some(n) = st.store.get(&join(dir, k))
                && n.owner != self.domid
                && self.domid != 0
            {
                return Err(Errno(-13));
            }
        }
        for (k, v) in entries {
            st.store.insert(
                join(dir, k),
                Node {
                    value: v.to_string(),
                    owner: perms.owner,
                    reader: perms.reader,
                },
            );
        }
        st.store_gen += 1;
        drop(st);
        self.hub.store_cv.notify_all();
        Ok(())
    }

    fn read_node(&mut self, dir: &str, key: &str, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
        let st = lock(&self.hub);
        match st.store.get(&join(dir, key)) {
            None => Ok(None),
            Some(n) if n.owner != self.domid && n.reader != self.domid && self.domid != 0 => {
                Err(Errno(-13))
            }
            Some(n) => {
                let b = n.value.as_bytes();
                let len = b.len().min(buf.len());
                buf[..len].copy_from_slice(&b[..len]);
                Ok(Some(len))
            }
        }
    }

    fn remove(&mut self, dir: &str) -> Result<(), Errno> {
        let mut st = lock(&self.hub);
        let prefix = join(dir, "");
        st.store.retain(|k, _| k != dir && !k.starts_with(&prefix));
        st.store_gen += 1;
        drop(st);
        self.hub.store_cv.notify_all();
        Ok(())
    }

    fn wait_change(&mut self, _dir: &str, timeout: Option<Duration>) -> Result<bool, Errno> {
        let mut st = lock(&self.hub);
        let gen0 = st.store_gen;
        let deadline = timeout.map(|t| Instant::now() + t);
        while st.store_gen == gen0 {
            match deadline {
                None => {
                    st = self
                        .hub
                        .store_cv
                        .wait(st)
                        .unwrap_or_else(|e| e.into_inner())
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    st = self
                        .hub
                        .store_cv
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        Ok(true)
    }
}

/// [`Clock`] over `std::time::Instant`.
#[derive(Clone, Copy, Debug)]
pub struct SimClock(Instant);

impl Default for SimClock {
    fn default() -> Self {
        SimClock(Instant::now())
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A connected server/client pair over a fresh [`SimXen`] (server domain 0,
/// client domain 1), for tests and benchmarks.
pub struct Pair {
    /// The host.
    pub xen: SimXen,
    /// Server end.
    pub server: crate::Vchan<SimMemory, SimEvent>,
    /// Client end.
    pub client: crate::Vchan<SimMemory, SimEvent>,
}

/// xenstore path used by [`pair`].
pub const PAIR_PATH: &str = "/local/domain/0/data/vchan/1/test";

/// Build a connected [`Pair`] with the given orders (`read_order` is the
/// server's read ring, i.e. client→server) and initial ring index.
pub fn pair(read_order: u8, write_order: u8, initial_index: u32) -> Result<Pair, crate::Error> {
    let xen = SimXen::new();
    let mut s = xen.domain(0);
    let mut c = xen.domain(1);
    let cfg = crate::Server {
        local: 0,
        peer: 1,
        path: PAIR_PATH,
        read_order,
        write_order,
        initial_index,
    };
    let server = cfg.listen(&mut s.clone(), &mut s.clone(), &mut s)?;
    let client = crate::Client {
        peer: 0,
        path: PAIR_PATH,
    }
    .connect(&mut c.clone(), &mut c.clone(), &mut c)?;
    Ok(Pair {
        xen,
        server,
        client,
    })
}

/// Fuzz driver for the peer-controlled header fields; used by the
/// cargo-fuzz target `vchan_header` and by a plain unit test.
///
/// The input picks a victim (server or client), ring orders and initial
/// header contents (for a client victim, everything the hostile server
/// publishes), then a sequence of operations interleaved with writes of
/// arbitrary values to peer-writable header fields. Invariants checked:
/// no panic, every result is `Ok` with a sane length or a typed error,
/// after a protocol error the channel stays closed, data read is only data
/// that was written when the peer behaved, and no operation blocks.
pub fn fuzz_header(data: &[u8]) {
    let mut u = Bytes(data);
    let client_victim = u.u8() & 1 == 1;
    let xen = SimXen::new();
    let path = PAIR_PATH;
    let (mut victim, hostile) = if client_victim {
        // A hostile server publishes an arbitrary header.
        let mut sd = xen.domain(0);
        let (_evt, port) = EventChannels::alloc_unbound(&mut sd, 1).expect("sim alloc");
        let mut r = [0u32; 1];
        let hdr = GrantAlloc::share(&mut sd, 1, &mut r, true, None).expect("sim share");
        let left_order = u.order();
        let right_order = u.order();
        hdr.store_u16(LEFT_ORDER, left_order, Relaxed);
        hdr.store_u16(RIGHT_ORDER, right_order, Relaxed);
        for off in [LEFT_CONS, LEFT_PROD, RIGHT_CONS, RIGHT_PROD] {
            hdr.store_u32(off, u.index(), Relaxed);
        }
        hdr.store_u8(SRV_LIVE, u.small(), Relaxed);
        hdr.store_u8(CLI_LIVE, u.small(), Relaxed);
        hdr.store_u8(SRV_NOTIFY, u.u8(), Relaxed);
        hdr.store_u8(CLI_NOTIFY, u.u8(), Relaxed);
        // Grant list: real refs of pages shared by the hostile server (so
        // that mapping can succeed), possibly mixed with garbage.
        let real = u.u8() & 1 == 1;
        let want = crate::Geometry::from_orders(left_order, right_order)
            .map(|g| g.grant_count())
            .unwrap_or(4);
        for i in 0..(PAGE_SIZE - GRANTS) / 4 {
            let g = if real && i < want {
                let mut rr = [0u32; 1];
                let _ = GrantAlloc::share(&mut sd, 1, &mut rr, true, None);
                if i < 4 && u.u8() == 0xff {
                    u.u32()
                } else {
                    rr[0]
                }
            } else if u.u8() == 0 {
                u.u32()
            } else {
                break;
            };
            hdr.store_u32(GRANTS + 4 * i, g, Relaxed);
        }
        let mut n1 = [0u8; 10];
        let mut n2 = [0u8; 10];
        let rr = fmt_num(&mut n1, if u.u8() == 0 { u.u32() } else { r[0] });
        let pp = fmt_num(&mut n2, if u.u8() == 0 { u.u32() } else { port });
        xen.store_set(&join(path, crate::KEY_RING_REF), rr, 0, 1);
        xen.store_set(&join(path, crate::KEY_EVENT_CHANNEL), pp, 0, 1);
        let mut cd = xen.domain(1);
        match (crate::Client { peer: 0, path }).connect(&mut cd.clone(), &mut cd.clone(), &mut cd) {
            Ok(c) => (c, hdr),
            Err(_) => return,
        }
    } else {
        let orders = [(10, 11), (11, 10), (12, 10), (11, 13), (16, 20), (20, 11)];
        let (ro, wo) = orders[u.u8() as usize % orders.len()];
        let init = u.index();
        let mut sd = xen.domain(0);
        let cfg = crate::Server {
            local: 0,
            peer: 1,
            path,
            read_order: ro,
            write_order: wo,
            initial_index: init,
        };
        let s = match cfg.listen(&mut sd.clone(), &mut sd.clone(), &mut sd) {
            Ok(s) => s,
            Err(e) => panic!("listen failed: {e:?}"),
        };
        // The hostile client maps the header page read-write.
        let r: u32 = xen
            .store_get(&join(path, crate::KEY_RING_REF))
            .and_then(|v| v.parse().ok())
            .expect("advert");
        let mut cd = xen.domain(1);
        let hdr = GrantMap::map(&mut cd, 0, &[r], true, None).expect("map");
        (s, hdr)
    };
    // Fields the hostile peer may write (from the victim's point of view).
    let peer_fields: [(usize, u8); 8] = [
        (LEFT_CONS, 4),
        (LEFT_PROD, 4),
        (RIGHT_CONS, 4),
        (RIGHT_PROD, 4),
        (CLI_LIVE, 1),
        (SRV_LIVE, 1),
        (CLI_NOTIFY, 1),
        (SRV_NOTIFY, 1),
    ];
    let mut broken = false;
    let mut buf = [0u8; 5000];
    while !u.0.is_empty() {
        let op = u.u8();
        let r = match op % 8 {
            0 | 1 => {
                let (off, w) = peer_fields[(op / 8) as usize % peer_fields.len()];
                if w == 4 {
                    hostile.store_u32(off, u.index(), Relaxed);
                } else {
                    hostile.store_u8(off, u.small(), Relaxed);
                }
                continue;
            }
            2 => {
                let n = u.u16() as usize % buf.len();
                victim.try_read(&mut buf[..n]).map(|k| assert!(k <= n))
            }
            3 => {
                let n = u.u16() as usize % buf.len();
                victim.try_write(&buf[..n]).map(|k| assert!(k <= n))
            }
            4 => victim
                .data_ready()
                .map(|k| assert!(k <= victim.read_capacity())),
            5 => victim
                .buffer_space()
                .map(|k| assert!(k <= victim.write_capacity())),
            6 => {
                let n = u.u16() as usize % (victim.write_capacity() + 2);
                victim.try_send(&buf[..n.min(buf.len())])
            }
            _ => {
                let n = u.u16() as usize % (victim.read_capacity() + 2);
                let n = n.min(buf.len());
                victim.try_recv(&mut buf[..n])
            }
        };
        if let Err(crate::Error::Protocol(_)) = r {
            broken = true;
        }
        if broken {
            // Once broken, always broken; the victim announced its exit.
            assert!(victim.protocol_error().is_some());
            assert!(!victim.is_open());
            assert!(matches!(
                victim.try_write(b"x"),
                Err(crate::Error::Protocol(_))
            ));
            assert!(matches!(
                victim.try_read(&mut buf[..1]),
                Err(crate::Error::Protocol(_))
            ));
            let live = if client_victim { CLI_LIVE } else { SRV_LIVE };
            assert_eq!(hostile.load_u8(live, Relaxed), 0);
            return;
        }
    }
}

fn fmt_num(buf: &mut [u8; 10], mut v: u32) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("0")
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
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
    /// Mostly-valid orders, sometimes anything.
    fn order(&mut self) -> u16 {
        let b = self.u8();
        if b < 0xf0 {
            10 + (b as u16 % 11)
        } else {
            self.u16()
        }
    }
    /// Live-byte-like values: mostly 0..=2.
    fn small(&mut self) -> u8 {
        let b = self.u8();
        if b < 0xf0 { b % 3 } else { b }
    }
    /// Ring indices: near 0, near u32::MAX, or anything.
    fn index(&mut self) -> u32 {
        match self.u8() % 4 {
            0 => self.u16() as u32,
            1 => u32::MAX - self.u16() as u32,
            2 => (self.u16() as u32).wrapping_sub(0x8000),
            _ => self.u32(),
        }
    }
}
