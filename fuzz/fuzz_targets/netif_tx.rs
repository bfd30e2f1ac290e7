//! A hostile netfront's tx ring (`io/netif.h`: requests, extra-info
//! slots, chained fragments) through `xen_proto::netif::parse_tx_packet`;
//! see `xen_proto::fuzzing::netif_tx`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_proto::fuzzing::netif_tx(data);
});
