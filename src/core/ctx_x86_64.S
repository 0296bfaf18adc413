/* SPDX-License-Identifier: MIT */
/*
 * Context switch for x86-64 (System V ABI), the backend behind ctx.h.
 *
 * A suspended context is its own stack: knit__ctx_switch() pushes the
 * callee-saved registers and the FP control words, stores %rsp in
 * knit_ctx.sp, loads the other context's %rsp, pops the same frame and
 * jumps to the address its call pushed. Caller-saved registers need no
 * saving: the C caller already assumes the call clobbers them. The file
 * holds, in order:
 *  - knit__ctx_switch(): save, swap stacks, restore;
 *  - knit__ctx_trampoline: where a new context starts, calls entry(arg);
 *  - knit__ctx_make(): lays out the first frame that a switch pops.
 *
 * Saved frame, lowest address first (knit_ctx.sp points at offset 0):
 *
 *    0  MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes padding
 *    8  r15
 *   16  r14
 *   24  r13    new context: arg
 *   32  r12    new context: entry
 *   40  rbx
 *   48  rbp    new context: 0, ends frame-pointer walks
 *   56  resume address    new context: knit__ctx_trampoline
 *
 * The FP control words are saved because the ABI makes them callee-saved
 * (fesetround() in one task must not change the rounding of another).
 * Only the control words are kept: the x87 register stack is empty at a
 * call and the x87 status word is caller-saved.
 *
 * There is no .note.gnu.property (IBT/SHSTK), so the linker correctly
 * marks the final binary as not CET-compatible: a switch leaves a shadow
 * stack entry that nothing pops, and resumes with an indirect jump to a
 * call site that has no endbr64.
 */
#if !defined(__x86_64__) || defined(__ILP32__)
#error "ctx_x86_64.S is for the x86-64 LP64 ABI only"
#endif

    .text

/*
 * void knit__ctx_switch(struct knit_ctx *from, struct knit_ctx *to)
 * %rdi = from, %rsi = to.
 *
 * The CFI stays valid across the stack swap because both stacks hold the
 * same frame layout: before the swap it describes @from, after it @to.
 */
    .globl  knit__ctx_switch
    .hidden knit__ctx_switch
    .type   knit__ctx_switch, @function
    .p2align 4
knit__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)

    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp

    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    /*
     * A plain ret. An indirect jump (popq; jmp *%rcx) wins a bare
     * ping-pong between two switch sites, but leaves the return stack
     * buffer one entry off, so every ret further up the caller's chain
     * (knit_yield, the task body...) is then mispredicted: in knit's own
     * yield path the jump cost 17.3 ns per switch and ret 8.6 ns
     * (bench/knit-bench yield_pingpong, this 2-core VM).
     */
    ret
    .cfi_endproc
    .size   knit__ctx_switch, . - knit__ctx_switch

/*
 * First code of every new context, reached by the jump of the first
 * switch to it, with entry in %r12, arg in %r13 and %rsp 16-byte aligned,
 * so the call leaves entry with %rsp % 16 == 8 as the ABI requires.
 *
 * The return address is marked undefined: this is the outermost frame, so
 * debuggers and unwinders stop here instead of walking into garbage.
 * entry must never return; if it does, ud2 traps at once rather than
 * running off into whatever follows.
 */
    .globl  knit__ctx_trampoline
    .hidden knit__ctx_trampoline
    .type   knit__ctx_trampoline, @function
    .p2align 4
knit__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined %rip
    movq    %r13, %rdi
    call    *%r12
    ud2
    .cfi_endproc
    .size   knit__ctx_trampoline, . - knit__ctx_trampoline

/*
 * void knit__ctx_make(struct knit_ctx *c, void *stack_lo, size_t size,
 *                     void (*entry)(void *), void *arg)
 * %rdi = c, %rsi = stack_lo, %rdx = size, %rcx = entry, %r8 = arg.
 *
 * Writes the frame described at the top of this file just below the
 * 16-byte-aligned top of the stack, with 16 zeroed bytes above it so the
 * trampoline's canonical frame address still lies inside the stack. The FP
 * words get the Linux process defaults: MXCSR 0x1F80 (all exceptions
 * masked, round to nearest) and x87 CW 0x037F (same, 64-bit precision).
 */
    .globl  knit__ctx_make
    .hidden knit__ctx_make
    .type   knit__ctx_make, @function
    .p2align 4
knit__ctx_make:
    .cfi_startproc
    leaq    (%rsi,%rdx), %rax
    andq    $-16, %rax
    xorl    %edx, %edx
    leaq    knit__ctx_trampoline(%rip), %rsi
    movq    %rdx, -8(%rax)
    movq    %rdx, -16(%rax)
    movq    %rsi, -24(%rax)
    movq    %rdx, -32(%rax)
    movq    %rdx, -40(%rax)
    movq    %rcx, -48(%rax)
    movq    %r8, -56(%rax)
    movq    %rdx, -64(%rax)
    movq    %rdx, -72(%rax)
    movabsq $0x037F00001F80, %rdx
    movq    %rdx, -80(%rax)
    subq    $80, %rax
    movq    %rax, (%rdi)
    ret
    .cfi_endproc
    .size   knit__ctx_make, . - knit__ctx_make

    .section .note.GNU-stack, "", @progbits
