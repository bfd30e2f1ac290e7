//! Ring index arithmetic.
//!
//! Xen rings use free-running `u32` indexes: producers and consumers only
//! ever increment them (wrapping at `u32::MAX`), and a slot is found by
//! masking with `size - 1`. Sizes are powers of two, so they divide 2^32
//! and masking stays consistent across wrap-around.
//!
//! The indexes live in memory the peer can write at any time. Callers must
//! copy each index **once** out of shared memory and pass the copy here;
//! re-reading could see a different value between the check and the use.

pub mod bytes;
pub mod shared;

/// Whether `size` is a usable ring size (a non-zero power of two).
pub const fn is_valid_size(size: u32) -> bool {
    size.is_power_of_two()
}
