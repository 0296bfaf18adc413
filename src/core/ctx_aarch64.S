/* SPDX-License-Identifier: MIT */
/*
 * Context switch for AArch64 (AAPCS64), the backend behind ctx.h.
 *
 * A suspended context is its own stack: knit__ctx_switch() stores the
 * callee-saved registers and FPCR below sp, writes sp to knit_ctx.sp,
 * loads the other context's sp and reloads the same frame. Caller-saved
 * registers need no saving: the C caller already assumes the call
 * clobbers them. The file holds, in order:
 *  - knit__ctx_switch(): save, swap stacks, restore;
 *  - knit__ctx_trampoline: where a new context starts, calls entry(arg);
 *  - knit__ctx_make(): lays out the first frame that a switch reloads.
 *
 * Saved frame, 176 bytes, lowest address first (knit_ctx.sp points at 0):
 *
 *     0  x19 x20    new context: entry, arg
 *    16  x21 x22
 *    32  x23 x24
 *    48  x25 x26
 *    64  x27 x28
 *    80  x29 x30    new context: 0 (ends frame-pointer walks), trampoline
 *    96  d8  d9     only the low 64 bits of v8-v15 are callee-saved
 *   112  d10 d11
 *   128  d12 d13
 *   144  d14 d15
 *   160  FPCR, 8 bytes padding
 *
 * FPCR (rounding mode, flush-to-zero, trap enables) is saved because
 * fesetround() in one task must not change the rounding of another.
 * FPSR (sticky exception flags) is caller-saved and stays shared.
 *
 * There is no .note.gnu.property (BTI/PAC): the switch returns through a
 * plain ret, so the linker correctly marks the binary as not using BTI.
 */
#if !defined(__aarch64__) || defined(__ILP32__)
#error "ctx_aarch64.S is for the AArch64 LP64 ABI only"
#endif

    .text

/*
 * void knit__ctx_switch(struct knit_ctx *from, struct knit_ctx *to)
 * x0 = from, x1 = to.
 *
 * The CFI stays valid across the stack swap because both stacks hold the
 * same frame layout: before the swap it describes @from, after it @to.
 */
    .globl  knit__ctx_switch
    .hidden knit__ctx_switch
    .type   knit__ctx_switch, %function
    .p2align 4
knit__ctx_switch:
    .cfi_startproc
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #0]
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    stp     x21, x22, [sp, #16]
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    stp     x23, x24, [sp, #32]
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    stp     x25, x26, [sp, #48]
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    stp     x27, x28, [sp, #64]
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    stp     x29, x30, [sp, #80]
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    stp     d8, d9, [sp, #96]
    .cfi_offset d8, -80
    .cfi_offset d9, -72
    stp     d10, d11, [sp, #112]
    .cfi_offset d10, -64
    .cfi_offset d11, -56
    stp     d12, d13, [sp, #128]
    .cfi_offset d12, -48
    .cfi_offset d13, -40
    stp     d14, d15, [sp, #144]
    .cfi_offset d14, -32
    .cfi_offset d15, -24
    mrs     x9, fpcr
    str     x9, [sp, #160]

    mov     x10, sp
    str     x10, [x0]
    ldr     x10, [x1]
    mov     sp, x10

    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    /*
     * Writing FPCR can synchronize the FP pipeline on some cores, and
     * nearly every switch goes between contexts with the same FPCR, so
     * write it only when it differs (x9 still holds the current value).
     */
    ldr     x10, [sp, #160]
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x10
1:
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    ret
    .cfi_endproc
    .size   knit__ctx_switch, . - knit__ctx_switch

/*
 * First code of every new context, reached by the ret of the first switch
 * to it, with entry in x19, arg in x20 and sp 16-byte aligned as the ABI
 * requires at every public interface.
 *
 * The return address is marked undefined: this is the outermost frame, so
 * debuggers and unwinders stop here instead of walking into garbage.
 * entry must never return; if it does, brk traps at once (with the same
 * immediate as __builtin_trap()) rather than running off into whatever
 * follows.
 */
    .globl  knit__ctx_trampoline
    .hidden knit__ctx_trampoline
    .type   knit__ctx_trampoline, %function
    .p2align 4
knit__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20
    blr     x19
    brk     #1000
    .cfi_endproc
    .size   knit__ctx_trampoline, . - knit__ctx_trampoline

/*
 * void knit__ctx_make(struct knit_ctx *c, void *stack_lo, size_t size,
 *                     void (*entry)(void *), void *arg)
 * x0 = c, x1 = stack_lo, x2 = size, x3 = entry, x4 = arg.
 *
 * Writes the frame described at the top of this file just below the
 * 16-byte-aligned top of the stack, leaving a zeroed 16-byte frame record
 * above it, where sp points when entry starts. FPCR starts at 0, the
 * Linux process default (round to nearest, no traps, no flush-to-zero).
 */
    .globl  knit__ctx_make
    .hidden knit__ctx_make
    .type   knit__ctx_make, %function
    .p2align 4
knit__ctx_make:
    .cfi_startproc
    add     x9, x1, x2
    and     x9, x9, #-16
    stp     xzr, xzr, [x9, #-16]
    sub     x9, x9, #192
    adr     x10, knit__ctx_trampoline
    stp     x3, x4, [x9, #0]
    stp     xzr, xzr, [x9, #16]
    stp     xzr, xzr, [x9, #32]
    stp     xzr, xzr, [x9, #48]
    stp     xzr, xzr, [x9, #64]
    stp     xzr, x10, [x9, #80]
    stp     xzr, xzr, [x9, #96]
    stp     xzr, xzr, [x9, #112]
    stp     xzr, xzr, [x9, #128]
    stp     xzr, xzr, [x9, #144]
    stp     xzr, xzr, [x9, #160]
    str     x9, [x0]
    ret
    .cfi_endproc
    .size   knit__ctx_make, . - knit__ctx_make

    .section .note.GNU-stack, "", %progbits
