//! aarch64 (ARMv8-A, EL1) support for a dom0less domU: boot, MMU, GICv3,
//! generic timer and the vpl011 UART.

mod boot;
pub mod gic;
pub mod mmu;
pub mod timer;
pub mod uart;

use core::arch::asm;

/// Sleeps until an interrupt is pending at the CPU interface. Interrupts are
/// masked in PSTATE, so nothing is taken: WFI still wakes on a pending IRQ,
/// and the caller acknowledges it through the GIC.
pub fn wait_for_interrupt() {
    // SAFETY: WFI only suspends execution until a wake-up event; it touches
    // no memory and no register.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// Full-system data memory barrier, for ordering accesses to memory shared
/// with Xen or a peer domain.
pub fn memory_barrier() {
    // SAFETY: a barrier instruction has no effect besides ordering.
    unsafe { asm!("dmb ish", options(nostack, preserves_flags)) };
}

/// Stops this CPU for good (used only after the domain asked Xen to shut it
/// down and Xen did not).
pub fn halt() -> ! {
    loop {
        wait_for_interrupt();
    }
}

/// Called from the exception vectors in boot.rs.
// SAFETY: no other symbol of this name exists in the image; boot.rs's
// vectors call it with the C ABI and four u64 arguments, as declared.
#[unsafe(no_mangle)]
extern "C" fn xen_rt_exception(slot: u64, esr: u64, elr: u64, far: u64) -> ! {
    crate::panic::fatal_exception(slot, esr, elr, far)
}

/// Called from `_start` with the device tree address Xen passed in x0.
// SAFETY: no other symbol of this name exists in the image; `_start`
// calls it once with the C ABI and the DTB address in x0, as declared.
#[unsafe(no_mangle)]
extern "C" fn xen_rt_rust_start(dtb: usize) -> ! {
    crate::runtime::start(dtb)
}

/// The linker symbols that bound this image in memory.
pub fn image_bounds() -> (usize, usize, usize) {
    // SAFETY: the linker script defines these three symbols; only their
    // addresses are used below, so their type and contents do not matter.
    unsafe extern "C" {
        static __image_start: u8;
        static __image_file_end: u8;
        static __heap_start: u8;
    }
    // Only the addresses of the linker-defined symbols are taken; they are
    // never read.
    (
        (&raw const __image_start) as usize,
        (&raw const __image_file_end) as usize,
        (&raw const __heap_start) as usize,
    )
}
