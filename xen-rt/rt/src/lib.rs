//! # xen-rt: a small `no_std` runtime for Xen service domains
//!
//! What it is for: booting a Rust domain as a dom0less domU on Xen (aarch64
//! today, x86_64 next) and giving it the Xen services a driver or service
//! domain needs: console, event channels, grant tables, the xenstore client,
//! the xenbus backend state machine, time, an allocator, and a panic path
//! that shuts the domain down with a reason instead of hanging.
//!
//! Design rules:
//! - All `unsafe` lives in two modules: `arch` (asm, MMIO, page tables) and
//!   [`mem`] (memory shared with Xen or peers, the guest physical space).
//!   Each block carries a `// SAFETY:` comment. Everything else in this crate
//!   is checked by `#![deny(unsafe_code)]`; other crates forbid it.
//! - Memory a peer can write is reached only through [`mem::SharedPage`]
//!   accessors (volatile or atomic), copied once, then validated. Protocol
//!   logic (xenstore wire, ring index arithmetic, xenbus states) lives in
//!   the arch-free `xen-proto` crate and is tested on the host.
//! - A peer that misbehaves gets a typed error and is disconnected; the
//!   domain never panics on peer input.
//! - One vCPU, interrupts masked, waits with WFI: an event, the timer or a
//!   passed-through device's interrupt wakes the CPU, the runtime
//!   acknowledges it and the caller re-checks its condition. No interrupt
//!   handler, no lost wake-up, no busy polling.
//! - Resources that must be given back (grants, mappings) are owning,
//!   `#[must_use]` values.
#![no_std]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

#[allow(unsafe_code)]
mod arch;
#[allow(unsafe_code)]
pub mod mem;

pub mod console;
pub mod dt;
pub mod events;
pub mod gnttab;
mod panic;
pub mod runtime;
pub mod time;
#[cfg(feature = "vchan")]
pub mod vchan;
pub mod xenbus;
pub mod xenstore;

pub use runtime::Runtime;
#[cfg(feature = "virtio")]
pub use virtio_drivers;
pub use xen_hypercall as hypercall;
pub use xen_proto as proto;

/// The runtime's version, printed in banners.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
