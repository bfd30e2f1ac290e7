//! The `rate` limit of a vif: how many bytes a guest may transmit per time
//! window, as Linux netback enforces it (`drivers/net/xen-netback`:
//! `xen_net_read_rate`, `tx_credit_exceeded`, `tx_add_credit`).
//!
//! The toolstack writes `rate = "<bytes>,<usec>"` in the vif's backend
//! directory (`xl` vif option `rate=10Mb/s@20ms` becomes `25000,20000`).
//! Each queue then holds a credit of bytes. A packet larger than the credit
//! waits on the ring until the window that started at the last refill has
//! passed; the refill adds `bytes`, capped at the larger of `bytes` and
//! [`MAX_BURST`] so that a 64 KiB GSO packet can always go through
//! eventually. Without the node (or with an unreadable value, which Linux
//! also ignores with a warning) the vif is not limited.
//!
//! Time is passed in (microseconds from any fixed origin), so everything
//! here is deterministic and host-tested.

/// The smallest credit cap: one packet of up to 128 KiB must fit.
pub const MAX_BURST: u64 = 131_072;

/// A vif's `rate` node: `bytes` per `usec` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Bytes per window.
    pub bytes: u64,
    /// The window, in microseconds.
    pub usec: u64,
}

impl Rate {
    /// Parses `"<bytes>,<usec>"` (decimal). `None` for anything else, and
    /// for a zero window or a zero byte count, which would mean "no
    /// limit" and "never send" and are treated as no limit.
    pub fn parse(node: &str) -> Option<Rate> {
        let (bytes, usec) = node.trim().split_once(',')?;
        let bytes: u64 = bytes.parse().ok()?;
        let usec: u64 = usec.parse().ok()?;
        (bytes > 0 && usec > 0).then_some(Rate { bytes, usec })
    }
}

/// Whether a packet may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Yes: its size was taken from the credit.
    Send,
    /// Not before this time (µs): leave it on the ring until then.
    WaitUntil(u64),
}

/// One queue's credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    rate: Rate,
    remaining: u64,
    window_start: u64,
}

impl Credit {
    /// A full credit (`rate.bytes`) at connection time `now`.
    pub fn new(rate: Rate, now: u64) -> Credit {
        Credit {
            rate,
            remaining: rate.bytes,
            window_start: now,
        }
    }

    /// Bytes that may still be sent in this window.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Asks to send a packet of `size` bytes at time `now`.
    pub fn spend(&mut self, size: u64, now: u64) -> Verdict {
        if size > self.remaining {
            let next = self.window_start.saturating_add(self.rate.usec);
            if now >= next {
                // As Linux: the new window starts now, not at `next`.
                self.window_start = now;
                let cap = self.rate.bytes.max(MAX_BURST);
                self.remaining = self.remaining.saturating_add(self.rate.bytes).min(cap);
            }
            if size > self.remaining {
                return Verdict::WaitUntil(self.window_start.saturating_add(self.rate.usec));
            }
        }
        self.remaining -= size;
        Verdict::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_toolstack_format() {
        assert_eq!(
            Rate::parse("25000,20000"),
            Some(Rate {
                bytes: 25000,
                usec: 20000
            })
        );
        assert_eq!(Rate::parse(" 1,1\n"), Some(Rate { bytes: 1, usec: 1 }));
        for bad in [
            "",
            "25000",
            "25000,",
            ",20000",
            "a,b",
            "-1,5",
            "0,20000",
            "25000,0",
            "1,2,3",
            "99999999999999999999999,1",
        ] {
            assert_eq!(Rate::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn packets_wait_for_the_next_window() {
        let rate = Rate {
            bytes: 3000,
            usec: 20_000,
        };
        let mut c = Credit::new(rate, 1_000);
        assert_eq!(c.spend(1500, 1_000), Verdict::Send);
        assert_eq!(c.spend(1500, 2_000), Verdict::Send);
        assert_eq!(c.remaining(), 0);
        // Credit spent: wait until the window that began at 1 000 ends.
        assert_eq!(c.spend(60, 5_000), Verdict::WaitUntil(21_000));
        assert_eq!(c.spend(60, 20_999), Verdict::WaitUntil(21_000));
        assert_eq!(c.spend(60, 21_000), Verdict::Send);
        assert_eq!(c.remaining(), 2940);
    }

    #[test]
    fn credit_is_capped_but_a_large_packet_still_goes() {
        let rate = Rate {
            bytes: 1000,
            usec: 10,
        };
        let mut c = Credit::new(rate, 0);
        // Idle for a long time: the credit grows by one refill per
        // request, up to MAX_BURST at most.
        assert_eq!(c.spend(1500, 1_000_000), Verdict::Send);
        assert_eq!(c.remaining(), 500);
        // A 64 KiB packet: each window adds 1000 bytes until it fits.
        let mut now = 1_000_000;
        let mut waits = 0;
        loop {
            match c.spend(65_536, now) {
                Verdict::Send => break,
                Verdict::WaitUntil(t) => {
                    assert!(t > now);
                    now = t;
                    waits += 1;
                }
            }
        }
        assert_eq!(waits, 66);
        assert!(c.remaining() < 1000);
    }

    #[test]
    fn long_run_rate_stays_within_the_limit() {
        // 1 Mbit/s at 20 ms: 2500 bytes per window.
        let rate = Rate {
            bytes: 2500,
            usec: 20_000,
        };
        let mut c = Credit::new(rate, 0);
        let (mut now, mut sent) = (0u64, 0u64);
        while now < 10_000_000 {
            match c.spend(1514, now) {
                Verdict::Send => sent += 1514,
                Verdict::WaitUntil(t) => now = t,
            }
        }
        // 10 s at 125 000 bytes/s, plus the first window's credit.
        assert!(sent <= 1_250_000 + 2500, "{sent}");
        assert!(sent >= 1_250_000 * 9 / 10, "{sent}");
    }
}
