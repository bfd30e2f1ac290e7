//! Domain images: builds the `no_std` domain crates for
//! `aarch64-unknown-none` and flattens each ELF into the raw arm64 `Image`
//! that Xen's dom0less loader expects (`target/images/<crate>.img`).
//!
//! Flattening: every `PT_LOAD` segment with file bytes is copied to offset
//! `p_paddr - lowest p_paddr`; gaps are zero; memory-only tails (.bss) are
//! not written, the image ends at the last file-backed byte. The result
//! must carry the arm64 Image magic `ARM\x64` at offset 0x38.

use crate::util::{Paths, cargo, run, step};
use anyhow::{Context, Result, bail, ensure};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use std::path::PathBuf;

/// The domain image crates `cargo xtask build` builds by default.
pub const DOMAIN_CRATES: &[&str] = &[
    "hello-domain",
    "vchan-domain",
    "net-domain",
    "storage-domain",
    "console-domain",
    "blk-hostile-domain",
    "net-hostile-domain",
];
pub const TARGET: &str = "aarch64-unknown-none";
pub const IMAGE_MAGIC_OFFSET: usize = 0x38;
pub const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// A built image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub krate: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Path of a crate's image.
pub fn image_path(paths: &Paths, krate: &str) -> PathBuf {
    paths.images.join(format!("{krate}.img"))
}

/// Builds the given crates (release, `aarch64-unknown-none`) and converts
/// their ELFs to images.
pub fn build(paths: &Paths, crates: &[String]) -> Result<Vec<BuiltImage>> {
    if crates.is_empty() {
        return Ok(Vec::new());
    }
    step(&format!("building domain images: {}", crates.join(", ")));
    let t0 = std::time::Instant::now();
    // One cargo invocation per crate: built together, cargo would unify
    // xen-rt's features across them (e.g. storage-domain's `virtio`) and
    // every image would carry the union.
    for k in crates {
        let mut c = cargo();
        c.current_dir(&paths.root)
            .args(["build", "--target", TARGET, "--release", "-p", k]);
        run(&mut c).with_context(|| format!("building {k}"))?;
    }
    std::fs::create_dir_all(&paths.images)?;
    let mut out = Vec::new();
    for k in crates {
        let elf_path = paths.target.join(TARGET).join("release").join(k);
        let data =
            std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
        let img =
            elf_to_image(&data).with_context(|| format!("converting {}", elf_path.display()))?;
        let path = image_path(paths, k);
        std::fs::write(&path, &img)?;
        println!("    {k}: {} bytes -> {}", img.len(), path.display());
        out.push(BuiltImage {
            krate: k.clone(),
            path,
            size: img.len() as u64,
        });
    }
    step(&format!(
        "images built in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
    Ok(out)
}

/// Flattens an aarch64 ELF64 into a raw Image (see module docs).
pub fn elf_to_image(data: &[u8]) -> Result<Vec<u8>> {
    let hdr = elf::FileHeader64::<object::Endianness>::parse(data).context("not an ELF64 file")?;
    let endian = hdr.endian()?;
    ensure!(
        hdr.e_machine(endian) == elf::EM_AARCH64,
        "ELF is not for aarch64 (e_machine {})",
        hdr.e_machine(endian)
    );
    let mut segs = Vec::new();
    for ph in hdr.program_headers(endian, data)? {
        if ph.p_type(endian) != elf::PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|_| anyhow::anyhow!("segment data out of range"))?;
        segs.push((ph.p_paddr(endian), bytes));
    }
    ensure!(!segs.is_empty(), "ELF has no file-backed PT_LOAD segment");
    let base = segs.iter().map(|s| s.0).min().unwrap();
    let end = segs
        .iter()
        .map(|s| s.0 - base + s.1.len() as u64)
        .max()
        .unwrap();
    ensure!(
        end <= 256 << 20,
        "image would be {end} bytes; segments too far apart?"
    );
    let mut img = vec![0u8; end as usize];
    let mut sorted = segs.clone();
    sorted.sort_by_key(|s| s.0);
    for w in sorted.windows(2) {
        if w[0].0 + w[0].1.len() as u64 > w[1].0 {
            bail!("PT_LOAD segments overlap at {:#x}", w[1].0);
        }
    }
    for (addr, bytes) in segs {
        let off = (addr - base) as usize;
        img[off..off + bytes.len()].copy_from_slice(bytes);
    }
    check_image_magic(&img)?;
    Ok(img)
}

pub fn check_image_magic(img: &[u8]) -> Result<()> {
    match img.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) {
        Some(m) if m == IMAGE_MAGIC => Ok(()),
        Some(m) => bail!(
            "no arm64 Image magic at {IMAGE_MAGIC_OFFSET:#x} (found {m:02x?}); is the Image header linked first?"
        ),
        None => bail!(
            "image too small ({} bytes) for an arm64 Image header",
            img.len()
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a little-endian ELF64 with the given (p_type, paddr, file bytes, memsz).
    pub fn make_elf(machine: u16, segs: &[(u32, u64, Vec<u8>, u64)]) -> Vec<u8> {
        let phoff = 64u64;
        let mut data_off = phoff + 56 * segs.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&segs.first().map_or(0, |s| s.1).to_le_bytes()); // entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&64u16.to_le_bytes());
        out.extend_from_slice(&56u16.to_le_bytes());
        out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        let mut payload = Vec::new();
        for (ty, paddr, bytes, memsz) in segs {
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&5u32.to_le_bytes());
            out.extend_from_slice(&data_off.to_le_bytes());
            out.extend_from_slice(&(paddr + 0xffff_0000_0000_0000).to_le_bytes()); // vaddr differs
            out.extend_from_slice(&paddr.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&memsz.to_le_bytes());
            out.extend_from_slice(&0x1000u64.to_le_bytes());
            payload.extend_from_slice(bytes);
            data_off += bytes.len() as u64;
        }
        out.extend_from_slice(&payload);
        out
    }

    fn header() -> Vec<u8> {
        let mut h = vec![0xaa; 0x40];
        h[0x38..0x3c].copy_from_slice(IMAGE_MAGIC);
        h
    }

    #[test]
    fn flattens_segments_without_bss() {
        let elf = make_elf(
            elf::EM_AARCH64,
            &[
                (elf::PT_LOAD, 0x4000_0000, header(), 0x40),
                (elf::PT_NOTE, 0x4000_0800, vec![9; 8], 8),
                (elf::PT_LOAD, 0x4000_1000, vec![1, 2, 3, 4], 0x2000), // data + bss tail
                (elf::PT_LOAD, 0x4001_0000, vec![], 0x1000),           // bss only
            ],
        );
        let img = elf_to_image(&elf).unwrap();
        assert_eq!(img.len(), 0x1004, "ends at the last file-backed byte");
        assert_eq!(&img[0x38..0x3c], b"ARM\x64");
        assert!(
            img[0x40..0x1000].iter().all(|&b| b == 0),
            "gap zero-filled, note not included"
        );
        assert_eq!(&img[0x1000..], &[1, 2, 3, 4]);
    }

    #[test]
    fn rejects_missing_magic_and_wrong_arch() {
        let no_magic = make_elf(
            elf::EM_AARCH64,
            &[(elf::PT_LOAD, 0x4000_0000, vec![0; 0x40], 0x40)],
        );
        assert!(
            elf_to_image(&no_magic)
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        let x86 = make_elf(
            elf::EM_X86_64,
            &[(elf::PT_LOAD, 0x4000_0000, header(), 0x40)],
        );
        assert!(elf_to_image(&x86).is_err());
        assert!(elf_to_image(b"garbage").is_err());
    }

    #[test]
    fn rejects_overlap() {
        let elf = make_elf(
            elf::EM_AARCH64,
            &[
                (elf::PT_LOAD, 0x4000_0000, header(), 0x40),
                (elf::PT_LOAD, 0x4000_0020, vec![1; 8], 8),
            ],
        );
        assert!(elf_to_image(&elf).is_err());
    }
}
