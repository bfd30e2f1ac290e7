//! Runs the cargo-fuzz driver `vchan::sim::fuzz_header` over a few
//! thousand pseudo-random inputs so CI exercises it without cargo-fuzz.
#![forbid(unsafe_code)]

#[test]
fn fuzz_header_pseudo_random() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let iterations = if cfg!(debug_assertions) { 3000 } else { 20000 };
    let mut data = Vec::new();
    for i in 0..iterations {
        let len = (next() % 600) as usize;
        data.clear();
        data.extend((0..len).map(|_| next() as u8));
        // Bias some inputs towards valid headers: small bytes pick valid
        // orders and live values, making deeper states reachable.
        if i % 3 == 0 {
            for b in data.iter_mut().step_by(3) {
                *b %= 16;
            }
        }
        vchan::sim::fuzz_header(&data);
    }
}

#[test]
fn fuzz_header_edge_inputs() {
    vchan::sim::fuzz_header(&[]);
    vchan::sim::fuzz_header(&[1]);
    vchan::sim::fuzz_header(&[0xff; 64]);
    vchan::sim::fuzz_header(&[0; 64]);
    vchan::sim::fuzz_header(&[1, 10, 10, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
}
