//! `xen/include/public/memory.h`: `XENMEM_*` (physmap subset).

/// `XENMEM_increase_reservation`.
pub const XENMEM_INCREASE_RESERVATION: u32 = 0;
/// `XENMEM_decrease_reservation`.
pub const XENMEM_DECREASE_RESERVATION: u32 = 1;
/// `XENMEM_populate_physmap`.
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
/// `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// `XENMEM_add_to_physmap_batch`.
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u32 = 23;
/// `XENMEM_remove_from_physmap`.
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;

/// `XENMAPSPACE_shared_info`: the shared info page.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: a grant table frame.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn`: one of the domain's own frames.
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `XENMAPSPACE_gmfn_range`: a range of the domain's own frames
/// (`add_to_physmap` only; `size` gives the count).
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `XENMAPSPACE_gmfn_foreign`: a frame of another domain (batch only).
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// `XENMAPSPACE_dev_mmio`: device MMIO region (batch only).
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;

/// `XENMAPIDX_grant_table_status`: with `XENMAPSPACE_grant_table`, map a
/// (v2) status frame instead of a shared frame.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// `struct xen_add_to_physmap`: make `idx` of `space` appear at `gpfn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmap {
    /// Domain whose physmap changes (`DOMID_SELF`).
    pub domid: u16,
    /// Number of pages for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*` (C `unsigned int`).
    pub space: u32,
    /// Index into the space (`xen_ulong_t`).
    pub idx: u64,
    /// Guest frame where the page should appear (`xen_pfn_t`).
    pub gpfn: u64,
}

/// `struct xen_remove_from_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenRemoveFromPhysmap {
    /// Domain whose physmap changes (`DOMID_SELF`).
    pub domid: u16,
    /// Guest frame of the mapping to remove (`xen_pfn_t`).
    pub gpfn: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn layouts() {
        // xen_add_to_physmap: domid_t domid @0, u16 size @2, unsigned int space @4,
        // xen_ulong_t(u64) idx @8, xen_pfn_t(u64) gpfn @16; size 24.
        layout!(XenAddToPhysmap, 24; domid = 0, size = 2, space = 4, idx = 8, gpfn = 16);
        // xen_remove_from_physmap: domid_t domid @0, (pad 6), xen_pfn_t gpfn @8; size 16.
        layout!(XenRemoveFromPhysmap, 16; domid = 0, gpfn = 8);
        assert_eq!(XENMEM_ADD_TO_PHYSMAP, 7);
        assert_eq!(XENMEM_REMOVE_FROM_PHYSMAP, 15);
        assert_eq!(XENMAPIDX_GRANT_TABLE_STATUS, 1 << 31);
    }
}
