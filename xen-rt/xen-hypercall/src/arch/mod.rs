//! Everything `unsafe` in this crate.
//!
//! * `aarch64.rs` (and later `x86_64.rs`): the raw trap primitives
//!   `hypercall0` .. `hypercall5`, each `unsafe fn(op: u32, args: u64...) -> i64`
//!   returning the raw value Xen left in the result register.
//! * `ops.rs`: the typed hypercall functions, written once over those
//!   primitives and re-exported at the crate root.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use aarch64 as imp;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod ops;
