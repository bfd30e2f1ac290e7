//! Index arithmetic for the request/response rings of `io/ring.h`.
//!
//! A shared ring page starts with a 64-byte header — `req_prod`,
//! `req_event`, `rsp_prod`, `rsp_event` (four `u32`s) and 48 bytes of
//! private/padding space — followed by `size` entries, each a union of the
//! request and response types. `size` is the number of entries that fit,
//! rounded down to a power of two ([`ring_size`]).
//!
//! The front end produces requests and consumes responses; the back end
//! consumes requests and produces responses. Each side keeps private
//! indexes ([`FrontRingIndices`], [`BackRingIndices`]); the functions here
//! are pure over those and over index values the caller copied **once**
//! from the shared header. The caller does the memory accesses and the
//! barriers, in this order:
//!
//! * Consuming (back: requests, front: responses): read the peer's
//!   producer index once, read barrier, then read the entries reported by
//!   [`BackRingIndices::unconsumed_requests`] /
//!   [`FrontRingIndices::unconsumed_responses`].
//! * Producing: fill entries, write barrier, store the new producer index,
//!   full barrier, read the peer's event index, then ask
//!   [`notify_needed`] (or the `push_*` helpers) whether to send an event.
//! * Before sleeping: the "final check" — store `cons + 1` in the event
//!   index, full barrier, re-read the producer index and check again.
//!
//! Unlike the C macros, peer-supplied producer indexes are checked: a peer
//! cannot make us consume slots it does not own or claim more responses
//! than requests issued.

use core::fmt;

/// Bytes before the first entry of a shared ring page.
pub const SRING_HEADER_SIZE: usize = 64;

/// Number of entries of a ring in `bytes` bytes (usually one page) whose
/// requests and responses are `req_size` and `rsp_size` bytes: the space
/// after the 64-byte header divided by the larger entry, rounded down to a
/// power of two. `None` if an entry size is zero or not even one entry
/// fits.
pub const fn ring_size(bytes: usize, req_size: usize, rsp_size: usize) -> Option<u32> {
    let entry = if req_size > rsp_size {
        req_size
    } else {
        rsp_size
    };
    if entry == 0 || bytes < SRING_HEADER_SIZE {
        return None;
    }
    let n = (bytes - SRING_HEADER_SIZE) / entry;
    if n == 0 {
        return None;
    }
    let n = if n > u32::MAX as usize {
        u32::MAX
    } else {
        n as u32
    };
    // Round down to a power of two.
    Some(1u32 << (31 - n.leading_zeros()))
}

/// Errors of shared-ring arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedRingError {
    /// The ring size is not a non-zero power of two.
    BadSize(u32),
    /// The front end's `req_prod` claims more outstanding requests than
    /// the ring holds (`RING_REQUEST_PROD_OVERFLOW`).
    RequestProdOverflow {
        /// `req_prod` as read.
        req_prod: u32,
    },
    /// The front end's `req_prod` moved behind requests we already
    /// consumed.
    RequestProdBehind {
        /// `req_prod` as read.
        req_prod: u32,
    },
    /// The back end's `rsp_prod` claims more responses than the ring holds
    /// (`RING_RESPONSE_PROD_OVERFLOW`) or than requests were issued.
    ResponseProdOverflow {
        /// `rsp_prod` as read.
        rsp_prod: u32,
    },
    /// No request slot is free (front) or no consumed request awaits a
    /// response (back).
    NoSlot,
}

impl fmt::Display for SharedRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for SharedRingError {}

/// Whether the peer must be notified after moving a producer index from
/// `old` to `new` when the peer asked to be woken at `event`
/// (`RING_PUSH_*_AND_CHECK_NOTIFY`): true iff `event` lies in
/// `(old, new]`, in wrapping arithmetic.
pub const fn notify_needed(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Result of publishing new entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Push {
    /// Value to store in the shared producer index.
    pub new_prod: u32,
    /// Whether to notify the peer.
    pub notify: bool,
}

/// Outcome of a final check before sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalCheck {
    /// This many entries are waiting: process them.
    Work(u32),
    /// Nothing is waiting: store `event` in the shared event index, issue
    /// a full barrier, re-read the producer index and check again with the
    /// plain `unconsumed_*` function; sleep only if that is still zero.
    Arm {
        /// Value for the shared event index (`cons + 1`).
        event: u32,
    },
}

fn check_size(size: u32) -> Result<u32, SharedRingError> {
    if size.is_power_of_two() {
        Ok(size)
    } else {
        Err(SharedRingError::BadSize(size))
    }
}

/// The back end's private indexes (`BACK_RING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackRingIndices {
    size: u32,
    /// Next request to consume.
    pub req_cons: u32,
    /// Responses produced but possibly not yet published.
    pub rsp_prod_pvt: u32,
}

impl BackRingIndices {
    /// A back ring of `size` entries attached to a freshly initialised
    /// shared ring (all indexes 0).
    pub fn new(size: u32) -> Result<Self, SharedRingError> {
        Self::attach(size, 0)
    }

    /// A back ring attaching to a shared ring whose `rsp_prod` is `start`
    /// (`BACK_RING_ATTACH`).
    pub fn attach(size: u32, start: u32) -> Result<Self, SharedRingError> {
        Ok(BackRingIndices {
            size: check_size(size)?,
            req_cons: start,
            rsp_prod_pvt: start,
        })
    }

    /// Number of entries.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Requests available given the front end's `req_prod`
    /// (`RING_HAS_UNCONSUMED_REQUESTS`, checked).
    pub fn unconsumed_requests(&self, req_prod: u32) -> Result<u32, SharedRingError> {
        // Requests the front end claims are in flight (not yet answered).
        let in_flight = req_prod.wrapping_sub(self.rsp_prod_pvt);
        if in_flight > self.size {
            return Err(SharedRingError::RequestProdOverflow { req_prod });
        }
        // Requests we consumed but have not answered yet.
        let consumed = self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        in_flight
            .checked_sub(consumed)
            .ok_or(SharedRingError::RequestProdBehind { req_prod })
    }

    /// Consumes one request if available, returning its slot index.
    pub fn consume_request(&mut self, req_prod: u32) -> Result<Option<u32>, SharedRingError> {
        if self.unconsumed_requests(req_prod)? == 0 {
            return Ok(None);
        }
        let slot = self.req_cons & (self.size - 1);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(slot))
    }

    /// Whether consuming at `req_cons` would overrun unanswered responses
    /// (`RING_REQUEST_CONS_OVERFLOW`).
    pub fn request_cons_overflow(&self) -> bool {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt) >= self.size
    }

    /// Number of consumed requests not yet answered.
    pub fn unanswered(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Claims the slot for the next response (a consumed request must be
    /// unanswered), returning its index.
    pub fn next_response_slot(&mut self) -> Result<u32, SharedRingError> {
        if self.unanswered() == 0 || self.unanswered() > self.size {
            return Err(SharedRingError::NoSlot);
        }
        let slot = self.rsp_prod_pvt & (self.size - 1);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(slot)
    }

    /// Publishing responses (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`):
    /// `old_rsp_prod` is the shared `rsp_prod` before this push and
    /// `rsp_event` the front end's event index read *after* storing
    /// `new_prod` and a full barrier.
    pub fn push_responses(&self, old_rsp_prod: u32, rsp_event: u32) -> Push {
        let new_prod = self.rsp_prod_pvt;
        Push {
            new_prod,
            notify: notify_needed(old_rsp_prod, new_prod, rsp_event),
        }
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`, first half.
    pub fn final_check_for_requests(&self, req_prod: u32) -> Result<FinalCheck, SharedRingError> {
        match self.unconsumed_requests(req_prod)? {
            0 => Ok(FinalCheck::Arm {
                event: self.req_cons.wrapping_add(1),
            }),
            n => Ok(FinalCheck::Work(n)),
        }
    }
}

/// The front end's private indexes (`FRONT_RING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontRingIndices {
    size: u32,
    /// Requests produced but possibly not yet published.
    pub req_prod_pvt: u32,
    /// Next response to consume.
    pub rsp_cons: u32,
}

impl FrontRingIndices {
    /// A front ring of `size` entries over a freshly initialised shared
    /// ring.
    pub fn new(size: u32) -> Result<Self, SharedRingError> {
        Ok(FrontRingIndices {
            size: check_size(size)?,
            req_prod_pvt: 0,
            rsp_cons: 0,
        })
    }

    /// Number of entries.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Free request slots (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.size
            .saturating_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// Whether no request slot is free (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Claims the slot for the next request, returning its index.
    pub fn next_request_slot(&mut self) -> Result<u32, SharedRingError> {
        if self.is_full() {
            return Err(SharedRingError::NoSlot);
        }
        let slot = self.req_prod_pvt & (self.size - 1);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(slot)
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`; see
    /// [`BackRingIndices::push_responses`].
    pub fn push_requests(&self, old_req_prod: u32, req_event: u32) -> Push {
        let new_prod = self.req_prod_pvt;
        Push {
            new_prod,
            notify: notify_needed(old_req_prod, new_prod, req_event),
        }
    }

    /// Responses available given the back end's `rsp_prod`
    /// (`RING_HAS_UNCONSUMED_RESPONSES`, checked: the back end cannot
    /// answer more requests than were issued).
    pub fn unconsumed_responses(&self, rsp_prod: u32) -> Result<u32, SharedRingError> {
        let n = rsp_prod.wrapping_sub(self.rsp_cons);
        let issued = self.req_prod_pvt.wrapping_sub(self.rsp_cons);
        if n > self.size || n > issued {
            return Err(SharedRingError::ResponseProdOverflow { rsp_prod });
        }
        Ok(n)
    }

    /// Consumes one response if available, returning its slot index.
    pub fn consume_response(&mut self, rsp_prod: u32) -> Result<Option<u32>, SharedRingError> {
        if self.unconsumed_responses(rsp_prod)? == 0 {
            return Ok(None);
        }
        let slot = self.rsp_cons & (self.size - 1);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(slot))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`, first half.
    pub fn final_check_for_responses(&self, rsp_prod: u32) -> Result<FinalCheck, SharedRingError> {
        match self.unconsumed_responses(rsp_prod)? {
            0 => Ok(FinalCheck::Arm {
                event: self.rsp_cons.wrapping_add(1),
            }),
            n => Ok(FinalCheck::Work(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ring_sizes() {
        // netif: tx req 12 bytes, rsp 4 -> (4096-64)/12 = 336 -> 256.
        assert_eq!(ring_size(4096, 12, 4), Some(256));
        // netif rx: req 8, rsp 8 -> 504 -> 256.
        assert_eq!(ring_size(4096, 8, 8), Some(256));
        // blkif: req 112, rsp 16 -> 36 -> 32.
        assert_eq!(ring_size(4096, 112, 16), Some(32));
        assert_eq!(ring_size(4096, 4032, 1), Some(1));
        assert_eq!(ring_size(4096, 4033, 1), None);
        assert_eq!(ring_size(4096, 0, 0), None);
        assert_eq!(ring_size(10, 1, 1), None);
        assert_eq!(ring_size(64 + 1024, 1, 1), Some(1024));
        assert_eq!(ring_size(64 + 1023, 1, 1), Some(512));
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(BackRingIndices::new(3), Err(SharedRingError::BadSize(3)));
        assert_eq!(FrontRingIndices::new(0), Err(SharedRingError::BadSize(0)));
    }

    #[test]
    fn notify_rule() {
        assert!(notify_needed(0, 1, 1));
        assert!(!notify_needed(0, 1, 2));
        assert!(notify_needed(0, 5, 3));
        assert!(!notify_needed(5, 5, 5));
        // Wrap-around.
        assert!(notify_needed(u32::MAX - 1, 2, u32::MAX));
        assert!(notify_needed(u32::MAX - 1, 2, 0));
        assert!(!notify_needed(u32::MAX - 1, 2, 3));
        assert!(!notify_needed(u32::MAX - 1, 2, u32::MAX - 1));
    }

    #[test]
    fn back_request_checks() {
        let mut b = BackRingIndices::attach(8, u32::MAX - 2).unwrap();
        let base = u32::MAX - 2;
        assert_eq!(b.unconsumed_requests(base), Ok(0));
        assert_eq!(b.unconsumed_requests(base.wrapping_add(8)), Ok(8));
        assert_eq!(
            b.unconsumed_requests(base.wrapping_add(9)),
            Err(SharedRingError::RequestProdOverflow {
                req_prod: base.wrapping_add(9)
            })
        );
        let prod = base.wrapping_add(5);
        for i in 0..5u32 {
            let slot = b.consume_request(prod).unwrap().unwrap();
            assert_eq!(slot, base.wrapping_add(i) & 7);
        }
        assert_eq!(b.consume_request(prod), Ok(None));
        // The peer moves req_prod backwards below our consumer.
        assert_eq!(
            b.unconsumed_requests(base.wrapping_add(3)),
            Err(SharedRingError::RequestProdBehind {
                req_prod: base.wrapping_add(3)
            })
        );
        // All 8 slots: 5 consumed-unanswered + 3 more is the limit.
        assert_eq!(b.unconsumed_requests(base.wrapping_add(8)), Ok(3));
        assert!(b.unconsumed_requests(base.wrapping_add(9)).is_err());
        assert!(!b.request_cons_overflow());
        for _ in 0..5 {
            b.next_response_slot().unwrap();
        }
        assert_eq!(b.next_response_slot(), Err(SharedRingError::NoSlot));
        let p = b.push_responses(base, base.wrapping_add(1));
        assert_eq!(
            p,
            Push {
                new_prod: prod,
                notify: true
            }
        );
        let p = b.push_responses(base, base.wrapping_add(6));
        assert!(!p.notify);
    }

    #[test]
    fn final_checks() {
        let b = BackRingIndices::attach(4, u32::MAX).unwrap();
        assert_eq!(
            b.final_check_for_requests(u32::MAX),
            Ok(FinalCheck::Arm { event: 0 })
        );
        assert_eq!(b.final_check_for_requests(1), Ok(FinalCheck::Work(2)));
        let f = FrontRingIndices::new(4).unwrap();
        assert_eq!(
            f.final_check_for_responses(0),
            Ok(FinalCheck::Arm { event: 1 })
        );
        assert!(f.final_check_for_responses(1).is_err());
    }

    #[test]
    fn front_checks() {
        let mut f = FrontRingIndices::new(4).unwrap();
        f.req_prod_pvt = u32::MAX - 1;
        f.rsp_cons = u32::MAX - 1;
        for _ in 0..4 {
            f.next_request_slot().unwrap();
        }
        assert!(f.is_full());
        assert_eq!(f.next_request_slot(), Err(SharedRingError::NoSlot));
        assert_eq!(f.req_prod_pvt, 2);
        let p = f.push_requests(u32::MAX - 1, u32::MAX);
        assert_eq!(
            p,
            Push {
                new_prod: 2,
                notify: true
            }
        );
        assert_eq!(f.unconsumed_responses(1), Ok(3));
        assert!(f.unconsumed_responses(3).is_err());
        assert_eq!(f.consume_response(1).unwrap(), Some((u32::MAX - 1) & 3));
        assert_eq!(f.free_requests(), 1);
    }

    proptest! {
        /// Drive a front and back end against a model shared ring with
        /// random batch sizes near wrap-around: every request gets exactly
        /// one response, in order, and no index check ever fails.
        #[test]
        fn front_back_model(
            start in prop_oneof![Just(u32::MAX - 7), Just(0u32), any::<u32>()],
            ops in proptest::collection::vec((0u8..4, 1u32..6), 1..200),
        ) {
            let size = 4;
            let mut f = FrontRingIndices { size, req_prod_pvt: start, rsp_cons: start };
            let mut b = BackRingIndices::attach(size, start).unwrap();
            // Shared header.
            let (mut req_prod, mut rsp_prod) = (start, start);
            let (mut req_event, mut rsp_event) = (start.wrapping_add(1), start.wrapping_add(1));
            let mut slots = [0u32; 4];
            let (mut sent, mut done) = (0u32, 0u32);
            for (op, n) in ops {
                match op {
                    0 => {
                        let old = req_prod;
                        for _ in 0..n {
                            let Ok(s) = f.next_request_slot() else { break };
                            slots[s as usize] = sent;
                            sent += 1;
                        }
                        let p = f.push_requests(old, req_event);
                        req_prod = p.new_prod;
                    }
                    1 => {
                        for _ in 0..n {
                            if b.consume_request(req_prod).unwrap().is_none() { break; }
                        }
                    }
                    2 => {
                        let old = rsp_prod;
                        for _ in 0..n {
                            if b.next_response_slot().is_err() { break; }
                        }
                        let p = b.push_responses(old, rsp_event);
                        rsp_prod = p.new_prod;
                    }
                    _ => {
                        for _ in 0..n {
                            match f.consume_response(rsp_prod).unwrap() {
                                Some(s) => { prop_assert_eq!(slots[s as usize], done); done += 1; }
                                None => break,
                            }
                        }
                        if let FinalCheck::Arm { event } = f.final_check_for_responses(rsp_prod).unwrap() {
                            rsp_event = event;
                        }
                        if let FinalCheck::Arm { event } = b.final_check_for_requests(req_prod).unwrap() {
                            req_event = event;
                        }
                    }
                }
                prop_assert!(done <= sent && sent - done <= size);
            }
        }

        #[test]
        fn back_never_panics(rc: u32, rp: u32, req_prod: u32, ev: u32, old: u32) {
            let mut b = BackRingIndices { size: 16, req_cons: rc, rsp_prod_pvt: rp };
            let _ = b.unconsumed_requests(req_prod);
            let _ = b.consume_request(req_prod);
            let _ = b.next_response_slot();
            let _ = b.push_responses(old, ev);
            let _ = b.final_check_for_requests(req_prod);
            let _ = b.request_cons_overflow();
        }

        #[test]
        fn front_never_panics(pp: u32, rc: u32, rsp_prod: u32) {
            let mut f = FrontRingIndices { size: 16, req_prod_pvt: pp, rsp_cons: rc };
            let _ = f.unconsumed_responses(rsp_prod);
            let _ = f.consume_response(rsp_prod);
            let _ = f.next_request_slot();
            let _ = f.free_requests();
            let _ = f.final_check_for_responses(rsp_prod);
        }
    }
}
