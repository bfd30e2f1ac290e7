//! Connection setup and teardown (libxenvchan `init.c` equivalent).

use core::fmt::Write as _;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::time::Duration;

use crate::chan::{Init, Parts, Role, Vchan};
use crate::error::{Error, ProtocolError};
use crate::layout::*;
use crate::platform::*;

/// xenstore key holding the header page's grant reference.
pub const KEY_RING_REF: &str = "ring-ref";
/// xenstore key holding the server's event-channel port.
pub const KEY_EVENT_CHANNEL: &str = "event-channel";

/// Server parameters.
#[derive(Clone, Copy, Debug)]
pub struct Server<'a> {
    /// The server's own domain id (owner of the xenstore nodes).
    pub local: DomId,
    /// The client's domain id.
    pub peer: DomId,
    /// xenstore directory to advertise in, conventionally
    /// `/local/domain/<server>/data/vchan/<client>/<port>` (see
    /// [`conventional_path`]).
    pub path: &'a str,
    /// log2 size of the ring the client writes and we read (`left_order`).
    pub read_order: u8,
    /// log2 size of the ring we write and the client reads (`right_order`).
    pub write_order: u8,
    /// Starting value of all four ring indices. 0 in libxenvchan; any value
    /// is valid on the wire (tests start near `u32::MAX` to exercise wrap).
    pub initial_index: u32,
}

impl<'a> Server<'a> {
    /// Parameters with the orders libxenvchan would pick for the given
    /// minimum ring sizes (`None` if a size exceeds 1 MiB).
    pub fn for_min_sizes(
        local: DomId,
        peer: DomId,
        path: &'a str,
        read_min: usize,
        write_min: usize,
    ) -> Option<Self> {
        let (read_order, write_order) = Geometry::for_min_sizes(read_min, write_min)?;
        Some(Server {
            local,
            peer,
            path,
            read_order,
            write_order,
            initial_index: 0,
        })
    }

    /// Grant the pages, bind an event channel and advertise `ring-ref` and
    /// `event-channel` in xenstore. The channel is usable at once: writes
    /// are buffered until the client connects, reads wait for it.
    pub fn listen<G, V, S>(
        &self,
        grants: &mut G,
        evtchns: &mut V,
        store: &mut S,
    ) -> Result<Vchan<G::Mem, V::Channel>, Error>
    where
        G: GrantAlloc,
        V: EventChannels,
        S: Store,
    {
        let geometry = Geometry::from_orders(self.read_order.into(), self.write_order.into())
            .map_err(|_| Error::InvalidArgument)?;
        let (evt, port) = evtchns.alloc_unbound(self.peer).map_err(Error::Event)?;
        let mut refs = [0 as GrantRef; 512];
        let notify = Some(UnmapNotify {
            byte_offset: SRV_LIVE,
            port,
        });
        let hdr = match share_checked(grants, self.peer, &mut refs[..1], notify) {
            Ok(m) => m,
            Err(e) => {
                evtchns.close(evt);
                return Err(e);
            }
        };
        let ring_ref = refs[0];
        let n_left = geometry.left.pages();
        let n_right = geometry.right.pages();
        let mut left_mem = None;
        let mut right_mem = None;
        let mut result = Ok(());
        if n_left > 0 {
            match share_checked(grants, self.peer, &mut refs[..n_left], None) {
                Ok(m) => left_mem = Some(m),
                Err(e) => result = Err(e),
            }
        }
        if result.is_ok() && n_right > 0 {
            match share_checked(grants, self.peer, &mut refs[n_left..n_left + n_right], None) {
                Ok(m) => right_mem = Some(m),
                Err(e) => result = Err(e),
            }
        }
        if result.is_ok() {
            init_header(
                &hdr,
                &geometry,
                &refs[..n_left + n_right],
                self.initial_index,
            );
            result = advertise(store, self, ring_ref, port);
        }
        if let Err(e) = result {
            for m in [Some(hdr), left_mem, right_mem].into_iter().flatten() {
                grants.unshare(m);
            }
            evtchns.close(evt);
            return Err(e);
        }
        let i = self.initial_index;
        Ok(Vchan::new(Init {
            hdr,
            rd_mem: left_mem,
            wr_mem: right_mem,
            evt,
            role: Role::Server,
            geometry,
            rd_cons: i,
            rd_prod: i,
            wr_prod: i,
            wr_cons: i,
            peer_live: LIVE_PENDING,
        }))
    }

    /// Wait until the client has connected (its live byte became 1).
    /// Returns at once if it already has, or if it already left again.
    pub fn wait_for_client<M: SharedMemory, E: EventChannel, C: Clock>(
        chan: &mut Vchan<M, E>,
        timeout: Option<Duration>,
        clock: &C,
    ) -> Result<(), Error> {
        let deadline = timeout.map(|t| clock.now().saturating_add(t));
        loop {
            if chan.peer_state()? != crate::PeerState::Pending {
                return Ok(());
            }
            let t = match deadline {
                None => None,
                Some(d) => {
                    let now = clock.now();
                    if now >= d {
                        return Err(Error::TimedOut);
                    }
                    Some(d - now)
                }
            };
            chan.wait_event(t)?;
        }
    }

    /// Orderly close of a server channel: clear `srv_live`, notify, remove
    /// the xenstore directory, end the grants and close the event channel.
    pub fn close<G, V, S>(
        &self,
        chan: Vchan<G::Mem, V::Channel>,
        grants: &mut G,
        evtchns: &mut V,
        store: &mut S,
    ) -> Result<(), Error>
    where
        G: GrantAlloc,
        V: EventChannels,
        S: Store,
    {
        let Parts {
            header,
            read_ring,
            write_ring,
            event,
        } = chan.into_parts();
        let r = store.remove(self.path).map_err(Error::Store);
        for m in [read_ring, write_ring].into_iter().flatten() {
            grants.unshare(m);
        }
        grants.unshare(header);
        evtchns.close(event);
        r
    }

    /// Reconnect path: after the client went away (reads hit end of stream
    /// or writes fail with [`Error::PeerClosed`]), tear the old channel down
    /// and advertise a fresh one at the same path.
    pub fn relisten<G, V, S>(
        &self,
        chan: Vchan<G::Mem, V::Channel>,
        grants: &mut G,
        evtchns: &mut V,
        store: &mut S,
    ) -> Result<Vchan<G::Mem, V::Channel>, Error>
    where
        G: GrantAlloc,
        V: EventChannels,
        S: Store,
    {
        self.close(chan, grants, evtchns, store)?;
        self.listen(grants, evtchns, store)
    }
}

fn share_checked<G: GrantAlloc>(
    g: &mut G,
    peer: DomId,
    refs: &mut [GrantRef],
    notify: Option<UnmapNotify>,
) -> Result<G::Mem, Error> {
    let m = g.share(peer, refs, true, notify).map_err(Error::Grant)?;
    if m.len() < refs.len() * PAGE_SIZE {
        g.unshare(m);
        return Err(Error::Protocol(ProtocolError::ShortMapping));
    }
    Ok(m)
}

fn init_header<M: SharedMemory>(hdr: &M, g: &Geometry, refs: &[GrantRef], index: u32) {
    hdr.copy_in(0, &[0u8; PAGE_SIZE]);
    hdr.store_u32(LEFT_CONS, index, Relaxed);
    hdr.store_u32(LEFT_PROD, index, Relaxed);
    hdr.store_u32(RIGHT_CONS, index, Relaxed);
    hdr.store_u32(RIGHT_PROD, index, Relaxed);
    hdr.store_u16(LEFT_ORDER, g.left.order.into(), Relaxed);
    hdr.store_u16(RIGHT_ORDER, g.right.order.into(), Relaxed);
    hdr.store_u8(CLI_LIVE, LIVE_PENDING, Relaxed);
    hdr.store_u8(SRV_LIVE, LIVE_OPEN, Relaxed);
    hdr.store_u8(CLI_NOTIFY, NOTIFY_WRITE, Relaxed);
    for (i, r) in refs.iter().enumerate() {
        hdr.store_u32(GRANTS + 4 * i, *r, Relaxed);
    }
    // Everything above is visible before the xenstore advertisement.
    hdr.fence(SeqCst);
}

fn advertise<S: Store>(
    store: &mut S,
    s: &Server<'_>,
    ring_ref: GrantRef,
    port: Port,
) -> Result<(), Error> {
    let mut a = NumBuf::new();
    let mut b = NumBuf::new();
    let entries = [
        (KEY_RING_REF, a.fmt(ring_ref)),
        (KEY_EVENT_CHANNEL, b.fmt(port)),
    ];
    store
        .write_nodes(
            s.path,
            &entries,
            Perms {
                owner: s.local,
                reader: s.peer,
            },
        )
        .map_err(Error::Store)
}

/// Client parameters.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    /// The server's domain id.
    pub peer: DomId,
    /// xenstore directory the server advertised in.
    pub path: &'a str,
}

impl<'a> Client<'a> {
    /// Read the advertisement, bind the event channel, map and validate the
    /// shared pages, mark ourselves live and wake the server.
    /// [`Error::NotAdvertised`] if the xenstore nodes do not exist (yet).
    pub fn connect<G, V, S>(
        &self,
        maps: &mut G,
        evtchns: &mut V,
        store: &mut S,
    ) -> Result<Vchan<G::Mem, V::Channel>, Error>
    where
        G: GrantMap,
        V: EventChannels,
        S: Store,
    {
        let ring_ref = read_number(store, self.path, KEY_RING_REF)?;
        let port = read_number(store, self.path, KEY_EVENT_CHANNEL)?;
        let mut evt = evtchns
            .bind_interdomain(self.peer, port)
            .map_err(Error::Event)?;
        let notify = Some(UnmapNotify {
            byte_offset: CLI_LIVE,
            port: evt.port(),
        });
        let hdr = match map_checked(maps, self.peer, &[ring_ref], true, notify) {
            Ok(m) => m,
            Err(e) => {
                evtchns.close(evt);
                return Err(e);
            }
        };
        match self.map_rings(maps, &hdr) {
            Ok(m) => {
                hdr.store_u8(CLI_LIVE, LIVE_OPEN, Release);
                hdr.store_u8(SRV_NOTIFY, NOTIFY_WRITE, Release);
                hdr.fence(SeqCst);
                let r = evt.notify();
                let mut chan = Vchan::new(Init {
                    hdr,
                    rd_mem: m.right,
                    wr_mem: m.left,
                    evt,
                    role: Role::Client,
                    geometry: m.geometry,
                    rd_cons: m.rd_cons,
                    rd_prod: m.rd_prod,
                    wr_prod: m.wr_prod,
                    wr_cons: m.wr_cons,
                    peer_live: LIVE_OPEN,
                });
                if let Err(e) = r {
                    chan.shutdown();
                    let p = chan.into_parts();
                    release_client(maps, evtchns, p);
                    return Err(Error::Event(e));
                }
                Ok(chan)
            }
            Err(e) => {
                maps.unmap(hdr);
                evtchns.close(evt);
                Err(e)
            }
        }
    }

    /// [`Client::connect`], waiting (through xenstore watches) for the
    /// server to advertise, up to `timeout` (`None`: forever).
    pub fn connect_wait<G, V, S, C>(
        &self,
        maps: &mut G,
        evtchns: &mut V,
        store: &mut S,
        timeout: Option<Duration>,
        clock: &C,
    ) -> Result<Vchan<G::Mem, V::Channel>, Error>
    where
        G: GrantMap,
        V: EventChannels,
        S: Store,
        C: Clock,
    {
        let deadline = timeout.map(|t| clock.now().saturating_add(t));
        loop {
            match self.connect(maps, evtchns, store) {
                Err(Error::NotAdvertised) => {}
                r => return r,
            }
            let t = match deadline {
                None => None,
                Some(d) => {
                    let now = clock.now();
                    if now >= d {
                        return Err(Error::TimedOut);
                    }
                    Some(d - now)
                }
            };
            store.wait_change(self.path, t).map_err(Error::Store)?;
        }
    }

    /// Orderly close of a client channel: clear `cli_live`, notify, unmap,
    /// close the event channel.
    pub fn close<G, V>(chan: Vchan<G::Mem, V::Channel>, maps: &mut G, evtchns: &mut V)
    where
        G: GrantMap,
        V: EventChannels,
    {
        release_client(maps, evtchns, chan.into_parts());
    }

    /// Whether the server's advertisement is still present (a server that
    /// closes removes it; use with [`Store::wait_change`] to watch).
    pub fn advertised<S: Store>(&self, store: &mut S) -> Result<bool, Error> {
        let mut buf = [0u8; 16];
        Ok(store
            .read_node(self.path, KEY_RING_REF, &mut buf)
            .map_err(Error::Store)?
            .is_some())
    }

    fn map_rings<G: GrantMap>(&self, maps: &mut G, hdr: &G::Mem) -> Result<Mapped<G::Mem>, Error> {
        // Every peer-written field is read exactly once, here.
        hdr.fence(SeqCst);
        let left_order = hdr.load_u16(LEFT_ORDER, Acquire);
        let right_order = hdr.load_u16(RIGHT_ORDER, Acquire);
        let geometry = Geometry::from_orders(left_order, right_order)?;
        let srv_live = hdr.load_u8(SRV_LIVE, Acquire);
        match srv_live {
            LIVE_OPEN => {}
            LIVE_CLOSED => return Err(Error::PeerClosed),
            now => {
                return Err(ProtocolError::BadLiveByte {
                    previous: LIVE_OPEN,
                    now,
                }
                .into());
            }
        }
        let mut refs = [0 as GrantRef; 512];
        // Validated orders need at most 2 * 256 grants; the checked slicing
        // keeps this path provably panic-free (tests/no-panic-probe).
        let too_many = ProtocolError::BadOrder {
            order: left_order.max(right_order),
        };
        let n = geometry.grant_count();
        let Some(listed) = refs.get_mut(..n) else {
            return Err(too_many.into());
        };
        for (i, r) in listed.iter_mut().enumerate() {
            *r = hdr.load_u32(GRANTS + 4 * i, Relaxed);
        }
        let wr_prod = hdr.load_u32(LEFT_PROD, Acquire);
        let wr_cons = hdr.load_u32(LEFT_CONS, Acquire);
        let rd_cons = hdr.load_u32(RIGHT_CONS, Acquire);
        let rd_prod = hdr.load_u32(RIGHT_PROD, Acquire);
        if wr_prod.wrapping_sub(wr_cons) > geometry.left.size() as u32
            || rd_prod.wrapping_sub(rd_cons) > geometry.right.size() as u32
        {
            return Err(ProtocolError::BadInitialIndices.into());
        }
        let nl = geometry.left.pages();
        let nr = geometry.right.pages();
        let (Some(left_refs), Some(right_refs)) =
            (refs.get(..nl), refs.get(nl..).and_then(|r| r.get(..nr)))
        else {
            return Err(too_many.into());
        };
        let left = if nl > 0 {
            Some(map_checked(maps, self.peer, left_refs, true, None)?)
        } else {
            None
        };
        let right = if nr > 0 {
            // We only read the server→client ring: map it read-only.
            match map_checked(maps, self.peer, right_refs, false, None) {
                Ok(m) => Some(m),
                Err(e) => {
                    if let Some(l) = left {
                        maps.unmap(l);
                    }
                    return Err(e);
                }
            }
        } else {
            None
        };
        Ok(Mapped {
            geometry,
            rd_cons,
            rd_prod,
            wr_prod,
            wr_cons,
            left,
            right,
        })
    }
}

fn release_client<G: GrantMap, V: EventChannels>(
    maps: &mut G,
    evtchns: &mut V,
    p: Parts<G::Mem, V::Channel>,
) {
    for m in [p.read_ring, p.write_ring].into_iter().flatten() {
        maps.unmap(m);
    }
    maps.unmap(p.header);
    evtchns.close(p.event);
}

fn map_checked<G: GrantMap>(
    g: &mut G,
    peer: DomId,
    refs: &[GrantRef],
    writable: bool,
    notify: Option<UnmapNotify>,
) -> Result<G::Mem, Error> {
    let m = g.map(peer, refs, writable, notify).map_err(Error::Grant)?;
    if m.len() < refs.len() * PAGE_SIZE {
        g.unmap(m);
        return Err(Error::Protocol(ProtocolError::ShortMapping));
    }
    Ok(m)
}

fn read_number<S: Store>(store: &mut S, dir: &str, key: &str) -> Result<u32, Error> {
    let mut buf = [0u8; 16];
    let n = store
        .read_node(dir, key, &mut buf)
        .map_err(Error::Store)?
        .ok_or(Error::NotAdvertised)?;
    parse_u32(&buf[..n.min(buf.len())])
        .filter(|&v| v != 0)
        .ok_or(Error::Protocol(ProtocolError::BadAdvert))
}

/// Parse a xenstore decimal value: ASCII digits only (an optional trailing
/// NUL is tolerated), no sign, no overflow.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    let s = s.strip_suffix(b"\0").unwrap_or(s);
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u32)?;
    }
    Some(v)
}

/// What the client learned from the header, plus the ring mappings.
struct Mapped<M> {
    geometry: Geometry,
    rd_cons: u32,
    rd_prod: u32,
    wr_prod: u32,
    wr_cons: u32,
    left: Option<M>,
    right: Option<M>,
}

/// Decimal formatting of a `u32` without allocation.
struct NumBuf {
    buf: [u8; 10],
    len: usize,
}

impl NumBuf {
    fn new() -> Self {
        NumBuf {
            buf: [0; 10],
            len: 0,
        }
    }
    fn fmt(&mut self, mut v: u32) -> &str {
        let mut tmp = [0u8; 10];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.len = tmp.len() - i;
        self.buf[..self.len].copy_from_slice(&tmp[i..]);
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("0")
    }
}

/// Writes the conventional vchan xenstore directory
/// `/local/domain/<server>/data/vchan/<client>/<port>` into `buf` and
/// returns it; [`Error::InvalidArgument`] if `buf` is too small.
pub fn conventional_path<'b>(
    buf: &'b mut [u8],
    server: DomId,
    client: DomId,
    port: &str,
) -> Result<&'b str, Error> {
    struct W<'a> {
        buf: &'a mut [u8],
        len: usize,
    }
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
            self.buf
                .get_mut(self.len..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut w = W { buf, len: 0 };
    write!(w, "/local/domain/{server}/data/vchan/{client}/{port}")
        .map_err(|_| Error::InvalidArgument)?;
    let len = w.len;
    core::str::from_utf8(&buf[..len]).map_err(|_| Error::InvalidArgument)
}
