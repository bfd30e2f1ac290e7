//! # vchan-domain: libxenvchan interoperability test domain
//!
//! Runs one or more vchan transfers with a peer (dom0's libxenvchan, via
//! `vchan-socket-proxy`), one after the other, using the `vchan` crate on
//! xen-rt's platform implementation (`xen_rt::vchan`).
//!
//! Boot arguments:
//! * `role=server|client` — server: grant the rings and advertise them at
//!   `/local/domain/<me>/data/vchan/<peer>/<run>`; client: connect to the
//!   peer's advertisement at `/local/domain/<peer>/data/vchan/<me>/<run>`.
//! * `peer=N` — the other end's domain id (default 0).
//! * `runs=R:W:SEND:RECV[,...]` — one transfer per item: ring orders (the
//!   server's read and write ring, log2 bytes; ignored by a client, which
//!   uses what the server advertised), bytes to send and bytes to receive
//!   (suffixes `K`, `M`). Default `10:11:1M:1M`.
//! * `hash=0` — do not checksum (pure throughput); default checksums.
//! * `capture=1` — print the shared header page (`vchan_interface`: ring
//!   indices, orders, live and notify bytes, grant list) of every run as
//!   `vchancap ROLE RUN POINT OFFSET HEX` lines, with POINT `open` (after
//!   connecting), `mid` (half of the bytes moved) and `close` (after our
//!   orderly close). Fuzz seeds: `cargo xtask fuzz --import-capture LOG`.
//!
//! Each run sends a deterministic xorshift stream while receiving (one
//! select-style loop over the non-blocking calls), waits until the peer
//! consumed everything it sent (libxenvchan's `vchan-socket-proxy` drops
//! unread ring data when the other end closes), then closes. It prints
//! `vchan[ROLE] run=I ...` lines; checksums are MD5 so that dom0's
//! `md5sum` can reproduce them:
//! ```text
//! vchan[server] run=0 listening path=... read_order=10 write_order=11
//! vchan[server] run=0 connected read_ring=1024 write_ring=2048
//! vchan[server] run=0 sent bytes=1048576 md5=...
//! vchan[server] run=0 received bytes=1048576 md5=... ms=...
//! vchan[server] run=0 closed ms=... kib_s=...
//! vchan[server] done
//! ```
//! Errors print `vchan[ROLE] run=I error ...` and end the domain.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod md5;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use vchan::{Client, Error, Server, SharedMemory, Vchan, conventional_path};
use xen_rt::time::{Instant, ms_since_creation};
use xen_rt::vchan::VchanPlatform;
use xen_rt::{Runtime, println};

xen_rt::entry!(main);

/// Limit for connecting and for any single wait without progress.
const LONG: Duration = Duration::from_secs(600);
/// Size of the buffers handed to try_write/try_read.
const CHUNK: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
    /// For the short `vchancap` lines.
    fn short(self) -> &'static str {
        match self {
            Role::Server => "srv",
            Role::Client => "cli",
        }
    }
}

macro_rules! say {
    ($role:expr, $($arg:tt)*) => {
        println!("vchan[{}] {}", $role.name(), format_args!($($arg)*))
    };
}

/// Boot options that apply to every run.
#[derive(Clone, Copy, Debug)]
struct Opts {
    /// `hash`: checksum the data.
    hash: bool,
    /// `capture`: print header snapshots.
    capture: bool,
}

#[derive(Clone, Copy, Debug)]
struct Run {
    read_order: u8,
    write_order: u8,
    send: u64,
    recv: u64,
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_runs(s: &str) -> Option<Vec<Run>> {
    s.split(',')
        .map(|item| {
            let mut f = item.split(':');
            let run = Run {
                read_order: f.next()?.parse().ok()?,
                write_order: f.next()?.parse().ok()?,
                send: parse_size(f.next()?)?,
                recv: parse_size(f.next()?)?,
            };
            f.next().is_none().then_some(run)
        })
        .collect()
}

fn main(rt: &mut Runtime) {
    let role = match rt.dt.bootarg("role") {
        Some("client") => Role::Client,
        _ => Role::Server,
    };
    let peer = rt
        .dt
        .bootarg("peer")
        .map_or(Some(0), |p| p.parse::<u16>().ok());
    let runs = parse_runs(rt.dt.bootarg("runs").unwrap_or("10:11:1M:1M"));
    let opts = Opts {
        hash: rt.dt.bootarg("hash") != Some("0"),
        capture: rt.dt.bootarg("capture").is_some_and(|c| c != "0"),
    };
    let (major, minor) = rt.xen_version();
    say!(
        role,
        "banner xen-rt {} image={} t_ms={} xen={}.{}",
        xen_rt::VERSION,
        rt.image_bytes(),
        ms_since_creation(),
        major,
        minor
    );
    let (Some(peer), Some(runs)) = (peer, runs) else {
        say!(role, "error bad peer= or runs= boot argument");
        return;
    };
    let me = match rt.domid() {
        Some(d) => d.0,
        None => {
            say!(role, "error cannot read our domid from xenstore");
            return;
        }
    };
    say!(
        role,
        "xenstore ready domid={} runs={} t_ms={}",
        me,
        runs.len(),
        ms_since_creation()
    );
    let plat = VchanPlatform::new(rt);
    for (i, run) in runs.iter().enumerate() {
        if let Err(e) = one_run(&plat, role, me, peer, i, run, opts) {
            say!(role, "run={} error {}", i, e);
            return;
        }
    }
    let _ = plat.into_inner();
    say!(role, "done");
}

fn one_run(
    plat: &VchanPlatform<'_>,
    role: Role,
    me: u16,
    peer: u16,
    index: usize,
    run: &Run,
    opts: Opts,
) -> Result<(), String> {
    let port = format!("{index}");
    let (server_id, client_id) = match role {
        Role::Server => (me, peer),
        Role::Client => (peer, me),
    };
    let mut path_buf = [0u8; 96];
    let path = conventional_path(&mut path_buf, server_id, client_id, &port)
        .map_err(|e| format!("path: {e:?}"))?;
    let (mut g, mut e, mut s) = (plat, plat, plat);
    match role {
        Role::Server => {
            let server = Server {
                local: me,
                peer,
                path,
                read_order: run.read_order,
                write_order: run.write_order,
                initial_index: 0,
            };
            let mut chan = server
                .listen(&mut g, &mut e, &mut s)
                .map_err(|e| format!("listen: {e:?}"))?;
            say!(
                role,
                "run={} listening path={} read_order={} write_order={}",
                index,
                path,
                run.read_order,
                run.write_order
            );
            let r = Server::wait_for_client(&mut chan, Some(LONG), &plat)
                .map_err(|e| format!("waiting for the client: {e:?}"))
                .and_then(|()| transfer(&mut chan, plat, role, index, run, opts));
            let c = server
                .close(chan, &mut g, &mut e, &mut s)
                .map_err(|e| format!("close: {e:?}"));
            r.and(c)
        }
        Role::Client => {
            let client = Client { peer, path };
            let mut chan = client
                .connect_wait(&mut g, &mut e, &mut s, Some(LONG), &plat)
                .map_err(|e| format!("connect {path}: {e:?}"))?;
            let r = transfer(&mut chan, plat, role, index, run, opts);
            Client::close(chan, &mut g, &mut e);
            r
        }
    }
}

/// Deterministic payload: a xorshift64 stream, 8 bytes per step.
struct Pattern {
    x: u64,
}

impl Pattern {
    fn new(seed: u64) -> Self {
        Pattern {
            x: 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1000_0000_01b3),
        }
    }
    fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            c.copy_from_slice(&self.x.to_le_bytes()[..c.len()]);
        }
    }
}

fn md5_text(m: md5::Md5) -> String {
    String::from_utf8_lossy(&md5::hex(&m.finish())).into_owned()
}

fn transfer<M: SharedMemory, E: vchan::EventChannel>(
    chan: &mut Vchan<M, E>,
    plat: &VchanPlatform<'_>,
    role: Role,
    index: usize,
    run: &Run,
    opts: Opts,
) -> Result<(), String> {
    let hash = opts.hash;
    let capture = |chan: &Vchan<M, E>, point: &str| {
        if opts.capture {
            let mut hdr = [0u8; vchan::PAGE_SIZE];
            let n = chan.header_snapshot(&mut hdr);
            xen_rt::console::print_hex_lines(
                format_args!("vchancap {} {index} {point}", role.short()),
                0,
                &hdr[..n],
            );
        }
    };
    say!(
        role,
        "run={} connected read_ring={} write_ring={} t_ms={}",
        index,
        chan.read_capacity(),
        chan.write_capacity(),
        ms_since_creation()
    );
    let started = Instant::now();
    let mut pattern = Pattern::new(index as u64);
    let mut tx = vec![0u8; CHUNK];
    let mut tx_pos = CHUNK;
    let mut rx = vec![0u8; CHUNK];
    let (mut sent, mut recvd) = (0u64, 0u64);
    let (mut tx_md5, mut rx_md5) = (md5::Md5::new(), md5::Md5::new());
    let mut recv_ms = None;
    let mut sent_reported = run.send == 0;
    let mut waits = 0u64;
    let half = (run.send + run.recv) / 2;
    let mut mid_captured = false;
    capture(chan, "open");
    loop {
        if !mid_captured && sent + recvd >= half {
            mid_captured = true;
            capture(chan, "mid");
        }
        let mut progress = false;
        if sent < run.send {
            if tx_pos == CHUNK {
                pattern.fill(&mut tx);
                tx_pos = 0;
            }
            let want = ((run.send - sent) as usize).min(CHUNK - tx_pos);
            match chan.try_write(&tx[tx_pos..tx_pos + want]) {
                Ok(n) => {
                    if hash {
                        tx_md5.update(&tx[tx_pos..tx_pos + n]);
                    }
                    tx_pos += n;
                    sent += n as u64;
                    progress = n > 0;
                }
                Err(Error::WouldBlock) => {}
                Err(e) => return Err(format!("write after {sent} bytes: {e:?}")),
            }
        } else if !sent_reported {
            sent_reported = true;
            let m = core::mem::replace(&mut tx_md5, md5::Md5::new());
            say!(
                role,
                "run={} sent bytes={} md5={}",
                index,
                sent,
                if hash { md5_text(m) } else { String::from("-") }
            );
        }
        if recvd < run.recv {
            let want = ((run.recv - recvd) as usize).min(CHUNK);
            match chan.try_read(&mut rx[..want]) {
                Ok(0) => return Err(format!("end of stream after {recvd} bytes")),
                Ok(n) => {
                    if hash {
                        rx_md5.update(&rx[..n]);
                    }
                    recvd += n as u64;
                    progress = true;
                    if recvd == run.recv {
                        recv_ms = Some(started.elapsed().as_millis() as u64);
                    }
                }
                Err(Error::WouldBlock) => {}
                Err(e) => return Err(format!("read after {recvd} bytes: {e:?}")),
            }
        }
        if sent == run.send && recvd == run.recv && sent_reported {
            break;
        }
        if !progress {
            waits += 1;
            // try_read/try_write asked the peer for an event before
            // reporting WouldBlock, so this cannot miss progress.
            if !chan
                .wait_event(Some(LONG))
                .map_err(|e| format!("wait: {e:?}"))?
            {
                return Err(format!(
                    "no progress for {} s (sent {sent}, received {recvd})",
                    LONG.as_secs()
                ));
            }
        }
    }
    if run.recv > 0 {
        let m = core::mem::replace(&mut rx_md5, md5::Md5::new());
        say!(
            role,
            "run={} received bytes={} md5={} ms={}",
            index,
            recvd,
            if hash { md5_text(m) } else { String::from("-") },
            recv_ms.unwrap_or(0)
        );
    }
    // Let the peer consume everything before closing: libxenvchan users
    // such as vchan-socket-proxy discard unread data once we close.
    let deadline = Instant::now().after(LONG);
    loop {
        let space = chan.buffer_space().map_err(|e| format!("drain: {e:?}"))?;
        if space >= chan.write_capacity() {
            break;
        }
        let left = deadline.duration_since(Instant::now());
        if left.is_zero()
            || !chan
                .wait_event(Some(left))
                .map_err(|e| format!("drain wait: {e:?}"))?
        {
            return Err(format!(
                "peer left {} bytes unread",
                chan.write_capacity() - space
            ));
        }
    }
    let ms = started.elapsed().as_millis() as u64;
    let total = sent + recvd;
    say!(
        role,
        "run={} closed ms={} kib_s={} waits={}",
        index,
        ms,
        (total * 1000 / 1024).checked_div(ms).unwrap_or(0),
        waits
    );
    if opts.capture {
        // What the peer sees after our orderly close (closing again when
        // the run ends is a no-op).
        chan.shutdown();
        capture(chan, "close");
    }
    let _ = plat;
    Ok(())
}
