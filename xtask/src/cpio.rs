//! Writer for the cpio "newc" format (magic `070701`), the only archive
//! format the Linux kernel unpacks as an initramfs.
//!
//! Every entry is owned by uid/gid 0 with mtime 0, so archives are
//! reproducible. Header fields are 8 hex digits; the header plus file name
//! and the file data are each padded to a multiple of 4 bytes. The archive
//! ends with the `TRAILER!!!` entry.

use anyhow::{Result, bail};

/// File type bits (as in `st_mode`).
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// Streams newc entries into an in-memory buffer.
pub struct CpioWriter {
    buf: Vec<u8>,
    next_ino: u32,
}

impl Default for CpioWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpioWriter {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            next_ino: 1,
        }
    }

    /// A directory; `path` is relative (no leading `/`).
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<()> {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, b"")
    }

    /// A regular file with permission bits `perm` (e.g. 0o755).
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, data)
    }

    /// A symbolic link; the target is stored as the entry's data.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, target.as_bytes())
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.raw_entry(TRAILER, 0, 0, 1, b"");
        self.buf
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8]) -> Result<()> {
        if path.is_empty() || path.starts_with('/') || path == TRAILER || path.contains('\0') {
            bail!("cpio: bad entry name {path:?}");
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.raw_entry(path, ino, mode, nlink, data);
        Ok(())
    }

    fn raw_entry(&mut self, name: &str, ino: u32, mode: u32, nlink: u32, data: &[u8]) {
        let fields: [u32; 13] = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            name.len() as u32 + 1,
            0, // check
        ];
        self.buf.extend_from_slice(MAGIC);
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad4();
        self.buf.extend_from_slice(data);
        self.pad4();
    }

    fn pad4(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// One entry read back from an archive (used by tests and `xtask` checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    pub name: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub data: Vec<u8>,
}

/// Parses a newc archive up to (not including) the trailer.
pub fn parse(mut buf: &[u8]) -> Result<Vec<CpioEntry>> {
    let total = buf.len();
    let mut out = Vec::new();
    loop {
        if buf.len() < 110 {
            bail!("cpio: truncated header at offset {}", total - buf.len());
        }
        if &buf[..6] != MAGIC {
            bail!("cpio: bad magic at offset {}", total - buf.len());
        }
        let field = |i: usize| -> Result<u32> {
            let s = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i])?;
            Ok(u32::from_str_radix(s, 16)?)
        };
        let (mode, uid, gid, nlink) = (field(1)?, field(2)?, field(3)?, field(4)?);
        let filesize = field(6)? as usize;
        let namesize = field(11)? as usize;
        let name_end = 110 + namesize;
        if namesize == 0 || buf.len() < name_end || buf[name_end - 1] != 0 {
            bail!("cpio: bad name");
        }
        let name = std::str::from_utf8(&buf[110..name_end - 1])?.to_string();
        let data_start = name_end.next_multiple_of(4);
        let data_end = data_start + filesize;
        if buf.len() < data_end {
            bail!("cpio: truncated data for {name}");
        }
        if name == TRAILER {
            return Ok(out);
        }
        out.push(CpioEntry {
            name,
            mode,
            uid,
            gid,
            nlink,
            data: buf[data_start..data_end].to_vec(),
        });
        buf = &buf[data_end.next_multiple_of(4).min(buf.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parses_back() {
        let mut w = CpioWriter::new();
        w.dir("bin", 0o755).unwrap();
        w.file("bin/busybox", 0o755, b"\x7fELF...").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        let a = w.finish();
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
        let e = parse(&a).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].name, "bin");
        assert_eq!(e[0].mode, S_IFDIR | 0o755);
        assert_eq!(e[1].data, b"\x7fELF...");
        assert_eq!(e[1].mode, 0o100755);
        assert_eq!(e[2].mode, 0o120777);
        assert_eq!(e[2].data, b"busybox");
        assert_eq!(e[3].name, "init");
        assert_eq!(e[4].data, b"");
        assert!(e.iter().all(|x| x.uid == 0 && x.gid == 0));
        // The trailer is the last entry, with the canonical name size.
        let tail = String::from_utf8_lossy(&a[a.len() - 124..]).to_string();
        assert!(tail.contains("TRAILER!!!"));
    }

    #[test]
    fn header_layout_is_exact() {
        let mut w = CpioWriter::new();
        w.file("ab", 0o644, b"xyz").unwrap();
        let a = w.finish();
        // header(110) + "ab\0" = 113 -> pad to 116, data 3 -> pad to 120.
        assert_eq!(&a[..14], b"07070100000001");
        assert_eq!(&a[14..22], b"000081a4");
        assert_eq!(&a[54..62], b"00000003"); // filesize
        assert_eq!(&a[94..102], b"00000003"); // namesize incl. NUL
        assert_eq!(&a[110..113], b"ab\0");
        assert_eq!(&a[116..119], b"xyz");
        assert_eq!(&a[120..126], b"070701");
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new();
        assert!(w.file("/abs", 0o644, b"").is_err());
        assert!(w.file("", 0o644, b"").is_err());
    }
}
