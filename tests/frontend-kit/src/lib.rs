//! # frontend-kit: helpers for our Rust test frontends
//!
//! What it is for: the pieces that every Rust test frontend needs to drive
//! one of our backends in the qemu scenarios (tests/blk-hostile-domain
//! against storage-domain's blkback, tests/net-hostile-domain against
//! net-domain's netback): bounded waits on xenstore and on an event
//! channel, the xenbus states, a frontend's side of an `io/ring.h` ring
//! header, granting and releasing pages, and the case tally with its log
//! lines. It is test code: never linked into a product domain, so it adds
//! nothing to their images or line counts.
//!
//! Design: safe code on top of xen-rt's typed interfaces; every wait is
//! bounded by a timeout the caller passes and re-checks shared state at
//! least every [`POLL_STEP`] or [`WATCH_STEP`], so a lost notification
//! turns into a delay, never a hang; nothing panics. Errors are `String`s
//! worded for a case line (`<what>: <error>`). The few helpers that print
//! take the caller's log tag (e.g. `blk-hostile`), so every line still
//! starts with its domain's `<tag>: `.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod ring;
pub mod store;

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use xen_rt::gnttab::{GrantTable, GrantedPage};
use xen_rt::{Runtime, println};

/// Re-check shared state at least this often, even without an event
/// (a lost notification must not turn into a hang).
pub const POLL_STEP: Duration = Duration::from_millis(100);
/// Ceiling for one pass over xenstore while waiting for a watch (watch
/// events coalesce).
pub const WATCH_STEP: Duration = Duration::from_millis(500);

/// The first line a test frontend prints:
/// `<tag>: banner xen-rt <version> image=<bytes>`.
pub fn banner(tag: &str, rt: &Runtime) {
    println!(
        "{tag}: banner xen-rt {} image={}",
        xen_rt::VERSION,
        rt.image_bytes()
    );
}

/// Turns an error into `<what>: <error>` (for `map_err`).
pub fn xs<E: core::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// Ends the backend's access to one of our pages. A failure is only
/// reported: the domain ends soon after, and the grant table reports the
/// leaked page itself.
pub fn release(tag: &str, grants: &mut GrantTable, what: &str, page: GrantedPage) {
    if let Err((page, e)) = grants.end_access(page) {
        println!(
            "{tag}: ending the backend's access to the {what} page (gref {}) failed: {e:?}",
            page.gref().0
        );
    }
}

/// The cases passed and failed so far; prints one line per case and the
/// result line that the scenario checks parse.
pub struct Tally {
    tag: &'static str,
    pub passed: u32,
    pub failed: u32,
}

impl Tally {
    /// An empty tally whose lines start with `<tag>: `.
    pub fn new(tag: &'static str) -> Self {
        Self {
            tag,
            passed: 0,
            failed: 0,
        }
    }

    /// Counts and prints one case:
    /// `<tag>: case <name> <detail> ok` or `... FAIL (<why>)`.
    pub fn report(&mut self, name: &str, detail: &str, verdict: Result<(), String>) {
        let tag = self.tag;
        match verdict {
            Ok(()) => {
                self.passed += 1;
                println!("{tag}: case {name} {detail} ok");
            }
            Err(why) => {
                self.failed += 1;
                println!("{tag}: case {name} {detail} FAIL ({why})");
            }
        }
    }

    /// Prints `<tag>: RESULT <p> passed, <f> failed`.
    pub fn print_result(&self) {
        println!(
            "{}: RESULT {} passed, {} failed",
            self.tag, self.passed, self.failed
        );
    }
}
