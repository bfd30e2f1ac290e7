//! Xen public ABI: constants and `#[repr(C)]` structs from
//! `xen/include/public/`, laid out for arm64.
//!
//! Names follow the C names: constants in upper case (`EVTCHNOP_send` becomes
//! [`EVTCHNOP_SEND`]), structs in camel case (`struct gnttab_map_grant_ref`
//! becomes [`GnttabMapGrantRef`]). A C field named `ref` is spelled `ref_`.
//!
//! On arm64, `xen_pfn_t` and `xen_ulong_t` are `u64`, and a guest handle
//! (`XEN_GUEST_HANDLE(x)`, a `union { x *p; uint64_aligned_t q; }`) is an
//! 8-byte, 8-aligned value: it is represented here as a `u64` holding the
//! guest virtual address. C unions whose members are a `u32` and a `u64`
//! (e.g. `gnttab_copy_ptr.u`) are represented as the `u64`: on little-endian
//! machines the `u32` member is its low half.
//!
//! Every struct's size and field offsets are tested against values computed
//! by hand from the header text (see the `tests` module of each file).

mod arch_arm;
mod event_channel;
mod grant_table;
mod hvm;
mod memory;
mod sched;
mod vcpu;
mod version;
mod xen;
mod xs_wire;

pub use arch_arm::*;
pub use event_channel::*;
pub use grant_table::*;
pub use hvm::*;
pub use memory::*;
pub use sched::*;
pub use vcpu::*;
pub use version::*;
pub use xen::*;
pub use xs_wire::*;

pub use crate::error::errno;

/// Asserts the size and field offsets of a struct:
/// `layout!(Type, size; field = offset, ...)`.
#[cfg(test)]
macro_rules! layout {
    ($ty:ty, $size:expr; $($field:ident = $off:expr),* $(,)?) => {{
        assert_eq!(core::mem::size_of::<$ty>(), $size, "size_of::<{}>", stringify!($ty));
        $(
            assert_eq!(
                core::mem::offset_of!($ty, $field),
                $off,
                "offset_of!({}, {})",
                stringify!($ty),
                stringify!($field)
            );
        )*
    }};
}
#[cfg(test)]
pub(crate) use layout;

// Compile-time checks of the arm64 sizes (also on the target build); the
// tests check every field offset.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<VcpuInfo>() == 48);
    assert!(size_of::<SharedInfo>() == 1088);
    assert!(size_of::<GrantEntryV1>() == 8);
    assert!(size_of::<GnttabMapGrantRef>() == 32);
    assert!(size_of::<GnttabUnmapGrantRef>() == 24);
    assert!(size_of::<GnttabCopy>() == 40);
    assert!(size_of::<GnttabQuerySize>() == 16);
    assert!(size_of::<XenAddToPhysmap>() == 24);
    assert!(size_of::<XenRemoveFromPhysmap>() == 16);
    assert!(size_of::<XenHvmParam>() == 16);
    assert!(size_of::<EvtchnAllocUnbound>() == 8);
    assert!(size_of::<EvtchnBindInterdomain>() == 12);
    assert!(size_of::<EvtchnBindVirq>() == 12);
    assert!(size_of::<XenstoreDomainInterface>() == 2080);
};
