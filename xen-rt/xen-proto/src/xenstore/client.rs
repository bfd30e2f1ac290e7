//! A sans-I/O xenstore client core.

use super::{Assembler, Error, MESSAGE_MAX, MsgType, PAYLOAD_MAX, Request, WatchEvent, XsError};

/// Identifies one outstanding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReqId(pub u32);

/// A reply matched to its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The request this answers.
    pub req_id: ReqId,
    /// Transaction id echoed by xenstored.
    pub tx_id: u32,
    /// Type of the request this answers.
    pub request: MsgType,
    /// The reply payload, or the error xenstored reported.
    pub result: Result<&'a [u8], XsError>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    req_id: u32,
    msg_type: MsgType,
}

/// Capacity of the client's output queue: two maximal messages.
pub const OUTPUT_CAPACITY: usize = 2 * MESSAGE_MAX;

/// Fixed-capacity byte FIFO.
#[derive(Clone)]
struct ByteFifo<const C: usize> {
    buf: [u8; C],
    head: usize,
    len: usize,
}

impl<const C: usize> ByteFifo<C> {
    const fn new() -> Self {
        ByteFifo {
            buf: [0; C],
            head: 0,
            len: 0,
        }
    }

    fn free(&self) -> usize {
        C - self.len
    }

    /// Appends all of `data` or nothing.
    fn push(&mut self, data: &[u8]) -> bool {
        if data.len() > self.free() {
            return false;
        }
        let mut tail = (self.head + self.len) % C.max(1);
        for &b in data {
            if let Some(slot) = self.buf.get_mut(tail) {
                *slot = b;
            }
            tail = (tail + 1) % C;
        }
        self.len += data.len();
        true
    }

    /// The first contiguous run of queued bytes.
    fn peek(&self) -> &[u8] {
        let end = (self.head + self.len).min(C);
        self.buf.get(self.head..end).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % C
        };
    }

    /// Copies out and consumes up to `dst.len()` bytes.
    fn pop_into(&mut self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        while done < dst.len() && self.len > 0 {
            let chunk = self.peek();
            let n = chunk.len().min(dst.len() - done);
            if let (Some(d), Some(s)) = (dst.get_mut(done..done + n), chunk.get(..n)) {
                d.copy_from_slice(s);
            }
            self.consume(n);
            done += n;
        }
        done
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// The protocol half of a xenstore client, without I/O.
///
/// * [`ClientCore::send`] encodes a request into the output queue and
///   allocates its request id; at most `N` requests may be outstanding.
/// * The runtime moves bytes: [`ClientCore::pending_output`] /
///   [`ClientCore::consume_output`] (or [`ClientCore::take_output`]) give
///   the bytes to write into the request ring, and bytes read from the
///   response ring go to [`ClientCore::receive`].
/// * `receive` matches each reply to its request by request id and returns
///   it. `WATCH_EVENT` messages are validated and queued in a byte buffer
///   of `EV` bytes; when it is full, events are dropped and counted
///   ([`ClientCore::take_dropped_events`]) so the caller can rescan.
///
/// Errors from `receive` are non-fatal (the offending message is skipped)
/// unless [`Error::is_fatal`] says otherwise.
#[derive(Clone)]
pub struct ClientCore<const N: usize = 8, const EV: usize = 8192> {
    asm: Assembler,
    out: ByteFifo<OUTPUT_CAPACITY>,
    scratch: [u8; MESSAGE_MAX],
    pending: heapless::Vec<Pending, N>,
    next_req_id: u32,
    events: ByteFifo<EV>,
    queued_events: usize,
    dropped_events: u64,
}

impl<const N: usize, const EV: usize> Default for ClientCore<N, EV> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const EV: usize> core::fmt::Debug for ClientCore<N, EV> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientCore")
            .field("outstanding", &self.pending.len())
            .field("output_len", &self.out.len)
            .field("queued_events", &self.queued_events)
            .field("dropped_events", &self.dropped_events)
            .finish()
    }
}

/// Bytes of framing per queued watch event (a little-endian u16 length).
const EVENT_PREFIX: usize = 2;

impl<const N: usize, const EV: usize> ClientCore<N, EV> {
    /// A fresh client.
    pub const fn new() -> Self {
        ClientCore {
            asm: Assembler::new(),
            out: ByteFifo::new(),
            scratch: [0; MESSAGE_MAX],
            pending: heapless::Vec::new(),
            next_req_id: 1,
            events: ByteFifo::new(),
            queued_events: 0,
            dropped_events: 0,
        }
    }

    /// Drops all state (after the connection was reset).
    pub fn reset(&mut self) {
        self.asm.reset();
        self.out.clear();
        self.pending.clear();
        self.events.clear();
        self.queued_events = 0;
    }

    /// Number of requests awaiting a reply.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Whether `id` is awaiting a reply.
    pub fn is_outstanding(&self, id: ReqId) -> bool {
        self.pending.iter().any(|p| p.req_id == id.0)
    }

    /// Encodes `req` (within transaction `tx_id`, or
    /// [`super::TX_NONE`]) into the output queue and returns its id.
    pub fn send(&mut self, tx_id: u32, req: &Request<'_>) -> Result<ReqId, Error> {
        if self.pending.is_full() {
            return Err(Error::TooManyOutstanding);
        }
        let mut id = self.next_req_id;
        while self.pending.iter().any(|p| p.req_id == id) {
            id = id.wrapping_add(1);
        }
        let n = req.encode(id, tx_id, &mut self.scratch)?;
        let msg = self.scratch.get(..n).ok_or(Error::BufferTooSmall)?;
        if !self.out.push(msg) {
            return Err(Error::OutputFull);
        }
        self.pending
            .push(Pending {
                req_id: id,
                msg_type: req.msg_type(),
            })
            .map_err(|_| Error::TooManyOutstanding)?;
        self.next_req_id = id.wrapping_add(1);
        Ok(ReqId(id))
    }

    /// Number of bytes waiting to be written to the ring.
    pub fn output_len(&self) -> usize {
        self.out.len
    }

    /// The next contiguous run of bytes to write (may be shorter than
    /// [`ClientCore::output_len`]).
    pub fn pending_output(&self) -> &[u8] {
        self.out.peek()
    }

    /// Marks `n` bytes of output as written.
    pub fn consume_output(&mut self, n: usize) {
        self.out.consume(n)
    }

    /// Copies up to `dst.len()` output bytes into `dst` and consumes them.
    pub fn take_output(&mut self, dst: &mut [u8]) -> usize {
        self.out.pop_into(dst)
    }

    /// Feeds bytes read from the response ring. Consumes `input` until a
    /// reply is complete and returns it (the reply borrows the client until
    /// the next call); returns `Ok(None)` when `input` is used up. Watch
    /// events are queued on the way. On a non-fatal error the offending
    /// message has been consumed: call again with the rest of `input`.
    pub fn receive(&mut self, input: &mut &[u8]) -> Result<Option<Reply<'_>>, Error> {
        loop {
            let header = match self.asm.feed(input)? {
                None => return Ok(None),
                Some(m) => m.header,
            };
            if header.msg_type == MsgType::WatchEvent {
                self.queue_event()?;
                continue;
            }
            let idx = self.pending.iter().position(|p| p.req_id == header.req_id);
            let Some(idx) = idx else {
                return Err(match header.msg_type {
                    MsgType::Unknown(t) => Error::UnknownMsgType(t),
                    _ => Error::UnknownReqId(header.req_id),
                });
            };
            let pending = self.pending.swap_remove(idx);
            let payload = self.last_payload();
            let result = if header.msg_type == pending.msg_type {
                Ok(payload)
            } else if header.msg_type == MsgType::Error {
                Err(XsError::from_payload(payload))
            } else {
                return Err(Error::ReplyTypeMismatch {
                    expected: pending.msg_type,
                    got: header.msg_type,
                });
            };
            return Ok(Some(Reply {
                req_id: ReqId(header.req_id),
                tx_id: header.tx_id,
                request: pending.msg_type,
                result,
            }));
        }
    }

    fn last_payload(&self) -> &[u8] {
        self.asm.last_message().map(|m| m.payload).unwrap_or(&[])
    }

    fn queue_event(&mut self) -> Result<(), Error> {
        let payload = self.asm.last_message().map(|m| m.payload).unwrap_or(&[]);
        WatchEvent::parse(payload)?;
        let len = payload.len();
        // len <= PAYLOAD_MAX < u16::MAX
        let prefix = (len as u16).to_le_bytes();
        if self.events.free() < EVENT_PREFIX + len {
            self.dropped_events = self.dropped_events.saturating_add(1);
            return Ok(());
        }
        let ok = self.events.push(&prefix) && self.events.push(payload);
        debug_assert!(ok);
        self.queued_events += 1;
        Ok(())
    }

    /// Number of queued watch events.
    pub fn queued_events(&self) -> usize {
        self.queued_events
    }

    /// Returns and clears the number of watch events dropped because the
    /// queue was full. Non-zero means the caller must re-read whatever its
    /// watches cover.
    pub fn take_dropped_events(&mut self) -> u64 {
        core::mem::take(&mut self.dropped_events)
    }

    /// Pops the oldest watch event, copying it into `buf`.
    pub fn pop_watch_event<'b>(
        &mut self,
        buf: &'b mut [u8; PAYLOAD_MAX],
    ) -> Option<WatchEvent<'b>> {
        if self.queued_events == 0 {
            return None;
        }
        let mut prefix = [0u8; EVENT_PREFIX];
        if self.events.pop_into(&mut prefix) != EVENT_PREFIX {
            self.events.clear();
            self.queued_events = 0;
            return None;
        }
        let len = usize::from(u16::from_le_bytes(prefix)).min(PAYLOAD_MAX);
        self.queued_events -= 1;
        let dst = buf.get_mut(..len)?;
        let got = self.events.pop_into(dst);
        let stored = buf.get(..got)?;
        WatchEvent::parse(stored).ok()
    }
}
