//! Puts the domain linker script on the library search path of every crate
//! that links xen-rt, so `-Txen-aarch64-domu.ld` (set in .cargo/config.toml)
//! finds it.
#![forbid(unsafe_code)]
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let script = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .join("../../targets/aarch64/xen-aarch64-domu.ld");
    fs::copy(&script, out.join("xen-aarch64-domu.ld")).unwrap();
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
