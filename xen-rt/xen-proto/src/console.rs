//! The Xen PV console page (`xen/include/public/io/console.h`) as seen by
//! a console backend: a typed, validated view of the index block, the
//! line assembly of what the guest writes, the echo queue of what the
//! backend answers, and a sans-I/O backend ([`Backend`]) that ties them
//! together over a caller-provided [`Page`].
//!
//! Layout of `struct xencons_interface` (offsets in bytes, little endian):
//!
//! | field      | offset | size | written by |
//! |------------|--------|------|------------|
//! | `in[]`     | 0      | 1024 | backend (bytes for the guest to read) |
//! | `out[]`    | 1024   | 2048 | frontend (bytes the guest wrote) |
//! | `in_cons`  | 3072   | 4    | frontend |
//! | `in_prod`  | 3076   | 4    | backend |
//! | `out_cons` | 3080   | 4    | backend |
//! | `out_prod` | 3084   | 4    | frontend |
//! | `connection` | 3088 | 1    | backend (Xen 4.21's header; 0 = connected) |
//!
//! The indices are free-running `u32`s; a byte lives at
//! `index & (size - 1)`. A secondary console (Linux `hvc_xen`'s xenbus
//! frontend, `device/console/<N>`, N ≥ 1) grants this page and publishes
//! `ring-ref` and `port` in its xenstore directory, then switches to
//! Initialised; the backend maps the page, binds the event channel and
//! switches to Connected.
//!
//! # Rules
//!
//! * The index block is copied out of the page **once** per look
//!   ([`Page::read_indices`]) and validated here: the frontend's claims
//!   must satisfy `out_prod - out_cons <= 2048` and
//!   `in_prod - in_cons <= 1024` (wrapping), checked against the
//!   backend's **own** copies of `out_cons` and `in_prod`. The frontend
//!   never writes those two; if the page shows other values than the
//!   backend published, the frontend broke the protocol
//!   ([`IndexError::BackendIndexChanged`]). Either way the caller
//!   disconnects it; nothing here panics.
//! * Ring bytes are copied out once into a local buffer and only the
//!   copy is parsed. Bytes are only ever read from the readable span of
//!   `out` and written into the writable span of `in`.
//! * What the guest writes is printed by the caller as bounded,
//!   sanitised lines ([`LineAssembler`]): printable ASCII is kept, a tab
//!   becomes a space, `\r` is dropped, any other byte becomes `.`; a line
//!   longer than [`MAX_LINE`] is cut into pieces ([`Line::continued`]).
//! * Echo (a test behaviour the caller selects): every line piece is
//!   queued back into `in` as `echo: <text>\n`, except pieces that
//!   already start with [`ECHO_PREFIX`] (a guest tty that echoes its
//!   input would otherwise loop forever). The queue is bounded
//!   ([`ECHO_QUEUE`]); a line that does not fit is dropped whole and
//!   counted.
//!
//! Memory order (the caller's [`Page`] does it): acquire after copying
//! the index block (ring bytes are read after the producer index), and
//! release stores when publishing `out_cons` (after the bytes were read)
//! and `in_prod` (after the bytes were written), as `hvc_xen`'s `mb()` /
//! `wmb()` pair with them on the other side.

use core::fmt;

use crate::le::u32_at;
use crate::ring::bytes::{self, Span};

/// Bytes of the input ring (backend to guest).
pub const IN_SIZE: u32 = 1024;
/// Bytes of the output ring (guest to backend).
pub const OUT_SIZE: u32 = 2048;
/// Offset of `in[]`.
pub const IN_OFFSET: usize = 0;
/// Offset of `out[]`.
pub const OUT_OFFSET: usize = 1024;
/// Offset of the index block (`in_cons`, `in_prod`, `out_cons`,
/// `out_prod`).
pub const INDEX_OFFSET: usize = 3072;
/// Bytes of the index block.
pub const INDEX_BLOCK: usize = 16;
/// Offset of `in_cons` (frontend).
pub const IN_CONS: usize = 3072;
/// Offset of `in_prod` (backend).
pub const IN_PROD: usize = 3076;
/// Offset of `out_cons` (backend).
pub const OUT_CONS: usize = 3080;
/// Offset of `out_prod` (frontend).
pub const OUT_PROD: usize = 3084;
/// Offset of the `connection` byte (Xen 4.21's `console.h`; Linux 6.12
/// does not look at it, and its zeroed page already reads as connected).
pub const CONNECTION: usize = 3088;
/// `XENCONSOLE_CONNECTED`.
pub const CONNECTED: u8 = 0;
/// `XENCONSOLE_DISCONNECTED`.
pub const DISCONNECTED: u8 = 1;

/// Bytes of text in one printed line piece.
pub const MAX_LINE: usize = 80;
/// What echoed lines start with.
pub const ECHO_PREFIX: &[u8] = b"echo: ";
/// Bytes the echo queue holds (two input rings' worth).
pub const ECHO_QUEUE: usize = 2048;

/// One of the four indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `in_cons`.
    InCons,
    /// `in_prod`.
    InProd,
    /// `out_cons`.
    OutCons,
    /// `out_prod`.
    OutProd,
}

/// The index block exactly as copied out of the page: untrusted claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawIndices {
    /// Input consumer (the frontend's).
    pub in_cons: u32,
    /// Input producer (the backend's).
    pub in_prod: u32,
    /// Output consumer (the backend's).
    pub out_cons: u32,
    /// Output producer (the frontend's).
    pub out_prod: u32,
}

impl RawIndices {
    /// Decodes a copied index block.
    pub fn parse(block: &[u8; INDEX_BLOCK]) -> Self {
        RawIndices {
            in_cons: u32_at(block, 0),
            in_prod: u32_at(block, 4),
            out_cons: u32_at(block, 8),
            out_prod: u32_at(block, 12),
        }
    }

    /// The block as it sits in the page.
    pub fn encode(&self) -> [u8; INDEX_BLOCK] {
        let mut b = [0u8; INDEX_BLOCK];
        for (dst, v) in
            b.chunks_exact_mut(4)
                .zip([self.in_cons, self.in_prod, self.out_cons, self.out_prod])
        {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

/// Why an index block was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexError {
    /// `out_prod - out_cons` exceeds the output ring.
    OutputCorrupt {
        /// `out_cons` (the backend's).
        cons: u32,
        /// `out_prod` as read.
        prod: u32,
    },
    /// `in_prod - in_cons` exceeds the input ring (the frontend's
    /// `in_cons` ran past `in_prod`, or far behind it).
    InputCorrupt {
        /// `in_cons` as read.
        cons: u32,
        /// `in_prod` (the backend's).
        prod: u32,
    },
    /// The page shows another value than the backend published for an
    /// index only the backend writes.
    BackendIndexChanged {
        /// Which index.
        index: Index,
        /// What the backend published.
        published: u32,
        /// What the page holds.
        found: u32,
    },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::OutputCorrupt { cons, prod } => write!(
                f,
                "out_prod {prod} - out_cons {cons} exceeds the {OUT_SIZE}-byte ring"
            ),
            IndexError::InputCorrupt { cons, prod } => write!(
                f,
                "in_prod {prod} - in_cons {cons} exceeds the {IN_SIZE}-byte ring"
            ),
            IndexError::BackendIndexChanged {
                index,
                published,
                found,
            } => write!(
                f,
                "frontend wrote backend-owned {index:?}: published {published}, found {found}"
            ),
        }
    }
}

impl core::error::Error for IndexError {}

/// A validated index block: the readable output, the unread input and
/// the room for more input, as spans of their rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indices {
    raw: RawIndices,
    output: Span,
    input_unread: Span,
    input_room: Span,
}

fn corrupt_out(e: bytes::RingError, raw: &RawIndices) -> IndexError {
    let _ = e;
    IndexError::OutputCorrupt {
        cons: raw.out_cons,
        prod: raw.out_prod,
    }
}

fn corrupt_in(e: bytes::RingError, raw: &RawIndices) -> IndexError {
    let _ = e;
    IndexError::InputCorrupt {
        cons: raw.in_cons,
        prod: raw.in_prod,
    }
}

impl Indices {
    /// Checks both rings of a block: `prod - cons` (wrapping) within
    /// the ring size.
    pub fn check(raw: RawIndices) -> Result<Self, IndexError> {
        let output = bytes::readable(raw.out_cons, raw.out_prod, OUT_SIZE)
            .map_err(|e| corrupt_out(e, &raw))?;
        let input_unread =
            bytes::readable(raw.in_cons, raw.in_prod, IN_SIZE).map_err(|e| corrupt_in(e, &raw))?;
        let input_room =
            bytes::writable(raw.in_cons, raw.in_prod, IN_SIZE).map_err(|e| corrupt_in(e, &raw))?;
        Ok(Indices {
            raw,
            output,
            input_unread,
            input_room,
        })
    }

    /// The indices the spans were computed from.
    pub fn raw(&self) -> RawIndices {
        self.raw
    }

    /// Bytes the guest wrote that the backend has not consumed (offsets
    /// into `out[]`).
    pub fn output(&self) -> Span {
        self.output
    }

    /// Bytes the backend wrote that the guest has not read yet (offsets
    /// into `in[]`).
    pub fn input_unread(&self) -> Span {
        self.input_unread
    }

    /// Room for the backend to write into `in[]`.
    pub fn input_room(&self) -> Span {
        self.input_room
    }
}

/// The backend's own indices (`out_cons`, `in_prod`): it is their only
/// writer, so it never takes them from the page after attaching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackIndices {
    out_cons: u32,
    in_prod: u32,
}

impl BackIndices {
    /// Attaches to a page whose block reads `raw` (a fresh page is all
    /// zero; a frontend may have written output before the backend
    /// came): adopts its `out_cons` and `in_prod` and validates the rest.
    pub fn attach(raw: RawIndices) -> Result<(Self, Indices), IndexError> {
        let v = Indices::check(raw)?;
        Ok((
            BackIndices {
                out_cons: raw.out_cons,
                in_prod: raw.in_prod,
            },
            v,
        ))
    }

    /// `out_cons` as last published.
    pub fn out_cons(&self) -> u32 {
        self.out_cons
    }

    /// `in_prod` as last published.
    pub fn in_prod(&self) -> u32 {
        self.in_prod
    }

    /// Validates a block copied from the page: the backend's indices
    /// must be as published, the frontend's within reach of them.
    pub fn check(&self, raw: RawIndices) -> Result<Indices, IndexError> {
        if raw.out_cons != self.out_cons {
            return Err(IndexError::BackendIndexChanged {
                index: Index::OutCons,
                published: self.out_cons,
                found: raw.out_cons,
            });
        }
        if raw.in_prod != self.in_prod {
            return Err(IndexError::BackendIndexChanged {
                index: Index::InProd,
                published: self.in_prod,
                found: raw.in_prod,
            });
        }
        Indices::check(raw)
    }

    /// Consumes up to `n` bytes of `view`'s output; returns the new
    /// `out_cons` to publish.
    pub fn consume_output(&mut self, view: &Indices, n: u32) -> u32 {
        self.out_cons = self.out_cons.wrapping_add(n.min(view.output.total));
        self.out_cons
    }

    /// Produces up to `n` bytes into `view`'s input room; returns the new
    /// `in_prod` to publish.
    pub fn produce_input(&mut self, view: &Indices, n: u32) -> u32 {
        self.in_prod = self.in_prod.wrapping_add(n.min(view.input_room.total));
        self.in_prod
    }
}

/// One printed piece of guest output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// Sanitised text: printable ASCII only, at most [`MAX_LINE`] bytes.
    pub text: &'a str,
    /// This piece continues the previous one (the line was longer than
    /// [`MAX_LINE`], or its start was flushed before the newline came).
    pub continued: bool,
    /// The guest ended the line here (a newline); false for a piece cut
    /// at [`MAX_LINE`] or flushed.
    pub complete: bool,
}

/// Splits guest output into bounded, sanitised lines.
#[derive(Debug, Clone)]
pub struct LineAssembler {
    buf: [u8; MAX_LINE],
    len: usize,
    continued: bool,
    sanitised: u64,
}

impl Default for LineAssembler {
    fn default() -> Self {
        Self::new()
    }
}

/// What a guest byte becomes in a printed line: `Some(printable)` or
/// `None` (dropped: `\r`); `\n` is handled by the caller.
pub fn sanitise(b: u8) -> Option<u8> {
    match b {
        b'\r' => None,
        b'\t' => Some(b' '),
        0x20..=0x7e => Some(b),
        _ => Some(b'.'),
    }
}

impl LineAssembler {
    /// An empty assembler.
    pub const fn new() -> Self {
        LineAssembler {
            buf: [0; MAX_LINE],
            len: 0,
            continued: false,
            sanitised: 0,
        }
    }

    /// Bytes replaced by `.` or a space so far.
    pub fn sanitised(&self) -> u64 {
        self.sanitised
    }

    /// Bytes waiting for the end of their line.
    pub fn pending(&self) -> usize {
        self.len
    }

    fn piece(&self, complete: bool) -> Line<'_> {
        let text = self
            .buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("");
        Line {
            text,
            continued: self.continued,
            complete,
        }
    }

    /// Feeds guest output; `sink` gets every finished piece.
    pub fn feed(&mut self, data: &[u8], sink: &mut dyn FnMut(Line<'_>)) {
        for &b in data {
            if b == b'\n' {
                sink(self.piece(true));
                self.len = 0;
                self.continued = false;
                continue;
            }
            let Some(c) = sanitise(b) else {
                continue;
            };
            if c != b {
                self.sanitised += 1;
            }
            if self.len == MAX_LINE {
                sink(self.piece(false));
                self.len = 0;
                self.continued = true;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = c;
                self.len += 1;
            }
        }
    }

    /// Hands out what waits for a newline (a prompt, the last words
    /// before a disconnect) as an incomplete piece.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Line<'_>)) {
        if self.len > 0 {
            sink(self.piece(false));
            self.len = 0;
            self.continued = true;
        }
    }
}

/// A bounded FIFO of bytes waiting for room in the input ring.
#[derive(Debug, Clone)]
pub struct EchoQueue {
    buf: [u8; ECHO_QUEUE],
    head: usize,
    len: usize,
}

impl Default for EchoQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        EchoQueue {
            buf: [0; ECHO_QUEUE],
            head: 0,
            len: 0,
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues the concatenation of `parts` whole, or nothing (false)
    /// when it does not fit.
    pub fn push(&mut self, parts: &[&[u8]]) -> bool {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n > ECHO_QUEUE - self.len {
            return false;
        }
        for &b in parts.iter().flat_map(|p| p.iter()) {
            let at = (self.head + self.len) % ECHO_QUEUE;
            if let Some(slot) = self.buf.get_mut(at) {
                *slot = b;
            }
            self.len += 1;
        }
        true
    }

    /// Copies up to `out.len()` queued bytes into `out` (oldest first)
    /// without removing them; returns how many.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for (i, o) in out.iter_mut().take(n).enumerate() {
            *o = self
                .buf
                .get((self.head + i) % ECHO_QUEUE)
                .copied()
                .unwrap_or(0);
        }
        n
    }

    /// Removes the `n` oldest bytes.
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % ECHO_QUEUE;
        self.len -= n;
    }
}

/// Access to the shared page, implemented by the caller (volatile or
/// atomic accessors in a domain, a plain array in tests and fuzzing).
pub trait Page {
    /// A failed access (an unmapped page, ...).
    type Error;
    /// Copies the index block out of the page, once, then orders later
    /// reads of ring bytes after it (acquire).
    fn read_indices(&mut self) -> Result<[u8; INDEX_BLOCK], Self::Error>;
    /// Copies `out.len()` bytes at `offset` of the page.
    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `data` at `offset` of the page.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), Self::Error>;
    /// Publishes an index the backend owns (`OUT_CONS` or `IN_PROD`) with
    /// a release store (after the ring bytes it covers were read or
    /// written).
    fn publish(&mut self, offset: usize, value: u32) -> Result<(), Self::Error>;
}

/// Why a poll failed: the frontend broke the protocol, or the page could
/// not be accessed. Either way the console is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError<E> {
    /// The index block was refused.
    Index(IndexError),
    /// The page access failed.
    Page(E),
}

impl<E: fmt::Debug> fmt::Display for PollError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Index(e) => write!(f, "console ring: {e}"),
            PollError::Page(e) => write!(f, "console page access: {e:?}"),
        }
    }
}

/// A ring state the backend saw (boot argument `capture=N` prints these
/// as fuzz seeds): the index block as copied, the unconsumed output and
/// the unread input, as copied.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The index block as copied out of the page.
    pub block: [u8; INDEX_BLOCK],
    /// The live bytes of `out[]`, from `out_cons` on.
    pub output: &'a [u8],
    /// The live bytes of `in[]`, from `in_cons` on.
    pub input: &'a [u8],
}

impl Snapshot<'_> {
    /// Bytes of [`Snapshot::encode`]'s record.
    pub fn encoded_len(&self) -> usize {
        INDEX_BLOCK + 2 + self.output.len() + 2 + self.input.len()
    }

    /// The record `block[16] out_len:u16 out[] in_len:u16 in[]` (the
    /// `console_ring` fuzz target's snapshot operation), into `out`;
    /// returns the bytes written (0 if `out` is too short).
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let n = self.encoded_len();
        let Some(dst) = out.get_mut(..n) else {
            return 0;
        };
        let mut at = 0;
        for part in [
            &self.block[..],
            &(self.output.len() as u16).to_le_bytes()[..],
            self.output,
            &(self.input.len() as u16).to_le_bytes()[..],
            self.input,
        ] {
            if let Some(d) = dst.get_mut(at..at + part.len()) {
                d.copy_from_slice(part);
            }
            at += part.len();
        }
        n
    }
}

/// What [`Backend::poll`] hands to its sink.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A ring state differing from the previous poll's (only when the
    /// caller asked for snapshots).
    State(Snapshot<'a>),
    /// A piece of guest output.
    Line(Line<'a>),
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Output bytes consumed.
    pub consumed: u32,
    /// Input bytes produced.
    pub produced: u32,
    /// Echo bytes still waiting for room in the input ring.
    pub waiting: u32,
}

impl Progress {
    /// Whether the frontend should get an event (an index moved).
    pub fn notify(&self) -> bool {
        self.consumed > 0 || self.produced > 0
    }
}

/// Counters of one console connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Output bytes consumed.
    pub out_bytes: u64,
    /// Complete lines (newline-terminated).
    pub lines: u64,
    /// Bytes replaced while sanitising.
    pub sanitised: u64,
    /// Lines queued as echo, and input bytes produced.
    pub echoed: u64,
    /// Input bytes produced.
    pub in_bytes: u64,
    /// Echo lines dropped because the queue was full.
    pub echo_dropped: u64,
}

/// The backend of one console: its indices, line assembly, echo queue,
/// counters and copy buffers.
#[derive(Debug, Clone)]
pub struct Backend {
    idx: BackIndices,
    lines: LineAssembler,
    echo_queue: EchoQueue,
    echo: bool,
    last_block: Option<[u8; INDEX_BLOCK]>,
    stats: Stats,
    out_buf: [u8; OUT_SIZE as usize],
    in_buf: [u8; IN_SIZE as usize],
}

/// Copies a span of a ring at `base` of the page into `dst` (two reads
/// when it wraps); returns the bytes copied.
fn read_span<P: Page>(
    page: &mut P,
    base: usize,
    span: Span,
    dst: &mut [u8],
) -> Result<usize, P::Error> {
    let (a, b) = span.ranges();
    let (la, lb) = (a.len(), b.len());
    let Some((da, rest)) = dst.split_at_mut_checked(la) else {
        return Ok(0);
    };
    let Some(db) = rest.get_mut(..lb) else {
        return Ok(0);
    };
    page.read(base + a.start, da)?;
    if lb > 0 {
        page.read(base + b.start, db)?;
    }
    Ok(la + lb)
}

impl Backend {
    /// Attaches to the page: copies its index block once, adopts the
    /// backend's indices from it and validates the frontend's.
    pub fn attach<P: Page>(page: &mut P, echo: bool) -> Result<Self, PollError<P::Error>> {
        let block = page.read_indices().map_err(PollError::Page)?;
        let (idx, _) = BackIndices::attach(RawIndices::parse(&block)).map_err(PollError::Index)?;
        Ok(Backend {
            idx,
            lines: LineAssembler::new(),
            echo_queue: EchoQueue::new(),
            echo,
            last_block: None,
            stats: Stats::default(),
            out_buf: [0; OUT_SIZE as usize],
            in_buf: [0; IN_SIZE as usize],
        })
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.sanitised = self.lines.sanitised();
        s
    }

    /// The backend's published indices.
    pub fn indices(&self) -> BackIndices {
        self.idx
    }

    /// Echo bytes waiting for room.
    pub fn echo_waiting(&self) -> usize {
        self.echo_queue.len()
    }

    /// One look at the ring: copies the index block once and validates
    /// it, copies and consumes all unconsumed output (its lines go to
    /// `sink`, and with echo on into the echo queue), writes what the
    /// echo queue holds into the input room, and publishes both backend
    /// indices. With `snapshot`, a ring state that differs from the last
    /// one seen also goes to `sink` first.
    pub fn poll<P: Page>(
        &mut self,
        page: &mut P,
        snapshot: bool,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<Progress, PollError<P::Error>> {
        let block = page.read_indices().map_err(PollError::Page)?;
        let view = self
            .idx
            .check(RawIndices::parse(&block))
            .map_err(PollError::Index)?;
        let Backend {
            idx,
            lines,
            echo_queue,
            echo,
            last_block,
            stats,
            out_buf,
            in_buf,
        } = self;
        let n_out = read_span(page, OUT_OFFSET, view.output(), out_buf).map_err(PollError::Page)?;
        let output = out_buf.get(..n_out).unwrap_or(&[]);
        if snapshot && *last_block != Some(block) {
            let n_in =
                read_span(page, IN_OFFSET, view.input_unread(), in_buf).map_err(PollError::Page)?;
            sink(Event::State(Snapshot {
                block,
                output,
                input: in_buf.get(..n_in).unwrap_or(&[]),
            }));
        }
        *last_block = Some(block);
        lines.feed(output, &mut |line| {
            if line.complete {
                stats.lines += 1;
            }
            if *echo && !line.text.as_bytes().starts_with(ECHO_PREFIX) {
                if echo_queue.push(&[ECHO_PREFIX, line.text.as_bytes(), b"\n"]) {
                    stats.echoed += 1;
                } else {
                    stats.echo_dropped += 1;
                }
            }
            sink(Event::Line(line));
        });
        let mut progress = Progress::default();
        if n_out > 0 {
            let cons = idx.consume_output(&view, n_out as u32);
            page.publish(OUT_CONS, cons).map_err(PollError::Page)?;
            stats.out_bytes += n_out as u64;
            progress.consumed = n_out as u32;
        }
        let room = view.input_room();
        let n_in = echo_queue.peek(in_buf.get_mut(..room.total as usize).unwrap_or(&mut []));
        if n_in > 0 {
            let (a, b) = room.truncate(n_in as u32).ranges();
            let Some((first, second)) =
                in_buf.get(..n_in).and_then(|q| q.split_at_checked(a.len()))
            else {
                return Ok(progress);
            };
            page.write(IN_OFFSET + a.start, first)
                .map_err(PollError::Page)?;
            if !second.is_empty() {
                page.write(IN_OFFSET + b.start, second)
                    .map_err(PollError::Page)?;
            }
            echo_queue.drop_front(n_in);
            let prod = idx.produce_input(&view, n_in as u32);
            page.publish(IN_PROD, prod).map_err(PollError::Page)?;
            stats.in_bytes += n_in as u64;
            progress.produced = n_in as u32;
        }
        progress.waiting = echo_queue.len() as u32;
        Ok(progress)
    }

    /// Hands out the partial line waiting for its newline (see
    /// [`LineAssembler::flush`]); not echoed.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Line<'_>)) {
        self.lines.flush(sink);
    }

    /// Bytes of the partial line waiting for its newline.
    pub fn partial(&self) -> usize {
        self.lines.pending()
    }
}

/// A plain in-memory console page for tests and fuzzing (no shared
/// memory): the frontend side writes it directly.
#[derive(Debug, Clone)]
pub struct MemPage {
    /// The page bytes (`xencons_interface` and the rest of the page).
    pub bytes: [u8; 4096],
}

impl Default for MemPage {
    fn default() -> Self {
        MemPage { bytes: [0; 4096] }
    }
}

/// A [`MemPage`] access outside the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfPage;

impl MemPage {
    /// The index block as it is now.
    pub fn indices(&self) -> RawIndices {
        let mut b = [0u8; INDEX_BLOCK];
        if let Some(s) = self.bytes.get(INDEX_OFFSET..INDEX_OFFSET + INDEX_BLOCK) {
            b.copy_from_slice(s);
        }
        RawIndices::parse(&b)
    }

    /// Writes one index.
    pub fn set(&mut self, offset: usize, v: u32) {
        if let Some(d) = self.bytes.get_mut(offset..offset + 4) {
            d.copy_from_slice(&v.to_le_bytes());
        }
    }
}

impl Page for MemPage {
    type Error = OutOfPage;
    fn read_indices(&mut self) -> Result<[u8; INDEX_BLOCK], OutOfPage> {
        Ok(self.indices().encode())
    }
    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<(), OutOfPage> {
        let s = self
            .bytes
            .get(offset..offset.saturating_add(out.len()))
            .ok_or(OutOfPage)?;
        out.copy_from_slice(s);
        Ok(())
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), OutOfPage> {
        let d = self
            .bytes
            .get_mut(offset..offset.saturating_add(data.len()))
            .ok_or(OutOfPage)?;
        d.copy_from_slice(data);
        Ok(())
    }
    fn publish(&mut self, offset: usize, value: u32) -> Result<(), OutOfPage> {
        self.write(offset, &value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests;
