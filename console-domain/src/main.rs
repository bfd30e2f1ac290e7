//! # console-domain
//!
//! A dom0less service domain that serves the Xen PV console backend to
//! guests: the secondary consoles (`device/console/<N>`, N ≥ 1) of Linux
//! guests, driven by Linux's `hvc_xen` xenbus frontend (`/dev/hvc<k>` in
//! the guest). What a guest writes is printed on this domain's console,
//! one sanitised, bounded line at a time, as
//! `console-domain: [dom<D>/<N>] <line>`; nothing of dom0 is in that path.
//!
//! Design rules:
//! * `#![forbid(unsafe_code)]`. The console page is mapped with xen-rt's
//!   grant table and reached only through its checked
//!   [`SharedPage`](xen_rt::mem::SharedPage) accessors.
//! * Everything the frontend writes is copied once, then validated: the
//!   index block by `xen_proto::console` (wrapping `prod - cons` within
//!   each ring, the backend's own indices unchanged), then the ring bytes.
//!   A frontend that breaks the indices is disconnected with the reason
//!   logged (xenbus Closing, then Closed), never a panic.
//! * One event loop on one vCPU: xenstore watch events drive xen-rt's
//!   xenbus [`BackendBus`] (connect on the frontend's Initialised, as
//!   `hvc_xen` expects; reconnect after Closing/Closed or a new device),
//!   then every console's ring is looked at, then the domain sleeps until
//!   an event channel fires or a second passes.
//!
//! Boot arguments: `consback=1` serves (otherwise the domain reports
//! itself and stops); `echo=1` is the test behaviour that answers input:
//! every printed line goes back to the guest as `echo: <line>\n`;
//! `capture=N` prints the first N ring states of each connection as
//! `conscap` hex lines (fuzz seeds, `cargo xtask fuzz --import-capture`);
//! `xscapture=N` (xen-rt) prints xenstore reply bytes. See [`consback`].
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod consback;

use alloc::vec::Vec;
use core::time::Duration;

use xen_rt::hypercall::EvtchnPort;
use xen_rt::proto::xenbus::ConnectPolicy;
use xen_rt::time::Instant;
use xen_rt::xenbus::BackendBus;
use xen_rt::xenstore::XsOpError;
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

fn main(rt: &mut Runtime) {
    let (major, minor) = rt.xen_version();
    println!(
        "console-domain: xen-rt {} on Xen {}.{}",
        xen_rt::VERSION,
        major,
        minor
    );
    if rt.dt.bootarg("consback") != Some("1") {
        println!("console-domain: no consback=1 boot argument; shutting down");
        return;
    }
    serve(rt);
}

/// The console backend's event loop.
fn serve(rt: &mut Runtime) {
    let Some(self_id) = rt.domid() else {
        println!("console-domain: no domid in xenstore; not serving");
        return;
    };
    let Some(xs_port) = rt.store_port() else {
        println!("console-domain: no xenstore connection; not serving");
        return;
    };
    let mut bus = match rt.store() {
        Ok(mut store) => {
            match BackendBus::new(&mut store, self_id, "console", ConnectPolicy::OnInitialised) {
                Ok(b) => b,
                Err(e) => {
                    println!("console-domain: watching backend/console failed: {e:?}");
                    return;
                }
            }
        }
        Err(e) => {
            println!("console-domain: xenstore: {e:?}");
            return;
        }
    };
    let echo = rt.dt.bootarg("echo") == Some("1");
    let capture = rt
        .dt
        .bootarg("capture")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut cb = consback::Consback::new(echo, capture);
    println!(
        "console-domain: consback serving as dom{} (echo {}, capture {capture}) at +{} ms",
        self_id.0,
        u8::from(echo),
        rt.booted_at().elapsed().as_millis()
    );
    let mut ports: Vec<EvtchnPort> = Vec::new();
    loop {
        {
            let Ok((mut store, grants, foreign)) = rt.store_and_grants() else {
                println!("console-domain: xenstore lost; stopping");
                return;
            };
            loop {
                match store.next_watch_event(Duration::ZERO) {
                    Ok((path, token)) => {
                        if bus.owns(&path, &token) {
                            let mut drv = consback::Driver {
                                grants: &mut *grants,
                                foreign: &mut *foreign,
                                cb: &mut cb,
                            };
                            bus.handle_event(&mut store, &mut drv, &path, &token);
                        }
                    }
                    Err(XsOpError::TimedOut) => break,
                    Err(e) => {
                        println!("console-domain: watch: {e:?}");
                        break;
                    }
                }
            }
            cb.round(store.events());
            for (fe, devid, reason) in cb.take_failed() {
                let mut drv = consback::Driver {
                    grants: &mut *grants,
                    foreign: &mut *foreign,
                    cb: &mut cb,
                };
                bus.fail_device(&mut store, &mut drv, fe, devid, &reason);
            }
            bus.tick(&mut store);
            for p in cb.to_close.drain(..) {
                let _ = store.events().close(p);
            }
        }
        ports.clear();
        ports.push(xs_port);
        cb.ports(&mut ports);
        let _ = rt
            .events
            .wait_any(&ports, Some(Instant::now().after(Duration::from_secs(1))));
        // Every port is looked at in the next round: clear them all.
        for p in &ports {
            rt.events.take(*p);
        }
    }
}
