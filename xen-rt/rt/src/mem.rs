//! Memory shared with Xen or with a peer domain, and the guest physical
//! address space: the only module of xen-rt besides `arch` that holds
//! `unsafe`.
//!
//! Rules: memory a peer can write is never turned into a Rust reference or
//! slice. It is reached through [`SharedPage`], whose accessors are volatile
//! or atomic, bounds-checked against the page, and explicit about ordering.
//! Callers copy a value out once, validate it, then use the copy.
//!
//! The guest physical space is identity-mapped by `arch::mmu`, so a guest
//! physical address is also the address the code uses.

use core::ptr;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use alloc::alloc::{Layout, alloc_zeroed, dealloc};

pub const PAGE_SIZE: usize = 4096;

/// Guest frame number of a guest physical address.
pub fn pfn_of(addr: usize) -> u64 {
    (addr / PAGE_SIZE) as u64
}

/// Errors of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// Offset or length outside the page.
    OutOfBounds,
    /// Misaligned atomic access.
    Misaligned,
    /// No guest physical space left to map foreign pages.
    AddressSpaceExhausted,
    /// The heap could not provide a page.
    OutOfMemory,
}

/// One 4 KiB page of memory that Xen or another domain may change at any
/// time (the xenstore ring, shared_info, a granted or mapped page).
#[derive(Debug)]
pub struct SharedPage {
    addr: usize,
}

impl SharedPage {
    /// # Safety (module-private)
    /// `addr` is page aligned, identity-mapped Normal memory that stays
    /// mapped for as long as the value exists, and no Rust reference to it
    /// exists.
    const fn at(addr: usize) -> Self {
        Self { addr }
    }

    /// Guest physical address of the page.
    pub fn addr(&self) -> usize {
        self.addr
    }

    pub fn pfn(&self) -> u64 {
        pfn_of(self.addr)
    }

    fn check(&self, offset: usize, len: usize, align: usize) -> Result<usize, MemError> {
        let end = offset.checked_add(len).ok_or(MemError::OutOfBounds)?;
        if end > PAGE_SIZE {
            return Err(MemError::OutOfBounds);
        }
        if !offset.is_multiple_of(align) {
            return Err(MemError::Misaligned);
        }
        Ok(self.addr + offset)
    }

    pub fn read_u8(&self, offset: usize) -> Result<u8, MemError> {
        let p = self.check(offset, 1, 1)?;
        // SAFETY: `p` lies inside the mapped page (checked above); volatile
        // because the peer may write it concurrently.
        Ok(unsafe { ptr::read_volatile(p as *const u8) })
    }

    pub fn write_u8(&self, offset: usize, value: u8) -> Result<(), MemError> {
        let p = self.check(offset, 1, 1)?;
        // SAFETY: as in read_u8.
        unsafe { ptr::write_volatile(p as *mut u8, value) };
        Ok(())
    }

    fn atomic_u8(&self, offset: usize) -> Result<&AtomicU8, MemError> {
        let p = self.check(offset, 1, 1)?;
        // SAFETY: in bounds (checked); atomics are the sanctioned way to
        // share a location with a concurrent writer, and the reference lives
        // no longer than `self`, which keeps the page mapped.
        Ok(unsafe { AtomicU8::from_ptr(p as *mut u8) })
    }

    /// Atomic byte load.
    pub fn load_u8(&self, offset: usize, order: Ordering) -> Result<u8, MemError> {
        Ok(self.atomic_u8(offset)?.load(order))
    }
    /// Atomic byte store.
    pub fn store_u8(&self, offset: usize, v: u8, order: Ordering) -> Result<(), MemError> {
        self.atomic_u8(offset)?.store(v, order);
        Ok(())
    }
    /// Atomic byte fetch-or; returns the previous value.
    pub fn fetch_or_u8(&self, offset: usize, v: u8, order: Ordering) -> Result<u8, MemError> {
        Ok(self.atomic_u8(offset)?.fetch_or(v, order))
    }
    /// Atomic byte fetch-and; returns the previous value.
    pub fn fetch_and_u8(&self, offset: usize, v: u8, order: Ordering) -> Result<u8, MemError> {
        Ok(self.atomic_u8(offset)?.fetch_and(v, order))
    }

    fn atomic_u16(&self, offset: usize) -> Result<&AtomicU16, MemError> {
        let p = self.check(offset, 2, 2)?;
        // SAFETY: in bounds and 2-byte aligned (checked); an atomic may share
        // a location with a concurrent writer; the reference lives no longer
        // than `self`, which keeps the page mapped.
        Ok(unsafe { AtomicU16::from_ptr(p as *mut u16) })
    }

    fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32, MemError> {
        let p = self.check(offset, 4, 4)?;
        // SAFETY: as in atomic_u16, 4-byte aligned.
        Ok(unsafe { AtomicU32::from_ptr(p as *mut u32) })
    }

    fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64, MemError> {
        let p = self.check(offset, 8, 8)?;
        // SAFETY: as in atomic_u16, 8-byte aligned.
        Ok(unsafe { AtomicU64::from_ptr(p as *mut u64) })
    }

    pub fn load_u16(&self, offset: usize, order: Ordering) -> Result<u16, MemError> {
        Ok(self.atomic_u16(offset)?.load(order))
    }
    pub fn store_u16(&self, offset: usize, v: u16, order: Ordering) -> Result<(), MemError> {
        self.atomic_u16(offset)?.store(v, order);
        Ok(())
    }
    /// Compare-and-exchange on a 16-bit field (grant entry flags).
    pub fn cmpxchg_u16(
        &self,
        offset: usize,
        current: u16,
        new: u16,
    ) -> Result<Result<u16, u16>, MemError> {
        Ok(self.atomic_u16(offset)?.compare_exchange(
            current,
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ))
    }
    pub fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, MemError> {
        Ok(self.atomic_u32(offset)?.load(order))
    }
    pub fn store_u32(&self, offset: usize, v: u32, order: Ordering) -> Result<(), MemError> {
        self.atomic_u32(offset)?.store(v, order);
        Ok(())
    }
    pub fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, MemError> {
        Ok(self.atomic_u64(offset)?.load(order))
    }
    pub fn swap_u64(&self, offset: usize, v: u64, order: Ordering) -> Result<u64, MemError> {
        Ok(self.atomic_u64(offset)?.swap(v, order))
    }
    pub fn fetch_and_u64(&self, offset: usize, v: u64, order: Ordering) -> Result<u64, MemError> {
        Ok(self.atomic_u64(offset)?.fetch_and(v, order))
    }

    /// Copies `out.len()` bytes starting at `offset` out of the page:
    /// volatile 64-bit loads for the 8-byte-aligned middle, bytes at the
    /// edges. The peer may change the bytes meanwhile; each word is read
    /// once.
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> Result<(), MemError> {
        let p = self.check(offset, out.len(), 1)?;
        let (head, words, tail) = split_aligned(p, out.len());
        let (h, rest) = out.split_at_mut(head);
        let (w, t) = rest.split_at_mut(words * 8);
        for (i, byte) in h.iter_mut().enumerate() {
            // SAFETY: `p + i` is inside the page (whole range checked).
            *byte = unsafe { ptr::read_volatile((p + i) as *const u8) };
        }
        let wp = p + head;
        for (i, chunk) in w.chunks_exact_mut(8).enumerate() {
            // SAFETY: `wp + 8 i` is 8-byte aligned (split_aligned) and the
            // word lies inside the checked range.
            let v = unsafe { ptr::read_volatile((wp + 8 * i) as *const u64) };
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        let tp = wp + words * 8;
        debug_assert_eq!(t.len(), tail);
        for (i, byte) in t.iter_mut().enumerate() {
            // SAFETY: inside the checked range.
            *byte = unsafe { ptr::read_volatile((tp + i) as *const u8) };
        }
        Ok(())
    }

    /// Copies `data` into the page at `offset` (volatile 64-bit stores for
    /// the aligned middle, bytes at the edges).
    pub fn copy_in(&self, offset: usize, data: &[u8]) -> Result<(), MemError> {
        let p = self.check(offset, data.len(), 1)?;
        let (head, words, _tail) = split_aligned(p, data.len());
        let (h, rest) = data.split_at(head);
        let (w, t) = rest.split_at(words * 8);
        for (i, byte) in h.iter().enumerate() {
            // SAFETY: `p + i` is inside the page (whole range checked).
            unsafe { ptr::write_volatile((p + i) as *mut u8, *byte) };
        }
        let wp = p + head;
        for (i, chunk) in w.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            // SAFETY: `wp + 8 i` is 8-byte aligned (split_aligned) and the
            // word lies inside the checked range.
            unsafe { ptr::write_volatile((wp + 8 * i) as *mut u64, u64::from_ne_bytes(b)) };
        }
        let tp = wp + words * 8;
        for (i, byte) in t.iter().enumerate() {
            // SAFETY: inside the checked range.
            unsafe { ptr::write_volatile((tp + i) as *mut u8, *byte) };
        }
        Ok(())
    }

    /// Fills the page with zeroes.
    pub fn zero(&self) {
        for i in (0..PAGE_SIZE).step_by(8) {
            // SAFETY: 8-byte aligned offsets inside the page.
            unsafe { ptr::write_volatile((self.addr + i) as *mut u64, 0) };
        }
    }
}

/// Splits the byte range `[addr, addr + len)` into a head of bytes up to
/// the first 8-byte boundary, a number of whole aligned 8-byte words and a
/// tail of bytes: `(head, words, tail)` with `head + 8 words + tail == len`.
fn split_aligned(addr: usize, len: usize) -> (usize, usize, usize) {
    let head = ((8 - addr % 8) % 8).min(len);
    let words = (len - head) / 8;
    (head, words, len - head - words * 8)
}

/// A page of our own RAM, zeroed, owned by this value. It becomes a
/// [`SharedPage`] view when granted to a peer.
#[derive(Debug)]
pub struct OwnedPage {
    addr: usize,
}

impl OwnedPage {
    pub fn new() -> Result<Self, MemError> {
        let layout = page_layout();
        // SAFETY: the layout has non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        if p.is_null() {
            return Err(MemError::OutOfMemory);
        }
        Ok(Self { addr: p as usize })
    }

    pub fn addr(&self) -> usize {
        self.addr
    }

    pub fn pfn(&self) -> u64 {
        pfn_of(self.addr)
    }

    /// A shared view of this page; valid while `self` lives (the borrow
    /// ties them together).
    pub fn shared(&self) -> SharedView<'_> {
        SharedView {
            page: SharedPage::at(self.addr),
            _owner: core::marker::PhantomData,
        }
    }
}

impl Drop for OwnedPage {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout, freed once.
        unsafe { dealloc(self.addr as *mut u8, page_layout()) };
    }
}

/// A [`SharedPage`] borrowed from something that owns the memory.
pub struct SharedView<'a> {
    page: SharedPage,
    _owner: core::marker::PhantomData<&'a ()>,
}

impl core::ops::Deref for SharedView<'_> {
    type Target = SharedPage;
    fn deref(&self) -> &SharedPage {
        &self.page
    }
}

fn page_layout() -> Layout {
    // PAGE_SIZE is a non-zero power of two.
    Layout::from_size_align(PAGE_SIZE, PAGE_SIZE).unwrap_or(Layout::new::<u8>())
}

/// Guest physical space (from the device tree's extended regions) where Xen
/// can place foreign or hypervisor pages: shared_info, grant-table frames
/// and mapped grants. A bump allocator with a free list of single pages.
pub struct ForeignSpace {
    next: usize,
    end: usize,
    free: [usize; 64],
    free_count: usize,
}

impl ForeignSpace {
    pub const fn new(base: usize, size: usize) -> Self {
        Self {
            next: base,
            end: base + size,
            free: [0; 64],
            free_count: 0,
        }
    }

    /// A free page-sized slot. The slot is not backed by memory until Xen
    /// maps something there.
    pub fn take(&mut self) -> Result<usize, MemError> {
        if self.free_count > 0 {
            self.free_count -= 1;
            return Ok(self.free[self.free_count]);
        }
        if self.next + PAGE_SIZE > self.end {
            return Err(MemError::AddressSpaceExhausted);
        }
        let a = self.next;
        self.next += PAGE_SIZE;
        Ok(a)
    }

    /// Returns a slot whose mapping Xen has removed.
    pub fn give_back(&mut self, addr: usize) {
        if self.free_count < self.free.len() {
            self.free[self.free_count] = addr;
            self.free_count += 1;
        }
    }
}

/// Wraps a page Xen mapped at a slot of the foreign space (shared_info, a
/// grant-table frame, a mapped grant) or a magic page Xen provides (the
/// xenstore ring at HVM_PARAM_STORE_PFN).
pub fn xen_page(addr: usize) -> SharedPage {
    SharedPage::at(addr & !(PAGE_SIZE - 1))
}

/// Points Xen's add_to_physmap at `slot` for `space`/`idx` and returns the
/// page view.
pub fn map_xen_page(
    space: xen_hypercall::MapSpace,
    idx: u64,
    slot: usize,
) -> Result<SharedPage, xen_hypercall::Error> {
    // SAFETY: `slot` comes from ForeignSpace, guest physical space that no
    // RAM and no other mapping occupies, so replacing its (absent) content
    // cannot invalidate any Rust object.
    unsafe { xen_hypercall::add_to_physmap(space, idx, xen_hypercall::Pfn(pfn_of(slot)))? };
    Ok(SharedPage::at(slot))
}

/// Maps a peer's grant at `slot` (a free page of the foreign space).
/// Returns the page view and the map handle.
pub fn map_grant(
    peer: xen_hypercall::DomId,
    gref: xen_hypercall::GrantRef,
    slot: usize,
    readonly: bool,
) -> Result<(SharedPage, u32), xen_hypercall::Error> {
    use xen_hypercall::abi::{GNTMAP_HOST_MAP, GNTMAP_READONLY};
    let flags = GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 };
    let mut op = xen_hypercall::abi::GnttabMapGrantRef::new(slot as u64, flags, gref, peer);
    // SAFETY: as in map_xen_page: the slot holds nothing, and the mapped
    // page is only ever reached through the SharedPage view.
    unsafe { xen_hypercall::gnttab_map_grant_ref(core::slice::from_mut(&mut op))? };
    op.status().into_result()?;
    Ok((SharedPage::at(slot), op.handle))
}

/// Unmaps a grant mapped by [`map_grant`]; returns the freed slot. On
/// failure the view is given back.
pub fn unmap_grant(
    page: SharedPage,
    handle: u32,
) -> Result<usize, (SharedPage, xen_hypercall::Error)> {
    let mut op = xen_hypercall::abi::GnttabUnmapGrantRef::new(page.addr as u64, handle);
    // SAFETY: the mapping was created by map_grant at this address and the
    // only view of it is consumed here (or handed back on failure).
    if let Err(e) = unsafe { xen_hypercall::gnttab_unmap_grant_ref(core::slice::from_mut(&mut op)) }
    {
        return Err((page, e));
    }
    if let Err(e) = op.status().into_result() {
        return Err((page, e));
    }
    Ok(page.addr)
}

/// Copies from a peer's granted page into `out` with GNTTABOP_copy. `out`
/// may straddle two of our pages; one copy op is issued per piece.
pub fn grant_copy_from(
    peer: xen_hypercall::DomId,
    gref: xen_hypercall::GrantRef,
    offset: u16,
    out: &mut [u8],
) -> Result<(), xen_hypercall::Error> {
    if offset as usize + out.len() > PAGE_SIZE {
        return Err(xen_hypercall::Error::Grant(
            xen_hypercall::GrantStatus::BadCopyArg,
        ));
    }
    let mut ops = [xen_hypercall::abi::GnttabCopy::default(); 2];
    let mut n = 0;
    let mut done = 0usize;
    while done < out.len() {
        let dst = out.as_ptr() as usize + done;
        let in_page = PAGE_SIZE - (dst % PAGE_SIZE);
        let len = in_page.min(out.len() - done);
        ops[n] = xen_hypercall::abi::GnttabCopy::from_grant(
            peer,
            gref,
            offset + done as u16,
            xen_hypercall::Pfn(pfn_of(dst)),
            (dst % PAGE_SIZE) as u16,
            len as u16,
        );
        n += 1;
        done += len;
    }
    // SAFETY: each op writes only inside `out`, which we borrow mutably
    // (destination frames and offsets computed from its address, lengths
    // bounded by its length); the buffer is our own identity-mapped RAM.
    unsafe { xen_hypercall::gnttab_copy(&mut ops[..n])? };
    for op in &ops[..n] {
        op.status().into_result()?;
    }
    Ok(())
}

/// Copies `data` into a peer's granted page at `offset` with GNTTABOP_copy
/// (the peer must have granted it writable). `data` may straddle two of
/// our pages; one copy op is issued per piece.
pub fn grant_copy_to(
    peer: xen_hypercall::DomId,
    gref: xen_hypercall::GrantRef,
    offset: u16,
    data: &[u8],
) -> Result<(), xen_hypercall::Error> {
    if offset as usize + data.len() > PAGE_SIZE {
        return Err(xen_hypercall::Error::Grant(
            xen_hypercall::GrantStatus::BadCopyArg,
        ));
    }
    let mut ops = [xen_hypercall::abi::GnttabCopy::default(); 2];
    let mut n = 0;
    let mut done = 0usize;
    while done < data.len() {
        let src = data.as_ptr() as usize + done;
        let in_page = PAGE_SIZE - (src % PAGE_SIZE);
        let len = in_page.min(data.len() - done);
        ops[n] = xen_hypercall::abi::GnttabCopy::to_grant(
            xen_hypercall::Pfn(pfn_of(src)),
            (src % PAGE_SIZE) as u16,
            peer,
            gref,
            offset + done as u16,
            len as u16,
        );
        n += 1;
        done += len;
    }
    // SAFETY: each op only reads inside `data`, which we borrow (source
    // frames and offsets computed from its address, lengths bounded by its
    // length); the destination is the peer's grant, which Xen checks.
    unsafe { xen_hypercall::gnttab_copy(&mut ops[..n])? };
    for op in &ops[..n] {
        op.status().into_result()?;
    }
    Ok(())
}

/// One piece of a batched grant copy ([`grant_copy_batch`]): `len` bytes
/// at `offset` in `peer`'s granted page `gref`, and at `at` in the local
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopySegment {
    pub peer: xen_hypercall::DomId,
    pub gref: xen_hypercall::GrantRef,
    pub offset: u16,
    pub at: usize,
    pub len: u16,
}

/// The local side of a batched grant copy.
pub enum CopyBuffer<'a> {
    /// Copy from the peers' pages into this buffer.
    Fill(&'a mut [u8]),
    /// Copy this buffer into the peers' pages (granted writable).
    Drain(&'a [u8]),
}

/// Copy ops issued per GNTTABOP_copy hypercall.
const COPY_BATCH: usize = 64;

/// Carries out every segment with as few GNTTABOP_copy hypercalls as
/// possible (a segment straddling two of our pages becomes two ops).
/// `ok[i]` (for `i < segs.len()`) tells whether segment `i` was copied.
/// `Err` if a segment lies outside the buffer or its page (nothing is
/// copied then), if `ok` is too short, or if a hypercall failed.
pub fn grant_copy_batch(
    segs: &[CopySegment],
    mut buf: CopyBuffer<'_>,
    ok: &mut [bool],
) -> Result<(), xen_hypercall::Error> {
    use xen_hypercall::abi::GnttabCopy;
    let bad = xen_hypercall::Error::Grant(xen_hypercall::GrantStatus::BadCopyArg);
    let (base, size, fill) = match &mut buf {
        CopyBuffer::Fill(b) => (b.as_mut_ptr() as usize, b.len(), true),
        CopyBuffer::Drain(b) => (b.as_ptr() as usize, b.len(), false),
    };
    let fits = |s: &CopySegment| {
        usize::from(s.offset) + usize::from(s.len) <= PAGE_SIZE
            && s.at
                .checked_add(usize::from(s.len))
                .is_some_and(|e| e <= size)
    };
    if ok.len() < segs.len() || !segs.iter().all(fits) {
        return Err(bad);
    }
    let mut ops = [GnttabCopy::default(); COPY_BATCH];
    let mut owner = [0usize; COPY_BATCH];
    let mut n = 0;
    for (i, s) in segs.iter().enumerate() {
        if let Some(f) = ok.get_mut(i) {
            *f = true;
        }
        let mut done = 0usize;
        while done < usize::from(s.len) {
            let local = base + s.at + done;
            let len = (PAGE_SIZE - local % PAGE_SIZE).min(usize::from(s.len) - done);
            let (pfn, loff) = (
                xen_hypercall::Pfn(pfn_of(local)),
                (local % PAGE_SIZE) as u16,
            );
            let remote = s.offset + done as u16;
            let (Some(op), Some(o)) = (ops.get_mut(n), owner.get_mut(n)) else {
                return Err(bad);
            };
            *op = if fill {
                GnttabCopy::from_grant(s.peer, s.gref, remote, pfn, loff, len as u16)
            } else {
                GnttabCopy::to_grant(pfn, loff, s.peer, s.gref, remote, len as u16)
            };
            *o = i;
            n += 1;
            done += len;
            if n == COPY_BATCH {
                copy_ops(&mut ops[..n], &owner[..n], ok, &mut buf)?;
                n = 0;
            }
        }
    }
    copy_ops(&mut ops[..n], &owner[..n], ok, &mut buf)
}

/// Issues one GNTTABOP_copy for `ops` (built by [`grant_copy_batch`] over
/// `_buf`) and clears `ok[owner[k]]` for every op that failed.
fn copy_ops(
    ops: &mut [xen_hypercall::abi::GnttabCopy],
    owner: &[usize],
    ok: &mut [bool],
    _buf: &mut CopyBuffer<'_>,
) -> Result<(), xen_hypercall::Error> {
    if ops.is_empty() {
        return Ok(());
    }
    // Every op was built by grant_copy_batch from a segment checked to lie
    // inside the buffer `_buf` borrows exclusively here (our own
    // identity-mapped RAM; frames, offsets and lengths from its address and
    // length, cut at page boundaries); the peers' side is checked by Xen.
    // SAFETY: with `Fill` the buffer is a `&mut` (no other reference sees
    // the bytes Xen writes); with `Drain` Xen only reads it.
    unsafe { xen_hypercall::gnttab_copy(ops)? };
    for (op, i) in ops.iter().zip(owner) {
        if op.status().into_result().is_err()
            && let Some(f) = ok.get_mut(*i)
        {
            *f = false;
        }
    }
    Ok(())
}

/// Gives the heap the RAM between the end of the image and the end of the
/// RAM bank.
pub fn init_heap(heap: &linked_list_allocator::LockedHeap, start: usize, end: usize) {
    if end > start {
        // SAFETY: [start, end) is RAM of this domain past the image, its
        // BSS and stack (linker symbol __heap_start), used by nothing else;
        // called once at boot.
        unsafe { heap.lock().init(start as *mut u8, end - start) };
    }
}

/// The flattened device tree Xen placed in our RAM, as bytes. Returns
/// `None` if the header is not an FDT.
pub fn device_tree_bytes(dtb: usize) -> Option<&'static [u8]> {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        return None;
    }
    // SAFETY: Xen passes the DTB address in x0; it lies in our RAM, which is
    // mapped, and nothing writes it after boot. The header is read first to
    // learn the total size, which is bounded to 2 MiB (Xen's own limit).
    unsafe {
        let magic = u32::from_be(ptr::read_volatile(dtb as *const u32));
        if magic != 0xd00d_feed {
            return None;
        }
        let total = u32::from_be(ptr::read_volatile((dtb + 4) as *const u32)) as usize;
        if !(40..=(2 << 20)).contains(&total) {
            return None;
        }
        Some(core::slice::from_raw_parts(dtb as *const u8, total))
    }
}

// ---- passthrough DMA -------------------------------------------------------

/// Where our RAM appears to a passed-through device (`dma-ranges` of the
/// partial device tree's `/passthrough`): guest physical
/// `[guest, guest + size)` is device address `[device, device + size)`.
/// The device sees host physical addresses; Xen allocated our RAM bank as
/// one naturally aligned chunk, whose host address xtask calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DmaWindow {
    pub device: u64,
    pub guest: u64,
    pub size: u64,
}

impl DmaWindow {
    /// Device address of guest physical `[gpa, gpa + len)`, or `None` when
    /// any byte of it lies outside the window (never DMA there).
    pub fn to_device(&self, gpa: u64, len: u64) -> Option<u64> {
        let off = gpa.checked_sub(self.guest)?;
        let end = off.checked_add(len)?;
        if end > self.size || !self.is_calibrated() {
            return None;
        }
        self.device.checked_add(off)
    }

    /// xtask writes device address 0 before it calibrated the window (no
    /// RAM lives at host physical 0 on the machines we run on): the
    /// runtime then only shows the calibration beacon and never DMAs.
    pub fn is_calibrated(&self) -> bool {
        self.device != 0
    }
}

/// The 64-byte calibration pattern for `nonce` (xtask computes the same;
/// the printed nonce itself never matches it).
pub fn calibration_pattern(nonce: u64) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        let v = (nonce ^ 0xa5a5_5a5a_c3c3_3c3c).rotate_left(7 * i as u32 + 1);
        w.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// The page at the top of our RAM that the runtime keeps out of the heap
/// when devices are passed through: the DMA beacon page.
pub fn dma_beacon_page(ram: (u64, u64)) -> usize {
    (ram.0 + ram.1) as usize - PAGE_SIZE
}

/// Shows the calibration pattern (fresh nonce) on the beacon page, so
/// xtask can check, through qemu's monitor, that the DMA window points at
/// our RAM before it lets the domain start DMA. Returns the nonce.
pub fn show_dma_beacon(ram: (u64, u64)) -> u64 {
    let nonce = crate::arch::timer::now_ticks().rotate_left(23) ^ 0x4245_4143_4f4e_2121;
    let pattern = calibration_pattern(nonce);
    let page = dma_beacon_page(ram);
    // SAFETY: the beacon page is RAM of ours that the runtime keeps out of
    // the heap (runtime::start) and nothing else uses.
    unsafe { ptr::copy_nonoverlapping(pattern.as_ptr(), page as *mut u8, pattern.len()) };
    crate::arch::memory_barrier();
    nonce
}

/// Clears the beacon page's pattern.
pub fn clear_dma_beacon(ram: (u64, u64)) {
    SharedPage::at(dma_beacon_page(ram)).zero();
}

/// Calibration mode (the DMA window is uncalibrated): writes the pattern
/// at two pages of our RAM far apart, prints where, and halts. xtask
/// finds both in a dump of host memory, which gives the host address of
/// the RAM bank and shows it is contiguous between the two points.
pub fn dma_calibration_beacon(ram: (u64, u64), heap_start: usize, dev: u64) -> ! {
    let nonce = crate::arch::timer::now_ticks().rotate_left(17) ^ 0x5852_5443_414c_2121;
    let pattern = calibration_pattern(nonce);
    let ram_end = (ram.0 + ram.1) as usize;
    let top = ram_end - PAGE_SIZE;
    let mid = ((heap_start + ram_end) / 2) & !(PAGE_SIZE - 1);
    for at in [mid, top] {
        if at < heap_start + PAGE_SIZE {
            continue;
        }
        // SAFETY: `at` is our RAM above the heap's first page (allocator
        // bookkeeping); in calibration mode nothing is allocated this high and
        // the domain halts below without running its main.
        unsafe { ptr::copy_nonoverlapping(pattern.as_ptr(), at as *mut u8, pattern.len()) };
    }
    crate::arch::memory_barrier();
    crate::println!(
        "xen-rt: dma-calibrate nonce={nonce:016x} dev={dev:#x} at={mid:#x},{top:#x} ram={:#x}+{:#x}",
        ram.0,
        ram.1
    );
    crate::arch::halt()
}

/// virtio-drivers glue: the [`virtio_drivers::Hal`] of a domain whose
/// device DMA goes through the `dma-ranges` window.
#[cfg(feature = "virtio")]
pub mod virtio_hal {
    use super::{DmaWindow, PAGE_SIZE};
    use alloc::alloc::{Layout, alloc_zeroed, dealloc};
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicU32, Ordering};
    use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
    use virtio_drivers::{BufferDirection, Hal, PhysAddr};

    static WINDOW: spin::Once<DmaWindow> = spin::Once::new();
    static TAKEN: AtomicU32 = AtomicU32::new(0);

    /// Sets the DMA window once; false if it was already set differently.
    pub fn set_window(w: DmaWindow) -> bool {
        *WINDOW.call_once(|| w) == w
    }

    fn to_device(addr: usize, len: usize) -> PhysAddr {
        let Some(w) = WINDOW.get() else {
            panic!("virtio DMA before the DMA window was set");
        };
        match w.to_device(addr as u64, len as u64) {
            Some(d) => d,
            None => panic!("DMA buffer {addr:#x}+{len:#x} outside the DMA window {w:x?}"),
        }
    }

    fn layout(pages: usize) -> Layout {
        match Layout::from_size_align(pages.max(1) * PAGE_SIZE, PAGE_SIZE) {
            Ok(l) => l,
            Err(_) => panic!("DMA allocation of {pages} pages too large"),
        }
    }

    /// DMA memory is zeroed, page-aligned heap memory of our RAM bank; the
    /// device gets its address through the window. Memory is coherent
    /// (Normal write-back for us, `dma-coherent` device), so share and
    /// unshare only translate.
    pub struct XenHal;

    // SAFETY: dma_alloc returns zeroed, page-aligned memory that nothing
    // else uses until dma_dealloc, with the device address of exactly that
    // memory (to_device panics rather than return an address outside our
    // RAM); share returns the device address of the very buffer.
    unsafe impl Hal for XenHal {
        fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
            let l = layout(pages);
            // SAFETY: non-zero size.
            let p = unsafe { alloc_zeroed(l) };
            let Some(v) = NonNull::new(p) else {
                panic!("out of memory for {pages} DMA pages");
            };
            (to_device(p as usize, l.size()), v)
        }

        // SAFETY: implements the trait's unsafe method; its contract (an
        // allocation of dma_alloc with this page count) is relied on below.
        unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
            // SAFETY: allocated by dma_alloc with the same page count (the
            // trait's contract), freed once.
            unsafe { dealloc(vaddr.as_ptr(), layout(pages)) };
            0
        }

        // SAFETY: implements the trait's unsafe method: MMIO is
        // identity-mapped (mmu::init maps passed-through pages as Device).
        unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
            match NonNull::new(paddr as *mut u8) {
                Some(p) => p,
                None => panic!("MMIO at address 0"),
            }
        }

        // SAFETY: implements the trait's unsafe method; it only translates
        // the buffer's address (panicking outside the DMA window).
        unsafe fn share(buffer: NonNull<[u8]>, _dir: BufferDirection) -> PhysAddr {
            to_device(buffer.as_ptr() as *mut u8 as usize, buffer.len())
        }

        // SAFETY: implements the trait's unsafe method; coherent memory,
        // nothing to copy back.
        unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _dir: BufferDirection) {}
    }

    /// The virtio-mmio transport of passed-through device `index` (from
    /// [`crate::dt::DeviceTreeInfo::passthrough`]); `None` if that device
    /// is not virtio-mmio or its transport was already taken.
    pub fn mmio_transport(
        index: usize,
        dev: &crate::dt::PtDevice,
    ) -> Option<Result<MmioTransport<'static>, MmioError>> {
        if !dev.virtio_mmio || index >= 32 || dev.reg.1 < 0x100 {
            return None;
        }
        if TAKEN.fetch_or(1 << index, Ordering::AcqRel) & (1 << index) != 0 {
            return None;
        }
        let header = NonNull::new(dev.reg.0 as *mut VirtIOHeader)?;
        // SAFETY: `reg` is the device window from the partial device tree,
        // mapped by Xen and (Device-nGnRE) by mmu::init for good; TAKEN makes
        // this transport the window's only owner.
        Some(unsafe { MmioTransport::new(header, dev.reg.1 as usize) })
    }
}

/// A virtio-blk device with several requests in flight at once.
///
/// virtio-drivers' non-blocking calls are `unsafe`: the request header,
/// data buffer and status byte stay borrowed by the device until the
/// request completes. [`QueuedBlk`] makes that safe by owning all three
/// for the whole time: a buffer is moved in by `submit_*`, lives on the
/// heap (its address never changes), and is handed back only by
/// [`QueuedBlk::poll`] once the device has returned that very request.
/// Requests still in flight when the queue is dropped are leaked, never
/// freed, so a late device write cannot land in reused memory.
#[cfg(feature = "virtio")]
pub mod virtio_queue {
    use super::virtio_hal::XenHal;
    use alloc::boxed::Box;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
    use virtio_drivers::transport::Transport;

    /// Why a request could not be submitted or completed.
    #[derive(Debug)]
    pub enum QueueError {
        /// The buffer is empty or not a whole number of sectors.
        BadLength(usize),
        /// The device refused it (a broken device, ...).
        Device(virtio_drivers::Error),
        /// The device returned a request it was never given: the queue
        /// state cannot be trusted any more.
        UnknownToken(u16),
    }

    struct Request<Tag> {
        write: bool,
        sector: usize,
        req: Box<BlkReq>,
        resp: Box<BlkResp>,
        buf: Vec<u8>,
        tag: Tag,
    }

    /// A finished request: its tag, its buffer back, and the outcome.
    pub struct Completed<Tag> {
        pub tag: Tag,
        pub buf: Vec<u8>,
        pub write: bool,
        pub result: Result<(), virtio_drivers::Error>,
    }

    /// The device plus its requests in flight, each tagged by the caller.
    pub struct QueuedBlk<T: Transport, Tag> {
        dev: VirtIOBlk<XenHal, T>,
        in_flight: Vec<(u16, Request<Tag>)>,
        /// Accepted, waiting for room in the device's queue.
        parked: VecDeque<Request<Tag>>,
        /// Parked requests the device refused, to report.
        failed: VecDeque<Completed<Tag>>,
        /// Requests the device's queue holds at once (lowered to what it
        /// really took the first time it reports itself full).
        limit: usize,
        bytes: usize,
    }

    impl<T: Transport, Tag> QueuedBlk<T, Tag> {
        pub fn new(dev: VirtIOBlk<XenHal, T>) -> Self {
            let limit = usize::from(dev.virt_queue_size());
            Self {
                dev,
                in_flight: Vec::new(),
                parked: VecDeque::new(),
                failed: VecDeque::new(),
                limit,
                bytes: 0,
            }
        }

        /// Requests accepted and not yet returned by [`Self::poll`].
        pub fn in_flight(&self) -> usize {
            self.in_flight.len() + self.parked.len() + self.failed.len()
        }

        /// (requests the device holds, parked requests, queue limit), for
        /// diagnostics.
        pub fn occupancy(&self) -> (usize, usize, usize) {
            (self.in_flight.len(), self.parked.len(), self.limit)
        }

        /// Bytes of data buffers accepted and not yet returned.
        pub fn bytes_in_flight(&self) -> usize {
            self.bytes
        }

        /// Acknowledges the device's interrupt (virtio-mmio InterruptACK);
        /// call before looking for completions, so that one arriving after
        /// the look raises the interrupt again.
        pub fn ack_interrupt(&mut self) {
            let _ = self.dev.ack_interrupt();
        }

        /// Whether the device's queue can take another request now.
        pub fn has_room(&self) -> bool {
            self.in_flight() < self.limit
        }

        /// The device for blocking calls (flush, zeroing), only while no
        /// request is in flight: virtio-drivers' blocking calls expect to
        /// be the only request on the queue.
        pub fn idle_device(&mut self) -> Option<&mut VirtIOBlk<XenHal, T>> {
            if self.in_flight() == 0 {
                Some(&mut self.dev)
            } else {
                None
            }
        }

        /// Starts reading `buf.len()` bytes from sector `sector`.
        pub fn submit_read(
            &mut self,
            sector: usize,
            buf: Vec<u8>,
            tag: Tag,
        ) -> Result<(), (QueueError, Vec<u8>, Tag)> {
            self.accept(false, sector, buf, tag)
        }

        /// Starts writing `buf` at sector `sector`.
        pub fn submit_write(
            &mut self,
            sector: usize,
            buf: Vec<u8>,
            tag: Tag,
        ) -> Result<(), (QueueError, Vec<u8>, Tag)> {
            self.accept(true, sector, buf, tag)
        }

        fn accept(
            &mut self,
            write: bool,
            sector: usize,
            buf: Vec<u8>,
            tag: Tag,
        ) -> Result<(), (QueueError, Vec<u8>, Tag)> {
            // virtio-drivers asserts these; check them first (no panics).
            if buf.is_empty() || !buf.len().is_multiple_of(SECTOR_SIZE) {
                return Err((QueueError::BadLength(buf.len()), buf, tag));
            }
            self.bytes += buf.len();
            let r = Request {
                write,
                sector,
                req: Box::new(BlkReq::default()),
                resp: Box::new(BlkResp::default()),
                buf,
                tag,
            };
            if !self.parked.is_empty() {
                self.parked.push_back(r);
                return Ok(());
            }
            match self.start(r) {
                Ok(()) => Ok(()),
                Err((e, r)) => {
                    self.bytes -= r.buf.len();
                    Err((e, r.buf, r.tag))
                }
            }
        }

        /// Hands `r` to the device; parks it if the queue is full with
        /// requests of ours in it (one of them completing makes room).
        fn start(&mut self, mut r: Request<Tag>) -> Result<(), (QueueError, Request<Tag>)> {
            // `req`, `buf` and `resp` are heap memory owned by `r`, which is
            // kept in `in_flight` (moving it does not move the heap memory)
            // and not touched until `poll` completes this token with the
            // same three buffers, or leaked by Drop if it never completes.
            let submitted = if r.write {
                // SAFETY: the three buffers stay allocated and untouched by
                // us until the device returns this request (see above).
                unsafe {
                    self.dev
                        .write_blocks_nb(r.sector, &mut r.req, &r.buf, &mut r.resp)
                }
            } else {
                // SAFETY: the three buffers stay allocated and untouched by
                // us until the device returns this request (see above).
                unsafe {
                    self.dev
                        .read_blocks_nb(r.sector, &mut r.req, &mut r.buf, &mut r.resp)
                }
            };
            match submitted {
                Ok(token) => {
                    self.in_flight.push((token, r));
                    Ok(())
                }
                Err(virtio_drivers::Error::QueueFull) if !self.in_flight.is_empty() => {
                    self.limit = self.in_flight.len();
                    self.parked.push_back(r);
                    Ok(())
                }
                Err(e) => Err((QueueError::Device(e), r)),
            }
        }

        /// Whether [`Self::poll`] has something to return.
        pub fn has_completion(&mut self) -> bool {
            !self.failed.is_empty() || self.dev.peek_used().is_some()
        }

        /// The next request the device has finished, if any.
        pub fn poll(&mut self) -> Option<Result<Completed<Tag>, QueueError>> {
            if let Some(f) = self.failed.pop_front() {
                return Some(Ok(f));
            }
            let token = self.dev.peek_used()?;
            let Some(i) = self.in_flight.iter().position(|(t, _)| *t == token) else {
                return Some(Err(QueueError::UnknownToken(token)));
            };
            let (_, mut r) = self.in_flight.swap_remove(i);
            self.bytes -= r.buf.len();
            let result = if r.write {
                // SAFETY: the same buffers `start` gave the device with
                // this token; the device has returned it.
                unsafe {
                    self.dev
                        .complete_write_blocks(token, &r.req, &r.buf, &mut r.resp)
                }
            } else {
                // SAFETY: as above.
                unsafe {
                    self.dev
                        .complete_read_blocks(token, &r.req, &mut r.buf, &mut r.resp)
                }
            };
            // Room for a parked request now; one the device refuses is
            // returned as failed by a later poll.
            if let Some(next) = self.parked.pop_front()
                && let Err((e, next)) = self.start(next)
            {
                self.bytes -= next.buf.len();
                let error = match e {
                    QueueError::Device(e) => e,
                    _ => virtio_drivers::Error::IoError,
                };
                self.failed.push_back(Completed {
                    tag: next.tag,
                    buf: next.buf,
                    write: next.write,
                    result: Err(error),
                });
            }
            Some(Ok(Completed {
                tag: r.tag,
                buf: r.buf,
                write: r.write,
                result,
            }))
        }
    }

    impl<T: Transport, Tag> Drop for QueuedBlk<T, Tag> {
        fn drop(&mut self) {
            // The device may still write into these: never free them.
            for (_, r) in self.in_flight.drain(..) {
                core::mem::forget(r.buf);
                core::mem::forget(r.req);
                core::mem::forget(r.resp);
            }
        }
    }
}
