//! The Xen block interface (`xen/include/public/io/blkif.h`): request and
//! response layouts for the native ABI of aarch64 (and x86_64: both align
//! `uint64_t` to 8 bytes), and validation of requests a frontend put on
//! the shared ring.
//!
//! Layouts (offsets in bytes, little endian):
//!
//! * `struct blkif_request` (112 bytes): `operation` u8 @0, `nr_segments`
//!   u8 @1, `handle` u16 @2, 4 bytes padding, `id` u64 @8,
//!   `sector_number` u64 @16, `seg[11]` @24, each 8 bytes:
//!   `{gref u32 @0, first_sect u8 @4, last_sect u8 @5, 2 bytes padding}`.
//! * `struct blkif_request_discard` (overlays it): `operation` u8 @0,
//!   `flag` u8 @1, `handle` u16 @2, `id` u64 @8, `sector_number` u64 @16,
//!   `nr_sectors` u64 @24.
//! * `struct blkif_request_indirect` (64 bytes): `operation` u8 @0,
//!   `indirect_op` u8 @1, `nr_segments` u16 @2, `id` u64 @8,
//!   `sector_number` u64 @16, `handle` u16 @24, 2 bytes padding,
//!   `indirect_grefs[8]` u32 @28; each indirect page holds 512
//!   `blkif_request_segment`s.
//! * `struct blkif_response` (16 bytes): `id` u64 @0, `operation` u8 @8,
//!   1 byte padding, `status` i16 @10, 4 bytes padding.
//!
//! A ring entry is the union of request and response (112 bytes), so a
//! one-page ring holds `ring_size(4096, 112, 16)` = 32 entries.
//!
//! The caller copies a request out of shared memory **once** into a
//! `[u8; REQUEST_SIZE]` and parses the copy: [`Request::parse`] checks
//! everything a backend relies on and returns a typed [`RequestError`].

use core::fmt;

use crate::le::{u16_at, u32_at, u64_at};
use crate::ring::shared;

/// Bytes of `struct blkif_request` (a ring entry's request half).
pub const REQUEST_SIZE: usize = 112;
/// Bytes of `struct blkif_response`.
pub const RESPONSE_SIZE: usize = 16;
/// Bytes of `struct blkif_request_indirect`.
pub const INDIRECT_REQUEST_SIZE: usize = 64;
/// Bytes of `struct blkif_request_segment`.
pub const SEGMENT_SIZE: usize = 8;
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const MAX_SEGMENTS: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`.
pub const MAX_INDIRECT_PAGES: usize = 8;
/// Segments per indirect page (4096 / 8).
pub const SEGMENTS_PER_INDIRECT_PAGE: usize = 512;
/// The most segments an indirect request may carry with this crate: the
/// upper bound of [`Vbd::max_indirect_segments`] (what a backend advertises
/// as `feature-max-indirect-segments`), and the capacity of a
/// [`Transfer`]. 64 segments (256 KiB) fit one indirect page; Linux
/// blkfront uses at most 32 unless told otherwise.
pub const MAX_INDIRECT_SEGMENTS: usize = 64;
/// Segments a [`Transfer`] holds (direct or indirect).
pub const MAX_TRANSFER_SEGMENTS: usize = if MAX_INDIRECT_SEGMENTS > MAX_SEGMENTS {
    MAX_INDIRECT_SEGMENTS
} else {
    MAX_SEGMENTS
};
/// `BLKIF_DISCARD_SECURE` in a discard request's `flag`.
pub const DISCARD_SECURE: u8 = 1;
/// Sector size of the protocol's `sector_number`, `first_sect` and
/// `last_sect` (without `feature-large-sector-size`).
pub const SECTOR_SIZE: u64 = 512;
/// Sectors in one 4 KiB page: `last_sect` must be below this.
pub const SECTORS_PER_PAGE: u8 = 8;
/// Offset of the first segment in a request.
const SEG_OFFSET: usize = 24;
/// Offset of `indirect_grefs` in an indirect request.
const INDIRECT_GREFS_OFFSET: usize = 28;

/// Entries of a one-page blkif ring.
pub const RING_SIZE: u32 = match shared::ring_size(4096, REQUEST_SIZE, RESPONSE_SIZE) {
    Some(n) => n,
    None => 0,
};

/// Status codes of a response.
pub mod status {
    /// `BLKIF_RSP_OKAY`.
    pub const OKAY: i16 = 0;
    /// `BLKIF_RSP_ERROR`.
    pub const ERROR: i16 = -1;
    /// `BLKIF_RSP_EOPNOTSUPP`.
    pub const EOPNOTSUPP: i16 = -2;
}

/// `BLKIF_OP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Operation {
    /// `BLKIF_OP_READ`.
    Read = 0,
    /// `BLKIF_OP_WRITE`.
    Write = 1,
    /// `BLKIF_OP_WRITE_BARRIER`.
    WriteBarrier = 2,
    /// `BLKIF_OP_FLUSH_DISKCACHE`.
    FlushDiskcache = 3,
    /// `BLKIF_OP_DISCARD`.
    Discard = 5,
    /// `BLKIF_OP_INDIRECT`.
    Indirect = 6,
}

impl Operation {
    /// The operation for a wire value, if known.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Read),
            1 => Some(Self::Write),
            2 => Some(Self::WriteBarrier),
            3 => Some(Self::FlushDiskcache),
            5 => Some(Self::Discard),
            6 => Some(Self::Indirect),
            _ => None,
        }
    }
}

/// Why a request was rejected. The request still gets a response (with
/// `BLKIF_RSP_ERROR` or `EOPNOTSUPP`) echoing `id` and `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The operation byte is not a known `BLKIF_OP_*`.
    UnknownOperation(u8),
    /// A known operation this backend does not offer (barrier; discard or
    /// indirect when the vbd does not advertise them; flush on a vbd
    /// without `feature-flush-cache`; a secure discard).
    Unsupported(Operation),
    /// An indirect request whose `indirect_op` is not read or write.
    BadIndirectOperation(u8),
    /// An indirect request with 0 segments or more than the vbd offers.
    BadIndirectSegmentCount(u16),
    /// The indirect segment bytes handed to
    /// [`IndirectRequest::transfer`] are fewer than `nr_segments` needs.
    ShortIndirectSegments,
    /// `nr_segments` is 0 or above [`MAX_SEGMENTS`] for a read or write.
    BadSegmentCount(u8),
    /// A segment's `first_sect > last_sect` or `last_sect >= 8`.
    BadSegment {
        /// Index of the segment.
        index: u8,
        /// `first_sect` as read.
        first_sect: u8,
        /// `last_sect` as read.
        last_sect: u8,
    },
    /// `sector_number + sectors` overflows or lies beyond the disk.
    OutOfRange {
        /// `sector_number` as read.
        sector: u64,
        /// Total sectors the segments cover.
        sectors: u64,
        /// Sectors of the vbd.
        capacity: u64,
    },
    /// A write on a read-only vbd.
    ReadOnly,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for RequestError {}

/// One segment: a granted page and the sectors of it to transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Grant reference of the frontend's page.
    pub gref: u32,
    /// First sector in the page (inclusive, `<= last_sect`).
    pub first_sect: u8,
    /// Last sector in the page (inclusive, `< 8`).
    pub last_sect: u8,
}

impl Segment {
    /// Sectors covered (1..=8 once validated).
    pub fn sectors(&self) -> u8 {
        self.last_sect.wrapping_sub(self.first_sect).wrapping_add(1)
    }
    /// Byte offset in the page.
    pub fn offset(&self) -> u16 {
        u16::from(self.first_sect) * SECTOR_SIZE as u16
    }
    /// Bytes to transfer.
    pub fn len(&self) -> u16 {
        u16::from(self.sectors()) * SECTOR_SIZE as u16
    }
    /// Whether the segment covers no bytes (never true once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A read-only view over a request entry copied out of the ring: the raw
/// fields, unvalidated.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    bytes: &'a [u8; REQUEST_SIZE],
}

impl<'a> RequestView<'a> {
    /// A view over one copied request entry.
    pub const fn new(bytes: &'a [u8; REQUEST_SIZE]) -> Self {
        Self { bytes }
    }
    /// `operation`.
    pub fn operation(&self) -> u8 {
        self.bytes[0]
    }
    /// `nr_segments` (read/write layout).
    pub fn nr_segments(&self) -> u8 {
        self.bytes[1]
    }
    /// `handle` (read/write and discard layouts).
    pub fn handle(&self) -> u16 {
        u16_at(self.bytes, 2)
    }
    /// `id`, echoed in the response (same offset in every layout).
    pub fn id(&self) -> u64 {
        u64_at(self.bytes, 8)
    }
    /// `sector_number`.
    pub fn sector_number(&self) -> u64 {
        u64_at(self.bytes, 16)
    }
    /// Raw segment `i` (0..11); `None` past the array.
    pub fn segment(&self, i: usize) -> Option<Segment> {
        if i >= MAX_SEGMENTS {
            return None;
        }
        let off = SEG_OFFSET + i * SEGMENT_SIZE;
        Some(Segment {
            gref: u32_at(self.bytes, off),
            first_sect: *self.bytes.get(off + 4)?,
            last_sect: *self.bytes.get(off + 5)?,
        })
    }
    /// Discard layout: `flag` (`BLKIF_DISCARD_SECURE`).
    pub fn discard_flag(&self) -> u8 {
        self.bytes[1]
    }
    /// Discard layout: `nr_sectors`.
    pub fn discard_nr_sectors(&self) -> u64 {
        u64_at(self.bytes, 24)
    }
    /// Indirect layout: `indirect_op`.
    pub fn indirect_op(&self) -> u8 {
        self.bytes[1]
    }
    /// Indirect layout: `nr_segments` (u16).
    pub fn indirect_nr_segments(&self) -> u16 {
        u16_at(self.bytes, 2)
    }
    /// Indirect layout: `handle`.
    pub fn indirect_handle(&self) -> u16 {
        u16_at(self.bytes, 24)
    }
    /// Indirect layout: `indirect_grefs[i]` (0..8).
    pub fn indirect_gref(&self, i: usize) -> Option<u32> {
        if i >= MAX_INDIRECT_PAGES {
            return None;
        }
        Some(u32_at(self.bytes, INDIRECT_GREFS_OFFSET + i * 4))
    }
}

/// What the backend knows about the vbd it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vbd {
    /// Sectors (of 512 bytes).
    pub sectors: u64,
    /// `mode=r`: writes are rejected.
    pub read_only: bool,
    /// Whether flush (`feature-flush-cache`) is offered.
    pub flush: bool,
    /// Whether discard (`feature-discard`) is offered (never secure).
    pub discard: bool,
    /// `feature-max-indirect-segments` as advertised (0: no indirect
    /// requests); values above [`MAX_INDIRECT_SEGMENTS`] count as that.
    pub max_indirect_segments: u16,
}

impl Vbd {
    /// The indirect segment limit in force.
    pub fn indirect_limit(&self) -> u16 {
        self.max_indirect_segments.min(MAX_INDIRECT_SEGMENTS as u16)
    }
}

/// A validated read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// First sector on the vbd.
    pub sector: u64,
    /// Number of valid entries in `segments`.
    pub nr_segments: u16,
    /// The segments, in order; entries past `nr_segments` are zero.
    pub segments: [Segment; MAX_TRANSFER_SEGMENTS],
    /// Total sectors (sum over the segments, 1..=8 per segment).
    pub sectors: u64,
}

impl Transfer {
    /// The valid segments.
    pub fn segments(&self) -> &[Segment] {
        self.segments
            .get(..usize::from(self.nr_segments))
            .unwrap_or(&[])
    }
}

/// A validated request (the parsed representation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Read sectors into the frontend's pages.
    Read(Transfer),
    /// Write the frontend's pages to the disk.
    Write(Transfer),
    /// Flush the disk's write cache (segments, if any, are ignored).
    Flush,
    /// Discard `sectors` sectors from `sector` (range checked; may be 0).
    Discard {
        /// First sector.
        sector: u64,
        /// Number of sectors.
        sectors: u64,
    },
    /// An indirect read or write: the header is valid; its segments are in
    /// the frontend's indirect pages, which the backend copies (once) and
    /// hands to [`IndirectRequest::transfer`].
    Indirect(IndirectRequest),
}

/// A validated indirect request header (`struct blkif_request_indirect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndirectRequest {
    /// Write (else read).
    pub write: bool,
    /// First sector on the vbd.
    pub sector: u64,
    /// Segments (1..=the vbd's limit).
    pub nr_segments: u16,
    /// Grant references of the indirect pages; the first
    /// [`IndirectRequest::pages`] are used.
    pub grefs: [u32; MAX_INDIRECT_PAGES],
}

impl IndirectRequest {
    /// Number of indirect pages the segments occupy.
    pub fn pages(&self) -> usize {
        usize::from(self.nr_segments).div_ceil(SEGMENTS_PER_INDIRECT_PAGE)
    }

    /// Bytes of segment descriptors to copy from indirect page `page`
    /// (from its offset 0).
    pub fn segment_bytes_in_page(&self, page: usize) -> usize {
        let before = page.saturating_mul(SEGMENTS_PER_INDIRECT_PAGE);
        usize::from(self.nr_segments)
            .saturating_sub(before)
            .min(SEGMENTS_PER_INDIRECT_PAGE)
            * SEGMENT_SIZE
    }

    /// Validates the segment descriptors, copied once out of the indirect
    /// pages and concatenated in `segment_bytes` (8 bytes each, at least
    /// `nr_segments` of them), against `vbd`.
    pub fn transfer(&self, segment_bytes: &[u8], vbd: &Vbd) -> Result<Transfer, RequestError> {
        let n = usize::from(self.nr_segments);
        if n == 0 || n > usize::from(vbd.indirect_limit()) || n > MAX_TRANSFER_SEGMENTS {
            return Err(RequestError::BadIndirectSegmentCount(self.nr_segments));
        }
        if segment_bytes.len() < n * SEGMENT_SIZE {
            return Err(RequestError::ShortIndirectSegments);
        }
        let mut segments = [Segment::default(); MAX_TRANSFER_SEGMENTS];
        for (slot, raw) in segments
            .iter_mut()
            .zip(segment_bytes.chunks_exact(SEGMENT_SIZE))
            .take(n)
        {
            *slot = Segment {
                gref: u32_at(raw, 0),
                first_sect: raw.get(4).copied().unwrap_or(0),
                last_sect: raw.get(5).copied().unwrap_or(0),
            };
        }
        finish_transfer(self.sector, segments, self.nr_segments, vbd)
    }
}

/// A parsed request: `id` and the raw operation to echo, and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `id` to echo.
    pub id: u64,
    /// Operation byte to echo.
    pub operation: u8,
    /// The validated work.
    pub kind: RequestKind,
}

/// The response header to send for a request that failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// `id` to echo.
    pub id: u64,
    /// Operation byte to echo.
    pub operation: u8,
    /// Why.
    pub error: RequestError,
}

impl Rejected {
    /// The status to answer with.
    pub fn status(&self) -> i16 {
        match self.error {
            RequestError::Unsupported(_) => status::EOPNOTSUPP,
            _ => status::ERROR,
        }
    }
}

impl Request {
    /// Validates a request copied out of the ring against `vbd`.
    pub fn parse(bytes: &[u8; REQUEST_SIZE], vbd: &Vbd) -> Result<Request, Rejected> {
        let v = RequestView::new(bytes);
        let id = v.id();
        let raw_op = v.operation();
        // The response to an indirect request carries its `indirect_op`
        // (as Linux blkback answers; blkfront checks it), not
        // BLKIF_OP_INDIRECT.
        let operation = if raw_op == Operation::Indirect as u8 {
            v.indirect_op()
        } else {
            raw_op
        };
        let reject = |error| Rejected {
            id,
            operation,
            error,
        };
        let op =
            Operation::from_u8(raw_op).ok_or(reject(RequestError::UnknownOperation(raw_op)))?;
        let kind = match op {
            Operation::Read | Operation::Write => {
                if op == Operation::Write && vbd.read_only {
                    return Err(reject(RequestError::ReadOnly));
                }
                let t = parse_transfer(&v, vbd).map_err(reject)?;
                if op == Operation::Read {
                    RequestKind::Read(t)
                } else {
                    RequestKind::Write(t)
                }
            }
            Operation::FlushDiskcache if vbd.flush => RequestKind::Flush,
            Operation::Discard if vbd.discard => {
                if v.discard_flag() & DISCARD_SECURE != 0 {
                    return Err(reject(RequestError::Unsupported(op)));
                }
                if vbd.read_only {
                    return Err(reject(RequestError::ReadOnly));
                }
                let sector = v.sector_number();
                let sectors = v.discard_nr_sectors();
                check_range(sector, sectors, vbd).map_err(reject)?;
                RequestKind::Discard { sector, sectors }
            }
            Operation::Indirect if vbd.indirect_limit() > 0 => {
                let write = match v.indirect_op() {
                    0 => false,
                    1 => true,
                    other => return Err(reject(RequestError::BadIndirectOperation(other))),
                };
                if write && vbd.read_only {
                    return Err(reject(RequestError::ReadOnly));
                }
                let n = v.indirect_nr_segments();
                if n == 0 || n > vbd.indirect_limit() {
                    return Err(reject(RequestError::BadIndirectSegmentCount(n)));
                }
                let mut grefs = [0u32; MAX_INDIRECT_PAGES];
                for (i, g) in grefs.iter_mut().enumerate() {
                    *g = v.indirect_gref(i).unwrap_or(0);
                }
                RequestKind::Indirect(IndirectRequest {
                    write,
                    sector: v.sector_number(),
                    nr_segments: n,
                    grefs,
                })
            }
            other => return Err(reject(RequestError::Unsupported(other))),
        };
        Ok(Request {
            id,
            operation,
            kind,
        })
    }
}

fn parse_transfer(v: &RequestView<'_>, vbd: &Vbd) -> Result<Transfer, RequestError> {
    let n = v.nr_segments();
    if n == 0 || usize::from(n) > MAX_SEGMENTS {
        return Err(RequestError::BadSegmentCount(n));
    }
    let mut segments = [Segment::default(); MAX_TRANSFER_SEGMENTS];
    for (i, slot) in segments.iter_mut().enumerate().take(usize::from(n)) {
        *slot = v.segment(i).ok_or(RequestError::BadSegmentCount(n))?;
    }
    finish_transfer(v.sector_number(), segments, u16::from(n), vbd)
}

/// Checks every segment's sector bounds and the whole range against the
/// vbd; `segments[..n]` are the raw segments.
fn finish_transfer(
    sector: u64,
    segments: [Segment; MAX_TRANSFER_SEGMENTS],
    n: u16,
    vbd: &Vbd,
) -> Result<Transfer, RequestError> {
    let mut sectors: u64 = 0;
    for (i, s) in segments.iter().enumerate().take(usize::from(n)) {
        if s.first_sect > s.last_sect || s.last_sect >= SECTORS_PER_PAGE {
            return Err(RequestError::BadSegment {
                index: i.min(255) as u8,
                first_sect: s.first_sect,
                last_sect: s.last_sect,
            });
        }
        sectors += u64::from(s.sectors());
    }
    check_range(sector, sectors, vbd)?;
    Ok(Transfer {
        sector,
        nr_segments: n,
        segments,
        sectors,
    })
}

/// `sector + sectors` must not overflow and must lie within the vbd.
fn check_range(sector: u64, sectors: u64, vbd: &Vbd) -> Result<(), RequestError> {
    match sector.checked_add(sectors) {
        Some(end) if end <= vbd.sectors => Ok(()),
        _ => Err(RequestError::OutOfRange {
            sector,
            sectors,
            capacity: vbd.sectors,
        }),
    }
}

/// Encodes a response entry.
pub fn encode_response(id: u64, operation: u8, status: i16) -> [u8; RESPONSE_SIZE] {
    let mut b = [0u8; RESPONSE_SIZE];
    b[..8].copy_from_slice(&id.to_le_bytes());
    b[8] = operation;
    b[10..12].copy_from_slice(&status.to_le_bytes());
    b
}

/// Decodes a response entry: `(id, operation, status)` (frontends, tests).
pub fn decode_response(b: &[u8; RESPONSE_SIZE]) -> (u64, u8, i16) {
    (u64_at(b, 0), b[8], u16_at(b, 10) as i16)
}

/// Byte offset of ring slot `slot` in a one-page blkif ring.
pub fn slot_offset(slot: u32) -> usize {
    shared::SRING_HEADER_SIZE + (slot as usize % RING_SIZE.max(1) as usize) * REQUEST_SIZE
}

/// Encodes a read/write request (frontends, tests, fuzz seeds).
pub fn encode_request(
    operation: u8,
    handle: u16,
    id: u64,
    sector: u64,
    segments: &[Segment],
) -> [u8; REQUEST_SIZE] {
    let mut b = [0u8; REQUEST_SIZE];
    b[0] = operation;
    b[1] = segments.len().min(255) as u8;
    b[2..4].copy_from_slice(&handle.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    for (i, s) in segments.iter().take(MAX_SEGMENTS).enumerate() {
        let off = SEG_OFFSET + i * SEGMENT_SIZE;
        b[off..off + 4].copy_from_slice(&s.gref.to_le_bytes());
        b[off + 4] = s.first_sect;
        b[off + 5] = s.last_sect;
    }
    b
}

/// Encodes a discard request (frontends, tests, fuzz seeds).
pub fn encode_discard(id: u64, sector: u64, sectors: u64, flag: u8) -> [u8; REQUEST_SIZE] {
    let mut b = [0u8; REQUEST_SIZE];
    b[0] = Operation::Discard as u8;
    b[1] = flag;
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    b[24..32].copy_from_slice(&sectors.to_le_bytes());
    b
}

/// Encodes an indirect request header (frontends, tests, fuzz seeds).
pub fn encode_indirect(
    indirect_op: u8,
    id: u64,
    sector: u64,
    nr_segments: u16,
    grefs: &[u32],
) -> [u8; REQUEST_SIZE] {
    let mut b = [0u8; REQUEST_SIZE];
    b[0] = Operation::Indirect as u8;
    b[1] = indirect_op;
    b[2..4].copy_from_slice(&nr_segments.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    for (i, g) in grefs.iter().take(MAX_INDIRECT_PAGES).enumerate() {
        let off = INDIRECT_GREFS_OFFSET + i * 4;
        b[off..off + 4].copy_from_slice(&g.to_le_bytes());
    }
    b
}

/// Encodes segment descriptors as they sit in an indirect page.
pub fn encode_segment(s: &Segment) -> [u8; SEGMENT_SIZE] {
    let mut b = [0u8; SEGMENT_SIZE];
    b[..4].copy_from_slice(&s.gref.to_le_bytes());
    b[4] = s.first_sect;
    b[5] = s.last_sect;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const VBD: Vbd = Vbd {
        sectors: 2048,
        read_only: false,
        flush: true,
        discard: false,
        max_indirect_segments: 0,
    };
    const FULL: Vbd = Vbd {
        discard: true,
        max_indirect_segments: 32,
        ..VBD
    };

    fn indirect_bytes(segs: &[Segment]) -> std::vec::Vec<u8> {
        segs.iter().flat_map(encode_segment).collect()
    }

    #[test]
    fn discard() {
        let r = Request::parse(&encode_discard(7, 100, 1948, 0), &FULL).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(
            r.kind,
            RequestKind::Discard {
                sector: 100,
                sectors: 1948
            }
        );
        let e = Request::parse(&encode_discard(7, 100, 1949, 0), &FULL).unwrap_err();
        assert!(matches!(e.error, RequestError::OutOfRange { .. }));
        let e = Request::parse(&encode_discard(7, u64::MAX, 2, 0), &FULL).unwrap_err();
        assert!(matches!(e.error, RequestError::OutOfRange { .. }));
        let e = Request::parse(&encode_discard(7, 0, 8, DISCARD_SECURE), &FULL).unwrap_err();
        assert_eq!(e.error, RequestError::Unsupported(Operation::Discard));
        let ro = Vbd {
            read_only: true,
            ..FULL
        };
        let e = Request::parse(&encode_discard(7, 0, 8, 0), &ro).unwrap_err();
        assert_eq!(e.error, RequestError::ReadOnly);
        // Not advertised: EOPNOTSUPP.
        let e = Request::parse(&encode_discard(7, 0, 8, 0), &VBD).unwrap_err();
        assert_eq!(e.status(), status::EOPNOTSUPP);
    }

    #[test]
    fn indirect() {
        let segs: std::vec::Vec<Segment> = (0..20).map(|i| seg(100 + i, 0, 7)).collect();
        let b = encode_indirect(1, 9, 64, 20, &[55]);
        let r = Request::parse(&b, &FULL).unwrap();
        let RequestKind::Indirect(ind) = r.kind else {
            panic!("{:?}", r.kind)
        };
        assert!(ind.write);
        // Echoed operation: the indirect_op, as blkfront expects.
        assert_eq!(r.operation, 1);
        assert_eq!((ind.sector, ind.nr_segments, ind.pages()), (64, 20, 1));
        assert_eq!(ind.grefs[0], 55);
        assert_eq!(ind.segment_bytes_in_page(0), 160);
        assert_eq!(ind.segment_bytes_in_page(1), 0);
        let t = ind.transfer(&indirect_bytes(&segs), &FULL).unwrap();
        assert_eq!((t.sectors, t.segments().len()), (160, 20));
        assert_eq!(t.segments()[19].gref, 119);
        // Short or garbage segment pages.
        assert_eq!(
            ind.transfer(&indirect_bytes(&segs[..19]), &FULL),
            Err(RequestError::ShortIndirectSegments)
        );
        let mut bad = segs.clone();
        bad[13] = seg(1, 6, 2);
        assert!(matches!(
            ind.transfer(&indirect_bytes(&bad), &FULL),
            Err(RequestError::BadSegment { index: 13, .. })
        ));
        bad[13] = seg(1, 0, 8);
        assert!(ind.transfer(&indirect_bytes(&bad), &FULL).is_err());
        // Range: 20 pages from 1900 end past 2048.
        let far = Request::parse(&encode_indirect(0, 9, 1900, 20, &[55]), &FULL).unwrap();
        let RequestKind::Indirect(far) = far.kind else {
            panic!()
        };
        assert!(matches!(
            far.transfer(&indirect_bytes(&segs), &FULL),
            Err(RequestError::OutOfRange { .. })
        ));
        // Header checks.
        let err = |b| Request::parse(&b, &FULL).unwrap_err().error;
        assert_eq!(
            err(encode_indirect(0, 1, 0, 0, &[1])),
            RequestError::BadIndirectSegmentCount(0)
        );
        assert_eq!(
            err(encode_indirect(0, 1, 0, 33, &[1])),
            RequestError::BadIndirectSegmentCount(33)
        );
        assert_eq!(
            err(encode_indirect(0, 1, 0, u16::MAX, &[1])),
            RequestError::BadIndirectSegmentCount(u16::MAX)
        );
        assert_eq!(
            err(encode_indirect(3, 1, 0, 4, &[1])),
            RequestError::BadIndirectOperation(3)
        );
        let e = Request::parse(&encode_indirect(0, 1, 0, 0, &[1]), &FULL).unwrap_err();
        assert_eq!(e.operation, 0);
        let ro = Vbd {
            read_only: true,
            ..FULL
        };
        assert_eq!(
            Request::parse(&encode_indirect(1, 1, 0, 4, &[1]), &ro)
                .unwrap_err()
                .error,
            RequestError::ReadOnly
        );
        // Not advertised: EOPNOTSUPP.
        let e = Request::parse(&encode_indirect(0, 1, 0, 4, &[1]), &VBD).unwrap_err();
        assert_eq!(e.error, RequestError::Unsupported(Operation::Indirect));
        // A limit above what the crate holds is clamped.
        let huge = Vbd {
            max_indirect_segments: 4096,
            ..FULL
        };
        assert_eq!(huge.indirect_limit() as usize, MAX_INDIRECT_SEGMENTS);
        assert!(Request::parse(&encode_indirect(0, 1, 0, 65, &[1]), &huge).is_err());
    }

    fn seg(gref: u32, f: u8, l: u8) -> Segment {
        Segment {
            gref,
            first_sect: f,
            last_sect: l,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(RING_SIZE, 32);
        assert_eq!(SEG_OFFSET + MAX_SEGMENTS * SEGMENT_SIZE, REQUEST_SIZE);
        assert_eq!(INDIRECT_GREFS_OFFSET + MAX_INDIRECT_PAGES * 4, 60);
        assert_eq!(SEGMENTS_PER_INDIRECT_PAGE * SEGMENT_SIZE, 4096);
        assert_eq!(slot_offset(0), 64);
        assert_eq!(slot_offset(31) + REQUEST_SIZE, 64 + 32 * 112);
        assert!(slot_offset(31) + REQUEST_SIZE <= 4096);
    }

    #[test]
    fn field_offsets() {
        let mut b = [0u8; REQUEST_SIZE];
        b[0] = 1;
        b[1] = 2;
        b[2..4].copy_from_slice(&0x0033u16.to_le_bytes());
        b[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        b[16..24].copy_from_slice(&99u64.to_le_bytes());
        b[24..28].copy_from_slice(&7u32.to_le_bytes());
        b[28] = 1;
        b[29] = 3;
        b[32..36].copy_from_slice(&8u32.to_le_bytes());
        b[37] = 7;
        let v = RequestView::new(&b);
        assert_eq!(v.operation(), 1);
        assert_eq!(v.nr_segments(), 2);
        assert_eq!(v.handle(), 0x33);
        assert_eq!(v.id(), 0x1122_3344_5566_7788);
        assert_eq!(v.sector_number(), 99);
        assert_eq!(v.segment(0), Some(seg(7, 1, 3)));
        assert_eq!(v.segment(1), Some(seg(8, 0, 7)));
        assert_eq!(v.segment(11), None);
        // Indirect overlay.
        assert_eq!(v.indirect_nr_segments(), 0x33);
        assert_eq!(v.indirect_handle(), 7);
        assert_eq!(v.indirect_gref(0), Some(u32::from_le_bytes([1, 3, 0, 0])));
        assert_eq!(v.indirect_gref(8), None);
        assert_eq!(
            v.discard_nr_sectors(),
            u64::from_le_bytes(b[24..32].try_into().unwrap())
        );
    }

    #[test]
    fn read_write_roundtrip() {
        let b = encode_request(0, 0, 42, 16, &[seg(10, 0, 7), seg(11, 2, 3)]);
        let r = Request::parse(&b, &VBD).unwrap();
        assert_eq!(r.id, 42);
        let RequestKind::Read(t) = r.kind else {
            panic!()
        };
        assert_eq!(t.sectors, 10);
        assert_eq!(t.segments().len(), 2);
        assert_eq!(t.segments()[1].offset(), 1024);
        assert_eq!(t.segments()[1].len(), 1024);
        let b = encode_request(1, 0, 43, 2038, &[seg(1, 0, 7), seg(2, 0, 1)]);
        assert!(matches!(
            Request::parse(&b, &VBD).unwrap().kind,
            RequestKind::Write(_)
        ));
    }

    #[test]
    fn malformed() {
        let err = |b: [u8; REQUEST_SIZE], vbd: &Vbd| Request::parse(&b, vbd).unwrap_err();
        let e = err(encode_request(0, 0, 5, 0, &[]), &VBD);
        assert_eq!(e.error, RequestError::BadSegmentCount(0));
        assert_eq!((e.id, e.operation, e.status()), (5, 0, status::ERROR));
        let mut b = encode_request(0, 0, 5, 0, &[seg(1, 0, 0)]);
        b[1] = 12;
        assert_eq!(err(b, &VBD).error, RequestError::BadSegmentCount(12));
        b[1] = 255;
        assert_eq!(err(b, &VBD).error, RequestError::BadSegmentCount(255));
        assert!(matches!(
            err(encode_request(0, 0, 5, 0, &[seg(1, 3, 2)]), &VBD).error,
            RequestError::BadSegment { index: 0, .. }
        ));
        assert!(matches!(
            err(
                encode_request(0, 0, 5, 0, &[seg(1, 0, 7), seg(1, 0, 8)]),
                &VBD
            )
            .error,
            RequestError::BadSegment { index: 1, .. }
        ));
        // Range: end exactly at capacity is fine, one past is not.
        assert!(Request::parse(&encode_request(0, 0, 5, 2040, &[seg(1, 0, 7)]), &VBD).is_ok());
        assert!(matches!(
            err(encode_request(0, 0, 5, 2041, &[seg(1, 0, 7)]), &VBD).error,
            RequestError::OutOfRange { .. }
        ));
        assert!(matches!(
            err(encode_request(0, 0, 5, u64::MAX - 2, &[seg(1, 0, 7)]), &VBD).error,
            RequestError::OutOfRange { .. }
        ));
        assert_eq!(
            err(encode_request(9, 0, 5, 0, &[seg(1, 0, 7)]), &VBD).error,
            RequestError::UnknownOperation(9)
        );
        let e = err(encode_request(5, 0, 5, 0, &[]), &VBD);
        assert_eq!(e.error, RequestError::Unsupported(Operation::Discard));
        assert_eq!(e.status(), status::EOPNOTSUPP);
        assert_eq!(
            err(encode_request(6, 0, 5, 0, &[]), &VBD).error,
            RequestError::Unsupported(Operation::Indirect)
        );
        assert_eq!(
            err(encode_request(2, 0, 5, 0, &[seg(1, 0, 7)]), &VBD).error,
            RequestError::Unsupported(Operation::WriteBarrier)
        );
        let ro = Vbd {
            read_only: true,
            flush: false,
            ..VBD
        };
        assert_eq!(
            err(encode_request(1, 0, 5, 0, &[seg(1, 0, 7)]), &ro).error,
            RequestError::ReadOnly
        );
        assert!(Request::parse(&encode_request(0, 0, 5, 0, &[seg(1, 0, 7)]), &ro).is_ok());
        assert_eq!(
            err(encode_request(3, 0, 5, 0, &[]), &ro).error,
            RequestError::Unsupported(Operation::FlushDiskcache)
        );
        assert_eq!(
            Request::parse(&encode_request(3, 0, 5, 0, &[]), &VBD)
                .unwrap()
                .kind,
            RequestKind::Flush
        );
    }

    #[test]
    fn response_layout() {
        let r = encode_response(0x0102_0304_0506_0708, 1, status::ERROR);
        assert_eq!(&r[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(r[8], 1);
        assert_eq!(&r[10..12], &[0xff, 0xff]);
        assert_eq!(decode_response(&r), (0x0102_0304_0506_0708, 1, -1));
    }
}
