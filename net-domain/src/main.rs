//! # net-domain
//!
//! A dom0less service domain that serves netback (Xen netif) to unmodified
//! Linux xen-netfront guests and switches their frames between the vifs
//! with a learning Ethernet switch.
//!
//! Status: with the boot argument `netback=1` it serves every vif the
//! toolstack creates with this domain as backend (module [`netback`]);
//! the uplink to a passed-through NIC is not there yet. Without it, the
//! domain reports itself and stops. `mgmt=<a.b.c.d>/<prefix>` puts a
//! management host on the switch (module [`mgmt`], smoltcp): it answers
//! ARP and ping and serves the counters on TCP port 7777. `capture=N` prints the first N tx
//! packets of each kind per vif as hex, for the fuzz corpus
//! (`cargo xtask fuzz --import-capture`); `xscapture=N` (xen-rt) prints
//! xenstore reply bytes.
//!
//! Design: one event loop on one vCPU. Each round handles the xenstore
//! watch events (the xenbus state machine of every vif), then the data
//! path of every vif (its rx backlog, then its tx ring), then sleeps until
//! an event channel fires or a second passes. Nothing here is `unsafe`;
//! shared memory is reached through xen-rt's checked accessors and grant
//! copies only.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod mgmt;
mod netback;

use alloc::vec::Vec;
use core::time::Duration;

use xen_rt::hypercall::EvtchnPort;
use xen_rt::proto::xenbus::ConnectPolicy;
use xen_rt::time::Instant;
use xen_rt::xenbus::BackendBus;
use xen_rt::xenstore::XsOpError;
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

/// The management host's MAC (locally administered, unicast).
const MGMT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// How often the per-vif counters are printed while they change.
const STATS_EVERY: Duration = Duration::from_secs(15);

fn main(rt: &mut Runtime) {
    let (major, minor) = rt.xen_version();
    println!(
        "net-domain: xen-rt {} on Xen {}.{}",
        xen_rt::VERSION,
        major,
        minor
    );
    if rt.dt.bootarg("netback") != Some("1") {
        println!("net-domain: no netback=1 boot argument; shutting down");
        return;
    }
    serve(rt);
}

/// The netback event loop.
fn serve(rt: &mut Runtime) {
    let Some(self_id) = rt.domid() else {
        println!("net-domain: no domid in xenstore; not serving");
        return;
    };
    let Some(xs_port) = rt.store_port() else {
        println!("net-domain: no xenstore connection; not serving");
        return;
    };
    let mut bus = match rt.store() {
        Ok(mut store) => {
            match BackendBus::new(&mut store, self_id, "vif", ConnectPolicy::OnConnected) {
                Ok(b) => b,
                Err(e) => {
                    println!("net-domain: watching backend/vif failed: {e:?}");
                    return;
                }
            }
        }
        Err(e) => {
            println!("net-domain: xenstore: {e:?}");
            return;
        }
    };
    println!(
        "net-domain: netback serving as dom{} (max {} queues per vif) at +{} ms",
        self_id.0,
        netback::MAX_QUEUES,
        rt.booted_at().elapsed().as_millis()
    );
    let mut nb = netback::Netback::new();
    nb.capture = rt
        .dt
        .bootarg("capture")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    match rt.dt.bootarg("mgmt").map(|a| (a, mgmt::parse_address(a))) {
        Some((_, Some(addr))) => {
            let m = mgmt::Mgmt::new(MGMT_MAC, addr, xen_rt::time::ms_since_creation());
            let ip = addr.0;
            println!(
                "net-domain: management host {}.{}.{}.{}/{} mac {:02x?}, counters on tcp port {}",
                ip[0],
                ip[1],
                ip[2],
                ip[3],
                addr.1,
                m.mac,
                mgmt::COUNTERS_PORT
            );
            nb.mgmt = Some(m);
        }
        Some((arg, None)) => {
            println!("net-domain: mgmt={arg} is not <a.b.c.d>/<prefix>; no management host")
        }
        None => {}
    }
    let mut ports: Vec<EvtchnPort> = Vec::new();
    let mut next_stats = Instant::now().after(STATS_EVERY);
    // Rounds and the time spent in the data path since the last report.
    let (mut rounds, mut work) = (0u64, Duration::ZERO);
    loop {
        let busy;
        {
            let Ok((mut store, grants, foreign)) = rt.store_and_grants() else {
                println!("net-domain: xenstore lost; stopping");
                return;
            };
            loop {
                match store.next_watch_event(Duration::ZERO) {
                    Ok((path, token)) => {
                        if bus.owns(&path, &token) {
                            let mut drv = netback::Driver {
                                grants: &mut *grants,
                                foreign: &mut *foreign,
                                nb: &mut nb,
                            };
                            bus.handle_event(&mut store, &mut drv, &path, &token);
                        }
                    }
                    Err(XsOpError::TimedOut) => break,
                    Err(e) => {
                        println!("net-domain: watch: {e:?}");
                        break;
                    }
                }
            }
            let t = Instant::now();
            busy = nb.round(store.events());
            work += t.elapsed();
            rounds += 1;
            for (fe, devid, reason) in nb.take_failed() {
                let mut drv = netback::Driver {
                    grants: &mut *grants,
                    foreign: &mut *foreign,
                    nb: &mut nb,
                };
                bus.fail_device(&mut store, &mut drv, fe, devid, &reason);
            }
            bus.tick(&mut store);
            for p in nb.to_close.drain(..) {
                let _ = store.events().close(p);
            }
        }
        if Instant::now() >= next_stats {
            if nb.print_stats() {
                println!(
                    "net-domain: {rounds} rounds, data path {} ms in {} s",
                    work.as_millis(),
                    STATS_EVERY.as_secs()
                );
            }
            (rounds, work) = (0, Duration::ZERO);
            next_stats = Instant::now().after(STATS_EVERY);
        }
        if busy {
            continue;
        }
        ports.clear();
        ports.push(xs_port);
        nb.ports(&mut ports);
        // At most a second, less if a vif over its `rate` limit gets its
        // next credit sooner.
        let now = Instant::now();
        let credit_in = nb.next_credit().map_or(Duration::from_secs(1), |t| {
            Duration::from_micros(t.saturating_sub(now.since_creation().as_micros() as u64))
        });
        let _ = rt.events.wait_any(
            &ports,
            Some(now.after(credit_in.min(Duration::from_secs(1)))),
        );
        // Every port is looked at in the next round: clear them all.
        for p in &ports {
            rt.events.take(*p);
        }
    }
}
