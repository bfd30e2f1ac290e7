//! Architecture code: the only place, with `mem`, where xen-rt uses
//! `unsafe`. Every arch module exports the same names; one is picked per
//! target.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

/// Declares the domain's entry function: `xen_rt::entry!(main);` with
/// `fn main(rt: &mut xen_rt::Runtime)`. Defined here, not in runtime.rs,
/// because its expansion carries an unsafe attribute.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        // SAFETY: exactly one `__xen_rt_main` exists per image (a second
        // `entry!` is a duplicate-symbol link error), and it has the
        // signature xen-rt's `unsafe extern "Rust"` declaration expects.
        #[unsafe(export_name = "__xen_rt_main")]
        fn __xen_rt_main(rt: &mut $crate::Runtime) {
            let f: fn(&mut $crate::Runtime) = $main;
            f(rt)
        }
    };
}

// SAFETY: `entry!` defines `__xen_rt_main` with exactly this Rust-ABI
// signature in every domain binary; calling it has no preconditions, hence
// `safe fn`.
unsafe extern "Rust" {
    /// Defined by the domain's binary with `xen_rt::entry!`.
    safe fn __xen_rt_main(rt: &mut crate::Runtime);
}

/// Calls the domain's entry function.
pub fn call_domain_main(rt: &mut crate::Runtime) {
    __xen_rt_main(rt)
}
