//! # hello-domain: the foundation's test domain
//!
//! Two copies run as dom0less domUs in the `hello` scenario. The `server`
//! grants a page and allocates an unbound event channel for its peer and
//! publishes both in xenstore (one transaction, owner/peer permissions);
//! the `client` maps the grant and binds the channel. They then exchange
//! 10,000 notifications (the client measures round trips) and move a 1 MiB
//! payload: the server fills the shared page chunk by chunk, the client
//! pulls each chunk with grant copy; both print an FNV-1a checksum.
//! Every line it prints starts with `hello[ROLE]`, which is what
//! `cargo xtask qemu --scenario hello --check` reads.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;
use core::time::Duration;

use xen_rt::hypercall::{DomId, EvtchnPort, GrantRef};
use xen_rt::mem::{OwnedPage, SharedPage};
use xen_rt::proto::xenstore::{Access, Perm};
use xen_rt::time::{Instant, ms_since_creation};
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

const ROUND_TRIPS: u32 = 10_000;
const PAYLOAD_BYTES: usize = 1 << 20;
/// Layout of the shared page: magic and server domid, then counters each
/// side bumps (the other only reads them), then the payload chunk.
const PING: usize = 16;
const PONG: usize = 20;
const CHUNK_SEQ: usize = 24;
const CHUNK_ACK: usize = 28;
const DATA: usize = 2048;
const CHUNK: usize = 4096 - DATA;
/// First bytes of the shared page before the payload phase: lets the client
/// check that it mapped the right page.
const MAGIC: &[u8; 8] = b"XENRTHI!";
const LONG: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

macro_rules! say {
    ($role:expr, $($arg:tt)*) => {
        println!("hello[{}] {}", $role.name(), format_args!($($arg)*))
    };
}

fn main(rt: &mut Runtime) {
    let role = match rt.dt.bootarg("role") {
        Some("client") => Role::Client,
        // The `panic` scenario checks that a panic is reported and ends the
        // domain with reason `crash` instead of hanging.
        Some("panic") => panic!("hello-domain: panic requested by the boot arguments"),
        _ => Role::Server,
    };
    let peer = rt
        .dt
        .bootarg("peer")
        .and_then(|p| p.parse::<u16>().ok())
        .map(DomId);
    let (major, minor) = rt.xen_version();
    say!(
        role,
        "banner xen-rt {} image={} t_ms={} entry_ms={} boot_us={} xen={}.{}",
        xen_rt::VERSION,
        rt.image_bytes(),
        ms_since_creation(),
        rt.booted_at().since_creation().as_millis(),
        rt.booted_at().elapsed().as_micros(),
        major,
        minor
    );
    let Some(peer) = peer else {
        say!(role, "error no peer= boot argument");
        return;
    };
    if let Err(e) = run(rt, role, peer) {
        say!(role, "error {}", e);
        return;
    }
    say!(role, "done");
}

fn run(rt: &mut Runtime, role: Role, peer: DomId) -> Result<(), String> {
    let mut store = rt
        .store()
        .map_err(|e| format!("xenstore connect: {:?}", e))?;
    let domid = store
        .read_string("domid")
        .map_err(|e| format!("read domid: {:?}", e))?;
    let name = store
        .read_string("name")
        .map_err(|e| format!("read name: {:?}", e))?;
    say!(
        role,
        "xenstore ready domid={} name={} t_ms={}",
        domid,
        name,
        ms_since_creation()
    );
    let me: u16 = domid
        .parse()
        .map_err(|_| format!("domid {:?} is not a number", domid))?;

    // Watch: register, consume the initial event, tell dom0 we are
    // watching, then wait for dom0's write.
    let poke = "data/hello/poke";
    store
        .watch(poke, "poke")
        .map_err(|e| format!("watch: {:?}", e))?;
    store
        .write("data/hello/watching", b"1")
        .map_err(|e| format!("write watching: {:?}", e))?;
    let deadline = Instant::now().after(LONG);
    loop {
        let (path, token) = store
            .next_watch_event(deadline.duration_since(Instant::now()))
            .map_err(|e| format!("waiting for watch: {:?}", e))?;
        if token != "poke" {
            continue;
        }
        if let Ok(value) = store.read_string(&path)
            && !value.is_empty()
        {
            say!(role, "watch fired path={} value={}", path, value);
            break;
        }
    }
    store
        .unwatch(poke, "poke")
        .map_err(|e| format!("unwatch: {:?}", e))?;

    match role {
        Role::Server => server(rt, DomId(me), peer),
        Role::Client => client(rt, DomId(me), peer),
    }
}

fn server(rt: &mut Runtime, me: DomId, peer: DomId) -> Result<(), String> {
    let role = Role::Server;
    let page = OwnedPage::new().map_err(|e| format!("page: {:?}", e))?;
    let granted = rt
        .grants
        .grant(page, peer, false)
        .map_err(|(_, e)| format!("grant: {:?}", e))?;
    let port = rt
        .events
        .alloc_unbound(peer)
        .map_err(|e| format!("alloc_unbound: {:?}", e))?;
    if let Some(view) = granted.shared() {
        let _ = view.copy_in(0, MAGIC);
        let _ = view.copy_in(8, &me.0.to_le_bytes());
    }
    let gref = granted.gref();
    {
        let mut store = rt.store().map_err(|e| format!("xenstore: {:?}", e))?;
        let dir = "data/hello/channel";
        let perms = [
            Perm {
                domid: me.0,
                access: Access::None,
            },
            Perm {
                domid: peer.0,
                access: Access::Read,
            },
        ];
        store
            .transaction(|tx| {
                tx.mkdir(dir)?;
                tx.write(
                    "data/hello/channel/ring-ref",
                    format!("{}", gref.0).as_bytes(),
                )?;
                tx.write(
                    "data/hello/channel/event-channel",
                    format!("{}", port.0).as_bytes(),
                )?;
                tx.set_perms(dir, &perms)?;
                tx.set_perms("data/hello/channel/ring-ref", &perms)?;
                tx.set_perms("data/hello/channel/event-channel", &perms)
            })
            .map_err(|e| format!("publish: {:?}", e))?;
        let got = store
            .get_perms(dir)
            .map_err(|e| format!("get_perms: {:?}", e))?;
        if got.as_slice() != perms.as_slice() {
            return Err(format!("permissions read back differ: {:?}", got));
        }
    }
    say!(role, "published gref={} port={}", gref.0, port.0);

    let Some(view) = granted.shared() else {
        return Err("granted page has no view".into());
    };
    // Ping-pong: the client bumps PING and notifies; we answer with the
    // same value in PONG. Events only say "look again": a spurious or
    // merged notification costs a re-check, never a lost round.
    for i in 1..=ROUND_TRIPS {
        wait_for_counter(rt, port, &view, PING, i)?;
        view.store_u32(PONG, i, Ordering::Release)
            .map_err(|e| format!("pong: {:?}", e))?;
        rt.events
            .notify(port)
            .map_err(|e| format!("pong notify: {:?}", e))?;
    }

    // Payload: fill the data half of the page, publish its sequence
    // number, wait for the client's ack of that number.
    let mut hash = Fnv::new();
    let mut chunk = [0u8; CHUNK];
    for i in 1..=(PAYLOAD_BYTES / CHUNK) as u32 {
        fill_chunk(i, &mut chunk);
        hash.update(&chunk);
        view.copy_in(DATA, &chunk)
            .map_err(|e| format!("fill: {:?}", e))?;
        view.store_u32(CHUNK_SEQ, i, Ordering::Release)
            .map_err(|e| format!("chunk seq: {:?}", e))?;
        rt.events
            .notify(port)
            .map_err(|e| format!("notify: {:?}", e))?;
        wait_for_counter(rt, port, &view, CHUNK_ACK, i)?;
    }
    say!(
        role,
        "payload sent bytes={} fnv={:#018x}",
        PAYLOAD_BYTES,
        hash.0
    );

    // Access can end once the client has unmapped the page; until then
    // Xen reports the grant in use.
    let mut granted = granted;
    let deadline = Instant::now().after(Duration::from_secs(60));
    let page = loop {
        match rt.grants.end_access(granted) {
            Ok(page) => break page,
            Err((g, e)) if Instant::now() < deadline => {
                granted = g;
                let _ = e;
                rt.events.sleep_for(Duration::from_millis(10));
            }
            Err((g, e)) => {
                core::mem::forget(g);
                return Err(format!("end_access: {:?}", e));
            }
        }
    };
    drop(page);
    rt.events
        .close(port)
        .map_err(|e| format!("close: {:?}", e))?;
    say!(role, "grant ended and channel closed");
    Ok(())
}

fn client(rt: &mut Runtime, _me: DomId, peer: DomId) -> Result<(), String> {
    let role = Role::Client;
    let base = format!("/local/domain/{}/data/hello/channel", peer.0);
    let (gref, remote_port) = {
        let mut store = rt.store().map_err(|e| format!("xenstore: {:?}", e))?;
        let ev_path = format!("{}/event-channel", base);
        store
            .watch(&ev_path, "channel")
            .map_err(|e| format!("watch channel: {:?}", e))?;
        let deadline = Instant::now().after(LONG);
        let port = loop {
            if let Ok(p) = store.read_u32(&ev_path) {
                break p;
            }
            store
                .next_watch_event(deadline.duration_since(Instant::now()))
                .map_err(|e| format!("waiting for the server: {:?}", e))?;
        };
        let _ = store.unwatch(&ev_path, "channel");
        let gref = store
            .read_u32(&format!("{}/ring-ref", base))
            .map_err(|e| format!("ring-ref: {:?}", e))?;
        (GrantRef(gref), EvtchnPort(port))
    };
    let mapped = rt
        .grants
        .map(&mut rt.foreign, peer, gref, false)
        .map_err(|e| format!("map grant {}: {:?}", gref.0, e))?;
    let port = rt
        .events
        .bind_interdomain(peer, remote_port)
        .map_err(|e| format!("bind_interdomain: {:?}", e))?;
    let mut magic = [0u8; 10];
    if let Some(page) = mapped.page() {
        let _ = page.copy_out(0, &mut magic);
    }
    let magic_ok = &magic[..8] == MAGIC && u16::from_le_bytes([magic[8], magic[9]]) == peer.0;
    say!(
        role,
        "mapped gref={} port={} magic={}",
        gref.0,
        remote_port.0,
        if magic_ok { "ok" } else { "BAD" }
    );

    let Some(page) = mapped.page() else {
        return Err("mapped grant has no page".into());
    };
    let mut min = u64::MAX;
    let mut max = 0u64;
    let start = Instant::now();
    for i in 1..=ROUND_TRIPS {
        let t0 = Instant::now();
        page.store_u32(PING, i, Ordering::Release)
            .map_err(|e| format!("ping: {:?}", e))?;
        rt.events
            .notify(port)
            .map_err(|e| format!("ping notify: {:?}", e))?;
        wait_for_counter(rt, port, page, PONG, i)?;
        let ns = t0.elapsed().as_nanos() as u64;
        min = min.min(ns);
        max = max.max(ns);
    }
    let avg = start.elapsed().as_nanos() as u64 / ROUND_TRIPS as u64;
    say!(
        role,
        "events n={} rtt_avg_ns={} rtt_min_ns={} rtt_max_ns={}",
        ROUND_TRIPS,
        avg,
        min,
        max
    );

    // Payload: wait for each chunk's sequence number, pull the data half of
    // the page with grant copy, ack the number.
    let mut hash = Fnv::new();
    let mut buf = alloc::vec![0u8; CHUNK];
    let started = Instant::now();
    for i in 1..=(PAYLOAD_BYTES / CHUNK) as u32 {
        wait_for_counter(rt, port, page, CHUNK_SEQ, i)?;
        xen_rt::gnttab::copy_from(peer, gref, DATA as u16, &mut buf)
            .map_err(|e| format!("grant copy: {:?}", e))?;
        hash.update(&buf);
        page.store_u32(CHUNK_ACK, i, Ordering::Release)
            .map_err(|e| format!("ack: {:?}", e))?;
        rt.events
            .notify(port)
            .map_err(|e| format!("ack notify: {:?}", e))?;
    }
    let ms = started.elapsed().as_millis();
    say!(
        role,
        "payload received bytes={} fnv={:#018x} ms={}",
        PAYLOAD_BYTES,
        hash.0,
        ms
    );

    rt.grants
        .unmap(&mut rt.foreign, mapped)
        .map_err(|(_, e)| format!("unmap: {:?}", e))?;
    rt.events
        .close(port)
        .map_err(|e| format!("close: {:?}", e))?;
    let mut store = rt.store().map_err(|e| format!("xenstore: {:?}", e))?;
    let result = format!(
        "events={} rtt_avg_ns={} fnv={:#018x}",
        ROUND_TRIPS, avg, hash.0
    );
    store
        .write("data/hello/result", result.as_bytes())
        .map_err(|e| format!("write result: {:?}", e))?;
    Ok(())
}

/// Waits until the peer-written counter at `offset` reaches `want`. The
/// peer only ever moves it from `want - 1` to `want`; any other value is a
/// protocol violation and ends the exchange.
fn wait_for_counter(
    rt: &mut Runtime,
    port: EvtchnPort,
    page: &SharedPage,
    offset: usize,
    want: u32,
) -> Result<(), String> {
    let deadline = Instant::now().after(LONG);
    loop {
        let seen = page
            .load_u32(offset, Ordering::Acquire)
            .map_err(|e| format!("read counter: {:?}", e))?;
        if seen == want {
            return Ok(());
        }
        if seen != want.wrapping_sub(1) {
            return Err(format!(
                "peer wrote counter {} at offset {} while {} was expected",
                seen, offset, want
            ));
        }
        match rt.events.wait(port, Some(deadline)) {
            Ok(()) => {}
            Err(xen_rt::events::EventError::TimedOut) => {
                return Err(format!(
                    "timed out waiting for counter {} at offset {}",
                    want, offset
                ));
            }
            Err(e) => return Err(format!("event wait: {:?}", e)),
        }
    }
}

/// Deterministic chunk content: an xorshift stream seeded by the index.
fn fill_chunk(index: u32, out: &mut [u8]) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (index as u64).wrapping_mul(0x1000_0000_01b3);
    for b in out.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// FNV-1a, 64 bit.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
