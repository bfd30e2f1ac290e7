//! The xenstore client: xen-proto's sans-I/O client core driven over the
//! shared xenstore ring (`xenstore_domain_interface`) and its event channel.
//!
//! Rules: ring indices are read once per pass, checked by
//! `xen_proto::ring::bytes` (`prod - cons > size` is a broken connection,
//! not a stall), bytes are copied out of the ring before being parsed, and
//! any protocol violation marks the connection broken and is reported as a
//! typed error. Requests are issued one at a time; watch events that
//! arrive meanwhile are queued in the client core.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use xen_hypercall::{self as hc, EvtchnPort, abi};
use xen_proto::ring::bytes as ring;
use xen_proto::xenstore::{self as wire, ClientCore, PAYLOAD_MAX, Perm, Request, XsError};

use crate::events::{EventError, Events};
use crate::mem::{self, SharedPage};
use crate::time::Instant;

const RING_SIZE: u32 = 1024;
const REQ: usize = 0;
const RSP: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;
const CONNECTION: usize = 2068;
const XENSTORE_CONNECTED: u32 = 0;
/// How many times a transaction is retried when xenstored answers EAGAIN.
const TRANSACTION_RETRIES: u32 = 16;
/// Default limit for one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why connecting to xenstore failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsConnectError {
    Hypercall(hc::Error),
    Event(EventError),
    /// init-dom0less did not provide the store page in time.
    TimedOut,
    /// HVM_PARAM_STORE_PFN points outside the magic-page region.
    BadStorePfn(u64),
    NotConnected,
}

/// Why a xenstore operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsOpError {
    /// xenstored answered with an error (ENOENT, EACCES, EAGAIN...).
    Store(XsError),
    /// The peer broke the protocol; the connection is unusable.
    Protocol(wire::Error),
    /// The shared ring's indices are corrupt; the connection is unusable.
    Ring(ring::RingError),
    Event(EventError),
    TimedOut,
    /// A value that should be UTF-8 text is not.
    NotText,
    /// An earlier protocol error broke the connection.
    Broken,
}

impl From<wire::Error> for XsOpError {
    fn from(e: wire::Error) -> Self {
        XsOpError::Protocol(e)
    }
}

/// The connection to xenstored.
pub struct XenStore {
    ring: SharedPage,
    port: EvtchnPort,
    core: Box<ClientCore>,
    event_buf: Box<[u8; PAYLOAD_MAX]>,
    /// The reply to the request in flight, once it arrived.
    reply: Option<(u32, Result<Vec<u8>, XsError>)>,
    broken: bool,
}

/// Response-ring bytes still to print (boot argument `xscapture=N`).
pub static CAPTURE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Response-ring bytes printed so far.
static CAPTURED: AtomicUsize = AtomicUsize::new(0);

impl XenStore {
    /// Waits for the store page (dom0less late start) and connects.
    pub(crate) fn connect(events: &mut Events, deadline: Instant) -> Result<Self, XsConnectError> {
        let port =
            hc::hvm_get_param(abi::HVM_PARAM_STORE_EVTCHN).map_err(XsConnectError::Hypercall)?;
        let port = EvtchnPort(port as u32);
        events.unmask(port).map_err(XsConnectError::Event)?;
        loop {
            let pfn =
                hc::hvm_get_param(abi::HVM_PARAM_STORE_PFN).map_err(XsConnectError::Hypercall)?;
            if pfn != 0 && pfn != u64::MAX {
                let addr = pfn
                    .checked_mul(mem::PAGE_SIZE as u64)
                    .ok_or(XsConnectError::BadStorePfn(pfn))?;
                if !(abi::GUEST_MAGIC_BASE..abi::GUEST_MAGIC_BASE + abi::GUEST_MAGIC_SIZE)
                    .contains(&addr)
                {
                    return Err(XsConnectError::BadStorePfn(pfn));
                }
                let ring = mem::xen_page(addr as usize);
                if ring.load_u32(CONNECTION, Ordering::Acquire).unwrap_or(1) == XENSTORE_CONNECTED {
                    return Ok(Self {
                        ring,
                        port,
                        core: Box::new(ClientCore::new()),
                        event_buf: Box::new([0; PAYLOAD_MAX]),
                        reply: None,
                        broken: false,
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(XsConnectError::TimedOut);
            }
            // init-dom0less notifies the store port once the page is
            // ready; re-check every 100 ms as well.
            let step = Instant::now()
                .after(Duration::from_millis(100))
                .min(deadline);
            match events.wait(port, Some(step)) {
                Ok(()) | Err(EventError::TimedOut) => {}
                Err(e) => return Err(XsConnectError::Event(e)),
            }
        }
    }

    pub fn port(&self) -> EvtchnPort {
        self.port
    }

    fn fail<T>(&mut self, e: XsOpError) -> Result<T, XsOpError> {
        if matches!(e, XsOpError::Protocol(_) | XsOpError::Ring(_)) {
            self.broken = true;
        }
        Err(e)
    }

    /// Moves queued output into the request ring and replies/events out of
    /// the response ring. Returns whether anything moved.
    fn pump(&mut self, events: &Events) -> Result<bool, XsOpError> {
        let mut moved = false;
        // Requests: we produce, xenstored consumes.
        if self.core.output_len() > 0 {
            let cons = self
                .ring
                .load_u32(REQ_CONS, Ordering::Acquire)
                .map_err(|_| XsOpError::Broken)?;
            let prod = self
                .ring
                .load_u32(REQ_PROD, Ordering::Relaxed)
                .map_err(|_| XsOpError::Broken)?;
            let span = match ring::writable(cons, prod, RING_SIZE) {
                Ok(s) => s,
                Err(e) => return self.fail(XsOpError::Ring(e)),
            };
            let n = (span.total as usize).min(self.core.output_len());
            if n > 0 {
                let mut chunk = [0u8; RING_SIZE as usize];
                let got = self.core.take_output(&mut chunk[..n]);
                let (first, second) = span.truncate(got as u32).ranges();
                let split = first.len();
                let _ = self.ring.copy_in(REQ + first.start, &chunk[..split]);
                let _ = self.ring.copy_in(REQ + second.start, &chunk[split..got]);
                // Data before index: the Release store orders the copies.
                let _ =
                    self.ring
                        .store_u32(REQ_PROD, prod.wrapping_add(got as u32), Ordering::Release);
                let _ = events.notify(self.port);
                moved = true;
            }
        }
        // Responses: xenstored produces, we consume.
        let prod = self
            .ring
            .load_u32(RSP_PROD, Ordering::Acquire)
            .map_err(|_| XsOpError::Broken)?;
        let cons = self
            .ring
            .load_u32(RSP_CONS, Ordering::Relaxed)
            .map_err(|_| XsOpError::Broken)?;
        let span = match ring::readable(cons, prod, RING_SIZE) {
            Ok(s) => s,
            Err(e) => return self.fail(XsOpError::Ring(e)),
        };
        if span.total > 0 {
            let mut chunk = [0u8; RING_SIZE as usize];
            let (first, second) = span.ranges();
            let split = first.len();
            let total = span.total as usize;
            let _ = self.ring.copy_out(RSP + first.start, &mut chunk[..split]);
            let _ = self
                .ring
                .copy_out(RSP + second.start, &mut chunk[split..total]);
            let _ = self
                .ring
                .store_u32(RSP_CONS, cons.wrapping_add(span.total), Ordering::Release);
            let _ = events.notify(self.port);
            moved = true;
            Self::capture(&chunk[..total]);
            let mut input = &chunk[..total];
            while !input.is_empty() {
                match self.core.receive(&mut input) {
                    Ok(Some(reply)) => {
                        let result = reply.result.map(<[u8]>::to_vec);
                        self.reply = Some((reply.req_id.0, result));
                    }
                    Ok(None) => break,
                    Err(e) => return self.fail(XsOpError::Protocol(e)),
                }
            }
        }
        Ok(moved)
    }

    /// Prints up to [`CAPTURE_BYTES`] of response-ring bytes as
    /// `xscap <offset> <hex>` lines of 40 bytes (fuzz seeds; see
    /// `cargo xtask fuzz --import-capture`).
    fn capture(bytes: &[u8]) {
        let left = CAPTURE_BYTES.load(Ordering::Relaxed);
        if left == 0 {
            return;
        }
        let take = bytes.len().min(left);
        CAPTURE_BYTES.store(left - take, Ordering::Relaxed);
        let at = CAPTURED.fetch_add(take, Ordering::Relaxed);
        crate::console::print_hex_lines(format_args!("xscap"), at, &bytes[..take]);
    }

    fn request(
        &mut self,
        events: &mut Events,
        tx: u32,
        req: &Request<'_>,
        deadline: Instant,
    ) -> Result<Vec<u8>, XsOpError> {
        if self.broken {
            return Err(XsOpError::Broken);
        }
        let id = match self.core.send(tx, req) {
            Ok(id) => id.0,
            Err(e) if e.is_fatal() => return self.fail(XsOpError::Protocol(e)),
            Err(e) => return Err(XsOpError::Protocol(e)),
        };
        loop {
            self.pump(events)?;
            if let Some((rid, _)) = &self.reply {
                if *rid == id {
                    let (_, result) = self.reply.take().unwrap_or((id, Err(XsError::Unknown)));
                    return result.map_err(XsOpError::Store);
                }
                // One request at a time: any other id is a protocol error
                // the client core would already have reported.
                self.reply = None;
            }
            match events.wait(self.port, Some(deadline)) {
                Ok(()) => {}
                Err(EventError::TimedOut) => {
                    // One last look before giving up.
                    self.pump(events)?;
                    if matches!(&self.reply, Some((rid, _)) if *rid == id) {
                        continue;
                    }
                    return Err(XsOpError::TimedOut);
                }
                Err(e) => return Err(XsOpError::Event(e)),
            }
        }
    }

    /// Next watch event `(path, token)`, waiting until `deadline`.
    fn next_watch_event(
        &mut self,
        events: &mut Events,
        deadline: Instant,
    ) -> Result<(String, String), XsOpError> {
        loop {
            if self.broken {
                return Err(XsOpError::Broken);
            }
            if let Some(ev) = self.core.pop_watch_event(&mut self.event_buf) {
                return Ok((String::from(ev.path), String::from(ev.token)));
            }
            if self.pump(events)? {
                continue;
            }
            match events.wait(self.port, Some(deadline)) {
                Ok(()) => {}
                Err(EventError::TimedOut) => {
                    self.pump(events)?;
                    if self.core.queued_events() == 0 {
                        return Err(XsOpError::TimedOut);
                    }
                }
                Err(e) => return Err(XsOpError::Event(e)),
            }
        }
    }

    /// Reads `path` as UTF-8 text.
    pub fn read_string(
        &mut self,
        events: &mut Events,
        path: &str,
        deadline: Instant,
    ) -> Result<String, XsOpError> {
        let v = self.request(events, 0, &Request::Read { path }, deadline)?;
        String::from_utf8(v).map_err(|_| XsOpError::NotText)
    }
}

/// A xenstore session: the connection plus the event channels it waits on,
/// with a per-request timeout. Obtained from [`crate::Runtime::store`].
pub struct Store<'a> {
    pub(crate) xs: &'a mut XenStore,
    pub(crate) events: &'a mut Events,
    pub(crate) timeout: Duration,
}

impl Store<'_> {
    fn deadline(&self) -> Instant {
        Instant::now().after(self.timeout)
    }

    /// The event channels (a backend binds its rings' ports while the
    /// session is open).
    pub fn events(&mut self) -> &mut Events {
        self.events
    }

    /// Changes the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsOpError> {
        let d = self.deadline();
        self.xs.request(self.events, 0, &Request::Read { path }, d)
    }

    pub fn read_string(&mut self, path: &str) -> Result<String, XsOpError> {
        String::from_utf8(self.read(path)?).map_err(|_| XsOpError::NotText)
    }

    /// Reads a decimal number.
    pub fn read_u32(&mut self, path: &str) -> Result<u32, XsOpError> {
        let v = self.read(path)?;
        wire::parse_decimal(&v).ok_or(XsOpError::NotText)
    }

    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsOpError> {
        let d = self.deadline();
        self.xs
            .request(self.events, 0, &Request::Write { path, value }, d)
            .map(drop)
    }

    pub fn mkdir(&mut self, path: &str) -> Result<(), XsOpError> {
        let d = self.deadline();
        self.xs
            .request(self.events, 0, &Request::Mkdir { path }, d)
            .map(drop)
    }

    pub fn rm(&mut self, path: &str) -> Result<(), XsOpError> {
        let d = self.deadline();
        self.xs
            .request(self.events, 0, &Request::Rm { path }, d)
            .map(drop)
    }

    /// The names of `path`'s children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsOpError> {
        let d = self.deadline();
        let v = self
            .xs
            .request(self.events, 0, &Request::Directory { path }, d)?;
        let list = wire::parse_directory(&v)?;
        Ok(list.iter().map(String::from).collect())
    }

    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>, XsOpError> {
        let d = self.deadline();
        let v = self
            .xs
            .request(self.events, 0, &Request::GetPerms { path }, d)?;
        let perms = wire::parse_perms(&v)?;
        Ok(perms.collect())
    }

    /// Sets `path`'s permissions: the first entry names the owner and the
    /// access everyone else gets; the others grant access to one domain.
    pub fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), XsOpError> {
        let d = self.deadline();
        self.xs
            .request(self.events, 0, &Request::SetPerms { path, perms }, d)
            .map(drop)
    }

    /// Registers a watch; xenstored fires it once at once, then on changes.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsOpError> {
        let d = self.deadline();
        self.xs
            .request(self.events, 0, &Request::Watch { path, token }, d)
            .map(drop)
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsOpError> {
        let d = self.deadline();
        self.xs
            .request(self.events, 0, &Request::Unwatch { path, token }, d)
            .map(drop)
    }

    /// Waits up to `timeout` for the next watch event `(path, token)`.
    pub fn next_watch_event(&mut self, timeout: Duration) -> Result<(String, String), XsOpError> {
        let d = Instant::now().after(timeout);
        self.xs.next_watch_event(self.events, d)
    }

    /// Runs `body` in a transaction and commits it, retrying the whole
    /// transaction when xenstored reports a conflict (EAGAIN).
    pub fn transaction<T>(
        &mut self,
        mut body: impl FnMut(&mut Transaction<'_, '_>) -> Result<T, XsOpError>,
    ) -> Result<T, XsOpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let d = self.deadline();
            let v = self
                .xs
                .request(self.events, 0, &Request::TransactionStart, d)?;
            let tx_id = wire::parse_transaction_id(&v)?;
            let mut tx = Transaction { store: self, tx_id };
            let result = body(&mut tx);
            let commit = result.is_ok();
            let d = self.deadline();
            let end = self
                .xs
                .request(self.events, tx_id, &Request::TransactionEnd { commit }, d);
            match (result, end) {
                (Ok(v), Ok(_)) => return Ok(v),
                (Ok(_), Err(XsOpError::Store(XsError::EAGAIN)))
                    if attempt < TRANSACTION_RETRIES =>
                {
                    continue;
                }
                (Ok(_), Err(e)) => return Err(e),
                (Err(XsOpError::Store(XsError::EAGAIN)), _) if attempt < TRANSACTION_RETRIES => {
                    continue;
                }
                (Err(e), _) => return Err(e),
            }
        }
    }
}

/// Operations inside a transaction (see [`Store::transaction`]).
pub struct Transaction<'s, 'a> {
    store: &'s mut Store<'a>,
    tx_id: u32,
}

impl Transaction<'_, '_> {
    fn req(&mut self, req: &Request<'_>) -> Result<Vec<u8>, XsOpError> {
        let d = self.store.deadline();
        self.store.xs.request(self.store.events, self.tx_id, req, d)
    }
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsOpError> {
        self.req(&Request::Read { path })
    }
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsOpError> {
        self.req(&Request::Write { path, value }).map(drop)
    }
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsOpError> {
        self.req(&Request::Mkdir { path }).map(drop)
    }
    pub fn rm(&mut self, path: &str) -> Result<(), XsOpError> {
        self.req(&Request::Rm { path }).map(drop)
    }
    pub fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), XsOpError> {
        self.req(&Request::SetPerms { path, perms }).map(drop)
    }
}
