//! XenBus device states (`io/xenbus.h`) and a pure backend state machine.
//!
//! # States
//!
//! [`XenbusState`] is written to xenstore as a decimal string (`"4"`).
//! [`XenbusState::parse`] is strict: exactly one ASCII digit `0`–`8`.
//!
//! # Backend state machine
//!
//! [`BackendMachine`] mirrors the `frontend_changed` handler of Linux's
//! xen-netback (`drivers/net/xen-netback/xenbus.c`), whose
//! `set_backend_state` walks the backend along the shortest path to a
//! target state. It is pure: the runtime feeds [`Input`]s (frontend state
//! changes read from `<frontend>/state`, the backend's `online` node, the
//! device appearing or disappearing) and carries out the returned
//! [`Action`]s in order.
//!
//! ## Target state for each frontend state
//!
//! | frontend state        | backend target | extra                                   |
//! |-----------------------|----------------|-----------------------------------------|
//! | Initialising          | InitWait       |                                         |
//! | Initialised           | — / Connected  | `Connected` only with [`ConnectPolicy::OnInitialised`] (blkback) |
//! | Connected             | Connected      |                                         |
//! | Closing               | Closing        |                                         |
//! | Closed                | Closed         | then `Unregister` if `online` is 0      |
//! | Unknown (node gone)   | Closed         | then `Unregister`                       |
//! | Reconfiguring/-ed     | —              | ignored                                 |
//! | InitWait (invalid)    | Closing        | Linux: `xenbus_dev_fatal`               |
//!
//! ## Walk from the current backend state towards the target
//!
//! | backend state | target                     | actions (next state)                         |
//! |---------------|----------------------------|----------------------------------------------|
//! | Initialising  | InitWait/Connected/Closing | `SetState(InitWait)`                          |
//! | Initialising  | Closed                     | `SetState(Closed)`                            |
//! | InitWait      | Connected                  | `Connect`, `SetState(Connected)`              |
//! | InitWait      | Closing/Closed             | `SetState(Closing)`                           |
//! | Connected     | InitWait/Closing/Closed    | `Disconnect`, `SetState(Closing)`             |
//! | Closing       | InitWait/Connected/Closed  | `SetState(Closed)`                            |
//! | Closed        | InitWait/Connected         | `SetState(InitWait)`                          |
//! | Closed        | Closing                    | `SetState(Closing)`                           |
//!
//! Steps repeat until the target is reached, so for example a frontend
//! that restarts while connected (Connected → Initialising) yields
//! `Disconnect, SetState(Closing), SetState(Closed), SetState(InitWait)`,
//! and the usual reconnect after a clean close (frontend Closed →
//! Initialising) yields `SetState(InitWait)`.
//!
//! ## Other inputs
//!
//! | input                | actions                                                      |
//! |----------------------|--------------------------------------------------------------|
//! | `DeviceAppeared`     | `SetState(InitWait)` (probe); ignored if already present     |
//! | `DeviceRemoved`      | `Disconnect` if connected, then `Unregister`                 |
//! | `Online(false)`      | `Unregister` if frontend and backend are both Closed          |
//! | `Online(true)`       | none (recorded)                                              |
//! | `ConnectFailed`      | `Disconnect`, `SetState(Closing)` (Linux `xenbus_dev_fatal`) |
//!
//! `Connect` and `Disconnect` always alternate: `Disconnect` is emitted
//! only while connected. `Unregister` means the device is finished: the
//! runtime releases everything it holds for it (the toolstack removes the
//! xenstore directories); inputs other than `DeviceAppeared` are then
//! ignored. If carrying out `Connect` fails, the runtime skips the rest of
//! the actions of that step and feeds [`Input::ConnectFailed`].
//!
//! Differences from Linux: blkback disconnects only when the frontend
//! reaches Closed; here both policies disconnect on the way to Closing (as
//! netback does). Linux does not watch `online`; reacting to it when both
//! ends are already Closed lets a backend finish without waiting for the
//! toolstack to delete the directory.

use core::fmt;

/// A XenBus device state (`enum xenbus_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum XenbusState {
    /// 0: unknown, or the node is missing.
    Unknown = 0,
    /// 1: initialising.
    Initialising = 1,
    /// 2: waiting for information from the peer (backend only).
    InitWait = 2,
    /// 3: initialised, waiting for a connection from the peer.
    Initialised = 3,
    /// 4: connected.
    Connected = 4,
    /// 5: being torn down.
    Closing = 5,
    /// 6: closed.
    Closed = 6,
    /// 7: reconfiguring.
    Reconfiguring = 7,
    /// 8: reconfigured.
    Reconfigured = 8,
}

/// A state string that is not exactly one digit `0`–`8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseStateError;

impl fmt::Display for ParseStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid xenbus state")
    }
}

impl core::error::Error for ParseStateError {}

impl XenbusState {
    /// All states in numeric order.
    pub const ALL: [XenbusState; 9] = [
        XenbusState::Unknown,
        XenbusState::Initialising,
        XenbusState::InitWait,
        XenbusState::Initialised,
        XenbusState::Connected,
        XenbusState::Closing,
        XenbusState::Closed,
        XenbusState::Reconfiguring,
        XenbusState::Reconfigured,
    ];

    /// Decodes a numeric value.
    pub const fn from_u32(v: u32) -> Option<XenbusState> {
        if v < 9 {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }

    /// Parses the xenstore value (raw bytes, no terminator): exactly one
    /// ASCII digit `0`–`8`.
    pub fn parse(s: &[u8]) -> Result<XenbusState, ParseStateError> {
        match s {
            [d @ b'0'..=b'8'] => Ok(Self::ALL[usize::from(d - b'0')]),
            _ => Err(ParseStateError),
        }
    }

    /// The xenstore value, e.g. `"4"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            XenbusState::Unknown => "0",
            XenbusState::Initialising => "1",
            XenbusState::InitWait => "2",
            XenbusState::Initialised => "3",
            XenbusState::Connected => "4",
            XenbusState::Closing => "5",
            XenbusState::Closed => "6",
            XenbusState::Reconfiguring => "7",
            XenbusState::Reconfigured => "8",
        }
    }

    /// A human-readable name, e.g. `"Connected"`.
    pub const fn name(self) -> &'static str {
        match self {
            XenbusState::Unknown => "Unknown",
            XenbusState::Initialising => "Initialising",
            XenbusState::InitWait => "InitWait",
            XenbusState::Initialised => "Initialised",
            XenbusState::Connected => "Connected",
            XenbusState::Closing => "Closing",
            XenbusState::Closed => "Closed",
            XenbusState::Reconfiguring => "Reconfiguring",
            XenbusState::Reconfigured => "Reconfigured",
        }
    }
}

impl fmt::Display for XenbusState {
    /// Writes the xenstore value (the decimal number).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for XenbusState {
    type Err = ParseStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XenbusState::parse(s.as_bytes())
    }
}

/// When the backend connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectPolicy {
    /// When the frontend reaches Connected (netback).
    OnConnected,
    /// When the frontend reaches Initialised or Connected (blkback).
    OnInitialised,
}

/// An input to [`BackendMachine::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The backend device directory appeared (probe).
    DeviceAppeared,
    /// The backend device directory disappeared.
    DeviceRemoved,
    /// The frontend's `state` node changed (feed `Unknown` if it is
    /// missing or unparsable, as Linux's `xenbus_read_driver_state` does).
    FrontendState(XenbusState),
    /// The backend's `online` node changed (missing counts as `false`).
    Online(bool),
    /// Carrying out [`Action::Connect`] failed.
    ConnectFailed,
}

/// An action for the runtime, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write this state to `<backend>/state`.
    SetState(XenbusState),
    /// Read the frontend's ring details, map rings, bind event channels,
    /// start serving.
    Connect,
    /// Stop serving, unmap rings, unbind event channels.
    Disconnect,
    /// The device is finished: release it (Linux `device_unregister`).
    Unregister,
}

/// Actions returned by one input; at most six are ever produced.
pub type Actions = heapless::Vec<Action, 8>;

/// The pure backend state machine (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendMachine {
    policy: ConnectPolicy,
    present: bool,
    state: XenbusState,
    frontend: XenbusState,
    online: bool,
    connected: bool,
}

impl BackendMachine {
    /// A machine for a device that has not appeared yet. `online` starts
    /// true (the toolstack creates devices online).
    pub const fn new(policy: ConnectPolicy) -> Self {
        BackendMachine {
            policy,
            present: false,
            state: XenbusState::Initialising,
            frontend: XenbusState::Unknown,
            online: true,
            connected: false,
        }
    }

    /// The backend state last requested by [`Action::SetState`].
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// The last frontend state seen.
    pub fn frontend_state(&self) -> XenbusState {
        self.frontend
    }

    /// Whether the device is connected (after `Connect`, before
    /// `Disconnect`).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether the device exists (appeared and not unregistered).
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Whether the toolstack wants the device online.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Processes one input and returns the actions to carry out.
    pub fn handle(&mut self, input: Input) -> Actions {
        let mut out = Actions::new();
        match input {
            Input::DeviceAppeared => {
                if !self.present {
                    *self = BackendMachine {
                        present: true,
                        online: self.online,
                        ..BackendMachine::new(self.policy)
                    };
                    self.set(&mut out, XenbusState::InitWait);
                }
            }
            _ if !self.present => {}
            Input::DeviceRemoved => {
                self.disconnect(&mut out);
                self.unregister(&mut out);
            }
            Input::Online(online) => {
                self.online = online;
                if !online
                    && self.state == XenbusState::Closed
                    && matches!(self.frontend, XenbusState::Closed | XenbusState::Unknown)
                {
                    self.unregister(&mut out);
                }
            }
            Input::ConnectFailed => {
                self.disconnect(&mut out);
                self.set(&mut out, XenbusState::Closing);
            }
            Input::FrontendState(fe) => {
                self.frontend = fe;
                match fe {
                    XenbusState::Initialising => self.walk(&mut out, XenbusState::InitWait),
                    XenbusState::Initialised => {
                        if self.policy == ConnectPolicy::OnInitialised {
                            self.walk(&mut out, XenbusState::Connected);
                        }
                    }
                    XenbusState::Connected => self.walk(&mut out, XenbusState::Connected),
                    XenbusState::Closing => self.walk(&mut out, XenbusState::Closing),
                    XenbusState::Closed => {
                        self.walk(&mut out, XenbusState::Closed);
                        if !self.online {
                            self.unregister(&mut out);
                        }
                    }
                    XenbusState::Unknown => {
                        self.walk(&mut out, XenbusState::Closed);
                        self.unregister(&mut out);
                    }
                    XenbusState::Reconfiguring | XenbusState::Reconfigured => {}
                    // Not a frontend state: Linux reports it with
                    // `xenbus_dev_fatal`, which moves the backend to Closing.
                    XenbusState::InitWait => self.walk(&mut out, XenbusState::Closing),
                }
            }
        }
        out
    }

    fn push(out: &mut Actions, a: Action) {
        // Capacity exceeds the longest sequence (see `walk`); never fails.
        let _ = out.push(a);
    }

    fn set(&mut self, out: &mut Actions, s: XenbusState) {
        self.state = s;
        Self::push(out, Action::SetState(s));
    }

    fn disconnect(&mut self, out: &mut Actions) {
        if self.connected {
            self.connected = false;
            Self::push(out, Action::Disconnect);
        }
    }

    fn unregister(&mut self, out: &mut Actions) {
        self.present = false;
        Self::push(out, Action::Unregister);
    }

    /// Shortest path from the current state to `target` (netback's
    /// `set_backend_state`). At most four steps.
    fn walk(&mut self, out: &mut Actions, target: XenbusState) {
        use XenbusState::*;
        for _ in 0..5 {
            if self.state == target {
                return;
            }
            match (self.state, target) {
                (Initialising, InitWait | Connected | Closing) => self.set(out, InitWait),
                (Initialising, Closed) => self.set(out, Closed),
                (InitWait, Connected) => {
                    self.connected = true;
                    Self::push(out, Action::Connect);
                    self.set(out, Connected);
                }
                (InitWait, Closing | Closed) => self.set(out, Closing),
                (Connected, InitWait | Closing | Closed) => {
                    self.disconnect(out);
                    self.set(out, Closing);
                }
                (Closing, InitWait | Connected | Closed) => self.set(out, Closed),
                (Closed, InitWait | Connected) => self.set(out, InitWait),
                (Closed, Closing) => self.set(out, Closing),
                // Targets are only InitWait/Connected/Closing/Closed and
                // the state only ever takes those values or Initialising.
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use XenbusState::*;

    fn acts(a: &[Action]) -> Actions {
        Actions::from_slice(a).unwrap()
    }

    #[test]
    fn parse_and_display() {
        for s in XenbusState::ALL {
            assert_eq!(XenbusState::parse(s.as_str().as_bytes()), Ok(s));
            assert_eq!(std::format!("{s}"), s.as_str());
            assert_eq!(XenbusState::from_u32(s as u32), Some(s));
            assert!(!s.name().is_empty());
        }
        for bad in [
            &b""[..],
            b"9",
            b"04",
            b"4\0",
            b" 4",
            b"4 ",
            b"-1",
            b"x",
            b"10",
        ] {
            assert_eq!(XenbusState::parse(bad), Err(ParseStateError));
        }
        assert_eq!(XenbusState::from_u32(9), None);
        assert_eq!("5".parse::<XenbusState>(), Ok(Closing));
    }

    fn machine_at(policy: ConnectPolicy, state: XenbusState, connected: bool) -> BackendMachine {
        BackendMachine {
            policy,
            present: true,
            state,
            frontend: Unknown,
            online: true,
            connected,
        }
    }

    #[test]
    fn walk_table() {
        // (from, target frontend input, expected actions, final state)
        let cases: &[(XenbusState, XenbusState, &[Action], XenbusState)] = &[
            (Initialising, Initialising, &[SetState(InitWait)], InitWait),
            (
                Initialising,
                Connected,
                &[SetState(InitWait), Connect, SetState(Connected)],
                Connected,
            ),
            (
                Initialising,
                Closing,
                &[SetState(InitWait), SetState(Closing)],
                Closing,
            ),
            (Initialising, Closed, &[SetState(Closed)], Closed),
            (InitWait, Initialising, &[], InitWait),
            (
                InitWait,
                Connected,
                &[Connect, SetState(Connected)],
                Connected,
            ),
            (InitWait, Closing, &[SetState(Closing)], Closing),
            (
                InitWait,
                Closed,
                &[SetState(Closing), SetState(Closed)],
                Closed,
            ),
            (
                Connected,
                Initialising,
                &[
                    Disconnect,
                    SetState(Closing),
                    SetState(Closed),
                    SetState(InitWait),
                ],
                InitWait,
            ),
            (Connected, Connected, &[], Connected),
            (
                Connected,
                Closing,
                &[Disconnect, SetState(Closing)],
                Closing,
            ),
            (
                Connected,
                Closed,
                &[Disconnect, SetState(Closing), SetState(Closed)],
                Closed,
            ),
            (
                Closing,
                Initialising,
                &[SetState(Closed), SetState(InitWait)],
                InitWait,
            ),
            (
                Closing,
                Connected,
                &[
                    SetState(Closed),
                    SetState(InitWait),
                    Connect,
                    SetState(Connected),
                ],
                Connected,
            ),
            (Closing, Closing, &[], Closing),
            (Closing, Closed, &[SetState(Closed)], Closed),
            (Closed, Initialising, &[SetState(InitWait)], InitWait),
            (
                Closed,
                Connected,
                &[SetState(InitWait), Connect, SetState(Connected)],
                Connected,
            ),
            (Closed, Closing, &[SetState(Closing)], Closing),
            (Closed, Closed, &[], Closed),
        ];
        for &(from, fe, expect, end) in cases {
            let mut m = machine_at(ConnectPolicy::OnConnected, from, from == Connected);
            let got = m.handle(Input::FrontendState(fe));
            assert_eq!(got, acts(expect), "from {from:?} on frontend {fe:?}");
            assert_eq!(m.state(), end, "from {from:?} on frontend {fe:?}");
            assert_eq!(m.is_connected(), end == Connected);
            assert!(m.is_present());
        }
    }

    #[test]
    fn initialised_policy() {
        let mut net = machine_at(ConnectPolicy::OnConnected, InitWait, false);
        assert_eq!(net.handle(Input::FrontendState(Initialised)), acts(&[]));
        assert_eq!(net.state(), InitWait);
        let mut blk = machine_at(ConnectPolicy::OnInitialised, InitWait, false);
        assert_eq!(
            blk.handle(Input::FrontendState(Initialised)),
            acts(&[Connect, SetState(Connected)])
        );
        // The frontend then reports Connected: nothing more to do.
        assert_eq!(blk.handle(Input::FrontendState(Connected)), acts(&[]));
    }

    #[test]
    fn full_lifecycle_with_reconnect() {
        let mut m = BackendMachine::new(ConnectPolicy::OnConnected);
        // Inputs before the device appears are ignored.
        assert_eq!(m.handle(Input::FrontendState(Connected)), acts(&[]));
        assert_eq!(m.handle(Input::DeviceAppeared), acts(&[SetState(InitWait)]));
        assert_eq!(m.handle(Input::DeviceAppeared), acts(&[]));
        assert_eq!(m.handle(Input::FrontendState(Initialising)), acts(&[]));
        assert_eq!(m.handle(Input::FrontendState(Initialised)), acts(&[]));
        assert_eq!(
            m.handle(Input::FrontendState(Connected)),
            acts(&[Connect, SetState(Connected)])
        );
        // Frontend closes cleanly, stays online.
        assert_eq!(
            m.handle(Input::FrontendState(Closing)),
            acts(&[Disconnect, SetState(Closing)])
        );
        assert_eq!(
            m.handle(Input::FrontendState(Closed)),
            acts(&[SetState(Closed)])
        );
        // Reconnect.
        assert_eq!(
            m.handle(Input::FrontendState(Initialising)),
            acts(&[SetState(InitWait)])
        );
        assert_eq!(
            m.handle(Input::FrontendState(Connected)),
            acts(&[Connect, SetState(Connected)])
        );
        // Ignored states.
        assert_eq!(m.handle(Input::FrontendState(Reconfiguring)), acts(&[]));
        assert_eq!(m.handle(Input::FrontendState(Reconfigured)), acts(&[]));
        // Toolstack removal: online=0, then the frontend closes.
        assert_eq!(m.handle(Input::Online(false)), acts(&[]));
        assert_eq!(
            m.handle(Input::FrontendState(Closing)),
            acts(&[Disconnect, SetState(Closing)])
        );
        assert_eq!(
            m.handle(Input::FrontendState(Closed)),
            acts(&[SetState(Closed), Unregister])
        );
        assert!(!m.is_present());
        assert_eq!(m.handle(Input::FrontendState(Initialising)), acts(&[]));
        // The device can be recreated.
        assert_eq!(m.handle(Input::DeviceAppeared), acts(&[SetState(InitWait)]));
    }

    #[test]
    fn online_drop_after_close() {
        let mut m = machine_at(ConnectPolicy::OnConnected, Connected, true);
        m.handle(Input::FrontendState(Closed));
        assert_eq!(m.state(), Closed);
        assert_eq!(m.handle(Input::Online(true)), acts(&[]));
        assert_eq!(m.handle(Input::Online(false)), acts(&[Unregister]));
        // Online drop while not closed does nothing.
        let mut m = machine_at(ConnectPolicy::OnConnected, Connected, true);
        assert_eq!(m.handle(Input::Online(false)), acts(&[]));
        assert!(!m.is_online());
    }

    #[test]
    fn frontend_vanishes() {
        let mut m = machine_at(ConnectPolicy::OnConnected, Connected, true);
        assert_eq!(
            m.handle(Input::FrontendState(Unknown)),
            acts(&[Disconnect, SetState(Closing), SetState(Closed), Unregister])
        );
        let mut m = machine_at(ConnectPolicy::OnConnected, InitWait, false);
        assert_eq!(
            m.handle(Input::FrontendState(Unknown)),
            acts(&[SetState(Closing), SetState(Closed), Unregister])
        );
    }

    #[test]
    fn device_removed() {
        let mut m = machine_at(ConnectPolicy::OnConnected, Connected, true);
        assert_eq!(
            m.handle(Input::DeviceRemoved),
            acts(&[Disconnect, Unregister])
        );
        assert_eq!(m.handle(Input::DeviceRemoved), acts(&[]));
        let mut m = machine_at(ConnectPolicy::OnConnected, InitWait, false);
        assert_eq!(m.handle(Input::DeviceRemoved), acts(&[Unregister]));
    }

    #[test]
    fn connect_failed() {
        let mut m = machine_at(ConnectPolicy::OnConnected, InitWait, false);
        m.handle(Input::FrontendState(Connected));
        assert_eq!(
            m.handle(Input::ConnectFailed),
            acts(&[Disconnect, SetState(Closing)])
        );
        assert_eq!(m.state(), Closing);
        // Repeated Connected from the frontend does not reconnect blindly:
        // it walks Closing -> Closed -> InitWait -> Connected.
        assert_eq!(
            m.handle(Input::FrontendState(Connected)),
            acts(&[
                SetState(Closed),
                SetState(InitWait),
                Connect,
                SetState(Connected)
            ])
        );
    }

    #[test]
    fn connect_disconnect_alternate() {
        // Every input sequence keeps Connect/Disconnect balanced and never
        // overflows the action buffer.
        let inputs = [
            Input::DeviceAppeared,
            Input::DeviceRemoved,
            Input::Online(true),
            Input::Online(false),
            Input::ConnectFailed,
        ];
        let mut all: std::vec::Vec<Input> = inputs.to_vec();
        all.extend(XenbusState::ALL.iter().map(|&s| Input::FrontendState(s)));
        for policy in [ConnectPolicy::OnConnected, ConnectPolicy::OnInitialised] {
            // All sequences of length 4.
            let n = all.len();
            for code in 0..n.pow(4) {
                let mut m = BackendMachine::new(policy);
                let mut connected = false;
                let mut c = code;
                for _ in 0..4 {
                    let input = all[c % n];
                    c /= n;
                    for a in m.handle(input) {
                        match a {
                            Connect => {
                                assert!(!connected);
                                connected = true;
                            }
                            Disconnect => {
                                assert!(connected);
                                connected = false;
                            }
                            Unregister => assert!(!connected),
                            SetState(_) => {}
                        }
                    }
                    assert_eq!(m.is_connected(), connected);
                }
            }
        }
    }
}
