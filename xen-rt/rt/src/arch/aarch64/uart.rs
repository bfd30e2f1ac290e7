//! Transmit-only PL011 (Xen's vpl011 for dom0less domUs).

use core::ptr;

const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// A PL011 at a device-tree address that the MMU maps as Device memory.
pub struct Pl011 {
    base: usize,
}

impl Pl011 {
    /// `base` must be the PL011 register block from the device tree.
    pub const fn new(base: usize) -> Self {
        Self { base }
    }

    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            // SAFETY: `base` is the PL011 MMIO block from the device tree,
            // mapped Device-nGnRE by mmu::init; FR and DR are 32-bit
            // registers inside it.
            unsafe {
                while ptr::read_volatile((self.base + FR) as *const u32) & FR_TXFF != 0 {}
                ptr::write_volatile((self.base + DR) as *mut u32, b as u32);
            }
        }
    }
}
