//! A `no_std` byte channel between two Xen domains, wire-compatible with
//! libxenvchan (`xen/include/public/io/libxenvchan.h`,
//! `tools/libs/vchan/`), for any RTOS, and hardened against a hostile peer.
//!
//! # What it is for
//!
//! A *vchan* is a pair of byte rings in memory shared between two domains,
//! one ring per direction, plus one event channel. The *server* grants the
//! pages and advertises them in xenstore (`ring-ref` and `event-channel`
//! under a directory both sides agree on, conventionally
//! `/local/domain/<server>/data/vchan/<client>/<port>`); the *client* maps
//! them. After that the two ends are symmetric byte streams. This crate
//! speaks the libxenvchan protocol exactly, so either end may be a Linux
//! domain using libxenvchan (`vchan-node`, Qubes' qrexec, ...).
//!
//! # Design rules
//!
//! * `#![no_std]`, `#![forbid(unsafe_code)]`, no allocation anywhere: setup
//!   uses small stack arrays, the data path copies straight between the
//!   caller's buffer and the ring.
//! * The crate talks to Xen only through the small traits in [`platform`]:
//!   [`SharedMemory`] (atomic/volatile accessors over shared pages),
//!   [`GrantAlloc`] / [`GrantMap`], [`EventChannels`] / [`EventChannel`],
//!   [`Store`] and, for timeouts, [`Clock`]. The unsafe code (pointers into
//!   mapped pages, hypercalls) lives in the embedder.
//! * The peer is untrusted. Every peer-written field (its ring index, its
//!   live byte, the orders and grant list it published) is read **once** per
//!   use into a local, validated, and only then used; our own indices are
//!   kept locally and never re-read from shared memory. Ring offsets are
//!   always masked, so no access leaves the ring. A peer index that claims
//!   more data or space than the ring holds, or moves backwards, an order
//!   outside 10..=20 or a geometry that does not fit the header page, or a
//!   live byte with a value or transition the protocol forbids, yields a
//!   typed [`ProtocolError`] and closes the channel — where libxenvchan
//!   would report "0 bytes available" forever. Nothing panics on peer input.
//! * Barrier discipline follows libxenvchan: a consumer loads the producer
//!   index with Acquire before copying data out and publishes its consumer
//!   index with Release; a producer does the mirror image. Notifications use
//!   the `request_notify` / `send_notify` handshake: before sleeping, a side
//!   sets a bit in the *peer's* notify byte (atomic OR, full barrier) and
//!   re-reads the index; after moving an index, a side clears the bit in its
//!   *own* notify byte (atomic AND, full barrier) and sends an event only if
//!   it was set. Either the sleeper sees the new index or the mover sees the
//!   bit, so no wake-up is lost (checked exhaustively in
//!   `tests/interleave.rs`).
//!
//! # Using it
//!
//! ```
//! # #[cfg(feature = "sim")] {
//! use vchan::{Client, Server, sim::SimXen};
//! use embedded_io::{Read, Write};
//!
//! let xen = SimXen::new();
//! let (srv_dom, cli_dom) = (xen.domain(0), xen.domain(7));
//! let server = Server { local: 0, peer: 7, path: "/local/domain/0/data/vchan/7/echo",
//!                       read_order: 10, write_order: 11, initial_index: 0 };
//! // One SimDomain handle serves as grant table, event channels and store.
//! let (mut g, mut e, mut s) = (srv_dom.clone(), srv_dom.clone(), srv_dom);
//! let mut srv = server.listen(&mut g, &mut e, &mut s).unwrap();
//! let client = Client { peer: 0, path: server.path };
//! let (mut g2, mut e2, mut s2) = (cli_dom.clone(), cli_dom.clone(), cli_dom);
//! let mut cli = client.connect(&mut g2, &mut e2, &mut s2).unwrap();
//! cli.write_all(b"ping").unwrap();
//! let mut buf = [0; 4];
//! srv.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"ping");
//! Client::close(cli, &mut g2, &mut e2);
//! assert_eq!(srv.read(&mut buf).unwrap(), 0); // end of stream
//! server.close(srv, &mut g, &mut e, &mut s).unwrap();
//! # }
//! ```
//!
//! Besides [`embedded_io::Read`]/[`embedded_io::Write`] (blocking) a
//! [`Vchan`] offers non-blocking [`Vchan::try_read`]/[`Vchan::try_write`],
//! all-or-nothing [`Vchan::try_send`]/[`Vchan::try_recv`]
//! (`libxenvchan_send`/`recv`), timed variants,
//! [`Vchan::data_ready`]/[`Vchan::buffer_space`], [`Vchan::wait_event`] for
//! select-style loops, orderly close and a server reconnect path
//! ([`Server::relisten`]).
//!
//! End of stream: once the peer clears its live byte (orderly close, or the
//! platform's unmap notification on a crash, or
//! [`Vchan::mark_peer_dead`]), reads return what is left in the ring and
//! then `Ok(0)`; writes fail with [`Error::PeerClosed`].
//!
//! # Implementing the traits on an RTOS
//!
//! * [`SharedMemory`]: wrap the virtual address and length of a mapping.
//!   Implement `load_u32`/`store_u32`/`fetch_or_u8`/... with
//!   `AtomicU32::from_ptr(base.add(off))` (and `AtomicU8`, `AtomicU16`) and
//!   the given ordering; `copy_in`/`copy_out` with volatile (or relaxed
//!   atomic) word copies — never plain Rust slices over peer-writable memory.
//!   Keep the default `fence`.
//! * [`GrantAlloc`]: allocate zeroed pages, grant each to the peer
//!   (`gnttab` v1 entry: frame, domid, `GTF_permit_access`, read-only flag),
//!   write the refs, return a `SharedMemory` over them that also remembers
//!   its refs; `unshare` ends foreign access (deferring the free while the
//!   peer still maps a page). [`UnmapNotify`] may be ignored.
//! * [`GrantMap`]: `GNTTABOP_map_grant_ref` each ref into one contiguous
//!   virtual range (`GNTMAP_readonly` when `writable` is false); `unmap` is
//!   `GNTTABOP_unmap_grant_ref`.
//! * [`EventChannels`]: `EVTCHNOP_alloc_unbound`, `EVTCHNOP_bind_interdomain`,
//!   `EVTCHNOP_close`. [`EventChannel::notify`] is `EVTCHNOP_send`;
//!   [`EventChannel::wait`] blocks the calling task on a per-port flag set
//!   by the event upcall, clears it and unmasks the port. The flag must
//!   latch events that arrive before the wait starts.
//! * [`Store`]: a xenstore client: `write_nodes` is `TRANSACTION_START`, a
//!   `WRITE` and `SET_PERMS` per node, `TRANSACTION_END` (retried on
//!   `EAGAIN`); `read_node` is `READ`; `remove` is `RM`; `wait_change` waits
//!   for a `WATCH` event on the directory.
//! * [`Clock`]: the system's monotonic timer.
//!
//! ```
//! use core::sync::atomic::{AtomicU32, Ordering};
//! use vchan::SharedMemory;
//!
//! /// A SharedMemory over borrowed atomic words; a runtime's real one wraps a
//! /// mapped page range and uses `AtomicU32::from_ptr` in its unsafe code.
//! struct Words<'a>(&'a [AtomicU32]);
//! impl SharedMemory for Words<'_> {
//!     fn len(&self) -> usize { self.0.len() * 4 }
//!     fn load_u32(&self, off: usize, o: Ordering) -> u32 { self.0[off / 4].load(o) }
//!     fn store_u32(&self, off: usize, v: u32, o: Ordering) { self.0[off / 4].store(v, o) }
//!     fn fetch_or_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
//!         let sh = (off % 4) * 8;
//!         (self.0[off / 4].fetch_or((v as u32) << sh, o) >> sh) as u8
//!     }
//!     // ... the other byte/halfword accessors and the copies likewise ...
//! #   fn load_u8(&self, _: usize, _: Ordering) -> u8 { 0 }
//! #   fn store_u8(&self, _: usize, _: u8, _: Ordering) {}
//! #   fn fetch_and_u8(&self, _: usize, _: u8, _: Ordering) -> u8 { 0 }
//! #   fn load_u16(&self, _: usize, _: Ordering) -> u16 { 0 }
//! #   fn store_u16(&self, _: usize, _: u16, _: Ordering) {}
//! #   fn copy_out(&self, _: usize, _: &mut [u8]) {}
//! #   fn copy_in(&self, _: usize, _: &[u8]) {}
//! }
//! ```
//!
//! A complete host implementation of every trait, usable as a reference, is
//! the `sim` module (feature `sim`).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "sim")]
extern crate std;

mod chan;
mod error;
pub mod layout;
pub mod platform;
mod setup;
#[cfg(feature = "sim")]
pub mod sim;

pub use chan::{Parts, PeerState, Role, Vchan};
pub use error::{Error, ProtocolError};
pub use layout::Geometry;
pub use platform::{
    Clock, DomId, Errno, EventChannel, EventChannels, GrantAlloc, GrantMap, GrantRef, PAGE_SIZE,
    Perms, Port, SharedMemory, Store, UnmapNotify,
};
pub use setup::{Client, KEY_EVENT_CHANNEL, KEY_RING_REF, Server, conventional_path, parse_u32};
