// SPDX-License-Identifier: MIT
/*
 * Self-checking smoke test of the context switch (src/core/ctx.h) with no
 * dependency beyond libc and libm, so it can be cross-compiled for another
 * architecture and run under qemu-user (scripts/test-aarch64.sh) where no
 * cmocka is installed. tests/test_ctx.c is the full suite; this covers
 * what differs between architectures: switching itself, callee-saved
 * integer and FP registers, the FP control register per context and the
 * stack alignment at entry.
 *
 * Prints "ctx_smoke: ok" and exits 0, or names the failed check and
 * exits 1. Checks use CHECK() rather than assert() so NDEBUG builds still
 * check.
 */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/compiler.h"
#include "core/ctx.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "ctx_smoke: %s:%d: check failed: %s\n", __FILE__,  \
                    __LINE__, #cond);                                          \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#define STACK_SIZE (64 * 1024)
#define PING_PONGS 100000L
#define LIVE_ROUNDS 1000

static struct knit_ctx main_ctx;
static struct knit_ctx co_ctx;
static void *stack;

/* Volatile so the compiler cannot fold the arithmetic away. */
static volatile long seed = 7;

/* What the coroutine of the current check saw or computed. */
static long co_val;
static int co_seen[3];
static int co_done;

/* Makes the coroutine run body, then switch back to main for good. */
static void (*co_body)(void);

static void co_entry(void *arg)
{
    CHECK(arg == &co_ctx);
    co_body();
    co_done = 1;
    knit__ctx_switch(&co_ctx, &main_ctx);
    abort();
}

static void co_start(void (*body)(void))
{
    co_body = body;
    co_done = 0;
    knit__ctx_make(&co_ctx, stack, STACK_SIZE, co_entry, &co_ctx);
}

static void to_co(void)
{
    knit__ctx_switch(&main_ctx, &co_ctx);
}

static void to_main(void)
{
    knit__ctx_switch(&co_ctx, &main_ctx);
}

/* ---- ping-pong ---------------------------------------------------------- */

static void ping_pong_body(void)
{
    for (long i = 0; i < PING_PONGS; i++) {
        co_val++;
        to_main();
    }
}

static void check_ping_pong(void)
{
    co_val = 0;
    co_start(ping_pong_body);
    for (long i = 0; i < PING_PONGS; i++) {
        to_co();
        CHECK(co_val == i + 1);
    }
    CHECK(!co_done);
    to_co();
    CHECK(co_done);
}

/* ---- callee-saved registers --------------------------------------------- */

struct live_digest {
    unsigned long i; /* integer locals */
    double d;        /* double locals */
};

/*
 * Same idea as live_run() in test_ctx.c: more live integers and doubles
 * than callee-saved registers (x19-x28 and d8-d15 on AArch64), all
 * different between the two peers at every switch. The round counter is
 * in memory and n is pseudo-random, so no register holds a value that
 * happens to be equal in both peers. Without a switch function it yields
 * the expected digest.
 */
static KNIT_NOINLINE struct live_digest live_run(void (*sw)(void), long k)
{
    unsigned long n = (unsigned long)k;
    unsigned long i0 = n + 1;
    unsigned long i1 = n * 3;
    unsigned long i2 = n ^ 0x5a5a;
    unsigned long i3 = n << 4;
    unsigned long i4 = n * n;
    unsigned long i5 = ~n;
    unsigned long i6 = n - 100;
    unsigned long i7 = n | 0x100;
    unsigned long i8 = n * 11;
    unsigned long i9 = n + 0x777;
    double d0 = (double)k * 0.5;
    double d1 = (double)k + 0.25;
    double d2 = (double)-k;
    double d3 = (double)k * 4.0;
    double d4 = 1.0 / 8.0;
    double d5 = (double)k - 1.5;
    double d6 = (double)(k * k);
    double d7 = (double)k * 0.125;
    double d8 = (double)k * 8.0;
    double d9 = (double)k - 0.75;
    volatile long left = LIVE_ROUNDS;
    struct live_digest r;

    while (left-- > 0) {
        double x;

        n = n * 6364136223846793005UL + 1442695040888963407UL;
        x = (double)(n >> 54);
        i0 = i0 * 31 + n;
        i1 ^= i0 >> 3;
        i2 += i1 * 7;
        i3 = (i3 ^ i2) + n;
        i4 -= i3 >> 1;
        i5 += i4 ^ n;
        i6 = i6 * 5 + i5;
        i7 ^= i6 + i0;
        i8 += i7 >> 5;
        i9 ^= i8 * 3;
        d0 += x * 0.5;
        d1 -= x * 0.25;
        d2 += d0 * 0.125;
        d3 -= d1 * 0.0625;
        d4 += x + d0;
        d5 -= x * 2.0 - d1;
        d6 += d2 * 0.5;
        d7 -= d3 * 0.25;
        d8 += d7 * 0.5 + x;
        d9 -= d8 * 0.125;
        if (sw)
            sw();
    }
    r.i = i0 ^ i1 ^ i2 ^ i3 ^ i4 ^ i5 ^ i6 ^ i7 ^ i8 ^ i9 ^ n;
    r.d = d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9;
    return r;
}

static struct live_digest co_digest;

static void callee_saved_body(void)
{
    co_digest = live_run(to_main, seed + 11);
}

static void check_callee_saved(void)
{
    struct live_digest main_want = live_run(NULL, seed);
    struct live_digest co_want = live_run(NULL, seed + 11);
    struct live_digest main_got;

    co_start(callee_saved_body);
    main_got = live_run(to_co, seed);
    CHECK(!co_done);
    to_co();
    CHECK(co_done);
    CHECK(main_got.i == main_want.i);
    CHECK(main_got.d == main_want.d);
    CHECK(co_digest.i == co_want.i);
    CHECK(co_digest.d == co_want.d);
    CHECK(main_want.i != co_want.i);
    CHECK(main_want.d != co_want.d);
}

/* ---- FP rounding mode ---------------------------------------------------- */

/*
 * The mode as arithmetic sees it, not only as fegetround() reports it:
 * 1/10 and -1/10 are inexact, and which neighbour each rounds to tells
 * the four modes apart. Long doubles are probed too because on x86-64
 * they use the x87 unit, which has its own control word (elsewhere they
 * follow the same control register as doubles). Returns an FE_* mode, or
 * -1 for a result that is neither neighbour.
 */
static int rounding_from(int pos_up, int pos_down, int neg_down, int neg_up)
{
    if (!(pos_up ^ pos_down) || !(neg_down ^ neg_up))
        return -1;
    if (pos_up && neg_down)
        return FE_TONEAREST;
    if (pos_up)
        return FE_UPWARD;
    if (neg_down)
        return FE_DOWNWARD;
    return FE_TOWARDZERO;
}

static KNIT_NOINLINE int rounding_from_double(void)
{
    volatile double one = 1.0;
    volatile double ten = 10.0;
    double pos = one / ten;
    double neg = one / -ten;

    return rounding_from(pos == 0.1, pos == nextafter(0.1, 0.0), neg == -0.1,
                         neg == nextafter(-0.1, 0.0));
}

static KNIT_NOINLINE int rounding_from_long_double(void)
{
    volatile long double one = 1.0L;
    volatile long double ten = 10.0L;
    long double pos = one / ten;
    long double neg = one / -ten;

    return rounding_from(pos == 0.1L, pos == nextafterl(0.1L, 0.0L),
                         neg == -0.1L, neg == nextafterl(-0.1L, 0.0L));
}

/* The current mode, or -1 if the units disagree. */
static int rounding_mode(void)
{
    int mode = fegetround();

    if (rounding_from_double() != mode)
        return -1;
    if (rounding_from_long_double() != mode)
        return -1;
    return mode;
}

static void rounding_body(void)
{
    co_seen[0] = rounding_mode();
    fesetround(FE_UPWARD);
    to_main();
    co_seen[1] = rounding_mode();
    fesetround(FE_TOWARDZERO);
    to_main();
    co_seen[2] = rounding_mode();
}

static void check_rounding(void)
{
    CHECK(rounding_mode() == FE_TONEAREST);
    co_start(rounding_body);
    to_co();
    CHECK(rounding_mode() == FE_TONEAREST);
    CHECK(fesetround(FE_DOWNWARD) == 0);
    to_co();
    CHECK(rounding_mode() == FE_DOWNWARD);
    CHECK(fesetround(FE_TONEAREST) == 0);
    to_co();
    CHECK(co_done);
    CHECK(rounding_mode() == FE_TONEAREST);
    CHECK(co_seen[0] == FE_TONEAREST);
    CHECK(co_seen[1] == FE_UPWARD);
    CHECK(co_seen[2] == FE_TOWARDZERO);
}

/* ---- stack alignment ----------------------------------------------------- */

static void alignment_body(void)
{
    /* 16-aligned iff entry got an ABI-aligned stack; see test_ctx.c. */
    _Alignas(16) volatile unsigned char probe[16];

    probe[0] = 1;
    co_val = (long)((uintptr_t)__builtin_frame_address(0) % 16);
    co_val |= (long)((uintptr_t)probe % 16) << 8;
}

static void check_alignment(void)
{
    unsigned char *base = stack;

    for (size_t skew = 0; skew < 16; skew++) {
        co_val = -1;
        co_body = alignment_body;
        co_done = 0;
        knit__ctx_make(&co_ctx, base + skew, STACK_SIZE - 2 * skew, co_entry,
                       &co_ctx);
        to_co();
        CHECK(co_done);
        CHECK(co_val == 0);
    }
}

int main(void)
{
    stack = malloc(STACK_SIZE);
    CHECK(stack != NULL);
    check_ping_pong();
    check_callee_saved();
    check_rounding();
    check_alignment();
    free(stack);
    puts("ctx_smoke: ok");
    return 0;
}
