use super::*;
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;

/// The honest frontend (`hvc_xen`'s `__write_console`): as much of
/// `data` as fits at `out_prod`; returns how much.
fn fe_write(p: &mut MemPage, data: &[u8]) -> usize {
    let r = p.indices();
    let mut prod = r.out_prod;
    let mut n = 0;
    for &b in data {
        if prod.wrapping_sub(r.out_cons) >= OUT_SIZE {
            break;
        }
        p.bytes[OUT_OFFSET + (prod & (OUT_SIZE - 1)) as usize] = b;
        prod = prod.wrapping_add(1);
        n += 1;
    }
    p.set(OUT_PROD, prod);
    n
}

/// The honest frontend reading input (`domU_read_console`).
fn fe_read(p: &mut MemPage, max: usize) -> Vec<u8> {
    let r = p.indices();
    let mut cons = r.in_cons;
    let mut v = Vec::new();
    while cons != r.in_prod && v.len() < max {
        v.push(p.bytes[IN_OFFSET + (cons & (IN_SIZE - 1)) as usize]);
        cons = cons.wrapping_add(1);
    }
    p.set(IN_CONS, cons);
    v
}

fn start_at(p: &mut MemPage, out: u32, inp: u32) {
    for (o, v) in [
        (IN_CONS, inp),
        (IN_PROD, inp),
        (OUT_CONS, out),
        (OUT_PROD, out),
    ] {
        p.set(o, v);
    }
}

/// Polls once; returns the pieces as `(text, continued, complete)`.
fn poll(b: &mut Backend, p: &mut MemPage) -> Result<Vec<(String, bool, bool)>, IndexError> {
    let mut v = Vec::new();
    let r = b.poll(p, false, &mut |e| {
        if let Event::Line(l) = e {
            v.push((String::from(l.text), l.continued, l.complete));
        }
    });
    match r {
        Ok(_) => Ok(v),
        Err(PollError::Index(e)) => Err(e),
        Err(PollError::Page(_)) => panic!("page access"),
    }
}

#[test]
fn layout() {
    assert_eq!(IN_OFFSET + IN_SIZE as usize, OUT_OFFSET);
    assert_eq!(OUT_OFFSET + OUT_SIZE as usize, INDEX_OFFSET);
    assert_eq!(
        [IN_CONS, IN_PROD, OUT_CONS, OUT_PROD, CONNECTION],
        [3072, 3076, 3080, 3084, 3088]
    );
    let r = RawIndices {
        in_cons: 1,
        in_prod: 2,
        out_cons: 0x0304_0506,
        out_prod: u32::MAX,
    };
    let b = r.encode();
    assert_eq!(&b[8..12], &[6, 5, 4, 3]);
    assert_eq!(RawIndices::parse(&b), r);
}

#[test]
fn index_checks() {
    let ok = RawIndices {
        in_cons: 10,
        in_prod: 10 + IN_SIZE,
        out_cons: u32::MAX - 5,
        out_prod: 2042,
    };
    let v = Indices::check(ok).unwrap();
    assert_eq!(v.output().total, 2048);
    assert_eq!(v.output().offset, 2042);
    assert_eq!(v.output().contiguous, 6);
    assert_eq!(v.input_room().total, 0);
    assert_eq!(v.input_unread().total, IN_SIZE);
    let out = RawIndices {
        out_prod: 2043,
        ..ok
    };
    assert_eq!(
        Indices::check(out),
        Err(IndexError::OutputCorrupt {
            cons: u32::MAX - 5,
            prod: 2043
        })
    );
    // The frontend's in_cons ran past in_prod.
    let ahead = RawIndices {
        in_cons: 11,
        in_prod: 10,
        ..ok
    };
    assert_eq!(
        Indices::check(ahead),
        Err(IndexError::InputCorrupt { cons: 11, prod: 10 })
    );
    let (back, _) = BackIndices::attach(ok).unwrap();
    assert!(back.check(ok).is_ok());
    let tampered = RawIndices { out_cons: 7, ..ok };
    assert_eq!(
        back.check(tampered),
        Err(IndexError::BackendIndexChanged {
            index: Index::OutCons,
            published: u32::MAX - 5,
            found: 7
        })
    );
    let tampered = RawIndices { in_prod: 0, ..ok };
    assert!(matches!(
        back.check(tampered),
        Err(IndexError::BackendIndexChanged {
            index: Index::InProd,
            ..
        })
    ));
}

#[test]
fn consume_and_produce_are_bounded() {
    let raw = RawIndices {
        in_cons: 0,
        in_prod: 1000,
        out_cons: 5,
        out_prod: 9,
    };
    let (mut back, v) = BackIndices::attach(raw).unwrap();
    assert_eq!(back.consume_output(&v, 100), 9);
    assert_eq!(back.produce_input(&v, 100), 1024);
}

#[test]
fn lines_are_sanitised_and_bounded() {
    let mut a = LineAssembler::new();
    let mut got: Vec<(String, bool, bool)> = Vec::new();
    let mut sink = |l: Line<'_>| got.push((l.text.into(), l.continued, l.complete));
    a.feed(b"hello\tworld\r\n\x1b[1mbold\x00\n", &mut sink);
    let long = [b'x'; MAX_LINE * 2 + 3];
    a.feed(&long, &mut sink);
    a.feed(b"\n", &mut sink);
    a.feed(&[b'y'; MAX_LINE], &mut sink);
    a.feed(b"\nprompt$ ", &mut sink);
    a.flush(&mut sink);
    a.feed(b"rest\n", &mut sink);
    let x = |n| "x".repeat(n);
    assert_eq!(
        got,
        [
            ("hello world".into(), false, true),
            (".[1mbold.".into(), false, true),
            (x(MAX_LINE), false, false),
            (x(MAX_LINE), true, false),
            (x(3), true, true),
            ("y".repeat(MAX_LINE), false, true),
            ("prompt$ ".into(), false, false),
            ("rest".into(), true, true),
        ]
    );
    assert_eq!(a.sanitised(), 3, "tab, escape and NUL");
}

#[test]
fn echo_queue_whole_or_nothing() {
    let mut q = EchoQueue::new();
    assert!(q.push(&[&[1u8; 1500][..]]));
    assert!(!q.push(&[&[2u8; 300][..], &[3u8; 300][..]]));
    assert_eq!(q.len(), 1500);
    let mut out = [0u8; 1000];
    assert_eq!(q.peek(&mut out), 1000);
    q.drop_front(1000);
    assert!(q.push(&[b"ab", &[4u8; 1000][..]]), "wraps around");
    let mut all = [0u8; ECHO_QUEUE];
    let n = q.peek(&mut all);
    assert_eq!(n, 1502);
    assert_eq!(&all[..500], &[1u8; 500][..]);
    assert_eq!(&all[500..502], b"ab");
    assert_eq!(&all[502..1502], &[4u8; 1000][..]);
}

#[test]
fn backend_prints_and_echoes() {
    let mut p = MemPage::default();
    start_at(&mut p, u32::MAX - 3, u32::MAX - 2);
    let mut b = Backend::attach(&mut p, true).unwrap();
    assert_eq!(fe_write(&mut p, b"hello\nwor"), 9);
    assert_eq!(
        poll(&mut b, &mut p).unwrap(),
        [("hello".into(), false, true)]
    );
    let r = p.indices();
    assert_eq!(r.out_cons, r.out_prod, "all output consumed");
    assert_eq!(fe_read(&mut p, 100), b"echo: hello\n");
    fe_write(&mut p, b"ld\necho: not again\n");
    assert_eq!(
        poll(&mut b, &mut p).unwrap(),
        [
            ("world".into(), false, true),
            ("echo: not again".into(), false, true)
        ]
    );
    assert_eq!(fe_read(&mut p, 100), b"echo: world\n");
    let s = b.stats();
    assert_eq!((s.lines, s.echoed, s.echo_dropped), (3, 2, 0));
    assert_eq!(s.out_bytes, 28);
    assert_eq!(s.in_bytes, 24);
}

#[test]
fn echo_waits_for_room() {
    let mut p = MemPage::default();
    let mut b = Backend::attach(&mut p, true).unwrap();
    // 30 lines of 40 bytes: 1380 bytes of echo, more than the ring.
    let mut sent = Vec::new();
    for i in 0..30 {
        let line = std::format!("{i:02}{}\n", "z".repeat(37));
        assert_eq!(fe_write(&mut p, line.as_bytes()), 40);
        sent.extend_from_slice(b"echo: ");
        sent.extend_from_slice(&line.as_bytes()[..39]);
        sent.push(b'\n');
        if i % 10 == 9 {
            poll(&mut b, &mut p).unwrap();
        }
    }
    assert_eq!(b.echo_waiting(), sent.len() - IN_SIZE as usize);
    let mut got = fe_read(&mut p, 700);
    poll(&mut b, &mut p).unwrap();
    got.extend(fe_read(&mut p, 5000));
    poll(&mut b, &mut p).unwrap();
    got.extend(fe_read(&mut p, 5000));
    assert_eq!(got, sent);
    assert_eq!(b.echo_waiting(), 0);
}

#[test]
fn hostile_frontends_are_refused() {
    let mut p = MemPage::default();
    let mut b = Backend::attach(&mut p, false).unwrap();
    fe_write(&mut p, b"ok\n");
    poll(&mut b, &mut p).unwrap();
    p.set(OUT_PROD, 3 + OUT_SIZE + 1);
    assert_eq!(
        poll(&mut b, &mut p),
        Err(IndexError::OutputCorrupt {
            cons: 3,
            prod: 3 + OUT_SIZE + 1
        })
    );
    p.set(OUT_PROD, 3);
    p.set(OUT_CONS, 0);
    assert!(matches!(
        poll(&mut b, &mut p),
        Err(IndexError::BackendIndexChanged {
            index: Index::OutCons,
            ..
        })
    ));
    p.set(OUT_CONS, 3);
    p.set(IN_CONS, 1);
    assert_eq!(
        poll(&mut b, &mut p),
        Err(IndexError::InputCorrupt { cons: 1, prod: 0 })
    );
    // Attaching to a corrupt page fails too.
    let mut q = MemPage::default();
    q.set(OUT_PROD, 5000);
    assert!(matches!(
        Backend::attach(&mut q, true),
        Err(PollError::Index(IndexError::OutputCorrupt { .. }))
    ));
}

#[test]
fn snapshots_only_on_change() {
    let mut p = MemPage::default();
    let mut b = Backend::attach(&mut p, true).unwrap();
    fe_write(&mut p, b"abc\n");
    let mut states: Vec<Vec<u8>> = Vec::new();
    for _ in 0..3 {
        b.poll(&mut p, true, &mut |e| {
            if let Event::State(s) = e {
                let mut buf = [0u8; 4096];
                let n = s.encode(&mut buf);
                states.push(buf[..n].to_vec());
            }
        })
        .unwrap();
    }
    // The first poll sees the output; the second the echo it produced
    // (in_prod moved), the third nothing new.
    assert_eq!(states.len(), 2);
    let s0 = &states[0];
    assert_eq!(&s0[12..16], &4u32.to_le_bytes(), "out_prod");
    assert_eq!(&s0[16..18], &4u16.to_le_bytes());
    assert_eq!(&s0[18..22], b"abc\n");
    assert_eq!(&s0[22..24], &0u16.to_le_bytes());
    let s1 = &states[1];
    assert_eq!(&s1[16..18], &0u16.to_le_bytes());
    assert_eq!(&s1[18..20], &10u16.to_le_bytes());
    assert_eq!(&s1[20..30], b"echo: abc\n");
}

/// A simple model of what the backend prints: the sanitised stream with
/// newlines, pieces joined.
fn model_stream(data: &[u8]) -> String {
    data.iter()
        .filter_map(|&b| if b == b'\n' { Some(b'\n') } else { sanitise(b) })
        .map(char::from)
        .collect()
}

proptest! {
    /// The index view against a model: accepted iff both differences fit,
    /// spans of the right size at the masked offsets.
    #[test]
    fn view_matches_model(in_cons: u32, din in prop_oneof![0u32..=1100, any::<u32>()],
                          out_cons: u32, dout in prop_oneof![0u32..=2100, any::<u32>()]) {
        let raw = RawIndices {
            in_cons,
            in_prod: in_cons.wrapping_add(din),
            out_cons,
            out_prod: out_cons.wrapping_add(dout),
        };
        let r = Indices::check(raw);
        prop_assert_eq!(r.is_ok(), din <= IN_SIZE && dout <= OUT_SIZE);
        if let Ok(v) = r {
            prop_assert_eq!(v.output().total, dout);
            prop_assert_eq!(v.output().offset, out_cons % OUT_SIZE);
            prop_assert_eq!(v.input_unread().total, din);
            prop_assert_eq!(v.input_room().total, IN_SIZE - din);
            prop_assert_eq!(v.input_room().offset, raw.in_prod % IN_SIZE);
            prop_assert!(v.output().contiguous <= OUT_SIZE - v.output().offset);
        }
    }

    /// An honest frontend writing arbitrary bytes in arbitrary chunks and
    /// reading input in arbitrary chunks, from indices near wrap-around:
    /// the printed pieces are the model stream, every piece is bounded
    /// and printable, and the guest reads back exactly the echoes.
    #[test]
    fn stream_matches_model(
        start_out in prop_oneof![Just(u32::MAX - 100), any::<u32>()],
        start_in in prop_oneof![Just(u32::MAX - 10), any::<u32>()],
        data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'\t'), any::<u8>(), 0x20u8..0x7f], 0..3000),
        chunks in proptest::collection::vec(1usize..700, 1..40),
        reads in proptest::collection::vec(0usize..900, 1..40),
    ) {
        let mut p = MemPage::default();
        start_at(&mut p, start_out, start_in);
        let mut b = Backend::attach(&mut p, true).unwrap();
        let (mut sent, mut i) = (0, 0);
        let mut printed = String::new();
        let mut echoes: Vec<u8> = Vec::new();
        let mut got: Vec<u8> = Vec::new();
        while sent < data.len() || b.echo_waiting() > 0 || p.indices().in_prod != p.indices().in_cons {
            let end = (sent + chunks[i % chunks.len()]).min(data.len());
            sent += fe_write(&mut p, &data[sent..end]);
            b.poll(&mut p, false, &mut |e| {
                if let Event::Line(l) = e {
                    assert!(l.text.len() <= MAX_LINE);
                    assert!(l.text.bytes().all(|c| (0x20..0x7f).contains(&c)));
                    printed.push_str(l.text);
                    if l.complete {
                        printed.push('\n');
                    }
                    if !l.text.starts_with("echo: ") {
                        echoes.extend_from_slice(b"echo: ");
                        echoes.extend_from_slice(l.text.as_bytes());
                        echoes.push(b'\n');
                    }
                }
            }).unwrap();
            got.extend(fe_read(&mut p, reads[i % reads.len()].max(1)));
            i += 1;
            prop_assert!(i < 10_000);
        }
        let mut rest = String::new();
        b.flush(&mut |l| rest.push_str(l.text));
        printed.push_str(&rest);
        prop_assert_eq!(printed, model_stream(&data));
        // Echo lines are dropped whole when the queue is full (many short
        // lines per poll); without drops the guest reads every echo.
        if b.stats().echo_dropped == 0 {
            prop_assert_eq!(got, echoes);
        } else {
            prop_assert!(got.len() < echoes.len());
        }
    }
}
