//! The forwarding logic of a learning Ethernet switch between netback
//! vifs: a bounded MAC table and the forwarding decision for one frame.
//!
//! Rules (IEEE 802.1D transparent bridging, without spanning tree):
//!
//! * The source address of every frame is learned on its ingress port,
//!   unless it is a group (multicast or broadcast) address or all zeros. A
//!   station seen on another port moves there.
//! * A frame to a group address, or to an address not in the table, is
//!   flooded to every port but the ingress port. A frame to an address
//!   learned on its own ingress port is filtered (dropped).
//! * The table holds at most [`TABLE_SIZE`] entries. An entry not refreshed
//!   for [`AGE_MS`] is ignored and reused; when every entry is live, the
//!   least recently seen one is replaced (a guest that floods the table
//!   with forged sources only turns unicast into flooding).
//!
//! Time is passed in (milliseconds from any fixed origin), so everything
//! here is deterministic and host-tested. Ports are opaque numbers chosen
//! by the caller; a port that goes away is removed with
//! [`MacTable::forget_port`].

/// An Ethernet (MAC) address.
pub type Mac = [u8; 6];
/// A switch port, as numbered by the caller.
pub type PortId = u32;

/// Entries of the MAC table.
pub const TABLE_SIZE: usize = 256;
/// How long a learned entry lives without being refreshed (802.1D's
/// default ageing time, 300 s).
pub const AGE_MS: u64 = 300_000;
/// Bytes of an Ethernet header (destination, source, ethertype).
pub const HEADER_LEN: usize = 14;

/// Whether `mac` is a group (multicast or broadcast) address.
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// The Ethernet header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Destination address.
    pub dst: Mac,
    /// Source address.
    pub src: Mac,
    /// Ethertype (or 802.3 length) in host order.
    pub ethertype: u16,
}

impl Header {
    /// The header of `frame`, or `None` if it is shorter than
    /// [`HEADER_LEN`].
    pub fn parse(frame: &[u8]) -> Option<Header> {
        let h = frame.get(..HEADER_LEN)?;
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&h[..6]);
        src.copy_from_slice(&h[6..12]);
        Some(Header {
            dst,
            src,
            ethertype: u16::from_be_bytes([h[12], h[13]]),
        })
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Send it to this port only.
    Unicast(PortId),
    /// Send it to every port but the ingress port.
    Flood,
    /// Drop it.
    Drop(DropReason),
}

/// Why the switch drops a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    Runt,
    /// The destination was learned on the ingress port.
    Filtered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    mac: Mac,
    port: PortId,
    seen_ms: u64,
}

/// The learned `address -> port` table.
#[derive(Debug, Clone)]
pub struct MacTable {
    entries: [Option<Entry>; TABLE_SIZE],
}

impl Default for MacTable {
    fn default() -> Self {
        Self::new()
    }
}

impl MacTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: [None; TABLE_SIZE],
        }
    }

    fn live(e: &Entry, now_ms: u64) -> bool {
        now_ms.saturating_sub(e.seen_ms) < AGE_MS
    }

    /// Live entries.
    pub fn len(&self, now_ms: u64) -> usize {
        self.entries
            .iter()
            .flatten()
            .filter(|e| Self::live(e, now_ms))
            .count()
    }

    /// Whether no entry is live.
    pub fn is_empty(&self, now_ms: u64) -> bool {
        self.len(now_ms) == 0
    }

    /// The port `mac` was last seen on, if that is less than [`AGE_MS`]
    /// ago.
    pub fn lookup(&self, mac: &Mac, now_ms: u64) -> Option<PortId> {
        self.entries
            .iter()
            .flatten()
            .find(|e| e.mac == *mac && Self::live(e, now_ms))
            .map(|e| e.port)
    }

    /// Records that `mac` sent from `port`. Group and all-zero addresses
    /// are not learned.
    pub fn learn(&mut self, mac: &Mac, port: PortId, now_ms: u64) {
        if is_group(mac) || *mac == [0; 6] {
            return;
        }
        // The entry for this address, else a free or aged one, else the
        // least recently seen.
        let mut free: Option<usize> = None;
        let mut oldest: Option<(usize, u64)> = None;
        for (i, slot) in self.entries.iter_mut().enumerate() {
            match slot {
                Some(e) if e.mac == *mac => {
                    e.port = port;
                    e.seen_ms = now_ms;
                    return;
                }
                Some(e) if Self::live(e, now_ms) => {
                    if oldest.is_none_or(|(_, t)| e.seen_ms < t) {
                        oldest = Some((i, e.seen_ms));
                    }
                }
                _ => {
                    free.get_or_insert(i);
                }
            }
        }
        if let Some(slot) = free
            .or(oldest.map(|(i, _)| i))
            .and_then(|i| self.entries.get_mut(i))
        {
            *slot = Some(Entry {
                mac: *mac,
                port,
                seen_ms: now_ms,
            });
        }
    }

    /// Forgets every address learned on `port` (it was disconnected).
    pub fn forget_port(&mut self, port: PortId) {
        for slot in self.entries.iter_mut() {
            if slot.is_some_and(|e| e.port == port) {
                *slot = None;
            }
        }
    }

    /// Learns the source of `frame`, which arrived on `ingress`, and
    /// decides where it goes.
    pub fn forward(&mut self, frame: &[u8], ingress: PortId, now_ms: u64) -> Forward {
        let Some(h) = Header::parse(frame) else {
            return Forward::Drop(DropReason::Runt);
        };
        self.learn(&h.src, ingress, now_ms);
        if is_group(&h.dst) {
            return Forward::Flood;
        }
        match self.lookup(&h.dst, now_ms) {
            Some(p) if p == ingress => Forward::Drop(DropReason::Filtered),
            Some(p) => Forward::Unicast(p),
            None => Forward::Flood,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        [0x00, 0x16, b[0], b[1], b[2], b[3]]
    }

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0u8; 46]);
        f
    }

    const BCAST: Mac = [0xff; 6];

    #[test]
    fn header() {
        let f = frame(mac(1), mac(2));
        let h = Header::parse(&f).unwrap();
        assert_eq!((h.dst, h.src, h.ethertype), (mac(1), mac(2), 0x0800));
        assert_eq!(Header::parse(&f[..13]), None);
    }

    #[test]
    fn learns_then_unicasts() {
        let mut t = MacTable::new();
        // Unknown destination: flood; the source is learned.
        assert_eq!(t.forward(&frame(mac(2), mac(1)), 10, 0), Forward::Flood);
        assert_eq!(t.lookup(&mac(1), 0), Some(10));
        // The reply is unicast back; now both are known.
        assert_eq!(
            t.forward(&frame(mac(1), mac(2)), 20, 1),
            Forward::Unicast(10)
        );
        assert_eq!(
            t.forward(&frame(mac(2), mac(1)), 10, 2),
            Forward::Unicast(20)
        );
        assert_eq!(t.len(2), 2);
    }

    #[test]
    fn group_and_runt() {
        let mut t = MacTable::new();
        t.learn(&mac(2), 20, 0);
        assert_eq!(t.forward(&frame(BCAST, mac(1)), 10, 0), Forward::Flood);
        let mcast = [0x01, 0x00, 0x5e, 0, 0, 1];
        assert_eq!(t.forward(&frame(mcast, mac(1)), 10, 0), Forward::Flood);
        assert_eq!(
            t.forward(&[0u8; 13], 10, 0),
            Forward::Drop(DropReason::Runt)
        );
        // Group and zero sources are never learned.
        t.forward(&frame(mac(2), mcast), 10, 0);
        t.forward(&frame(mac(2), [0; 6]), 10, 0);
        assert_eq!(t.lookup(&mcast, 0), None);
        assert_eq!(t.lookup(&[0; 6], 0), None);
    }

    #[test]
    fn filtered_on_ingress_port() {
        let mut t = MacTable::new();
        t.learn(&mac(2), 10, 0);
        assert_eq!(
            t.forward(&frame(mac(2), mac(1)), 10, 0),
            Forward::Drop(DropReason::Filtered)
        );
    }

    #[test]
    fn station_moves() {
        let mut t = MacTable::new();
        t.learn(&mac(1), 10, 0);
        t.learn(&mac(1), 20, 5);
        assert_eq!(t.lookup(&mac(1), 5), Some(20));
        assert_eq!(t.len(5), 1);
    }

    #[test]
    fn ageing() {
        let mut t = MacTable::new();
        t.learn(&mac(1), 10, 1000);
        assert_eq!(t.lookup(&mac(1), 1000 + AGE_MS - 1), Some(10));
        assert_eq!(t.lookup(&mac(1), 1000 + AGE_MS), None);
        assert_eq!(
            t.forward(&frame(mac(1), mac(2)), 20, 1000 + AGE_MS),
            Forward::Flood
        );
    }

    #[test]
    fn forget_port() {
        let mut t = MacTable::new();
        t.learn(&mac(1), 10, 0);
        t.learn(&mac(2), 20, 0);
        t.forget_port(10);
        assert_eq!(t.lookup(&mac(1), 0), None);
        assert_eq!(t.lookup(&mac(2), 0), Some(20));
    }

    #[test]
    fn full_table_replaces_least_recent() {
        let mut t = MacTable::new();
        for i in 0..TABLE_SIZE as u32 {
            t.learn(&mac(i), 1, u64::from(i));
        }
        assert_eq!(t.len(1000), TABLE_SIZE);
        // Refresh entry 0, so entry 1 is now the least recently seen.
        t.learn(&mac(0), 1, 2000);
        t.learn(&mac(9999), 2, 2001);
        assert_eq!(t.len(2001), TABLE_SIZE);
        assert_eq!(t.lookup(&mac(9999), 2001), Some(2));
        assert_eq!(t.lookup(&mac(0), 2001), Some(1));
        assert_eq!(t.lookup(&mac(1), 2001), None);
        assert_eq!(t.lookup(&mac(2), 2001), Some(1));
    }

    proptest! {
        /// Whatever the sequence of frames, the table stays bounded, each
        /// address has at most one entry, and a frame never goes back to
        /// its ingress port.
        #[test]
        fn invariants(ops in proptest::collection::vec(
            (0u32..400, 0u32..400, 0u32..4, 0u64..1000), 0..600)
        ) {
            let mut t = MacTable::new();
            let mut now = 0u64;
            for (src, dst, port, dt) in ops {
                now += dt * 1000;
                let dst = if dst == 0 { BCAST } else { mac(dst) };
                match t.forward(&frame(dst, mac(src)), port, now) {
                    Forward::Unicast(p) => prop_assert_ne!(p, port),
                    Forward::Flood | Forward::Drop(DropReason::Filtered) => {}
                    Forward::Drop(DropReason::Runt) => prop_assert!(false),
                }
                prop_assert_eq!(t.lookup(&mac(src), now), Some(port));
                prop_assert!(t.len(now) <= TABLE_SIZE);
                let macs: Vec<Mac> = t.entries.iter().flatten().map(|e| e.mac).collect();
                for (i, m) in macs.iter().enumerate() {
                    prop_assert!(!macs[i + 1..].contains(m));
                }
            }
        }
    }
}
