//! Wire layout of `struct vchan_interface` (xen `public/io/libxenvchan.h`).
//!
//! ```text
//! off  size  field
//!   0     4  left.cons    left ring: client writes, server reads
//!   4     4  left.prod
//!   8     4  right.cons   right ring: server writes, client reads
//!  12     4  right.prod
//!  16     2  left_order   log2 of the ring size, 10..=20
//!  18     2  right_order
//!  20     1  cli_live     0 exited, 1 connected, 2 not yet connected
//!  21     1  srv_live     0 exited, 1 connected
//!  22     1  cli_notify   bits the client tests (and clears) when it acts
//!  23     1  srv_notify   bits the server tests (and clears) when it acts
//!  24   4*n  grants[]     refs of the left ring's pages, then the right's
//! ```
//!
//! Order 10 puts the ring at offset 1024 of the header page, order 11 at
//! offset 2048; orders 12..=20 use `2^(order-12)` separately granted pages.

use crate::error::ProtocolError;
use crate::platform::PAGE_SIZE;

/// `left.cons`
pub const LEFT_CONS: usize = 0;
/// `left.prod`
pub const LEFT_PROD: usize = 4;
/// `right.cons`
pub const RIGHT_CONS: usize = 8;
/// `right.prod`
pub const RIGHT_PROD: usize = 12;
/// `left_order`
pub const LEFT_ORDER: usize = 16;
/// `right_order`
pub const RIGHT_ORDER: usize = 18;
/// `cli_live`
pub const CLI_LIVE: usize = 20;
/// `srv_live`
pub const SRV_LIVE: usize = 21;
/// `cli_notify`
pub const CLI_NOTIFY: usize = 22;
/// `srv_notify`
pub const SRV_NOTIFY: usize = 23;
/// `grants[0]`
pub const GRANTS: usize = 24;

/// Notify bit: send an event when data is written.
pub const NOTIFY_WRITE: u8 = 1;
/// Notify bit: send an event when data is read (space is freed).
pub const NOTIFY_READ: u8 = 2;

/// Live byte: the side has exited.
pub const LIVE_CLOSED: u8 = 0;
/// Live byte: the side is connected.
pub const LIVE_OPEN: u8 = 1;
/// Live byte (client only): the client has not connected yet.
pub const LIVE_PENDING: u8 = 2;

/// Smallest ring order (1 KiB, in the header page at offset 1024).
pub const MIN_ORDER: u8 = 10;
/// Largest ring order (1 MiB, 256 granted pages).
pub const MAX_ORDER: u8 = 20;
const PAGE_SHIFT: u8 = 12;

/// Where one ring lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// log2 of the ring size.
    pub order: u8,
    /// `Some(offset)` for a ring inside the header page, `None` for a ring in
    /// its own granted pages.
    pub in_page: Option<usize>,
}

impl RingGeometry {
    /// Ring size in bytes.
    pub const fn size(&self) -> usize {
        1 << self.order
    }
    /// Number of separately granted pages (0 for in-page rings).
    pub const fn pages(&self) -> usize {
        if self.order >= PAGE_SHIFT {
            1 << (self.order - PAGE_SHIFT)
        } else {
            0
        }
    }
}

/// Validated geometry of both rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Left ring (client → server).
    pub left: RingGeometry,
    /// Right ring (server → client).
    pub right: RingGeometry,
}

impl Geometry {
    /// Validate a pair of orders as they appear on the wire.
    ///
    /// Rejects orders outside 10..=20, two in-page rings of the same order
    /// (they would overlap), and grant lists that would run into an in-page
    /// ring (e.g. order 10 together with order 20).
    pub fn from_orders(left: u16, right: u16) -> Result<Self, ProtocolError> {
        let l = ring(left)?;
        let r = ring(right)?;
        if l.in_page.is_some() && l.in_page == r.in_page {
            return Err(ProtocolError::OrderConflict { left, right });
        }
        let g = Geometry { left: l, right: r };
        let end = g.grants_end();
        for off in [l.in_page, r.in_page].into_iter().flatten() {
            if end > off {
                return Err(ProtocolError::OrderConflict { left, right });
            }
        }
        debug_assert!(end <= PAGE_SIZE);
        Ok(g)
    }

    /// Total number of grant references in `grants[]`.
    pub const fn grant_count(&self) -> usize {
        self.left.pages() + self.right.pages()
    }

    /// End offset of `grants[]` in the header page.
    pub const fn grants_end(&self) -> usize {
        GRANTS + 4 * self.grant_count()
    }

    /// The orders libxenvchan's `libxenvchan_server_init` would choose for
    /// minimum ring sizes `left_min` and `right_min` bytes (in-page rings
    /// where possible). `None` if either exceeds 1 MiB.
    pub fn for_min_sizes(left_min: usize, right_min: usize) -> Option<(u8, u8)> {
        const SMALL: usize = 1 << 10;
        const LARGE: usize = 1 << 11;
        if left_min > 1 << MAX_ORDER || right_min > 1 << MAX_ORDER {
            return None;
        }
        let min_order = |siz: usize| {
            let mut o = PAGE_SHIFT;
            while siz > 1 << o {
                o += 1;
            }
            o
        };
        let (mut l, mut r) = (min_order(left_min), min_order(right_min));
        if left_min <= SMALL && right_min <= LARGE {
            (l, r) = (10, 11);
        } else if left_min <= LARGE && right_min <= SMALL {
            (l, r) = (11, 10);
        } else if left_min <= LARGE {
            l = 11;
        } else if right_min <= LARGE {
            r = 11;
        }
        Some((l, r))
    }
}

fn ring(order: u16) -> Result<RingGeometry, ProtocolError> {
    if !(MIN_ORDER as u16..=MAX_ORDER as u16).contains(&order) {
        return Err(ProtocolError::BadOrder { order });
    }
    let order = order as u8;
    let in_page = match order {
        10 => Some(1024),
        11 => Some(2048),
        _ => None,
    };
    Ok(RingGeometry { order, in_page })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders() {
        for l in 0..=u16::MAX {
            for r in [0u16, 9, 10, 11, 12, 19, 20, 21, 255, u16::MAX] {
                let ok = Geometry::from_orders(l, r).is_ok();
                let valid = (10..=20).contains(&l)
                    && (10..=20).contains(&r)
                    && !(l == r && l < 12)
                    && !((l == 10 && r == 20) || (r == 10 && l == 20));
                assert_eq!(ok, valid, "{l} {r}");
            }
        }
        let g = Geometry::from_orders(20, 20).unwrap();
        assert_eq!(g.grant_count(), 512);
        assert_eq!(g.grants_end(), 24 + 2048);
        let g = Geometry::from_orders(11, 20).unwrap();
        assert_eq!(g.grants_end(), 24 + 1024);
        assert!(Geometry::from_orders(10, 19).is_ok());
    }

    #[test]
    fn min_sizes_match_libxenvchan() {
        assert_eq!(Geometry::for_min_sizes(1024, 2048), Some((10, 11)));
        assert_eq!(Geometry::for_min_sizes(2048, 1024), Some((11, 10)));
        assert_eq!(Geometry::for_min_sizes(2048, 5000), Some((11, 13)));
        assert_eq!(Geometry::for_min_sizes(70000, 5), Some((17, 11)));
        assert_eq!(Geometry::for_min_sizes(1 << 20, 1 << 20), Some((20, 20)));
        assert_eq!(Geometry::for_min_sizes((1 << 20) + 1, 0), None);
        for (l, r) in [(0, 0), (5000, 5000), (1 << 20, 3000), (4096, 4097)] {
            let (a, b) = Geometry::for_min_sizes(l, r).unwrap();
            assert!(Geometry::from_orders(a.into(), b.into()).is_ok());
        }
    }
}
