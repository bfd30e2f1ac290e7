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
}

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
            self.rescan(store, driver);
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
        self.devices.retain(|d| d.machine.is_present());
    }

    fn rescan(&mut self, store: &mut Store<'_>, driver: &mut dyn BackendDriver) {
        let frontends = store.directory(&self.home).unwrap_or_default();
        for fe in frontends {
            let Some(fe_id) = parse_u16(&fe) else {
                continue;
            };
            let devids = store
                .directory(&format!("{}/{}", self.home, fe_id))
                .unwrap_or_default();
            for dev in devids {
                let Some(devid) = parse_u32(&dev) else {
                    continue;
                };
                if self
                    .devices
                    .iter()
                    .any(|d| d.frontend_id.0 == fe_id && d.devid == devid)
                {
                    continue;
                }
                let backend_path = format!("{}/{}/{}", self.home, fe_id, devid);
                // The toolstack writes `frontend` last among the nodes we
                // need; a device without it is not complete yet.
                let Ok(frontend_path) = store.read_string(&format!("{}/frontend", backend_path))
                else {
                    continue;
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
                    let _ = store.unwatch(&format!("{}/state", d.frontend_path), TOKEN_FRONTEND);
                    if !d.machine.is_online() {
                        let _ = store.rm(&d.backend_path);
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
