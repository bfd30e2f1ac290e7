//! The management host on the switch: a port of its own with an IPv4
//! address (boot argument `mgmt=<a.b.c.d>/<prefix>`), run by smoltcp. It
//! answers ARP and ping, and serves the switch's counters over TCP: a
//! connection to port [`COUNTERS_PORT`] gets one text line per connected
//! vif (`vif <dom>/<dev> rx <pkts> <bytes> <errors> <drops> tx ...`), a
//! `frontends <n>` line and the management port's own `mgmt rx ... tx
//! ...` line, then the connection is closed.
//!
//! Design: frames reach it only through the switch (it learns the port
//! like any station); its queues are bounded ([`QUEUE_FRAMES`]) and what
//! does not fit is dropped and counted. A frame it cannot parse is
//! smoltcp's problem to drop; nothing here panics on peer input (the
//! address comes from the host administrator's boot argument and is
//! checked before smoltcp sees it).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

/// The TCP port that answers with the counters.
pub const COUNTERS_PORT: u16 = 7777;
/// Frames each way that wait at most.
const QUEUE_FRAMES: usize = 32;
/// The smallest Ethernet frame without its FCS.
const MIN_FRAME: usize = 60;
/// The largest frame (Ethernet header + 1500).
const MTU: usize = 1514;

/// Parses `a.b.c.d/prefix` (prefix 1..=32, a unicast host address).
pub fn parse_address(arg: &str) -> Option<([u8; 4], u8)> {
    let (ip, prefix) = arg.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    let mut octets = [0u8; 4];
    let mut parts = ip.split('.');
    for o in octets.iter_mut() {
        *o = parts.next()?.parse().ok()?;
    }
    let usable = parts.next().is_none()
        && (1..=32).contains(&prefix)
        && octets[0] != 0
        && octets[0] < 224
        && octets != [255; 4];
    usable.then_some((octets, prefix))
}

/// The switch side of the management port: frames in and out.
#[derive(Default)]
struct Port {
    inbox: VecDeque<Vec<u8>>,
    outbox: VecDeque<Vec<u8>>,
    dropped: u64,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Port);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len.min(MTU)];
        let r = f(&mut frame);
        // Pad to Ethernet's minimum frame (without FCS), as a NIC would.
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        if self.0.outbox.len() < QUEUE_FRAMES {
            self.0.outbox.push_back(frame);
        } else {
            self.0.dropped += 1;
        }
        r
    }
}

impl Device for Port {
    type RxToken<'a>
        = Rx
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.inbox.pop_front()?;
        Some((Rx(frame), Tx(self)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        // Guests send TCP with the checksum left to the "hardware"
        // (netif's csum_blank): the switch passes such frames on as they
        // are, as Linux's bridge does, so the stack must not check TCP
        // checksums on receive. It fills in every checksum it sends.
        caps.checksum.tcp = Checksum::Tx;
        caps
    }
}

/// The management host.
pub struct Mgmt {
    pub mac: [u8; 6],
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    tcp: SocketHandle,
    /// The counters went out on the current connection.
    answered: bool,
    /// Frames the switch gave it and frames it sent.
    pub rx_frames: u64,
    pub tx_frames: u64,
}

impl Mgmt {
    /// A host with `mac` (unicast) at `ip/prefix` (from [`parse_address`]).
    pub fn new(mac: [u8; 6], (ip, prefix): ([u8; 4], u8), now_ms: u64) -> Mgmt {
        let mut port = Port::default();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // TCP's initial sequence numbers; not a secret here.
        config.random_seed = now_ms ^ 0x006e_6574_2d64_6f6d;
        let mut iface = Interface::new(config, &mut port, Instant::from_millis(now_ms as i64));
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(
                Ipv4Address::new(ip[0], ip[1], ip[2], ip[3]).into(),
                prefix,
            ));
        });
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; 1024]),
            tcp::SocketBuffer::new(vec![0u8; 8 * 1024]),
        );
        let mut sockets = SocketSet::new(Vec::new());
        let tcp = sockets.add(socket);
        Mgmt {
            mac,
            port,
            iface,
            sockets,
            tcp,
            answered: false,
            rx_frames: 0,
            tx_frames: 0,
        }
    }

    /// A frame from the switch (for our MAC or a group address).
    pub fn receive(&mut self, frame: &[u8]) {
        if self.port.inbox.len() < QUEUE_FRAMES && frame.len() <= MTU {
            self.rx_frames += 1;
            self.port.inbox.push_back(frame.to_vec());
        } else {
            self.port.dropped += 1;
        }
    }

    /// Runs the stack: handles what arrived, listens for the next
    /// counters connection and answers one with `counters()` (called only
    /// then).
    pub fn poll(&mut self, now_ms: u64, counters: impl FnOnce() -> String) {
        let now = Instant::from_millis(now_ms as i64);
        self.iface.poll(now, &mut self.port, &mut self.sockets);
        let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp);
        if !socket.is_open() {
            self.answered = false;
            let _ = socket.listen(COUNTERS_PORT);
        }
        if socket.may_send() && !self.answered {
            let mut text = counters();
            let _ = writeln!(
                text,
                "mgmt rx {} tx {} dropped {}",
                self.rx_frames, self.tx_frames, self.port.dropped
            );
            let _ = socket.send_slice(text.as_bytes());
            socket.close();
            self.answered = true;
            self.iface.poll(now, &mut self.port, &mut self.sockets);
        }
    }

    /// The next frame it sends, if any.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        let frame = self.port.outbox.pop_front()?;
        self.tx_frames += 1;
        Some(frame)
    }
}
