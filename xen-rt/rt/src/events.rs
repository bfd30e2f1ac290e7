//! Event channels (2-level ABI) delivered by Xen's event-channel PPI.
//!
//! Design: the domain runs with interrupts masked and one vCPU. Waiting is
//! `check -> WFI -> acknowledge -> check`: an event that arrives after the
//! check leaves the PPI pending at the CPU interface, so WFI returns at
//! once and no wake-up is lost. Pending bits are moved out of shared_info
//! into a local bitmap (`fired`), from which callers take their port.

use core::sync::atomic::Ordering;
use core::time::Duration;

use xen_hypercall::{self as hc, DomId, EvtchnPort};

use crate::arch;
use crate::mem::SharedPage;
use crate::time::Instant;

/// Number of ports of the 2-level ABI on a 64-bit guest.
pub const MAX_PORTS: u32 = 64 * 64;

/// Errors of event-channel operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    Hypercall(hc::Error),
    /// A port number outside the 2-level ABI's range.
    BadPort(u32),
    /// Not the id of a shared peripheral interrupt (32..1020).
    BadInterrupt(u32),
    TimedOut,
}

impl From<hc::Error> for EventError {
    fn from(e: hc::Error) -> Self {
        EventError::Hypercall(e)
    }
}

pub struct Events {
    shared_info: SharedPage,
    gic: arch::gic::Gic,
    event_intid: u32,
    timer_intid: Option<u32>,
    /// The shared interrupt of a passed-through device, once enabled.
    device_intid: Option<u32>,
    /// Whether that interrupt fired since [`Events::take_device_interrupt`].
    device_fired: bool,
    /// How often it fired.
    device_interrupts: u64,
    fired: [u64; 64],
    wakeups: u64,
}

const PENDING_OFFSET: usize = core::mem::offset_of!(hc::abi::SharedInfo, evtchn_pending);
const MASK_OFFSET: usize = core::mem::offset_of!(hc::abi::SharedInfo, evtchn_mask);
const UPCALL_PENDING_OFFSET: usize =
    core::mem::offset_of!(hc::abi::VcpuInfo, evtchn_upcall_pending);
const PENDING_SEL_OFFSET: usize = core::mem::offset_of!(hc::abi::VcpuInfo, evtchn_pending_sel);

impl Events {
    pub(crate) fn new(
        shared_info: SharedPage,
        gic: arch::gic::Gic,
        event_intid: u32,
        timer_intid: Option<u32>,
    ) -> Self {
        gic.enable_ppi(event_intid);
        if let Some(t) = timer_intid {
            gic.enable_ppi(t);
        }
        Self {
            shared_info,
            gic,
            event_intid,
            timer_intid,
            device_intid: None,
            device_fired: false,
            device_interrupts: 0,
            fired: [0; 64],
            wakeups: 0,
        }
    }

    fn check_port(port: EvtchnPort) -> Result<(usize, u64), EventError> {
        if port.0 >= MAX_PORTS {
            return Err(EventError::BadPort(port.0));
        }
        Ok(((port.0 / 64) as usize, 1u64 << (port.0 % 64)))
    }

    /// Allocates a port that `remote` may bind to; it starts unmasked.
    pub fn alloc_unbound(&mut self, remote: DomId) -> Result<EvtchnPort, EventError> {
        let port = hc::evtchn_alloc_unbound(remote)?;
        self.unmask(port)?;
        Ok(port)
    }

    /// Binds to `remote_port` of `remote`; the local port starts unmasked.
    ///
    /// Xen marks the new local port pending at once (notifications sent to
    /// the unbound port may have been lost), so the first wait returns
    /// immediately: as everywhere, an event means "look at the shared
    /// state again", never "exactly one thing happened".
    pub fn bind_interdomain(
        &mut self,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, EventError> {
        Self::check_port(remote_port)?;
        let port = hc::evtchn_bind_interdomain(remote, remote_port)?;
        self.unmask(port)?;
        Ok(port)
    }

    /// Starts delivery of an existing port (e.g. the xenstore port Xen set up).
    pub fn unmask(&mut self, port: EvtchnPort) -> Result<(), EventError> {
        Self::check_port(port)?;
        hc::evtchn_unmask(port)?;
        Ok(())
    }

    /// Stops delivery of `port` (events stay pending in Xen until unmasked).
    pub fn mask(&mut self, port: EvtchnPort) -> Result<(), EventError> {
        let (word, bit) = Self::check_port(port)?;
        let off = MASK_OFFSET + word * 8;
        let old = self
            .shared_info
            .load_u64(off, Ordering::Acquire)
            .unwrap_or(0);
        // The mask word is written by us only (Xen reads it), so a plain
        // read-modify-write of the bit through the atomic view is enough.
        let _ = self.shared_info.swap_u64(off, old | bit, Ordering::AcqRel);
        Ok(())
    }

    pub fn notify(&self, port: EvtchnPort) -> Result<(), EventError> {
        Self::check_port(port)?;
        hc::evtchn_send(port)?;
        Ok(())
    }

    pub fn close(&mut self, port: EvtchnPort) -> Result<(), EventError> {
        let (word, bit) = Self::check_port(port)?;
        hc::evtchn_close(port)?;
        self.fired[word] &= !bit;
        Ok(())
    }

    /// Moves every pending, unmasked port from shared_info to `fired`.
    pub fn collect(&mut self) {
        let si = &self.shared_info;
        let _ = si.write_u8(UPCALL_PENDING_OFFSET, 0);
        arch::memory_barrier();
        let sel = si
            .swap_u64(PENDING_SEL_OFFSET, 0, Ordering::AcqRel)
            .unwrap_or(0);
        let mut words = sel;
        while words != 0 {
            let w = words.trailing_zeros() as usize;
            words &= words - 1;
            let pending = si
                .load_u64(PENDING_OFFSET + w * 8, Ordering::Acquire)
                .unwrap_or(0);
            let mask = si
                .load_u64(MASK_OFFSET + w * 8, Ordering::Acquire)
                .unwrap_or(0);
            let ready = pending & !mask;
            if ready != 0 {
                let _ = si.fetch_and_u64(PENDING_OFFSET + w * 8, !ready, Ordering::AcqRel);
                self.fired[w] |= ready;
            }
        }
    }

    /// True (once) if `port` fired since the last take.
    pub fn take(&mut self, port: EvtchnPort) -> bool {
        let Ok((word, bit)) = Self::check_port(port) else {
            return false;
        };
        if self.fired[word] & bit == 0 {
            self.collect();
        }
        let was = self.fired[word] & bit != 0;
        self.fired[word] &= !bit;
        was
    }

    /// Waits until `port` fires or `deadline` passes.
    pub fn wait(&mut self, port: EvtchnPort, deadline: Option<Instant>) -> Result<(), EventError> {
        Self::check_port(port)?;
        loop {
            if self.take(port) {
                return Ok(());
            }
            if !self.sleep(deadline) {
                return if self.take(port) {
                    Ok(())
                } else {
                    Err(EventError::TimedOut)
                };
            }
        }
    }

    /// Delivers the shared interrupt `intid` of a device passed through to
    /// this domain (its `interrupts` in the device tree): from now on a
    /// wait also ends when it fires. Like an event, it means "look at the
    /// device again": the caller acknowledges it at the device and then
    /// checks the device's state, so a level-triggered line that is still
    /// raised costs one extra wake-up, never a lost one.
    pub fn enable_device_interrupt(&mut self, intid: u32) -> Result<(), EventError> {
        if !self.gic.enable_spi(intid) {
            return Err(EventError::BadInterrupt(intid));
        }
        self.device_intid = Some(intid);
        Ok(())
    }

    /// How often the device interrupt fired.
    pub fn device_interrupts(&self) -> u64 {
        self.device_interrupts
    }

    /// Whether the device interrupt fired since the last call.
    pub fn take_device_interrupt(&mut self) -> bool {
        core::mem::take(&mut self.device_fired)
    }

    /// Waits until any of `ports` fires (`Some(port)`), the device
    /// interrupt fires (`None`, see [`Events::enable_device_interrupt`]) or
    /// `deadline` passes.
    pub fn wait_any_or_device(
        &mut self,
        ports: &[EvtchnPort],
        deadline: Option<Instant>,
    ) -> Result<Option<EvtchnPort>, EventError> {
        loop {
            if self.take_device_interrupt() {
                return Ok(None);
            }
            for &p in ports {
                if self.take(p) {
                    return Ok(Some(p));
                }
            }
            if !self.sleep(deadline) {
                return Err(EventError::TimedOut);
            }
        }
    }

    /// Waits until any of `ports` fires (returning it) or `deadline` passes.
    pub fn wait_any(
        &mut self,
        ports: &[EvtchnPort],
        deadline: Option<Instant>,
    ) -> Result<EvtchnPort, EventError> {
        loop {
            for &p in ports {
                if self.take(p) {
                    return Ok(p);
                }
            }
            if !self.sleep(deadline) {
                return Err(EventError::TimedOut);
            }
        }
    }

    /// Sleeps for `d` (events arriving meanwhile stay recorded).
    pub fn sleep_for(&mut self, d: Duration) {
        let deadline = Instant::now().after(d);
        while self.sleep(Some(deadline)) {}
    }

    /// One WFI round: returns false once `deadline` has passed.
    fn sleep(&mut self, deadline: Option<Instant>) -> bool {
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return false;
            }
            arch::timer::arm(d.ticks());
        }
        arch::wait_for_interrupt();
        self.wakeups += 1;
        while let Some(intid) = self.gic.acknowledge() {
            if Some(intid) == self.timer_intid {
                arch::timer::disarm();
            } else if Some(intid) == self.device_intid {
                self.device_fired = true;
                self.device_interrupts += 1;
            }
            let _ = self.event_intid;
        }
        arch::timer::disarm();
        self.collect();
        true
    }

    /// How often the domain woke from WFI.
    pub fn wakeups(&self) -> u64 {
        self.wakeups
    }
}
