//! Boot sequence and the [`Runtime`] handed to the domain's `main`.

use core::time::Duration;

use xen_hypercall::{self as hc, DomId, EvtchnPort, abi};

use crate::arch::{self, mmu};
use crate::dt::DeviceTreeInfo;
use crate::events::Events;
use crate::gnttab::GrantTable;
use crate::mem::{self, ForeignSpace};
use crate::time::Instant;
use crate::xenstore::{Store, XenStore, XsConnectError};

#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// Everything a domain's `main` works with.
pub struct Runtime {
    pub dt: DeviceTreeInfo,
    pub events: Events,
    pub grants: GrantTable,
    pub foreign: ForeignSpace,
    store: Option<XenStore>,
    booted_at: Instant,
}

// `xen_rt::entry!` lives in arch/mod.rs: it expands to an unsafe
// attribute, and all of xen-rt's unsafe stays in arch/ and mem.rs.

pub(crate) fn start(dtb: usize) -> ! {
    crate::time::init();
    let booted_at = Instant::now();
    let Some(bytes) = mem::device_tree_bytes(dtb) else {
        crate::console::emergency(format_args!("xen-rt: no device tree at {:#x}\n", dtb));
        crate::panic::crash();
    };
    let dt = match DeviceTreeInfo::parse(bytes) {
        Ok(dt) => dt,
        Err(e) => {
            crate::console::emergency(format_args!("xen-rt: bad device tree: {:?}\n", e));
            crate::panic::crash();
        }
    };
    let extended = dt
        .extended
        .iter()
        .copied()
        .find(|&(base, size)| base >= 1 << 30 && base + size <= 4 << 30);
    let extended = extended.or_else(|| {
        dt.extended
            .first()
            .map(|&(base, size)| (base, size.min((4u64 << 30).saturating_sub(base))))
    });
    let grant_region = dt
        .grant_table
        .unwrap_or((abi::GUEST_GNTTAB_BASE, abi::GUEST_GNTTAB_SIZE));
    let mut regions: heapless::Vec<(u64, u64, mmu::Kind), 12> = heapless::Vec::new();
    let _ = regions.push((dt.ram.0, dt.ram.1, mmu::Kind::Normal));
    let _ = regions.push((grant_region.0, grant_region.1, mmu::Kind::Normal));
    let _ = regions.push((
        abi::GUEST_MAGIC_BASE,
        abi::GUEST_MAGIC_SIZE,
        mmu::Kind::Normal,
    ));
    if let Some((base, size)) = extended {
        let _ = regions.push((base, size, mmu::Kind::Normal));
    }
    for dev in [
        dt.gicd.map(|b| (b, 0x1_0000)),
        dt.gicr.map(|b| (b, 0x2_0000)),
        dt.uart.map(|b| (b, 0x1000)),
    ]
    .into_iter()
    .flatten()
    {
        let _ = regions.push((dev.0, dev.1, mmu::Kind::Device));
    }
    // Passed-through device registers (their whole 4 KiB page, as Xen maps it).
    #[cfg(feature = "virtio")]
    for dev in &dt.passthrough {
        let _ = regions.push((dev.reg.0 & !0xfff, 0x1000, mmu::Kind::Device));
    }
    let (image_start, _image_file_end, heap_start) = arch::image_bounds();
    mmu::init(&mmu::Layout { regions: &regions }, image_start, heap_start);
    if let Some(uart) = dt.uart {
        crate::console::use_uart(uart as usize);
    }
    let ram_end = (dt.ram.0 + dt.ram.1) as usize;
    // With a passed-through device the top page is the DMA beacon page.
    let heap_end = match dt.dma_window {
        Some(_) if cfg!(feature = "virtio") => mem::dma_beacon_page(dt.ram),
        _ => ram_end,
    };
    mem::init_heap(&HEAP, heap_start, heap_end);
    #[cfg(feature = "virtio")]
    if let Some(w) = dt.dma_window {
        if !w.is_calibrated() {
            let dev = dt.passthrough.first().map_or(0, |d| d.reg.0);
            mem::dma_calibration_beacon(dt.ram, heap_start, dev);
        }
        mem::virtio_hal::set_window(w);
    }

    let (Some(gicd), Some(gicr)) = (dt.gicd, dt.gicr) else {
        panic!("device tree has no GICv3");
    };
    let Some(event_intid) = dt.event_intid else {
        panic!("device tree has no Xen hypervisor node with an event interrupt");
    };
    let Some((ext_base, ext_size)) = extended else {
        panic!("device tree has no extended region below 4 GiB to map foreign pages");
    };
    let mut foreign = ForeignSpace::new(ext_base as usize, ext_size as usize);
    let gic = arch::gic::Gic::new(gicd as usize, gicr as usize);
    let slot = foreign
        .take()
        .unwrap_or_else(|e| panic!("no slot for shared_info: {:?}", e));
    let shared_info = mem::map_xen_page(hc::MapSpace::SharedInfo, 0, slot)
        .unwrap_or_else(|e| panic!("mapping shared_info failed: {:?}", e));
    let events = Events::new(shared_info, gic, event_intid, dt.timer_intid);
    let grants =
        GrantTable::new(grant_region.0 as usize).unwrap_or_else(|e| panic!("grant table: {:?}", e));

    let mut rt = Runtime {
        dt,
        events,
        grants,
        foreign,
        store: None,
        booted_at,
    };
    arch::call_domain_main(&mut rt);
    rt.shutdown(hc::ShutdownReason::Poweroff)
}

impl Runtime {
    /// When the runtime started (the domain's first instruction).
    pub fn booted_at(&self) -> Instant {
        self.booted_at
    }

    /// The xenstore connection, established on first use. In a dom0less
    /// system the store page is valid only after dom0 ran init-dom0less;
    /// this waits for that (on the store event channel) up to `timeout`.
    pub fn xenstore(&mut self, timeout: Duration) -> Result<&mut XenStore, XsConnectError> {
        if self.store.is_none() {
            if let Some(n) = self.dt.bootarg("xscapture").and_then(|n| n.parse().ok()) {
                crate::xenstore::CAPTURE_BYTES.store(n, core::sync::atomic::Ordering::Relaxed);
            }
            let store = XenStore::connect(&mut self.events, Instant::now().after(timeout))?;
            self.store = Some(store);
        }
        match self.store.as_mut() {
            Some(s) => Ok(s),
            None => Err(XsConnectError::NotConnected),
        }
    }

    /// Bytes of the image file Xen loaded (code and data, without BSS).
    pub fn image_bytes(&self) -> usize {
        let (start, file_end, _) = arch::image_bounds();
        file_end - start
    }

    /// Xen's version (major, minor).
    pub fn xen_version(&self) -> (u16, u16) {
        hc::xen_version()
    }

    /// Asks Xen to end the domain.
    pub fn shutdown(&mut self, reason: hc::ShutdownReason) -> ! {
        let _ = hc::sched_shutdown(reason);
        crate::println!("xen-rt: SCHEDOP_shutdown failed; halting");
        arch::halt()
    }

    /// A xenstore session (connecting first, see [`Runtime::xenstore`]).
    pub fn store(&mut self) -> Result<Store<'_>, XsConnectError> {
        self.xenstore(Duration::from_secs(600))?;
        let xs = self.store.as_mut().ok_or(XsConnectError::NotConnected)?;
        Ok(Store {
            xs,
            events: &mut self.events,
            timeout: crate::xenstore::DEFAULT_TIMEOUT,
        })
    }

    /// A xenstore session together with the grant table and the foreign
    /// address space, borrowed at once (a backend maps and copies grants
    /// while it handles xenstore events).
    pub fn store_and_grants(
        &mut self,
    ) -> Result<(Store<'_>, &mut GrantTable, &mut ForeignSpace), XsConnectError> {
        self.xenstore(Duration::from_secs(600))?;
        let xs = self.store.as_mut().ok_or(XsConnectError::NotConnected)?;
        Ok((
            Store {
                xs,
                events: &mut self.events,
                timeout: crate::xenstore::DEFAULT_TIMEOUT,
            },
            &mut self.grants,
            &mut self.foreign,
        ))
    }

    /// Our domain id, as xenstore knows it.
    pub fn domid(&mut self) -> Option<DomId> {
        let v = self.store().ok()?.read_string("domid").ok()?;
        v.parse::<u16>().ok().map(DomId)
    }

    /// The event channel port Xen reserved for the store (for diagnostics).
    pub fn store_port(&self) -> Option<EvtchnPort> {
        self.store.as_ref().map(|s| s.port())
    }
}
