//! Bounded fuzzing without nightly or cargo-fuzz: replays a cargo-fuzz
//! target's seed corpus (`fuzz/corpus/<target>/`), then pseudo-random
//! inputs and mutations of the seeds (bit flips, byte overwrites,
//! insertions, truncations, splices, duplications). Shared by
//! xen-proto's and vchan's `tests/fuzz_corpus.rs` (via `#[path]`).

use std::path::PathBuf;

/// Inputs per target beyond the corpus (the dev profile is slow; release
/// runs more).
const ITERATIONS: usize = if cfg!(debug_assertions) {
    20000
} else {
    200000
};

pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    // The corpus lives at the workspace root: walk up from the crate.
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !root.join("fuzz/corpus").is_dir() {
        assert!(root.pop(), "no fuzz/corpus above the crate");
    }
    let dir = root.join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
    out.clear();
    if seeds.is_empty() || rng.below(4) == 0 {
        let len = rng.below(700);
        out.extend((0..len).map(|_| rng.next() as u8));
        return;
    }
    out.extend_from_slice(&seeds[rng.below(seeds.len())]);
    for _ in 0..1 + rng.below(6) {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0, 0xff, 0x7f, 0x80, 1, b'\0', b'/'][rng.below(7)];
            }
            2 => {
                let i = rng.below(out.len() + 1);
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(i..i, bytes);
            }
            3 => {
                let n = rng.below(out.len() + 1);
                out.truncate(n);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                out.extend_from_slice(&other[from..]);
            }
            _ => {
                // Duplicate a range (repeated messages / records).
                if !out.is_empty() {
                    let a = rng.below(out.len());
                    let b = a + rng.below(out.len() - a + 1);
                    let dup = out[a..b].to_vec();
                    out.extend_from_slice(&dup);
                }
            }
        }
    }
}

pub fn run(target: &str, f: fn(&[u8]), seed: u64) {
    let seeds = corpus(target);
    for s in &seeds {
        f(s);
    }
    let mut rng = Rng(seed);
    let mut buf = Vec::new();
    for _ in 0..ITERATIONS {
        mutate(&mut rng, &seeds, &mut buf);
        let input = buf.clone();
        if std::panic::catch_unwind(|| f(&input)).is_err() {
            panic!("{target}: crash on input {input:02x?}");
        }
    }
    println!(
        "{target}: {} seeds + {ITERATIONS} generated inputs, no crash",
        seeds.len()
    );
}
