//! The [`vchan`] crate's platform traits implemented on the runtime
//! (feature `vchan`).
//!
//! The runtime is single-threaded and its services hang off one
//! `&mut Runtime`, while the vchan setup functions take the grant table,
//! the event channels and the store as three separate `&mut` arguments.
//! [`VchanPlatform`] bridges the two: it holds the runtime in a
//! [`RefCell`] and every trait is implemented on `&VchanPlatform`, which is
//! `Copy`, so one platform value serves as all three arguments:
//!
//! ```ignore
//! let plat = VchanPlatform::new(rt);
//! let (mut g, mut e, mut s) = (&plat, &plat, &plat);
//! let chan = server.listen(&mut g, &mut e, &mut s)?;
//! ```
//!
//! Each operation borrows the runtime only for its own duration; a failed
//! borrow (which the single-threaded call structure never produces) is
//! reported as `EBUSY`, never as a panic.
//!
//! * Shared memory: [`Pages`] over a list of granted ([`GrantedPage`]) or
//!   mapped ([`MappedGrant`]) pages; an offset selects a page and an offset
//!   in it. Atomics go through [`SharedPage`]'s accessors; copies use its
//!   word-wise volatile `copy_in`/`copy_out`, split at page boundaries.
//! * Grants: `share` allocates zeroed pages and grants each one; `unshare`
//!   ends access, retrying while the peer still maps a page (up to
//!   [`UNSHARE_PATIENCE`] for the whole set); a page the peer keeps mapped
//!   is leaked (with a console message), never freed.
//! * Event channels: `alloc_unbound`, `bind_interdomain`, `close`, `send`;
//!   `wait` uses the runtime's latched `fired` bitmap, so an event that
//!   arrived before the wait is reported by it.
//! * Store: `write_nodes` is one transaction (mkdir, writes, permissions on
//!   the directory and every key: owner full, reader read, others none);
//!   `wait_change` registers one xenstore watch on the directory (token
//!   `vchan`) and waits for its next event. Watch events of other tokens
//!   that arrive meanwhile are consumed too (harmless for the setup loops,
//!   which re-check the store).
//! * [`vchan::UnmapNotify`] cannot be honoured: a unikernel has no kernel
//!   that outlives it to clear the live byte when it crashes. It is
//!   ignored; a peer notices our death through the orderly-close path only
//!   (or its own domain-death watch).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::Ordering;
use core::time::Duration;

use vchan::{
    Clock, DomId, Errno, EventChannel, EventChannels, GrantAlloc, GrantMap, GrantRef, Perms, Port,
    SharedMemory, Store, UnmapNotify,
};
use xen_hypercall as hc;
use xen_proto::xenstore::{Access, Perm, XsError};

use crate::Runtime;
use crate::events::EventError;
use crate::gnttab::{GrantError, GrantedPage, MappedGrant};
use crate::mem::{OwnedPage, PAGE_SIZE, SharedPage};
use crate::time::Instant;
use crate::xenstore::XsOpError;

/// How long `unshare` keeps retrying `end_access` for pages the peer still
/// maps before leaking them.
pub const UNSHARE_PATIENCE: Duration = Duration::from_secs(5);

const EIO: i32 = 5;
const ENOENT: i32 = 2;
const EAGAIN: i32 = 11;
const ENOMEM: i32 = 12;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;
const ETIMEDOUT: i32 = 110;

/// xenstore watch token used by [`Store::wait_change`].
const WATCH_TOKEN: &str = "vchan";

/// The runtime, shared by the vchan platform traits (see the module docs).
pub struct VchanPlatform<'r> {
    rt: RefCell<&'r mut Runtime>,
    /// Directory currently watched for `wait_change`.
    watched: RefCell<Option<String>>,
}

impl<'r> VchanPlatform<'r> {
    pub fn new(rt: &'r mut Runtime) -> Self {
        Self {
            rt: RefCell::new(rt),
            watched: RefCell::new(None),
        }
    }

    /// Runs `f` with the runtime; `EBUSY` if it is already borrowed.
    pub fn with_rt<T>(&self, f: impl FnOnce(&mut Runtime) -> Result<T, Errno>) -> Result<T, Errno> {
        let mut rt = self.rt.try_borrow_mut().map_err(|_| Errno(-EBUSY))?;
        f(&mut rt)
    }

    /// Removes the `wait_change` watch, if any, and gives the runtime back.
    pub fn into_inner(self) -> &'r mut Runtime {
        let rt = self.rt.into_inner();
        if let Some(dir) = self.watched.into_inner()
            && let Ok(mut s) = rt.store()
        {
            let _ = s.unwatch(&dir, WATCH_TOKEN);
        }
        rt
    }
}

fn hc_errno(e: hc::Error) -> Errno {
    Errno(-(e.errno().unwrap_or(EIO as i64) as i32))
}

fn grant_errno(e: GrantError) -> Errno {
    match e {
        GrantError::Hypercall(e) => hc_errno(e),
        GrantError::Status(_) => Errno(-EINVAL),
        GrantError::TableFull => Errno(-ENOSPC),
        GrantError::StillInUse => Errno(-EBUSY),
        GrantError::Memory(crate::mem::MemError::OutOfMemory) => Errno(-ENOMEM),
        GrantError::Memory(_) => Errno(-ENOSPC),
    }
}

fn event_errno(e: EventError) -> Errno {
    match e {
        EventError::Hypercall(e) => hc_errno(e),
        EventError::BadPort(_) | EventError::BadInterrupt(_) => Errno(-EINVAL),
        EventError::TimedOut => Errno(-ETIMEDOUT),
    }
}

fn xs_errno(e: &XsOpError) -> Errno {
    Errno(-match e {
        XsOpError::Store(XsError::ENOENT) => ENOENT,
        XsOpError::Store(XsError::EAGAIN) => EAGAIN,
        XsOpError::Store(XsError::EACCES | XsError::EPERM) => EACCES,
        XsOpError::Store(XsError::ENOMEM) => ENOMEM,
        XsOpError::Store(XsError::ENOSPC | XsError::E2BIG) => ENOSPC,
        XsOpError::Store(XsError::EINVAL) => EINVAL,
        XsOpError::TimedOut => ETIMEDOUT,
        _ => EIO,
    })
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now().after(t))
}

// ---------------------------------------------------------------------------
// Shared memory over a list of pages.

/// A list of pages that [`Pages`] presents as one contiguous range.
pub trait PageList {
    fn count(&self) -> usize;
    /// Runs `f` on page `i`; `None` if there is no such page.
    fn with<R>(&self, i: usize, f: impl FnOnce(&SharedPage) -> R) -> Option<R>;
}

impl PageList for Vec<GrantedPage> {
    fn count(&self) -> usize {
        self.len()
    }
    fn with<R>(&self, i: usize, f: impl FnOnce(&SharedPage) -> R) -> Option<R> {
        let view = self.get(i)?.shared()?;
        Some(f(&view))
    }
}

impl PageList for Vec<MappedGrant> {
    fn count(&self) -> usize {
        self.len()
    }
    fn with<R>(&self, i: usize, f: impl FnOnce(&SharedPage) -> R) -> Option<R> {
        self.get(i)?.page().map(f)
    }
}

/// Several shared pages as one [`SharedMemory`] of `count * PAGE_SIZE`
/// bytes. Accesses outside the range are bugs of the caller (the vchan
/// crate checks its geometry once at setup): loads return 0 and stores are
/// dropped rather than panicking.
pub struct Pages<L: PageList> {
    pages: L,
}

/// Our pages granted to a peer (server side).
pub type GrantedPages = Pages<Vec<GrantedPage>>;
/// A peer's pages mapped here (client side).
pub type MappedPages = Pages<Vec<MappedGrant>>;

impl<L: PageList> Pages<L> {
    fn at<R: Default>(&self, off: usize, f: impl FnOnce(&SharedPage, usize) -> R) -> R {
        self.pages
            .with(off / PAGE_SIZE, |p| f(p, off % PAGE_SIZE))
            .unwrap_or_default()
    }
}

impl<L: PageList> SharedMemory for Pages<L> {
    fn len(&self) -> usize {
        self.pages.count() * PAGE_SIZE
    }
    fn load_u8(&self, off: usize, order: Ordering) -> u8 {
        self.at(off, |p, o| p.load_u8(o, order).unwrap_or(0))
    }
    fn store_u8(&self, off: usize, val: u8, order: Ordering) {
        self.at(off, |p, o| {
            let _ = p.store_u8(o, val, order);
        })
    }
    fn fetch_or_u8(&self, off: usize, val: u8, order: Ordering) -> u8 {
        self.at(off, |p, o| p.fetch_or_u8(o, val, order).unwrap_or(0))
    }
    fn fetch_and_u8(&self, off: usize, val: u8, order: Ordering) -> u8 {
        self.at(off, |p, o| p.fetch_and_u8(o, val, order).unwrap_or(0))
    }
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        self.at(off, |p, o| p.load_u16(o, order).unwrap_or(0))
    }
    fn store_u16(&self, off: usize, val: u16, order: Ordering) {
        self.at(off, |p, o| {
            let _ = p.store_u16(o, val, order);
        })
    }
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        self.at(off, |p, o| p.load_u32(o, order).unwrap_or(0))
    }
    fn store_u32(&self, off: usize, val: u32, order: Ordering) {
        self.at(off, |p, o| {
            let _ = p.store_u32(o, val, order);
        })
    }
    fn copy_out(&self, mut off: usize, mut dst: &mut [u8]) {
        while !dst.is_empty() {
            let in_page = off % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(dst.len());
            let (now, rest) = dst.split_at_mut(n);
            let copied = self
                .pages
                .with(off / PAGE_SIZE, |p| p.copy_out(in_page, now).is_ok());
            if copied != Some(true) {
                now.fill(0);
            }
            dst = rest;
            off += n;
        }
    }
    fn copy_in(&self, mut off: usize, mut src: &[u8]) {
        while !src.is_empty() {
            let in_page = off % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(src.len());
            let (now, rest) = src.split_at(n);
            let _ = self
                .pages
                .with(off / PAGE_SIZE, |p| p.copy_in(in_page, now));
            src = rest;
            off += n;
        }
    }
}

// ---------------------------------------------------------------------------
// Grants.

/// Ends access to each page, retrying (with short sleeps) while the peer
/// still maps it, until `UNSHARE_PATIENCE` has passed; the rest is leaked.
fn end_all(rt: &mut Runtime, pages: Vec<GrantedPage>) {
    let deadline = Instant::now().after(UNSHARE_PATIENCE);
    for mut g in pages {
        loop {
            match rt.grants.end_access(g) {
                Ok(page) => {
                    drop(page);
                    break;
                }
                Err((back, _)) if Instant::now() < deadline => {
                    g = back;
                    rt.events.sleep_for(Duration::from_millis(2));
                }
                Err((back, e)) => {
                    crate::println!(
                        "xen-rt: vchan: dom{} still maps grant {} ({:?}); leaking the page",
                        back.peer().0,
                        back.gref().0,
                        e
                    );
                    // GrantedPage's Drop leaks the page (never frees it).
                    drop(back);
                    break;
                }
            }
        }
    }
}

impl GrantAlloc for &VchanPlatform<'_> {
    type Mem = GrantedPages;

    fn share(
        &mut self,
        peer: DomId,
        refs: &mut [GrantRef],
        writable: bool,
        _notify: Option<UnmapNotify>,
    ) -> Result<GrantedPages, Errno> {
        self.with_rt(|rt| {
            let mut pages = Vec::new();
            pages
                .try_reserve_exact(refs.len())
                .map_err(|_| Errno(-ENOMEM))?;
            for r in refs.iter_mut() {
                let granted = OwnedPage::new()
                    .map_err(|_| Errno(-ENOMEM))
                    .and_then(|page| {
                        rt.grants
                            .grant(page, hc::DomId(peer), !writable)
                            .map_err(|(_, e)| grant_errno(e))
                    });
                match granted {
                    Ok(g) => {
                        *r = g.gref().0;
                        pages.push(g);
                    }
                    Err(e) => {
                        // Nobody knows these refs yet: ends at once.
                        end_all(rt, pages);
                        return Err(e);
                    }
                }
            }
            Ok(Pages { pages })
        })
    }

    fn unshare(&mut self, mem: GrantedPages) {
        match self.rt.try_borrow_mut() {
            Ok(mut rt) => end_all(&mut rt, mem.pages),
            Err(_) => {
                crate::println!("xen-rt: vchan: runtime busy in unshare; leaking the pages");
                drop(mem);
            }
        }
    }
}

fn unmap_all(rt: &mut Runtime, maps: Vec<MappedGrant>) {
    for m in maps {
        if let Err((back, e)) = rt.grants.unmap(&mut rt.foreign, m) {
            crate::println!(
                "xen-rt: vchan: unmapping dom{} grant {} failed: {:?}",
                back.peer().0,
                back.gref().0,
                e
            );
            // MappedGrant's Drop reports the leaked address space.
            drop(back);
        }
    }
}

impl GrantMap for &VchanPlatform<'_> {
    type Mem = MappedPages;

    fn map(
        &mut self,
        peer: DomId,
        refs: &[GrantRef],
        writable: bool,
        _notify: Option<UnmapNotify>,
    ) -> Result<MappedPages, Errno> {
        self.with_rt(|rt| {
            let mut pages = Vec::new();
            pages
                .try_reserve_exact(refs.len())
                .map_err(|_| Errno(-ENOMEM))?;
            for &r in refs {
                match rt
                    .grants
                    .map(&mut rt.foreign, hc::DomId(peer), hc::GrantRef(r), !writable)
                {
                    Ok(m) => pages.push(m),
                    Err(e) => {
                        unmap_all(rt, pages);
                        return Err(grant_errno(e));
                    }
                }
            }
            Ok(Pages { pages })
        })
    }

    fn unmap(&mut self, mem: MappedPages) {
        match self.rt.try_borrow_mut() {
            Ok(mut rt) => unmap_all(&mut rt, mem.pages),
            Err(_) => {
                crate::println!("xen-rt: vchan: runtime busy in unmap; leaking the mappings");
                drop(mem);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Event channels.

/// A bound event-channel port of a [`VchanPlatform`].
pub struct VchanEvent<'p, 'r> {
    plat: &'p VchanPlatform<'r>,
    port: hc::EvtchnPort,
}

impl EventChannel for VchanEvent<'_, '_> {
    fn port(&self) -> Port {
        self.port.0
    }

    fn notify(&mut self) -> Result<(), Errno> {
        let port = self.port;
        self.plat
            .with_rt(|rt| rt.events.notify(port).map_err(event_errno))
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, Errno> {
        let port = self.port;
        self.plat.with_rt(|rt| {
            if timeout == Some(Duration::ZERO) {
                return Ok(rt.events.take(port));
            }
            match rt.events.wait(port, deadline(timeout)) {
                Ok(()) => Ok(true),
                Err(EventError::TimedOut) => Ok(false),
                Err(e) => Err(event_errno(e)),
            }
        })
    }
}

impl<'p, 'r> EventChannels for &'p VchanPlatform<'r> {
    type Channel = VchanEvent<'p, 'r>;

    fn alloc_unbound(&mut self, remote: DomId) -> Result<(VchanEvent<'p, 'r>, Port), Errno> {
        let plat = *self;
        let port = plat.with_rt(|rt| {
            rt.events
                .alloc_unbound(hc::DomId(remote))
                .map_err(event_errno)
        })?;
        Ok((VchanEvent { plat, port }, port.0))
    }

    fn bind_interdomain(
        &mut self,
        remote: DomId,
        remote_port: Port,
    ) -> Result<VchanEvent<'p, 'r>, Errno> {
        let plat = *self;
        let port = plat.with_rt(|rt| {
            rt.events
                .bind_interdomain(hc::DomId(remote), hc::EvtchnPort(remote_port))
                .map_err(event_errno)
        })?;
        Ok(VchanEvent { plat, port })
    }

    fn close(&mut self, channel: VchanEvent<'p, 'r>) {
        let port = channel.port;
        if let Err(e) = self.with_rt(|rt| rt.events.close(port).map_err(event_errno)) {
            crate::println!("xen-rt: vchan: closing port {} failed: {:?}", port.0, e);
        }
    }
}

// ---------------------------------------------------------------------------
// Store.

fn join(dir: &str, key: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), key)
}

impl Store for &VchanPlatform<'_> {
    fn write_nodes(
        &mut self,
        dir: &str,
        entries: &[(&str, &str)],
        perms: Perms,
    ) -> Result<(), Errno> {
        let list = [
            Perm {
                domid: perms.owner,
                access: Access::None,
            },
            Perm {
                domid: perms.reader,
                access: Access::Read,
            },
        ];
        let keys: Vec<String> = entries.iter().map(|(k, _)| join(dir, k)).collect();
        self.with_rt(|rt| {
            let mut store = rt.store().map_err(|_| Errno(-EIO))?;
            store
                .transaction(|tx| {
                    tx.mkdir(dir)?;
                    for (path, (_, value)) in keys.iter().zip(entries) {
                        tx.write(path, value.as_bytes())?;
                    }
                    tx.set_perms(dir, &list)?;
                    for path in &keys {
                        tx.set_perms(path, &list)?;
                    }
                    Ok(())
                })
                .map_err(|e| xs_errno(&e))
        })
    }

    fn read_node(&mut self, dir: &str, key: &str, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
        let path = join(dir, key);
        self.with_rt(|rt| {
            let mut store = rt.store().map_err(|_| Errno(-EIO))?;
            match store.read(&path) {
                Ok(v) => {
                    let n = v.len().min(buf.len());
                    buf[..n].copy_from_slice(&v[..n]);
                    Ok(Some(v.len()))
                }
                // xenstored answers EACCES instead of ENOENT for a missing
                // node under a directory we may not read (e.g. before a
                // dom0 server created its nodes readable by us): for us,
                // both mean "not advertised (yet)".
                Err(XsOpError::Store(XsError::ENOENT | XsError::EACCES)) => Ok(None),
                Err(e) => Err(xs_errno(&e)),
            }
        })
    }

    fn remove(&mut self, dir: &str) -> Result<(), Errno> {
        self.with_rt(|rt| {
            let mut store = rt.store().map_err(|_| Errno(-EIO))?;
            match store.rm(dir) {
                Ok(()) | Err(XsOpError::Store(XsError::ENOENT)) => Ok(()),
                Err(e) => Err(xs_errno(&e)),
            }
        })
    }

    fn wait_change(&mut self, dir: &str, timeout: Option<Duration>) -> Result<bool, Errno> {
        let mut watched = self.watched.try_borrow_mut().map_err(|_| Errno(-EBUSY))?;
        self.with_rt(|rt| {
            let mut store = rt.store().map_err(|_| Errno(-EIO))?;
            if watched.as_deref() != Some(dir) {
                if let Some(old) = watched.take() {
                    let _ = store.unwatch(&old, WATCH_TOKEN);
                }
                store.watch(dir, WATCH_TOKEN).map_err(|e| xs_errno(&e))?;
                *watched = Some(String::from(dir));
            }
            // `None` waits "forever": a day at a time.
            let t = timeout.unwrap_or(Duration::from_secs(86_400));
            match store.next_watch_event(t) {
                Ok(_) => Ok(true),
                Err(XsOpError::TimedOut) => Ok(timeout.is_none()),
                Err(e) => Err(xs_errno(&e)),
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Clock.

impl Clock for &VchanPlatform<'_> {
    fn now(&self) -> Duration {
        Instant::now().since_creation()
    }
}

impl Clock for VchanPlatform<'_> {
    fn now(&self) -> Duration {
        Instant::now().since_creation()
    }
}
