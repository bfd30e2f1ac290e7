//! Feeds arbitrary bytes, split at fuzzer-chosen points, through the
//! xenstore `Assembler` and `ClientCore` and every reply parser. Nothing
//! may panic; every complete message must respect `PAYLOAD_MAX`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_proto::xenstore::{self, Assembler, ClientCore, PAYLOAD_MAX, Request, TX_NONE};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).max(1);

    let mut asm = Assembler::new();
    for chunk in stream.chunks(cut) {
        let mut input = chunk;
        loop {
            match asm.feed(&mut input) {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= PAYLOAD_MAX);
                    let p = m.payload;
                    let _ = xenstore::parse_directory(p).map(|l| l.iter().count());
                    let _ = xenstore::parse_perms(p).map(|i| i.count());
                    let _ = xenstore::WatchEvent::parse(p);
                    let _ = xenstore::parse_transaction_id(p);
                    let _ = xenstore::parse_string(p);
                    let _ = xenstore::XsError::from_payload(p);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.is_fatal());
                    break;
                }
            }
        }
    }

    let mut client: ClientCore<4, 256> = ClientCore::new();
    for i in 0..4 {
        let _ = client.send(TX_NONE, &Request::Read { path: if i % 2 == 0 { "a" } else { "/b" } });
    }
    let mut buf = [0u8; PAYLOAD_MAX];
    for chunk in stream.chunks(cut) {
        let mut input = chunk;
        while !input.is_empty() {
            match client.receive(&mut input) {
                Ok(Some(_)) | Ok(None) => {}
                Err(e) if e.is_fatal() => return,
                Err(_) => {}
            }
        }
        while client.pop_watch_event(&mut buf).is_some() {}
    }
});
