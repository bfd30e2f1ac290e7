//! Byte rings as used by xenstore (`xenstore_domain_interface`, two rings
//! of 1024 bytes) and the PV console (`xencons_interface`, 1024-byte input
//! and 2048-byte output rings).
//!
//! Each ring has a consumer index `cons` and a producer index `prod`. The
//! readable bytes are `prod - cons` (wrapping), starting at
//! `cons & (size - 1)`; the writable bytes are `size - (prod - cons)`,
//! starting at `prod & (size - 1)`. A peer that claims
//! `prod - cons > size` is lying or corrupt: [`RingError::IndexesCorrupt`].
//!
//! Protocol order (the caller's job): the reader copies `prod`, issues a
//! read barrier, copies bytes, issues a full barrier, then publishes the
//! new `cons`. The writer copies `cons`, barrier, writes bytes, write
//! barrier, then publishes the new `prod`.

use core::fmt;
use core::ops::Range;

/// Errors of ring arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// `size` is not a non-zero power of two.
    BadSize(u32),
    /// `prod - cons` exceeds the ring size.
    IndexesCorrupt {
        /// Consumer index as read.
        cons: u32,
        /// Producer index as read.
        prod: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::BadSize(s) => write!(f, "ring size {s} is not a power of two"),
            RingError::IndexesCorrupt { cons, prod } => {
                write!(f, "ring indexes corrupt: cons={cons} prod={prod}")
            }
        }
    }
}

impl core::error::Error for RingError {}

/// A region of the ring: `total` bytes starting at `offset`, of which the
/// first `contiguous` bytes are before the end of the buffer; the remaining
/// `total - contiguous` bytes continue at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start offset within the ring buffer (`index & (size - 1)`).
    pub offset: u32,
    /// Bytes available without wrapping.
    pub contiguous: u32,
    /// Bytes available in all.
    pub total: u32,
}

impl Span {
    /// The span as up to two index ranges into the ring buffer: the part
    /// before the end, then the wrapped part (possibly empty).
    pub fn ranges(&self) -> (Range<usize>, Range<usize>) {
        let start = self.offset as usize;
        let first = start..start + self.contiguous as usize;
        let second = 0..(self.total - self.contiguous) as usize;
        (first, second)
    }

    /// Whether there is nothing to read or write.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The span limited to at most `n` bytes.
    pub fn truncate(&self, n: u32) -> Span {
        Span {
            offset: self.offset,
            contiguous: self.contiguous.min(n),
            total: self.total.min(n),
        }
    }
}

fn used(cons: u32, prod: u32, size: u32) -> Result<u32, RingError> {
    if !size.is_power_of_two() {
        return Err(RingError::BadSize(size));
    }
    let used = prod.wrapping_sub(cons);
    if used > size {
        return Err(RingError::IndexesCorrupt { cons, prod });
    }
    Ok(used)
}

fn span(index: u32, total: u32, size: u32) -> Span {
    let offset = index & (size - 1);
    Span {
        offset,
        contiguous: total.min(size - offset),
        total,
    }
}

/// The bytes a consumer may read.
pub fn readable(cons: u32, prod: u32, size: u32) -> Result<Span, RingError> {
    let used = used(cons, prod, size)?;
    Ok(span(cons, used, size))
}

/// The bytes a producer may write.
pub fn writable(cons: u32, prod: u32, size: u32) -> Result<Span, RingError> {
    let used = used(cons, prod, size)?;
    Ok(span(prod, size - used, size))
}

/// Copies readable bytes from `ring` (the whole ring buffer, `size` bytes)
/// into `dst`; returns the number copied. The caller then advances `cons`
/// by that amount. Fails if `ring.len()` is not `size`.
pub fn read_from(ring: &[u8], cons: u32, prod: u32, dst: &mut [u8]) -> Result<usize, RingError> {
    let size = u32::try_from(ring.len()).map_err(|_| RingError::BadSize(u32::MAX))?;
    let n = u32::try_from(dst.len()).unwrap_or(u32::MAX);
    let s = readable(cons, prod, size)?.truncate(n);
    let (a, b) = s.ranges();
    // Panic-free by construction (checked by tests/no-panic-probe): every
    // split and copy uses lengths taken from the slices themselves.
    let (Some(src_a), Some(src_b)) = (ring.get(a), ring.get(b)) else {
        return Ok(0);
    };
    let Some((da, rest)) = dst.split_at_mut_checked(src_a.len()) else {
        return Ok(0);
    };
    let Some(db) = rest.get_mut(..src_b.len()) else {
        return Ok(0);
    };
    da.copy_from_slice(src_a);
    db.copy_from_slice(src_b);
    Ok(src_a.len() + src_b.len())
}

/// Copies as much of `src` as fits into `ring` at the producer position;
/// returns the number copied. The caller then advances `prod`.
pub fn write_to(ring: &mut [u8], cons: u32, prod: u32, src: &[u8]) -> Result<usize, RingError> {
    let size = u32::try_from(ring.len()).map_err(|_| RingError::BadSize(u32::MAX))?;
    let n = u32::try_from(src.len()).unwrap_or(u32::MAX);
    let s = writable(cons, prod, size)?.truncate(n);
    let (a, b) = s.ranges();
    let (la, lb) = (a.len(), b.len());
    let Some((sa, rest)) = src.split_at_checked(la) else {
        return Ok(0);
    };
    let Some(sb) = rest.get(..lb) else {
        return Ok(0);
    };
    // Check both destinations before writing either, so a bad span never
    // leaves a half-written ring behind a count of zero.
    let (a_ok, b_ok) = (ring.get(a.clone()).is_some(), ring.get(b.clone()).is_some());
    if !(a_ok && b_ok) {
        return Ok(0);
    }
    if let Some(d) = ring.get_mut(a).and_then(|d| d.get_mut(..sa.len())) {
        d.copy_from_slice(sa);
    }
    if let Some(d) = ring.get_mut(b).and_then(|d| d.get_mut(..sb.len())) {
        d.copy_from_slice(sb);
    }
    Ok(sa.len() + sb.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn bad_size() {
        assert_eq!(readable(0, 0, 0), Err(RingError::BadSize(0)));
        assert_eq!(writable(0, 0, 3), Err(RingError::BadSize(3)));
    }

    #[test]
    fn exhaustive_small() {
        for shift in 0..5 {
            let size = 1u32 << shift;
            let bases = [0u32, 5, u32::MAX - 3, u32::MAX, u32::MAX - size];
            for base in bases {
                for c in 0..(2 * size + 2) {
                    for d in 0..(2 * size + 2) {
                        let cons = base.wrapping_add(c);
                        let prod = cons.wrapping_add(d);
                        let r = readable(cons, prod, size);
                        let w = writable(cons, prod, size);
                        if d > size {
                            assert_eq!(r, Err(RingError::IndexesCorrupt { cons, prod }));
                            assert_eq!(w, Err(RingError::IndexesCorrupt { cons, prod }));
                            continue;
                        }
                        let (r, w) = (r.unwrap(), w.unwrap());
                        assert_eq!(r.total, d);
                        assert_eq!(w.total, size - d);
                        assert_eq!(r.offset, cons % size);
                        assert_eq!(w.offset, prod % size);
                        assert!(r.offset + r.contiguous <= size);
                        assert!(w.offset + w.contiguous <= size);
                        assert!(r.contiguous <= r.total && w.contiguous <= w.total);
                        // Contiguous is maximal: either all or up to the end.
                        assert!(r.contiguous == r.total || r.offset + r.contiguous == size);
                        assert!(w.contiguous == w.total || w.offset + w.contiguous == size);
                        // Readable and writable regions tile the ring.
                        let mut cover = std::vec![0u8; size as usize];
                        for s in [r, w] {
                            let (a, b) = s.ranges();
                            for i in a.chain(b) {
                                cover[i] += 1;
                            }
                        }
                        assert!(cover.iter().all(|&x| x == 1));
                    }
                }
            }
        }
    }

    #[test]
    fn wrap_at_u32_max() {
        // prod has wrapped past zero, cons has not.
        let s = readable(u32::MAX - 1, 2, 8).unwrap();
        assert_eq!(s.total, 4);
        assert_eq!(s.offset, 6);
        assert_eq!(s.contiguous, 2);
        assert_eq!(s.ranges(), (6..8, 0..2));
        let w = writable(u32::MAX - 1, 2, 8).unwrap();
        assert_eq!((w.offset, w.contiguous, w.total), (2, 4, 4));
        // prod "behind" cons means a huge wrapped difference: corrupt.
        assert!(readable(3, 2, 8).is_err());
    }

    proptest! {
        /// A model byte stream through a ring with arbitrary chunking and
        /// a start index near wrap-around arrives intact.
        #[test]
        fn stream_through_ring(
            start in prop_oneof![Just(u32::MAX - 20), any::<u32>()],
            data in proptest::collection::vec(any::<u8>(), 0..300),
            writes in proptest::collection::vec(1usize..40, 1..50),
            reads in proptest::collection::vec(1usize..40, 1..50),
        ) {
            let mut ring = [0u8; 32];
            let (mut cons, mut prod) = (start, start);
            let mut sent = 0;
            let mut out = Vec::new();
            let mut i = 0;
            while out.len() < data.len() {
                let wn = writes[i % writes.len()];
                let n = write_to(&mut ring, cons, prod, &data[sent..(sent + wn).min(data.len())]).unwrap();
                sent += n;
                prod = prod.wrapping_add(n as u32);
                let mut buf = std::vec![0u8; reads[i % reads.len()]];
                let n = read_from(&ring, cons, prod, &mut buf).unwrap();
                out.extend_from_slice(&buf[..n]);
                cons = cons.wrapping_add(n as u32);
                i += 1;
            }
            prop_assert_eq!(out, data);
        }

        #[test]
        fn never_panics(cons: u32, prod: u32, shift in 0u32..32) {
            let size = 1u32 << shift;
            let d = prod.wrapping_sub(cons);
            prop_assert_eq!(readable(cons, prod, size).is_ok(), d <= size);
            prop_assert_eq!(writable(cons, prod, size).is_ok(), d <= size);
        }
    }
}
