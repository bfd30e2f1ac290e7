//! Entry point: the arm64 Image header Xen probes, then the first
//! instructions. Everything here runs with the MMU off and before Rust code.

use core::arch::global_asm;

// The arm64 Image header (Linux Documentation/arch/arm64/booting.rst):
// code0/code1, text_offset 0, image_size, flags = 0xa (little endian, 4 KiB
// pages, may be placed anywhere), three reserved words, the magic
// "ARM\x64" at offset 0x38, and a reserved word.
//
// `_start` saves the DTB pointer Xen passes in x0, masks interrupts, enables
// FP/SIMD (CPACR_EL1.FPEN = 0b11) because Rust code may use the vector
// registers, installs the exception vectors, sets up the stack, zeroes BSS
// and calls `xen_rt_rust_start(dtb)`.
global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       1f
    .long   0
    .quad   0
    .quad   __image_size
    .quad   0xa
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"
    .long   0
1:
    mov     x19, x0
    msr     daifset, #0xf
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    adrp    x1, __exception_vectors
    add     x1, x1, :lo12:__exception_vectors
    msr     vbar_el1, x1
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:
    cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:
    mov     x0, x19
    bl      xen_rt_rust_start
4:
    wfi
    b       4b
"#
);

// Exception vectors: 16 slots of 0x80 bytes, 2 KiB aligned. The domain runs
// with interrupts masked and handles them by polling after WFI, so every
// vector is unexpected: it reports the slot and the syndrome and stops the
// domain with a crash reason.
global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 0x800
    .global __exception_vectors
__exception_vectors:
    .set slot, 0
    .rept 16
    .balign 0x80
    mov     x0, #slot
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    b       xen_rt_exception
    .set slot, slot + 1
    .endr
"#
);
