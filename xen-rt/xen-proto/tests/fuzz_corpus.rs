//! Bounded fuzzing without nightly or cargo-fuzz, run by every
//! `cargo xtask test`: each cargo-fuzz target's driver
//! (`xen_proto::fuzzing`) gets its seed corpus (`fuzz/corpus/<target>/`),
//! then pseudo-random inputs and mutations of the seeds (bit flips, byte
//! overwrites, insertions, truncations, splices). Any panic is a failure;
//! reproduce it with `cargo xtask fuzz <target>` or by adding the printed
//! input to the corpus.
#![forbid(unsafe_code)]

#[path = "common/fuzz_engine.rs"]
mod engine;
use engine::run;

#[test]
fn xenstore_assembler() {
    run(
        "xenstore_assembler",
        xen_proto::fuzzing::xenstore_assembler,
        0x1234_5678_9abc_def1,
    );
}

#[test]
fn xenstore_client() {
    run(
        "xenstore_client",
        xen_proto::fuzzing::xenstore_client,
        0x0fed_cba9_8765_4321,
    );
}

#[test]
fn ring_bytes() {
    run(
        "ring_bytes",
        xen_proto::fuzzing::ring_bytes,
        0x5eed_0000_0000_0003,
    );
}

#[test]
fn ring_shared() {
    run(
        "ring_shared",
        xen_proto::fuzzing::ring_shared,
        0x5eed_0000_0000_0004,
    );
}

#[test]
fn blkif_request() {
    run(
        "blkif_request",
        xen_proto::fuzzing::blkif_request,
        0x5eed_0000_0000_0006,
    );
}

#[test]
fn netif_tx() {
    run(
        "netif_tx",
        xen_proto::fuzzing::netif_tx,
        0x5eed_0000_0000_0007,
    );
}

#[test]
fn console_ring() {
    run(
        "console_ring",
        xen_proto::fuzzing::console_ring,
        0x5eed_0000_0000_0008,
    );
}

/// The console ring states console-domain captured from a Linux guest
/// (`fuzz/corpus/console_ring/captured-stream-*`, one connection each)
/// replay through a fresh backend without a single refusal: the capture
/// format and the backend agree on what honest traffic is.
#[test]
fn console_captures_replay() {
    use xen_proto::console::{
        Backend, IN_CONS, IN_OFFSET, IN_PROD, IN_SIZE, MemPage, OUT_CONS, OUT_OFFSET, OUT_PROD,
        OUT_SIZE, RawIndices,
    };
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/console_ring");
    let mut replayed = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("captured-stream-") {
            continue;
        }
        let seed = std::fs::read(e.path()).unwrap();
        let mut page = MemPage::default();
        let set = |page: &mut MemPage, block: &[u8]| {
            let r = RawIndices::parse(block.try_into().unwrap());
            for (o, v) in [
                (IN_CONS, r.in_cons),
                (IN_PROD, r.in_prod),
                (OUT_CONS, r.out_cons),
                (OUT_PROD, r.out_prod),
            ] {
                page.set(o, v);
            }
            r
        };
        set(&mut page, &seed[1..17]);
        let mut b = Backend::attach(&mut page, seed[0] & 1 == 1).unwrap();
        let mut rest = &seed[17..];
        let mut lines = 0;
        while let Some((&0, rec)) = rest.split_first() {
            let r = set(&mut page, &rec[..16]);
            let out = u16::from_le_bytes([rec[16], rec[17]]) as usize;
            for (k, &x) in rec[18..18 + out].iter().enumerate() {
                page.bytes[OUT_OFFSET + (r.out_cons as usize + k) % OUT_SIZE as usize] = x;
            }
            let inp = u16::from_le_bytes([rec[18 + out], rec[19 + out]]) as usize;
            for (k, &x) in rec[20 + out..20 + out + inp].iter().enumerate() {
                page.bytes[IN_OFFSET + (r.in_cons as usize + k) % IN_SIZE as usize] = x;
            }
            b.poll(&mut page, false, &mut |e| {
                if let xen_proto::console::Event::Line(l) = e {
                    lines += usize::from(l.complete);
                }
            })
            .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
            rest = &rec[20 + out + inp..];
        }
        assert!(rest.is_empty(), "{name}: trailing bytes");
        assert!(lines > 0, "{name}: no line");
        replayed += 1;
    }
    assert!(
        replayed > 0,
        "no captured console streams in {}",
        dir.display()
    );
}
