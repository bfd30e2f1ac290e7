//! Typed identifiers used by the hypercall functions.

use crate::abi;
use core::fmt;

/// log2 of the Xen page size: Xen's ABI frame numbers always count 4 KiB
/// pages, whatever the guest's own translation granule.
pub const PAGE_SHIFT: u32 = 12;
/// The Xen page size (4 KiB).
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// A domain id (`domid_t`, `xen/include/public/xen.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct DomId(pub u16);

impl DomId {
    /// `DOMID_SELF` (0x7FF0): the calling domain.
    pub const SELF: DomId = DomId(abi::DOMID_SELF);
    /// Domain 0, the initial (usually control/hardware) domain.
    pub const DOM0: DomId = DomId(0);
    /// `DOMID_IO` (0x7FF1).
    pub const IO: DomId = DomId(abi::DOMID_IO);
    /// `DOMID_XEN` (0x7FF2).
    pub const XEN: DomId = DomId(abi::DOMID_XEN);
    /// `DOMID_INVALID` (0x7FF4).
    pub const INVALID: DomId = DomId(abi::DOMID_INVALID);

    /// Whether this id names an ordinary domain (below
    /// `DOMID_FIRST_RESERVED`) rather than a special value such as
    /// [`DomId::SELF`].
    pub const fn is_ordinary(self) -> bool {
        self.0 < abi::DOMID_FIRST_RESERVED
    }
}

impl fmt::Display for DomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DomId::SELF => f.write_str("DOMID_SELF"),
            DomId(d) => write!(f, "{d}"),
        }
    }
}

/// An event channel port (`evtchn_port_t`, `event_channel.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct EvtchnPort(pub u32);

impl fmt::Display for EvtchnPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A grant reference: an index into a domain's grant table (`grant_ref_t`,
/// `grant_table.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct GrantRef(pub u32);

impl fmt::Display for GrantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A guest frame number: a guest physical address (IPA on Arm) divided by
/// the 4 KiB Xen page size (`xen_pfn_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame containing guest physical address `addr` (rounds down).
    pub const fn from_addr(addr: u64) -> Pfn {
        Pfn(addr >> PAGE_SHIFT)
    }

    /// The guest physical address of the start of this frame.
    pub const fn addr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }

    /// The frame `n` frames after this one.
    pub const fn add(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Why a domain shuts down (`SHUTDOWN_*`, `sched.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff` (0): domain exited normally; clean up and kill.
    Poweroff = abi::SHUTDOWN_POWEROFF,
    /// `SHUTDOWN_reboot` (1): clean up, kill, then restart.
    Reboot = abi::SHUTDOWN_REBOOT,
    /// `SHUTDOWN_suspend` (2): clean up, save suspend info, kill.
    Suspend = abi::SHUTDOWN_SUSPEND,
    /// `SHUTDOWN_crash` (3): tell the controller we crashed.
    Crash = abi::SHUTDOWN_CRASH,
    /// `SHUTDOWN_watchdog` (4): restart because the watchdog expired.
    Watchdog = abi::SHUTDOWN_WATCHDOG,
    /// `SHUTDOWN_soft_reset` (5): soft reset, rebuild the domain in place.
    SoftReset = abi::SHUTDOWN_SOFT_RESET,
}

impl ShutdownReason {
    /// The raw `SHUTDOWN_*` value.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// Decodes a raw `SHUTDOWN_*` value.
    pub const fn from_u32(v: u32) -> Option<ShutdownReason> {
        Some(match v {
            abi::SHUTDOWN_POWEROFF => ShutdownReason::Poweroff,
            abi::SHUTDOWN_REBOOT => ShutdownReason::Reboot,
            abi::SHUTDOWN_SUSPEND => ShutdownReason::Suspend,
            abi::SHUTDOWN_CRASH => ShutdownReason::Crash,
            abi::SHUTDOWN_WATCHDOG => ShutdownReason::Watchdog,
            abi::SHUTDOWN_SOFT_RESET => ShutdownReason::SoftReset,
            _ => return None,
        })
    }
}

/// What `XENMEM_add_to_physmap` maps (`XENMAPSPACE_*`, `memory.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MapSpace {
    /// `XENMAPSPACE_shared_info` (0): the shared info page (`idx` 0).
    SharedInfo = abi::XENMAPSPACE_SHARED_INFO,
    /// `XENMAPSPACE_grant_table` (1): grant table frame `idx`; set
    /// [`abi::XENMAPIDX_GRANT_TABLE_STATUS`] in `idx` for a v2 status frame.
    GrantTable = abi::XENMAPSPACE_GRANT_TABLE,
    /// `XENMAPSPACE_gmfn` (2): move the domain's own frame `idx`.
    Gmfn = abi::XENMAPSPACE_GMFN,
}

impl MapSpace {
    /// The raw `XENMAPSPACE_*` value.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants() {
        assert_eq!(DomId::SELF, DomId(0x7FF0));
        assert_eq!(DomId::DOM0, DomId(0));
        assert!(DomId(5).is_ordinary());
        assert!(!DomId::SELF.is_ordinary());
        assert_eq!(PAGE_SIZE, 4096);
        assert_eq!(Pfn::from_addr(0x3800_0fff), Pfn(0x38000));
        assert_eq!(Pfn(0x38000).addr(), 0x3800_0000);
        assert_eq!(Pfn(1).add(2), Pfn(3));
    }

    #[test]
    fn shutdown_reasons() {
        // xen/include/public/sched.h: SHUTDOWN_poweroff 0 .. SHUTDOWN_soft_reset 5.
        let all = [
            (0, ShutdownReason::Poweroff),
            (1, ShutdownReason::Reboot),
            (2, ShutdownReason::Suspend),
            (3, ShutdownReason::Crash),
            (4, ShutdownReason::Watchdog),
            (5, ShutdownReason::SoftReset),
        ];
        for (n, r) in all {
            assert_eq!(r.as_u32(), n);
            assert_eq!(ShutdownReason::from_u32(n), Some(r));
        }
        assert_eq!(ShutdownReason::from_u32(6), None);
    }

    #[test]
    fn map_spaces() {
        // xen/include/public/memory.h: XENMAPSPACE_shared_info 0, grant_table 1, gmfn 2.
        assert_eq!(MapSpace::SharedInfo.as_u32(), 0);
        assert_eq!(MapSpace::GrantTable.as_u32(), 1);
        assert_eq!(MapSpace::Gmfn.as_u32(), 2);
    }
}
