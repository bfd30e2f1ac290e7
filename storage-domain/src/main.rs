//! # storage-domain
//!
//! A dom0less service domain that will serve blkback (Xen blkif) to Linux xen-blkfront guests from a passed-through disk.
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
        "storage-domain: xen-rt {} on Xen {}.{}: backend not implemented yet, shutting down",
        xen_rt::VERSION,
        major,
        minor
    );
}
