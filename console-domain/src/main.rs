//! # console-domain
//!
//! A dom0less service domain that will serve the Xen console backend to guests.
//!
//! Status: foundation shell. It boots on xen-rt, reports itself and stops
//! cleanly; the backend itself is tracked by its own issue.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use xen_rt::{Runtime, println};

xen_rt::entry!(main);

fn main(rt: &mut Runtime) {
    let (major, minor) = rt.xen_version();
    println!(
        "console-domain: xen-rt {} on Xen {}.{}: backend not implemented yet, shutting down",
        xen_rt::VERSION,
        major,
        minor
    );
}
