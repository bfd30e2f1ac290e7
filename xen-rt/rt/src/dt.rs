//! What the runtime needs from the device tree Xen built for this domain:
//! RAM, the Xen hypervisor node (grant-table region, extended regions,
//! event-channel PPI), the GIC, the virtual timer PPI, the vpl011 and the
//! boot arguments.

use fdt::Fdt;

/// A `(base, size)` region of guest physical space.
pub type Region = (u64, u64);

#[derive(Debug, Clone, Default)]
pub struct DeviceTreeInfo {
    pub ram: Region,
    /// Region reserved for the grant table (first `reg` of the hypervisor node).
    pub grant_table: Option<Region>,
    /// Unused guest physical space where foreign pages may be mapped.
    pub extended: heapless::Vec<Region, 4>,
    /// GIC interrupt id of the Xen event-channel PPI.
    pub event_intid: Option<u32>,
    pub timer_intid: Option<u32>,
    pub gicd: Option<u64>,
    pub gicr: Option<u64>,
    pub uart: Option<u64>,
    pub bootargs: heapless::String<256>,
    /// Devices passed through to this domain (children of `/passthrough`
    /// in the partial device tree xtask attaches to the domain).
    pub passthrough: heapless::Vec<PtDevice, 4>,
    /// `dma-ranges` of `/passthrough`: where our RAM appears to the
    /// passed-through devices (they see host physical addresses).
    pub dma_window: Option<crate::mem::DmaWindow>,
}

/// One passed-through device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PtDevice {
    /// `reg` (guest physical, Xen maps it 1:1 from the host).
    pub reg: Region,
    /// GIC interrupt id of the device's SPI.
    pub intid: Option<u32>,
    /// `compatible = "virtio,mmio"`.
    pub virtio_mmio: bool,
}

/// Errors reading the device tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtError {
    NotADeviceTree,
    NoMemory,
}

impl DeviceTreeInfo {
    pub fn parse(bytes: &[u8]) -> Result<Self, DtError> {
        let fdt = Fdt::new(bytes).map_err(|_| DtError::NotADeviceTree)?;
        let mut info = DeviceTreeInfo::default();
        let ram = fdt.memory().regions().next().ok_or(DtError::NoMemory)?;
        info.ram = (ram.starting_address as u64, ram.size.unwrap_or(0) as u64);
        if let Some(hv) = fdt.find_compatible(&["xen,xen"]) {
            if let Some(mut regs) = hv.reg() {
                if let Some(first) = regs.next() {
                    info.grant_table = Some((
                        first.starting_address as u64,
                        first.size.unwrap_or(0) as u64,
                    ));
                }
                for r in regs {
                    let _ = info
                        .extended
                        .push((r.starting_address as u64, r.size.unwrap_or(0) as u64));
                }
            }
            info.event_intid = hv
                .property("interrupts")
                .and_then(|p| gic_intid(p.value, 0));
        }
        if let Some(timer) = fdt.find_compatible(&["arm,armv8-timer", "arm,armv7-timer"]) {
            // Secure physical, non-secure physical, virtual, hypervisor.
            info.timer_intid = timer
                .property("interrupts")
                .and_then(|p| gic_intid(p.value, 2));
        }
        if let Some(mut regs) = fdt
            .find_compatible(&["arm,gic-v3"])
            .and_then(|gic| gic.reg())
        {
            info.gicd = regs.next().map(|r| r.starting_address as u64);
            info.gicr = regs.next().map(|r| r.starting_address as u64);
        }
        if let Some(uart) = fdt.find_compatible(&["arm,sbsa-uart", "arm,pl011"]) {
            info.uart = uart
                .reg()
                .and_then(|mut r| r.next())
                .map(|r| r.starting_address as u64);
        }
        #[cfg(feature = "virtio")]
        if let Some(pt) = fdt.find_node("/passthrough") {
            info.dma_window = pt
                .property("dma-ranges")
                .and_then(|p| parse_dma_ranges(p.value));
            for dev in pt.children() {
                let Some(reg) = dev.property("reg").and_then(|p| cells64_pair(p.value)) else {
                    continue;
                };
                let virtio_mmio = dev
                    .compatible()
                    .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"));
                let intid = dev
                    .property("interrupts")
                    .and_then(|p| gic_intid(p.value, 0));
                let _ = info.passthrough.push(PtDevice {
                    reg,
                    intid,
                    virtio_mmio,
                });
            }
        }
        if let Some(args) = fdt.chosen().bootargs() {
            let _ = info.bootargs.push_str(&args[..args.len().min(256)]);
        }
        Ok(info)
    }

    /// Value of `key=value` in the boot arguments.
    pub fn bootarg(&self, key: &str) -> Option<&str> {
        self.bootargs.split_ascii_whitespace().find_map(|w| {
            let (k, v) = w.split_once('=')?;
            (k == key).then_some(v)
        })
    }
}

/// GIC interrupt id of the `index`-th 3-cell specifier (type, number,
/// flags): SPIs are numbered from 32, PPIs from 16.
fn gic_intid(cells: &[u8], index: usize) -> Option<u32> {
    let at = |i: usize| -> Option<u32> {
        let b = cells.get(i * 4..i * 4 + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let kind = at(index * 3)?;
    let number = at(index * 3 + 1)?;
    match kind {
        0 => number.checked_add(32),
        1 => number.checked_add(16),
        _ => None,
    }
}

/// The `i`-th 64-bit big-endian value (two cells) of a property.
#[cfg(feature = "virtio")]
fn be64_at(v: &[u8], i: usize) -> Option<u64> {
    let b = v.get(i * 8..i * 8 + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_be_bytes(a))
}

/// Two 64-bit values (`#address-cells = #size-cells = <2>`).
#[cfg(feature = "virtio")]
fn cells64_pair(v: &[u8]) -> Option<(u64, u64)> {
    Some((be64_at(v, 0)?, be64_at(v, 1)?))
}

/// `dma-ranges = <device(2) guest(2) size(2)>` (first entry only).
#[cfg(feature = "virtio")]
fn parse_dma_ranges(v: &[u8]) -> Option<crate::mem::DmaWindow> {
    Some(crate::mem::DmaWindow {
        device: be64_at(v, 0)?,
        guest: be64_at(v, 1)?,
        size: be64_at(v, 2)?,
    })
}
