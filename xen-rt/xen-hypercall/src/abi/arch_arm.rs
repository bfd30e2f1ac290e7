//! `xen/include/public/arch-arm.h`: the Arm hypercall convention and the
//! default guest physical memory layout.
//!
//! The `GUEST_*` layout constants are defined in the header only for Xen and
//! the toolstack (`__XEN__` / `__XEN_TOOLS__`), and the header says guests
//! must not rely on them: **the device tree passed to the domain is the
//! primary source** (the `xen,xen` hypervisor node gives the grant table
//! region and the event channel PPI; memory, GIC and UART nodes give the
//! rest). They are provided as documented defaults and fallbacks for
//! domains built by the standard toolstack (`libxl`) or dom0less.

/// `XEN_HYPERCALL_TAG`: the immediate of the `hvc` instruction.
pub const XEN_HYPERCALL_TAG: u16 = 0xEA1;

/// vGICv2 distributor base (`GUEST_GICD_BASE`).
pub const GUEST_GICD_BASE: u64 = 0x0300_1000;
/// vGICv2 CPU interface base (`GUEST_GICC_BASE`).
pub const GUEST_GICC_BASE: u64 = 0x0300_2000;
/// vGICv3 distributor base (`GUEST_GICV3_GICD_BASE`).
pub const GUEST_GICV3_GICD_BASE: u64 = 0x0300_1000;
/// vGICv3 distributor size (`GUEST_GICV3_GICD_SIZE`).
pub const GUEST_GICV3_GICD_SIZE: u64 = 0x0001_0000;
/// vGICv3 redistributor region 0 base, vCPUs 0..127 (`GUEST_GICV3_GICR0_BASE`).
pub const GUEST_GICV3_GICR0_BASE: u64 = 0x0302_0000;
/// vGICv3 redistributor region 0 size (`GUEST_GICV3_GICR0_SIZE`).
pub const GUEST_GICV3_GICR0_SIZE: u64 = 0x0100_0000;
/// Emulated PL011 UART base (`GUEST_PL011_BASE`).
pub const GUEST_PL011_BASE: u64 = 0x2200_0000;
/// Emulated PL011 UART size (`GUEST_PL011_SIZE`).
pub const GUEST_PL011_SIZE: u64 = 0x0000_1000;
/// Region reserved for the guest to map its grant table
/// (`GUEST_GNTTAB_BASE`; 16 MiB = 4096 frames).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// Size of the grant table region (`GUEST_GNTTAB_SIZE`).
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;
/// "Magic" pages region: xenstore and console rings etc. (`GUEST_MAGIC_BASE`).
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
/// Size of the magic pages region (`GUEST_MAGIC_SIZE`).
pub const GUEST_MAGIC_SIZE: u64 = 0x0100_0000;
/// First RAM bank base: 3 GiB of low RAM at 1 GiB (`GUEST_RAM0_BASE`).
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;
/// First RAM bank size (`GUEST_RAM0_SIZE`).
pub const GUEST_RAM0_SIZE: u64 = 0xc000_0000;
/// Second RAM bank base: 1016 GiB at 8 GiB (`GUEST_RAM1_BASE`).
pub const GUEST_RAM1_BASE: u64 = 0x02_0000_0000;
/// Second RAM bank size (`GUEST_RAM1_SIZE`).
pub const GUEST_RAM1_SIZE: u64 = 0xfe_0000_0000;

/// Virtual timer PPI (`GUEST_TIMER_VIRT_PPI`).
pub const GUEST_TIMER_VIRT_PPI: u32 = 27;
/// Secure physical timer PPI (`GUEST_TIMER_PHYS_S_PPI`).
pub const GUEST_TIMER_PHYS_S_PPI: u32 = 29;
/// Non-secure physical timer PPI (`GUEST_TIMER_PHYS_NS_PPI`).
pub const GUEST_TIMER_PHYS_NS_PPI: u32 = 30;
/// Event channel upcall PPI (`GUEST_EVTCHN_PPI`).
pub const GUEST_EVTCHN_PPI: u32 = 31;
/// Emulated PL011 SPI (`GUEST_VPL011_SPI`).
pub const GUEST_VPL011_SPI: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_header() {
        // arch-arm.h text.
        assert_eq!(XEN_HYPERCALL_TAG, 0xEA1);
        assert_eq!(GUEST_GNTTAB_BASE, 0x38000000);
        assert_eq!(GUEST_GNTTAB_SIZE / 4096, 4096);
        assert_eq!(GUEST_MAGIC_BASE, 0x39000000);
        assert_eq!(GUEST_RAM0_BASE + GUEST_RAM0_SIZE, 0x1_0000_0000);
        assert_eq!(GUEST_EVTCHN_PPI, 31);
    }
}
