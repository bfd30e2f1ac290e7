//! `xen/include/public/sched.h`: `SCHEDOP_*` and `SHUTDOWN_*`.

/// `SCHEDOP_yield`: give up the CPU voluntarily.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: block until an event is pending (Arm prefers `wfi`).
pub const SCHEDOP_BLOCK: u32 = 1;
/// `SCHEDOP_shutdown`: shut the domain down; arg is [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// `SCHEDOP_poll`: poll a set of event channels; arg is [`SchedPoll`].
pub const SCHEDOP_POLL: u32 = 3;
/// `SCHEDOP_remote_shutdown`; arg is [`SchedRemoteShutdown`].
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = 4;
/// `SCHEDOP_shutdown_code`: set the code for a later shutdown.
pub const SCHEDOP_SHUTDOWN_CODE: u32 = 5;
/// `SCHEDOP_watchdog`.
pub const SCHEDOP_WATCHDOG: u32 = 6;
/// `SCHEDOP_pin_override`.
pub const SCHEDOP_PIN_OVERRIDE: u32 = 7;

/// `SHUTDOWN_poweroff`.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_suspend`.
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;
/// `SHUTDOWN_watchdog`.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// `SHUTDOWN_soft_reset`.
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
/// `SHUTDOWN_MAX`.
pub const SHUTDOWN_MAX: u32 = 5;

/// `struct sched_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*` (C `unsigned int`).
    pub reason: u32,
}

/// `struct sched_poll`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    /// Guest handle (address) of an array of `evtchn_port_t`.
    pub ports: u64,
    /// Number of ports.
    pub nr_ports: u32,
    /// Absolute system time timeout in ns (0 = none).
    pub timeout: u64,
}

/// `struct sched_remote_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedRemoteShutdown {
    /// Remote domain.
    pub domain_id: u16,
    /// `SHUTDOWN_*`.
    pub reason: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn layouts() {
        // sched_shutdown: unsigned int reason @0; size 4.
        layout!(SchedShutdown, 4; reason = 0);
        // sched_poll: XEN_GUEST_HANDLE(evtchn_port_t) ports @0 (8 bytes on arm),
        // unsigned int nr_ports @8, u64 timeout @16; size 24.
        layout!(SchedPoll, 24; ports = 0, nr_ports = 8, timeout = 16);
        // sched_remote_shutdown: domid_t domain_id @0, unsigned int reason @4; size 8.
        layout!(SchedRemoteShutdown, 8; domain_id = 0, reason = 4);
        assert_eq!(
            (SCHEDOP_YIELD, SCHEDOP_BLOCK, SCHEDOP_SHUTDOWN, SCHEDOP_POLL),
            (0, 1, 2, 3)
        );
    }
}
