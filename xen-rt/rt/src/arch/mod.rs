//! Architecture code: the only place, with `mem`, where xen-rt uses
//! `unsafe`. Every arch module exports the same names; one is picked per
//! target.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

unsafe extern "Rust" {
    /// Defined by the domain's binary with `xen_rt::entry!`.
    safe fn __xen_rt_main(rt: &mut crate::Runtime);
}

/// Calls the domain's entry function.
pub fn call_domain_main(rt: &mut crate::Runtime) {
    __xen_rt_main(rt)
}
