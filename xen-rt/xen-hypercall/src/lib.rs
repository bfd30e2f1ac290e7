//! Typed Xen hypercalls and the Xen public ABI they use.
//!
//! This crate is the single place where our `no_std` service domains talk to
//! the Xen hypervisor directly. It provides:
//!
//! * [`abi`]: the `#[repr(C)]` structs and constants of the Xen public
//!   interface (`xen/include/public/`) that the hypercalls below need, laid
//!   out for **arm64** (`xen_pfn_t` and `xen_ulong_t` are 64-bit, guest
//!   handles are 8-byte values). Every struct's size and field offsets are
//!   checked by host tests against values computed from the header text.
//! * typed identifiers ([`DomId`], [`EvtchnPort`], [`GrantRef`], [`Pfn`]) and
//!   enums ([`ShutdownReason`], [`MapSpace`]);
//! * typed errors: [`Error`] for the Xen errno values returned by hypercalls
//!   and [`GrantStatus`] for the per-operation `GNTST_*` status codes;
//! * on `aarch64` bare metal only (`cfg(all(target_arch = "aarch64",
//!   target_os = "none"))`): one function per hypercall operation we use,
//!   such as `console_write`, `evtchn_send` or `gnttab_map_grant_ref`.
//!
//! # Design rules
//!
//! * `#![no_std]`, no allocation, no dependencies.
//! * A hypercall never returns a raw negative integer to the caller: results
//!   are [`Result<T>`](Result) with a typed [`Error`].
//! * All `unsafe` code lives in the private module `arch` (the crate denies
//!   `unsafe_code` everywhere else). Each target architecture supplies the raw
//!   trap primitives in its own file (`arch/aarch64.rs`; an `arch/x86_64.rs`
//!   providing the same `hypercall0`..`hypercall5` names can be added later),
//!   and the typed operations in `arch/ops.rs` are written once on top of them.
//!   Every `unsafe` block carries a `// SAFETY:` comment.
//! * A hypercall function is safe when no argument can make Xen break the
//!   memory safety of the calling domain; it is an `unsafe fn` with a
//!   `# Safety` section when it changes what is mapped in the domain's
//!   physical address space or lets Xen write to memory named by a number
//!   (a frame number or guest physical address) rather than by a Rust
//!   reference.
//! * The ABI structs and the error types build and are tested on the host;
//!   only the trap itself is target-specific.
//! * Structs passed by pointer to Xen are little endian; like Xen on Arm
//!   itself this crate supports little-endian targets only.
//!
//! # Addresses
//!
//! Pointers to hypercall argument structs are guest *virtual* addresses (Xen
//! walks the guest's stage-1 tables). Frame numbers and "physical" addresses
//! stored *inside* the structs (`gpfn`, `host_addr`, `gmfn`, ...) are guest
//! physical addresses (IPAs on Arm). Memory shared with Xen or other domains
//! must be Normal Inner/Outer Write-Back, Inner-Shareable.

#![no_std]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "xen-hypercall supports little-endian targets only (Xen ABI structs are little endian)"
);

pub mod abi;
mod error;
mod types;

#[allow(unsafe_code)]
mod arch;

pub use error::{Error, GrantStatus, Result};
pub use types::{
    DomId, EvtchnPort, GrantRef, MapSpace, PAGE_SHIFT, PAGE_SIZE, Pfn, ShutdownReason,
};

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use arch::ops::*;
