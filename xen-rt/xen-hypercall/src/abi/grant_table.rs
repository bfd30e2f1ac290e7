//! `xen/include/public/grant_table.h` (v1 entries): `GNTTABOP_*`, grant
//! entry flags, mapping flags and the operation structs.

use crate::error::GrantStatus;
use crate::types::{DomId, GrantRef, Pfn};

// ---- Grant table operations --------------------------------------------------

/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// `GNTTABOP_setup_table`.
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// `GNTTABOP_dump_table`.
pub const GNTTABOP_DUMP_TABLE: u32 = 3;
/// `GNTTABOP_transfer`.
pub const GNTTABOP_TRANSFER: u32 = 4;
/// `GNTTABOP_copy`.
pub const GNTTABOP_COPY: u32 = 5;
/// `GNTTABOP_query_size`.
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// `GNTTABOP_unmap_and_replace`.
pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
/// `GNTTABOP_set_version`.
pub const GNTTABOP_SET_VERSION: u32 = 8;
/// `GNTTABOP_get_status_frames`.
pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
/// `GNTTABOP_get_version`.
pub const GNTTABOP_GET_VERSION: u32 = 10;
/// `GNTTABOP_swap_grant_ref`.
pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
/// `GNTTABOP_cache_flush`.
pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

// ---- Grant entries (v1) ----------------------------------------------------------

/// `GNTTAB_NR_RESERVED_ENTRIES`: entries reserved for the toolstack.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`: entry granting the console ring to the backend.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`: entry granting the xenstore ring.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

/// `GTF_invalid`: entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: `domid` may map/access `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`: `domid` may transfer a frame to us.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive` (v2 only).
pub const GTF_TRANSITIVE: u16 = 3;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: restrict mappings to read-only.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: set by Xen while the grantee has it mapped/reads it.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: set by Xen while the grantee has it mapped writable.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GTF_PWT` (x86 cacheability).
pub const GTF_PWT: u16 = 1 << 5;
/// `GTF_PCD` (x86 cacheability).
pub const GTF_PCD: u16 = 1 << 6;
/// `GTF_PAT` (x86 cacheability).
pub const GTF_PAT: u16 = 1 << 7;
/// `GTF_sub_page` (v2 only).
pub const GTF_SUB_PAGE: u16 = 1 << 8;
/// `GTF_transfer_committed`.
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
/// `GTF_transfer_completed`.
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

/// `struct grant_entry_v1`: one entry of a v1 grant table (8 bytes; 512 per
/// 4 KiB frame).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*` type and flags. Write it last (after a barrier) when granting.
    pub flags: u16,
    /// The domain being granted access.
    pub domid: u16,
    /// The granted frame (GFN) for `GTF_permit_access`.
    pub frame: u32,
}

/// Grant entries (v1) per 4 KiB grant table frame.
pub const GRANT_ENTRIES_V1_PER_FRAME: usize = 4096 / core::mem::size_of::<GrantEntryV1>();

// ---- Mapping flags -------------------------------------------------------------------

/// `GNTMAP_device_map`: map for access by I/O devices.
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// `GNTMAP_host_map`: map for access by host CPUs.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`: read-only mapping.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// `GNTMAP_application_map`.
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// `GNTMAP_contains_pte`.
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;
/// `GNTMAP_guest_avail_mask`: bits 16.. are free for guest use.
pub const GNTMAP_GUEST_AVAIL_MASK: u32 = !0 << 16;

// ---- Status codes ------------------------------------------------------------------------

/// `GNTST_okay`.
pub const GNTST_OKAY: i16 = 0;
/// `GNTST_general_error`.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// `GNTST_bad_domain`.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// `GNTST_bad_gntref`.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// `GNTST_bad_handle`.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// `GNTST_bad_virt_addr`.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// `GNTST_bad_dev_addr`.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// `GNTST_no_device_space`.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// `GNTST_permission_denied`.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// `GNTST_bad_page`.
pub const GNTST_BAD_PAGE: i16 = -9;
/// `GNTST_bad_copy_arg`.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// `GNTST_address_too_big`.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// `GNTST_eagain`.
pub const GNTST_EAGAIN: i16 = -12;
/// `GNTST_no_space`.
pub const GNTST_NO_SPACE: i16 = -13;

// ---- Copy flags ----------------------------------------------------------------------------

/// `GNTCOPY_source_gref`: `source.u` is a grant reference (else a GMFN).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`: `dest.u` is a grant reference (else a GMFN).
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// `GNTTAB_CACHE_CLEAN`.
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
/// `GNTTAB_CACHE_INVAL`.
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `GNTTAB_CACHE_SOURCE_GREF`.
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

// ---- Operation structs ---------------------------------------------------------------

/// `struct gnttab_map_grant_ref`.
///
/// On Arm, `host_addr` (with [`GNTMAP_HOST_MAP`]) is the guest *physical*
/// address where the foreign frame is to appear.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabMapGrantRef {
    /// IN: address to map at.
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: grant reference in `dom`'s table.
    pub ref_: u32,
    /// IN: granting domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for unmapping.
    pub handle: u32,
    /// OUT: bus address (with [`GNTMAP_DEVICE_MAP`]).
    pub dev_bus_addr: u64,
}

impl GnttabMapGrantRef {
    /// A request to map `gref` of `dom` at `host_addr` with `flags`.
    pub const fn new(host_addr: u64, flags: u32, gref: GrantRef, dom: DomId) -> Self {
        GnttabMapGrantRef {
            host_addr,
            flags,
            ref_: gref.0,
            dom: dom.0,
            status: GNTST_GENERAL_ERROR,
            handle: 0,
            dev_bus_addr: 0,
        }
    }

    /// The decoded `status` field.
    pub const fn status(&self) -> GrantStatus {
        GrantStatus::from_i16(self.status)
    }
}

/// `struct gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapGrantRef {
    /// IN: address the grant is mapped at (as given to map).
    pub host_addr: u64,
    /// IN: device bus address (or 0).
    pub dev_bus_addr: u64,
    /// IN: handle returned by map.
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

impl GnttabUnmapGrantRef {
    /// A request to unmap the host mapping at `host_addr` made with `handle`.
    pub const fn new(host_addr: u64, handle: u32) -> Self {
        GnttabUnmapGrantRef {
            host_addr,
            dev_bus_addr: 0,
            handle,
            status: GNTST_GENERAL_ERROR,
        }
    }

    /// The decoded `status` field.
    pub const fn status(&self) -> GrantStatus {
        GrantStatus::from_i16(self.status)
    }
}

/// `struct gnttab_setup_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetupTable {
    /// IN: domain.
    pub dom: u16,
    /// IN: number of frames wanted.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// IN: guest handle (address) of an array of `nr_frames` `xen_pfn_t`.
    pub frame_list: u64,
}

/// `struct gnttab_dump_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabDumpTable {
    /// IN: domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_transfer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabTransfer {
    /// IN: frame to transfer.
    pub mfn: u64,
    /// IN: receiving domain.
    pub domid: u16,
    /// IN: grant reference in the receiver's table.
    pub ref_: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_copy_ptr`: one side of a [`GnttabCopy`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopyPtr {
    /// `union { grant_ref_t ref; xen_pfn_t gmfn; } u`: a grant reference
    /// (zero-extended) or a local GMFN, selected by the `GNTCOPY_*` flags.
    pub u: u64,
    /// Domain owning the grant (or `DOMID_SELF` for a GMFN).
    pub domid: u16,
    /// Byte offset within the page.
    pub offset: u16,
}

impl GnttabCopyPtr {
    /// Grant `gref` of `dom`, at byte `offset`.
    pub const fn gref(dom: DomId, gref: GrantRef, offset: u16) -> Self {
        GnttabCopyPtr {
            u: gref.0 as u64,
            domid: dom.0,
            offset,
        }
    }

    /// This domain's frame `gmfn`, at byte `offset`.
    pub const fn gmfn(gmfn: Pfn, offset: u16) -> Self {
        GnttabCopyPtr {
            u: gmfn.0,
            domid: DomId::SELF.0,
            offset,
        }
    }
}

/// `struct gnttab_copy`: copy `len` bytes between pages; neither side may
/// cross a page boundary.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopy {
    /// IN: source.
    pub source: GnttabCopyPtr,
    /// IN: destination.
    pub dest: GnttabCopyPtr,
    /// IN: bytes to copy.
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

impl GnttabCopy {
    /// A copy of `len` bytes from `source` to `dest`; `flags` must say which
    /// sides are grant references (`GNTCOPY_*`).
    pub const fn new(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> Self {
        GnttabCopy {
            source,
            dest,
            len,
            flags,
            status: GNTST_GENERAL_ERROR,
        }
    }

    /// A copy from a foreign grant into one of this domain's frames.
    pub const fn from_grant(
        dom: DomId,
        gref: GrantRef,
        src_offset: u16,
        dest: Pfn,
        dest_offset: u16,
        len: u16,
    ) -> Self {
        Self::new(
            GnttabCopyPtr::gref(dom, gref, src_offset),
            GnttabCopyPtr::gmfn(dest, dest_offset),
            len,
            GNTCOPY_SOURCE_GREF,
        )
    }

    /// A copy from one of this domain's frames into a foreign grant.
    pub const fn to_grant(
        source: Pfn,
        src_offset: u16,
        dom: DomId,
        gref: GrantRef,
        dest_offset: u16,
        len: u16,
    ) -> Self {
        Self::new(
            GnttabCopyPtr::gmfn(source, src_offset),
            GnttabCopyPtr::gref(dom, gref, dest_offset),
            len,
            GNTCOPY_DEST_GREF,
        )
    }

    /// The decoded `status` field.
    pub const fn status(&self) -> GrantStatus {
        GrantStatus::from_i16(self.status)
    }
}

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// IN: domain.
    pub dom: u16,
    /// OUT: current number of frames.
    pub nr_frames: u32,
    /// OUT: maximum number of frames.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_unmap_and_replace`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapAndReplace {
    /// IN: address of the mapping.
    pub host_addr: u64,
    /// IN: address whose mapping replaces it.
    pub new_addr: u64,
    /// IN: handle returned by map.
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_set_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetVersion {
    /// IN/OUT: grant table version (1 or 2).
    pub version: u32,
}

/// `struct gnttab_get_status_frames`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabGetStatusFrames {
    /// IN: number of frames.
    pub nr_frames: u32,
    /// IN: domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// IN: guest handle (address) of an array of `u64`.
    pub frame_list: u64,
}

/// `struct gnttab_get_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabGetVersion {
    /// IN: domain.
    pub dom: u16,
    /// Padding.
    pub pad: u16,
    /// OUT: version.
    pub version: u32,
}

/// `struct gnttab_swap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSwapGrantRef {
    /// IN: first reference.
    pub ref_a: u32,
    /// IN: second reference.
    pub ref_b: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_cache_flush`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCacheFlush {
    /// `union { uint64_t dev_bus_addr; grant_ref_t ref; } a`.
    pub a: u64,
    /// Offset from the start of the grant.
    pub offset: u16,
    /// Length within the grant.
    pub length: u16,
    /// `GNTTAB_CACHE_*`.
    pub op: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn constants() {
        // grant_table.h.
        assert_eq!(GNTTABOP_CACHE_FLUSH, 12);
        assert_eq!(GTF_READONLY, 4);
        assert_eq!(GTF_READING, 8);
        assert_eq!(GTF_WRITING, 16);
        assert_eq!(GNTMAP_CONTAINS_PTE, 16);
        assert_eq!(GNTMAP_GUEST_AVAIL_MASK, 0xFFFF_0000);
        assert_eq!(GRANT_ENTRIES_V1_PER_FRAME, 512);
        assert_eq!(GNTST_NO_SPACE, -13);
        for s in GNTST_NO_SPACE..=GNTST_OKAY {
            assert_eq!(GrantStatus::from_i16(s).as_i16(), s);
            assert!(!matches!(GrantStatus::from_i16(s), GrantStatus::Unknown(_)));
        }
    }

    #[test]
    fn layouts() {
        // grant_entry_v1: u16 flags @0, domid_t domid @2, u32 frame @4; size 8.
        layout!(GrantEntryV1, 8; flags = 0, domid = 2, frame = 4);
        // gnttab_map_grant_ref: u64 host_addr @0, u32 flags @8, grant_ref_t ref @12,
        // domid_t dom @16, i16 status @18, grant_handle_t(u32) handle @20,
        // u64 dev_bus_addr @24; size 32.
        layout!(GnttabMapGrantRef, 32; host_addr = 0, flags = 8, ref_ = 12, dom = 16,
            status = 18, handle = 20, dev_bus_addr = 24);
        // gnttab_unmap_grant_ref: u64 host_addr @0, u64 dev_bus_addr @8,
        // u32 handle @16, i16 status @20, tail pad to 8; size 24.
        layout!(GnttabUnmapGrantRef, 24; host_addr = 0, dev_bus_addr = 8, handle = 16,
            status = 20);
        // gnttab_setup_table: domid_t dom @0, u32 nr_frames @4, i16 status @8,
        // XEN_GUEST_HANDLE(xen_pfn_t) (8-aligned union) frame_list @16; size 24.
        layout!(GnttabSetupTable, 24; dom = 0, nr_frames = 4, status = 8, frame_list = 16);
        // gnttab_dump_table: domid_t dom @0, i16 status @2; size 4.
        layout!(GnttabDumpTable, 4; dom = 0, status = 2);
        // gnttab_transfer: xen_pfn_t(u64) mfn @0, domid_t domid @8, grant_ref_t ref
        // @12, i16 status @16; size 24.
        layout!(GnttabTransfer, 24; mfn = 0, domid = 8, ref_ = 12, status = 16);
        // gnttab_copy_ptr: union { u32 ref; u64 gmfn } u @0 (8 bytes), domid_t domid
        // @8, u16 offset @10; size 16.
        layout!(GnttabCopyPtr, 16; u = 0, domid = 8, offset = 10);
        // gnttab_copy: source @0, dest @16, u16 len @32, u16 flags @34,
        // i16 status @36; size 40.
        layout!(GnttabCopy, 40; source = 0, dest = 16, len = 32, flags = 34, status = 36);
        // gnttab_query_size: domid_t dom @0, u32 nr_frames @4, u32 max_nr_frames @8,
        // i16 status @12; size 16.
        layout!(GnttabQuerySize, 16; dom = 0, nr_frames = 4, max_nr_frames = 8, status = 12);
        // gnttab_unmap_and_replace: u64 host_addr @0, u64 new_addr @8,
        // u32 handle @16, i16 status @20; size 24.
        layout!(GnttabUnmapAndReplace, 24; host_addr = 0, new_addr = 8, handle = 16,
            status = 20);
        // gnttab_set_version: u32 version @0; size 4.
        layout!(GnttabSetVersion, 4; version = 0);
        // gnttab_get_status_frames: u32 nr_frames @0, domid_t dom @4, i16 status @6,
        // XEN_GUEST_HANDLE(uint64_t) frame_list @8; size 16.
        layout!(GnttabGetStatusFrames, 16; nr_frames = 0, dom = 4, status = 6, frame_list = 8);
        // gnttab_get_version: domid_t dom @0, u16 pad @2, u32 version @4; size 8.
        layout!(GnttabGetVersion, 8; dom = 0, pad = 2, version = 4);
        // gnttab_swap_grant_ref: u32 ref_a @0, u32 ref_b @4, i16 status @8; size 12.
        layout!(GnttabSwapGrantRef, 12; ref_a = 0, ref_b = 4, status = 8);
        // gnttab_cache_flush: union { u64; u32 } a @0, u16 offset @8,
        // u16 length @10, u32 op @12; size 16.
        layout!(GnttabCacheFlush, 16; a = 0, offset = 8, length = 10, op = 12);
    }

    #[test]
    fn constructors() {
        let m = GnttabMapGrantRef::new(0x3900_0000, GNTMAP_HOST_MAP, GrantRef(9), DomId(3));
        assert_eq!((m.ref_, m.dom, m.flags), (9, 3, GNTMAP_HOST_MAP));
        assert_eq!(m.status(), GrantStatus::GeneralError);
        let c = GnttabCopy::from_grant(DomId(1), GrantRef(7), 16, Pfn(0x40000), 32, 100);
        assert_eq!(c.flags, GNTCOPY_SOURCE_GREF);
        assert_eq!((c.source.u, c.source.domid, c.source.offset), (7, 1, 16));
        assert_eq!(
            (c.dest.u, c.dest.domid, c.dest.offset),
            (0x40000, DomId::SELF.0, 32)
        );
        let c = GnttabCopy::to_grant(Pfn(5), 0, DomId(2), GrantRef(8), 4, 10);
        assert_eq!(c.flags, GNTCOPY_DEST_GREF);
        assert_eq!(c.dest.u, 8);
    }
}
