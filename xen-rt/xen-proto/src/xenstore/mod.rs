//! The xenstore wire protocol (`io/xs_wire.h`, `docs/misc/xenstore.txt`).
//!
//! Every message is a 16-byte [`Header`] (four little-endian `u32`s: type,
//! request id, transaction id, payload length) followed by at most
//! [`PAYLOAD_MAX`] payload bytes. Payloads are sequences of NUL-terminated
//! strings, except that a `WRITE` value and a `READ` reply carry raw bytes
//! with no terminator.
//!
//! * [`Request`] encodes client requests into a caller buffer, validating
//!   paths and sizes first.
//! * The `parse_*` functions, [`StringList`], [`WatchEvent`] and [`Perm`]
//!   parse reply payloads; [`XsError`] decodes `XS_ERROR` replies.
//! * [`Assembler`] reassembles messages from a byte stream.
//! * [`ClientCore`] tracks outstanding requests and watch events (sans-I/O).
//!
//! Byte order: xenstore uses the native order of the machines involved. All
//! targets of this project (x86_64, aarch64) are little-endian, so this
//! module fixes little-endian.

mod assembler;
mod client;

pub use assembler::{Assembler, Message};
pub use client::{ClientCore, OUTPUT_CAPACITY, Reply, ReqId};

use core::fmt;

/// Size of the fixed message header.
pub const HEADER_LEN: usize = 16;
/// Largest payload a message may carry (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// Largest encoded message: header plus a maximal payload.
pub const MESSAGE_MAX: usize = HEADER_LEN + PAYLOAD_MAX;
/// Longest absolute path, excluding the NUL (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Longest relative path, excluding the NUL (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;
/// Size of each of the two byte rings in `xenstore_domain_interface`.
pub const RING_SIZE: u32 = 1024;
/// Transaction id meaning "no transaction" (`XBT_NIL`).
pub const TX_NONE: u32 = 0;

/// Errors of the xenstore codec and client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input is shorter than the structure it should hold.
    Truncated,
    /// A header announced a payload longer than [`PAYLOAD_MAX`]. The
    /// connection is out of sync and must be treated as broken.
    PayloadTooLong(u32),
    /// The assembler previously saw a fatal framing error.
    ConnectionBroken,
    /// The caller's output buffer cannot hold the encoded message.
    BufferTooSmall,
    /// The encoded request payload would exceed [`PAYLOAD_MAX`].
    RequestTooLong,
    /// A path was empty.
    EmptyPath,
    /// A path exceeds [`ABS_PATH_MAX`] / [`REL_PATH_MAX`].
    PathTooLong,
    /// A path contains a character xenstored rejects (including NUL), a
    /// doubled `/`, or a trailing `/`.
    InvalidPath,
    /// A watch token contains a NUL byte.
    InvalidToken,
    /// A payload string lacks its NUL terminator.
    Unterminated,
    /// A payload string is not valid UTF-8.
    BadUtf8,
    /// A payload has bytes the format does not allow (e.g. trailing data,
    /// a non-decimal transaction id).
    Malformed,
    /// A permission string is malformed.
    BadPerm,
    /// A message carried a type this crate does not know.
    UnknownMsgType(u32),
    /// A message type that cannot appear where it did.
    UnexpectedMsgType(MsgType),
    /// A reply carried a request id with no outstanding request.
    UnknownReqId(u32),
    /// A reply's type is neither the request's type nor `XS_ERROR`.
    ReplyTypeMismatch {
        /// Type of the request.
        expected: MsgType,
        /// Type of the reply.
        got: MsgType,
    },
    /// All request slots are in use.
    TooManyOutstanding,
    /// The output queue has no room for the message.
    OutputFull,
}

impl Error {
    /// Whether the connection can no longer be used after this error (the
    /// stream is out of sync).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::PayloadTooLong(_) | Error::ConnectionBroken)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for Error {}

macro_rules! msg_types {
    ($($(#[$m:meta])* $name:ident = $val:expr, $wire:literal;)*) => {
        /// Message type (`enum xsd_sockmsg_type`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MsgType {
            $($(#[$m])* $name,)*
            /// A value this crate does not know.
            Unknown(u32),
        }

        impl MsgType {
            /// Decodes a wire value (never fails: see [`MsgType::Unknown`]).
            pub const fn from_u32(v: u32) -> Self {
                match v {
                    $($val => MsgType::$name,)*
                    other => MsgType::Unknown(other),
                }
            }

            /// The wire value.
            pub const fn to_u32(self) -> u32 {
                match self {
                    $(MsgType::$name => $val,)*
                    MsgType::Unknown(v) => v,
                }
            }

            /// The name used in `xenstore.txt`, e.g. `"READ"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(MsgType::$name => $wire,)*
                    MsgType::Unknown(_) => "UNKNOWN",
                }
            }
        }
    };
}

msg_types! {
    /// `XS_CONTROL` (formerly `XS_DEBUG`).
    Control = 0, "CONTROL";
    /// `XS_DIRECTORY`: list children.
    Directory = 1, "DIRECTORY";
    /// `XS_READ`: read a value.
    Read = 2, "READ";
    /// `XS_GET_PERMS`.
    GetPerms = 3, "GET_PERMS";
    /// `XS_WATCH`.
    Watch = 4, "WATCH";
    /// `XS_UNWATCH`.
    Unwatch = 5, "UNWATCH";
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6, "TRANSACTION_START";
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7, "TRANSACTION_END";
    /// `XS_INTRODUCE` (toolstack only).
    Introduce = 8, "INTRODUCE";
    /// `XS_RELEASE` (toolstack only).
    Release = 9, "RELEASE";
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10, "GET_DOMAIN_PATH";
    /// `XS_WRITE`.
    Write = 11, "WRITE";
    /// `XS_MKDIR`.
    Mkdir = 12, "MKDIR";
    /// `XS_RM`.
    Rm = 13, "RM";
    /// `XS_SET_PERMS`.
    SetPerms = 14, "SET_PERMS";
    /// `XS_WATCH_EVENT`: unsolicited watch firing.
    WatchEvent = 15, "WATCH_EVENT";
    /// `XS_ERROR`: error reply.
    Error = 16, "ERROR";
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17, "IS_DOMAIN_INTRODUCED";
    /// `XS_RESUME`.
    Resume = 18, "RESUME";
    /// `XS_SET_TARGET`.
    SetTarget = 19, "SET_TARGET";
    /// `XS_RESET_WATCHES` (20 was `XS_RESTRICT`, removed).
    ResetWatches = 21, "RESET_WATCHES";
    /// `XS_DIRECTORY_PART`.
    DirectoryPart = 22, "DIRECTORY_PART";
    /// `XS_GET_FEATURE`.
    GetFeature = 23, "GET_FEATURE";
    /// `XS_SET_FEATURE`.
    SetFeature = 24, "SET_FEATURE";
    /// `XS_GET_QUOTA`.
    GetQuota = 25, "GET_QUOTA";
    /// `XS_SET_QUOTA`.
    SetQuota = 26, "SET_QUOTA";
}

/// The 16-byte message header (`struct xsd_sockmsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MsgType,
    /// Request id, echoed by the reply.
    pub req_id: u32,
    /// Transaction id, or [`TX_NONE`].
    pub tx_id: u32,
    /// Payload length in bytes.
    pub len: u32,
}

impl Header {
    /// Parses a header. Fails if the announced payload exceeds
    /// [`PAYLOAD_MAX`]; an unknown type is kept as [`MsgType::Unknown`].
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, Error> {
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
            u32::from_le_bytes(w)
        };
        let h = Header {
            msg_type: MsgType::from_u32(word(0)),
            req_id: word(1),
            tx_id: word(2),
            len: word(3),
        };
        if h.len as usize > PAYLOAD_MAX {
            return Err(Error::PayloadTooLong(h.len));
        }
        Ok(h)
    }

    /// Parses a header from the front of a slice.
    pub fn parse_slice(bytes: &[u8]) -> Result<Header, Error> {
        let arr: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Truncated)?;
        Header::parse(arr)
    }

    /// Encodes the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let words = [self.msg_type.to_u32(), self.req_id, self.tx_id, self.len];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Errors reported by xenstored

macro_rules! xs_errors {
    ($($name:ident),* $(,)?) => {
        /// An error reported by xenstored in an `XS_ERROR` reply
        /// (`xsd_errors` in `xs_wire.h`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum XsError {
            $($name,)*
            /// An error string this crate does not know.
            Unknown,
        }

        impl XsError {
            /// Decodes an error string such as `"ENOENT"`.
            pub fn from_name(s: &[u8]) -> XsError {
                match s {
                    $(x if x == stringify!($name).as_bytes() => XsError::$name,)*
                    _ => XsError::Unknown,
                }
            }

            /// The error string, e.g. `"ENOENT"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(XsError::$name => stringify!($name),)*
                    XsError::Unknown => "EUNKNOWN",
                }
            }
        }
    };
}

xs_errors!(
    EINVAL, EACCES, EEXIST, EISDIR, ENOENT, ENOMEM, ENOSPC, EIO, ENOTEMPTY, ENOSYS, EROFS, EBUSY,
    EAGAIN, EISCONN, E2BIG, EPERM,
);

impl XsError {
    /// Decodes the payload of an `XS_ERROR` reply (`"ENOENT\0"`).
    pub fn from_payload(payload: &[u8]) -> XsError {
        let s = payload.strip_suffix(&[0]).unwrap_or(payload);
        XsError::from_name(s)
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::error::Error for XsError {}

// ---------------------------------------------------------------------------
// Paths and permissions

/// Checks a path as xenstored would: non-empty; only `[A-Za-z0-9/_@-]`;
/// no `//`; no trailing `/` except the root `/`; at most [`ABS_PATH_MAX`]
/// bytes if absolute, [`REL_PATH_MAX`] if relative. Watch paths such as
/// `@releaseDomain` pass.
pub fn validate_path(path: &str) -> Result<(), Error> {
    let b = path.as_bytes();
    if b.is_empty() {
        return Err(Error::EmptyPath);
    }
    let max = if b.first() == Some(&b'/') {
        ABS_PATH_MAX
    } else {
        REL_PATH_MAX
    };
    if b.len() > max {
        return Err(Error::PathTooLong);
    }
    let ok_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'@' | b'-');
    if !b.iter().all(ok_char) {
        return Err(Error::InvalidPath);
    }
    if b.windows(2).any(|w| w == b"//") || (b.len() > 1 && b.last() == Some(&b'/')) {
        return Err(Error::InvalidPath);
    }
    Ok(())
}

/// Access a domain has to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `n`: no access.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    /// The wire letter.
    pub const fn letter(self) -> u8 {
        match self {
            Access::None => b'n',
            Access::Read => b'r',
            Access::Write => b'w',
            Access::Both => b'b',
        }
    }

    /// Decodes a wire letter.
    pub const fn from_letter(c: u8) -> Option<Access> {
        match c {
            b'n' => Some(Access::None),
            b'r' => Some(Access::Read),
            b'w' => Some(Access::Write),
            b'b' => Some(Access::Both),
            _ => None,
        }
    }

    /// Whether reading is allowed.
    pub const fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    /// Whether writing is allowed.
    pub const fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One permission entry, e.g. `r2` (domain 2 may read). In a node's list
/// the first entry names the owner and the access of every domain not
/// listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm {
    /// Domain id.
    pub domid: u16,
    /// Access granted.
    pub access: Access,
}

/// Longest encoding of a [`Perm`]: a letter and five digits.
pub const PERM_MAX_LEN: usize = 6;

impl Perm {
    /// Parses `"<letter><decimal domid>"` strictly (no sign, no spaces,
    /// no overflow).
    pub fn parse(s: &[u8]) -> Result<Perm, Error> {
        let (&letter, digits) = s.split_first().ok_or(Error::BadPerm)?;
        let access = Access::from_letter(letter).ok_or(Error::BadPerm)?;
        let domid = parse_decimal(digits).ok_or(Error::BadPerm)?;
        let domid = u16::try_from(domid).map_err(|_| Error::BadPerm)?;
        Ok(Perm { domid, access })
    }

    /// Encodes into `buf`, returning the used prefix.
    pub fn encode(self, buf: &mut [u8; PERM_MAX_LEN]) -> &[u8] {
        buf[0] = self.access.letter();
        let n = write_decimal(u32::from(self.domid), &mut buf[1..]);
        &buf[..1 + n]
    }
}

/// Strict unsigned decimal: one or more ASCII digits, fits in `u32`.
pub fn parse_decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

/// Writes `v` in decimal into `out` (which must hold 10 bytes for any
/// `u32`; shorter buffers are filled as far as they go), returning the
/// length.
fn write_decimal(mut v: u32, out: &mut [u8]) -> usize {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = n.min(out.len());
    for (dst, src) in out.iter_mut().zip(tmp[..n].iter().rev()) {
        *dst = *src;
    }
    n
}

// ---------------------------------------------------------------------------
// Requests

/// A client request. Encode with [`Request::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `READ path`: reply is the raw value.
    Read {
        /// Node path.
        path: &'a str,
    },
    /// `WRITE path value`: reply `OK`.
    Write {
        /// Node path.
        path: &'a str,
        /// Raw value (not NUL-terminated on the wire).
        value: &'a [u8],
    },
    /// `MKDIR path`.
    Mkdir {
        /// Node path.
        path: &'a str,
    },
    /// `RM path` (recursive).
    Rm {
        /// Node path.
        path: &'a str,
    },
    /// `DIRECTORY path`: reply is a list of child names.
    Directory {
        /// Node path.
        path: &'a str,
    },
    /// `GET_PERMS path`: reply is a list of permissions.
    GetPerms {
        /// Node path.
        path: &'a str,
    },
    /// `SET_PERMS path perm...`.
    SetPerms {
        /// Node path.
        path: &'a str,
        /// At least one entry; the first names the owner.
        perms: &'a [Perm],
    },
    /// `WATCH path token`.
    Watch {
        /// Path to watch (or `@introduceDomain` / `@releaseDomain`).
        path: &'a str,
        /// Opaque token echoed in events.
        token: &'a str,
    },
    /// `UNWATCH path token`.
    Unwatch {
        /// Watched path.
        path: &'a str,
        /// Token given to `WATCH`.
        token: &'a str,
    },
    /// `TRANSACTION_START`: reply is the new transaction id. Must be sent
    /// with transaction id [`TX_NONE`].
    TransactionStart,
    /// `TRANSACTION_END T|F`: commit or abort.
    TransactionEnd {
        /// `true` commits (`"T"`), `false` aborts (`"F"`).
        commit: bool,
    },
    /// `GET_DOMAIN_PATH domid`: reply is `/local/domain/<domid>`.
    GetDomainPath {
        /// Domain id.
        domid: u16,
    },
}

/// Writes into a fixed buffer with bounds checks.
struct Cursor<'b> {
    buf: &'b mut [u8],
    pos: usize,
    limit: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(Error::RequestTooLong)?;
        if end > self.limit {
            return Err(Error::RequestTooLong);
        }
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn put_str0(&mut self, s: &[u8]) -> Result<(), Error> {
        self.put(s)?;
        self.put(&[0])
    }
}

impl Request<'_> {
    /// The message type of the request.
    pub const fn msg_type(&self) -> MsgType {
        match self {
            Request::Read { .. } => MsgType::Read,
            Request::Write { .. } => MsgType::Write,
            Request::Mkdir { .. } => MsgType::Mkdir,
            Request::Rm { .. } => MsgType::Rm,
            Request::Directory { .. } => MsgType::Directory,
            Request::GetPerms { .. } => MsgType::GetPerms,
            Request::SetPerms { .. } => MsgType::SetPerms,
            Request::Watch { .. } => MsgType::Watch,
            Request::Unwatch { .. } => MsgType::Unwatch,
            Request::TransactionStart => MsgType::TransactionStart,
            Request::TransactionEnd { .. } => MsgType::TransactionEnd,
            Request::GetDomainPath { .. } => MsgType::GetDomainPath,
        }
    }

    /// Validates the request (paths, token, sizes) without encoding it.
    pub fn validate(&self) -> Result<(), Error> {
        let mut scratch = [0u8; 0];
        match self.encode_payload(&mut scratch) {
            Ok(_) | Err(Error::BufferTooSmall) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Encodes header and payload into `buf`, returning the message length.
    /// Validation errors take precedence over [`Error::BufferTooSmall`].
    pub fn encode(&self, req_id: u32, tx_id: u32, buf: &mut [u8]) -> Result<usize, Error> {
        self.validate()?;
        let (head, body) = buf
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?;
        let len = self.encode_payload(body)?;
        let header = Header {
            msg_type: self.msg_type(),
            req_id,
            tx_id,
            len: len as u32,
        };
        head.copy_from_slice(&header.to_bytes());
        Ok(HEADER_LEN + len)
    }

    /// Validates everything, then checks the buffer size, then writes.
    fn encode_payload(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let check_path = |p: &str| validate_path(p);
        let check_token = |t: &str| {
            if t.as_bytes().contains(&0) {
                Err(Error::InvalidToken)
            } else {
                Ok(())
            }
        };
        let payload_len: usize = match *self {
            Request::Read { path }
            | Request::Mkdir { path }
            | Request::Rm { path }
            | Request::Directory { path }
            | Request::GetPerms { path } => {
                check_path(path)?;
                path.len() + 1
            }
            Request::Write { path, value } => {
                check_path(path)?;
                path.len() + 1 + value.len()
            }
            Request::SetPerms { path, perms } => {
                check_path(path)?;
                if perms.is_empty() {
                    return Err(Error::BadPerm);
                }
                let mut n = path.len() + 1;
                for p in perms {
                    let mut tmp = [0u8; PERM_MAX_LEN];
                    n = n.saturating_add(p.encode(&mut tmp).len() + 1);
                }
                n
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                check_path(path)?;
                check_token(token)?;
                path.len() + 1 + token.len() + 1
            }
            Request::TransactionStart => 1,
            Request::TransactionEnd { .. } => 2,
            Request::GetDomainPath { domid } => {
                let mut tmp = [0u8; 10];
                write_decimal(u32::from(domid), &mut tmp) + 1
            }
        };
        if payload_len > PAYLOAD_MAX {
            return Err(Error::RequestTooLong);
        }
        if buf.len() < payload_len {
            return Err(Error::BufferTooSmall);
        }
        let mut c = Cursor {
            buf,
            pos: 0,
            limit: PAYLOAD_MAX,
        };
        match *self {
            Request::Read { path }
            | Request::Mkdir { path }
            | Request::Rm { path }
            | Request::Directory { path }
            | Request::GetPerms { path } => c.put_str0(path.as_bytes())?,
            Request::Write { path, value } => {
                c.put_str0(path.as_bytes())?;
                c.put(value)?;
            }
            Request::SetPerms { path, perms } => {
                c.put_str0(path.as_bytes())?;
                for p in perms {
                    let mut tmp = [0u8; PERM_MAX_LEN];
                    c.put_str0(p.encode(&mut tmp))?;
                }
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                c.put_str0(path.as_bytes())?;
                c.put_str0(token.as_bytes())?;
            }
            Request::TransactionStart => c.put_str0(b"")?,
            Request::TransactionEnd { commit } => c.put_str0(if commit { b"T" } else { b"F" })?,
            Request::GetDomainPath { domid } => {
                let mut tmp = [0u8; 10];
                let n = write_decimal(u32::from(domid), &mut tmp);
                c.put_str0(tmp.get(..n).ok_or(Error::Malformed)?)?;
            }
        }
        Ok(c.pos)
    }
}

// ---------------------------------------------------------------------------
// Reply payloads

/// A validated list of NUL-terminated UTF-8 strings (the payload of
/// `DIRECTORY` and `GET_PERMS` replies). An empty payload is an empty list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringList<'a> {
    payload: &'a str,
}

impl<'a> StringList<'a> {
    /// Checks that `payload` is empty or ends with NUL and is valid UTF-8.
    pub fn parse(payload: &'a [u8]) -> Result<StringList<'a>, Error> {
        if !payload.is_empty() && payload.last() != Some(&0) {
            return Err(Error::Unterminated);
        }
        let payload = core::str::from_utf8(payload).map_err(|_| Error::BadUtf8)?;
        Ok(StringList { payload })
    }

    /// Iterates over the strings (without terminators).
    pub fn iter(&self) -> StringListIter<'a> {
        StringListIter { rest: self.payload }
    }

    /// Number of strings.
    pub fn count(&self) -> usize {
        self.payload.bytes().filter(|&b| b == 0).count()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

impl<'a> IntoIterator for StringList<'a> {
    type Item = &'a str;
    type IntoIter = StringListIter<'a>;
    fn into_iter(self) -> StringListIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`StringList`].
#[derive(Debug, Clone)]
pub struct StringListIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for StringListIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let (head, tail) = self.rest.split_once('\0')?;
        self.rest = tail;
        Some(head)
    }
}

/// Parses a `DIRECTORY` reply into its child names.
pub fn parse_directory(payload: &[u8]) -> Result<StringList<'_>, Error> {
    StringList::parse(payload)
}

/// Parses a `READ` reply as UTF-8 text. The value is raw bytes with no
/// terminator; use the payload directly for binary values.
pub fn parse_read_str(payload: &[u8]) -> Result<&str, Error> {
    core::str::from_utf8(payload).map_err(|_| Error::BadUtf8)
}

/// Parses a single NUL-terminated string reply (e.g. `GET_DOMAIN_PATH`).
pub fn parse_string(payload: &[u8]) -> Result<&str, Error> {
    let s = payload.strip_suffix(&[0]).ok_or(Error::Unterminated)?;
    if s.contains(&0) {
        return Err(Error::Malformed);
    }
    core::str::from_utf8(s).map_err(|_| Error::BadUtf8)
}

/// Parses a `TRANSACTION_START` reply (`"<decimal id>\0"`). Id 0 is
/// rejected since it means "no transaction".
pub fn parse_transaction_id(payload: &[u8]) -> Result<u32, Error> {
    let s = payload.strip_suffix(&[0]).ok_or(Error::Unterminated)?;
    match parse_decimal(s) {
        Some(0) | None => Err(Error::Malformed),
        Some(id) => Ok(id),
    }
}

/// Checks an `"OK\0"` acknowledgement (WRITE, MKDIR, RM, WATCH, ...).
pub fn parse_ok(payload: &[u8]) -> Result<(), Error> {
    if payload == b"OK\0" {
        Ok(())
    } else {
        Err(Error::Malformed)
    }
}

/// Iterator over the permissions of a `GET_PERMS` reply.
#[derive(Debug, Clone)]
pub struct PermIter<'a> {
    inner: StringListIter<'a>,
}

impl Iterator for PermIter<'_> {
    type Item = Perm;
    fn next(&mut self) -> Option<Perm> {
        // Entries were validated by `parse_perms`.
        self.inner
            .next()
            .and_then(|s| Perm::parse(s.as_bytes()).ok())
    }
}

/// Parses a `GET_PERMS` reply: one or more NUL-terminated permission
/// strings, all validated up front.
pub fn parse_perms(payload: &[u8]) -> Result<PermIter<'_>, Error> {
    let list = StringList::parse(payload)?;
    if list.is_empty() {
        return Err(Error::BadPerm);
    }
    for s in list.iter() {
        Perm::parse(s.as_bytes())?;
    }
    Ok(PermIter { inner: list.iter() })
}

/// A parsed `WATCH_EVENT` payload (`path\0token\0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchEvent<'a> {
    /// The path that changed (may be below the watched path).
    pub path: &'a str,
    /// The token given to `WATCH`.
    pub token: &'a str,
}

impl<'a> WatchEvent<'a> {
    /// Parses exactly two NUL-terminated UTF-8 strings.
    pub fn parse(payload: &'a [u8]) -> Result<WatchEvent<'a>, Error> {
        let list = StringList::parse(payload)?;
        let mut it = list.iter();
        let path = it.next().ok_or(Error::Truncated)?;
        let token = it.next().ok_or(Error::Truncated)?;
        if it.next().is_some() {
            return Err(Error::Malformed);
        }
        if path.is_empty() {
            return Err(Error::EmptyPath);
        }
        Ok(WatchEvent { path, token })
    }
}

#[cfg(test)]
mod tests;
