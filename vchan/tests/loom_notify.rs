//! The notify-bit protocol under loom's C11 memory model (weak orderings,
//! not just interleavings). Only built with `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p vchan --release --test loom_notify
//! ```
//!
//! The header's index, order and live/notify words are loom atomics; the
//! grant list and ring bytes sit behind a plain mutex (their ordering comes
//! from the indices, which loom checks). A lost wake-up shows up as a loom
//! deadlock.
#![cfg(loom)]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use vchan::*;

struct Hdr {
    words: [AtomicU32; 6],
    rest: StdMutex<Vec<u8>>,
}

#[derive(Clone)]
struct Mem(Arc<Hdr>);

impl Mem {
    fn new() -> Self {
        Mem(Arc::new(Hdr {
            words: std::array::from_fn(|_| AtomicU32::new(0)),
            rest: StdMutex::new(vec![0; PAGE_SIZE]),
        }))
    }
    fn word(&self, off: usize) -> Option<(&AtomicU32, u32)> {
        (off < 24).then(|| (&self.0.words[off / 4], (off % 4) as u32 * 8))
    }
    fn update(&self, off: usize, mask: u32, val: u32, o: Ordering) -> u32 {
        let (w, sh) = self.word(off).unwrap();
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let new = (cur & !(mask << sh)) | (val << sh);
            match w.compare_exchange(cur, new, o, Ordering::Relaxed) {
                Ok(v) => return v >> sh,
                Err(v) => cur = v,
            }
        }
    }
}

impl SharedMemory for Mem {
    fn len(&self) -> usize {
        PAGE_SIZE
    }
    fn load_u8(&self, off: usize, o: Ordering) -> u8 {
        let (w, sh) = self.word(off).unwrap();
        (w.load(o) >> sh) as u8
    }
    fn store_u8(&self, off: usize, v: u8, o: Ordering) {
        self.update(off, 0xff, v as u32, o);
    }
    fn fetch_or_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
        let (w, sh) = self.word(off).unwrap();
        (w.fetch_or((v as u32) << sh, o) >> sh) as u8
    }
    fn fetch_and_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
        let (w, sh) = self.word(off).unwrap();
        (w.fetch_and(!((!v as u32 & 0xff) << sh), o) >> sh) as u8
    }
    fn load_u16(&self, off: usize, o: Ordering) -> u16 {
        let (w, sh) = self.word(off).unwrap();
        (w.load(o) >> sh) as u16
    }
    fn store_u16(&self, off: usize, v: u16, o: Ordering) {
        self.update(off, 0xffff, v as u32, o);
    }
    fn load_u32(&self, off: usize, o: Ordering) -> u32 {
        match self.word(off) {
            Some((w, _)) => w.load(o),
            None => {
                let r = self.0.rest.lock().unwrap();
                u32::from_le_bytes(r[off..off + 4].try_into().unwrap())
            }
        }
    }
    fn store_u32(&self, off: usize, v: u32, o: Ordering) {
        match self.word(off) {
            Some((w, _)) => w.store(v, o),
            None => self.0.rest.lock().unwrap()[off..off + 4].copy_from_slice(&v.to_le_bytes()),
        }
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        assert!(off >= 24);
        dst.copy_from_slice(&self.0.rest.lock().unwrap()[off..off + dst.len()]);
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        if off == 0 {
            // header zeroing at setup
            for w in &self.0.words {
                w.store(0, Ordering::Relaxed);
            }
            self.0.rest.lock().unwrap()[24..src.len()].copy_from_slice(&src[24..]);
            return;
        }
        self.0.rest.lock().unwrap()[off..off + src.len()].copy_from_slice(src);
    }
    fn fence(&self, o: Ordering) {
        loom::sync::atomic::fence(o);
    }
}

struct Port {
    pending: Mutex<bool>,
    cv: Condvar,
}

struct Evt {
    mine: Arc<Port>,
    peer: Arc<Port>,
}

impl EventChannel for Evt {
    fn port(&self) -> vchan::Port {
        1
    }
    fn notify(&mut self) -> Result<(), Errno> {
        *self.peer.pending.lock().unwrap() = true;
        self.peer.cv.notify_all();
        Ok(())
    }
    fn wait(&mut self, t: Option<Duration>) -> Result<bool, Errno> {
        assert!(t.is_none());
        let mut g = self.mine.pending.lock().unwrap();
        while !*g {
            g = self.mine.cv.wait(g).unwrap();
        }
        *g = false;
        Ok(true)
    }
}

/// Both domains' platform in one: one header page, a pre-linked pair of
/// event ports, a tiny store.
struct Plat {
    page: Mem,
    a: Arc<Port>,
    b: Arc<Port>,
    store: Arc<StdMutex<HashMap<String, String>>>,
}

impl GrantAlloc for Plat {
    type Mem = Mem;
    fn share(
        &mut self,
        _: DomId,
        refs: &mut [GrantRef],
        _: bool,
        _: Option<UnmapNotify>,
    ) -> Result<Mem, Errno> {
        assert_eq!(refs.len(), 1, "loom model supports in-page rings only");
        refs[0] = 8;
        Ok(self.page.clone())
    }
    fn unshare(&mut self, _: Mem) {}
}

impl GrantMap for Plat {
    type Mem = Mem;
    fn map(
        &mut self,
        _: DomId,
        refs: &[GrantRef],
        _: bool,
        _: Option<UnmapNotify>,
    ) -> Result<Mem, Errno> {
        assert_eq!(refs, &[8]);
        Ok(self.page.clone())
    }
    fn unmap(&mut self, _: Mem) {}
}

impl EventChannels for Plat {
    type Channel = Evt;
    fn alloc_unbound(&mut self, _: DomId) -> Result<(Evt, vchan::Port), Errno> {
        Ok((
            Evt {
                mine: self.a.clone(),
                peer: self.b.clone(),
            },
            1,
        ))
    }
    fn bind_interdomain(&mut self, _: DomId, _: vchan::Port) -> Result<Evt, Errno> {
        Ok(Evt {
            mine: self.b.clone(),
            peer: self.a.clone(),
        })
    }
    fn close(&mut self, _: Evt) {}
}

impl Store for Plat {
    fn write_nodes(&mut self, d: &str, e: &[(&str, &str)], _: Perms) -> Result<(), Errno> {
        let mut s = self.store.lock().unwrap();
        for (k, v) in e {
            s.insert(format!("{d}/{k}"), v.to_string());
        }
        Ok(())
    }
    fn read_node(&mut self, d: &str, k: &str, b: &mut [u8]) -> Result<Option<usize>, Errno> {
        Ok(self
            .store
            .lock()
            .unwrap()
            .get(&format!("{d}/{k}"))
            .map(|v| {
                b[..v.len()].copy_from_slice(v.as_bytes());
                v.len()
            }))
    }
    fn remove(&mut self, _: &str) -> Result<(), Errno> {
        Ok(())
    }
    fn wait_change(&mut self, _: &str, _: Option<Duration>) -> Result<bool, Errno> {
        Ok(true)
    }
}

fn setup() -> (Vchan<Mem, Evt>, Vchan<Mem, Evt>) {
    let port = || {
        Arc::new(Port {
            pending: Mutex::new(false),
            cv: Condvar::new(),
        })
    };
    let mut p = Plat {
        page: Mem::new(),
        a: port(),
        b: port(),
        store: Default::default(),
    };
    let cfg = Server {
        local: 0,
        peer: 1,
        path: "/v",
        read_order: 10,
        write_order: 11,
        initial_index: u32::MAX,
    };
    let s = {
        let (mut g, mut e, mut st) = (p.clone_plat(), p.clone_plat(), p.clone_plat());
        cfg.listen(&mut g, &mut e, &mut st).unwrap()
    };
    let c = Client {
        peer: 0,
        path: "/v",
    }
    .connect(&mut p.clone_plat(), &mut p.clone_plat(), &mut p)
    .unwrap();
    (s, c)
}

impl Plat {
    fn clone_plat(&self) -> Plat {
        Plat {
            page: self.page.clone(),
            a: self.a.clone(),
            b: self.b.clone(),
            store: self.store.clone(),
        }
    }
}

#[test]
fn loom_data_wakeup() {
    loom::model(|| {
        let (mut s, mut c) = setup();
        let t = loom::thread::spawn(move || {
            let mut b = [0u8; 2];
            let mut got = 0;
            while got < 2 {
                got += c.read_blocking(&mut b[got..]).unwrap();
            }
            assert_eq!(&b, b"xy");
        });
        s.write_blocking(b"x").unwrap();
        s.write_blocking(b"y").unwrap();
        t.join().unwrap();
    });
}

#[test]
fn loom_space_wakeup() {
    loom::model(|| {
        let (mut s, mut c) = setup();
        // fill the 2 KiB server→client ring
        assert_eq!(s.try_write(&[1; 2048]).unwrap(), 2048);
        let t = loom::thread::spawn(move || {
            let mut b = [0u8; 2048];
            assert_eq!(c.try_recv(&mut b), Ok(()));
            c
        });
        s.write_blocking(b"z").unwrap();
        let mut c = t.join().unwrap();
        let mut b = [0u8; 1];
        assert_eq!(c.read_blocking(&mut b), Ok(1));
    });
}
