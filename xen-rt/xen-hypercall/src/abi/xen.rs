//! `xen/include/public/xen.h`: hypercall numbers, domain ids, VIRQs,
//! console_io, and the shared info page (arm64 layout).

// ---- Hypercall numbers (`__HYPERVISOR_*`) ----------------------------------

/// `__HYPERVISOR_memory_op`.
pub const HYPERVISOR_MEMORY_OP: u32 = 12;
/// `__HYPERVISOR_multicall`.
pub const HYPERVISOR_MULTICALL: u32 = 13;
/// `__HYPERVISOR_set_timer_op` (not available to Arm guests: Xen returns
/// `-ENOSYS`; its hypercall table has no Arm entry).
pub const HYPERVISOR_SET_TIMER_OP: u32 = 15;
/// `__HYPERVISOR_xen_version`.
pub const HYPERVISOR_XEN_VERSION: u32 = 17;
/// `__HYPERVISOR_console_io`.
pub const HYPERVISOR_CONSOLE_IO: u32 = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const HYPERVISOR_GRANT_TABLE_OP: u32 = 20;
/// `__HYPERVISOR_vm_assist`.
pub const HYPERVISOR_VM_ASSIST: u32 = 21;
/// `__HYPERVISOR_vcpu_op`.
pub const HYPERVISOR_VCPU_OP: u32 = 24;
/// `__HYPERVISOR_xsm_op`.
pub const HYPERVISOR_XSM_OP: u32 = 27;
/// `__HYPERVISOR_sched_op`.
pub const HYPERVISOR_SCHED_OP: u32 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const HYPERVISOR_EVENT_CHANNEL_OP: u32 = 32;
/// `__HYPERVISOR_physdev_op`.
pub const HYPERVISOR_PHYSDEV_OP: u32 = 33;
/// `__HYPERVISOR_hvm_op`.
pub const HYPERVISOR_HVM_OP: u32 = 34;
/// `__HYPERVISOR_sysctl`.
pub const HYPERVISOR_SYSCTL: u32 = 35;
/// `__HYPERVISOR_domctl`.
pub const HYPERVISOR_DOMCTL: u32 = 36;
/// `__HYPERVISOR_argo_op`.
pub const HYPERVISOR_ARGO_OP: u32 = 39;
/// `__HYPERVISOR_dm_op`.
pub const HYPERVISOR_DM_OP: u32 = 41;
/// `__HYPERVISOR_hypfs_op`.
pub const HYPERVISOR_HYPFS_OP: u32 = 42;

// ---- Virtual interrupts (`VIRQ_*`) -----------------------------------------

/// `VIRQ_TIMER`: timebase update and/or requested timeout (per vCPU).
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG`: request to dump debug info (per vCPU).
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE`: bytes received on the emergency console (global).
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC`: exceptional event for some domain (global).
pub const VIRQ_DOM_EXC: u32 = 3;
/// `VIRQ_TBUF`: trace buffer has records available (global).
pub const VIRQ_TBUF: u32 = 4;
/// `VIRQ_DEBUGGER`: a domain has paused for debugging (global).
pub const VIRQ_DEBUGGER: u32 = 6;
/// `VIRQ_XENOPROF`: XenOprofile sample available (per vCPU).
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_CON_RING`: bytes received on console (global).
pub const VIRQ_CON_RING: u32 = 8;
/// `VIRQ_PCPU_STATE`: physical CPU state changed (global).
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `VIRQ_MEM_EVENT`: a memory event has occurred (global).
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `VIRQ_ARGO`: Argo interdomain message notification.
pub const VIRQ_ARGO: u32 = 11;
/// `VIRQ_ENOMEM`: low on heap memory (global).
pub const VIRQ_ENOMEM: u32 = 12;
/// `VIRQ_XENPMU`: PMC interrupt (per vCPU).
pub const VIRQ_XENPMU: u32 = 13;
/// `VIRQ_ARCH_0`: first architecture-specific VIRQ (`VIRQ_ARCH_0`..`_7` = 16..23).
pub const VIRQ_ARCH_0: u32 = 16;
/// `NR_VIRQS`.
pub const NR_VIRQS: u32 = 24;

// ---- console_io -------------------------------------------------------------

/// `CONSOLEIO_write`: write a buffer to the Xen console.
pub const CONSOLEIO_WRITE: u32 = 0;
/// `CONSOLEIO_read`: read from the Xen console input ring.
pub const CONSOLEIO_READ: u32 = 1;

// ---- Domain ids ---------------------------------------------------------------

/// `DOMID_FIRST_RESERVED`: ids from here on are not ordinary domains.
pub const DOMID_FIRST_RESERVED: u16 = 0x7FF0;
/// `DOMID_SELF`: the calling domain.
pub const DOMID_SELF: u16 = 0x7FF0;
/// `DOMID_IO`.
pub const DOMID_IO: u16 = 0x7FF1;
/// `DOMID_XEN`.
pub const DOMID_XEN: u16 = 0x7FF2;
/// `DOMID_COW`.
pub const DOMID_COW: u16 = 0x7FF3;
/// `DOMID_INVALID`.
pub const DOMID_INVALID: u16 = 0x7FF4;
/// `DOMID_ANY`.
pub const DOMID_ANY: u16 = 0x7FF5;
/// `DOMID_IDLE`.
pub const DOMID_IDLE: u16 = 0x7FFF;
/// `DOMID_MASK`.
pub const DOMID_MASK: u16 = 0x7FFF;

// ---- Shared info ---------------------------------------------------------------

/// `XEN_PVCLOCK_TSC_STABLE_BIT` (in [`VcpuTimeInfo::flags`]).
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `XEN_PVCLOCK_GUEST_STOPPED` (in [`VcpuTimeInfo::flags`]).
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `struct vcpu_time_info` (32 bytes). Fields are updated by Xen under a
/// seqlock-like `version` (odd = update in progress).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Update counter.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// Counter value at the last update.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at the last update.
    pub system_time: u64,
    /// Counter-to-nanoseconds multiplier (32.32 fixed point).
    pub tsc_to_system_mul: u32,
    /// Counter shift applied before multiplying.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags (interface version > 0x040600).
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}

/// `struct arch_vcpu_info` on Arm: empty.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {}

/// `struct arch_shared_info` on Arm: empty.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchSharedInfo {}

/// `struct vcpu_info`, arm64 layout: **48 bytes** (the header's "64 bytes"
/// is the x86 size, where `arch_vcpu_info` is 16 bytes; on Arm it is empty).
///
/// Arm does not define `XEN_HAVE_PV_UPCALL_MASK`, so the second byte is
/// `pad0`, not `evtchn_upcall_mask`: event delivery is masked at the GIC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Set non-zero by Xen when an event is pending for this vCPU; cleared
    /// by the guest before scanning.
    pub evtchn_upcall_pending: u8,
    /// Padding (`evtchn_upcall_mask` on x86 PV only).
    pub pad0: u8,
    /// Selector: bit *i* set means word *i* of
    /// [`SharedInfo::evtchn_pending`] may have pending bits.
    pub evtchn_pending_sel: u64,
    /// Architecture part (empty on Arm).
    pub arch: ArchVcpuInfo,
    /// Time values.
    pub time: VcpuTimeInfo,
}

/// `XEN_LEGACY_MAX_VCPUS` on Arm: vCPU info slots in the shared info page.
pub const XEN_LEGACY_MAX_VCPUS: usize = 1;
/// Words in the 2-level event channel bitmaps (`sizeof(xen_ulong_t) * 8`).
pub const EVTCHN_2L_WORDS: usize = 64;

/// `struct shared_info`, arm64 layout (1088 bytes). Mapped by the guest with
/// `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`; Xen updates it
/// concurrently, so access it through volatile or atomic operations.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfo {
    /// Legacy per-vCPU info (only vCPU 0 on Arm; other vCPUs must register
    /// their own with `VCPUOP_register_vcpu_info`).
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// 2-level event channel pending bitmap (4096 ports).
    pub evtchn_pending: [u64; EVTCHN_2L_WORDS],
    /// 2-level event channel mask bitmap.
    pub evtchn_mask: [u64; EVTCHN_2L_WORDS],
    /// Wallclock update counter (see [`VcpuTimeInfo::version`]).
    pub wc_version: u32,
    /// Wallclock seconds since the Unix epoch (low 32 bits).
    pub wc_sec: u32,
    /// Wallclock nanoseconds.
    pub wc_nsec: u32,
    /// Wallclock seconds, high 32 bits (present on all but x86_32).
    pub wc_sec_hi: u32,
    /// Architecture part (empty on Arm).
    pub arch: ArchSharedInfo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn hypercall_numbers() {
        // xen.h `__HYPERVISOR_*`.
        assert_eq!(HYPERVISOR_MEMORY_OP, 12);
        assert_eq!(HYPERVISOR_SET_TIMER_OP, 15);
        assert_eq!(HYPERVISOR_XEN_VERSION, 17);
        assert_eq!(HYPERVISOR_CONSOLE_IO, 18);
        assert_eq!(HYPERVISOR_GRANT_TABLE_OP, 20);
        assert_eq!(HYPERVISOR_VCPU_OP, 24);
        assert_eq!(HYPERVISOR_SCHED_OP, 29);
        assert_eq!(HYPERVISOR_EVENT_CHANNEL_OP, 32);
        assert_eq!(HYPERVISOR_HVM_OP, 34);
        assert_eq!(DOMID_SELF, 0x7FF0);
    }

    #[test]
    fn vcpu_time_info() {
        // xen.h struct vcpu_time_info ("32 bytes"): u32 version @0, u32 pad0 @4,
        // u64 tsc_timestamp @8, u64 system_time @16, u32 tsc_to_system_mul @24,
        // i8 tsc_shift @28, u8 flags @29, u8 pad1[2] @30; size 32.
        layout!(VcpuTimeInfo, 32; version = 0, pad0 = 4, tsc_timestamp = 8,
            system_time = 16, tsc_to_system_mul = 24, tsc_shift = 28, flags = 29, pad1 = 30);
    }

    #[test]
    fn vcpu_info() {
        // xen.h struct vcpu_info, arm64: u8 pending @0, u8 pad0 @1, pad to 8,
        // xen_ulong_t(u64) evtchn_pending_sel @8, arch_vcpu_info {} (0 bytes,
        // arch-arm.h) @16, vcpu_time_info (32 bytes, align 8) @16; size 48.
        layout!(ArchVcpuInfo, 0;);
        layout!(VcpuInfo, 48; evtchn_upcall_pending = 0, pad0 = 1,
            evtchn_pending_sel = 8, arch = 16, time = 16);
    }

    #[test]
    fn shared_info() {
        // xen.h struct shared_info, arm64: vcpu_info[XEN_LEGACY_MAX_VCPUS = 1]
        // (48) @0, xen_ulong_t evtchn_pending[64] (512) @48, evtchn_mask[64]
        // @560, u32 wc_version @1072, wc_sec @1076, wc_nsec @1080,
        // wc_sec_hi @1084 (not __i386__), arch_shared_info {} @1088; size 1088.
        layout!(ArchSharedInfo, 0;);
        layout!(SharedInfo, 1088; vcpu_info = 0, evtchn_pending = 48, evtchn_mask = 560,
            wc_version = 1072, wc_sec = 1076, wc_nsec = 1080, wc_sec_hi = 1084, arch = 1088);
        assert!(core::mem::size_of::<SharedInfo>() <= 4096);
    }
}
