//! # net-hostile-domain: a hostile Xen netif frontend
//!
//! What it is for: proving that our netback (net-domain) survives a
//! netfront that breaks the rules of `io/netif.h` while two honest Linux
//! guests move data through the same backend. It is booted as a dom0less
//! domU next to net-domain; dom0 attaches two vifs to it while the guests'
//! TCP transfers run (`xl network-attach <me> backend=<net domid> mac=...`,
//! devids 0 and 1). The domain plays netfront on both (the handshake of
//! Linux xen-netfront), sends malformed requests on vif 0 (the *target*)
//! and uses vif 1 (the *source*) only to send frames to the target, so
//! that the target's rx ring gets traffic that no other domain sees. It
//! reports what the backend answered: every malformed packet must be
//! answered with an error, the vif must stay connected after each of
//! them, and a frontend that breaks the protocol must be disconnected
//! (backend state Closing or Closed; net-domain logs the reason, which
//! xtask checks).
//!
//! Frames: every well-formed frame the target sends is addressed to its
//! own MAC, so the backend's switch learns the target's port from it and
//! then filters it (destination on the ingress port): nothing this domain
//! sends reaches the Linux guests. The source's frames go from the source's
//! MAC to the target's, which the switch has learnt by then: unicast to
//! the target. The source sends only while the target is connected and
//! its MAC learnt (after `tx-sanity` passed); otherwise the frame would be
//! flooded to the guests, so those cases fail without sending.
//!
//! Design: one request or packet in flight at a time; every wait is bounded
//! (300 s for dom0's attach, 60 s for each handshake step, 5 s per
//! response, 10 s for a disconnect), nothing panics, and `main` returns
//! when done (the domain then powers off). Requests are encoded with
//! `xen_proto::netif`; the ring headers are `io/ring.h`'s.
//!
//! Handshake (per vif, as Linux netfront): wait for
//! `/local/domain/<me>/device/vif/<devid>/backend`, read `backend-id` and
//! `mac`; write `state` 1 (Initialising) and wait for backend `state` 2
//! (InitWait); grant a tx and an rx ring page (read-write), allocate one
//! unbound event channel for the backend, write `tx-ring-ref`,
//! `rx-ring-ref`, `event-channel`, `request-rx-copy` = 1 and
//! `feature-rx-notify` = 1 in a transaction (no `feature-sg`, no GSO: every
//! frame the backend gives us fits one slot), then `state` 4 (Connected)
//! and wait for backend `state` 4. After a disconnect: `state` 6 (Closed),
//! wait for backend `state` 6, end the ring grants, close the port, and
//! connect again from `state` 1.
//!
//! ## Log contract
//!
//! Every line this domain prints itself starts with `net-hostile: `. After
//! the handshake of both vifs, exactly once:
//! ```text
//! net-hostile: connected vif 0 mac <mac> vif 1 mac <mac> backend dom<id>
//! ```
//! then one line per case, in this order:
//! ```text
//! net-hostile: case <name> <detail> ok
//! net-hostile: case <name> <detail> FAIL (<why>)
//! ```
//! Cases on the target's tx ring; `<detail>` is `resp <id>:<status> ...`
//! (the responses in ring order, ids in hex) or `resp none`. Statuses:
//! 0 = OKAY, -1 = ERROR.
//!
//! | name | packet | passes with |
//! |---|---|---|
//! | `tx-sanity` | a 60-byte frame in one slot | `0x1:0` |
//! | `tx-bad-gref` | the same, `gref` `0xffffff` | `0x2:-1` |
//! | `tx-zero-length` | `size` 0 | `0x3:-1` |
//! | `tx-runt` | `size` 13 (below `ETH_HLEN`) | `0x4:-1` |
//! | `tx-zero-fragment` | 60 bytes, then a fragment of `size` 0 | `0x5:-1 0x6:-1` |
//! | `tx-fragment-oversized` | 60 bytes, then a fragment of 2000 | `0x7:-1 0x8:-1` |
//! | `tx-bad-gref-fragment` | 30 + 30 bytes, the fragment's `gref` `0xffffff` | `0x9:-1 0xa:-1` |
//! | `tx-id-out-of-range` | 30 + 30 bytes, both slots `id` `0xffff` | `0xffff:0 0xffff:0` |
//!
//! Cases on the target's rx ring: the target posts one rx request, the
//! source sends a frame to it; `<detail>` is `rx <id>:<status>` (or
//! `rx none`). The source's tx response must be OKAY too.
//!
//! | name | rx request | passes with |
//! |---|---|---|
//! | `rx-bad-gref` | `id` `0xffff`, `gref` `0xffffff` | `0xffff:-1` |
//! | `rx-readonly-gref` | `id` `0x8000`, a page granted read-only | `0x8000:-1` |
//! | `rx-id-out-of-range` | `id` `0xfffe`, a writable page | `0xfffe:60` and the page holds the source's frame |
//!
//! (A broadcast from a Linux guest may take an rx request first; the
//! error cases pass either way, `rx-id-out-of-range` posts its request
//! again until the source's frame arrives.) Then `tx-after` sends
//! `tx-sanity`'s frame again (`0x11:0`, and the backend must still show
//! Connected).
//!
//! The fatal cases each break the protocol on the target; the backend
//! must go to Closing or Closed within 10 s. `<detail>` is
//! `[req_prod <n> ]backend state <s> after <ms> ms` (`<s>` the last
//! backend state read, or `none`); `req_prod` is the value written, which
//! net-domain's log line (`ring index violation: RequestProdOverflow {
//! req_prod: <n> }`) must repeat. The target reconnects after each but the
//! last.
//!
//! | name | what | net-domain's reason |
//! |---|---|---|
//! | `rx-ring-overflow` | rx `req_prod` = `rsp_prod` + 1000, then the source sends a frame to the target | `RequestProdOverflow` |
//! | `tx-oversized` | one slot of `size` 65535 (crosses the page) | `CrossesPage { offset: 0, size: 65535 }` |
//! | `tx-too-many-slots` | a packet of 21 slots, each with `NETTXF_more_data` | `TooManySlots` |
//! | `tx-ring-overflow` | tx `req_prod` = `rsp_prod` + 1000 | `RequestProdOverflow` |
//!
//! Then the source is closed and the domain ends with
//! ```text
//! net-hostile: RESULT <p> passed, <f> failed
//! ```
//! over the 16 cases. A setup failure (no vif, handshake, grants) ends it
//! at once with
//! ```text
//! net-hostile: RESULT 0 passed, 1 failed (<reason>)
//! ```
//! and a reconnect that fails is counted as a failure (`case reconnect
//! ... FAIL`), ending the fatal cases. Other `net-hostile: ` lines
//! (progress notes) may appear in between.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use frontend_kit::ring::{self as front, RingNames};
use frontend_kit::store::{
    STATE_CLOSED, STATE_CLOSING, STATE_CONNECTED, STATE_INITIALISING, STATE_INITWAIT, my_domid,
    read_backend_id, read_opt, read_state, set_state, show_state, wait_state, wait_until, watch,
};
use frontend_kit::{Tally, release, xs};
use xen_rt::events::Events;
use xen_rt::gnttab::{GrantTable, GrantedPage};
use xen_rt::hypercall::{DomId, EvtchnPort};
use xen_rt::mem::{OwnedPage, PAGE_SIZE};
use xen_rt::proto::netif::{
    self, RX_RESPONSE_SIZE, RX_RING_SIZE, RxRequest, RxResponse, TX_RESPONSE_SIZE, TX_RING_SIZE,
    TxRequest, status, txf,
};
use xen_rt::time::Instant;
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

/// A grant reference no domain has (far beyond any grant table's size).
const BAD_GREF: u32 = 0x00ff_ffff;
/// How far past `rsp_prod` the overflow cases move `req_prod` (both rings
/// hold 256 entries).
const OVERFLOW: u32 = 1000;

/// The frames this domain sends: 60 bytes (the Ethernet minimum without
/// FCS), EtherType 0x88b5 (IEEE 802 local experimental), a marker.
const FRAME_LEN: u16 = 60;
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const MARK: &[u8] = b"net-hostile test frame";
/// Where the target's own frame (target to target) and the source's frame
/// (source to target) lie in the frames page.
const SELF_AT: u16 = 0;
const CROSS_AT: u16 = 2048;
/// Half a frame (the split packets).
const HALF: u16 = FRAME_LEN / 2;

/// Waiting for dom0's `xl network-attach` (it attaches once the guests'
/// transfers run, about a minute after boot).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(300);
/// Waiting for each handshake step of the backend.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Waiting for the responses to one packet or rx request.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Waiting for the backend to disconnect after a fatal case, and to show
/// Closed after we closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// rx responses `rx-id-out-of-range` reads before giving up on finding
/// the source's frame among guest broadcasts.
const RX_TRIES: usize = 64;

/// The start of every line this domain prints.
const TAG: &str = "net-hostile";
const DIR_TOKEN: &str = "net-hostile-dir";

fn main(rt: &mut Runtime) {
    frontend_kit::banner(TAG, rt);
    let mut h = match setup(rt) {
        Ok(h) => h,
        Err(why) => {
            println!("net-hostile: RESULT 0 passed, 1 failed ({why})");
            return;
        }
    };
    let mut t = Tally::new(TAG);
    h.tx_cases(rt, &mut t);
    h.rx_cases(rt, &mut t);
    h.fatal_cases(rt, &mut t);
    h.finish(rt);
    t.print_result();
}

/// One of our vifs, as the toolstack created it.
struct Vif {
    devid: u32,
    /// Our device directory.
    fe: String,
    /// The backend's device directory.
    be: String,
    backend: DomId,
    mac: [u8; 6],
}

/// How errors name the two rings.
const TX: RingNames = RingNames {
    access: "tx ring access",
    rsp_prod: "tx rsp_prod",
    pending: "in flight",
};
const RX: RingNames = RingNames {
    access: "rx ring access",
    rsp_prod: "rx rsp_prod",
    pending: "posted",
};

/// One connection of a vif: its rings and event channel. We are the only
/// writer of `req_prod` and `rsp_event`; the backend writes `rsp_prod`,
/// `req_event` and the responses.
struct Conn {
    tx: GrantedPage,
    rx: GrantedPage,
    port: EvtchnPort,
    /// Requests published, responses consumed (private indices).
    tx_prod: u32,
    tx_cons: u32,
    rx_prod: u32,
    rx_cons: u32,
}

/// Pages granted to the backend for the data.
struct Pages {
    /// Both frames (read-only to the backend).
    frames: GrantedPage,
    /// Where `rx-id-out-of-range`'s frame lands (read-write).
    rx: GrantedPage,
    /// The source's frame, as the target must receive it.
    cross: [u8; FRAME_LEN as usize],
}

/// Finds both vifs, connects them and prepares the data pages.
fn setup(rt: &mut Runtime) -> Result<Hostile, String> {
    let me = my_domid(rt)?;
    let dir = format!("/local/domain/{me}/device/vif");
    {
        let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
        watch(TAG, &mut store, &dir, DIR_TOKEN)?;
    }
    println!("net-hostile: dom{me} waiting for vifs 0 and 1 under {dir}");
    let tv = find_vif(rt, &dir, 0, ATTACH_TIMEOUT)?;
    let sv = find_vif(rt, &dir, 1, STEP_TIMEOUT)?;
    if let Ok(mut store) = rt.store() {
        let _ = store.unwatch(&dir, DIR_TOKEN);
    }
    if tv.backend != sv.backend {
        return Err(format!(
            "vifs have different backends (dom{} and dom{})",
            tv.backend.0, sv.backend.0
        ));
    }
    let tc = connect(rt, &tv)?;
    let sc = match connect(rt, &sv) {
        Ok(c) => c,
        Err(why) => {
            tc.release(rt);
            return Err(why);
        }
    };
    let pages = match Pages::new(&mut rt.grants, tv.backend, &tv.mac, &sv.mac) {
        Ok(p) => p,
        Err(why) => {
            tc.release(rt);
            sc.release(rt);
            return Err(why);
        }
    };
    println!(
        "net-hostile: connected vif 0 mac {} vif 1 mac {} backend dom{}",
        show_mac(&tv.mac),
        show_mac(&sv.mac),
        tv.backend.0
    );
    Ok(Hostile {
        tv,
        sv,
        tc: Some(tc),
        sc,
        pages,
        learnt: false,
    })
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn show_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Waits for vif `devid` under `dir` and reads what the toolstack wrote.
fn find_vif(rt: &mut Runtime, dir: &str, devid: u32, timeout: Duration) -> Result<Vif, String> {
    let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
    let fe = format!("{dir}/{devid}");
    let be = wait_until(&mut store, timeout, |s| {
        read_opt(s, &format!("{fe}/backend"))
    })?
    .ok_or_else(|| {
        format!(
            "no vif {devid} with a backend under {dir} within {} s",
            timeout.as_secs()
        )
    })?;
    let backend = read_backend_id(&mut store, &fe)?;
    let mac_text = store
        .read_string(&format!("{fe}/mac"))
        .map_err(xs("reading mac"))?;
    let mac = parse_mac(&mac_text).ok_or_else(|| format!("mac {mac_text:?} is not a MAC"))?;
    watch(
        TAG,
        &mut store,
        &format!("{be}/state"),
        &format!("net-hostile-be-{devid}"),
    )?;
    Ok(Vif {
        devid,
        fe,
        be,
        backend,
        mac,
    })
}

/// The handshake for one connection of `v` (see the crate docs).
fn connect(rt: &mut Runtime, v: &Vif) -> Result<Conn, String> {
    {
        let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
        set_state(&mut store, &v.fe, STATE_INITIALISING).map_err(xs("writing state 1"))?;
    }
    let (ok, last) = wait_state(rt, &v.be, STEP_TIMEOUT, |s| s == STATE_INITWAIT)?;
    if !ok {
        return Err(format!(
            "vif {}: backend state {} after {} s, not InitWait",
            v.devid,
            show_state(last),
            STEP_TIMEOUT.as_secs()
        ));
    }
    let tx = front::ring_page(&mut rt.grants, v.backend, "a ring")?;
    let rx = match front::ring_page(&mut rt.grants, v.backend, "a ring") {
        Ok(p) => p,
        Err(why) => {
            release(TAG, &mut rt.grants, "tx ring", tx);
            return Err(why);
        }
    };
    let port = match rt.events.alloc_unbound(v.backend) {
        Ok(p) => p,
        Err(e) => {
            release(TAG, &mut rt.grants, "tx ring", tx);
            release(TAG, &mut rt.grants, "rx ring", rx);
            return Err(format!("allocating the event channel: {e:?}"));
        }
    };
    let conn = Conn {
        tx,
        rx,
        port,
        tx_prod: 0,
        tx_cons: 0,
        rx_prod: 0,
        rx_cons: 0,
    };
    match publish(rt, v, &conn) {
        Ok(()) => Ok(conn),
        Err(why) => {
            conn.release(rt);
            Err(why)
        }
    }
}

/// Writes the rings' details, switches to Connected and waits for the
/// backend to connect.
fn publish(rt: &mut Runtime, v: &Vif, c: &Conn) -> Result<(), String> {
    {
        let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
        let nodes = [
            ("tx-ring-ref", format!("{}", c.tx.gref().0)),
            ("rx-ring-ref", format!("{}", c.rx.gref().0)),
            ("event-channel", format!("{}", c.port.0)),
            ("request-rx-copy", String::from("1")),
            ("feature-rx-notify", String::from("1")),
        ];
        store
            .transaction(|tx| {
                for (k, val) in &nodes {
                    tx.write(&format!("{}/{k}", v.fe), val.as_bytes())?;
                }
                Ok(())
            })
            .map_err(xs("writing the ring details"))?;
        set_state(&mut store, &v.fe, STATE_CONNECTED).map_err(xs("writing state 4"))?;
    }
    let (ok, last) = wait_state(rt, &v.be, STEP_TIMEOUT, |s| {
        s == STATE_CONNECTED || s >= STATE_CLOSING
    })?;
    match last {
        Some(STATE_CONNECTED) if ok => Ok(()),
        _ => Err(format!(
            "vif {}: backend state {}, not Connected",
            v.devid,
            show_state(last)
        )),
    }
}

/// Closes a connection: our state Closed, the backend's Closed (it has
/// unmapped the rings by then), then the grants and the port go.
fn disconnect(rt: &mut Runtime, v: &Vif, c: Conn) -> Result<(), String> {
    let wrote = match rt.store() {
        Ok(mut store) => set_state(&mut store, &v.fe, STATE_CLOSED).map_err(xs("writing state 6")),
        Err(e) => Err(format!("connecting to xenstore: {e:?}")),
    };
    let closed = wrote.and_then(|()| wait_state(rt, &v.be, CLOSE_TIMEOUT, |s| s == STATE_CLOSED));
    c.release(rt);
    match closed? {
        (true, _) => Ok(()),
        (false, last) => Err(format!(
            "vif {}: backend state {} after we closed, not Closed",
            v.devid,
            show_state(last)
        )),
    }
}

impl Conn {
    fn release(self, rt: &mut Runtime) {
        release(TAG, &mut rt.grants, "tx ring", self.tx);
        release(TAG, &mut rt.grants, "rx ring", self.rx);
        if let Err(e) = rt.events.close(self.port) {
            println!("net-hostile: closing port {}: {e:?}", self.port.0);
        }
    }

    /// Puts one packet's requests on the tx ring (`RING_PUSH_REQUESTS`)
    /// and notifies the backend.
    fn tx_push(&mut self, events: &Events, reqs: &[TxRequest]) -> Result<(), String> {
        let page = self
            .tx
            .shared()
            .ok_or_else(|| String::from("tx ring page gone"))?;
        let n = reqs.len() as u32;
        if self.tx_prod.wrapping_sub(self.tx_cons) + n > TX_RING_SIZE {
            return Err(String::from("tx ring full of unanswered requests"));
        }
        for r in reqs {
            page.copy_in(netif::tx_slot_offset(self.tx_prod), &r.encode())
                .map_err(xs(TX.access))?;
            self.tx_prod = self.tx_prod.wrapping_add(1);
        }
        front::push(&page, self.tx_prod, events, self.port, TX.access)
    }

    /// Waits up to [`RESPONSE_TIMEOUT`] for `n` tx responses:
    /// `(id, status)` in ring order.
    fn tx_wait(&mut self, events: &mut Events, n: usize) -> Result<Vec<(u16, i16)>, String> {
        let mut got = Vec::new();
        let done = front::poll_until(events, self.port, RESPONSE_TIMEOUT, || {
            loop {
                let page = self
                    .tx
                    .shared()
                    .ok_or_else(|| String::from("tx ring page gone"))?;
                let mut ready = front::ready(&page, &TX, self.tx_prod, self.tx_cons)?;
                while got.len() < n && ready > 0 {
                    let mut b = [0u8; TX_RESPONSE_SIZE];
                    page.copy_out(netif::tx_slot_offset(self.tx_cons), &mut b)
                        .map_err(xs(TX.access))?;
                    self.tx_cons = self.tx_cons.wrapping_add(1);
                    ready -= 1;
                    got.push(netif::decode_tx_response(&b));
                }
                if got.len() >= n {
                    return Ok(Some(()));
                }
                if !front::final_check(&page, self.tx_cons, TX.access)? {
                    return Ok(None);
                }
            }
        })?;
        match done {
            Some(()) => Ok(got),
            None => Err(format!(
                "{} of {n} response(s) after {} s",
                got.len(),
                RESPONSE_TIMEOUT.as_secs()
            )),
        }
    }

    /// Posts one rx request and notifies the backend.
    fn rx_post(&mut self, events: &Events, req: RxRequest) -> Result<(), String> {
        let page = self
            .rx
            .shared()
            .ok_or_else(|| String::from("rx ring page gone"))?;
        if self.rx_prod.wrapping_sub(self.rx_cons) >= RX_RING_SIZE {
            return Err(String::from("rx ring full"));
        }
        page.copy_in(netif::rx_slot_offset(self.rx_prod), &req.encode())
            .map_err(xs(RX.access))?;
        self.rx_prod = self.rx_prod.wrapping_add(1);
        front::push(&page, self.rx_prod, events, self.port, RX.access)
    }

    /// Waits up to [`RESPONSE_TIMEOUT`] for the next rx response.
    fn rx_wait(&mut self, events: &mut Events) -> Result<RxResponse, String> {
        front::poll_until(events, self.port, RESPONSE_TIMEOUT, || {
            loop {
                let page = self
                    .rx
                    .shared()
                    .ok_or_else(|| String::from("rx ring page gone"))?;
                if front::ready(&page, &RX, self.rx_prod, self.rx_cons)? > 0 {
                    let mut b = [0u8; RX_RESPONSE_SIZE];
                    page.copy_out(netif::rx_slot_offset(self.rx_cons), &mut b)
                        .map_err(xs(RX.access))?;
                    self.rx_cons = self.rx_cons.wrapping_add(1);
                    return Ok(Some(RxResponse::parse(&b)));
                }
                if !front::final_check(&page, self.rx_cons, RX.access)? {
                    return Ok(None);
                }
            }
        })?
        .ok_or_else(|| format!("no rx response after {} s", RESPONSE_TIMEOUT.as_secs()))
    }

    /// Moves `req_prod` of the tx or rx ring [`OVERFLOW`] entries past the
    /// shared `rsp_prod`, without entries, and notifies. Returns the value
    /// written.
    fn overflow(&self, events: &Events, rx: bool) -> Result<u32, String> {
        let ring = if rx { &self.rx } else { &self.tx };
        let page = ring
            .shared()
            .ok_or_else(|| String::from("ring page gone"))?;
        front::overflow(&page, OVERFLOW, events, self.port, "ring access")
    }
}

/// A frame from `src` to `dst`.
fn frame(dst: &[u8; 6], src: &[u8; 6]) -> [u8; FRAME_LEN as usize] {
    let mut f = [0u8; FRAME_LEN as usize];
    let parts: [&[u8]; 4] = [dst, src, &ETHERTYPE, MARK];
    let mut at = 0;
    for p in parts {
        if let Some(d) = f.get_mut(at..at + p.len()) {
            d.copy_from_slice(p);
        }
        at += p.len();
    }
    f
}

impl Pages {
    fn new(
        grants: &mut GrantTable,
        backend: DomId,
        target: &[u8; 6],
        source: &[u8; 6],
    ) -> Result<Self, String> {
        let cross = frame(target, source);
        let page = OwnedPage::new().map_err(xs("allocating the frames page"))?;
        {
            let v = page.shared();
            v.copy_in(usize::from(SELF_AT), &frame(target, target))
                .and_then(|()| v.copy_in(usize::from(CROSS_AT), &cross))
                .map_err(xs("writing the frames"))?;
        }
        let frames = grants
            .grant(page, backend, true)
            .map_err(|(_, e)| format!("granting the frames page: {e:?}"))?;
        let rx_page = match OwnedPage::new() {
            Ok(p) => p,
            Err(e) => {
                release(TAG, grants, "frames", frames);
                return Err(format!("allocating the rx page: {e:?}"));
            }
        };
        let rx = match grants.grant(rx_page, backend, false) {
            Ok(p) => p,
            Err((_, e)) => {
                release(TAG, grants, "frames", frames);
                return Err(format!("granting the rx page: {e:?}"));
            }
        };
        Ok(Self { frames, rx, cross })
    }

    fn release(self, grants: &mut GrantTable) {
        release(TAG, grants, "frames", self.frames);
        release(TAG, grants, "rx data", self.rx);
    }

    /// Whether the rx page holds the source's frame at `offset`.
    fn holds_cross(&self, offset: u16, len: usize) -> Result<(), String> {
        let page = self
            .rx
            .shared()
            .ok_or_else(|| String::from("rx page gone"))?;
        if len != self.cross.len() || usize::from(offset) + len > PAGE_SIZE {
            return Err(format!("{len} bytes at offset {offset}, not our frame"));
        }
        let mut got = vec![0u8; len];
        page.copy_out(usize::from(offset), &mut got)
            .map_err(xs("reading the rx page"))?;
        if got == self.cross {
            Ok(())
        } else {
            Err(String::from("60 bytes, not our frame"))
        }
    }
}

fn show_tx(rs: &[(u16, i16)]) -> String {
    let v: Vec<String> = rs.iter().map(|(id, st)| format!("{id:#x}:{st}")).collect();
    v.join(" ")
}

fn req(gref: u32, offset: u16, more: bool, id: u16, size: u16) -> TxRequest {
    TxRequest {
        gref,
        offset,
        flags: if more { txf::MORE_DATA } else { 0 },
        id,
        size,
    }
}

/// What an rx case accepts.
#[derive(Clone, Copy)]
enum RxWant {
    /// `NETIF_RSP_ERROR`.
    Error,
    /// The source's frame, in the rx data page.
    Frame,
}

/// The run: the target's connection (`None` while it is down) and the
/// source's.
struct Hostile {
    tv: Vif,
    sv: Vif,
    tc: Option<Conn>,
    sc: Conn,
    pages: Pages,
    /// The switch has learnt the target's MAC on its current port.
    learnt: bool,
}

impl Hostile {
    /// A packet on the target's tx ring, answered as `want` says; `then`
    /// is checked once the responses passed.
    fn tx_case(
        &mut self,
        rt: &mut Runtime,
        t: &mut Tally,
        name: &str,
        reqs: &[TxRequest],
        want: &[(u16, i16)],
        then: impl FnOnce(&mut Runtime) -> Result<(), String>,
    ) -> bool {
        let Some(c) = self.tc.as_mut() else {
            t.report(name, "resp none", Err(String::from("target not connected")));
            return false;
        };
        let got = c
            .tx_push(&rt.events, reqs)
            .and_then(|()| c.tx_wait(&mut rt.events, want.len()));
        let (detail, verdict) = match got {
            Ok(got) if got == want => (format!("resp {}", show_tx(&got)), then(rt)),
            Ok(got) => (
                format!("resp {}", show_tx(&got)),
                Err(format!("expected {}", show_tx(want))),
            ),
            Err(why) => (String::from("resp none"), Err(why)),
        };
        let ok = verdict.is_ok();
        t.report(name, &detail, verdict);
        ok
    }

    fn tx_cases(&mut self, rt: &mut Runtime, t: &mut Tally) {
        use status::{ERROR, OKAY};
        let f = self.pages.frames.gref().0;
        let (s, n) = (SELF_AT, FRAME_LEN);
        let sanity = [req(f, s, false, 1, n)];
        self.learnt = self.tx_case(rt, t, "tx-sanity", &sanity, &[(1, OKAY)], |_| Ok(()));
        let runt = netif::ETH_HLEN - 1;
        // (name, the packet's requests, the responses that pass)
        type Case<'a> = (&'a str, &'a [TxRequest], &'a [(u16, i16)]);
        let cases: [Case; 7] = [
            (
                "tx-bad-gref",
                &[req(BAD_GREF, s, false, 2, n)],
                &[(2, ERROR)],
            ),
            ("tx-zero-length", &[req(f, s, false, 3, 0)], &[(3, ERROR)]),
            ("tx-runt", &[req(f, s, false, 4, runt)], &[(4, ERROR)]),
            (
                "tx-zero-fragment",
                &[req(f, s, true, 5, n), req(f, s + n, false, 6, 0)],
                &[(5, ERROR), (6, ERROR)],
            ),
            (
                "tx-fragment-oversized",
                &[req(f, s, true, 7, n), req(f, s, false, 8, 2000)],
                &[(7, ERROR), (8, ERROR)],
            ),
            (
                "tx-bad-gref-fragment",
                &[
                    req(f, s, true, 9, n),
                    req(BAD_GREF, s + HALF, false, 10, HALF),
                ],
                &[(9, ERROR), (10, ERROR)],
            ),
            (
                "tx-id-out-of-range",
                &[
                    req(f, s, true, 0xffff, n),
                    req(f, s + HALF, false, 0xffff, HALF),
                ],
                &[(0xffff, OKAY), (0xffff, OKAY)],
            ),
        ];
        for (name, reqs, want) in cases {
            self.tx_case(rt, t, name, reqs, want, |_| Ok(()));
        }
    }

    /// The source sends its frame to the target; returns the tx request.
    fn cross_request(&self, id: u16) -> TxRequest {
        req(self.pages.frames.gref().0, CROSS_AT, false, id, FRAME_LEN)
    }

    /// One rx request on the target, then a frame from the source.
    fn rx_case(
        &mut self,
        rt: &mut Runtime,
        t: &mut Tally,
        name: &str,
        rx: RxRequest,
        want: RxWant,
        tx_id: u16,
    ) {
        if !self.learnt {
            let why = "tx-sanity failed: the frame could reach the Linux guests";
            return t.report(name, "rx none", Err(String::from(why)));
        }
        let cross = self.cross_request(tx_id);
        let Some(tc) = self.tc.as_mut() else {
            return t.report(name, "rx none", Err(String::from("target not connected")));
        };
        let sent = tc
            .rx_post(&rt.events, rx)
            .and_then(|()| self.sc.tx_push(&rt.events, &[cross]));
        if let Err(why) = sent {
            return t.report(name, "rx none", Err(why));
        }
        let mut outcome = tc.rx_wait(&mut rt.events);
        let mut tries = 1;
        // A guest's broadcast may have taken the request: the source's
        // frame comes in a later response (the backlog is in order).
        while let (RxWant::Frame, Ok(r)) = (want, &outcome) {
            if r.status <= 0
                || tries >= RX_TRIES
                || self.pages.holds_cross(r.offset, r.status as usize).is_ok()
            {
                break;
            }
            tries += 1;
            outcome = tc
                .rx_post(&rt.events, rx)
                .and_then(|()| tc.rx_wait(&mut rt.events));
        }
        let source = self.sc.tx_wait(&mut rt.events, 1);
        let r = match outcome {
            Ok(r) => r,
            Err(why) => return t.report(name, "rx none", Err(why)),
        };
        let detail = format!("rx {:#x}:{}", r.id, r.status);
        let verdict = if r.id != rx.id {
            Err(format!("id {:#x} is not the request's", r.id))
        } else {
            match want {
                RxWant::Error if r.status == status::ERROR => Ok(()),
                RxWant::Error => Err(format!("expected status {}", status::ERROR)),
                RxWant::Frame if r.status == FRAME_LEN as i16 => self
                    .pages
                    .holds_cross(r.offset, r.status as usize)
                    .map_err(|e| format!("after {tries} response(s): {e}")),
                RxWant::Frame => Err(format!("expected status {FRAME_LEN}")),
            }
        };
        let verdict = verdict.and_then(|()| match source {
            Ok(s) if s == [(tx_id, status::OKAY)] => Ok(()),
            Ok(s) => Err(format!("source's tx response {}", show_tx(&s))),
            Err(why) => Err(format!("source's tx response: {why}")),
        });
        t.report(name, &detail, verdict);
    }

    fn rx_cases(&mut self, rt: &mut Runtime, t: &mut Tally) {
        let ro = self.pages.frames.gref().0;
        let rw = self.pages.rx.gref().0;
        let cases = [
            ("rx-bad-gref", 0xffff, BAD_GREF, RxWant::Error),
            ("rx-readonly-gref", 0x8000, ro, RxWant::Error),
            ("rx-id-out-of-range", 0xfffe, rw, RxWant::Frame),
        ];
        for (k, (name, id, gref, want)) in cases.into_iter().enumerate() {
            let rx = RxRequest { id, gref };
            self.rx_case(rt, t, name, rx, want, 0x20 + k as u16);
        }
        // The vif must still be served, and still be Connected.
        let f = self.pages.frames.gref().0;
        let be = self.tv.be.clone();
        self.tx_case(
            rt,
            t,
            "tx-after",
            &[req(f, SELF_AT, false, 0x11, FRAME_LEN)],
            &[(0x11, status::OKAY)],
            |rt| {
                let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
                match read_state(&mut store, &be)? {
                    Some(STATE_CONNECTED) => Ok(()),
                    s => Err(format!("backend state {}, not 4", show_state(s))),
                }
            },
        );
    }

    /// Breaks the protocol on the target with `act`, which returns the
    /// `req_prod` it wrote (if any); the backend must go to Closing or
    /// Closed. The target's connection is closed afterwards.
    fn fatal_case(
        &mut self,
        rt: &mut Runtime,
        t: &mut Tally,
        name: &str,
        act: impl FnOnce(&mut Self, &mut Runtime) -> Result<Option<u32>, String>,
    ) {
        let acted = act(self, rt);
        let t0 = Instant::now();
        let detail_prod = match &acted {
            Ok(Some(p)) => format!("req_prod {p} "),
            _ => String::new(),
        };
        let waited = match &acted {
            Ok(_) => wait_state(rt, &self.tv.be, CLOSE_TIMEOUT, |s| s >= STATE_CLOSING),
            Err(why) => Err(why.clone()),
        };
        let ms = t0.elapsed().as_millis() as u64;
        let (verdict, last) = match waited {
            Ok((true, last)) => (Ok(()), last),
            Ok((false, last)) => (
                Err(format!(
                    "backend did not go to Closing or Closed within {} s",
                    CLOSE_TIMEOUT.as_secs()
                )),
                last,
            ),
            Err(why) => (Err(why), None),
        };
        let detail = format!(
            "{detail_prod}backend state {} after {ms} ms",
            show_state(last)
        );
        t.report(name, &detail, verdict);
        if let Some(c) = self.tc.take()
            && let Err(why) = disconnect(rt, &self.tv, c)
        {
            println!("net-hostile: closing vif 0: {why}");
        }
        self.learnt = false;
    }

    /// The target's connection, if it is up.
    fn target(&mut self) -> Result<&mut Conn, String> {
        self.tc
            .as_mut()
            .ok_or_else(|| String::from("target not connected"))
    }

    /// Connects the target again; false (counted as a failed case) if that
    /// does not work.
    fn reconnect(&mut self, rt: &mut Runtime, t: &mut Tally, after: &str) -> bool {
        match connect(rt, &self.tv) {
            Ok(c) => {
                self.tc = Some(c);
                true
            }
            Err(why) => {
                t.report("reconnect", &format!("after {after}"), Err(why));
                false
            }
        }
    }

    fn fatal_cases(&mut self, rt: &mut Runtime, t: &mut Tally) {
        // The rx ring is looked at when a frame is delivered: the source
        // sends one to the target after the corruption.
        self.fatal_case(rt, t, "rx-ring-overflow", |h, rt| {
            if !h.learnt {
                return Err(String::from(
                    "tx-sanity failed: the frame could reach the Linux guests",
                ));
            }
            let bad = h.target()?.overflow(&rt.events, true)?;
            let cross = h.cross_request(0x30);
            h.sc.tx_push(&rt.events, &[cross])?;
            match h.sc.tx_wait(&mut rt.events, 1) {
                Ok(s) if s == [(0x30, status::OKAY)] => Ok(Some(bad)),
                Ok(s) => Err(format!("source's tx response {}", show_tx(&s))),
                Err(why) => Err(format!("source's tx response: {why}")),
            }
        });
        if !self.reconnect(rt, t, "rx-ring-overflow") {
            return;
        }
        let f = self.pages.frames.gref().0;
        self.fatal_case(rt, t, "tx-oversized", |h, rt| {
            let big = req(f, 0, false, 0x40, u16::MAX);
            h.target()?.tx_push(&rt.events, &[big]).map(|()| None)
        });
        if !self.reconnect(rt, t, "tx-oversized") {
            return;
        }
        self.fatal_case(rt, t, "tx-too-many-slots", |h, rt| {
            // The first request and FATAL_SKB_SLOTS more, all announcing
            // another: the backend gives up before reading on.
            let mut reqs = vec![req(f, 0, true, 0x50, 1000)];
            for k in 0..netif::FATAL_SKB_SLOTS as u16 {
                reqs.push(req(f, 0, true, 0x51 + k, 1));
            }
            h.target()?.tx_push(&rt.events, &reqs).map(|()| None)
        });
        if !self.reconnect(rt, t, "tx-too-many-slots") {
            return;
        }
        self.fatal_case(rt, t, "tx-ring-overflow", |h, rt| {
            h.target()?.overflow(&rt.events, false).map(Some)
        });
    }

    /// Closes what is still open and gives the pages back.
    fn finish(self, rt: &mut Runtime) {
        let Self {
            tv,
            sv,
            tc,
            sc,
            pages,
            ..
        } = self;
        if let Some(c) = tc
            && let Err(why) = disconnect(rt, &tv, c)
        {
            println!("net-hostile: closing vif 0: {why}");
        }
        if let Err(why) = disconnect(rt, &sv, sc) {
            println!("net-hostile: closing vif 1: {why}");
        }
        pages.release(&mut rt.grants);
        if let Ok(mut store) = rt.store() {
            for v in [&tv, &sv] {
                let _ = store.unwatch(
                    &format!("{}/state", v.be),
                    &format!("net-hostile-be-{}", v.devid),
                );
            }
        }
    }
}
