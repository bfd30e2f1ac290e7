//! Host throughput of the vchan rings over the simulated shared memory,
//! against `memcpy` of the same sizes in the same process.
//!
//! `cargo bench -p vchan --bench throughput` (env `VCHAN_BENCH_MIB` sets
//! the volume per case, default 256).
//!
//! Cases, for 64 B, 4 KiB and 64 KiB writes through a 256 KiB ring
//! (order 18):
//! * `2 threads`: writer and reader on two threads, blocking calls, real
//!   event-channel wake-ups (simulated with a mutex and condvar);
//! * `1 thread`: write then read, interleaved on one thread (no waiting);
//! * `memcpy`: `copy_from_slice` of the same chunk into a buffer.
//!
//! The simulated SharedMemory copies word by word through `AtomicU32`s, as
//! a conservative stand-in for volatile copies into a mapped page.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use embedded_io::{Read, Write};
use vchan::sim::pair;

const ORDER: u8 = 18;

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn two_threads(chunk: usize, total: usize) -> Duration {
    let p = pair(ORDER, ORDER, 0).unwrap();
    let (mut s, mut c) = (p.server, p.client);
    let n = total / chunk;
    let t0 = Instant::now();
    let w = thread::spawn(move || {
        let buf = vec![0x5au8; chunk];
        for _ in 0..n {
            s.write_all(&buf).unwrap();
        }
        s
    });
    let mut buf = vec![0u8; chunk];
    let mut sum = 0u64;
    for _ in 0..n {
        c.read_exact(&mut buf).unwrap();
        sum = sum.wrapping_add(buf[chunk - 1] as u64);
    }
    let d = t0.elapsed();
    let _s = w.join().unwrap();
    assert_eq!(sum, 0x5a * n as u64);
    d
}

fn one_thread(chunk: usize, total: usize) -> Duration {
    let mut p = pair(ORDER, ORDER, 0).unwrap();
    let n = total / chunk;
    let src = vec![0x5au8; chunk];
    let mut dst = vec![0u8; chunk];
    let t0 = Instant::now();
    for _ in 0..n {
        p.server.try_send(black_box(&src)).unwrap();
        p.client.try_recv(black_box(&mut dst)).unwrap();
    }
    let d = t0.elapsed();
    assert_eq!(dst[chunk - 1], 0x5a);
    d
}

fn memcpy(chunk: usize, total: usize) -> Duration {
    let n = total / chunk;
    let src = vec![0x5au8; chunk];
    // Copy into a ring-sized buffer at advancing offsets, like the ring does.
    let mut ring = vec![0u8; 1 << ORDER];
    let mut off = 0;
    let t0 = Instant::now();
    for _ in 0..n {
        ring[off..off + chunk].copy_from_slice(black_box(&src));
        black_box(&mut ring);
        off = (off + chunk) % (ring.len() - chunk + 1);
    }
    t0.elapsed()
}

fn best(f: impl Fn() -> Duration) -> Duration {
    (0..3).map(|_| f()).min().unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us too:
    // keep that fast.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("VCHAN_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 4 } else { 256 });
    let total = mib << 20;
    println!("vchan throughput, ring order {ORDER} (256 KiB), {mib} MiB per case, best of 3");
    println!(
        "{:>8} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "write", "2 threads", "1 thread", "memcpy", "mc/2thr", "mc/1thr"
    );
    for chunk in [64usize, 4096, 65536] {
        let t2 = best(|| two_threads(chunk, total));
        let t1 = best(|| one_thread(chunk, total));
        let tm = best(|| memcpy(chunk, total));
        let (a, b, m) = (
            mib_per_s(total, t2),
            mib_per_s(total, t1),
            mib_per_s(total, tm),
        );
        println!(
            "{:>8} {:>9.0} MiB/s {:>9.0} MiB/s {:>9.0} MiB/s {:>9.1}x {:>9.1}x",
            format!("{chunk} B"),
            a,
            b,
            m,
            m / a,
            m / b
        );
    }
}
