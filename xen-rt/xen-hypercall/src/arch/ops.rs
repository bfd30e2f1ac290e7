//! The typed hypercall functions (target independent; built on the
//! primitives of the current architecture's module).
//!
//! Argument structs live on the caller's stack and are passed by (virtual)
//! address. Their address is exposed (`expose_provenance`) so that the
//! compiler treats them as accessible to the trap, which is declared as
//! reading and writing memory.

use super::imp::{hypercall1, hypercall2, hypercall3};
use crate::abi::*;
use crate::error::{Error, GrantStatus, Result};
use crate::types::{DomId, EvtchnPort, MapSpace, Pfn, ShutdownReason};

/// The address of `v` as a hypercall argument.
#[inline(always)]
fn addr_of<T>(v: &mut T) -> u64 {
    core::ptr::from_mut(v).expose_provenance() as u64
}

/// The address of a read-only `v` as a hypercall argument.
#[inline(always)]
fn addr_of_ref<T: ?Sized>(v: &T) -> u64 {
    core::ptr::from_ref(v).cast::<u8>().expose_provenance() as u64
}

#[inline(always)]
fn unit(ret: i64) -> Result<()> {
    Error::from_ret(ret).map(|_| ())
}

// ---- console_io / xen_version -------------------------------------------------

/// Largest chunk passed to one `CONSOLEIO_write` (its count is a C `int`-sized
/// value in Xen).
const CONSOLE_CHUNK: usize = i32::MAX as usize;

/// Writes `bytes` to the Xen (hypervisor) console (`CONSOLEIO_write`),
/// in chunks if needed.
///
/// Xen allows this for the hardware/console domain; for other domains only
/// when Xen is built with `CONFIG_VERBOSE_DEBUG` (debug builds), otherwise
/// it fails with [`Error::EPERM`].
pub fn console_write(bytes: &[u8]) -> Result<()> {
    for chunk in bytes.chunks(CONSOLE_CHUNK) {
        // SAFETY: Xen only reads `chunk.len()` bytes at `chunk`, a live
        // shared slice.
        let ret = unsafe {
            hypercall3(
                HYPERVISOR_CONSOLE_IO,
                u64::from(CONSOLEIO_WRITE),
                chunk.len() as u64,
                addr_of_ref(chunk),
            )
        };
        unit(ret)?;
    }
    Ok(())
}

/// The running Xen version as `(major, minor)` (`XENVER_version`).
///
/// This sub-op is permitted for every domain and cannot fail; should Xen
/// ever return an error, `(0, 0)` is returned.
pub fn xen_version() -> (u16, u16) {
    // SAFETY: XENVER_version takes no buffer (NULL) and touches no memory.
    let ret = unsafe { hypercall2(HYPERVISOR_XEN_VERSION, u64::from(XENVER_VERSION), 0) };
    match Error::from_ret(ret) {
        Ok(v) => ((v >> 16) as u16, v as u16),
        Err(_) => (0, 0),
    }
}

/// The Xen extra version string (`XENVER_extraversion`), NUL-padded.
pub fn xen_extraversion() -> Result<XenExtraversion> {
    let mut buf: XenExtraversion = [0; XEN_EXTRAVERSION_LEN];
    // SAFETY: Xen writes at most XEN_EXTRAVERSION_LEN bytes into `buf`, a
    // live local of exactly that size.
    let ret = unsafe {
        hypercall2(
            HYPERVISOR_XEN_VERSION,
            u64::from(XENVER_EXTRAVERSION),
            addr_of(&mut buf),
        )
    };
    unit(ret).map(|()| buf)
}

// ---- hvm_op -----------------------------------------------------------------------

/// Reads HVM parameter `index` of this domain (`HVMOP_get_param`), e.g.
/// [`HVM_PARAM_STORE_PFN`]. On Arm a domain may read `CALLBACK_IRQ`,
/// `STORE_PFN`/`_EVTCHN` and `CONSOLE_PFN`/`_EVTCHN`.
pub fn hvm_get_param(index: u32) -> Result<u64> {
    let mut p = XenHvmParam {
        domid: DomId::SELF.0,
        pad: 0,
        index,
        value: 0,
    };
    // SAFETY: Xen reads and writes only `p`, a live local XenHvmParam.
    let ret = unsafe {
        hypercall2(
            HYPERVISOR_HVM_OP,
            u64::from(HVMOP_GET_PARAM),
            addr_of(&mut p),
        )
    };
    unit(ret).map(|()| p.value)
}

/// Sets HVM parameter `index` of domain `dom` (`HVMOP_set_param`).
///
/// On Arm the settable parameters may only be set by a privileged domain
/// for *another* domain; a domain setting its own gets [`Error::EPERM`].
pub fn hvm_set_param(dom: DomId, index: u32, value: u64) -> Result<()> {
    let mut p = XenHvmParam {
        domid: dom.0,
        pad: 0,
        index,
        value,
    };
    // SAFETY: Xen reads only `p`, a live local XenHvmParam; the parameters
    // settable on Arm do not make Xen write into this domain's memory.
    let ret = unsafe {
        hypercall2(
            HYPERVISOR_HVM_OP,
            u64::from(HVMOP_SET_PARAM),
            addr_of(&mut p),
        )
    };
    unit(ret)
}

// ---- sched_op -----------------------------------------------------------------------

/// Yields the CPU to other vCPUs (`SCHEDOP_yield`).
pub fn sched_yield() {
    // SAFETY: SCHEDOP_yield takes no argument and touches no memory.
    let _ = unsafe { hypercall2(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
}

/// Blocks this vCPU until an event is pending (`SCHEDOP_block`), enabling
/// event delivery. Xen's Arm notes prefer `wfi`, which has the same effect.
pub fn sched_block() {
    // SAFETY: SCHEDOP_block takes no argument and touches no memory.
    let _ = unsafe { hypercall2(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_BLOCK), 0) };
}

/// Shuts this domain down (`SCHEDOP_shutdown`).
///
/// For every reason except [`ShutdownReason::Suspend`] this does not return
/// on success; an `Err` means Xen refused. For `Suspend`, `Ok(())` is
/// returned once the domain has been resumed.
pub fn sched_shutdown(reason: ShutdownReason) -> Result<()> {
    let mut arg = SchedShutdown {
        reason: reason.as_u32(),
    };
    // SAFETY: Xen reads only `arg`, a live local SchedShutdown.
    let ret = unsafe {
        hypercall2(
            HYPERVISOR_SCHED_OP,
            u64::from(SCHEDOP_SHUTDOWN),
            addr_of(&mut arg),
        )
    };
    unit(ret)
}

/// Arms this vCPU's single-shot timer for absolute system time
/// `timeout_ns` (0 cancels) (`__HYPERVISOR_set_timer_op`).
///
/// **Not available on Arm**: Xen's hypercall table has no Arm entry, so it
/// fails with [`Error::ENOSYS`]; use the generic (virtual) timer instead.
/// Kept for the x86 port.
pub fn set_timer_op(timeout_ns: u64) -> Result<()> {
    // SAFETY: set_timer_op takes a plain integer and touches no memory.
    let ret = unsafe { hypercall1(HYPERVISOR_SET_TIMER_OP, timeout_ns) };
    unit(ret)
}

// ---- event_channel_op ---------------------------------------------------------------

#[inline(always)]
fn evtchn_op<T>(cmd: u32, arg: &mut T) -> Result<()> {
    // SAFETY: every caller passes the argument struct matching `cmd`; the
    // event channel ops only read and write that struct.
    let ret = unsafe { hypercall2(HYPERVISOR_EVENT_CHANNEL_OP, u64::from(cmd), addr_of(arg)) };
    unit(ret)
}

/// Allocates a new unbound port of this domain that `remote` may bind to
/// (`EVTCHNOP_alloc_unbound`).
pub fn evtchn_alloc_unbound(remote: DomId) -> Result<EvtchnPort> {
    let mut a = EvtchnAllocUnbound {
        dom: DomId::SELF.0,
        remote_dom: remote.0,
        port: 0,
    };
    evtchn_op(EVTCHNOP_ALLOC_UNBOUND, &mut a)?;
    Ok(EvtchnPort(a.port))
}

/// Connects a new local port to unbound port `remote_port` of `remote`
/// (`EVTCHNOP_bind_interdomain`).
pub fn evtchn_bind_interdomain(remote: DomId, remote_port: EvtchnPort) -> Result<EvtchnPort> {
    let mut a = EvtchnBindInterdomain {
        remote_dom: remote.0,
        remote_port: remote_port.0,
        local_port: 0,
    };
    evtchn_op(EVTCHNOP_BIND_INTERDOMAIN, &mut a)?;
    Ok(EvtchnPort(a.local_port))
}

/// Binds virtual IRQ `virq` (`VIRQ_*`) on `vcpu` to a new port
/// (`EVTCHNOP_bind_virq`).
pub fn evtchn_bind_virq(virq: u32, vcpu: u32) -> Result<EvtchnPort> {
    let mut a = EvtchnBindVirq {
        virq,
        vcpu,
        port: 0,
    };
    evtchn_op(EVTCHNOP_BIND_VIRQ, &mut a)?;
    Ok(EvtchnPort(a.port))
}

/// Notifies the remote end of `port` (`EVTCHNOP_send`).
pub fn evtchn_send(port: EvtchnPort) -> Result<()> {
    evtchn_op(EVTCHNOP_SEND, &mut EvtchnSend { port: port.0 })
}

/// Closes `port` (`EVTCHNOP_close`).
pub fn evtchn_close(port: EvtchnPort) -> Result<()> {
    evtchn_op(EVTCHNOP_CLOSE, &mut EvtchnClose { port: port.0 })
}

/// Unmasks `port`, re-raising the upcall if it is pending
/// (`EVTCHNOP_unmask`).
pub fn evtchn_unmask(port: EvtchnPort) -> Result<()> {
    evtchn_op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port: port.0 })
}

/// Delivers `port`'s notifications to `vcpu` (`EVTCHNOP_bind_vcpu`).
pub fn evtchn_bind_vcpu(port: EvtchnPort, vcpu: u32) -> Result<()> {
    evtchn_op(
        EVTCHNOP_BIND_VCPU,
        &mut EvtchnBindVcpu { port: port.0, vcpu },
    )
}

// ---- memory_op ------------------------------------------------------------------------

/// Makes item `idx` of `space` appear at guest frame `gpfn` of this domain
/// (`XENMEM_add_to_physmap`, `DOMID_SELF`): e.g. the shared info page
/// (`MapSpace::SharedInfo`, idx 0) or grant table frame `idx`
/// (`MapSpace::GrantTable`, OR [`XENMAPIDX_GRANT_TABLE_STATUS`] for a v2
/// status frame).
///
/// # Safety
///
/// Whatever was at `gpfn` (e.g. a RAM page) is replaced, and afterwards
/// the frame is memory shared with Xen and possibly other domains, changing
/// under the caller's feet. The caller must ensure that no Rust object,
/// reference, stack, heap or code lives in frame `gpfn` (use a frame of an
/// unused region such as the device tree's grant table region / the
/// `GUEST_GNTTAB_BASE` default), and that all later accesses to the frame
/// treat it as shared (volatile or atomic) memory mapped Normal Write-Back.
pub unsafe fn add_to_physmap(space: MapSpace, idx: u64, gpfn: Pfn) -> Result<()> {
    let mut a = XenAddToPhysmap {
        domid: DomId::SELF.0,
        size: 0,
        space: space.as_u32(),
        idx,
        gpfn: gpfn.0,
    };
    // SAFETY: Xen reads only `a`, a live local; the effect on frame `gpfn`
    // is covered by this function's `# Safety` contract.
    let ret = unsafe {
        hypercall2(
            HYPERVISOR_MEMORY_OP,
            u64::from(XENMEM_ADD_TO_PHYSMAP),
            addr_of(&mut a),
        )
    };
    unit(ret)
}

/// Removes whatever is mapped at guest frame `gpfn` of this domain
/// (`XENMEM_remove_from_physmap`), leaving a hole.
///
/// # Safety
///
/// After the call, accesses to `gpfn` fault. The caller must ensure nothing
/// (no Rust object, reference, stack, heap or code) uses that frame any more.
pub unsafe fn remove_from_physmap(gpfn: Pfn) -> Result<()> {
    let mut a = XenRemoveFromPhysmap {
        domid: DomId::SELF.0,
        gpfn: gpfn.0,
    };
    // SAFETY: Xen reads only `a`, a live local; the effect on frame `gpfn`
    // is covered by this function's `# Safety` contract.
    let ret = unsafe {
        hypercall2(
            HYPERVISOR_MEMORY_OP,
            u64::from(XENMEM_REMOVE_FROM_PHYSMAP),
            addr_of(&mut a),
        )
    };
    unit(ret)
}

// ---- vcpu_op --------------------------------------------------------------------------------

/// Tells Xen to keep `vcpu`'s [`VcpuInfo`] at byte `offset` of guest frame
/// `gfn` (`VCPUOP_register_vcpu_info`); required on Arm for every vCPU
/// beyond the legacy slot in the shared info page.
///
/// # Safety
///
/// From the call on, Xen writes a [`VcpuInfo`] (48 bytes on arm64) at
/// `gfn`/`offset` at any time, for the life of the domain. That memory must
/// be RAM reserved for this purpose for ever (never freed or reused), must
/// not cross a page boundary, and must only be accessed with volatile or
/// atomic operations.
pub unsafe fn vcpu_register_vcpu_info(vcpu: u32, gfn: Pfn, offset: u32) -> Result<()> {
    let mut a = VcpuRegisterVcpuInfo {
        mfn: gfn.0,
        offset,
        rsvd: 0,
    };
    // SAFETY: Xen reads only `a`, a live local; the later writes to
    // `gfn`/`offset` are covered by this function's `# Safety` contract.
    let ret = unsafe {
        hypercall3(
            HYPERVISOR_VCPU_OP,
            u64::from(VCPUOP_REGISTER_VCPU_INFO),
            u64::from(vcpu),
            addr_of(&mut a),
        )
    };
    unit(ret)
}

// ---- grant_table_op ------------------------------------------------------------------------

/// Largest batch passed in one grant table hypercall (its count is 32-bit).
const GNTTAB_BATCH: usize = u32::MAX as usize;

/// This domain's grant table size in frames: `(nr_frames, max_nr_frames)`
/// (`GNTTABOP_query_size`). A bad per-op status is reported as
/// [`Error::Grant`].
pub fn gnttab_query_size() -> Result<(u32, u32)> {
    let mut q = GnttabQuerySize {
        dom: DomId::SELF.0,
        nr_frames: 0,
        max_nr_frames: 0,
        status: 0,
    };
    // SAFETY: Xen reads and writes only `q`, one live local GnttabQuerySize
    // (count 1).
    let ret = unsafe {
        hypercall3(
            HYPERVISOR_GRANT_TABLE_OP,
            u64::from(GNTTABOP_QUERY_SIZE),
            addr_of(&mut q),
            1,
        )
    };
    unit(ret)?;
    GrantStatus::check(q.status)?;
    Ok((q.nr_frames, q.max_nr_frames))
}

/// Issues grant table op `cmd` over the array `ops`, in batches.
///
/// # Safety
///
/// `T` must be the argument struct of `cmd`, and the op's effects must be
/// sound (the callers' `# Safety` contracts).
unsafe fn gnttab_batch<T>(cmd: u32, ops: &mut [T]) -> Result<()> {
    for batch in ops.chunks_mut(GNTTAB_BATCH) {
        let ptr = batch.as_mut_ptr().expose_provenance() as u64;
        // SAFETY: Xen reads and writes only the `batch.len()` structs of
        // `batch`, a live exclusive slice of `cmd`'s argument struct; other
        // effects are covered by this function's contract.
        let ret = unsafe {
            hypercall3(
                HYPERVISOR_GRANT_TABLE_OP,
                u64::from(cmd),
                ptr,
                batch.len() as u64,
            )
        };
        unit(ret)?;
    }
    Ok(())
}

/// Maps foreign grants (`GNTTABOP_map_grant_ref`). `Err` means the
/// hypercall itself failed; otherwise each op's outcome is in its `status`
/// (see [`GnttabMapGrantRef::status`]) and, on success, its `handle`.
///
/// # Safety
///
/// For each op with [`GNTMAP_HOST_MAP`], `host_addr` is a page-aligned
/// guest *physical* address on Arm at which the foreign page replaces
/// whatever was mapped there. The caller must ensure no Rust object,
/// reference, stack, heap or code lives in that frame (use frames of an
/// unused region or frames previously given back to Xen), and must treat
/// the mapped page as memory the granting domain may change at any time
/// (volatile/atomic access only, no `&`/`&mut` to non-atomic data).
pub unsafe fn gnttab_map_grant_ref(ops: &mut [GnttabMapGrantRef]) -> Result<()> {
    // SAFETY: argument struct matches the op; effects covered by the
    // contract above.
    unsafe { gnttab_batch(GNTTABOP_MAP_GRANT_REF, ops) }
}

/// Unmaps grants mapped by [`gnttab_map_grant_ref`]
/// (`GNTTABOP_unmap_grant_ref`). Per-op outcomes are left in `status`.
///
/// # Safety
///
/// After a successful unmap the frame at `host_addr` no longer holds the
/// foreign page (accesses fault). The caller must ensure nothing uses the
/// mapping any more: no references into it, and no I/O in flight on it.
pub unsafe fn gnttab_unmap_grant_ref(ops: &mut [GnttabUnmapGrantRef]) -> Result<()> {
    // SAFETY: argument struct matches the op; effects covered by the
    // contract above.
    unsafe { gnttab_batch(GNTTABOP_UNMAP_GRANT_REF, ops) }
}

/// Copies data between pages named by grant references or by this
/// domain's frame numbers (`GNTTABOP_copy`). Per-op outcomes are left in
/// `status` (see [`GnttabCopy::status`]).
///
/// # Safety
///
/// Xen writes `len` bytes at `dest.offset` of each destination page. When
/// the destination is a frame of this domain (no [`GNTCOPY_DEST_GREF`],
/// or a grant this domain issued to itself), the caller must ensure those
/// bytes are valid RAM that no live Rust reference covers (they are written
/// behind the compiler's back). Source pages of this domain must not be
/// concurrently mutated.
pub unsafe fn gnttab_copy(ops: &mut [GnttabCopy]) -> Result<()> {
    // SAFETY: argument struct matches the op; effects covered by the
    // contract above.
    unsafe { gnttab_batch(GNTTABOP_COPY, ops) }
}
