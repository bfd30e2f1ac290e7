//! Monotonic time from the architecture's counter. `Instant` counts from the
//! domain's creation (the counter's virtual offset is set by Xen then).

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use crate::arch;

static FREQUENCY_HZ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn init() {
    FREQUENCY_HZ.store(arch::timer::frequency().max(1), Ordering::Relaxed);
}

fn hz() -> u64 {
    FREQUENCY_HZ.load(Ordering::Relaxed).max(1)
}

/// A point on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    ticks: u64,
}

impl Instant {
    pub fn now() -> Self {
        Self {
            ticks: arch::timer::now_ticks(),
        }
    }

    /// Time since the domain was created.
    pub fn since_creation(self) -> Duration {
        ticks_to_duration(self.ticks)
    }

    pub fn elapsed(self) -> Duration {
        Self::now().duration_since(self)
    }

    pub fn duration_since(self, earlier: Instant) -> Duration {
        ticks_to_duration(self.ticks.saturating_sub(earlier.ticks))
    }

    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let extra = (d.as_nanos().checked_mul(hz() as u128)? / 1_000_000_000) as u64;
        Some(Self {
            ticks: self.ticks.checked_add(extra)?,
        })
    }

    /// `self + d`, saturating at the far future.
    pub fn after(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant { ticks: u64::MAX })
    }

    pub(crate) fn ticks(self) -> u64 {
        self.ticks
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = hz();
    let secs = ticks / hz;
    let rem = ticks % hz;
    Duration::new(secs, ((rem as u128 * 1_000_000_000) / hz as u128) as u32)
}

/// Milliseconds since the domain was created.
pub fn ms_since_creation() -> u64 {
    Instant::now().since_creation().as_millis() as u64
}
