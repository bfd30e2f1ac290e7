//! `xen/include/public/hvm/hvm_op.h` and `hvm/params.h`: HVM parameters,
//! which on Arm carry the xenstore and console ring locations.

/// `HVMOP_set_param`.
pub const HVMOP_SET_PARAM: u32 = 0;
/// `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: u32 = 1;

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenHvmParam {
    /// IN: domain (`DOMID_SELF`).
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// IN: `HVM_PARAM_*`.
    pub index: u32,
    /// IN/OUT: value.
    pub value: u64,
}

/// `HVM_PARAM_CALLBACK_IRQ`: how event channel upcalls are delivered.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_CALLBACK_IRQ_TYPE_MASK`: bits 63:56 of the value give the type.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
/// `HVM_PARAM_CALLBACK_TYPE_GSI`.
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
/// `HVM_PARAM_CALLBACK_TYPE_PCI_INTX`.
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// `HVM_PARAM_CALLBACK_TYPE_PPI` (Arm): value bits 7:0 are the PPI, 15:8 flags.
pub const HVM_PARAM_CALLBACK_TYPE_PPI: u64 = 2;
/// `HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_MASK` (Arm).
pub const HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_MASK: u64 = 0xFF00;
/// `HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL` (Arm).
pub const HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL: u64 = 2;
/// `HVM_PARAM_STORE_PFN`: frame of the xenstore ring page.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`: event channel of the xenstore ring.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_CONSOLE_PFN`: frame of the PV console ring page.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`: event channel of the PV console ring.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn layouts() {
        // xen_hvm_param: domid_t domid @0, u16 pad @2, u32 index @4,
        // u64 value @8; size 16.
        layout!(XenHvmParam, 16; domid = 0, pad = 2, index = 4, value = 8);
        assert_eq!((HVMOP_SET_PARAM, HVMOP_GET_PARAM), (0, 1));
        assert_eq!((HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN), (1, 2));
        assert_eq!((HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN), (17, 18));
    }
}
