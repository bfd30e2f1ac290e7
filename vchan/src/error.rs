//! Error types.

use core::fmt;

use crate::platform::Errno;

/// A violation of the vchan protocol by the peer (or corrupt shared memory).
/// Detecting one closes the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A ring order outside 10..=20.
    BadOrder {
        /// The order read from the header.
        order: u16,
    },
    /// The two orders cannot coexist in one header page (both in-page rings
    /// at the same offset, or grants overlapping an in-page ring).
    OrderConflict {
        /// `left_order`.
        left: u16,
        /// `right_order`.
        right: u16,
    },
    /// The peer's producer index claims more data than the ring holds.
    ReadIndexOverflow {
        /// Producer index read from the peer.
        prod: u32,
        /// Our consumer index.
        cons: u32,
        /// Ring size.
        size: u32,
    },
    /// The peer's consumer index claims more free space than the ring holds
    /// (it is ahead of our producer index or lags by more than the ring).
    WriteIndexOverflow {
        /// Our producer index.
        prod: u32,
        /// Consumer index read from the peer.
        cons: u32,
        /// Ring size.
        size: u32,
    },
    /// A peer-owned index moved backwards.
    IndexWentBackwards {
        /// Previously observed value.
        previous: u32,
        /// Newly observed value.
        now: u32,
    },
    /// The peer's live byte holds a value or transition the protocol does not
    /// allow (anything but 2→1, 2→0, 1→0 for the client, 1→0 for the server).
    BadLiveByte {
        /// Value seen before.
        previous: u8,
        /// Value seen now.
        now: u8,
    },
    /// An index of our own was inconsistent when we connected.
    BadInitialIndices,
    /// A xenstore value (`ring-ref` / `event-channel`) is malformed or zero.
    BadAdvert,
    /// A mapping returned by the platform is smaller than required.
    ShortMapping,
}

/// Errors of the channel operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Non-blocking operation: nothing could be transferred now.
    WouldBlock,
    /// The deadline passed before the operation could make progress.
    TimedOut,
    /// Write after the peer closed the channel (reads drain, then return 0).
    PeerClosed,
    /// The channel was closed locally (or after an earlier error).
    Closed,
    /// The peer violated the protocol; the channel is now closed.
    Protocol(ProtocolError),
    /// Invalid argument (bad orders for a server, path too long, exact
    /// transfer larger than the ring, ...).
    InvalidArgument,
    /// The server has not advertised the channel (yet).
    NotAdvertised,
    /// The event channel failed.
    Event(Errno),
    /// Granting or mapping pages failed.
    Grant(Errno),
    /// A xenstore operation failed.
    Store(Errno),
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WouldBlock => f.write_str("operation would block"),
            Error::TimedOut => f.write_str("timed out"),
            Error::PeerClosed => f.write_str("peer closed the channel"),
            Error::Closed => f.write_str("channel closed"),
            Error::Protocol(p) => write!(f, "peer protocol violation: {p}"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::NotAdvertised => f.write_str("channel not advertised in xenstore"),
            Error::Event(e) => write!(f, "event channel error {}", e.0),
            Error::Grant(e) => write!(f, "grant error {}", e.0),
            Error::Store(e) => write!(f, "xenstore error {}", e.0),
        }
    }
}

impl core::error::Error for ProtocolError {}
impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as K;
        match self {
            Error::WouldBlock => K::Other,
            Error::TimedOut => K::TimedOut,
            Error::PeerClosed => K::BrokenPipe,
            Error::Closed => K::NotConnected,
            Error::Protocol(_) => K::InvalidData,
            Error::InvalidArgument => K::InvalidInput,
            Error::NotAdvertised => K::NotFound,
            Error::Event(_) | Error::Grant(_) | Error::Store(_) => K::Other,
        }
    }
}
