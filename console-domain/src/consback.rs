//! consback: serves the Xen PV console protocol (`io/console.h`) to the
//! secondary consoles of Linux guests (`hvc_xen`'s xenbus frontend,
//! `device/console/<N>` with N ≥ 1).
//!
//! xenbus: xen-rt's [`BackendBus`](xen_rt::xenbus::BackendBus) for type
//! `console` with `ConnectPolicy::OnInitialised` (hvc_xen publishes
//! `ring-ref` and `port`, switches to Initialised and waits for the
//! backend's Connected). Connect reads those two keys (strict decimal),
//! maps the granted page read-write, attaches
//! [`xen_proto::console::Backend`] to it (the index block copied once and
//! validated), binds the event channel and sets the page's `connection`
//! byte to `XENCONSOLE_CONNECTED`. Disconnect (frontend Closing/Closed,
//! device removed, or a protocol fault) prints what waited for a newline
//! and the counters, unmaps the page and closes the port; the device is
//! ready for the next connection (BackendBus walks it back to InitWait).
//!
//! Data path, each round and on every event: the backend copies the
//! index block once (two 64-bit acquire loads), validates it, copies the
//! unconsumed output once and publishes `out_cons`; each output line is
//! printed as `console-domain: [dom<D>/<N>] <text>` (sanitised, at most
//! [`MAX_LINE`](xen_rt::proto::console::MAX_LINE) bytes a piece; a piece
//! continuing a longer line prints as `[dom<D>/<N>]+`). A frontend whose
//! indices break the rules is disconnected with the reason
//! (`xenbus: closing <backend path>: console ring: ...`).
//!
//! Echo (boot argument `echo=1`, a test behaviour): every printed piece
//! goes back into the `in` ring as `echo: <text>\n` (not pieces that
//! already start with `echo: `, so a guest tty that echoes cannot loop).
//! Without it, the input ring stays empty: nothing else sends input yet.
//!
//! Capture (boot argument `capture=N`): the first N ring states of each
//! connection that differ from the one before are printed as `conscap`
//! hex lines (the `console_ring` fuzz target's snapshot records; see
//! `cargo xtask fuzz --import-capture`).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use xen_rt::events::Events;
use xen_rt::gnttab::{GrantTable, MappedGrant};
use xen_rt::hypercall::{DomId, EvtchnPort, GrantRef};
use xen_rt::mem::{ForeignSpace, MemError, SharedPage};
use xen_rt::println;
use xen_rt::proto::console::{self, Backend, Event, Line, PollError};
use xen_rt::time::Instant;
use xen_rt::xenbus::{BackendDriver, Device};
use xen_rt::xenstore::{Store, XsOpError};

/// A partial line (no newline yet) is printed after this long.
const PARTIAL_AFTER: Duration = Duration::from_secs(1);

/// The mapped console page, as [`console::Page`]: every access goes
/// through xen-rt's checked [`SharedPage`] accessors.
struct MappedPage<'a>(&'a SharedPage);

impl console::Page for MappedPage<'_> {
    type Error = MemError;

    fn read_indices(&mut self) -> Result<[u8; console::INDEX_BLOCK], MemError> {
        // Two 64-bit acquire loads: each index is read exactly once, and
        // the ring bytes read afterwards are ordered after them.
        let a = self.0.load_u64(console::INDEX_OFFSET, Ordering::Acquire)?;
        let b = self
            .0
            .load_u64(console::INDEX_OFFSET + 8, Ordering::Acquire)?;
        let mut block = [0u8; console::INDEX_BLOCK];
        block[..8].copy_from_slice(&a.to_ne_bytes());
        block[8..].copy_from_slice(&b.to_ne_bytes());
        Ok(block)
    }

    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<(), MemError> {
        self.0.copy_out(offset, out)
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), MemError> {
        self.0.copy_in(offset, data)
    }

    fn publish(&mut self, offset: usize, value: u32) -> Result<(), MemError> {
        // Release: the ring bytes read (output) or written (input) before
        // are ordered before the index the frontend acts on.
        self.0.store_u32(offset, value, Ordering::Release)
    }
}

/// One connected console.
struct Conn {
    frontend: DomId,
    devid: u32,
    map: Option<MappedGrant>,
    port: EvtchnPort,
    backend: Box<Backend>,
    /// Connection number (for capture labels).
    serial: u32,
    /// Ring states captured so far.
    captured: u32,
    /// Since when a partial line waits for its newline.
    partial_since: Option<Instant>,
    /// Set when the frontend broke the protocol; the console is closed.
    broken: Option<String>,
}

fn print_line(fe: DomId, devid: u32, l: &Line<'_>) {
    println!(
        "console-domain: [dom{}/{devid}]{} {}",
        fe.0,
        if l.continued { "+" } else { "" },
        l.text
    );
}

fn print_stats(c: &Conn, what: &str) {
    let s = c.backend.stats();
    println!(
        "console-domain: [dom{}/{}] {what}: out {} B {} lines {} sanitised, echo {} lines {} B {} dropped",
        c.frontend.0,
        c.devid,
        s.out_bytes,
        s.lines,
        s.sanitised,
        s.echoed,
        s.in_bytes,
        s.echo_dropped
    );
}

/// Prints a captured ring state (a `Snapshot::encode` record) as
/// `conscap <fe>/<devid> <conn> <n> <offset> <hex>` lines (40 bytes each).
fn print_capture(c: &mut Conn, rec: &[u8]) {
    xen_rt::console::print_hex_lines(
        format_args!(
            "conscap {}/{} {} {}",
            c.frontend.0, c.devid, c.serial, c.captured
        ),
        0,
        rec,
    );
    c.captured += 1;
}

/// The console backend: its connections and settings.
pub struct Consback {
    conns: Vec<Conn>,
    /// Event channels of closed consoles, to close.
    pub to_close: Vec<EvtchnPort>,
    /// Boot argument `echo=1`.
    pub echo: bool,
    /// Boot argument `capture=N`: ring states to print per connection.
    pub capture: u32,
    next_serial: u32,
}

impl Consback {
    pub fn new(echo: bool, capture: u32) -> Self {
        Self {
            conns: Vec::new(),
            to_close: Vec::new(),
            echo,
            capture,
            next_serial: 0,
        }
    }

    /// The event channels to wait on.
    pub fn ports(&self, out: &mut Vec<EvtchnPort>) {
        out.extend(self.conns.iter().map(|c| c.port));
    }

    /// `(frontend, devid, reason)` of the consoles that broke the protocol.
    pub fn take_failed(&mut self) -> Vec<(DomId, u32, String)> {
        self.conns
            .iter_mut()
            .filter_map(|c| c.broken.take().map(|r| (c.frontend, c.devid, r)))
            .collect()
    }

    /// One look at every console: output printed (and echoed), input
    /// written, frontends notified.
    pub fn round(&mut self, events: &Events) {
        let now = Instant::now();
        let capture = self.capture;
        for c in self.conns.iter_mut() {
            if c.broken.is_some() {
                continue;
            }
            let Some(page) = c.map.as_ref().and_then(MappedGrant::page) else {
                continue;
            };
            let want = c.captured < capture;
            let (fe, devid) = (c.frontend, c.devid);
            let mut states: Vec<Vec<u8>> = Vec::new();
            let r = c
                .backend
                .poll(&mut MappedPage(page), want, &mut |e| match e {
                    Event::Line(l) => print_line(fe, devid, &l),
                    Event::State(s) => {
                        let mut rec = vec![0u8; s.encoded_len()];
                        let n = s.encode(&mut rec);
                        rec.truncate(n);
                        states.push(rec);
                    }
                });
            for rec in &states {
                print_capture(c, rec);
            }
            match r {
                Ok(p) => {
                    if p.notify() {
                        let _ = events.notify(c.port);
                    }
                    if p.consumed > 0 || c.backend.partial() == 0 {
                        c.partial_since = (c.backend.partial() > 0).then_some(now);
                    }
                    if let Some(t) = c.partial_since
                        && now.duration_since(t) >= PARTIAL_AFTER
                    {
                        c.backend.flush(&mut |l| print_line(fe, devid, &l));
                        c.partial_since = None;
                    }
                }
                Err(PollError::Index(e)) => c.broken = Some(format!("console ring: {e}")),
                Err(PollError::Page(e)) => c.broken = Some(format!("console page: {e:?}")),
            }
        }
    }
}

/// The [`BackendDriver`] view of [`Consback`] for one round of xenstore
/// events (it borrows the grant table and foreign space meanwhile).
pub struct Driver<'a> {
    pub grants: &'a mut GrantTable,
    pub foreign: &'a mut ForeignSpace,
    pub cb: &'a mut Consback,
}

impl Driver<'_> {
    fn unmap(&mut self, map: MappedGrant) {
        if let Err((_map, e)) = self.grants.unmap(self.foreign, map) {
            println!("console-domain: unmapping a console page failed: {e:?}");
        }
    }
}

impl BackendDriver for Driver<'_> {
    fn probe(&mut self, _store: &mut Store<'_>, dev: &Device) -> Result<(), XsOpError> {
        println!(
            "console-domain: probe {}: frontend dom{} devid {}",
            dev.backend_path, dev.frontend_id.0, dev.devid
        );
        Ok(())
    }

    fn connect(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), String> {
        let fe = &dev.frontend_path;
        let gref = store
            .read_u32(&format!("{fe}/ring-ref"))
            .map_err(|e| format!("reading {fe}/ring-ref: {e:?}"))?;
        let port = store
            .read_u32(&format!("{fe}/port"))
            .map_err(|e| format!("reading {fe}/port: {e:?}"))?;
        let map = self
            .grants
            .map(self.foreign, dev.frontend_id, GrantRef(gref), false)
            .map_err(|e| format!("mapping ring-ref {gref}: {e:?}"))?;
        let attached = match map.page() {
            Some(page) => {
                Backend::attach(&mut MappedPage(page), self.cb.echo).map_err(|e| match e {
                    PollError::Index(e) => format!("console ring at connect: {e}"),
                    PollError::Page(e) => format!("console page at connect: {e:?}"),
                })
            }
            None => Err(String::from("console page not mapped")),
        };
        let backend = match attached {
            Ok(b) => Box::new(b),
            Err(e) => {
                self.unmap(map);
                return Err(e);
            }
        };
        let local = match store
            .events()
            .bind_interdomain(dev.frontend_id, EvtchnPort(port))
        {
            Ok(p) => p,
            Err(e) => {
                self.unmap(map);
                return Err(format!("binding event channel {port}: {e:?}"));
            }
        };
        if let Some(page) = map.page() {
            let _ = page.write_u8(console::CONNECTION, console::CONNECTED);
        }
        let ix = backend.indices();
        println!(
            "console-domain: connect {}: ring-ref {gref} port {port} (local {}) out_cons {} in_prod {} echo {}",
            dev.backend_path,
            local.0,
            ix.out_cons(),
            ix.in_prod(),
            u8::from(self.cb.echo)
        );
        let serial = self.cb.next_serial;
        self.cb.next_serial += 1;
        self.cb.conns.push(Conn {
            frontend: dev.frontend_id,
            devid: dev.devid,
            map: Some(map),
            port: local,
            backend,
            serial,
            captured: 0,
            partial_since: None,
            broken: None,
        });
        Ok(())
    }

    fn disconnect(&mut self, dev: &Device) {
        let Some(i) = self
            .cb
            .conns
            .iter()
            .position(|c| c.frontend == dev.frontend_id && c.devid == dev.devid)
        else {
            return;
        };
        let mut c = self.cb.conns.swap_remove(i);
        let (fe, devid) = (c.frontend, c.devid);
        c.backend.flush(&mut |l| print_line(fe, devid, &l));
        print_stats(&c, "closed");
        if let Some(map) = c.map.take() {
            self.unmap(map);
        }
        self.cb.to_close.push(c.port);
    }
}
