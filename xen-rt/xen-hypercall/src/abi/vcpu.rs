//! `xen/include/public/vcpu.h`: the `VCPUOP_*` subset available on Arm.

/// `VCPUOP_register_runstate_memory_area`.
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;
/// `VCPUOP_register_vcpu_info`: place a vCPU's [`VcpuInfo`](super::VcpuInfo)
/// in guest memory (required on Arm for every vCPU that wants events,
/// including vCPU 0 beyond the legacy slot).
pub const VCPUOP_REGISTER_VCPU_INFO: u32 = 10;

/// `struct vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterVcpuInfo {
    /// Frame (GFN) of the page holding the `vcpu_info`.
    pub mfn: u64,
    /// Offset of the `vcpu_info` within the page.
    pub offset: u32,
    /// Unused.
    pub rsvd: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn layouts() {
        // vcpu_register_vcpu_info: u64 mfn @0, u32 offset @8, u32 rsvd @12; size 16.
        layout!(VcpuRegisterVcpuInfo, 16; mfn = 0, offset = 8, rsvd = 12);
        assert_eq!(VCPUOP_REGISTER_VCPU_INFO, 10);
    }
}
