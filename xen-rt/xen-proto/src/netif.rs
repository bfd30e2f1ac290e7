//! The Xen network interface (`xen/include/public/io/netif.h`): ring entry
//! layouts, constants, and the assembly and validation of the packets a
//! netfront puts on its transmit ring, with the checks and the error
//! classification of Linux's netback (`drivers/net/xen-netback/netback.c`).
//!
//! Layouts (offsets in bytes, little endian; identical on every
//! architecture, nothing here is 8-byte aligned):
//!
//! * `struct netif_tx_request` (12 bytes): `gref` u32 @0, `offset` u16 @4,
//!   `flags` u16 @6 (`NETTXF_*`, [`txf`]), `id` u16 @8, `size` u16 @10.
//!   In the first slot of a packet `size` is the size of the whole packet;
//!   in the following slots it is the size of that slot's fragment.
//! * `struct netif_tx_response` (4 bytes): `id` u16 @0, `status` i16 @2
//!   (`NETIF_RSP_*`, [`status`]).
//! * A tx ring entry is the union of the two: 12 bytes, so a one-page ring
//!   holds `ring_size(4096, 12, 4)` = 256 entries.
//! * `struct netif_extra_info` (8 bytes; 12 in a tx slot, the last 4 are
//!   padding): `type` u8 @0 (`XEN_NETIF_EXTRA_TYPE_*`, [`extra_type`]),
//!   `flags` u8 @1 (`XEN_NETIF_EXTRA_FLAG_MORE`), then a union @2:
//!   * `gso`: `size` u16 @2 (the MSS), `type` u8 @4
//!     (`XEN_NETIF_GSO_TYPE_*`, [`gso_type`]), `pad` u8 @5,
//!     `features` u16 @6;
//!   * `mcast` (`MCAST_ADD`, `MCAST_DEL`): `addr[6]` @2;
//!   * `hash`: `type` u8 @2 (`_XEN_NETIF_CTRL_HASH_TYPE_*`),
//!     `algorithm` u8 @3, `value[4]` @4 (the hash, little endian);
//!   * `xdp`: `headroom` u16 @2, `pad[2]` u16 @4.
//! * `struct netif_rx_request` (8 bytes): `id` u16 @0, `pad` u16 @2,
//!   `gref` u32 @4.
//! * `struct netif_rx_response` (8 bytes): `id` u16 @0, `offset` u16 @2,
//!   `flags` u16 @4 (`NETRXF_*`, [`rxf`]), `status` i16 @6 (bytes in the
//!   slot when positive, `NETIF_RSP_*` when negative).
//! * An rx ring entry is 8 bytes: `ring_size(4096, 8, 8)` = 256 entries.
//!   An extra-info slot overlays an rx response.
//!
//! A tx packet on the ring (`netif.h`, "Guest transmit"): the first
//! request (`size` = packet size); if it has `NETTXF_extra_info`, one or
//! more extra-info slots chained by `XEN_NETIF_EXTRA_FLAG_MORE`; then, as
//! long as the previous request has `NETTXF_more_data`, one request per
//! further fragment. Every consumed slot gets one response: the requests
//! get their `id` and a status, the extra-info slots `NETIF_RSP_NULL`.
//!
//! The caller copies each slot out of shared memory **once** (the fetch
//! callback of [`parse_tx_packet`]) and this module parses the copies. An
//! invalid packet is either dropped ([`TxError::Drop`]: answer every
//! consumed slot with `NETIF_RSP_ERROR` and carry on, as Linux's
//! `xenvif_tx_err` does) or fatal ([`TxError::Fatal`]: the frontend broke
//! the protocol and is disconnected, as after Linux's `xenvif_fatal_tx_err`).
//! A packet whose slots are not all published yet is
//! [`TxParse::Incomplete`]: nothing was consumed.

use core::fmt;

use crate::le::{u16_at, u32_at};
use crate::ring::shared;

pub mod credit;
pub mod switch;

/// Size of a granted page; no fragment may cross its end.
pub const PAGE_SIZE: u32 = 4096;
/// Bytes of `struct netif_tx_request`.
pub const TX_REQUEST_SIZE: usize = 12;
/// Bytes of `struct netif_tx_response`.
pub const TX_RESPONSE_SIZE: usize = 4;
/// Bytes of a tx ring entry (the request/response union).
pub const TX_SLOT_SIZE: usize = 12;
/// Bytes of `struct netif_rx_request`.
pub const RX_REQUEST_SIZE: usize = 8;
/// Bytes of `struct netif_rx_response`.
pub const RX_RESPONSE_SIZE: usize = 8;
/// Bytes of an rx ring entry.
pub const RX_SLOT_SIZE: usize = 8;
/// Bytes of `struct netif_extra_info` (a tx slot adds 4 bytes of padding).
pub const EXTRA_INFO_SIZE: usize = 8;

/// Entries of a one-page tx ring (`NET_TX_RING_SIZE`).
pub const TX_RING_SIZE: u32 =
    match shared::ring_size(PAGE_SIZE as usize, TX_REQUEST_SIZE, TX_RESPONSE_SIZE) {
        Some(n) => n,
        None => 0,
    };
/// Entries of a one-page rx ring (`NET_RX_RING_SIZE`).
pub const RX_RING_SIZE: u32 =
    match shared::ring_size(PAGE_SIZE as usize, RX_REQUEST_SIZE, RX_RESPONSE_SIZE) {
        Some(n) => n,
        None => 0,
    };

/// `XEN_NETIF_NR_SLOTS_MIN`: slots per packet every backend must accept.
pub const NR_SLOTS_MIN: usize = 18;
/// `XEN_NETBK_LEGACY_SLOTS_MAX` (Linux netback, `= XEN_NETIF_NR_SLOTS_MIN`):
/// a packet with more slots after its first request is dropped.
pub const LEGACY_SLOTS_MAX: usize = NR_SLOTS_MIN;
/// Linux netback's `fatal_skb_slots` default: a packet with more slots
/// after its first request is a malicious frontend.
pub const FATAL_SKB_SLOTS: usize = 20;
/// Fragments of an accepted packet: the first request's and up to
/// [`LEGACY_SLOTS_MAX`] more.
pub const MAX_TX_FRAGS: usize = 1 + LEGACY_SLOTS_MAX;
/// `ETH_HLEN`: the first slot must hold at least the Ethernet header.
pub const ETH_HLEN: u16 = 14;
/// `XEN_NETIF_MAX_TX_SIZE`: largest tx packet (`size` is a u16).
pub const MAX_TX_SIZE: u16 = 0xFFFF;
/// Largest frame the backend may have to deliver on rx: a maximal IP
/// datagram (65535 bytes, GSO) plus the Ethernet header.
pub const MAX_RX_FRAME: usize = 65535 + ETH_HLEN as usize;

/// `NETTXF_*`: flags of a tx request.
pub mod txf {
    /// `NETTXF_csum_blank`: the protocol checksum field is blank
    /// (checksum offload).
    pub const CSUM_BLANK: u16 = 1 << 0;
    /// `NETTXF_data_validated`: the data has been validated against its
    /// checksum.
    pub const DATA_VALIDATED: u16 = 1 << 1;
    /// `NETTXF_more_data`: the packet continues in the next request.
    pub const MORE_DATA: u16 = 1 << 2;
    /// `NETTXF_extra_info`: extra-info slots follow this request.
    pub const EXTRA_INFO: u16 = 1 << 3;
}

/// `NETRXF_*`: flags of an rx response.
pub mod rxf {
    /// `NETRXF_data_validated`.
    pub const DATA_VALIDATED: u16 = 1 << 0;
    /// `NETRXF_csum_blank`.
    pub const CSUM_BLANK: u16 = 1 << 1;
    /// `NETRXF_more_data`: the packet continues in the next response.
    pub const MORE_DATA: u16 = 1 << 2;
    /// `NETRXF_extra_info`: an extra-info slot follows this response.
    pub const EXTRA_INFO: u16 = 1 << 3;
    /// `NETRXF_gso_prefix` (deprecated).
    pub const GSO_PREFIX: u16 = 1 << 4;
}

/// `XEN_NETIF_EXTRA_TYPE_*`.
pub mod extra_type {
    /// `XEN_NETIF_EXTRA_TYPE_NONE` (never valid).
    pub const NONE: u8 = 0;
    /// `XEN_NETIF_EXTRA_TYPE_GSO`.
    pub const GSO: u8 = 1;
    /// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
    pub const MCAST_ADD: u8 = 2;
    /// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
    pub const MCAST_DEL: u8 = 3;
    /// `XEN_NETIF_EXTRA_TYPE_HASH`.
    pub const HASH: u8 = 4;
    /// `XEN_NETIF_EXTRA_TYPE_XDP`.
    pub const XDP: u8 = 5;
    /// `XEN_NETIF_EXTRA_TYPE_MAX`: types are below this.
    pub const MAX: u8 = 6;
}

/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const EXTRA_FLAG_MORE: u8 = 1 << 0;

/// `XEN_NETIF_GSO_TYPE_*`.
pub mod gso_type {
    /// `XEN_NETIF_GSO_TYPE_NONE`.
    pub const NONE: u8 = 0;
    /// `XEN_NETIF_GSO_TYPE_TCPV4`.
    pub const TCPV4: u8 = 1;
    /// `XEN_NETIF_GSO_TYPE_TCPV6`.
    pub const TCPV6: u8 = 2;
}

/// `NETIF_RSP_*`.
pub mod status {
    /// `NETIF_RSP_DROPPED`.
    pub const DROPPED: i16 = -2;
    /// `NETIF_RSP_ERROR`.
    pub const ERROR: i16 = -1;
    /// `NETIF_RSP_OKAY`.
    pub const OKAY: i16 = 0;
    /// `NETIF_RSP_NULL`: the answer to an extra-info slot.
    pub const NULL: i16 = 1;
}

/// A copied tx ring entry.
pub type TxSlot = [u8; TX_SLOT_SIZE];

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

/// `struct netif_tx_request`, as copied (no field is invalid by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxRequest {
    /// Grant reference of the frontend's page.
    pub gref: u32,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETTXF_*` ([`txf`]).
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Packet size (first request) or fragment size (the others).
    pub size: u16,
}

impl TxRequest {
    /// The fields of a copied slot.
    pub fn parse(b: &TxSlot) -> Self {
        Self {
            gref: u32_at(b, 0),
            offset: u16_at(b, 4),
            flags: u16_at(b, 6),
            id: u16_at(b, 8),
            size: u16_at(b, 10),
        }
    }
    /// The slot bytes (frontends, tests, fuzz seeds).
    pub fn encode(&self) -> TxSlot {
        let mut b = [0u8; TX_SLOT_SIZE];
        put(&mut b, 0, &self.gref.to_le_bytes());
        put(&mut b, 4, &self.offset.to_le_bytes());
        put(&mut b, 6, &self.flags.to_le_bytes());
        put(&mut b, 8, &self.id.to_le_bytes());
        put(&mut b, 10, &self.size.to_le_bytes());
        b
    }
    /// Whether all bits of `flag` ([`txf`]) are set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag == flag
    }
}

/// Encodes a `struct netif_tx_response`.
pub fn encode_tx_response(id: u16, status: i16) -> [u8; TX_RESPONSE_SIZE] {
    let mut b = [0u8; TX_RESPONSE_SIZE];
    put(&mut b, 0, &id.to_le_bytes());
    put(&mut b, 2, &status.to_le_bytes());
    b
}

/// Decodes a tx response: `(id, status)` (frontends, tests).
pub fn decode_tx_response(b: &[u8; TX_RESPONSE_SIZE]) -> (u16, i16) {
    (u16_at(b, 0), u16_at(b, 2) as i16)
}

/// The content of one extra-info slot, by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// `XEN_NETIF_EXTRA_TYPE_GSO`, unvalidated (see [`Gso::new`]).
    Gso {
        /// Maximum segment size.
        size: u16,
        /// `XEN_NETIF_GSO_TYPE_*` as read.
        gso_type: u8,
        /// `XEN_NETIF_GSO_FEAT_*`.
        features: u16,
    },
    /// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`: add a multicast filter address.
    McastAdd([u8; 6]),
    /// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`: remove a multicast filter address.
    McastDel([u8; 6]),
    /// `XEN_NETIF_EXTRA_TYPE_HASH`.
    Hash(Hash),
    /// `XEN_NETIF_EXTRA_TYPE_XDP` (rx only in practice; ignored on tx).
    Xdp {
        /// Headroom the frontend reserves.
        headroom: u16,
    },
}

impl Extra {
    /// The `XEN_NETIF_EXTRA_TYPE_*` value.
    pub fn type_code(&self) -> u8 {
        match self {
            Self::Gso { .. } => extra_type::GSO,
            Self::McastAdd(_) => extra_type::MCAST_ADD,
            Self::McastDel(_) => extra_type::MCAST_DEL,
            Self::Hash(_) => extra_type::HASH,
            Self::Xdp { .. } => extra_type::XDP,
        }
    }
}

/// The `hash` member of an extra-info slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash {
    /// `_XEN_NETIF_CTRL_HASH_TYPE_*` (0 IPv4, 1 IPv4+TCP, 2 IPv6,
    /// 3 IPv6+TCP).
    pub hash_type: u8,
    /// `XEN_NETIF_CTRL_HASH_ALGORITHM_*` (1 Toeplitz).
    pub algorithm: u8,
    /// The hash value.
    pub value: u32,
}

/// A parsed `struct netif_extra_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraInfo {
    /// The typed content.
    pub extra: Extra,
    /// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
    pub more: bool,
}

impl ExtraInfo {
    /// Parses the 8 bytes of an extra-info slot. An unknown type (0 or
    /// `>= XEN_NETIF_EXTRA_TYPE_MAX`) is returned as the error.
    pub fn parse(b: &[u8; EXTRA_INFO_SIZE]) -> Result<Self, u8> {
        let ty = b[0];
        let more = b[1] & EXTRA_FLAG_MORE != 0;
        let mut addr = [0u8; 6];
        addr.copy_from_slice(&b[2..8]);
        let extra = match ty {
            extra_type::GSO => Extra::Gso {
                size: u16_at(b, 2),
                gso_type: b[4],
                features: u16_at(b, 6),
            },
            extra_type::MCAST_ADD => Extra::McastAdd(addr),
            extra_type::MCAST_DEL => Extra::McastDel(addr),
            extra_type::HASH => Extra::Hash(Hash {
                hash_type: b[2],
                algorithm: b[3],
                value: u32_at(b, 4),
            }),
            extra_type::XDP => Extra::Xdp {
                headroom: u16_at(b, 2),
            },
            other => return Err(other),
        };
        Ok(Self { extra, more })
    }
    /// Parses the extra-info in a copied tx slot.
    pub fn parse_tx(slot: &TxSlot) -> Result<Self, u8> {
        let mut b = [0u8; EXTRA_INFO_SIZE];
        b.copy_from_slice(&slot[..EXTRA_INFO_SIZE]);
        Self::parse(&b)
    }
    /// The 8 bytes of the slot; on rx this is the whole ring entry.
    pub fn encode(&self) -> [u8; EXTRA_INFO_SIZE] {
        let mut b = [0u8; EXTRA_INFO_SIZE];
        b[0] = self.extra.type_code();
        b[1] = if self.more { EXTRA_FLAG_MORE } else { 0 };
        match self.extra {
            Extra::Gso {
                size,
                gso_type,
                features,
            } => {
                put(&mut b, 2, &size.to_le_bytes());
                b[4] = gso_type;
                put(&mut b, 6, &features.to_le_bytes());
            }
            Extra::McastAdd(a) | Extra::McastDel(a) => put(&mut b, 2, &a),
            Extra::Hash(h) => {
                b[2] = h.hash_type;
                b[3] = h.algorithm;
                put(&mut b, 4, &h.value.to_le_bytes());
            }
            Extra::Xdp { headroom } => put(&mut b, 2, &headroom.to_le_bytes()),
        }
        b
    }
    /// A tx slot holding this extra-info (frontends, tests, fuzz seeds).
    pub fn encode_tx(&self) -> TxSlot {
        let mut b = [0u8; TX_SLOT_SIZE];
        put(&mut b, 0, &self.encode());
        b
    }
}

/// `XEN_NETIF_GSO_TYPE_*` other than `NONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoType {
    /// TCP over IPv4.
    TcpV4,
    /// TCP over IPv6.
    TcpV6,
}

/// A validated GSO request: segment the packet into `size`-byte payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    /// The protocol.
    pub gso_type: GsoType,
    /// Maximum segment size (never 0).
    pub size: u16,
    /// `XEN_NETIF_GSO_FEAT_*` as given.
    pub features: u16,
}

impl Gso {
    /// Validates the fields of a GSO extra-info, as Linux's
    /// `xenvif_set_skb_gso` does (both failures are fatal there).
    pub fn new(size: u16, gso_type: u8, features: u16) -> Result<Self, FatalReason> {
        if size == 0 {
            return Err(FatalReason::GsoSizeZero);
        }
        let gso_type = match gso_type {
            self::gso_type::TCPV4 => GsoType::TcpV4,
            self::gso_type::TCPV6 => GsoType::TcpV6,
            other => return Err(FatalReason::BadGsoType(other)),
        };
        Ok(Self {
            gso_type,
            size,
            features,
        })
    }
    /// The extra-info announcing this GSO (an rx extra slot).
    pub fn extra_info(&self, more: bool) -> ExtraInfo {
        ExtraInfo {
            extra: Extra::Gso {
                size: self.size,
                gso_type: match self.gso_type {
                    GsoType::TcpV4 => gso_type::TCPV4,
                    GsoType::TcpV6 => gso_type::TCPV6,
                },
                features: self.features,
            },
            more,
        }
    }
}

/// One piece of a tx packet: `len` bytes at `offset` in a granted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fragment {
    /// Grant reference of the page.
    pub gref: u32,
    /// Offset in the page.
    pub offset: u16,
    /// Bytes (`offset + len <= 4096` once validated).
    pub len: u16,
}

/// The slots a tx packet consumed, in ring order, and how to answer each:
/// the first request and the fragment requests with their `id` and the
/// packet's status, the extra-info slots with `NETIF_RSP_NULL` (Linux's
/// `make_tx_response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxResponses {
    first_id: u16,
    extras: u16,
    nr_follow: u8,
    follow_ids: [u16; FATAL_SKB_SLOTS],
}

impl TxResponses {
    fn new(first_id: u16) -> Self {
        Self {
            first_id,
            extras: 0,
            nr_follow: 0,
            follow_ids: [0; FATAL_SKB_SLOTS],
        }
    }
    fn push_follow(&mut self, id: u16) {
        if let Some(slot) = self.follow_ids.get_mut(usize::from(self.nr_follow)) {
            *slot = id;
            self.nr_follow += 1;
        }
    }
    /// Ring slots consumed (the number of responses to write).
    pub fn slots(&self) -> u32 {
        1 + u32::from(self.extras) + u32::from(self.nr_follow)
    }
    /// `id` of the first request.
    pub fn first_id(&self) -> u16 {
        self.first_id
    }
    /// Extra-info slots (each answered with `NETIF_RSP_NULL`).
    pub fn extra_slots(&self) -> u16 {
        self.extras
    }
    /// `id`s of the requests after the first, in ring order.
    pub fn fragment_ids(&self) -> &[u16] {
        self.follow_ids
            .get(..usize::from(self.nr_follow))
            .unwrap_or(&[])
    }
    /// The response for the `k`-th consumed slot (`k < slots()`), with
    /// `status` for a request and `NETIF_RSP_NULL` for an extra-info slot.
    pub fn response(&self, k: u32, status: i16) -> Option<[u8; TX_RESPONSE_SIZE]> {
        let Some(k) = k.checked_sub(1) else {
            return Some(encode_tx_response(self.first_id, status));
        };
        let Some(k) = k.checked_sub(u32::from(self.extras)) else {
            return Some(encode_tx_response(0, self::status::NULL));
        };
        let id = self.fragment_ids().get(usize::try_from(k).ok()?)?;
        Some(encode_tx_response(*id, status))
    }
    /// All responses, in slot order.
    pub fn iter(&self, status: i16) -> impl Iterator<Item = [u8; TX_RESPONSE_SIZE]> + '_ {
        (0..self.slots()).filter_map(move |k| self.response(k, status))
    }
}

/// A validated tx packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPacket {
    /// Total bytes: the first request's `size`, equal to the sum of the
    /// fragment lengths.
    pub size: u16,
    frags: [Fragment; MAX_TX_FRAGS],
    nr_frags: u8,
    /// `NETTXF_csum_blank` on the first request.
    pub csum_blank: bool,
    /// `NETTXF_data_validated` on the first request.
    pub data_validated: bool,
    /// The GSO extra-info, validated.
    pub gso: Option<Gso>,
    /// The hash extra-info.
    pub hash: Option<Hash>,
    /// The slots consumed and how to answer them.
    pub responses: TxResponses,
}

impl TxPacket {
    /// The fragments, in order (1 to [`MAX_TX_FRAGS`]; the first one holds
    /// at least [`ETH_HLEN`] bytes, none is empty or crosses its page).
    pub fn fragments(&self) -> &[Fragment] {
        self.frags.get(..usize::from(self.nr_frags)).unwrap_or(&[])
    }
    /// Ring slots consumed.
    pub fn slots(&self) -> u32 {
        self.responses.slots()
    }
}

/// A multicast filter request: a dummy tx request with a `MCAST_ADD` or
/// `MCAST_DEL` extra-info. It carries no data; its own fragments are not
/// consumed (Linux's `xenvif_tx_build_gops` answers it right after the
/// extras). Answer `NETIF_RSP_OKAY` or `NETIF_RSP_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastRequest {
    /// Add (`true`) or remove the address. Add wins when both are given.
    pub add: bool,
    /// The Ethernet multicast address.
    pub addr: [u8; 6],
    /// The slots consumed and how to answer them.
    pub responses: TxResponses,
}

/// Result of [`parse_tx_packet`] when the frontend did nothing wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxParse {
    /// A packet to forward; answer its slots once it is sent.
    Packet(TxPacket),
    /// A multicast filter update.
    Mcast(McastRequest),
    /// The packet needs more slots than the frontend has published.
    /// Nothing was consumed: parse again from the same index once
    /// `req_prod` moves. (Linux's `xenvif_count_requests` and
    /// `xenvif_get_extras` treat this as fatal, because netfront publishes
    /// whole packets; a caller may do the same. On a full ring it is fatal
    /// here too: [`FatalReason::IncompleteOnFullRing`].)
    Incomplete {
        /// Slots known to be needed so far (more than were available).
        needed: u32,
    },
}

/// Why a packet was dropped (answered with `NETIF_RSP_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// More than [`LEGACY_SLOTS_MAX`] requests after the first
    /// (`xenvif_count_requests`: "Too many slots").
    TooManySlots,
    /// A fragment is larger than what remains of the packet size
    /// (`xenvif_count_requests`: "Invalid tx request"; frames of 64 KiB
    /// and more overflow the u16 `size`).
    FragmentTooLarge {
        /// The fragment's `size`.
        size: u16,
        /// Bytes of the packet not covered by earlier fragments.
        remaining: u16,
    },
    /// A request after the first has `size` 0. Linux maps such a slot;
    /// we drop the packet (stricter: no frontend needs empty fragments).
    EmptyFragment,
    /// The first slot holds fewer than [`ETH_HLEN`] bytes
    /// (`xenvif_tx_build_gops`: "Bad packet size").
    FirstTooShort {
        /// Bytes in the first slot (packet size minus the other fragments).
        len: u16,
    },
    /// An extra-info type appears twice. Linux lets the last one win;
    /// we drop the packet (stricter, but the ring stays in step).
    DuplicateExtra(u8),
}

/// Why the frontend is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalReason {
    /// More unconsumed requests than the ring holds
    /// (`xenvif_tx_build_gops`: "Impossible number of requests").
    ImpossibleRequestCount {
        /// The count given.
        available: u32,
    },
    /// The caller could not read slot `index`.
    SlotUnavailable {
        /// Ring index.
        index: u32,
    },
    /// An extra-info type 0 or `>= XEN_NETIF_EXTRA_TYPE_MAX`
    /// (`xenvif_get_extras`: "Invalid extra type").
    BadExtraType(u8),
    /// More than [`FATAL_SKB_SLOTS`] requests after the first
    /// (`xenvif_count_requests`: "Malicious frontend").
    TooManySlots,
    /// A slot's `offset + size` (for the first slot: its own bytes) runs
    /// past the page (`xenvif_count_requests`: "Cross page boundary";
    /// `xenvif_tx_build_gops` for the first slot).
    CrossesPage {
        /// `offset` of the slot.
        offset: u16,
        /// Bytes in the slot.
        size: u16,
    },
    /// GSO with a zero segment size (`xenvif_set_skb_gso`).
    GsoSizeZero,
    /// GSO type other than TCPv4/TCPv6 (`xenvif_set_skb_gso`).
    BadGsoType(u8),
    /// The ring is full and still does not hold the whole packet: waiting
    /// cannot help.
    IncompleteOnFullRing,
}

/// A packet the frontend got wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxError {
    /// Answer every consumed slot (`responses`) with `NETIF_RSP_ERROR`
    /// (extra-info slots with `NETIF_RSP_NULL`) and carry on (Linux's
    /// `xenvif_tx_err`).
    Drop {
        /// Why.
        reason: DropReason,
        /// The slots consumed.
        responses: TxResponses,
    },
    /// The frontend broke the protocol: stop serving it (Linux's
    /// `xenvif_fatal_tx_err`). Nothing is answered.
    Fatal(FatalReason),
}

impl TxError {
    /// Whether the frontend must be disconnected.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal(_))
    }
}

impl From<FatalReason> for TxError {
    fn from(r: FatalReason) -> Self {
        Self::Fatal(r)
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for TxError {}

/// Walks the ring from the packet's first slot, copying each slot once.
struct Cursor<'f, F> {
    fetch: &'f mut F,
    next: u32,
    taken: u32,
    available: u32,
}

impl<F: FnMut(u32) -> Option<TxSlot>> Cursor<'_, F> {
    /// The next slot, or `None` if the frontend has not published it.
    fn take(&mut self) -> Result<Option<TxSlot>, FatalReason> {
        if self.taken >= self.available {
            return Ok(None);
        }
        let index = self.next;
        let slot = (self.fetch)(index).ok_or(FatalReason::SlotUnavailable { index })?;
        self.next = index.wrapping_add(1);
        self.taken += 1;
        Ok(Some(slot))
    }
    fn incomplete(&self) -> Result<TxParse, TxError> {
        if self.available >= TX_RING_SIZE {
            Err(TxError::Fatal(FatalReason::IncompleteOnFullRing))
        } else {
            Ok(TxParse::Incomplete {
                needed: self.taken + 1,
            })
        }
    }
}

/// Parses the tx packet that starts at ring index `first`, with
/// `available` unconsumed requests published (`req_prod - req_cons`, see
/// [`shared::BackRingIndices::unconsumed_requests`]). `fetch(i)` copies
/// ring entry `i` (the caller reduces `i` modulo the ring size) out of
/// shared memory; it is called at most once per index, in ring order, and
/// only for `first .. first + available` (wrapping). `None` from it is
/// fatal.
///
/// The checks, their order and their classification follow Linux's
/// `xenvif_tx_build_gops`, `xenvif_get_extras`, `xenvif_count_requests`
/// and `xenvif_set_skb_gso`; the differences are documented on
/// [`TxParse::Incomplete`], [`DropReason::EmptyFragment`] and
/// [`DropReason::DuplicateExtra`]. On success or drop, consume
/// `responses.slots()` requests.
pub fn parse_tx_packet<F>(fetch: &mut F, first: u32, available: u32) -> Result<TxParse, TxError>
where
    F: FnMut(u32) -> Option<TxSlot>,
{
    if available > TX_RING_SIZE {
        return Err(FatalReason::ImpossibleRequestCount { available }.into());
    }
    let mut cur = Cursor {
        fetch,
        next: first,
        taken: 0,
        available,
    };
    let Some(slot) = cur.take()? else {
        return cur.incomplete();
    };
    let req = TxRequest::parse(&slot);
    let mut responses = TxResponses::new(req.id);
    // Like Linux's `drop_err`: the first reason to drop; the packet's
    // remaining slots are still consumed so that the ring stays in step.
    let mut drop: Option<DropReason> = None;
    let mut gso_raw: Option<(u16, u8, u16)> = None;
    let mut hash: Option<Hash> = None;
    let mut mcast_add: Option<[u8; 6]> = None;
    let mut mcast_del: Option<[u8; 6]> = None;

    // xenvif_get_extras: a bad type is fatal.
    if req.has(txf::EXTRA_INFO) {
        let mut seen: u8 = 0;
        loop {
            let Some(slot) = cur.take()? else {
                return cur.incomplete();
            };
            responses.extras = responses.extras.saturating_add(1);
            let info = ExtraInfo::parse_tx(&slot).map_err(FatalReason::BadExtraType)?;
            let ty = info.extra.type_code();
            let bit = 1u8.checked_shl(u32::from(ty)).unwrap_or(0);
            if seen & bit != 0 {
                drop.get_or_insert(DropReason::DuplicateExtra(ty));
            }
            seen |= bit;
            match info.extra {
                Extra::Gso {
                    size,
                    gso_type,
                    features,
                } => gso_raw = Some((size, gso_type, features)),
                Extra::McastAdd(a) => mcast_add = Some(a),
                Extra::McastDel(a) => mcast_del = Some(a),
                Extra::Hash(h) => hash = Some(h),
                Extra::Xdp { .. } => {}
            }
            if !info.more {
                break;
            }
        }
    }

    // xenvif_tx_build_gops answers a multicast request right after its
    // extras, without looking at its data or following fragments.
    let mcast = match (mcast_add, mcast_del) {
        (Some(addr), _) => Some((true, addr)),
        (None, Some(addr)) => Some((false, addr)),
        (None, None) => None,
    };
    if let Some((add, addr)) = mcast {
        return match drop {
            Some(reason) => Err(TxError::Drop { reason, responses }),
            None => Ok(TxParse::Mcast(McastRequest {
                add,
                addr,
                responses,
            })),
        };
    }

    // xenvif_count_requests.
    let mut frags = [Fragment::default(); MAX_TX_FRAGS];
    let mut nr_frags: usize = 1;
    let mut remaining = req.size;
    if req.has(txf::MORE_DATA) {
        let mut follow: usize = 0;
        loop {
            if follow >= FATAL_SKB_SLOTS {
                return Err(FatalReason::TooManySlots.into());
            }
            if follow >= LEGACY_SLOTS_MAX {
                drop.get_or_insert(DropReason::TooManySlots);
            }
            let Some(slot) = cur.take()? else {
                return cur.incomplete();
            };
            let txp = TxRequest::parse(&slot);
            responses.push_follow(txp.id);
            follow += 1;
            if drop.is_none() {
                if txp.size > remaining {
                    drop = Some(DropReason::FragmentTooLarge {
                        size: txp.size,
                        remaining,
                    });
                } else if txp.size == 0 {
                    drop = Some(DropReason::EmptyFragment);
                }
            }
            remaining = remaining.wrapping_sub(txp.size);
            if u32::from(txp.offset) + u32::from(txp.size) > PAGE_SIZE {
                return Err(FatalReason::CrossesPage {
                    offset: txp.offset,
                    size: txp.size,
                }
                .into());
            }
            if drop.is_none()
                && let Some(f) = frags.get_mut(nr_frags)
            {
                *f = Fragment {
                    gref: txp.gref,
                    offset: txp.offset,
                    len: txp.size,
                };
                nr_frags += 1;
            }
            if !txp.has(txf::MORE_DATA) {
                break;
            }
        }
    }
    if let Some(reason) = drop {
        return Err(TxError::Drop { reason, responses });
    }

    // Back in xenvif_tx_build_gops: `remaining` is the first slot's own
    // share of the packet.
    if remaining < ETH_HLEN {
        return Err(TxError::Drop {
            reason: DropReason::FirstTooShort { len: remaining },
            responses,
        });
    }
    if u32::from(req.offset) + u32::from(remaining) > PAGE_SIZE {
        return Err(FatalReason::CrossesPage {
            offset: req.offset,
            size: remaining,
        }
        .into());
    }
    let gso = match gso_raw {
        Some((size, ty, features)) => Some(Gso::new(size, ty, features)?),
        None => None,
    };
    frags[0] = Fragment {
        gref: req.gref,
        offset: req.offset,
        len: remaining,
    };
    Ok(TxParse::Packet(TxPacket {
        size: req.size,
        frags,
        nr_frags: nr_frags as u8,
        csum_blank: req.has(txf::CSUM_BLANK),
        data_validated: req.has(txf::DATA_VALIDATED),
        gso,
        hash,
        responses,
    }))
}

/// `struct netif_rx_request`: a page the frontend offers for one slot of
/// received data. Every value is acceptable; the grant is checked by Xen
/// when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Grant reference of the page to fill.
    pub gref: u32,
}

impl RxRequest {
    /// The fields of a copied rx slot.
    pub fn parse(b: &[u8; RX_REQUEST_SIZE]) -> Self {
        Self {
            id: u16_at(b, 0),
            gref: u32_at(b, 4),
        }
    }
    /// The slot bytes (frontends, tests).
    pub fn encode(&self) -> [u8; RX_REQUEST_SIZE] {
        let mut b = [0u8; RX_REQUEST_SIZE];
        put(&mut b, 0, &self.id.to_le_bytes());
        put(&mut b, 4, &self.gref.to_le_bytes());
        b
    }
}

/// `struct netif_rx_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETRXF_*` ([`rxf`]).
    pub flags: u16,
    /// Bytes in this slot (>= 0) or `NETIF_RSP_*` (< 0).
    pub status: i16,
}

impl RxResponse {
    /// A data response: `len` bytes at `offset`. `None` if they do not fit
    /// in the page (netfront rejects `offset + status > 4096`).
    pub fn data(id: u16, offset: u16, len: u16, flags: u16) -> Option<Self> {
        if u32::from(offset) + u32::from(len) > PAGE_SIZE {
            return None;
        }
        Some(Self {
            id,
            offset,
            flags,
            status: i16::try_from(len).ok()?,
        })
    }
    /// An error response (`NETIF_RSP_ERROR` or `NETIF_RSP_DROPPED`).
    pub fn error(id: u16, status: i16) -> Self {
        Self {
            id,
            offset: 0,
            flags: 0,
            status,
        }
    }
    /// The slot bytes.
    pub fn encode(&self) -> [u8; RX_RESPONSE_SIZE] {
        let mut b = [0u8; RX_RESPONSE_SIZE];
        put(&mut b, 0, &self.id.to_le_bytes());
        put(&mut b, 2, &self.offset.to_le_bytes());
        put(&mut b, 4, &self.flags.to_le_bytes());
        put(&mut b, 6, &self.status.to_le_bytes());
        b
    }
    /// The fields of an rx response slot (frontends, tests).
    pub fn parse(b: &[u8; RX_RESPONSE_SIZE]) -> Self {
        Self {
            id: u16_at(b, 0),
            offset: u16_at(b, 2),
            flags: u16_at(b, 4),
            status: u16_at(b, 6) as i16,
        }
    }
}

/// Encodes an extra-info rx slot (it follows a response with
/// `NETRXF_extra_info`, or another extra with `more`).
pub fn encode_rx_extra(info: &ExtraInfo) -> [u8; RX_SLOT_SIZE] {
    info.encode()
}

/// Byte offset of ring slot `slot` in a one-page tx ring.
pub fn tx_slot_offset(slot: u32) -> usize {
    shared::SRING_HEADER_SIZE + (slot % TX_RING_SIZE.max(1)) as usize * TX_SLOT_SIZE
}

/// Byte offset of ring slot `slot` in a one-page rx ring.
pub fn rx_slot_offset(slot: u32) -> usize {
    shared::SRING_HEADER_SIZE + (slot % RX_RING_SIZE.max(1)) as usize * RX_SLOT_SIZE
}

/// What a frontend accepts on its rx ring, from its xenstore nodes
/// (Linux's `read_xenbus_vif_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxFeatures {
    /// `feature-sg`: a frame may span several slots.
    pub sg: bool,
    /// `feature-gso-tcpv4`: TCPv4 GSO frames.
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`: TCPv6 GSO frames.
    pub gso_tcpv6: bool,
    /// Not `feature-no-csum-offload`: IPv4 frames with a blank checksum.
    pub csum: bool,
    /// `feature-ipv6-csum-offload`: IPv6 frames with a blank checksum.
    pub ipv6_csum: bool,
}

/// Why a frame cannot be given to a frontend as it is (the caller drops
/// it and counts the drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxRefusal {
    /// Empty, or larger than [`MAX_RX_FRAME`].
    BadLength(usize),
    /// Larger than one page and the frontend has no `feature-sg`.
    NeedsSg(usize),
    /// A GSO frame of a type the frontend does not take.
    Gso(GsoType),
    /// A blank checksum the frontend cannot complete.
    Checksum,
}

/// One slot of a frame on an rx ring, see [`RxLayout::slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxSlot {
    /// Copy `len` bytes of the frame from `start` to offset 0 of the
    /// request's page, and answer with [`RxResponse::data`]`(id, 0, len,
    /// flags)` (or `status` [`status::ERROR`] with the same `flags` if the
    /// copy failed, so that the frontend stays in step).
    Data {
        /// Offset in the frame.
        start: usize,
        /// Bytes (1 to [`PAGE_SIZE`]).
        len: u16,
        /// `NETRXF_*` of this slot.
        flags: u16,
    },
    /// Write these bytes as the response (an extra-info slot); the
    /// request's page is not used.
    Extra([u8; RX_SLOT_SIZE]),
}

/// How one frame is laid out on a frontend's rx ring, as Linux's netback
/// does it: the data in page-sized chunks, one request each, every chunk at
/// offset 0; with GSO, an extra-info slot right after the first chunk
/// (`NETRXF_extra_info` on the first). The first chunk carries the checksum
/// flags (`NETTXF_csum_blank` from the sender becomes
/// `NETRXF_csum_blank | NETRXF_data_validated`, `NETTXF_data_validated`
/// becomes `NETRXF_data_validated`); every chunk but the last has
/// `NETRXF_more_data`. Each slot consumes one rx request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxLayout {
    len: usize,
    first_flags: u16,
    gso: Option<Gso>,
}

impl RxLayout {
    /// The layout of a `len`-byte frame for a frontend with `features`.
    /// `ipv6` says whether the frame is IPv6 (for the checksum check).
    pub fn new(
        len: usize,
        csum_blank: bool,
        data_validated: bool,
        gso: Option<Gso>,
        ipv6: bool,
        features: &RxFeatures,
    ) -> Result<Self, RxRefusal> {
        if len == 0 || len > MAX_RX_FRAME {
            return Err(RxRefusal::BadLength(len));
        }
        if len > PAGE_SIZE as usize && !features.sg {
            return Err(RxRefusal::NeedsSg(len));
        }
        if let Some(g) = gso {
            let ok = match g.gso_type {
                GsoType::TcpV4 => features.gso_tcpv4,
                GsoType::TcpV6 => features.gso_tcpv6,
            };
            if !ok {
                return Err(RxRefusal::Gso(g.gso_type));
            }
        }
        if csum_blank
            && !(if ipv6 {
                features.ipv6_csum
            } else {
                features.csum
            })
        {
            return Err(RxRefusal::Checksum);
        }
        let mut first_flags = if csum_blank {
            rxf::CSUM_BLANK | rxf::DATA_VALIDATED
        } else if data_validated {
            rxf::DATA_VALIDATED
        } else {
            0
        };
        if gso.is_some() {
            first_flags |= rxf::EXTRA_INFO;
        }
        Ok(Self {
            len,
            first_flags,
            gso,
        })
    }

    /// Bytes of the frame.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty (never: [`RxLayout::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots holding data.
    pub fn data_slots(&self) -> u32 {
        self.len.div_ceil(PAGE_SIZE as usize) as u32
    }

    /// Slots (rx requests) the frame needs.
    pub fn slots(&self) -> u32 {
        self.data_slots() + u32::from(self.gso.is_some())
    }

    /// The `k`-th slot (`k < slots()`), in ring order.
    pub fn slot(&self, k: u32) -> Option<RxSlot> {
        if k >= self.slots() {
            return None;
        }
        let chunk = match (k, self.gso) {
            (1, Some(g)) => return Some(RxSlot::Extra(g.extra_info(false).encode())),
            (0, _) | (_, None) => k,
            (_, Some(_)) => k - 1,
        };
        let start = chunk as usize * PAGE_SIZE as usize;
        let len = self.len.saturating_sub(start).min(PAGE_SIZE as usize);
        let mut flags = if chunk == 0 { self.first_flags } else { 0 };
        if chunk + 1 < self.data_slots() {
            flags |= rxf::MORE_DATA;
        }
        Some(RxSlot::Data {
            start,
            len: len as u16,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    type Ring = [TxSlot; TX_RING_SIZE as usize];

    fn req(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> TxSlot {
        TxRequest {
            gref,
            offset,
            flags,
            id,
            size,
        }
        .encode()
    }

    fn extra(extra: Extra, more: bool) -> TxSlot {
        ExtraInfo { extra, more }.encode_tx()
    }

    fn gso(size: u16, gso_type: u8) -> Extra {
        Extra::Gso {
            size,
            gso_type,
            features: 0,
        }
    }

    /// A ring holding `slots` from index `start` on (wrapping).
    fn ring(start: u32, slots: &[TxSlot]) -> Ring {
        let mut r = [[0u8; TX_SLOT_SIZE]; TX_RING_SIZE as usize];
        for (k, s) in slots.iter().enumerate() {
            r[(start.wrapping_add(k as u32) % TX_RING_SIZE) as usize] = *s;
        }
        r
    }

    /// Parses with a fetch that records every index it is asked for.
    fn parse_at(r: &Ring, first: u32, available: u32) -> (Result<TxParse, TxError>, Vec<u32>) {
        let mut log = Vec::new();
        let res = parse_tx_packet(
            &mut |i: u32| {
                log.push(i);
                Some(r[(i % TX_RING_SIZE) as usize])
            },
            first,
            available,
        );
        (res, log)
    }

    fn parse(slots: &[TxSlot]) -> Result<TxParse, TxError> {
        parse_at(&ring(0, slots), 0, slots.len() as u32).0
    }

    fn packet(slots: &[TxSlot]) -> TxPacket {
        match parse(slots) {
            Ok(TxParse::Packet(p)) => p,
            other => panic!("not a packet: {other:?}"),
        }
    }

    fn dropped(slots: &[TxSlot]) -> (DropReason, TxResponses) {
        match parse(slots) {
            Err(TxError::Drop { reason, responses }) => (reason, responses),
            other => panic!("not dropped: {other:?}"),
        }
    }

    fn fatal(slots: &[TxSlot]) -> FatalReason {
        match parse(slots) {
            Err(TxError::Fatal(r)) => r,
            other => panic!("not fatal: {other:?}"),
        }
    }

    fn responses(r: &TxResponses, status: i16) -> Vec<(u16, i16)> {
        r.iter(status).map(|b| decode_tx_response(&b)).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(TX_RING_SIZE, 256);
        assert_eq!(RX_RING_SIZE, 256);
        assert_eq!(tx_slot_offset(0), 64);
        assert_eq!(tx_slot_offset(256), 64);
        assert!(tx_slot_offset(255) + TX_SLOT_SIZE <= PAGE_SIZE as usize);
        assert_eq!(rx_slot_offset(255) + RX_SLOT_SIZE, 64 + 256 * 8);
        assert_eq!(rx_slot_offset(u32::MAX), rx_slot_offset(255));
        assert_eq!(MAX_TX_FRAGS, 19);
        assert_eq!(MAX_RX_FRAME, 65549);
        const { assert!(EXTRA_INFO_SIZE <= RX_SLOT_SIZE && EXTRA_INFO_SIZE <= TX_SLOT_SIZE) };
    }

    #[test]
    fn tx_layout() {
        let b = req(0x0403_0201, 0x0605, 0x0807, 0x0a09, 0x0c0b);
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let r = TxRequest::parse(&b);
        assert_eq!(
            (r.gref, r.offset, r.flags, r.id, r.size),
            (0x0403_0201, 0x0605, 0x0807, 0x0a09, 0x0c0b)
        );
        assert_eq!(
            encode_tx_response(0x0201, status::ERROR),
            [1, 2, 0xff, 0xff]
        );
        assert_eq!(decode_tx_response(&[1, 2, 0xfe, 0xff]), (0x0201, -2));
        assert_eq!(
            decode_tx_response(&encode_tx_response(7, status::NULL)),
            (7, 1)
        );
    }

    #[test]
    fn extra_layout() {
        let g = ExtraInfo {
            extra: Extra::Gso {
                size: 0x0201,
                gso_type: 2,
                features: 0x0403,
            },
            more: true,
        };
        assert_eq!(g.encode(), [1, 1, 1, 2, 2, 0, 3, 4]);
        let m = ExtraInfo {
            extra: Extra::McastAdd([1, 2, 3, 4, 5, 6]),
            more: false,
        };
        assert_eq!(m.encode(), [2, 0, 1, 2, 3, 4, 5, 6]);
        let d = ExtraInfo {
            extra: Extra::McastDel([9; 6]),
            more: false,
        };
        assert_eq!(d.encode()[0], 3);
        let h = ExtraInfo {
            extra: Extra::Hash(Hash {
                hash_type: 3,
                algorithm: 1,
                value: 0x0403_0201,
            }),
            more: false,
        };
        assert_eq!(h.encode(), [4, 0, 3, 1, 1, 2, 3, 4]);
        let x = ExtraInfo {
            extra: Extra::Xdp { headroom: 0x0201 },
            more: true,
        };
        assert_eq!(x.encode(), [5, 1, 1, 2, 0, 0, 0, 0]);
        for e in [g, m, d, h, x] {
            assert_eq!(ExtraInfo::parse(&e.encode()), Ok(e));
            let t = e.encode_tx();
            assert_eq!(&t[8..], &[0; 4]);
            assert_eq!(ExtraInfo::parse_tx(&t), Ok(e));
        }
        assert_eq!(ExtraInfo::parse(&[0; 8]), Err(0));
        assert_eq!(ExtraInfo::parse(&[6, 0, 0, 0, 0, 0, 0, 0]), Err(6));
        // Unknown flag bits are ignored; only MORE counts.
        assert!(!ExtraInfo::parse(&[1, 0xfe, 1, 0, 1, 0, 0, 0]).unwrap().more);
    }

    #[test]
    fn rx_layout() {
        let r = RxRequest::parse(&[1, 2, 0xaa, 0xbb, 3, 4, 5, 6]);
        assert_eq!(
            r,
            RxRequest {
                id: 0x0201,
                gref: 0x0605_0403
            }
        );
        assert_eq!(r.encode(), [1, 2, 0, 0, 3, 4, 5, 6]);
        let d = RxResponse::data(0x0201, 0x0403, 0x0607, rxf::MORE_DATA | rxf::CSUM_BLANK);
        assert_eq!(d.unwrap().encode(), [1, 2, 3, 4, 6, 0, 7, 6]);
        assert_eq!(RxResponse::parse(&d.unwrap().encode()), d.unwrap());
        assert!(RxResponse::data(1, 0, 4096, 0).is_some());
        assert!(RxResponse::data(1, 1, 4096, 0).is_none());
        assert!(RxResponse::data(1, u16::MAX, u16::MAX, 0).is_none());
        let e = RxResponse::error(9, status::DROPPED);
        assert_eq!(e.encode(), [9, 0, 0, 0, 0, 0, 0xfe, 0xff]);
        let g = Gso::new(1448, gso_type::TCPV4, 0).unwrap();
        assert_eq!(
            encode_rx_extra(&g.extra_info(false)),
            [1, 0, 0xa8, 5, 1, 0, 0, 0]
        );
        assert_eq!(
            ExtraInfo::parse(&encode_rx_extra(&g.extra_info(true))),
            Ok(g.extra_info(true))
        );
    }

    fn all_slots(l: &RxLayout) -> Vec<RxSlot> {
        (0..l.slots()).map(|k| l.slot(k).unwrap()).collect()
    }

    #[test]
    fn rx_frame_layout() {
        let all = RxFeatures {
            sg: true,
            gso_tcpv4: true,
            gso_tcpv6: true,
            csum: true,
            ipv6_csum: true,
        };
        // A small frame: one slot, checksum flags passed through.
        let l = RxLayout::new(60, true, true, None, false, &all).unwrap();
        assert_eq!(l.slots(), 1);
        assert_eq!(
            all_slots(&l),
            [RxSlot::Data {
                start: 0,
                len: 60,
                flags: rxf::CSUM_BLANK | rxf::DATA_VALIDATED
            }]
        );
        assert_eq!(l.slot(1), None);
        let l = RxLayout::new(60, false, true, None, false, &all).unwrap();
        assert!(matches!(
            l.slot(0),
            Some(RxSlot::Data {
                flags: rxf::DATA_VALIDATED,
                ..
            })
        ));
        // A GSO frame of 9000 bytes: data, extra, data, data.
        let g = Gso::new(1448, gso_type::TCPV4, 0).unwrap();
        let l = RxLayout::new(9000, true, false, Some(g), false, &all).unwrap();
        assert_eq!((l.data_slots(), l.slots()), (3, 4));
        assert_eq!(
            all_slots(&l),
            [
                RxSlot::Data {
                    start: 0,
                    len: 4096,
                    flags: rxf::CSUM_BLANK | rxf::DATA_VALIDATED | rxf::EXTRA_INFO | rxf::MORE_DATA
                },
                RxSlot::Extra(g.extra_info(false).encode()),
                RxSlot::Data {
                    start: 4096,
                    len: 4096,
                    flags: rxf::MORE_DATA
                },
                RxSlot::Data {
                    start: 8192,
                    len: 808,
                    flags: 0
                },
            ]
        );
        // The largest frame needs 17 data slots (netfront allows 18).
        let l = RxLayout::new(MAX_RX_FRAME, false, false, None, false, &all).unwrap();
        assert_eq!(l.slots(), 17);
        let total: usize = all_slots(&l)
            .iter()
            .map(|s| match s {
                RxSlot::Data { len, .. } => usize::from(*len),
                RxSlot::Extra(_) => 0,
            })
            .sum();
        assert_eq!(total, MAX_RX_FRAME);
    }

    #[test]
    fn rx_refusals() {
        let none = RxFeatures::default();
        let g6 = Gso::new(1400, gso_type::TCPV6, 0).unwrap();
        assert_eq!(
            RxLayout::new(0, false, false, None, false, &none),
            Err(RxRefusal::BadLength(0))
        );
        assert_eq!(
            RxLayout::new(MAX_RX_FRAME + 1, false, false, None, false, &none),
            Err(RxRefusal::BadLength(MAX_RX_FRAME + 1))
        );
        assert_eq!(
            RxLayout::new(4097, false, false, None, false, &none),
            Err(RxRefusal::NeedsSg(4097))
        );
        assert!(RxLayout::new(4096, false, false, None, false, &none).is_ok());
        let sg = RxFeatures {
            sg: true,
            gso_tcpv4: true,
            csum: true,
            ..RxFeatures::default()
        };
        assert_eq!(
            RxLayout::new(5000, true, false, Some(g6), true, &sg),
            Err(RxRefusal::Gso(GsoType::TcpV6))
        );
        assert_eq!(
            RxLayout::new(100, true, false, None, true, &sg),
            Err(RxRefusal::Checksum)
        );
        assert!(RxLayout::new(100, true, false, None, false, &sg).is_ok());
        assert_eq!(
            RxLayout::new(100, true, false, None, false, &none),
            Err(RxRefusal::Checksum)
        );
    }

    #[test]
    fn single_slot() {
        let p = packet(&[req(7, 100, txf::DATA_VALIDATED, 42, 60)]);
        assert_eq!(p.size, 60);
        assert_eq!(
            p.fragments(),
            &[Fragment {
                gref: 7,
                offset: 100,
                len: 60
            }]
        );
        assert!(p.data_validated && !p.csum_blank);
        assert_eq!((p.gso, p.hash, p.slots()), (None, None, 1));
        assert_eq!(responses(&p.responses, status::OKAY), [(42, 0)]);
        // Exactly the Ethernet header, and a slot ending at the page end.
        assert_eq!(packet(&[req(1, 4082, 0, 1, 14)]).size, 14);
    }

    #[test]
    fn chained_with_extras() {
        let slots = [
            req(
                10,
                64,
                txf::EXTRA_INFO | txf::MORE_DATA | txf::CSUM_BLANK,
                1,
                3000,
            ),
            extra(gso(1448, gso_type::TCPV6), true),
            extra(
                Extra::Hash(Hash {
                    hash_type: 1,
                    algorithm: 1,
                    value: 0xdead_beef,
                }),
                true,
            ),
            extra(Extra::Xdp { headroom: 256 }, false),
            req(11, 0, txf::MORE_DATA, 2, 1000),
            req(12, 3596, 0, 3, 500),
            // The next packet: not consumed.
            req(13, 0, 0, 4, 60),
        ];
        let (res, log) = parse_at(&ring(0, &slots), 0, 7);
        let Ok(TxParse::Packet(p)) = res else {
            panic!("{res:?}")
        };
        assert_eq!(log, [0, 1, 2, 3, 4, 5]);
        assert_eq!(p.size, 3000);
        let f = p.fragments();
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].gref, f[0].offset, f[0].len), (10, 64, 1500));
        assert_eq!((f[1].gref, f[1].len), (11, 1000));
        assert_eq!((f[2].gref, f[2].offset, f[2].len), (12, 3596, 500));
        assert!(p.csum_blank && !p.data_validated);
        assert_eq!(
            p.gso,
            Some(Gso {
                gso_type: GsoType::TcpV6,
                size: 1448,
                features: 0
            })
        );
        assert_eq!(p.hash.unwrap().value, 0xdead_beef);
        assert_eq!(p.slots(), 6);
        assert_eq!(p.responses.extra_slots(), 3);
        assert_eq!(p.responses.fragment_ids(), &[2, 3]);
        assert_eq!(
            responses(&p.responses, status::OKAY),
            [(1, 0), (0, 1), (0, 1), (0, 1), (2, 0), (3, 0)]
        );
        assert_eq!(p.responses.response(6, 0), None);
    }

    #[test]
    fn wrap_around() {
        // Ring slots 254, 255, 0, 1 and the u32 index wrapping too.
        for first in [254u32, u32::MAX - 1] {
            let slots = [
                req(1, 0, txf::EXTRA_INFO | txf::MORE_DATA, 1, 200),
                extra(gso(500, gso_type::TCPV4), false),
                req(2, 0, txf::MORE_DATA, 2, 50),
                req(3, 0, 0, 3, 50),
            ];
            let (res, log) = parse_at(&ring(first, &slots), first, 4);
            let Ok(TxParse::Packet(p)) = res else {
                panic!("{res:?}")
            };
            let want: Vec<u32> = (0..4).map(|k| first.wrapping_add(k)).collect();
            assert_eq!(log, want);
            assert_eq!(p.fragments().len(), 3);
            assert_eq!(p.fragments()[0].len, 100);
            assert_eq!(p.slots(), 4);
        }
    }

    fn chain(follow: usize, last_more: bool) -> Vec<TxSlot> {
        let mut v = std::vec![req(0, 0, txf::MORE_DATA, 0, 60 + follow as u16)];
        for k in 0..follow {
            let more = k + 1 < follow || last_more;
            let flags = if more { txf::MORE_DATA } else { 0 };
            v.push(req(k as u32 + 1, 0, flags, k as u16 + 1, 1));
        }
        v
    }

    #[test]
    fn slot_limits() {
        // First + 18: accepted (19 fragments).
        let p = packet(&chain(LEGACY_SLOTS_MAX, false));
        assert_eq!(p.fragments().len(), MAX_TX_FRAGS);
        assert_eq!(p.fragments()[0].len, 60);
        // First + 19 and first + 20: dropped, every slot consumed.
        for n in [19, 20] {
            let (reason, r) = dropped(&chain(n, false));
            assert_eq!(reason, DropReason::TooManySlots);
            assert_eq!(r.slots(), n as u32 + 1);
            let rs = responses(&r, status::ERROR);
            assert_eq!(rs.len(), n + 1);
            assert!(
                rs.iter()
                    .enumerate()
                    .all(|(k, &(id, st))| id == k as u16 && st == -1)
            );
        }
        // A 21st request after the first: malicious.
        let mut v = chain(20, true);
        v.push(req(99, 0, 0, 99, 1));
        assert_eq!(fatal(&v), FatalReason::TooManySlots);
    }

    #[test]
    fn drops() {
        // A fragment larger than what is left of the packet.
        let (reason, r) = dropped(&[
            req(1, 0, txf::MORE_DATA, 1, 100),
            req(2, 0, txf::MORE_DATA, 2, 80),
            req(3, 0, 0, 3, 30),
        ]);
        assert_eq!(
            reason,
            DropReason::FragmentTooLarge {
                size: 30,
                remaining: 20
            }
        );
        assert_eq!(responses(&r, status::ERROR), [(1, -1), (2, -1), (3, -1)]);
        // An empty fragment.
        let (reason, r) = dropped(&[
            req(1, 0, txf::MORE_DATA, 1, 100),
            req(2, 0, txf::MORE_DATA, 2, 0),
            req(3, 0, 0, 3, 10),
        ]);
        assert_eq!((reason, r.slots()), (DropReason::EmptyFragment, 3));
        // Too short: alone, and after the other fragments are taken away.
        let (reason, _) = dropped(&[req(1, 0, 0, 1, 13)]);
        assert_eq!(reason, DropReason::FirstTooShort { len: 13 });
        let (reason, r) = dropped(&[
            req(1, 0, txf::MORE_DATA | txf::EXTRA_INFO, 1, 100),
            extra(gso(0, 9), false),
            req(2, 0, 0, 2, 90),
        ]);
        // Dropped before the (fatal) GSO check, as in Linux.
        assert_eq!(reason, DropReason::FirstTooShort { len: 10 });
        assert_eq!(responses(&r, status::ERROR), [(1, -1), (0, 1), (2, -1)]);
        // A duplicate extra type: the whole packet is still consumed.
        let (reason, r) = dropped(&[
            req(1, 0, txf::MORE_DATA | txf::EXTRA_INFO, 1, 100),
            extra(gso(1000, 1), true),
            extra(gso(1000, 1), false),
            req(2, 0, 0, 2, 50),
        ]);
        assert_eq!(reason, DropReason::DuplicateExtra(extra_type::GSO));
        assert_eq!(r.slots(), 4);
        // The first reason wins.
        let (reason, _) = dropped(&[
            req(1, 0, txf::MORE_DATA, 1, 100),
            req(2, 0, txf::MORE_DATA, 2, 0),
            req(3, 0, 0, 3, 500),
        ]);
        assert_eq!(reason, DropReason::EmptyFragment);
        assert!(
            !TxError::Drop {
                reason,
                responses: r
            }
            .is_fatal()
        );
    }

    #[test]
    fn fatals() {
        let (res, log) = parse_at(&ring(0, &[]), 0, TX_RING_SIZE + 1);
        assert_eq!(
            res,
            Err(TxError::Fatal(FatalReason::ImpossibleRequestCount {
                available: 257
            }))
        );
        assert!(log.is_empty());
        for ty in [0u8, 6, 255] {
            let mut e = [0u8; TX_SLOT_SIZE];
            e[0] = ty;
            assert_eq!(
                fatal(&[req(1, 0, txf::EXTRA_INFO, 1, 60), e]),
                FatalReason::BadExtraType(ty)
            );
        }
        // Fragment across the page end (even when the packet is already
        // being dropped).
        assert_eq!(
            fatal(&[req(1, 0, txf::MORE_DATA, 1, 1000), req(2, 4000, 0, 2, 97)]),
            FatalReason::CrossesPage {
                offset: 4000,
                size: 97
            }
        );
        let mut v = chain(19, true);
        v.push(req(1, 4095, 0, 1, 2));
        assert_eq!(
            fatal(&v),
            FatalReason::CrossesPage {
                offset: 4095,
                size: 2
            }
        );
        // The first slot's own share across the page end.
        assert_eq!(
            fatal(&[req(1, 4090, txf::MORE_DATA, 1, 100), req(2, 0, 0, 2, 80)]),
            FatalReason::CrossesPage {
                offset: 4090,
                size: 20
            }
        );
        assert_eq!(
            fatal(&[
                req(1, 0, txf::EXTRA_INFO, 1, 60),
                extra(gso(0, gso_type::TCPV4), false)
            ]),
            FatalReason::GsoSizeZero
        );
        for t in [gso_type::NONE, 3, 255] {
            assert_eq!(
                fatal(&[req(1, 0, txf::EXTRA_INFO, 1, 60), extra(gso(100, t), false)]),
                FatalReason::BadGsoType(t)
            );
        }
        // The fetch cannot read a slot.
        let r = ring(0, &[req(1, 0, txf::MORE_DATA, 1, 100), req(2, 0, 0, 2, 10)]);
        let res = parse_tx_packet(
            &mut |i: u32| if i == 1 { None } else { Some(r[i as usize]) },
            0,
            2,
        );
        assert_eq!(
            res,
            Err(TxError::Fatal(FatalReason::SlotUnavailable { index: 1 }))
        );
        // A whole ring of chained extras never completes.
        let mut v = std::vec![req(1, 0, txf::EXTRA_INFO, 1, 60)];
        v.resize(
            TX_RING_SIZE as usize,
            extra(Extra::Xdp { headroom: 0 }, true),
        );
        assert_eq!(fatal(&v), FatalReason::IncompleteOnFullRing);
        assert!(TxError::Fatal(FatalReason::TooManySlots).is_fatal());
    }

    #[test]
    fn incomplete() {
        let r = ring(
            10,
            &[
                req(1, 0, txf::EXTRA_INFO | txf::MORE_DATA, 1, 100),
                extra(gso(100, 1), false),
                req(2, 0, txf::MORE_DATA, 2, 10),
                req(3, 0, 0, 3, 10),
            ],
        );
        for (avail, needed) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
            let (res, log) = parse_at(&r, 10, avail);
            assert_eq!(res, Ok(TxParse::Incomplete { needed }));
            assert_eq!(log.len(), avail as usize);
        }
        assert!(matches!(parse_at(&r, 10, 4).0, Ok(TxParse::Packet(_))));
        // More published than the packet needs: only its slots are read.
        assert_eq!(parse_at(&r, 10, 200).1, [10, 11, 12, 13]);
    }

    #[test]
    fn multicast() {
        let addr = [0x01, 0x00, 0x5e, 0, 0, 1];
        // The dummy request's own fragments are not consumed.
        let slots = [
            req(1, 0, txf::EXTRA_INFO | txf::MORE_DATA, 5, 0),
            extra(Extra::McastDel([2; 6]), true),
            extra(Extra::McastAdd(addr), false),
            req(2, 0, 0, 6, 60),
        ];
        let Ok(TxParse::Mcast(m)) = parse(&slots) else {
            panic!()
        };
        assert!(m.add);
        assert_eq!(m.addr, addr);
        assert_eq!(m.responses.slots(), 3);
        assert_eq!(
            responses(&m.responses, status::OKAY),
            [(5, 0), (0, 1), (0, 1)]
        );
        let Ok(TxParse::Mcast(m)) = parse(&[
            req(1, 0, txf::EXTRA_INFO, 5, 0),
            extra(Extra::McastDel([2; 6]), false),
        ]) else {
            panic!()
        };
        assert!(!m.add);
        let (reason, r) = dropped(&[
            req(1, 0, txf::EXTRA_INFO, 5, 0),
            extra(Extra::McastAdd(addr), true),
            extra(Extra::McastAdd(addr), false),
        ]);
        assert_eq!(reason, DropReason::DuplicateExtra(extra_type::MCAST_ADD));
        assert_eq!(r.slots(), 3);
    }

    /// A well-formed packet: fragments (offset, len), GSO (mss, type),
    /// whether a hash extra-info is sent, checksum flags.
    type ArbPacket = (Vec<(u16, u16)>, Option<(u16, u8)>, bool, u16);

    fn arb_packet() -> impl Strategy<Value = ArbPacket> {
        (
            (0u16..4000, 14u16..=96),
            proptest::collection::vec((0u16..4000, 1u16..=96), 0..=LEGACY_SLOTS_MAX),
            proptest::option::of((1u16..=u16::MAX, 1u8..=2)),
            any::<bool>(),
            any::<u16>(),
        )
            .prop_map(|(first, rest, gso, hash, flags)| {
                let mut v = std::vec![first];
                v.extend(rest);
                (
                    v,
                    gso,
                    hash,
                    flags & (txf::CSUM_BLANK | txf::DATA_VALIDATED),
                )
            })
    }

    proptest! {
        #[test]
        fn well_formed_roundtrip(
            (frags, gso, with_hash, csum) in arb_packet(),
            first in any::<u32>(),
            extra_avail in 0u32..8,
        ) {
            let size: u16 = frags.iter().map(|f| f.1).sum();
            let mut slots = Vec::new();
            let mut flags = csum;
            if frags.len() > 1 { flags |= txf::MORE_DATA; }
            if gso.is_some() || with_hash { flags |= txf::EXTRA_INFO; }
            slots.push(req(100, frags[0].0, flags, 0, size));
            if let Some((mss, t)) = gso {
                slots.push(extra(gso_extra(mss, t), with_hash));
            }
            if with_hash {
                let h = Hash { hash_type: 0, algorithm: 1, value: 5 };
                slots.push(extra(Extra::Hash(h), false));
            }
            for (k, &(off, len)) in frags.iter().enumerate().skip(1) {
                let more = if k + 1 < frags.len() { txf::MORE_DATA } else { 0 };
                slots.push(req(100 + k as u32, off, more, k as u16, len));
            }
            let n = slots.len() as u32;
            let avail = (n + extra_avail).min(TX_RING_SIZE);
            let (res, log) = parse_at(&ring(first, &slots), first, avail);
            let Ok(TxParse::Packet(p)) = res else { panic!("{res:?}") };
            prop_assert_eq!(log.len() as u32, n);
            prop_assert_eq!(p.slots(), n);
            prop_assert_eq!(p.size, size);
            prop_assert_eq!(p.fragments().len(), frags.len());
            for (k, (f, &(off, len))) in p.fragments().iter().zip(&frags).enumerate() {
                prop_assert_eq!((f.gref, f.offset, f.len), (100 + k as u32, off, len));
            }
            prop_assert_eq!(p.gso.map(|g| g.size), gso.map(|g| g.0));
            prop_assert_eq!(p.hash.is_some(), with_hash);
            prop_assert_eq!(p.csum_blank, csum & txf::CSUM_BLANK != 0);
            // Shorter availability: incomplete, never an error.
            let (res, _) = parse_at(&ring(first, &slots), first, n - 1);
            prop_assert_eq!(res, Ok(TxParse::Incomplete { needed: n }));
        }

        #[test]
        fn arbitrary_slots(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            first in any::<u32>(),
            avail in 0u32..=TX_RING_SIZE,
        ) {
            let mut r = [[0u8; TX_SLOT_SIZE]; TX_RING_SIZE as usize];
            for (k, c) in bytes.chunks(TX_SLOT_SIZE).enumerate() {
                let i = (first.wrapping_add(k as u32) % TX_RING_SIZE) as usize;
                r[i][..c.len()].copy_from_slice(c);
            }
            let (res, log) = parse_at(&r, first, avail);
            let want: Vec<u32> = (0..log.len() as u32).map(|k| first.wrapping_add(k)).collect();
            prop_assert_eq!(&log, &want);
            prop_assert!(log.len() as u32 <= avail);
            let consumed = match res {
                Ok(TxParse::Packet(p)) => {
                    let sum: u32 = p.fragments().iter().map(|f| u32::from(f.len)).sum();
                    prop_assert_eq!(sum, u32::from(p.size));
                    for f in p.fragments() {
                        prop_assert!(f.len > 0);
                        prop_assert!(u32::from(f.offset) + u32::from(f.len) <= PAGE_SIZE);
                    }
                    prop_assert!(p.fragments()[0].len >= ETH_HLEN);
                    Some(p.slots())
                }
                Ok(TxParse::Mcast(m)) => Some(m.responses.slots()),
                Ok(TxParse::Incomplete { needed }) => {
                    prop_assert!(needed > avail);
                    None
                }
                Err(TxError::Drop { responses, .. }) => Some(responses.slots()),
                Err(TxError::Fatal(_)) => None,
            };
            if let Some(n) = consumed {
                prop_assert_eq!(n, log.len() as u32);
            }
        }
    }

    fn gso_extra(size: u16, t: u8) -> Extra {
        Extra::Gso {
            size,
            gso_type: t,
            features: 0,
        }
    }
}
