//! `xen/include/public/io/xs_wire.h`: layout and constants of the xenstore
//! shared ring page (the message codec lives in another crate).

/// `XENSTORE_RING_SIZE`: bytes in each direction's ring.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_RING_IDX`: free-running ring index.
pub type XenstoreRingIdx = u32;

/// `MASK_XENSTORE_IDX`: the ring offset of a free-running index.
pub const fn mask_xenstore_idx(idx: XenstoreRingIdx) -> usize {
    idx as usize & (XENSTORE_RING_SIZE - 1)
}

/// `XENSTORE_PAYLOAD_MAX`: maximum message payload.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XENSTORE_SERVER_FEATURE_WATCHDEPTH`.
pub const XENSTORE_SERVER_FEATURE_WATCHDEPTH: u32 = 4;
/// `XENSTORE_SERVER_FEATURE_DOMID_ANY`.
pub const XENSTORE_SERVER_FEATURE_DOMID_ANY: u32 = 8;

/// `XENSTORE_CONNECTED`: steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: reconnect in progress.
pub const XENSTORE_RECONNECT: u32 = 1;

/// `XENSTORE_ERROR_NONE`.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: protocol violation (payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// `struct xenstore_domain_interface`: the xenstore ring page. Shared with
/// the xenstore daemon: access fields with volatile/atomic operations and
/// barriers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenstoreDomainInterface {
    /// Requests to the xenstore daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// Request consumer index (written by the daemon).
    pub req_cons: XenstoreRingIdx,
    /// Request producer index (written by the guest).
    pub req_prod: XenstoreRingIdx,
    /// Response consumer index (written by the guest).
    pub rsp_cons: XenstoreRingIdx,
    /// Response producer index (written by the daemon).
    pub rsp_prod: XenstoreRingIdx,
    /// `XENSTORE_SERVER_FEATURE_*` bitmap.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
    /// Event channel port (set by the toolstack for some setups).
    pub evtchn_port: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::layout;

    #[test]
    fn layouts() {
        // xenstore_domain_interface: char req[1024] @0, char rsp[1024] @1024,
        // u32 req_cons @2048, req_prod @2052, rsp_cons @2056, rsp_prod @2060,
        // server_features @2064, connection @2068, error @2072,
        // evtchn_port @2076; size 2080.
        layout!(XenstoreDomainInterface, 2080; req = 0, rsp = 1024, req_cons = 2048,
            req_prod = 2052, rsp_cons = 2056, rsp_prod = 2060, server_features = 2064,
            connection = 2068, error = 2072, evtchn_port = 2076);
        assert_eq!(mask_xenstore_idx(1025), 1);
    }
}
