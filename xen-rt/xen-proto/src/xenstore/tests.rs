use super::*;
use proptest::prelude::*;
use std::vec::Vec;

/// A READ reply exactly as xenstored puts it on the ring: type 2
/// (`XS_READ`), req_id 7, tx_id 0, len 5, then the value with no NUL.
const READ_REPLY: [u8; 21] = [
    0x02, 0, 0, 0, // type XS_READ
    0x07, 0, 0, 0, // req_id 7
    0x00, 0, 0, 0, // tx_id 0
    0x05, 0, 0, 0, // len 5
    b'g', b'u', b'e', b's', b't',
];

/// A WATCH_EVENT as xenstored sends it: type 15, req_id 0, tx_id 0,
/// payload `path\0token\0`.
const WATCH_EVENT: [u8; 16 + 26] = [
    0x0f, 0, 0, 0, // type XS_WATCH_EVENT
    0x00, 0, 0, 0, // req_id
    0x00, 0, 0, 0, // tx_id
    26, 0, 0, 0, // len
    b'd', b'e', b'v', b'i', b'c', b'e', b'/', b'v', b'i', b'f', b'/', b'0', b'/', b's', b't', b'a',
    b't', b'e', 0, b't', b'o', b'k', b'e', b'n', b'1', 0,
];

#[test]
fn msg_type_values() {
    let expect = [
        (MsgType::Control, 0),
        (MsgType::Directory, 1),
        (MsgType::Read, 2),
        (MsgType::GetPerms, 3),
        (MsgType::Watch, 4),
        (MsgType::Unwatch, 5),
        (MsgType::TransactionStart, 6),
        (MsgType::TransactionEnd, 7),
        (MsgType::Introduce, 8),
        (MsgType::Release, 9),
        (MsgType::GetDomainPath, 10),
        (MsgType::Write, 11),
        (MsgType::Mkdir, 12),
        (MsgType::Rm, 13),
        (MsgType::SetPerms, 14),
        (MsgType::WatchEvent, 15),
        (MsgType::Error, 16),
        (MsgType::IsDomainIntroduced, 17),
        (MsgType::Resume, 18),
        (MsgType::SetTarget, 19),
        (MsgType::ResetWatches, 21),
        (MsgType::DirectoryPart, 22),
    ];
    for (t, v) in expect {
        assert_eq!(t.to_u32(), v);
        assert_eq!(MsgType::from_u32(v), t);
    }
    assert_eq!(MsgType::from_u32(20), MsgType::Unknown(20));
    assert_eq!(MsgType::from_u32(0xffff), MsgType::Unknown(0xffff));
    assert_eq!(MsgType::Read.name(), "READ");
}

#[test]
fn header_roundtrip_and_limits() {
    let h = Header {
        msg_type: MsgType::Write,
        req_id: 0x0102_0304,
        tx_id: 9,
        len: 4096,
    };
    let b = h.to_bytes();
    assert_eq!(&b[..4], &[11, 0, 0, 0]);
    assert_eq!(&b[4..8], &[4, 3, 2, 1]);
    assert_eq!(Header::parse(&b), Ok(h));
    let mut big = b;
    big[12..16].copy_from_slice(&4097u32.to_le_bytes());
    assert_eq!(Header::parse(&big), Err(Error::PayloadTooLong(4097)));
    assert_eq!(Header::parse_slice(&b[..15]), Err(Error::Truncated));
}

#[test]
fn real_read_reply() {
    let h = Header::parse_slice(&READ_REPLY).unwrap();
    assert_eq!(h.msg_type, MsgType::Read);
    assert_eq!((h.req_id, h.tx_id, h.len), (7, 0, 5));
    assert_eq!(parse_read_str(&READ_REPLY[16..]), Ok("guest"));
}

#[test]
fn real_watch_event() {
    let h = Header::parse_slice(&WATCH_EVENT).unwrap();
    assert_eq!(h.msg_type, MsgType::WatchEvent);
    assert_eq!(h.len as usize, WATCH_EVENT.len() - 16);
    let ev = WatchEvent::parse(&WATCH_EVENT[16..]).unwrap();
    assert_eq!(
        ev,
        WatchEvent {
            path: "device/vif/0/state",
            token: "token1"
        }
    );
}

#[test]
fn xs_errors() {
    let all = [
        "EINVAL",
        "EACCES",
        "EEXIST",
        "EISDIR",
        "ENOENT",
        "ENOMEM",
        "ENOSPC",
        "EIO",
        "ENOTEMPTY",
        "ENOSYS",
        "EROFS",
        "EBUSY",
        "EAGAIN",
        "EISCONN",
        "E2BIG",
        "EPERM",
    ];
    for name in all {
        let e = XsError::from_name(name.as_bytes());
        assert_ne!(e, XsError::Unknown);
        assert_eq!(e.name(), name);
        let mut payload = Vec::from(name.as_bytes());
        payload.push(0);
        assert_eq!(XsError::from_payload(&payload), e);
    }
    assert_eq!(XsError::from_payload(b"ENOENT"), XsError::ENOENT);
    assert_eq!(XsError::from_payload(b"EWHAT\0"), XsError::Unknown);
    assert_eq!(XsError::from_payload(b"\xff\0"), XsError::Unknown);
    assert_eq!(XsError::from_payload(b""), XsError::Unknown);
}

#[test]
fn paths() {
    assert_eq!(validate_path("/"), Ok(()));
    assert_eq!(validate_path("/local/domain/1"), Ok(()));
    assert_eq!(validate_path("device/vif/0"), Ok(()));
    assert_eq!(validate_path("@releaseDomain"), Ok(()));
    assert_eq!(validate_path(""), Err(Error::EmptyPath));
    assert_eq!(validate_path("a\0b"), Err(Error::InvalidPath));
    assert_eq!(validate_path("a b"), Err(Error::InvalidPath));
    assert_eq!(validate_path("a//b"), Err(Error::InvalidPath));
    assert_eq!(validate_path("/a/"), Err(Error::InvalidPath));
    assert_eq!(validate_path("/é"), Err(Error::InvalidPath));
    let abs: std::string::String = core::iter::once('/')
        .chain(core::iter::repeat_n('a', ABS_PATH_MAX - 1))
        .collect();
    assert_eq!(validate_path(&abs), Ok(()));
    assert_eq!(validate_path(&(abs.clone() + "a")), Err(Error::PathTooLong));
    let rel: std::string::String = core::iter::repeat_n('a', REL_PATH_MAX).collect();
    assert_eq!(validate_path(&rel), Ok(()));
    assert_eq!(validate_path(&(rel + "a")), Err(Error::PathTooLong));
}

fn enc(req: Request<'_>, tx: u32) -> Vec<u8> {
    let mut buf = [0u8; MESSAGE_MAX];
    let n = req.encode(42, tx, &mut buf).unwrap();
    let h = Header::parse_slice(&buf).unwrap();
    assert_eq!(h.msg_type, req.msg_type());
    assert_eq!((h.req_id, h.tx_id), (42, tx));
    assert_eq!(h.len as usize, n - HEADER_LEN);
    buf[HEADER_LEN..n].to_vec()
}

#[test]
fn request_encoding() {
    assert_eq!(enc(Request::Read { path: "/a/b" }, 0), b"/a/b\0");
    assert_eq!(
        enc(
            Request::Write {
                path: "a",
                value: b"xy"
            },
            3
        ),
        b"a\0xy"
    );
    assert_eq!(
        enc(
            Request::Write {
                path: "a",
                value: b""
            },
            3
        ),
        b"a\0"
    );
    assert_eq!(enc(Request::Mkdir { path: "a" }, 0), b"a\0");
    assert_eq!(enc(Request::Rm { path: "a" }, 0), b"a\0");
    assert_eq!(enc(Request::Directory { path: "/" }, 0), b"/\0");
    assert_eq!(enc(Request::GetPerms { path: "a" }, 0), b"a\0");
    let perms = [
        Perm {
            domid: 0,
            access: Access::None,
        },
        Perm {
            domid: 2,
            access: Access::Read,
        },
        Perm {
            domid: 3,
            access: Access::Write,
        },
        Perm {
            domid: 65535,
            access: Access::Both,
        },
    ];
    assert_eq!(
        enc(
            Request::SetPerms {
                path: "a",
                perms: &perms
            },
            0
        ),
        b"a\0n0\0r2\0w3\0b65535\0"
    );
    assert_eq!(
        enc(
            Request::Watch {
                path: "a",
                token: "t"
            },
            0
        ),
        b"a\0t\0"
    );
    assert_eq!(
        enc(
            Request::Unwatch {
                path: "a",
                token: ""
            },
            0
        ),
        b"a\0\0"
    );
    assert_eq!(enc(Request::TransactionStart, 0), b"\0");
    assert_eq!(enc(Request::TransactionEnd { commit: true }, 5), b"T\0");
    assert_eq!(enc(Request::TransactionEnd { commit: false }, 5), b"F\0");
    assert_eq!(enc(Request::GetDomainPath { domid: 17 }, 0), b"17\0");
    assert_eq!(enc(Request::GetDomainPath { domid: 0 }, 0), b"0\0");
}

#[test]
fn request_errors() {
    let mut buf = [0u8; MESSAGE_MAX];
    let bad = |r: Request<'_>| {
        let mut buf = [0u8; MESSAGE_MAX];
        r.encode(1, 0, &mut buf).unwrap_err()
    };
    assert_eq!(bad(Request::Read { path: "" }), Error::EmptyPath);
    assert_eq!(bad(Request::Read { path: "a\0" }), Error::InvalidPath);
    assert_eq!(
        bad(Request::Watch {
            path: "a",
            token: "t\0"
        }),
        Error::InvalidToken
    );
    assert_eq!(
        bad(Request::SetPerms {
            path: "a",
            perms: &[]
        }),
        Error::BadPerm
    );
    let big = [0u8; PAYLOAD_MAX];
    assert_eq!(
        bad(Request::Write {
            path: "a",
            value: &big
        }),
        Error::RequestTooLong
    );
    // path "a\0" + 4094 bytes is exactly PAYLOAD_MAX.
    assert!(
        Request::Write {
            path: "a",
            value: &big[..4094]
        }
        .encode(1, 0, &mut buf)
        .is_ok()
    );
    let mut small = [0u8; 20];
    assert_eq!(
        Request::Read {
            path: "/local/domain"
        }
        .encode(1, 0, &mut small),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        Request::Read { path: "" }.encode(1, 0, &mut small),
        Err(Error::EmptyPath)
    );
    assert_eq!(
        Request::Read { path: "a" }.encode(1, 0, &mut small[..10]),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(Request::Read { path: "" }.validate(), Err(Error::EmptyPath));
    assert_eq!(Request::Read { path: "a" }.validate(), Ok(()));
}

#[test]
fn perms() {
    assert_eq!(
        Perm::parse(b"r2"),
        Ok(Perm {
            domid: 2,
            access: Access::Read
        })
    );
    assert_eq!(
        Perm::parse(b"b65535"),
        Ok(Perm {
            domid: 65535,
            access: Access::Both
        })
    );
    for bad in [
        &b""[..],
        b"r",
        b"x1",
        b"r65536",
        b"r-1",
        b"r+1",
        b"r1 ",
        b"n99999999999",
    ] {
        assert_eq!(Perm::parse(bad), Err(Error::BadPerm), "{bad:?}");
    }
    let list: Vec<Perm> = parse_perms(b"n0\0r5\0").unwrap().collect();
    assert_eq!(
        list,
        [
            Perm {
                domid: 0,
                access: Access::None
            },
            Perm {
                domid: 5,
                access: Access::Read
            }
        ]
    );
    assert_eq!(parse_perms(b"").unwrap_err(), Error::BadPerm);
    assert_eq!(parse_perms(b"n0").unwrap_err(), Error::Unterminated);
    assert_eq!(parse_perms(b"n0\0q1\0").unwrap_err(), Error::BadPerm);
    assert!(Access::Both.can_read() && Access::Both.can_write());
    assert!(!Access::None.can_read() && !Access::Read.can_write());
}

#[test]
fn reply_parsing() {
    let d = parse_directory(b"a\0bb\0\0").unwrap();
    assert_eq!(d.iter().collect::<Vec<_>>(), ["a", "bb", ""]);
    assert_eq!(d.count(), 3);
    assert!(parse_directory(b"").unwrap().is_empty());
    assert_eq!(parse_directory(b"a\0b"), Err(Error::Unterminated));
    assert_eq!(parse_directory(b"\xff\0"), Err(Error::BadUtf8));
    assert_eq!(parse_read_str(b"\xc3"), Err(Error::BadUtf8));
    assert_eq!(parse_transaction_id(b"17\0"), Ok(17));
    assert_eq!(parse_transaction_id(b"17"), Err(Error::Unterminated));
    assert_eq!(parse_transaction_id(b"0\0"), Err(Error::Malformed));
    assert_eq!(parse_transaction_id(b"\0"), Err(Error::Malformed));
    assert_eq!(parse_transaction_id(b"1x\0"), Err(Error::Malformed));
    assert_eq!(
        parse_transaction_id(b"99999999999\0"),
        Err(Error::Malformed)
    );
    assert_eq!(parse_ok(b"OK\0"), Ok(()));
    assert_eq!(parse_ok(b"OK"), Err(Error::Malformed));
    assert_eq!(parse_string(b"/local/domain/3\0"), Ok("/local/domain/3"));
    assert_eq!(parse_string(b"a\0b\0"), Err(Error::Malformed));
    assert_eq!(parse_string(b"a"), Err(Error::Unterminated));
    assert_eq!(WatchEvent::parse(b"a\0"), Err(Error::Truncated));
    assert_eq!(WatchEvent::parse(b"a\0t"), Err(Error::Unterminated));
    assert_eq!(WatchEvent::parse(b"a\0t\0x\0"), Err(Error::Malformed));
    assert_eq!(WatchEvent::parse(b"\0t\0"), Err(Error::EmptyPath));
    assert_eq!(WatchEvent::parse(b"a\xff\0t\0"), Err(Error::BadUtf8));
}

#[test]
fn assembler_basic_and_broken() {
    let mut a = Assembler::new();
    let mut input = &READ_REPLY[..];
    let m = a.feed(&mut input).unwrap().unwrap();
    assert_eq!(m.payload, b"guest");
    assert!(input.is_empty());
    assert_eq!(a.feed(&mut input), Ok(None));
    // Zero-length payload completes right after the header.
    let h = Header {
        msg_type: MsgType::Read,
        req_id: 1,
        tx_id: 0,
        len: 0,
    }
    .to_bytes();
    let mut input = &h[..];
    assert_eq!(a.feed(&mut input).unwrap().unwrap().payload, b"");
    // Oversized length breaks the connection.
    let mut bad = h;
    bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut input = &bad[..];
    assert_eq!(a.feed(&mut input), Err(Error::PayloadTooLong(u32::MAX)));
    assert!(a.is_broken());
    let mut input = &READ_REPLY[..];
    assert_eq!(a.feed(&mut input), Err(Error::ConnectionBroken));
    a.reset();
    let mut input = &READ_REPLY[..];
    assert!(a.feed(&mut input).unwrap().is_some());
}

fn msg(t: MsgType, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Header {
        msg_type: t,
        req_id,
        tx_id: 0,
        len: payload.len() as u32,
    }
    .to_bytes()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

proptest! {
    #[test]
    fn assembler_random_splits(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..10),
        cuts in proptest::collection::vec(1usize..64, 1..64),
    ) {
        let mut stream = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            stream.extend(msg(MsgType::Read, i as u32, p));
        }
        let mut a = Assembler::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut k = 0;
        while pos < stream.len() {
            let end = (pos + cuts[k % cuts.len()]).min(stream.len());
            k += 1;
            let mut input = &stream[pos..end];
            while let Some(m) = a.feed(&mut input).unwrap() {
                got.push((m.header.req_id, m.payload.to_vec()));
            }
            prop_assert!(input.is_empty());
            pos = end;
        }
        prop_assert_eq!(got.len(), payloads.len());
        for (i, (id, p)) in got.into_iter().enumerate() {
            prop_assert_eq!(id, i as u32);
            prop_assert_eq!(&p, &payloads[i]);
        }
    }

    #[test]
    fn assembler_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000), cut in 1usize..100) {
        let mut a = Assembler::new();
        for chunk in bytes.chunks(cut) {
            let mut input = chunk;
            loop {
                match a.feed(&mut input) {
                    Ok(Some(m)) => prop_assert!(m.payload.len() <= PAYLOAD_MAX),
                    Ok(None) => break,
                    Err(e) => { prop_assert!(e.is_fatal()); break; }
                }
            }
        }
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = StringList::parse(&bytes).map(|l| l.iter().count());
        let _ = parse_perms(&bytes).map(|p| p.count());
        let _ = WatchEvent::parse(&bytes);
        let _ = parse_transaction_id(&bytes);
        let _ = parse_string(&bytes);
        let _ = XsError::from_payload(&bytes);
        let _ = Perm::parse(&bytes);
    }

    #[test]
    fn perm_roundtrip(domid: u16, a in 0u8..4) {
        let access = [Access::None, Access::Read, Access::Write, Access::Both][a as usize];
        let p = Perm { domid, access };
        let mut buf = [0u8; PERM_MAX_LEN];
        prop_assert_eq!(Perm::parse(p.encode(&mut buf)), Ok(p));
    }
}

// ---------------------------------------------------------------------------
// ClientCore unit tests (full conversations live in tests/fake_xenstored.rs)

#[test]
fn client_matches_replies() {
    let mut c: ClientCore<2, 64> = ClientCore::new();
    let r1 = c.send(TX_NONE, &Request::Read { path: "a" }).unwrap();
    let r2 = c
        .send(
            TX_NONE,
            &Request::Write {
                path: "b",
                value: b"v",
            },
        )
        .unwrap();
    assert_ne!(r1, r2);
    assert_eq!(
        c.send(TX_NONE, &Request::Read { path: "c" }),
        Err(Error::TooManyOutstanding)
    );
    let mut out = [0u8; 64];
    let n = c.take_output(&mut out);
    assert_eq!(n, 16 + 2 + 16 + 3);
    assert_eq!(c.output_len(), 0);

    // Replies out of order; an error reply; an unknown id; a watch event.
    let mut stream = Vec::new();
    stream.extend(msg(MsgType::Error, r2.0, b"EACCES\0"));
    stream.extend(msg(MsgType::Read, 999, b"x"));
    stream.extend(&WATCH_EVENT);
    stream.extend(msg(MsgType::Read, r1.0, b"hello"));
    let mut input = &stream[..];
    let rep = c.receive(&mut input).unwrap().unwrap();
    assert_eq!(rep.req_id, r2);
    assert_eq!(rep.request, MsgType::Write);
    assert_eq!(rep.result, Err(XsError::EACCES));
    assert_eq!(c.receive(&mut input), Err(Error::UnknownReqId(999)));
    let rep = c.receive(&mut input).unwrap().unwrap();
    assert_eq!(rep.result, Ok(&b"hello"[..]));
    assert_eq!(c.receive(&mut input), Ok(None));
    assert_eq!(c.outstanding(), 0);
    // The watch event was queued (42 bytes + 2 prefix fit in 64).
    assert_eq!(c.queued_events(), 1);
    let mut buf = [0u8; PAYLOAD_MAX];
    let ev = c.pop_watch_event(&mut buf).unwrap();
    assert_eq!(ev.path, "device/vif/0/state");
    assert_eq!(ev.token, "token1");
    let mut buf = [0u8; PAYLOAD_MAX];
    assert!(c.pop_watch_event(&mut buf).is_none());
}

#[test]
fn client_error_paths() {
    let mut c: ClientCore<4, 30> = ClientCore::new();
    let r = c.send(TX_NONE, &Request::Read { path: "a" }).unwrap();
    // Reply type mismatch consumes the request.
    let m = msg(MsgType::Write, r.0, b"OK\0");
    let mut input = &m[..];
    assert_eq!(
        c.receive(&mut input),
        Err(Error::ReplyTypeMismatch {
            expected: MsgType::Read,
            got: MsgType::Write
        })
    );
    assert!(!c.is_outstanding(r));
    // Unknown message type with unknown id.
    let m = msg(MsgType::Unknown(77), 5, b"");
    let mut input = &m[..];
    assert_eq!(c.receive(&mut input), Err(Error::UnknownMsgType(77)));
    // Malformed watch event is reported, not queued.
    let m = msg(MsgType::WatchEvent, 0, b"only-path\0");
    let mut input = &m[..];
    assert_eq!(c.receive(&mut input), Err(Error::Truncated));
    // Events that do not fit are dropped and counted.
    let m = [
        msg(MsgType::WatchEvent, 0, b"a/b/c/d\0tok\0"),
        msg(MsgType::WatchEvent, 0, b"a/b/c/e\0tok\0"),
        msg(MsgType::WatchEvent, 0, b"x\0t\0"),
    ]
    .concat();
    let mut input = &m[..];
    assert_eq!(c.receive(&mut input), Ok(None));
    assert_eq!(c.queued_events(), 2); // 14 + 14 = 28 <= 30, then 6 does not fit
    assert_eq!(c.take_dropped_events(), 1);
    assert_eq!(c.take_dropped_events(), 0);
    // Fatal framing error.
    let mut bad = msg(MsgType::Read, 1, b"");
    bad[12..16].copy_from_slice(&5000u32.to_le_bytes());
    let mut input = &bad[..];
    let e = c.receive(&mut input).unwrap_err();
    assert!(e.is_fatal());
    let mut input = &READ_REPLY[..];
    assert_eq!(c.receive(&mut input), Err(Error::ConnectionBroken));
    c.reset();
    assert_eq!(c.outstanding(), 0);
    // Validation errors do not consume a slot.
    assert_eq!(
        c.send(TX_NONE, &Request::Read { path: "" }),
        Err(Error::EmptyPath)
    );
    assert_eq!(c.outstanding(), 0);
}

#[test]
fn client_output_full() {
    let mut c: ClientCore<8, 16> = ClientCore::new();
    let big = [b'x'; PAYLOAD_MAX - 2];
    c.send(
        TX_NONE,
        &Request::Write {
            path: "a",
            value: &big,
        },
    )
    .unwrap();
    c.send(
        TX_NONE,
        &Request::Write {
            path: "a",
            value: &big,
        },
    )
    .unwrap();
    assert_eq!(c.output_len(), OUTPUT_CAPACITY);
    assert_eq!(
        c.send(TX_NONE, &Request::Read { path: "a" }),
        Err(Error::OutputFull)
    );
    assert_eq!(c.outstanding(), 2);
    // Partial writes through pending_output/consume_output.
    let first = c.pending_output().len();
    assert!(first > 0);
    c.consume_output(100);
    assert_eq!(c.output_len(), OUTPUT_CAPACITY - 100);
    assert!(c.send(TX_NONE, &Request::Read { path: "a" }).is_ok());
}

#[test]
fn client_req_ids_skip_outstanding() {
    let mut c: ClientCore<3, 16> = ClientCore::new();
    let a = c.send(TX_NONE, &Request::Read { path: "a" }).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    ids.insert(a.0);
    // Cycle many requests through two slots while `a` stays outstanding.
    for _ in 0..1000 {
        let r = c.send(TX_NONE, &Request::Read { path: "a" }).unwrap();
        c.consume_output(usize::MAX);
        assert_ne!(r, a);
        let m = msg(MsgType::Read, r.0, b"v");
        let mut input = &m[..];
        assert!(c.receive(&mut input).unwrap().is_some());
    }
    assert!(c.is_outstanding(a));
}
