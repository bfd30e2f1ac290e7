//! Console output: the domain's vpl011 once the device tree says where it
//! is, Xen's console_io hypercall before that (and when there is no UART).
//! `xen_rt::println!` writes one line under a lock.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;

use crate::arch::uart::Pl011;

static CONSOLE: Mutex<Console> = Mutex::new(Console { uart: None });

struct Console {
    uart: Option<Pl011>,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &self.uart {
            Some(uart) => uart.write_bytes(s.as_bytes()),
            None => {
                let _ = xen_hypercall::console_write(s.as_bytes());
            }
        }
        Ok(())
    }
}

static UART_BASE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn use_uart(base: usize) {
    UART_BASE.store(base, Ordering::Relaxed);
    CONSOLE.lock().uart = Some(Pl011::new(base));
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut c = CONSOLE.lock();
    let _ = c.write_fmt(args);
}

/// Writes straight to the UART (or console_io), without taking the console lock
/// (for the panic path, which may interrupt a holder of the lock).
pub(crate) fn emergency(args: fmt::Arguments<'_>) {
    struct Emergency;
    impl Write for Emergency {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match UART_BASE.load(Ordering::Relaxed) {
                0 => {
                    let _ = xen_hypercall::console_write(s.as_bytes());
                }
                base => Pl011::new(base).write_bytes(s.as_bytes()),
            }
            Ok(())
        }
    }
    let _ = Emergency.write_fmt(args);
}

/// Prints `bytes` as `<prefix> <offset> <hex>` lines of 40 bytes each, so
/// that every line fits Xen's 128-character console line; `offset` counts
/// from `base`. Used to capture peer traffic for fuzz seeds (see
/// `cargo xtask fuzz --import-capture`).
pub fn print_hex_lines(prefix: fmt::Arguments<'_>, base: usize, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (k, chunk) in bytes.chunks(40).enumerate() {
        let mut line = [0u8; 80];
        for (pair, b) in line.chunks_exact_mut(2).zip(chunk) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        let hex = core::str::from_utf8(&line[..chunk.len() * 2]).unwrap_or("");
        _print(format_args!("{prefix} {} {hex}\n", base + k * 40));
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::console::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
