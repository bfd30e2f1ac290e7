//! The small traits through which the crate reaches Xen.
//!
//! The embedder (an RTOS runtime, or the host simulation in [`crate::sim`])
//! implements them; this crate never touches hardware, hypercalls or raw
//! pointers itself.

use core::sync::atomic::Ordering;
use core::time::Duration;

/// A Xen domain id.
pub type DomId = u16;
/// A grant reference.
pub type GrantRef = u32;
/// An event-channel port number.
pub type Port = u32;

/// Size of a Xen page; the shared header is exactly one page.
pub const PAGE_SIZE: usize = 4096;

/// A platform error code (a negative or positive errno, as the platform
/// chooses). Kept as a plain integer so that every trait shares one error
/// type and the data path stays free of generics in its error values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// Volatile/atomic access to a set of pages shared with another domain.
///
/// Offsets are byte offsets from the start of the mapping. The crate
/// guarantees that every access it makes is in bounds (`off + size <= len()`,
/// checked once at setup) and naturally aligned for `u16`/`u32` accesses, so an
/// implementation may treat a violation as a bug and panic.
///
/// Every method must be a single access of the stated width as seen by the
/// peer (no tearing), must never be elided or merged by the compiler, and must
/// honour the given [`Ordering`] with respect to the other accesses made
/// through this trait (for example with `AtomicU32::from_ptr` over the mapped
/// page). Values are little-endian, as on every architecture Xen runs on.
pub trait SharedMemory {
    /// Length of the mapping in bytes.
    fn len(&self) -> usize;
    /// Whether the mapping is empty (never true for a valid mapping).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Atomic byte load.
    fn load_u8(&self, off: usize, order: Ordering) -> u8;
    /// Atomic byte store.
    fn store_u8(&self, off: usize, val: u8, order: Ordering);
    /// Atomic byte fetch-or; returns the previous value.
    fn fetch_or_u8(&self, off: usize, val: u8, order: Ordering) -> u8;
    /// Atomic byte fetch-and; returns the previous value.
    fn fetch_and_u8(&self, off: usize, val: u8, order: Ordering) -> u8;
    /// Atomic load of an aligned `u16`.
    fn load_u16(&self, off: usize, order: Ordering) -> u16;
    /// Atomic store of an aligned `u16`.
    fn store_u16(&self, off: usize, val: u16, order: Ordering);
    /// Atomic load of an aligned `u32`.
    fn load_u32(&self, off: usize, order: Ordering) -> u32;
    /// Atomic store of an aligned `u32`.
    fn store_u32(&self, off: usize, val: u32, order: Ordering);
    /// Copy `dst.len()` bytes out of the shared pages starting at `off`.
    /// Relaxed (volatile) semantics: ordering comes from the index accesses
    /// around it. The peer may change the bytes concurrently; the copy just
    /// has to stay in bounds.
    fn copy_out(&self, off: usize, dst: &mut [u8]);
    /// Copy `src` into the shared pages starting at `off` (relaxed).
    fn copy_in(&self, off: usize, src: &[u8]);
    /// A memory fence with the given ordering. The default is the CPU fence
    /// from `core`; model checkers override it.
    fn fence(&self, order: Ordering) {
        core::sync::atomic::fence(order);
    }
}

/// Optional "unmap notification", as Linux's gntalloc/gntdev offer: when the
/// mapping or grant goes away (also on a crash), clear the byte at
/// `byte_offset` of the first page and send an event on `port`. Platforms
/// that cannot do this ignore it; peer death is then detected only through
/// the orderly-close path or [`crate::Vchan::mark_peer_dead`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnmapNotify {
    /// Byte offset in the first page (the sharer's live byte).
    pub byte_offset: usize,
    /// Local event-channel port to signal.
    pub port: Port,
}

/// Grants local pages to a peer domain (server side).
pub trait GrantAlloc {
    /// The mapping of the granted pages.
    type Mem: SharedMemory;
    /// Allocate `refs.len()` zeroed, physically arbitrary pages, grant each
    /// to `peer` (read-write if `writable`), write the grant references into
    /// `refs` in page order and return the local mapping of all pages as one
    /// contiguous [`SharedMemory`] of `refs.len() * PAGE_SIZE` bytes.
    fn share(
        &mut self,
        peer: DomId,
        refs: &mut [GrantRef],
        writable: bool,
        notify: Option<UnmapNotify>,
    ) -> Result<Self::Mem, Errno>;
    /// End foreign access to the pages of `mem` and free them. The handle
    /// remembers its own grant references (the copy in the shared page is
    /// peer-writable and must not be trusted).
    fn unshare(&mut self, mem: Self::Mem);
}

/// Maps pages granted by a peer domain (client side).
pub trait GrantMap {
    /// The mapping of the foreign pages.
    type Mem: SharedMemory;
    /// Map the pages `refs` of domain `peer`, in order, as one contiguous
    /// [`SharedMemory`] of `refs.len() * PAGE_SIZE` bytes.
    fn map(
        &mut self,
        peer: DomId,
        refs: &[GrantRef],
        writable: bool,
        notify: Option<UnmapNotify>,
    ) -> Result<Self::Mem, Errno>;
    /// Unmap a mapping made by [`GrantMap::map`].
    fn unmap(&mut self, mem: Self::Mem);
}

/// One bound event channel.
pub trait EventChannel {
    /// The local port number.
    fn port(&self) -> Port;
    /// Send an event to the peer.
    fn notify(&mut self) -> Result<(), Errno>;
    /// Wait for an event: returns `Ok(true)` once one is (or already was)
    /// pending, consuming it and re-arming (unmasking) the port, `Ok(false)`
    /// if `timeout` elapsed first. `None` waits forever; `Some(ZERO)` polls.
    ///
    /// Events must latch: one sent before the wait starts is reported by it.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, Errno>;
}

/// Allocates and binds event channels.
pub trait EventChannels {
    /// A bound channel.
    type Channel: EventChannel;
    /// Allocate an unbound port that `remote` may bind to (server side).
    fn alloc_unbound(&mut self, remote: DomId) -> Result<(Self::Channel, Port), Errno>;
    /// Bind to `remote_port` of domain `remote` (client side).
    fn bind_interdomain(
        &mut self,
        remote: DomId,
        remote_port: Port,
    ) -> Result<Self::Channel, Errno>;
    /// Close a channel.
    fn close(&mut self, channel: Self::Channel);
}

/// Permissions of the advertised xenstore nodes: `owner` owns them (full
/// access), `reader` may read them, nobody else may access them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// Owning domain (the server).
    pub owner: DomId,
    /// Domain with read access (the client).
    pub reader: DomId,
}

/// The xenstore operations the channel needs.
pub trait Store {
    /// In ONE transaction, write each `(key, value)` of `entries` as node
    /// `dir/key` with permissions `perms`. Retrying on `EAGAIN` is the
    /// implementation's business.
    fn write_nodes(
        &mut self,
        dir: &str,
        entries: &[(&str, &str)],
        perms: Perms,
    ) -> Result<(), Errno>;
    /// Read node `dir/key` into `buf`; `Ok(None)` if it does not exist.
    /// Values longer than `buf` may be truncated (they are invalid anyway).
    fn read_node(&mut self, dir: &str, key: &str, buf: &mut [u8]) -> Result<Option<usize>, Errno>;
    /// Remove `dir` and everything below it (absent is not an error).
    fn remove(&mut self, dir: &str) -> Result<(), Errno>;
    /// Wait until something at or below `dir` may have changed (a watch
    /// fired), or until `timeout` elapses (`Ok(false)`). An implementation
    /// without watches may sleep a little and return `Ok(true)`.
    fn wait_change(&mut self, dir: &str, timeout: Option<Duration>) -> Result<bool, Errno>;
}

/// A monotonic clock, used only by the `*_timeout` operations.
pub trait Clock {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}
