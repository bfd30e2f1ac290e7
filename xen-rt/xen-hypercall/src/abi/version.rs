//! `xen/include/public/version.h`: `XENVER_*`.

/// `XENVER_version`: returns `major << 16 | minor`.
pub const XENVER_VERSION: u32 = 0;
/// `XENVER_extraversion`: fills a [`XenExtraversion`].
pub const XENVER_EXTRAVERSION: u32 = 1;
/// `XENVER_compile_info`.
pub const XENVER_COMPILE_INFO: u32 = 2;
/// `XENVER_capabilities`.
pub const XENVER_CAPABILITIES: u32 = 3;
/// `XENVER_changeset`.
pub const XENVER_CHANGESET: u32 = 4;
/// `XENVER_platform_parameters`.
pub const XENVER_PLATFORM_PARAMETERS: u32 = 5;
/// `XENVER_get_features`: fills a [`XenFeatureInfo`].
pub const XENVER_GET_FEATURES: u32 = 6;
/// `XENVER_pagesize`.
pub const XENVER_PAGESIZE: u32 = 7;
/// `XENVER_guest_handle`.
pub const XENVER_GUEST_HANDLE: u32 = 8;
/// `XENVER_commandline`.
pub const XENVER_COMMANDLINE: u32 = 9;
/// `XENVER_build_id`.
pub const XENVER_BUILD_ID: u32 = 10;
/// `XENVER_extraversion2`.
pub const XENVER_EXTRAVERSION2: u32 = 11;

/// `XEN_EXTRAVERSION_LEN`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `xen_extraversion_t`: NUL-terminated string such as `".0"` or `"-rc"`.
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];

/// `struct xen_feature_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit submap to return.
    pub submap_idx: u32,
    /// OUT: the submap.
    pub submap: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn layouts() {
        // xen_extraversion_t is char[16]; xen_feature_info: u32 submap_idx @0,
        // u32 submap @4; size 8.
        assert_eq!(core::mem::size_of::<XenExtraversion>(), 16);
        layout!(XenFeatureInfo, 8; submap_idx = 0, submap = 4);
        assert_eq!((XENVER_VERSION, XENVER_EXTRAVERSION), (0, 1));
    }
}
