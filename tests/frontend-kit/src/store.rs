//! xenstore for a frontend: the xenbus states, bounded waits on watched
//! nodes, and the nodes the toolstack writes for every device.

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use xen_rt::hypercall::DomId;
use xen_rt::time::Instant;
use xen_rt::xenstore::{Store, XsOpError};
use xen_rt::{Runtime, println};

use crate::{WATCH_STEP, xs};

/// `XenbusState*`.
pub const STATE_INITIALISING: u32 = 1;
pub const STATE_INITWAIT: u32 = 2;
pub const STATE_INITIALISED: u32 = 3;
pub const STATE_CONNECTED: u32 = 4;
pub const STATE_CLOSING: u32 = 5;
pub const STATE_CLOSED: u32 = 6;

/// Our domid, as xenstore says.
pub fn my_domid(rt: &mut Runtime) -> Result<u16, String> {
    Ok(rt
        .domid()
        .ok_or_else(|| String::from("cannot read our domid from xenstore"))?
        .0)
}

/// Re-evaluates `check` after every watch event (and at least every
/// [`WATCH_STEP`]) until it yields a value or `timeout` passes.
pub fn wait_until<'a, T>(
    store: &mut Store<'a>,
    timeout: Duration,
    mut check: impl FnMut(&mut Store<'a>) -> Result<Option<T>, String>,
) -> Result<Option<T>, String> {
    let deadline = Instant::now().after(timeout);
    loop {
        if let Some(v) = check(store)? {
            return Ok(Some(v));
        }
        let left = deadline.duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match store.next_watch_event(left.min(WATCH_STEP)) {
            Ok(_) | Err(XsOpError::TimedOut) => {}
            Err(e) => return Err(format!("waiting for a watch event: {e:?}")),
        }
    }
}

/// Registers a watch. If xenstored refuses it, the waits still work (they
/// re-read every [`WATCH_STEP`]), so that is only noted, as
/// `<tag>: watch on <path> refused ...`.
pub fn watch(tag: &str, store: &mut Store<'_>, path: &str, token: &str) -> Result<(), String> {
    match store.watch(path, token) {
        Ok(()) => Ok(()),
        Err(XsOpError::Store(e)) => {
            println!("{tag}: watch on {path} refused ({e:?}); polling instead");
            Ok(())
        }
        Err(e) => Err(format!("watching {path}: {e:?}")),
    }
}

/// Reads a node that may not exist yet: `Ok(None)` if xenstored said so
/// (ENOENT, or EACCES before the toolstack set the permissions).
pub fn read_opt(store: &mut Store<'_>, path: &str) -> Result<Option<String>, String> {
    match store.read_string(path) {
        Ok(v) => Ok(Some(v)),
        Err(XsOpError::Store(_)) => Ok(None),
        Err(e) => Err(format!("reading {path}: {e:?}")),
    }
}

/// `<fe>/backend-id`, checked to be a domain id.
pub fn read_backend_id(store: &mut Store<'_>, fe: &str) -> Result<DomId, String> {
    let backend_id = store
        .read_u32(&format!("{fe}/backend-id"))
        .map_err(xs("reading backend-id"))?;
    u16::try_from(backend_id)
        .map(DomId)
        .map_err(|_| format!("backend-id {backend_id} is not a domain id"))
}

/// Writes `state` to the device directory `dir` (ours).
pub fn set_state(store: &mut Store<'_>, dir: &str, state: u32) -> Result<(), XsOpError> {
    store.write(&format!("{dir}/state"), format!("{state}").as_bytes())
}

/// The backend's state (`None`: missing or not a number).
pub fn read_state(store: &mut Store<'_>, be: &str) -> Result<Option<u32>, String> {
    Ok(read_opt(store, &format!("{be}/state"))?.and_then(|v| v.parse().ok()))
}

/// Waits up to `timeout` until the backend's state satisfies `done`.
/// Returns whether it did; `last` follows every state read (it keeps its
/// value while none can be read, and on an error).
pub fn wait_state_in(
    store: &mut Store<'_>,
    be: &str,
    timeout: Duration,
    last: &mut Option<u32>,
    done: impl Fn(u32) -> bool,
) -> Result<bool, String> {
    let hit = wait_until(store, timeout, |s| {
        let st = read_state(s, be)?;
        *last = st.or(*last);
        Ok(st.filter(|&n| done(n)))
    })?;
    Ok(hit.is_some())
}

/// [`wait_state_in`] on a fresh xenstore connection: whether the state
/// satisfied `done`, and the last state read.
pub fn wait_state(
    rt: &mut Runtime,
    be: &str,
    timeout: Duration,
    done: impl Fn(u32) -> bool,
) -> Result<(bool, Option<u32>), String> {
    let mut store = rt.store().map_err(xs("connecting to xenstore"))?;
    let mut last = None;
    let hit = wait_state_in(&mut store, be, timeout, &mut last, done)?;
    Ok((hit, last))
}

/// A state for a log line: the number, or `none`.
pub fn show_state(s: Option<u32>) -> String {
    s.map_or(String::from("none"), |s| format!("{s}"))
}
