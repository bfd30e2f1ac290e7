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
