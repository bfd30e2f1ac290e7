//! The connected channel: ring I/O, notification discipline, hardening.

use core::sync::atomic::Ordering::{Acquire, Release, SeqCst};
use core::time::Duration;

use crate::error::{Error, ProtocolError};
use crate::layout::*;
use crate::platform::{Clock, EventChannel, SharedMemory};

/// Which end of the channel this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Granted the pages and advertised them in xenstore.
    Server,
    /// Mapped the server's pages.
    Client,
}

/// The peer's connection state as last observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Client not connected yet (only seen by a server).
    Pending,
    /// Connected.
    Live,
    /// The peer closed or died.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// Peer's live byte went to 0 (or the embedder said it died): reads
    /// drain then return EOF, writes fail.
    PeerClosed,
    /// We closed.
    Closed,
    /// Protocol violation detected; every operation returns it.
    Broken(ProtocolError),
}

/// Which mapping a ring lives in.
#[derive(Clone, Copy, Debug)]
enum Mem {
    Header,
    Own,
}

/// One direction's ring, as seen from this end. `local` is the index we own
/// (consumer for the read ring, producer for the write ring) and is never
/// re-read from shared memory; `seen` is the last value of the peer's index.
#[derive(Clone, Copy, Debug)]
struct Ring {
    mem: Mem,
    base: usize,
    size: u32,
    /// Offset of our index in the header.
    local_off: usize,
    /// Offset of the peer's index in the header.
    peer_off: usize,
    local: u32,
    seen: u32,
}

impl Ring {
    fn mask(&self) -> u32 {
        self.size - 1
    }
}

/// Everything a [`Vchan`] holds, for the embedder to release after
/// [`Vchan::shutdown`] (the `close_*` helpers do this for you).
pub struct Parts<M, E> {
    /// The header page.
    pub header: M,
    /// Separately granted pages of the ring we read, if not in-page.
    pub read_ring: Option<M>,
    /// Separately granted pages of the ring we write, if not in-page.
    pub write_ring: Option<M>,
    /// The event channel.
    pub event: E,
}

/// A connected vchan endpoint (server or client).
///
/// Created by [`crate::Server::listen`] or [`crate::Client::connect`]. All
/// operations take `&mut self`; the channel is a single-owner object that
/// may be moved between threads if `M` and `E` allow it.
pub struct Vchan<M, E> {
    hdr: M,
    rd_mem: Option<M>,
    wr_mem: Option<M>,
    evt: E,
    rd: Ring,
    wr: Ring,
    role: Role,
    state: State,
    /// Last value of the peer's live byte.
    peer_live: u8,
    my_live_off: usize,
    peer_live_off: usize,
    /// Byte we test-and-clear when we act.
    my_notify_off: usize,
    /// Byte we set bits in to ask the peer for events.
    peer_notify_off: usize,
}

/// Arguments for [`Vchan::new`] that the setup code computed.
pub(crate) struct Init<M, E> {
    pub hdr: M,
    pub rd_mem: Option<M>,
    pub wr_mem: Option<M>,
    pub evt: E,
    pub role: Role,
    pub geometry: Geometry,
    /// Our consumer index of the read ring.
    pub rd_cons: u32,
    /// Peer's producer index of the read ring.
    pub rd_prod: u32,
    /// Our producer index of the write ring.
    pub wr_prod: u32,
    /// Peer's consumer index of the write ring.
    pub wr_cons: u32,
    pub peer_live: u8,
}

impl<M: SharedMemory, E: EventChannel> Vchan<M, E> {
    pub(crate) fn new(i: Init<M, E>) -> Self {
        let (rd_geo, wr_geo, rd_cons_off, rd_prod_off, wr_cons_off, wr_prod_off) = match i.role {
            Role::Server => (
                i.geometry.left,
                i.geometry.right,
                LEFT_CONS,
                LEFT_PROD,
                RIGHT_CONS,
                RIGHT_PROD,
            ),
            Role::Client => (
                i.geometry.right,
                i.geometry.left,
                RIGHT_CONS,
                RIGHT_PROD,
                LEFT_CONS,
                LEFT_PROD,
            ),
        };
        let ring = |g: RingGeometry, local_off, peer_off, local, seen| Ring {
            mem: if g.in_page.is_some() {
                Mem::Header
            } else {
                Mem::Own
            },
            base: g.in_page.unwrap_or(0),
            size: 1 << g.order,
            local_off,
            peer_off,
            local,
            seen,
        };
        let (my_live_off, peer_live_off, my_notify_off, peer_notify_off) = match i.role {
            Role::Server => (SRV_LIVE, CLI_LIVE, SRV_NOTIFY, CLI_NOTIFY),
            Role::Client => (CLI_LIVE, SRV_LIVE, CLI_NOTIFY, SRV_NOTIFY),
        };
        Vchan {
            rd: ring(rd_geo, rd_cons_off, rd_prod_off, i.rd_cons, i.rd_prod),
            wr: ring(wr_geo, wr_prod_off, wr_cons_off, i.wr_prod, i.wr_cons),
            hdr: i.hdr,
            rd_mem: i.rd_mem,
            wr_mem: i.wr_mem,
            evt: i.evt,
            role: i.role,
            state: State::Open,
            peer_live: i.peer_live,
            my_live_off,
            peer_live_off,
            my_notify_off,
            peer_notify_off,
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Size in bytes of the ring this end reads.
    pub fn read_capacity(&self) -> usize {
        self.rd.size as usize
    }

    /// Size in bytes of the ring this end writes.
    pub fn write_capacity(&self) -> usize {
        self.wr.size as usize
    }

    /// Copies the shared header as it is now (`vchan_interface`: ring
    /// indices, orders, live and notify bytes, then the grant list of
    /// separately granted rings) into the start of `out` and returns its
    /// length (at most `out.len()`). Diagnostics only: the test domain
    /// prints it to build the `vchan_header` fuzz seeds; the protocol never
    /// uses it.
    pub fn header_snapshot(&self, out: &mut [u8]) -> usize {
        let pages = |r: &Ring| match r.mem {
            Mem::Own => r.size as usize / crate::PAGE_SIZE,
            Mem::Header => 0,
        };
        let len = (GRANTS + 4 * (pages(&self.rd) + pages(&self.wr)))
            .min(out.len())
            .min(self.hdr.len());
        if let Some(dst) = out.get_mut(..len) {
            self.hdr.copy_out(0, dst);
        }
        len
    }

    /// The protocol error that closed the channel, if any.
    pub fn protocol_error(&self) -> Option<ProtocolError> {
        match self.state {
            State::Broken(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the channel can still carry data in both directions (not
    /// closed locally, peer not closed, no protocol error).
    pub fn is_open(&mut self) -> bool {
        if self.state == State::Open {
            let _ = self.peer_state();
        }
        self.state == State::Open
    }

    /// Re-read the peer's live byte and report its state. A value or
    /// transition the protocol forbids closes the channel with
    /// [`ProtocolError::BadLiveByte`].
    pub fn peer_state(&mut self) -> Result<PeerState, Error> {
        match self.state {
            State::Open => {}
            State::PeerClosed => return Ok(PeerState::Closed),
            State::Closed => return Err(Error::Closed),
            State::Broken(e) => return Err(Error::Protocol(e)),
        }
        let now = self.hdr.load_u8(self.peer_live_off, Acquire);
        let prev = self.peer_live;
        let ok = match (prev, now) {
            (LIVE_OPEN, LIVE_OPEN) | (LIVE_PENDING, LIVE_OPEN) => Some(PeerState::Live),
            (LIVE_PENDING, LIVE_PENDING) => Some(PeerState::Pending),
            (LIVE_OPEN | LIVE_PENDING, LIVE_CLOSED) => Some(PeerState::Closed),
            _ => None,
        };
        match ok {
            Some(PeerState::Closed) => {
                self.peer_live = now;
                self.state = State::PeerClosed;
                Ok(PeerState::Closed)
            }
            Some(s) => {
                self.peer_live = now;
                Ok(s)
            }
            None => Err(self.fail(ProtocolError::BadLiveByte {
                previous: prev,
                now,
            })),
        }
    }

    /// Declare the peer dead (e.g. a xenstore watch saw its domain go away on
    /// a platform without unmap notifications): reads drain what is already
    /// in the ring and then return EOF, writes fail with
    /// [`Error::PeerClosed`].
    pub fn mark_peer_dead(&mut self) {
        if self.state == State::Open {
            self.state = State::PeerClosed;
        }
    }

    /// Bytes ready to read. Like `libxenvchan_data_ready`, also asks the
    /// peer for an event when more data is written.
    pub fn data_ready(&mut self) -> Result<usize, Error> {
        self.check_readable()?;
        self.request_notify(NOTIFY_WRITE);
        Ok(self.raw_ready()? as usize)
    }

    /// Bytes of free space in the write ring. Like
    /// `libxenvchan_buffer_space`, also asks the peer for an event when it
    /// consumes data.
    pub fn buffer_space(&mut self) -> Result<usize, Error> {
        self.check_writable()?;
        self.request_notify(NOTIFY_READ);
        Ok(self.raw_space()? as usize)
    }

    /// Wait for an event on the channel's port (for select-style loops
    /// around the non-blocking calls). `Ok(false)` on timeout.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.evt.wait(timeout).map_err(Error::Event)
    }

    /// Non-blocking read of up to `buf.len()` bytes. `Ok(0)` means end of
    /// stream (peer closed and ring drained) or an empty `buf`;
    /// [`Error::WouldBlock`] means no data yet.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.check_readable()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let ready = self.fast_ready(1)?;
        if ready > 0 {
            let n = buf.len().min(ready as usize);
            self.do_recv(&mut buf[..n])?;
            return Ok(n);
        }
        if self.peer_state()? == PeerState::Closed {
            // The peer may have written and then closed: its live store is
            // ordered after its index store, so this re-read sees all data.
            let ready = self.raw_ready()?;
            if ready > 0 {
                let n = buf.len().min(ready as usize);
                self.do_recv(&mut buf[..n])?;
                return Ok(n);
            }
            return Ok(0);
        }
        Err(Error::WouldBlock)
    }

    /// Non-blocking write of up to `buf.len()` bytes; returns how many were
    /// queued. [`Error::WouldBlock`] if the ring is full.
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.check_writable()?;
        if self.peer_state()? == PeerState::Closed {
            return Err(Error::PeerClosed);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let space = self.fast_space(buf.len() as u32)?;
        let n = buf.len().min(space as usize);
        if n == 0 {
            return Err(Error::WouldBlock);
        }
        self.do_send(&buf[..n])?;
        Ok(n)
    }

    /// Non-blocking all-or-nothing write (`libxenvchan_send`): queues all of
    /// `buf` or nothing ([`Error::WouldBlock`]). [`Error::InvalidArgument`]
    /// if `buf` is larger than the ring.
    pub fn try_send(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        if self.peer_state()? == PeerState::Closed {
            return Err(Error::PeerClosed);
        }
        if buf.len() > self.wr.size as usize {
            return Err(Error::InvalidArgument);
        }
        let space = self.fast_space(buf.len() as u32)?;
        if (space as usize) < buf.len() {
            return Err(Error::WouldBlock);
        }
        self.do_send(buf)
    }

    /// Non-blocking all-or-nothing read (`libxenvchan_recv`): fills all of
    /// `buf` or reads nothing. After the peer closed with fewer bytes left
    /// than requested, returns [`Error::PeerClosed`].
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        self.check_readable()?;
        if buf.len() > self.rd.size as usize {
            return Err(Error::InvalidArgument);
        }
        let ready = self.fast_ready(buf.len() as u32)?;
        if ready as usize >= buf.len() {
            return self.do_recv(buf);
        }
        if self.peer_state()? == PeerState::Closed {
            if self.raw_ready()? as usize >= buf.len() {
                return self.do_recv(buf);
            }
            return Err(Error::PeerClosed);
        }
        Err(Error::WouldBlock)
    }

    /// Blocking read of at least one byte (`Ok(0)` only at end of stream).
    pub fn read_blocking(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.block(None::<(&NoClock, Duration)>, |c| c.try_read(buf))
    }

    /// Blocking write of at least one byte.
    pub fn write_blocking(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.block(None::<(&NoClock, Duration)>, |c| c.try_write(buf))
    }

    /// Like [`Vchan::read_blocking`], failing with [`Error::TimedOut`] after
    /// `timeout` without data.
    pub fn read_timeout<C: Clock>(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
        clock: &C,
    ) -> Result<usize, Error> {
        let deadline = clock.now().saturating_add(timeout);
        self.block(Some((clock, deadline)), |c| c.try_read(buf))
    }

    /// Like [`Vchan::write_blocking`], failing with [`Error::TimedOut`]
    /// after `timeout` without space.
    pub fn write_timeout<C: Clock>(
        &mut self,
        buf: &[u8],
        timeout: Duration,
        clock: &C,
    ) -> Result<usize, Error> {
        let deadline = clock.now().saturating_add(timeout);
        self.block(Some((clock, deadline)), |c| c.try_write(buf))
    }

    /// Write all of `buf`, blocking as needed, within `timeout` overall.
    /// On timeout some prefix may have been written.
    pub fn write_all_timeout<C: Clock>(
        &mut self,
        mut buf: &[u8],
        timeout: Duration,
        clock: &C,
    ) -> Result<(), Error> {
        let deadline = clock.now().saturating_add(timeout);
        while !buf.is_empty() {
            let n = self.block(Some((clock, deadline)), |c| c.try_write(buf))?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Read exactly `buf.len()` bytes, blocking as needed, within `timeout`
    /// overall. [`Error::PeerClosed`] if the stream ends first.
    pub fn read_exact_timeout<C: Clock>(
        &mut self,
        mut buf: &mut [u8],
        timeout: Duration,
        clock: &C,
    ) -> Result<(), Error> {
        let deadline = clock.now().saturating_add(timeout);
        while !buf.is_empty() {
            let n = self.block(Some((clock, deadline)), |c| c.try_read(buf))?;
            if n == 0 {
                return Err(Error::PeerClosed);
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Orderly close of the data path: clear our live byte and tell the peer.
    /// Idempotent. The mapped pages and the event channel stay allocated
    /// until released (see [`Vchan::into_parts`] and the `close_*` helpers).
    pub fn shutdown(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.hdr.store_u8(self.my_live_off, LIVE_CLOSED, Release);
        self.hdr.fence(SeqCst);
        let _ = self.evt.notify();
        self.state = State::Closed;
    }

    /// Shut down and hand back the resources for the embedder to release.
    pub fn into_parts(mut self) -> Parts<M, E> {
        self.shutdown();
        let (read_ring, write_ring) = (self.rd_mem, self.wr_mem);
        Parts {
            header: self.hdr,
            read_ring,
            write_ring,
            event: self.evt,
        }
    }

    // ---- internals -----------------------------------------------------

    fn block<C: Clock, T>(
        &mut self,
        deadline: Option<(&C, Duration)>,
        mut op: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        loop {
            match op(self) {
                Err(Error::WouldBlock) => {}
                r => return r,
            }
            // `op` has asked for a notification and re-checked the indices
            // after that, so an event for any progress made since is latched
            // in the port and this wait returns at once.
            let timeout = match deadline {
                None => None,
                Some((clock, d)) => {
                    let now = clock.now();
                    if now >= d {
                        return Err(Error::TimedOut);
                    }
                    Some(d - now)
                }
            };
            self.evt.wait(timeout).map_err(Error::Event)?;
        }
    }

    fn fail(&mut self, e: ProtocolError) -> Error {
        if matches!(self.state, State::Open | State::PeerClosed) {
            self.shutdown();
        }
        self.state = State::Broken(e);
        Error::Protocol(e)
    }

    fn check_readable(&self) -> Result<(), Error> {
        match self.state {
            State::Open | State::PeerClosed => Ok(()),
            State::Closed => Err(Error::Closed),
            State::Broken(e) => Err(Error::Protocol(e)),
        }
    }

    fn check_writable(&self) -> Result<(), Error> {
        match self.state {
            State::Open => Ok(()),
            State::PeerClosed => Err(Error::PeerClosed),
            State::Closed => Err(Error::Closed),
            State::Broken(e) => Err(Error::Protocol(e)),
        }
    }

    fn ring_mem(&self, m: Mem, read: bool) -> &M {
        match (m, read) {
            (Mem::Header, _) => &self.hdr,
            (Mem::Own, true) => self.rd_mem.as_ref().unwrap_or(&self.hdr),
            (Mem::Own, false) => self.wr_mem.as_ref().unwrap_or(&self.hdr),
        }
    }

    /// `request_notify`: set `bit` in the peer's notify byte, then (full
    /// barrier) let the caller re-read the indices.
    fn request_notify(&mut self, bit: u8) {
        self.hdr.fetch_or_u8(self.peer_notify_off, bit, SeqCst);
        self.hdr.fence(SeqCst);
    }

    /// `send_notify`: after publishing an index (full barrier), test and
    /// clear `bit` in our notify byte; signal the peer if it was set.
    fn send_notify(&mut self, bit: u8) -> Result<(), Error> {
        self.hdr.fence(SeqCst);
        let prev = self.hdr.fetch_and_u8(self.my_notify_off, !bit, SeqCst);
        if prev & bit != 0 {
            self.evt.notify().map_err(Error::Event)?;
        }
        Ok(())
    }

    /// Read the peer's producer index once, validate, return bytes ready.
    fn raw_ready(&mut self) -> Result<u32, Error> {
        let prod = self.hdr.load_u32(self.rd.peer_off, Acquire);
        let cons = self.rd.local;
        let ready = prod.wrapping_sub(cons);
        if ready > self.rd.size {
            return Err(self.fail(ProtocolError::ReadIndexOverflow {
                prod,
                cons,
                size: self.rd.size,
            }));
        }
        if ready < self.rd.seen.wrapping_sub(cons) {
            let previous = self.rd.seen;
            return Err(self.fail(ProtocolError::IndexWentBackwards {
                previous,
                now: prod,
            }));
        }
        self.rd.seen = prod;
        Ok(ready)
    }

    /// Read the peer's consumer index once, validate, return free space.
    fn raw_space(&mut self) -> Result<u32, Error> {
        let cons = self.hdr.load_u32(self.wr.peer_off, Acquire);
        let prod = self.wr.local;
        let used = prod.wrapping_sub(cons);
        if used > self.wr.size {
            return Err(self.fail(ProtocolError::WriteIndexOverflow {
                prod,
                cons,
                size: self.wr.size,
            }));
        }
        if used > prod.wrapping_sub(self.wr.seen) {
            let previous = self.wr.seen;
            return Err(self.fail(ProtocolError::IndexWentBackwards {
                previous,
                now: cons,
            }));
        }
        self.wr.seen = cons;
        Ok(self.wr.size - used)
    }

    fn fast_ready(&mut self, request: u32) -> Result<u32, Error> {
        let ready = self.raw_ready()?;
        if ready >= request {
            return Ok(ready);
        }
        self.request_notify(NOTIFY_WRITE);
        self.raw_ready()
    }

    fn fast_space(&mut self, request: u32) -> Result<u32, Error> {
        let space = self.raw_space()?;
        if space >= request {
            return Ok(space);
        }
        self.request_notify(NOTIFY_READ);
        self.raw_space()
    }

    /// Copy `buf.len()` (≤ validated ready) bytes out and publish `cons`.
    fn do_recv(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let r = self.rd;
        let n = buf.len() as u32;
        debug_assert!(n <= r.seen.wrapping_sub(r.local));
        let idx = r.local & r.mask();
        let first = n.min(r.size - idx) as usize;
        let mem = self.ring_mem(r.mem, true);
        let (a, b) = buf.split_at_mut(first);
        mem.copy_out(r.base + idx as usize, a);
        if !b.is_empty() {
            mem.copy_out(r.base, b);
        }
        self.rd.local = r.local.wrapping_add(n);
        // Release: our reads of the data happen before the slots are freed.
        self.hdr.store_u32(r.local_off, self.rd.local, Release);
        self.send_notify(NOTIFY_READ)
    }

    /// Copy `buf` (≤ validated space) in and publish `prod`.
    fn do_send(&mut self, buf: &[u8]) -> Result<(), Error> {
        let w = self.wr;
        let n = buf.len() as u32;
        debug_assert!(n <= w.size - w.local.wrapping_sub(w.seen));
        let idx = w.local & w.mask();
        let first = n.min(w.size - idx) as usize;
        let mem = self.ring_mem(w.mem, false);
        let (a, b) = buf.split_at(first);
        mem.copy_in(w.base + idx as usize, a);
        if !b.is_empty() {
            mem.copy_in(w.base, b);
        }
        self.wr.local = w.local.wrapping_add(n);
        // Release: the data is visible before the index that covers it.
        self.hdr.store_u32(w.local_off, self.wr.local, Release);
        self.send_notify(NOTIFY_WRITE)
    }
}

/// Placeholder clock for the untimed blocking calls (never consulted).
struct NoClock;
impl Clock for NoClock {
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl<M, E> embedded_io::ErrorType for Vchan<M, E> {
    type Error = Error;
}

impl<M: SharedMemory, E: EventChannel> embedded_io::Read for Vchan<M, E> {
    /// Blocks until at least one byte is available; `Ok(0)` at end of stream.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.read_blocking(buf)
    }
}

impl<M: SharedMemory, E: EventChannel> embedded_io::Write for Vchan<M, E> {
    /// Blocks until at least one byte could be queued.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.write_blocking(buf)
    }
    /// Data is visible to the peer as soon as `write` returns.
    fn flush(&mut self) -> Result<(), Error> {
        self.check_writable()
    }
}

impl<M: SharedMemory, E: EventChannel> embedded_io::ReadReady for Vchan<M, E> {
    fn read_ready(&mut self) -> Result<bool, Error> {
        if self.data_ready()? > 0 {
            return Ok(true);
        }
        // End of stream counts as ready (read returns 0 at once).
        Ok(self.peer_state()? == PeerState::Closed)
    }
}

impl<M: SharedMemory, E: EventChannel> embedded_io::WriteReady for Vchan<M, E> {
    fn write_ready(&mut self) -> Result<bool, Error> {
        Ok(self.buffer_space()? > 0)
    }
}
