//! Arch-free Xen protocol logic for `no_std` service domains.
//!
//! This crate holds the parts of the Xen paravirtual protocols that are pure
//! computation over bytes and integers, so that they can be tested on the
//! host and shared by every service domain:
//!
//! * [`xenstore`]: the xenstore wire codec (`xs_wire.h`), request encoding,
//!   reply parsing, a stream [`xenstore::Assembler`] and a sans-I/O
//!   [`xenstore::ClientCore`] that matches replies to requests and queues
//!   watch events.
//! * [`ring::bytes`]: index arithmetic for the byte rings used by xenstore
//!   and the PV console (`xenstore_domain_interface`, `xencons_interface`).
//! * [`ring::shared`]: index arithmetic for the request/response rings of
//!   `io/ring.h` (netif, blkif, ...), both front and back ends.
//! * `console` (feature `console`, linked only into console-domain): the
//!   PV console page (`io/console.h`): a validated view of its index
//!   block, bounded and sanitised guest lines, the echo queue, and a
//!   sans-I/O console backend over a caller's page access.
//! * `blkif` (feature `blkif`, linked only into storage-domain and the
//!   test frontend that drives it): blkif request/response layouts and
//!   request validation (`io/blkif.h`).
//! * [`netif`]: netif ring layouts, tx packet assembly and validation
//!   (extra-info, fragments, Linux netback's drop/fatal classification),
//!   rx request parsing and response encoding (`io/netif.h`).
//! * [`xenbus`]: [`xenbus::XenbusState`] and a pure backend state machine
//!   modelled on Linux's netback/blkback `frontend_changed` handlers.
//!
//! # Design rules
//!
//! * `#![no_std]`, `#![forbid(unsafe_code)]`, no allocation: every buffer has
//!   a fixed capacity (arrays or `heapless`).
//! * No I/O and no shared-memory access. The caller copies index values out
//!   of shared memory **once**, hands them to these functions, and performs
//!   the memory accesses and barriers itself. Everything here is a pure
//!   function of its inputs or a small state machine fed by the caller.
//! * Every value that comes from the peer (xenstored, a frontend, a ring
//!   index) is an untrusted claim. Malformed input — oversized lengths,
//!   unknown request ids, unterminated strings, bad UTF-8, unknown message
//!   types, producer indexes running ahead of the ring size — yields a typed
//!   error. Nothing here panics on peer input or indexes out of bounds
//!   (slices are accessed with `get`, arithmetic is checked or explicitly
//!   wrapping where the protocol defines wrap-around).
//! * Shape follows smoltcp's wire modules: checked views and parsed,
//!   borrowed representations rather than copies.
//!
//! Formats follow Xen's public headers (`xen/include/public/io/xs_wire.h`,
//! `io/ring.h`, `io/xenbus.h`) and `docs/misc/xenstore.txt`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

#[cfg(feature = "blkif")]
pub mod blkif;
#[cfg(feature = "console")]
pub mod console;
/// Fuzz drivers (feature `fuzzing`, host only; see fuzz/).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod le;
pub mod netif;
pub mod ring;
pub mod xenbus;
pub mod xenstore;
