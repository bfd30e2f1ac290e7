//! Minimal GICv3 driver for one vCPU: enables the private interrupts the
//! runtime uses (the Xen event-channel PPI and the virtual timer PPI) in the
//! redistributor and the CPU interface, the shared interrupt of a
//! passed-through device in the distributor, and acknowledges them. The runtime
//! keeps IRQs masked in PSTATE and acknowledges after WFI, so no interrupt
//! handler ever runs.
//!
//! Written by hand rather than with the arm-gic crate: the runtime needs four
//! redistributor registers and three system registers for PPIs only, and
//! Xen's vGIC is the only GIC it will ever see.

use core::arch::asm;
use core::ptr;

const GICD_CTLR: usize = 0x0;
const GICD_CTLR_ARE_NS: u32 = 1 << 4;
const GICD_CTLR_ENABLE_GRP1A: u32 = 1 << 1;
const GICD_IGROUPR: usize = 0x80;
const GICD_ISENABLER: usize = 0x100;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_IROUTER: usize = 0x6000;
const GICR_WAKER: usize = 0x14;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const GICR_SGI_FRAME: usize = 0x1_0000;
const GICR_IGROUPR0: usize = GICR_SGI_FRAME + 0x80;
const GICR_ISENABLER0: usize = GICR_SGI_FRAME + 0x100;
const GICR_IPRIORITYR: usize = GICR_SGI_FRAME + 0x400;
const SPURIOUS: u32 = 1023;

/// The distributor and this vCPU's redistributor, at device-tree addresses
/// that mmu::init maps as Device memory.
pub struct Gic {
    gicd: usize,
    gicr: usize,
}

impl Gic {
    pub fn new(gicd: usize, gicr: usize) -> Self {
        // SAFETY: `gicd`/`gicr` are the GICv3 register frames from the
        // device tree, mapped Device-nGnRE; the registers touched are 32-bit
        // registers defined by the GICv3 architecture.
        unsafe {
            let ctlr = ptr::read_volatile((gicd + GICD_CTLR) as *const u32);
            ptr::write_volatile(
                (gicd + GICD_CTLR) as *mut u32,
                ctlr | GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_GRP1A,
            );
            let waker = ptr::read_volatile((gicr + GICR_WAKER) as *const u32);
            ptr::write_volatile(
                (gicr + GICR_WAKER) as *mut u32,
                waker & !GICR_WAKER_PROCESSOR_SLEEP,
            );
            let mut spins = 0u32;
            while ptr::read_volatile((gicr + GICR_WAKER) as *const u32) & GICR_WAKER_CHILDREN_ASLEEP
                != 0
                && spins < 1_000_000
            {
                spins += 1;
            }
        }
        // SAFETY: GICv3 CPU-interface system registers at EL1: enable the
        // system-register interface, accept every priority, one group-1
        // priority grouping, and enable group 1 interrupts.
        unsafe {
            asm!(
                "mrs {t}, icc_sre_el1",
                "orr {t}, {t}, #1",
                "msr icc_sre_el1, {t}",
                "isb",
                "msr icc_pmr_el1, {pmr}",
                "msr icc_bpr1_el1, xzr",
                "msr icc_igrpen1_el1, {one}",
                "isb",
                t = out(reg) _,
                pmr = in(reg) 0xffu64,
                one = in(reg) 1u64,
                options(nostack),
            );
        }
        Self { gicd, gicr }
    }

    /// Enables private interrupt `intid` (16..32) as group 1.
    pub fn enable_ppi(&self, intid: u32) {
        if !(16..32).contains(&intid) {
            return;
        }
        // SAFETY: SGI-frame registers of this vCPU's redistributor (Device
        // memory); IPRIORITYR is byte-accessible by the architecture.
        unsafe {
            let group = ptr::read_volatile((self.gicr + GICR_IGROUPR0) as *const u32);
            ptr::write_volatile(
                (self.gicr + GICR_IGROUPR0) as *mut u32,
                group | (1 << intid),
            );
            ptr::write_volatile(
                (self.gicr + GICR_IPRIORITYR + intid as usize) as *mut u8,
                0xa0,
            );
            ptr::write_volatile((self.gicr + GICR_ISENABLER0) as *mut u32, 1 << intid);
        }
    }

    /// Enables shared peripheral interrupt `intid` (32..1020, a device
    /// passed through to this domain) as group 1, routed to vCPU 0 (the
    /// only one the runtime runs). Returns false for an id out of range.
    pub fn enable_spi(&self, intid: u32) -> bool {
        if !(32..1020).contains(&intid) {
            return false;
        }
        let word = 4 * (intid as usize / 32);
        let bit = 1u32 << (intid % 32);
        // IGROUPR<n> and ISENABLER<n> are 32-bit, IPRIORITYR is
        // byte-accessible, IROUTER<n> is 64-bit (affinity 0.0.0.0 with
        // routing mode "this affinity": vCPU 0).
        //
        // SAFETY: GICv3 distributor registers of SPI `intid` (range checked
        // above) in the Device-mapped GICD frame, each at its own width.
        unsafe {
            let group = ptr::read_volatile((self.gicd + GICD_IGROUPR + word) as *const u32);
            ptr::write_volatile((self.gicd + GICD_IGROUPR + word) as *mut u32, group | bit);
            ptr::write_volatile(
                (self.gicd + GICD_IPRIORITYR + intid as usize) as *mut u8,
                0xa0,
            );
            ptr::write_volatile(
                (self.gicd + GICD_IROUTER + 8 * intid as usize) as *mut u64,
                0,
            );
            ptr::write_volatile((self.gicd + GICD_ISENABLER + word) as *mut u32, bit);
        }
        true
    }

    /// Acknowledges the highest-priority pending interrupt, if any, and
    /// signals its end at once (the caller polls the interrupt's source).
    pub fn acknowledge(&self) -> Option<u32> {
        let intid: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges one group-1 interrupt;
        // writing its id to ICC_EOIR1_EL1 ends it. No memory is touched.
        unsafe {
            asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nostack));
        }
        let intid = (intid & 0xff_ffff) as u32;
        if intid >= SPURIOUS {
            return None;
        }
        // SAFETY: see above.
        unsafe {
            asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid as u64, options(nostack));
        }
        Some(intid)
    }
}
