//! Reassembly of xenstore messages from a byte stream.

use super::{Error, HEADER_LEN, Header, PAYLOAD_MAX};

/// A complete message borrowed from an [`Assembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The parsed header.
    pub header: Header,
    /// Exactly `header.len` payload bytes.
    pub payload: &'a [u8],
}

/// Reassembles messages from bytes that arrive in arbitrary pieces.
///
/// Call [`Assembler::feed`] with the bytes read so far; it consumes input
/// up to the end of the first complete message and returns it. The message
/// stays valid until the next call. A header announcing more than
/// [`PAYLOAD_MAX`] bytes puts the assembler into a broken state: the stream
/// can no longer be framed, and every later call returns
/// [`Error::ConnectionBroken`] until [`Assembler::reset`].
#[derive(Clone)]
pub struct Assembler {
    header_buf: [u8; HEADER_LEN],
    header_fill: usize,
    header: Option<Header>,
    payload: [u8; PAYLOAD_MAX],
    payload_fill: usize,
    /// The last call returned a complete message; clear state on next call.
    delivered: bool,
    broken: bool,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Assembler {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Assembler")
            .field("header_fill", &self.header_fill)
            .field("header", &self.header)
            .field("payload_fill", &self.payload_fill)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Assembler {
    /// An empty assembler.
    pub const fn new() -> Self {
        Assembler {
            header_buf: [0; HEADER_LEN],
            header_fill: 0,
            header: None,
            payload: [0; PAYLOAD_MAX],
            payload_fill: 0,
            delivered: false,
            broken: false,
        }
    }

    /// Forgets any partial message and the broken state (use after the
    /// connection has been re-established).
    pub fn reset(&mut self) {
        self.header_fill = 0;
        self.header = None;
        self.payload_fill = 0;
        self.delivered = false;
        self.broken = false;
    }

    /// Whether a fatal framing error was seen.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether a message is partially received.
    pub fn in_progress(&self) -> bool {
        !self.delivered && (self.header_fill > 0)
    }

    /// The message returned by the last successful [`Assembler::feed`],
    /// until the next call.
    pub fn last_message(&self) -> Option<Message<'_>> {
        if !self.delivered {
            return None;
        }
        let header = self.header?;
        let payload = self.payload.get(..header.len as usize)?;
        Some(Message { header, payload })
    }

    /// Consumes bytes from the front of `input` (advancing it) until a
    /// message is complete, and returns that message; returns `Ok(None)`
    /// once `input` is exhausted without completing one.
    pub fn feed(&mut self, input: &mut &[u8]) -> Result<Option<Message<'_>>, Error> {
        if self.broken {
            return Err(Error::ConnectionBroken);
        }
        if self.delivered {
            self.header_fill = 0;
            self.header = None;
            self.payload_fill = 0;
            self.delivered = false;
        }
        let header = match self.header {
            Some(h) => h,
            None => {
                let want = HEADER_LEN - self.header_fill;
                let take = want.min(input.len());
                let (chunk, rest) = input.split_at(take);
                let dst = self
                    .header_buf
                    .get_mut(self.header_fill..self.header_fill + take)
                    .ok_or(Error::Malformed)?;
                dst.copy_from_slice(chunk);
                *input = rest;
                self.header_fill += take;
                if self.header_fill < HEADER_LEN {
                    return Ok(None);
                }
                match Header::parse(&self.header_buf) {
                    Ok(h) => {
                        self.header = Some(h);
                        h
                    }
                    Err(e) => {
                        self.broken = true;
                        return Err(e);
                    }
                }
            }
        };
        // `Header::parse` guarantees len <= PAYLOAD_MAX.
        let len = header.len as usize;
        let want = len.saturating_sub(self.payload_fill);
        let take = want.min(input.len());
        let (chunk, rest) = input.split_at(take);
        let dst = self
            .payload
            .get_mut(self.payload_fill..self.payload_fill + take)
            .ok_or(Error::Malformed)?;
        dst.copy_from_slice(chunk);
        *input = rest;
        self.payload_fill += take;
        if self.payload_fill < len {
            return Ok(None);
        }
        self.delivered = true;
        let payload = self.payload.get(..len).ok_or(Error::Malformed)?;
        Ok(Some(Message { header, payload }))
    }
}
