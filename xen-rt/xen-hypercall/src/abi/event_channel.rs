//! `xen/include/public/event_channel.h`: `EVTCHNOP_*` and their argument
//! structs.

/// `EVTCHNOP_bind_interdomain`.
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// `EVTCHNOP_bind_virq`.
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// `EVTCHNOP_bind_pirq`.
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;
/// `EVTCHNOP_close`.
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: u32 = 4;
/// `EVTCHNOP_status`.
pub const EVTCHNOP_STATUS: u32 = 5;
/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// `EVTCHNOP_bind_ipi`.
pub const EVTCHNOP_BIND_IPI: u32 = 7;
/// `EVTCHNOP_bind_vcpu`.
pub const EVTCHNOP_BIND_VCPU: u32 = 8;
/// `EVTCHNOP_unmask`.
pub const EVTCHNOP_UNMASK: u32 = 9;
/// `EVTCHNOP_reset`.
pub const EVTCHNOP_RESET: u32 = 10;
/// `EVTCHNOP_init_control` (FIFO ABI).
pub const EVTCHNOP_INIT_CONTROL: u32 = 11;
/// `EVTCHNOP_expand_array` (FIFO ABI).
pub const EVTCHNOP_EXPAND_ARRAY: u32 = 12;
/// `EVTCHNOP_set_priority` (FIFO ABI).
pub const EVTCHNOP_SET_PRIORITY: u32 = 13;

/// `EVTCHN_2L_NR_CHANNELS` on arm64 (`8 * 8 * 64`).
pub const EVTCHN_2L_NR_CHANNELS: u32 = 4096;

/// `EVTCHNSTAT_closed`.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `struct evtchn_alloc_unbound`: allocate a port in `dom` that
/// `remote_dom` may bind to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// IN: domain owning the new port (usually `DOMID_SELF`).
    pub dom: u16,
    /// IN: domain allowed to bind.
    pub remote_dom: u16,
    /// OUT: the new port.
    pub port: u32,
}

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// IN: remote domain.
    pub remote_dom: u16,
    /// IN: unbound port in the remote domain.
    pub remote_port: u32,
    /// OUT: the new local port.
    pub local_port: u32,
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: vCPU to deliver to.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: u32,
}

/// `struct evtchn_bind_ipi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    /// IN: vCPU to deliver to.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: u32,
}

/// `struct evtchn_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    /// IN: port to close.
    pub port: u32,
}

/// `struct evtchn_send`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    /// IN: local port to notify through.
    pub port: u32,
}

/// `struct evtchn_bind_vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    /// IN: port.
    pub port: u32,
    /// IN: vCPU to deliver to.
    pub vcpu: u32,
}

/// `struct evtchn_unmask`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    /// IN: port to unmask.
    pub port: u32,
}

/// `struct evtchn_reset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnReset {
    /// IN: domain whose ports are closed (`DOMID_SELF`).
    pub dom: u16,
}

/// `struct evtchn_init_control` (FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnInitControl {
    /// IN: frame of the control block.
    pub control_gfn: u64,
    /// IN: offset of the control block within the frame.
    pub offset: u32,
    /// IN: vCPU.
    pub vcpu: u32,
    /// OUT: number of link bits.
    pub link_bits: u8,
    /// Padding.
    pub _pad: [u8; 7],
}

/// `struct evtchn_expand_array` (FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnExpandArray {
    /// IN: frame of the next event array page.
    pub array_gfn: u64,
}

/// `struct evtchn_set_priority` (FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSetPriority {
    /// IN: port.
    pub port: u32,
    /// IN: priority (0 highest .. 15 lowest).
    pub priority: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn op_numbers() {
        // event_channel.h EVTCHNOP_*.
        let ops = [
            EVTCHNOP_BIND_INTERDOMAIN,
            EVTCHNOP_BIND_VIRQ,
            EVTCHNOP_BIND_PIRQ,
            EVTCHNOP_CLOSE,
            EVTCHNOP_SEND,
            EVTCHNOP_STATUS,
            EVTCHNOP_ALLOC_UNBOUND,
            EVTCHNOP_BIND_IPI,
            EVTCHNOP_BIND_VCPU,
            EVTCHNOP_UNMASK,
            EVTCHNOP_RESET,
            EVTCHNOP_INIT_CONTROL,
            EVTCHNOP_EXPAND_ARRAY,
            EVTCHNOP_SET_PRIORITY,
        ];
        for (i, op) in ops.into_iter().enumerate() {
            assert_eq!(op as usize, i);
        }
    }

    #[test]
    fn layouts() {
        // evtchn_alloc_unbound: domid_t dom @0, domid_t remote_dom @2,
        // evtchn_port_t(u32) port @4; size 8.
        layout!(EvtchnAllocUnbound, 8; dom = 0, remote_dom = 2, port = 4);
        // evtchn_bind_interdomain: u16 remote_dom @0, (pad 2), u32 remote_port @4,
        // u32 local_port @8; size 12.
        layout!(EvtchnBindInterdomain, 12; remote_dom = 0, remote_port = 4, local_port = 8);
        // evtchn_bind_virq: u32 virq @0, u32 vcpu @4, u32 port @8; size 12.
        layout!(EvtchnBindVirq, 12; virq = 0, vcpu = 4, port = 8);
        // evtchn_bind_ipi: u32 vcpu @0, u32 port @4; size 8.
        layout!(EvtchnBindIpi, 8; vcpu = 0, port = 4);
        // evtchn_close / evtchn_send / evtchn_unmask: u32 port @0; size 4.
        layout!(EvtchnClose, 4; port = 0);
        layout!(EvtchnSend, 4; port = 0);
        layout!(EvtchnUnmask, 4; port = 0);
        // evtchn_bind_vcpu: u32 port @0, u32 vcpu @4; size 8.
        layout!(EvtchnBindVcpu, 8; port = 0, vcpu = 4);
        // evtchn_reset: domid_t dom @0; size 2.
        layout!(EvtchnReset, 2; dom = 0);
        // evtchn_init_control: u64 control_gfn @0, u32 offset @8, u32 vcpu @12,
        // u8 link_bits @16, u8 _pad[7] @17; size 24.
        layout!(EvtchnInitControl, 24; control_gfn = 0, offset = 8, vcpu = 12,
            link_bits = 16, _pad = 17);
        // evtchn_expand_array: u64 array_gfn @0; size 8.
        layout!(EvtchnExpandArray, 8; array_gfn = 0);
        // evtchn_set_priority: u32 port @0, u32 priority @4; size 8.
        layout!(EvtchnSetPriority, 8; port = 0, priority = 4);
    }
}
