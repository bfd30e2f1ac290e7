//! Grant tables, version 1: granting our pages to a peer (and ending that
//! access), mapping a peer's grants, and grant copy.
//!
//! Rules: a grant is an owning value. [`GrantedPage`] holds the page and its
//! reference; the page comes back only from [`GrantTable::end_access`],
//! which fails while the peer still maps it. The type is `#[must_use]`, and
//! dropping one without ending access leaks the page on purpose (the peer
//! may still write it) and says so on the console. [`MappedGrant`] is the
//! same for a peer's page we map.

use core::sync::atomic::Ordering;

use alloc::vec::Vec;
use xen_hypercall::{self as hc, DomId, GrantRef};

use crate::mem::{self, ForeignSpace, OwnedPage, SharedPage, SharedView};

/// The first references are reserved for the toolstack (xenstore and
/// console pages).
const RESERVED_ENTRIES: u32 = 8;
const ENTRY_SIZE: usize = 8;
const ENTRIES_PER_FRAME: u32 = (mem::PAGE_SIZE / ENTRY_SIZE) as u32;
const MAX_FRAMES: usize = 4;

const GTF_PERMIT_ACCESS: u16 = 1;
const GTF_READONLY: u16 = 1 << 2;
const GTF_READING: u16 = 1 << 3;
const GTF_WRITING: u16 = 1 << 4;

/// Errors of grant operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantError {
    Hypercall(hc::Error),
    Status(hc::GrantStatus),
    /// Every reference of the table is in use.
    TableFull,
    /// The peer still maps or copies the page.
    StillInUse,
    Memory(mem::MemError),
}

impl From<hc::Error> for GrantError {
    fn from(e: hc::Error) -> Self {
        match e {
            hc::Error::Grant(s) => GrantError::Status(s),
            e => GrantError::Hypercall(e),
        }
    }
}

impl From<mem::MemError> for GrantError {
    fn from(e: mem::MemError) -> Self {
        GrantError::Memory(e)
    }
}

/// Our grant table: its frames mapped into our physical space, and the
/// free references.
pub struct GrantTable {
    frames: heapless::Vec<SharedPage, MAX_FRAMES>,
    frame_base: usize,
    free: Vec<u32>,
}

impl GrantTable {
    /// Maps the first frame at the device tree's grant-table region.
    pub(crate) fn new(frame_base: usize) -> Result<Self, GrantError> {
        let mut table = Self {
            frames: heapless::Vec::new(),
            frame_base,
            free: Vec::new(),
        };
        table.grow()?;
        Ok(table)
    }

    fn grow(&mut self) -> Result<(), GrantError> {
        let idx = self.frames.len();
        if idx >= MAX_FRAMES {
            return Err(GrantError::TableFull);
        }
        let slot = self.frame_base + idx * mem::PAGE_SIZE;
        let page = mem::map_xen_page(hc::MapSpace::GrantTable, idx as u64, slot)?;
        let first = if idx == 0 {
            RESERVED_ENTRIES
        } else {
            idx as u32 * ENTRIES_PER_FRAME
        };
        let end = (idx as u32 + 1) * ENTRIES_PER_FRAME;
        self.free.extend((first..end).rev());
        let _ = self.frames.push(page);
        Ok(())
    }

    fn entry(&self, gref: u32) -> Option<(&SharedPage, usize)> {
        let frame = self.frames.get((gref / ENTRIES_PER_FRAME) as usize)?;
        Some((frame, (gref % ENTRIES_PER_FRAME) as usize * ENTRY_SIZE))
    }

    fn alloc_ref(&mut self) -> Result<u32, GrantError> {
        if self.free.is_empty() {
            self.grow()?;
        }
        self.free.pop().ok_or(GrantError::TableFull)
    }

    /// Grants `peer` access to `page`.
    pub fn grant(
        &mut self,
        page: OwnedPage,
        peer: DomId,
        readonly: bool,
    ) -> Result<GrantedPage, (OwnedPage, GrantError)> {
        let gref = match self.alloc_ref() {
            Ok(r) => r,
            Err(e) => return Err((page, e)),
        };
        let Some((frame, off)) = self.entry(gref) else {
            return Err((page, GrantError::TableFull));
        };
        let frame_number = page.pfn() as u32;
        // Fill domid and frame first; the flags store (Release) publishes
        // the entry to Xen.
        let ok = frame.store_u16(off + 2, peer.0, Ordering::Relaxed).is_ok()
            && frame
                .store_u32(off + 4, frame_number, Ordering::Relaxed)
                .is_ok()
            && frame
                .store_u16(
                    off,
                    GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 },
                    Ordering::Release,
                )
                .is_ok();
        if !ok {
            return Err((page, GrantError::TableFull));
        }
        Ok(GrantedPage {
            page: Some(page),
            gref: GrantRef(gref),
            peer,
        })
    }

    /// Ends the peer's access and gives the page back, or gives the grant
    /// back if the peer still uses it.
    pub fn end_access(
        &mut self,
        mut granted: GrantedPage,
    ) -> Result<OwnedPage, (GrantedPage, GrantError)> {
        let gref = granted.gref.0;
        let Some((frame, off)) = self.entry(gref) else {
            return Err((granted, GrantError::Status(hc::GrantStatus::BadGntref)));
        };
        let flags = frame
            .load_u16(off, Ordering::Acquire)
            .unwrap_or(GTF_READING);
        if flags & (GTF_READING | GTF_WRITING) != 0 {
            return Err((granted, GrantError::StillInUse));
        }
        // Xen sets READING/WRITING with an atomic update of the same word;
        // the exchange fails if it did so since our load.
        match frame.cmpxchg_u16(off, flags, 0) {
            Ok(Ok(_)) => {}
            _ => return Err((granted, GrantError::StillInUse)),
        }
        self.free.push(gref);
        match granted.page.take() {
            Some(page) => Ok(page),
            None => Err((granted, GrantError::StillInUse)),
        }
    }

    /// Maps `gref` of `peer` into a free slot of `space`.
    pub fn map(
        &mut self,
        space: &mut ForeignSpace,
        peer: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<MappedGrant, GrantError> {
        let slot = space.take()?;
        match mem::map_grant(peer, gref, slot, readonly) {
            Ok((page, handle)) => Ok(MappedGrant {
                page: Some(page),
                handle,
                peer,
                gref,
            }),
            Err(e) => {
                space.give_back(slot);
                Err(e.into())
            }
        }
    }

    /// Unmaps a grant mapped by [`GrantTable::map`].
    pub fn unmap(
        &mut self,
        space: &mut ForeignSpace,
        mut mapped: MappedGrant,
    ) -> Result<(), (MappedGrant, GrantError)> {
        let Some(page) = mapped.page.take() else {
            return Ok(());
        };
        match mem::unmap_grant(page, mapped.handle) {
            Ok(slot) => {
                space.give_back(slot);
                Ok(())
            }
            Err((page, e)) => {
                mapped.page = Some(page);
                Err((mapped, e.into()))
            }
        }
    }
}

/// Copies `out.len()` bytes at `offset` of a peer's granted page into `out`
/// (GNTTABOP_copy; the peer's page is never mapped).
pub fn copy_from(
    peer: DomId,
    gref: GrantRef,
    offset: u16,
    out: &mut [u8],
) -> Result<(), GrantError> {
    mem::grant_copy_from(peer, gref, offset, out).map_err(Into::into)
}

/// Copies `data` into a peer's granted page at `offset` (GNTTABOP_copy;
/// the peer's page is never mapped).
pub fn copy_to(peer: DomId, gref: GrantRef, offset: u16, data: &[u8]) -> Result<(), GrantError> {
    mem::grant_copy_to(peer, gref, offset, data).map_err(Into::into)
}

pub use crate::mem::{CopyBuffer, CopySegment};

/// Copies many pieces between the peers' granted pages and a local buffer
/// with as few GNTTABOP_copy hypercalls as possible; `ok[i]` tells whether
/// segment `i` was copied (see [`mem::grant_copy_batch`]).
pub fn copy_batch(
    segs: &[CopySegment],
    buf: CopyBuffer<'_>,
    ok: &mut [bool],
) -> Result<(), GrantError> {
    mem::grant_copy_batch(segs, buf, ok).map_err(Into::into)
}

/// One of our pages, granted to a peer.
#[must_use = "a granted page must be returned with GrantTable::end_access"]
pub struct GrantedPage {
    page: Option<OwnedPage>,
    gref: GrantRef,
    peer: DomId,
}

impl GrantedPage {
    pub fn gref(&self) -> GrantRef {
        self.gref
    }
    pub fn peer(&self) -> DomId {
        self.peer
    }
    /// The page as the peer sees it (accessed through volatile/atomic
    /// accessors, since the peer may write it).
    pub fn shared(&self) -> Option<SharedView<'_>> {
        self.page.as_ref().map(OwnedPage::shared)
    }
}

impl Drop for GrantedPage {
    fn drop(&mut self) {
        if let Some(page) = self.page.take() {
            crate::println!(
                "xen-rt: grant {} to dom{} dropped without end_access: page leaked",
                self.gref.0,
                self.peer.0
            );
            core::mem::forget(page);
        }
    }
}

/// A peer's page mapped into our physical space.
#[must_use = "a mapped grant must be returned with GrantTable::unmap"]
pub struct MappedGrant {
    page: Option<SharedPage>,
    handle: u32,
    peer: DomId,
    gref: GrantRef,
}

impl MappedGrant {
    pub fn page(&self) -> Option<&SharedPage> {
        self.page.as_ref()
    }
    pub fn gref(&self) -> GrantRef {
        self.gref
    }
    pub fn peer(&self) -> DomId {
        self.peer
    }
}

impl Drop for MappedGrant {
    fn drop(&mut self) {
        if self.page.is_some() {
            crate::println!(
                "xen-rt: mapping of dom{} grant {} dropped without unmap: address space leaked",
                self.peer.0,
                self.gref.0
            );
        }
    }
}
