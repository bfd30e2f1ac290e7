//! A frontend's side of a shared ring (`io/ring.h`): we are the only
//! writer of `req_prod` and `rsp_event`; the backend writes `rsp_prod`,
//! `req_event` and the responses. Only the header lives here; the entries
//! are the protocol's (`xen_proto::blkif`, `xen_proto::netif`), and the
//! private indices (`req_prod` as published, `rsp_cons`) stay with the
//! caller.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{Ordering, fence};
use core::time::Duration;

use xen_rt::events::{EventError, Events};
use xen_rt::gnttab::{GrantTable, GrantedPage};
use xen_rt::hypercall::{DomId, EvtchnPort};
use xen_rt::mem::{OwnedPage, SharedPage};
use xen_rt::time::Instant;

use crate::{POLL_STEP, xs};

/// Offsets in the shared ring header (`io/ring.h`).
pub const REQ_PROD: usize = 0;
pub const REQ_EVENT: usize = 4;
pub const RSP_PROD: usize = 8;
pub const RSP_EVENT: usize = 12;

/// How a ring is named in error messages.
pub struct RingNames {
    /// Prefix of page access errors (`tx ring access: ...`).
    pub access: &'static str,
    /// Its `rsp_prod` when that runs ahead (`tx rsp_prod 7 is ...`).
    pub rsp_prod: &'static str,
    /// What the requests not yet answered are (`... with 1 in flight`).
    pub pending: &'static str,
}

/// A fresh ring page (`SHARED_RING_INIT` / `FRONT_RING_INIT`: empty,
/// asking for an event on the first request and the first response),
/// granted read-write to `backend`. `name` is the ring in errors
/// (`allocating <name> page`).
pub fn ring_page(
    grants: &mut GrantTable,
    backend: DomId,
    name: &str,
) -> Result<GrantedPage, String> {
    let page = OwnedPage::new().map_err(|e| format!("allocating {name} page: {e:?}"))?;
    {
        let v = page.shared();
        v.store_u32(REQ_EVENT, 1, Ordering::Relaxed)
            .and_then(|()| v.store_u32(RSP_EVENT, 1, Ordering::Relaxed))
            .map_err(|e| format!("initialising {name}: {e:?}"))?;
    }
    grants
        .grant(page, backend, false)
        .map_err(|(_, e)| format!("granting {name} page: {e:?}"))
}

/// `RING_PUSH_REQUESTS`: publishes `req_prod` (the entries are in place)
/// and notifies the backend. `access` prefixes page access errors.
pub fn push(
    page: &SharedPage,
    req_prod: u32,
    events: &Events,
    port: EvtchnPort,
    access: &str,
) -> Result<(), String> {
    // The Release store orders the entries before the index; the full
    // fence orders the index before the notification.
    page.store_u32(REQ_PROD, req_prod, Ordering::Release)
        .map_err(xs(access))?;
    fence(Ordering::SeqCst);
    // Always notify (more often than req_event asks for is allowed).
    events.notify(port).map_err(xs("notifying the backend"))
}

/// Moves `req_prod` `by` entries past the shared `rsp_prod`, without
/// entries, and notifies: a protocol violation the backend must answer by
/// disconnecting. Returns the value written.
pub fn overflow(
    page: &SharedPage,
    by: u32,
    events: &Events,
    port: EvtchnPort,
    access: &str,
) -> Result<u32, String> {
    let rsp_prod = page
        .load_u32(RSP_PROD, Ordering::Acquire)
        .map_err(xs(access))?;
    let bad = rsp_prod.wrapping_add(by);
    push(page, bad, events, port, access)?;
    Ok(bad)
}

/// How many responses are ready to consume at `rsp_cons`. The shared
/// `rsp_prod` is copied once (Acquire orders the entry reads after it)
/// and must not claim more responses than requests in flight
/// (`req_prod - rsp_cons`).
pub fn ready(
    page: &SharedPage,
    names: &RingNames,
    req_prod: u32,
    rsp_cons: u32,
) -> Result<u32, String> {
    let rsp_prod = page
        .load_u32(RSP_PROD, Ordering::Acquire)
        .map_err(xs(names.access))?;
    let ready = rsp_prod.wrapping_sub(rsp_cons);
    let in_flight = req_prod.wrapping_sub(rsp_cons);
    if ready > in_flight {
        return Err(format!(
            "{} {rsp_prod} is {ready} ahead of rsp_cons {rsp_cons} with {in_flight} {}",
            names.rsp_prod, names.pending
        ));
    }
    Ok(ready)
}

/// `RING_FINAL_CHECK_FOR_RESPONSES`: asks for an event on the next
/// response, then looks once more (a response pushed before the backend
/// saw `rsp_event`). True if there are responses at `rsp_cons` now.
pub fn final_check(page: &SharedPage, rsp_cons: u32, access: &str) -> Result<bool, String> {
    page.store_u32(RSP_EVENT, rsp_cons.wrapping_add(1), Ordering::Release)
        .map_err(xs(access))?;
    fence(Ordering::SeqCst);
    let again = page
        .load_u32(RSP_PROD, Ordering::Acquire)
        .map_err(xs(access))?;
    Ok(again != rsp_cons)
}

/// Sleeps until `port` fires, [`POLL_STEP`] passes or `deadline` comes.
pub fn wait_port(events: &mut Events, port: EvtchnPort, deadline: Instant) -> Result<(), String> {
    let step = Instant::now().after(POLL_STEP).min(deadline);
    match events.wait(port, Some(step)) {
        Ok(()) | Err(EventError::TimedOut) => Ok(()),
        Err(e) => Err(format!("waiting for the backend: {e:?}")),
    }
}

/// Re-evaluates `check` after every event on `port` (and at least every
/// [`POLL_STEP`]) until it yields a value or `timeout` passes (`Ok(None)`).
pub fn poll_until<T>(
    events: &mut Events,
    port: EvtchnPort,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>, String>,
) -> Result<Option<T>, String> {
    let deadline = Instant::now().after(timeout);
    loop {
        if let Some(v) = check()? {
            return Ok(Some(v));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        wait_port(events, port, deadline)?;
    }
}
