//! The arm64 hypercall trap (`xen/include/public/arch-arm.h`, "Hypercall
//! Calling Convention"): hypercall number in `x16`, arguments in `x0`..`x4`,
//! `hvc #XEN_HYPERCALL_TAG` (0xEA1), result in `x0`.
//!
//! Xen clobbers `x16` and the argument registers (debug builds poison all
//! of them, and a preempted hypercall is restarted with updated arguments),
//! so all six registers are declared as outputs. The asm may read and write
//! memory (Xen accesses argument structs through pointers), so neither
//! `nomem` nor `readonly` is used; it does not touch the stack.

use core::arch::asm;

/// Issues hypercall `op` with five arguments and returns `x0`.
///
/// # Safety
///
/// The arguments must form a request for hypercall `op` whose effects are
/// sound: every pointer argument (and every pointer inside an argument
/// struct) must be valid for the reads and writes Xen performs, for their
/// whole extent, with no conflicting Rust references; and any change the
/// hypercall makes to the domain's memory or physical address space (maps,
/// unmaps, writes through frame numbers) must not invalidate memory that
/// Rust code relies on.
#[inline(always)]
pub(super) unsafe fn hypercall5(op: u32, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let ret: u64;
    // SAFETY: the caller guarantees the request is sound (see `# Safety`).
    // The asm issues exactly the Xen hypercall trap, declares every register
    // Xen may change (x0-x4, x16) as an output, and leaves the stack alone.
    unsafe {
        asm!(
            "hvc #0xEA1",
            inout("x16") u64::from(op) => _,
            inout("x0") a0 => ret,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            inout("x4") a4 => _,
            options(nostack),
        );
    }
    ret as i64
}

/// Issues hypercall `op` with four arguments.
///
/// # Safety
///
/// As for [`hypercall5`].
#[allow(dead_code)]
#[inline(always)]
pub(super) unsafe fn hypercall4(op: u32, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: forwarded contract; the unused fifth argument register is 0.
    unsafe { hypercall5(op, a0, a1, a2, a3, 0) }
}

/// Issues hypercall `op` with three arguments.
///
/// # Safety
///
/// As for [`hypercall5`].
#[inline(always)]
pub(super) unsafe fn hypercall3(op: u32, a0: u64, a1: u64, a2: u64) -> i64 {
    // SAFETY: forwarded contract; unused argument registers are 0.
    unsafe { hypercall5(op, a0, a1, a2, 0, 0) }
}

/// Issues hypercall `op` with two arguments.
///
/// # Safety
///
/// As for [`hypercall5`].
#[inline(always)]
pub(super) unsafe fn hypercall2(op: u32, a0: u64, a1: u64) -> i64 {
    // SAFETY: forwarded contract; unused argument registers are 0.
    unsafe { hypercall5(op, a0, a1, 0, 0, 0) }
}

/// Issues hypercall `op` with one argument.
///
/// # Safety
///
/// As for [`hypercall5`].
#[inline(always)]
pub(super) unsafe fn hypercall1(op: u32, a0: u64) -> i64 {
    // SAFETY: forwarded contract; unused argument registers are 0.
    unsafe { hypercall5(op, a0, 0, 0, 0, 0) }
}

/// Issues hypercall `op` without arguments.
///
/// # Safety
///
/// As for [`hypercall5`].
#[allow(dead_code)]
#[inline(always)]
pub(super) unsafe fn hypercall0(op: u32) -> i64 {
    // SAFETY: forwarded contract; unused argument registers are 0.
    unsafe { hypercall5(op, 0, 0, 0, 0, 0) }
}
