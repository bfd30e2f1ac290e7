//! Minimal flattened device tree (DTB) parser and serializer.
//!
//! Enough to take qemu's own `virt` tree (dumped with `dumpdtb=`), edit it
//! as a tree of nodes and properties, and write it back as a version-17
//! blob: header, memory-reservation map, structure block, strings block.
//! Property values are raw big-endian bytes; helpers build the common
//! encodings (cells, strings, string lists).

use anyhow::{Context, Result, bail, ensure};

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const HEADER_LEN: usize = 40;

/// A device tree node: name (with unit address, e.g. `pl011@9000000`),
/// properties in order, and children in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<Node>,
}

/// A whole tree plus the header fields worth keeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fdt {
    pub boot_cpuid_phys: u32,
    pub reserved: Vec<(u64, u64)>,
    pub root: Node,
}

impl Node {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets (replacing in place, or appending) a property.
    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.props.push((name.to_string(), value)),
        }
    }

    /// Builder form of [`Node::set_prop`].
    pub fn with(mut self, name: &str, value: Vec<u8>) -> Self {
        self.set_prop(name, value);
        self
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// Adds a child, replacing an existing child of the same name.
    pub fn add_child(&mut self, node: Node) {
        match self.child_mut(&node.name) {
            Some(slot) => *slot = node,
            None => self.children.push(node),
        }
    }
}

impl Fdt {
    /// Looks up a node by absolute path like `/chosen` or `/pl061@9030000`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        let mut n = &self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child(part)?;
        }
        Some(n)
    }

    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let mut n = &mut self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child_mut(part)?;
        }
        Some(n)
    }

    /// Like [`Fdt::node_mut`] but creates missing nodes.
    pub fn node_mut_or_create(&mut self, path: &str) -> &mut Node {
        let mut n = &mut self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let idx = match n.children.iter().position(|c| c.name == part) {
                Some(i) => i,
                None => {
                    n.children.push(Node::new(part));
                    n.children.len() - 1
                }
            };
            n = &mut n.children[idx];
        }
        n
    }

    pub fn parse(blob: &[u8]) -> Result<Fdt> {
        ensure!(blob.len() >= HEADER_LEN, "dtb too short");
        let h = |i: usize| be32(blob, i * 4);
        ensure!(h(0)? == MAGIC, "bad dtb magic {:#x}", h(0)?);
        let totalsize = h(1)? as usize;
        let (off_struct, off_strings, off_rsv) = (h(2)? as usize, h(3)? as usize, h(4)? as usize);
        let version = h(5)?;
        ensure!(version >= 16, "unsupported dtb version {version}");
        ensure!(totalsize <= blob.len(), "dtb totalsize beyond buffer");
        let boot_cpuid_phys = h(7)?;
        let size_strings = h(8)? as usize;
        let size_struct = if version >= 17 {
            h(9)? as usize
        } else {
            totalsize - off_struct
        };
        let strings = blob
            .get(off_strings..off_strings + size_strings)
            .context("strings block out of range")?;
        let structure = blob
            .get(off_struct..off_struct + size_struct)
            .context("struct block out of range")?;

        let mut reserved = Vec::new();
        let mut p = off_rsv;
        loop {
            let (a, s) = (be64(blob, p)?, be64(blob, p + 8)?);
            p += 16;
            if a == 0 && s == 0 {
                break;
            }
            reserved.push((a, s));
        }

        let mut pos = 0usize;
        // Skip leading NOPs, then expect the root node.
        let mut stack: Vec<Node> = Vec::new();
        let mut root: Option<Node> = None;
        loop {
            let tok = be32(structure, pos)?;
            pos += 4;
            match tok {
                BEGIN_NODE => {
                    let name = cstr(structure, pos)?;
                    pos = (pos + name.len() + 1).next_multiple_of(4);
                    ensure!(root.is_none(), "node after root closed");
                    stack.push(Node::new(name));
                }
                PROP => {
                    let len = be32(structure, pos)? as usize;
                    let nameoff = be32(structure, pos + 4)? as usize;
                    pos += 8;
                    let val = structure
                        .get(pos..pos + len)
                        .context("property value out of range")?
                        .to_vec();
                    pos = (pos + len).next_multiple_of(4);
                    let name = cstr(strings, nameoff)?;
                    stack
                        .last_mut()
                        .context("property outside node")?
                        .props
                        .push((name, val));
                }
                END_NODE => {
                    let n = stack.pop().context("unbalanced END_NODE")?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(n),
                        None => root = Some(n),
                    }
                }
                NOP => {}
                END => break,
                t => bail!("bad dtb token {t:#x} at struct offset {}", pos - 4),
            }
        }
        ensure!(stack.is_empty(), "unterminated nodes");
        Ok(Fdt {
            boot_cpuid_phys,
            reserved,
            root: root.context("no root node")?,
        })
    }

    /// Serializes as a packed version-17 blob (no free space).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let mut string_offs: std::collections::HashMap<String, u32> = Default::default();
        let mut st: Vec<u8> = Vec::new();
        fn emit(
            n: &Node,
            st: &mut Vec<u8>,
            strings: &mut Vec<u8>,
            offs: &mut std::collections::HashMap<String, u32>,
        ) {
            st.extend_from_slice(&BEGIN_NODE.to_be_bytes());
            st.extend_from_slice(n.name.as_bytes());
            st.push(0);
            pad4(st);
            for (name, val) in &n.props {
                let off = *offs.entry(name.clone()).or_insert_with(|| {
                    let o = strings.len() as u32;
                    strings.extend_from_slice(name.as_bytes());
                    strings.push(0);
                    o
                });
                st.extend_from_slice(&PROP.to_be_bytes());
                st.extend_from_slice(&(val.len() as u32).to_be_bytes());
                st.extend_from_slice(&off.to_be_bytes());
                st.extend_from_slice(val);
                pad4(st);
            }
            for c in &n.children {
                emit(c, st, strings, offs);
            }
            st.extend_from_slice(&END_NODE.to_be_bytes());
        }
        emit(&self.root, &mut st, &mut strings, &mut string_offs);
        st.extend_from_slice(&END.to_be_bytes());

        let off_rsv = HEADER_LEN; // already 8-aligned
        let rsv_len = (self.reserved.len() + 1) * 16;
        let off_struct = off_rsv + rsv_len;
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut out = Vec::with_capacity(total);
        for v in [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17,
            16,
            self.boot_cpuid_phys,
            strings.len() as u32,
            st.len() as u32,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for &(a, s) in self.reserved.iter().chain(std::iter::once(&(0, 0))) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&st);
        out.extend_from_slice(&strings);
        out
    }
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

fn be32(b: &[u8], off: usize) -> Result<u32> {
    let s = b.get(off..off + 4).context("dtb read out of range")?;
    Ok(u32::from_be_bytes(s.try_into().unwrap()))
}

fn be64(b: &[u8], off: usize) -> Result<u64> {
    let s = b.get(off..off + 8).context("dtb read out of range")?;
    Ok(u64::from_be_bytes(s.try_into().unwrap()))
}

fn cstr(b: &[u8], off: usize) -> Result<String> {
    let rest = b.get(off..).context("string offset out of range")?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .context("unterminated string")?;
    Ok(std::str::from_utf8(&rest[..end])?.to_string())
}

// ---- property value encoders ----

/// `<a b c>`: 32-bit big-endian cells.
pub fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// A 64-bit value as two cells (`#address-cells = <2>` style).
pub fn cells64(v: &[u64]) -> Vec<u8> {
    v.iter()
        .flat_map(|c| [(*c >> 32) as u32, *c as u32])
        .flat_map(|c| c.to_be_bytes())
        .collect()
}

/// `"text"`: NUL-terminated string.
pub fn string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// `"a", "b"`: string list.
pub fn strings(list: &[&str]) -> Vec<u8> {
    list.iter().flat_map(|s| string(s)).collect()
}

/// Empty (boolean) property.
pub fn empty() -> Vec<u8> {
    Vec::new()
}

/// Decodes a string-list property (for tests and diagnostics).
pub fn decode_strings(v: &[u8]) -> Vec<String> {
    v.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Decodes a cells property.
pub fn decode_cells(v: &[u8]) -> Vec<u32> {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree in the shape of qemu's virt tree (used when qemu is absent).
    fn sample() -> Fdt {
        let root = Node::new("")
            .with("interrupt-parent", cells(&[0x8002]))
            .with("#size-cells", cells(&[2]))
            .with("#address-cells", cells(&[2]))
            .with("compatible", string("linux,dummy-virt"));
        let mut root = root;
        root.children
            .push(Node::new("chosen").with("stdout-path", string("/pl011@9000000")));
        root.children.push(
            Node::new("pl011@9000000")
                .with("clock-names", strings(&["uartclk", "apb_pclk"]))
                .with("reg", cells64(&[0x900_0000, 0x1000]))
                .with("compatible", strings(&["arm,pl011", "arm,primecell"])),
        );
        root.children.push(
            Node::new("pl061@9030000").with("compatible", strings(&["arm,pl061", "arm,primecell"])),
        );
        Fdt {
            boot_cpuid_phys: 0,
            reserved: vec![(0x4800_0000, 0x1000)],
            root,
        }
    }

    fn qemu_virt_dtb() -> Option<Vec<u8>> {
        crate::util::which(crate::qemu::QEMU)?;
        let dir = std::env::temp_dir().join(format!("xtask-fdt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("virt.dtb");
        let st = std::process::Command::new("qemu-system-aarch64")
            .args(crate::qemu::machine_args(&format!(
                ",dumpdtb={}",
                path.display()
            )))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running qemu");
        assert!(st.success(), "qemu dumpdtb failed");
        let blob = std::fs::read(&path).ok();
        let _ = std::fs::remove_dir_all(&dir);
        blob
    }

    #[test]
    fn roundtrip_synthetic() {
        let t = sample();
        let b = t.to_bytes();
        let t2 = Fdt::parse(&b).unwrap();
        assert_eq!(t, t2);
        assert_eq!(b, t2.to_bytes());
        assert_eq!(be32(&b, 20).unwrap(), 17);
    }

    #[test]
    fn roundtrip_qemu_virt_tree() {
        let Some(blob) = qemu_virt_dtb() else {
            eprintln!("qemu-system-aarch64 not available; skipping qemu tree round trip");
            return;
        };
        let t = Fdt::parse(&blob).unwrap();
        assert!(t.node("/chosen").is_some());
        assert!(t.node("/pl011@9000000").is_some());
        assert!(t.node("/pl061@9030000").is_some());
        let packed = t.to_bytes();
        let t2 = Fdt::parse(&packed).unwrap();
        assert_eq!(t, t2, "tree changed across serialize/parse");
        assert_eq!(packed, t2.to_bytes(), "serialization not stable");
        // Node and property counts equal to the original blob's.
        fn count(n: &Node) -> (usize, usize) {
            n.children
                .iter()
                .map(count)
                .fold((1, n.props.len()), |a, b| (a.0 + b.0, a.1 + b.1))
        }
        assert_eq!(count(&t.root), count(&t2.root));
    }

    #[test]
    fn added_nodes_parse_back() {
        let mut t = sample();
        let chosen = t.node_mut("/chosen").unwrap();
        chosen.set_prop("#address-cells", cells(&[2]));
        chosen.set_prop("xen,xen-bootargs", string("console=dtuart"));
        chosen.add_child(
            Node::new("dom0-kernel@49000000")
                .with(
                    "compatible",
                    strings(&["multiboot,kernel", "multiboot,module"]),
                )
                .with("reg", cells64(&[0x4900_0000, 0x123456])),
        );
        chosen.add_child(
            Node::new("hello-a")
                .with("vpl011", empty())
                .with("cpus", cells(&[1])),
        );
        t.node_mut("/pl061@9030000")
            .unwrap()
            .set_prop("status", string("disabled"));
        let t2 = Fdt::parse(&t.to_bytes()).unwrap();
        let c = t2.node("/chosen").unwrap();
        assert_eq!(
            c.prop("stdout-path").unwrap(),
            b"/pl011@9000000\0",
            "existing props kept"
        );
        assert_eq!(decode_cells(c.prop("#address-cells").unwrap()), vec![2]);
        let k = t2.node("/chosen/dom0-kernel@49000000").unwrap();
        assert_eq!(
            decode_strings(k.prop("compatible").unwrap()),
            vec!["multiboot,kernel", "multiboot,module"]
        );
        assert_eq!(
            decode_cells(k.prop("reg").unwrap()),
            vec![0, 0x4900_0000, 0, 0x123456]
        );
        assert_eq!(
            t2.node("/chosen/hello-a").unwrap().prop("vpl011").unwrap(),
            b""
        );
        assert_eq!(
            t2.node("/pl061@9030000").unwrap().prop("status").unwrap(),
            b"disabled\0"
        );
        assert_eq!(t2.reserved, vec![(0x4800_0000, 0x1000)]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Fdt::parse(b"not a dtb at all, definitely not one....").is_err());
    }
}
