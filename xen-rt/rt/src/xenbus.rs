//! The xenbus backend helper: watches `backend/<type>` under our own
//! xenstore home (`/local/domain/<self>/backend/<type>/<frontend-id>/<devid>`),
//! notices devices the toolstack creates there, follows each frontend's
//! `state` and the backend's `online` node, and drives xen-proto's pure
//! [`BackendMachine`] for every device, carrying out its actions: writing
//! the backend `state`, calling the driver's connect/disconnect, and
//! removing the backend directory when the device is finished (a driver
//! domain does that itself; libxl expects it).
//!
//! Rules: every value read from xenstore is checked (numbers parsed
//! strictly, paths built only from parsed numbers), a device whose frontend
//! misbehaves is closed, never a panic.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xen_hypercall::DomId;
use xen_proto::xenbus::{Action, BackendMachine, ConnectPolicy, Input, XenbusState};

use crate::xenstore::{Store, XsOpError};

/// One backend device.
#[derive(Debug)]
pub struct Device {
    pub frontend_id: DomId,
    pub devid: u32,
    /// Absolute path of the backend directory.
    pub backend_path: String,
    /// Absolute path of the frontend directory (from the backend's
    /// `frontend` node).
    pub frontend_path: String,
    machine: BackendMachine,
    /// Unregistered with `online` 0: the backend directory goes once the
    /// toolstack has seen Closed and removed the frontend directory.
    remove_later: bool,
}

impl Device {
    pub fn state(&self) -> XenbusState {
        self.machine.state()
    }
    pub fn is_connected(&self) -> bool {
        self.machine.is_connected()
    }
}

/// What a backend driver (netback, blkback, console...) provides.
pub trait BackendDriver {
    /// Before InitWait: write the feature nodes into the backend directory.
    fn probe(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), XsOpError>;
    /// The frontend is ready: read its ring details, map, bind, serve.
    fn connect(&mut self, store: &mut Store<'_>, dev: &Device) -> Result<(), String>;
    /// Stop serving the device and release what connect took.
    fn disconnect(&mut self, dev: &Device);
}

/// The backends of one device type served by this domain.
pub struct BackendBus {
    device_type: &'static str,
    policy: ConnectPolicy,
    home: String,
    devices: Vec<Device>,
    /// `(backend path, frontend path)` of finished devices whose backend
    /// directory we remove once the frontend directory is gone.
    finishing: Vec<(String, String, crate::time::Instant)>,
}

/// How long a finished device's backend directory stays after we wrote
/// Closed (see [`BackendBus::tick`]).
const FINISH_GRACE: core::time::Duration = core::time::Duration::from_millis(500);

const TOKEN_BACKEND: &str = "xenbus-backend";
const TOKEN_FRONTEND: &str = "xenbus-frontend";

impl BackendBus {
    /// Starts watching `/local/domain/<self>/backend/<device_type>`.
    pub fn new(
        store: &mut Store<'_>,
        self_id: DomId,
        device_type: &'static str,
        policy: ConnectPolicy,
    ) -> Result<Self, XsOpError> {
        let home = format!("/local/domain/{}/backend/{}", self_id.0, device_type);
        store.watch(&home, TOKEN_BACKEND)?;
        Ok(Self {
            device_type,
            policy,
            home,
            devices: Vec::new(),
            finishing: Vec::new(),
        })
    }

    pub fn device_type(&self) -> &'static str {
        self.device_type
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// True if the watch event `(path, token)` belongs to this bus.
    pub fn owns(&self, path: &str, token: &str) -> bool {
        (token == TOKEN_BACKEND && path.starts_with(self.home.as_str()))
            || (token == TOKEN_FRONTEND
                && self
                    .finishing
                    .iter()
                    .any(|(_, fe, _)| path.starts_with(fe.as_str())))
            || (token == TOKEN_FRONTEND
                && self
                    .devices
                    .iter()
                    .any(|d| path.starts_with(d.frontend_path.as_str())))
    }

    /// Handles one watch event: rescans devices and re-reads the states
    /// that may have changed, then carries out the machine's actions.
    pub fn handle_event(
        &mut self,
        store: &mut Store<'_>,
        driver: &mut dyn BackendDriver,
        path: &str,
        token: &str,
    ) {
        if token == TOKEN_BACKEND {
            self.rescan(store, driver, path);
        }
        for i in 0..self.devices.len() {
            let relevant = {
                let d = &self.devices[i];
                path.starts_with(d.frontend_path.as_str())
                    || path.starts_with(d.backend_path.as_str())
            };
            if relevant {
                self.refresh(store, driver, i);
            }
        }
        for d in self.devices.iter() {
            if !d.machine.is_present() && d.remove_later {
                self.finishing.push((
                    d.backend_path.clone(),
                    d.frontend_path.clone(),
                    crate::time::Instant::now().after(FINISH_GRACE),
                ));
            }
        }
        self.devices.retain(|d| d.machine.is_present());
        self.tick(store);
    }

    /// Removes the backend directories of finished devices. libxl first
    /// waits for the backend to show Closed, then for the directory to
    /// vanish: if it vanished before libxl saw Closed, libxl reports the
    /// removal as failed. So the directory goes [`FINISH_GRACE`] after we
    /// wrote Closed, or as soon as the frontend directory is gone. Call
    /// this periodically (every second is enough).
    pub fn tick(&mut self, store: &mut Store<'_>) {
        let now = crate::time::Instant::now();
        self.finishing.retain(|(be, fe, deadline)| {
            if now < *deadline && store.read(&format!("{}/state", fe)).is_ok() {
                return true;
            }
            let _ = store.unwatch(&format!("{}/state", fe), TOKEN_FRONTEND);
            let _ = store.rm(be);
            false
        });
    }

    /// The driver found a fatal fault on a connected device (a frontend
    /// that broke the ring protocol): disconnect it and move the backend
    /// to Closing, as Linux's `xenbus_dev_fatal` does.
    pub fn fail_device(
        &mut self,
        store: &mut Store<'_>,
        driver: &mut dyn BackendDriver,
        frontend_id: DomId,
        devid: u32,
        reason: &str,
    ) {
        for d in self.devices.iter_mut() {
            if d.frontend_id == frontend_id && d.devid == devid {
                crate::println!("xenbus: closing {}: {}", d.backend_path, reason);
                let actions = d.machine.handle(Input::ConnectFailed);
                Self::apply(store, driver, d, &actions);
            }
        }
    }

    /// The `(frontend id, devid)` a watch path under our home names.
    fn device_of_path(&self, path: &str) -> Option<(u16, u32)> {
        let rest = path.strip_prefix(self.home.as_str())?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let fe = parse_u16(parts.next()?)?;
        let dev = parse_u32(parts.next()?)?;
        Some((fe, dev))
    }

    fn rescan(&mut self, store: &mut Store<'_>, driver: &mut dyn BackendDriver, path: &str) {
        // Candidates: every device listed under our home, plus the one the
        // watch path names. The toolstack may create `backend/<type>`
        // owned by dom0 without read access for us (libxl does so for a
        // dom0less driver domain), so the listing can fail while the
        // device directories themselves are ours.
        let mut candidates: Vec<(u16, u32)> = Vec::new();
        match store.directory(&self.home) {
            Ok(frontends) => {
                for fe in frontends {
                    let Some(fe_id) = parse_u16(&fe) else {
                        continue;
                    };
                    let devids = store
                        .directory(&format!("{}/{}", self.home, fe_id))
                        .unwrap_or_default();
                    for dev in devids {
                        if let Some(devid) = parse_u32(&dev) {
                            candidates.push((fe_id, devid));
                        }
                    }
                }
            }
            Err(_) => {
                // Not listable: rely on the watch paths (see above).
            }
        }
        if let Some(c) = self.device_of_path(path)
            && !candidates.contains(&c)
        {
            candidates.push(c);
        }
        {
            for (fe_id, devid) in candidates {
                if self
                    .devices
                    .iter()
                    .any(|d| d.frontend_id.0 == fe_id && d.devid == devid)
                {
                    continue;
                }
                let backend_path = format!("{}/{}/{}", self.home, fe_id, devid);
                // Finished, waiting for the toolstack to take it away.
                if self.finishing.iter().any(|(be, _, _)| *be == backend_path) {
                    continue;
                }
                // The toolstack writes `frontend` last among the nodes we
                // need; a device without it is not complete yet.
                let frontend_path = match store.read_string(&format!("{}/frontend", backend_path)) {
                    Ok(p) => p,
                    // Not there (yet, or any more): nothing to do.
                    Err(XsOpError::Store(_)) => continue,
                    Err(e) => {
                        crate::println!("xenbus: {}/frontend: {:?}", backend_path, e);
                        continue;
                    }
                };
                let expected = format!("/local/domain/{}/", fe_id);
                if !frontend_path.starts_with(expected.as_str()) {
                    crate::println!(
                        "xenbus: {} names frontend {:?} outside dom{}; ignored",
                        backend_path,
                        frontend_path,
                        fe_id
                    );
                    continue;
                }
                let mut device = Device {
                    frontend_id: DomId(fe_id),
                    devid,
                    backend_path,
                    frontend_path,
                    machine: BackendMachine::new(self.policy),
                    remove_later: false,
                };
                if let Err(e) = driver.probe(store, &device) {
                    crate::println!("xenbus: probe of {} failed: {:?}", device.backend_path, e);
                    continue;
                }
                let _ = store.watch(&format!("{}/state", device.frontend_path), TOKEN_FRONTEND);
                let actions = device.machine.handle(Input::DeviceAppeared);
                Self::apply(store, driver, &mut device, &actions);
                self.devices.push(device);
            }
        }
        // Devices whose backend directory vanished.
        for i in 0..self.devices.len() {
            let gone = store
                .read(&format!("{}/frontend", self.devices[i].backend_path))
                .is_err();
            if gone && self.devices[i].machine.is_present() {
                let d = &mut self.devices[i];
                let actions = d.machine.handle(Input::DeviceRemoved);
                Self::apply(store, driver, d, &actions);
            }
        }
    }

    fn refresh(&mut self, store: &mut Store<'_>, driver: &mut dyn BackendDriver, i: usize) {
        let d = &mut self.devices[i];
        let online = store
            .read(&format!("{}/online", d.backend_path))
            .ok()
            .and_then(|v| xen_proto::xenstore::parse_decimal(&v))
            .is_some_and(|v| v == 1);
        if online != d.machine.is_online() {
            let actions = d.machine.handle(Input::Online(online));
            Self::apply(store, driver, d, &actions);
        }
        let fe_state = store
            .read(&format!("{}/state", d.frontend_path))
            .ok()
            .and_then(|v| XenbusState::parse(&v).ok())
            .unwrap_or(XenbusState::Unknown);
        if fe_state != d.machine.frontend_state() {
            let actions = d.machine.handle(Input::FrontendState(fe_state));
            Self::apply(store, driver, d, &actions);
        }
    }

    fn apply(
        store: &mut Store<'_>,
        driver: &mut dyn BackendDriver,
        d: &mut Device,
        actions: &[Action],
    ) {
        for &action in actions {
            match action {
                Action::SetState(s) => {
                    let _ = store.write(
                        &format!("{}/state", d.backend_path),
                        format!("{}", s as u8).as_bytes(),
                    );
                }
                Action::Connect => {
                    if let Err(e) = driver.connect(store, d) {
                        crate::println!("xenbus: connecting {} failed: {}", d.backend_path, e);
                        let more = d.machine.handle(Input::ConnectFailed);
                        Self::apply(store, driver, d, &more);
                        return;
                    }
                }
                Action::Disconnect => driver.disconnect(d),
                Action::Unregister => {
                    if !d.machine.is_online() {
                        // The toolstack may have written Closing over our
                        // Closed; show Closed again and remove later.
                        let _ = store.write(
                            &format!("{}/state", d.backend_path),
                            format!("{}", XenbusState::Closed as u8).as_bytes(),
                        );
                        d.remove_later = true;
                    } else {
                        let _ =
                            store.unwatch(&format!("{}/state", d.frontend_path), TOKEN_FRONTEND);
                    }
                }
            }
        }
    }
}

fn parse_u16(s: &str) -> Option<u16> {
    parse_u32(s).and_then(|v| u16::try_from(v).ok())
}

fn parse_u32(s: &str) -> Option<u32> {
    xen_proto::xenstore::parse_decimal(s.as_bytes())
}
