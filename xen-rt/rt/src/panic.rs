//! The last resort: a panic or an unexpected exception is reported on the
//! console and the domain asks Xen to shut it down with reason `crash`, so a
//! toolstack (or the test harness) sees it. It never hangs silently.

use core::panic::PanicInfo;

use crate::console::emergency;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    emergency(format_args!("\nxen-rt: PANIC: {}\n", info));
    crash()
}

pub(crate) fn fatal_exception(slot: u64, esr: u64, elr: u64, far: u64) -> ! {
    emergency(format_args!(
        "\nxen-rt: PANIC: unexpected exception (vector slot {}) esr={:#x} elr={:#x} far={:#x}\n",
        slot, esr, elr, far
    ));
    crash()
}

/// Shuts the domain down with reason `crash`.
pub fn crash() -> ! {
    let _ = xen_hypercall::sched_shutdown(xen_hypercall::ShutdownReason::Crash);
    emergency(format_args!("xen-rt: SCHEDOP_shutdown failed; halting\n"));
    crate::arch::halt()
}
