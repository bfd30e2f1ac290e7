//! The bare-metal rustflags in .cargo/config.toml pass
//! `-Txen-aarch64-domu.ld`; this probe does not link xen-rt (whose build
//! script normally provides it), so put the same script on the search path.
#![forbid(unsafe_code)]

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let script = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("../../targets/aarch64/xen-aarch64-domu.ld");
    fs::copy(&script, out.join("xen-aarch64-domu.ld")).expect("copying the linker script");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
