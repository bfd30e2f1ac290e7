//! The ARM generic timer, virtual view: CNTVCT_EL0 counts since the domain
//! was created (Xen sets the virtual offset at domain creation), CNTV_* arms
//! a one-shot deadline that raises the virtual timer PPI.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0};
use aarch64_cpu::registers::{Readable, Writeable};

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Current virtual count.
pub fn now_ticks() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTVCT_EL0.get()
}

/// Raises the timer interrupt once the count reaches `deadline`.
pub fn arm(deadline_ticks: u64) {
    CNTV_CVAL_EL0.set(deadline_ticks);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Stops the timer (its level interrupt goes away).
pub fn disarm() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
}
