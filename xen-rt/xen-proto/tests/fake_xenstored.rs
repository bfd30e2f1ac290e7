//! A small in-memory xenstored (tree, permissions, transactions with EAGAIN
//! on conflict, watches) talking to `ClientCore` through two 1024-byte
//! rings driven by `ring::bytes`, with transfers split at random points.
#![forbid(unsafe_code)]

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use xen_proto::ring::bytes;
use xen_proto::xenstore::{
    self, Access, Assembler, ClientCore, Header, MsgType, PAYLOAD_MAX, Perm, Request, TX_NONE,
    WatchEvent, XsError,
};

// ---------------------------------------------------------------------------
// The fake daemon

#[derive(Clone, Debug)]
struct Node {
    value: Vec<u8>,
    perms: Vec<Perm>,
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: BTreeMap<String, Node>,
    generation: u64,
}

fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn is_under(path: &str, top: &str) -> bool {
    path == top
        || top == "/"
        || (path.starts_with(top) && path.as_bytes().get(top.len()) == Some(&b'/'))
}

impl Tree {
    fn access(&self, domid: u16, path: &str) -> Access {
        if domid == 0 {
            return Access::Both;
        }
        let Some(node) = self.nodes.get(path) else {
            return Access::None;
        };
        let owner = node.perms[0];
        if owner.domid == domid {
            return Access::Both;
        }
        node.perms
            .iter()
            .skip(1)
            .find(|p| p.domid == domid)
            .map(|p| p.access)
            .unwrap_or(owner.access)
    }

    /// Creates `path` and missing ancestors; returns the created paths.
    fn create(&mut self, domid: u16, path: &str) -> Result<Vec<String>, XsError> {
        if self.nodes.contains_key(path) {
            return Ok(vec![]);
        }
        let par = parent(path).ok_or(XsError::EINVAL)?.to_string();
        let mut created = self.create(domid, &par)?;
        if !self.access(domid, &par).can_write() {
            return Err(XsError::EACCES);
        }
        let mut perms = self.nodes[&par].perms.clone();
        if domid != 0 {
            perms[0].domid = domid;
        }
        self.nodes.insert(
            path.to_string(),
            Node {
                value: vec![],
                perms,
            },
        );
        created.push(path.to_string());
        Ok(created)
    }
}

struct Daemon {
    domid: u16,
    tree: Tree,
    txs: HashMap<u32, (Tree, u64, Vec<String>)>,
    next_tx: u32,
    watches: Vec<(String, String)>,
    asm: Assembler,
    out: Vec<u8>,
    initial_event: Option<Vec<u8>>,
}

fn strings(payload: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = payload
        .split(|&b| b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect();
    if payload.last() == Some(&0) {
        v.pop();
    }
    v
}

impl Daemon {
    fn new(domid: u16) -> Self {
        let mut nodes = BTreeMap::new();
        let dom0_only = vec![Perm {
            domid: 0,
            access: Access::None,
        }];
        for p in [
            "/",
            "/local",
            "/local/domain",
            "/local/domain/0",
            "/local/domain/0/secret",
        ] {
            nodes.insert(
                p.to_string(),
                Node {
                    value: vec![],
                    perms: dom0_only.clone(),
                },
            );
        }
        nodes.insert(
            format!("/local/domain/{domid}"),
            Node {
                value: vec![],
                perms: vec![Perm {
                    domid,
                    access: Access::None,
                }],
            },
        );
        Daemon {
            domid,
            tree: Tree {
                nodes,
                generation: 0,
            },
            txs: HashMap::new(),
            next_tx: 1,
            watches: vec![],
            asm: Assembler::new(),
            out: vec![],
            initial_event: None,
        }
    }

    fn send(&mut self, t: MsgType, req_id: u32, tx_id: u32, payload: &[u8]) {
        let h = Header {
            msg_type: t,
            req_id,
            tx_id,
            len: payload.len() as u32,
        };
        self.out.extend_from_slice(&h.to_bytes());
        self.out.extend_from_slice(payload);
    }

    fn fire(&mut self, changed: &[String], removed: bool) {
        let mut events = vec![];
        for c in changed {
            for (w, tok) in &self.watches {
                if is_under(c, w) || (removed && is_under(w, c)) {
                    let mut p = c.as_bytes().to_vec();
                    p.push(0);
                    p.extend_from_slice(tok.as_bytes());
                    p.push(0);
                    events.push(p);
                }
            }
        }
        for e in events {
            self.send(MsgType::WatchEvent, 0, 0, &e);
        }
    }

    fn input(&mut self, mut bytes: &[u8]) {
        while let Some(m) = self.asm.feed(&mut bytes).unwrap() {
            let (h, p) = (m.header, m.payload.to_vec());
            match self.handle(h, &p) {
                Ok((reply, changed, removed)) => {
                    self.send(h.msg_type, h.req_id, h.tx_id, &reply);
                    if let Some(e) = self.initial_event.take() {
                        self.send(MsgType::WatchEvent, 0, 0, &e);
                    }
                    self.fire(&changed, removed);
                }
                Err(e) => {
                    let mut s = e.name().as_bytes().to_vec();
                    s.push(0);
                    self.send(MsgType::Error, h.req_id, h.tx_id, &s);
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn handle(&mut self, h: Header, p: &[u8]) -> Result<(Vec<u8>, Vec<String>, bool), XsError> {
        let domid = self.domid;
        let args = strings(p);
        let ok = b"OK\0".to_vec();
        if h.msg_type == MsgType::TransactionStart {
            let id = self.next_tx;
            self.next_tx += 1;
            self.txs
                .insert(id, (self.tree.clone(), self.tree.generation, vec![]));
            return Ok((format!("{id}\0").into_bytes(), vec![], false));
        }
        if h.msg_type == MsgType::TransactionEnd {
            let (tree, start, changed) = self.txs.remove(&h.tx_id).ok_or(XsError::ENOENT)?;
            if args.first().map(String::as_str) == Some("T") {
                if self.tree.generation != start {
                    return Err(XsError::EAGAIN);
                }
                if !changed.is_empty() {
                    self.tree = tree;
                    self.tree.generation = start + 1;
                }
                return Ok((ok, changed, false));
            }
            return Ok((ok, vec![], false));
        }
        if matches!(h.msg_type, MsgType::Watch | MsgType::Unwatch) {
            let (path, tok) = (args[0].clone(), args[1].clone());
            if h.msg_type == MsgType::Watch {
                self.watches.push((path.clone(), tok.clone()));
                // xenstored fires every new watch once, after the reply.
                let mut e = path.into_bytes();
                e.push(0);
                e.extend_from_slice(tok.as_bytes());
                e.push(0);
                self.initial_event = Some(e);
                return Ok((ok, vec![], false));
            }
            let before = self.watches.len();
            self.watches.retain(|w| *w != (path.clone(), tok.clone()));
            if self.watches.len() == before {
                return Err(XsError::ENOENT);
            }
            return Ok((ok, vec![], false));
        }
        // Tree operations, inside a transaction or not.
        let tx = h.tx_id;
        let tree = if tx == TX_NONE {
            &mut self.tree
        } else {
            &mut self.txs.get_mut(&tx).ok_or(XsError::ENOENT)?.0
        };
        let path = args.first().cloned().ok_or(XsError::EINVAL)?;
        let mut changed = vec![];
        let mut removed = false;
        let reply = match h.msg_type {
            MsgType::Read => {
                if !tree.nodes.contains_key(&path) {
                    return Err(XsError::ENOENT);
                }
                if !tree.access(domid, &path).can_read() {
                    return Err(XsError::EACCES);
                }
                tree.nodes[&path].value.clone()
            }
            MsgType::Write | MsgType::Mkdir => {
                let created = tree.create(domid, &path)?;
                if !tree.access(domid, &path).can_write() {
                    return Err(XsError::EACCES);
                }
                if h.msg_type == MsgType::Write {
                    let value = p[path.len() + 1..].to_vec();
                    tree.nodes.get_mut(&path).unwrap().value = value;
                    changed.push(path.clone());
                } else {
                    changed.extend(created);
                }
                ok
            }
            MsgType::Rm => {
                if !tree.nodes.contains_key(&path) {
                    return Err(XsError::ENOENT);
                }
                if !tree.access(domid, &path).can_write() {
                    return Err(XsError::EACCES);
                }
                tree.nodes.retain(|k, _| !is_under(k, &path));
                changed.push(path.clone());
                removed = true;
                ok
            }
            MsgType::Directory => {
                if !tree.nodes.contains_key(&path) {
                    return Err(XsError::ENOENT);
                }
                if !tree.access(domid, &path).can_read() {
                    return Err(XsError::EACCES);
                }
                let mut out = vec![];
                for k in tree.nodes.keys() {
                    if parent(k) == Some(path.as_str()) {
                        out.extend_from_slice(k.rsplit('/').next().unwrap().as_bytes());
                        out.push(0);
                    }
                }
                out
            }
            MsgType::GetPerms => {
                let node = tree.nodes.get(&path).ok_or(XsError::ENOENT)?;
                let mut out = vec![];
                for perm in &node.perms {
                    let mut buf = [0u8; xenstore::PERM_MAX_LEN];
                    out.extend_from_slice(perm.encode(&mut buf));
                    out.push(0);
                }
                out
            }
            MsgType::SetPerms => {
                let node = tree.nodes.get(&path).ok_or(XsError::ENOENT)?;
                if domid != 0 && node.perms[0].domid != domid {
                    return Err(XsError::EACCES);
                }
                let perms: Vec<Perm> = args[1..]
                    .iter()
                    .map(|s| Perm::parse(s.as_bytes()).map_err(|_| XsError::EINVAL))
                    .collect::<Result<_, _>>()?;
                tree.nodes.get_mut(&path).unwrap().perms = perms;
                changed.push(path.clone());
                ok
            }
            _ => return Err(XsError::ENOSYS),
        };
        if !changed.is_empty() {
            if tx == TX_NONE {
                tree.generation += 1;
            } else {
                self.txs
                    .get_mut(&tx)
                    .unwrap()
                    .2
                    .extend(changed.iter().cloned());
                changed.clear();
            }
        }
        Ok((reply, changed, removed))
    }
}

// ---------------------------------------------------------------------------
// Transport: two byte rings with random transfer sizes

struct Ring {
    buf: [u8; 1024],
    cons: u32,
    prod: u32,
}

impl Ring {
    fn new(start: u32) -> Self {
        Ring {
            buf: [0; 1024],
            cons: start,
            prod: start,
        }
    }
}

struct Harness {
    client: ClientCore<4, 2048>,
    daemon: Daemon,
    req: Ring,
    rsp: Ring,
    chunks: Vec<usize>,
    k: usize,
    /// Bytes read from the response ring but not yet fed to the client.
    backlog: Vec<u8>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(Vec<u8>),
    Err(XsError),
}

impl Harness {
    fn new(chunks: Vec<usize>, start: u32) -> Self {
        Harness {
            client: ClientCore::new(),
            daemon: Daemon::new(1),
            req: Ring::new(start),
            rsp: Ring::new(start.wrapping_mul(7)),
            chunks,
            k: 0,
            backlog: vec![],
        }
    }

    fn chunk(&mut self) -> usize {
        self.k += 1;
        self.chunks[self.k % self.chunks.len()]
    }

    /// One round of transfers in both directions.
    fn pump(&mut self) {
        // Client -> request ring.
        let n = self.chunk();
        let out = self.client.pending_output();
        let take = out.len().min(n);
        let w = bytes::write_to(
            &mut self.req.buf,
            self.req.cons,
            self.req.prod,
            &out[..take],
        )
        .unwrap();
        self.client.consume_output(w);
        self.req.prod = self.req.prod.wrapping_add(w as u32);
        // Daemon reads some of the request ring.
        let mut tmp = vec![0u8; self.chunk()];
        let r = bytes::read_from(&self.req.buf, self.req.cons, self.req.prod, &mut tmp).unwrap();
        self.req.cons = self.req.cons.wrapping_add(r as u32);
        self.daemon.input(&tmp[..r]);
        // Daemon -> response ring.
        let n = self.chunk().min(self.daemon.out.len());
        let w = bytes::write_to(
            &mut self.rsp.buf,
            self.rsp.cons,
            self.rsp.prod,
            &self.daemon.out[..n],
        )
        .unwrap();
        self.daemon.out.drain(..w);
        self.rsp.prod = self.rsp.prod.wrapping_add(w as u32);
        // Client reads some of the response ring.
        let mut tmp = vec![0u8; self.chunk()];
        let r = bytes::read_from(&self.rsp.buf, self.rsp.cons, self.rsp.prod, &mut tmp).unwrap();
        self.rsp.cons = self.rsp.cons.wrapping_add(r as u32);
        self.backlog.extend_from_slice(&tmp[..r]);
    }

    fn call(&mut self, tx: u32, req: Request<'_>) -> Outcome {
        let id = self.client.send(tx, &req).unwrap();
        for _ in 0..100_000 {
            self.pump();
            let backlog = std::mem::take(&mut self.backlog);
            let mut input = &backlog[..];
            let mut result = None;
            if let Some(r) = self.client.receive(&mut input).unwrap() {
                assert_eq!(r.req_id, id);
                assert_eq!(r.request, req.msg_type());
                result = Some(match r.result {
                    Ok(p) => Outcome::Ok(p.to_vec()),
                    Err(e) => Outcome::Err(e),
                });
            }
            self.backlog = input.to_vec();
            if let Some(r) = result {
                return r;
            }
        }
        panic!("no reply");
    }

    fn events(&mut self) -> Vec<(String, String)> {
        let mut v = vec![];
        let mut buf = [0u8; PAYLOAD_MAX];
        while let Some(WatchEvent { path, token }) = self.client.pop_watch_event(&mut buf) {
            v.push((path.to_string(), token.to_string()));
        }
        v
    }

    /// Runs until all pending watch events have reached the client.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            self.pump();
            let backlog = std::mem::take(&mut self.backlog);
            let mut input = &backlog[..];
            assert_eq!(self.client.receive(&mut input).unwrap(), None);
            if self.daemon.out.is_empty()
                && self.rsp.prod == self.rsp.cons
                && self.client.output_len() == 0
            {
                return;
            }
        }
        panic!("did not settle");
    }
}

fn ok() -> Outcome {
    Outcome::Ok(b"OK\0".to_vec())
}

fn conversation(chunks: Vec<usize>, start: u32) {
    let mut h = Harness::new(chunks, start);
    let d = "/local/domain/1/data";
    let name = "/local/domain/1/data/name";

    assert_eq!(
        h.call(
            0,
            Request::Write {
                path: name,
                value: b"guest"
            }
        ),
        ok()
    );
    assert_eq!(
        h.call(0, Request::Read { path: name }),
        Outcome::Ok(b"guest".to_vec())
    );
    assert_eq!(
        h.call(
            0,
            Request::Read {
                path: "/local/domain/0/secret"
            }
        ),
        Outcome::Err(XsError::EACCES)
    );
    assert_eq!(
        h.call(
            0,
            Request::Write {
                path: "/other",
                value: b"x"
            }
        ),
        Outcome::Err(XsError::EACCES)
    );
    assert_eq!(
        h.call(
            0,
            Request::Read {
                path: "/local/domain/1/nope"
            }
        ),
        Outcome::Err(XsError::ENOENT)
    );
    match h.call(0, Request::Directory { path: d }) {
        Outcome::Ok(p) => {
            let list = xenstore::parse_directory(&p).unwrap();
            assert_eq!(list.iter().collect::<Vec<_>>(), ["name"]);
        }
        other => panic!("{other:?}"),
    }

    // Watches.
    assert_eq!(
        h.call(
            0,
            Request::Watch {
                path: d,
                token: "tok"
            }
        ),
        ok()
    );
    assert_eq!(
        h.call(
            0,
            Request::Write {
                path: "/local/domain/1/data/x",
                value: b"1"
            }
        ),
        ok()
    );
    h.settle();
    assert_eq!(
        h.events(),
        [
            (d.to_string(), "tok".to_string()),
            ("/local/domain/1/data/x".to_string(), "tok".to_string())
        ]
    );

    // Transaction conflict -> EAGAIN, then a clean retry.
    let tx = match h.call(0, Request::TransactionStart) {
        Outcome::Ok(p) => xenstore::parse_transaction_id(&p).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        h.call(
            tx,
            Request::Write {
                path: "/local/domain/1/data/y",
                value: b"1"
            }
        ),
        ok()
    );
    assert_eq!(
        h.call(
            0,
            Request::Write {
                path: "/local/domain/1/data/z",
                value: b"2"
            }
        ),
        ok()
    );
    assert_eq!(
        h.call(
            0,
            Request::Read {
                path: "/local/domain/1/data/y"
            }
        ),
        Outcome::Err(XsError::ENOENT)
    );
    assert_eq!(
        h.call(tx, Request::TransactionEnd { commit: true }),
        Outcome::Err(XsError::EAGAIN)
    );
    let tx = match h.call(0, Request::TransactionStart) {
        Outcome::Ok(p) => xenstore::parse_transaction_id(&p).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        h.call(
            tx,
            Request::Read {
                path: "/local/domain/1/data/z"
            }
        ),
        Outcome::Ok(b"2".to_vec())
    );
    assert_eq!(
        h.call(
            tx,
            Request::Write {
                path: "/local/domain/1/data/y",
                value: b"1"
            }
        ),
        ok()
    );
    assert_eq!(h.call(tx, Request::TransactionEnd { commit: true }), ok());
    assert_eq!(
        h.call(
            0,
            Request::Read {
                path: "/local/domain/1/data/y"
            }
        ),
        Outcome::Ok(b"1".to_vec())
    );
    // Aborted transaction leaves no trace.
    let tx = match h.call(0, Request::TransactionStart) {
        Outcome::Ok(p) => xenstore::parse_transaction_id(&p).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        h.call(
            tx,
            Request::Write {
                path: "/local/domain/1/data/w",
                value: b"1"
            }
        ),
        ok()
    );
    assert_eq!(h.call(tx, Request::TransactionEnd { commit: false }), ok());
    assert_eq!(
        h.call(
            0,
            Request::Read {
                path: "/local/domain/1/data/w"
            }
        ),
        Outcome::Err(XsError::ENOENT)
    );
    assert_eq!(
        h.call(999, Request::Read { path: name }),
        Outcome::Err(XsError::ENOENT)
    );

    // Permissions.
    let perms = [
        Perm {
            domid: 1,
            access: Access::None,
        },
        Perm {
            domid: 0,
            access: Access::Read,
        },
    ];
    assert_eq!(
        h.call(
            0,
            Request::SetPerms {
                path: name,
                perms: &perms
            }
        ),
        ok()
    );
    match h.call(0, Request::GetPerms { path: name }) {
        Outcome::Ok(p) => assert_eq!(
            xenstore::parse_perms(&p).unwrap().collect::<Vec<_>>(),
            perms
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.call(
            0,
            Request::SetPerms {
                path: "/local/domain/0/secret",
                perms: &perms
            }
        ),
        Outcome::Err(XsError::EACCES)
    );

    // Remove and unwatch.
    assert_eq!(h.call(0, Request::Rm { path: d }), ok());
    assert_eq!(
        h.call(0, Request::Read { path: name }),
        Outcome::Err(XsError::ENOENT)
    );
    assert_eq!(
        h.call(
            0,
            Request::Unwatch {
                path: d,
                token: "tok"
            }
        ),
        ok()
    );
    assert_eq!(
        h.call(
            0,
            Request::Unwatch {
                path: d,
                token: "tok"
            }
        ),
        Outcome::Err(XsError::ENOENT)
    );
    h.settle();
    let ev: Vec<String> = h.events().into_iter().map(|(p, _)| p).collect();
    assert_eq!(ev, expected_events());
    assert_eq!(h.client.take_dropped_events(), 0);
    assert_eq!(h.client.outstanding(), 0);
}

fn expected_events() -> Vec<String> {
    // Order of firing: z (non-tx write), y (tx commit), name (set_perms),
    // data (rm).
    [
        "/local/domain/1/data/z",
        "/local/domain/1/data/y",
        "/local/domain/1/data/name",
        "/local/domain/1/data",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn conversation_whole_chunks() {
    conversation(vec![4096], 0);
}

#[test]
fn conversation_byte_by_byte_near_wrap() {
    conversation(vec![1], u32::MAX - 40);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn conversation_random_splits(
        chunks in proptest::collection::vec(1usize..200, 1..16),
        start in prop_oneof![Just(u32::MAX - 100), any::<u32>()],
    ) {
        conversation(chunks, start);
    }

    /// Several requests in flight at once; replies matched by id.
    #[test]
    fn pipelined(chunks in proptest::collection::vec(1usize..100, 1..8), n in 1usize..5) {
        let mut h = Harness::new(chunks, 0);
        let mut ids = vec![];
        for i in 0..n.min(4) {
            let path = format!("/local/domain/1/k{i}");
            ids.push((h.client.send(0, &Request::Write { path: &path, value: b"v" }).unwrap(), MsgType::Write));
        }
        let mut seen = 0;
        for _ in 0..100_000 {
            if seen == ids.len() { break; }
            h.pump();
            let backlog = std::mem::take(&mut h.backlog);
            let mut input = &backlog[..];
            while let Some(r) = h.client.receive(&mut input).unwrap() {
                prop_assert!(ids.iter().any(|(id, t)| *id == r.req_id && *t == r.request));
                prop_assert_eq!(r.result, Ok(&b"OK\0"[..]));
                seen += 1;
            }
        }
        prop_assert_eq!(seen, ids.len());
        prop_assert_eq!(h.client.outstanding(), 0);
    }
}
