//! Stage-1 translation for a domU: an identity map built from the device
//! tree. Level 1 covers 0..4 GiB in 1 GiB blocks; the first GiB, where the
//! guest's MMIO and Xen's magic pages live, is refined into 2 MiB blocks by
//! one level-2 table. RAM and everything shared with Xen or peers (grant
//! table frames, the xenstore page, shared_info, mapped grants) is Normal
//! write-back cacheable, as Xen requires; MMIO is Device-nGnRE; everything
//! else in the first GiB is unmapped so a stray access faults loudly.

use core::arch::asm;

const ENTRIES: usize = 512;
const L1_BLOCK: u64 = 1 << 30;
const L2_BLOCK: u64 = 1 << 21;
const MAPPED_LIMIT: u64 = 4 << 30;

const DESC_VALID: u64 = 1;
const DESC_TABLE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0 << 2; // MAIR index 0
const ATTR_NORMAL: u64 = 1 << 2; // MAIR index 1
const SH_INNER: u64 = 3 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

const NORMAL_BLOCK: u64 = DESC_VALID | ATTR_NORMAL | SH_INNER | ACCESS_FLAG | UXN;
const DEVICE_BLOCK: u64 = DESC_VALID | ATTR_DEVICE | ACCESS_FLAG | UXN | PXN;

/// MAIR_EL1: attr0 = Device-nGnRE, attr1 = Normal, inner/outer write-back
/// read/write-allocate.
const MAIR: u64 = 0x04 | (0xff << 8);
/// TCR_EL1: T0SZ = 25 (39-bit VA, walk starts at level 1), table walks
/// inner/outer WBWA inner-shareable, 4 KiB granule, TTBR1 walks disabled,
/// 40-bit IPA.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32);

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

static mut LEVEL1: Table = Table([0; ENTRIES]);
static mut LEVEL2_LOW: Table = Table([0; ENTRIES]);

/// What kind of mapping a region of the guest physical space gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Device,
}

/// Regions larger than the block they fall in are rounded out to whole
/// blocks. Regions above 4 GiB are ignored (the runtime does not use them).
pub struct Layout<'a> {
    pub regions: &'a [(u64, u64, Kind)],
}

/// Builds the tables and turns the MMU and caches on. Runs once, on the boot
/// CPU, before anything else uses cacheable memory.
pub fn init(layout: &Layout<'_>, image_start: usize, image_end: usize) {
    let (l1, l2) = (&raw mut LEVEL1, &raw mut LEVEL2_LOW);
    // SAFETY: single CPU, interrupts masked, called once before any other
    // code looks at the tables: no other reference to them exists.
    let (l1, l2) = unsafe { (&mut (*l1).0, &mut (*l2).0) };
    l1[0] = (&raw const LEVEL2_LOW) as u64 | DESC_VALID | DESC_TABLE;
    for &(base, size, kind) in layout.regions {
        let end = base.saturating_add(size).min(MAPPED_LIMIT);
        let mut addr = base & !(L2_BLOCK - 1);
        while addr < end {
            if addr < L1_BLOCK {
                let slot = (addr / L2_BLOCK) as usize;
                // A 2 MiB block that holds both device and normal regions
                // stays Device: never map MMIO cacheable.
                if !(kind == Kind::Normal && l2[slot] & 0x1c == ATTR_DEVICE && l2[slot] != 0) {
                    l2[slot] = addr | block_bits(kind);
                }
                addr += L2_BLOCK;
            } else {
                let slot = (addr / L1_BLOCK) as usize;
                let block = addr & !(L1_BLOCK - 1);
                l1[slot] = block | block_bits(kind);
                addr = block + L1_BLOCK;
            }
        }
    }
    let ttbr0 = (&raw const LEVEL1) as u64;
    // SAFETY: the tables above identity-map the image, its stack and every
    // device-tree region, so execution continues at the same addresses.
    unsafe {
        // The image was written with caches off: stale lines covering it are
        // invalidated (not cleaned) before caches are enabled.
        let mut line = image_start & !63;
        while line < image_end {
            asm!("dc ivac, {}", in(reg) line, options(nostack));
            line += 64;
        }
        asm!(
            "dsb ish",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr0}",
            "isb",
            "tlbi vmalle1",
            "ic iallu",
            "dsb ish",
            "isb",
            "mrs {tmp}, sctlr_el1",
            "orr {tmp}, {tmp}, #(1 << 0)",
            "orr {tmp}, {tmp}, #(1 << 2)",
            "orr {tmp}, {tmp}, #(1 << 12)",
            "msr sctlr_el1, {tmp}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            ttbr0 = in(reg) ttbr0,
            tmp = out(reg) _,
            options(nostack),
        );
    }
}

fn block_bits(kind: Kind) -> u64 {
    match kind {
        Kind::Normal => NORMAL_BLOCK,
        Kind::Device => DEVICE_BLOCK,
    }
}
