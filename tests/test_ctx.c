// SPDX-License-Identifier: MIT
/*
 * Tests for the machine context switch (src/core/ctx.h), run against
 * whichever backend the build chose: assembly or ucontext.
 *
 * The file holds a tiny coroutine harness (struct co) and then one case
 * per property the scheduler relies on: switches are exact (ping-pong
 * counter), registers and FP control words belong to their context,
 * entry runs on an ABI-aligned stack, more than two contexts can chain,
 * and a finished context's stack can be made again.
 *
 * The scheduler normally tells the sanitizers about stack changes
 * (src/core/task.c); these tests call ctx.h directly, so the harness does
 * the ASan and TSan fiber annotations itself. Assertions run on the main
 * stack only: coroutines record what they saw, and the main context checks
 * it, so a failure never unwinds from a foreign stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fenv.h>
#include <math.h>
#include <stdlib.h>

#include "core/compiler.h"
#include "core/ctx.h"

#if defined(KNIT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(KNIT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#define STACK_SIZE (64 * 1024)

/* One context: the main one (stack == NULL) or a coroutine. */
struct co {
    struct knit_ctx ctx;     /* machine state while suspended */
    void (*fn)(struct co *); /* body, runs on the coroutine's stack */
    struct co *exit_to;      /* resumed once fn has returned */
    void *stack;             /* lowest address; NULL for main */
    size_t size;             /* stack bytes */
    int done;                /* fn has returned */
    long val;                /* per-test input or result */
    void *user;              /* per-test shared state */
#if defined(KNIT_ASAN)
    void *fake;         /* ASan fake stack kept while suspended */
    const void *bottom; /* stack bounds as ASan knows them */
    size_t asan_size;   /* learned on the first switch away, for main */
#endif
#if defined(KNIT_TSAN)
    void *fiber; /* TSan's view of this context */
#endif
};

static struct co main_co;

/* The context that switched last; its target reads it on arrival. */
static struct co *switched_from;

/* Volatile so the compiler cannot fold the tests' arithmetic away. */
static volatile long seed = 7;

static void co_arrived(struct co *self)
{
#if defined(KNIT_ASAN)
    struct co *prev = switched_from;

    /* Records main's stack bounds, unknown until it first switches. */
    __sanitizer_finish_switch_fiber(self->fake, &prev->bottom,
                                    &prev->asan_size);
#else
    (void)self;
#endif
}

static void co_switch(struct co *from, struct co *to)
{
#if defined(KNIT_ASAN)
    __sanitizer_start_switch_fiber(&from->fake, to->bottom, to->asan_size);
#endif
#if defined(KNIT_TSAN)
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    switched_from = from;
    knit__ctx_switch(&from->ctx, &to->ctx);
    co_arrived(from);
}

/* The last switch of a coroutine: nothing resumes it afterwards. */
static KNIT_NORETURN void co_exit(struct co *self, struct co *to)
{
#if defined(KNIT_ASAN)
    /* NULL: the fake stack of a dead context can be freed at once. */
    __sanitizer_start_switch_fiber(NULL, to->bottom, to->asan_size);
#endif
#if defined(KNIT_TSAN)
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    switched_from = self;
    knit__ctx_switch(&self->ctx, &to->ctx);
    abort();
}

static void co_entry(void *arg)
{
    struct co *self = arg;

    co_arrived(self);
    self->fn(self);
    self->done = 1;
    co_exit(self, self->exit_to);
}

/* Prepares @c to run fn on [lo, lo + size); @c may have run before. */
static void co_make(struct co *c, void *lo, size_t size,
                    void (*fn)(struct co *), struct co *exit_to)
{
    c->fn = fn;
    c->exit_to = exit_to;
    c->done = 0;
#if defined(KNIT_ASAN)
    /* Frames of a previous run never returned, so they are still poisoned. */
    ASAN_UNPOISON_MEMORY_REGION(lo, size);
    c->fake = NULL;
    c->bottom = lo;
    c->asan_size = size;
#endif
#if defined(KNIT_TSAN)
    /* A fresh fiber: the old one still holds the dead run's call stack. */
    if (c->fiber)
        __tsan_destroy_fiber(c->fiber);
    c->fiber = __tsan_create_fiber(0);
#endif
    knit__ctx_make(&c->ctx, lo, size, co_entry, c);
}

static struct co *co_new(void (*fn)(struct co *), struct co *exit_to)
{
    struct co *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    c->size = STACK_SIZE;
    c->stack = malloc(c->size);
    assert_non_null(c->stack);
    co_make(c, c->stack, c->size, fn, exit_to);
    return c;
}

static void co_free(struct co *c)
{
#if defined(KNIT_TSAN)
    __tsan_destroy_fiber(c->fiber);
#endif
    free(c->stack);
    free(c);
}

static int group_setup(void **state)
{
    (void)state;
#if defined(KNIT_TSAN)
    main_co.fiber = __tsan_get_current_fiber();
#endif
    return 0;
}

/* ---- ping-pong ---------------------------------------------------------- */

#define PING_PONGS 1000000L

static void ping_pong_body(struct co *self)
{
    for (long i = 0; i < PING_PONGS; i++) {
        self->val++;
        co_switch(self, &main_co);
    }
}

static void ping_pong_with_main_a_million_times_keeps_count(void **state)
{
    struct co *c = co_new(ping_pong_body, &main_co);

    (void)state;
    for (long i = 0; i < PING_PONGS; i++) {
        co_switch(&main_co, c);
        if (c->val != i + 1)
            fail_msg("after switch %ld the counter is %ld", i, c->val);
    }
    assert_false(c->done);
    co_switch(&main_co, c);
    assert_true(c->done);
    assert_int_equal(c->val, PING_PONGS);
    co_free(c);
}

/* ---- callee-saved registers --------------------------------------------- */

#define LIVE_ROUNDS 1000

/* What live_run() computed, folded so two runs compare exactly. */
struct live_digest {
    unsigned long i; /* integer locals */
    double d;        /* double locals */
};

/*
 * Keeps eight integers and eight doubles live across every switch, at
 * least as many as there are callee-saved registers of each kind, so the
 * saved registers (and, on x86-64, spill slots) are all exercised. Every
 * step feeds on the previous value, so a clobber in any round changes the
 * digest. The round counter lives in memory and the step input n is a
 * pseudo-random sequence: a plain counter would hold the same value in
 * both peers at every switch (compilers rewrite "for (n = k; ...)" to
 * count from 0), hiding a register the switch forgot. With no peer it
 * runs the same code without switching, which yields the expected digest.
 */
static KNIT_NOINLINE struct live_digest live_run(struct co *self,
                                                 struct co *peer, long k)
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
    double d0 = (double)k * 0.5;
    double d1 = (double)k + 0.25;
    double d2 = (double)-k;
    double d3 = (double)k * 4.0;
    double d4 = 1.0 / 8.0;
    double d5 = (double)k - 1.5;
    double d6 = (double)(k * k);
    double d7 = (double)k * 0.125;
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
        d0 += x * 0.5;
        d1 -= x * 0.25;
        d2 += d0 * 0.125;
        d3 -= d1 * 0.0625;
        d4 += x + d0;
        d5 -= x * 2.0 - d1;
        d6 += d2 * 0.5;
        d7 -= d3 * 0.25;
        if (peer)
            co_switch(self, peer);
    }
    r.i = i0 ^ i1 ^ i2 ^ i3 ^ i4 ^ i5 ^ i6 ^ i7 ^ n;
    r.d = d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7;
    return r;
}

static void callee_saved_body(struct co *self)
{
    struct live_digest *got = self->user;

    *got = live_run(self, &main_co, seed + 11);
}

static void callee_saved_locals_survive_switches(void **state)
{
    struct live_digest co_got;
    struct co *c = co_new(callee_saved_body, &main_co);
    struct live_digest main_got;
    struct live_digest main_want = live_run(NULL, NULL, seed);
    struct live_digest co_want = live_run(NULL, NULL, seed + 11);

    (void)state;
    c->user = &co_got;
    /* Each of main's switches resumes the coroutine's previous one. */
    main_got = live_run(&main_co, c, seed);
    assert_false(c->done);
    co_switch(&main_co, c);
    assert_true(c->done);

    assert_int_equal(main_got.i, main_want.i);
    assert_true(main_got.d == main_want.d);
    assert_int_equal(co_got.i, co_want.i);
    assert_true(co_got.d == co_want.d);
    /* Different seeds must give different digests, or this proves little. */
    assert_int_not_equal(main_want.i, co_want.i);
    assert_true(main_want.d != co_want.d);
    co_free(c);
}

/* ---- FP rounding mode ---------------------------------------------------- */

/*
 * Reads the rounding mode back from arithmetic, not just from fegetround():
 * on x86-64 doubles use SSE (MXCSR) and long doubles the x87 unit (its
 * own control word), and fegetround() reads only one of the two. 1/10 and
 * -1/10 are inexact, and which neighbour each rounds to tells the four
 * modes apart. Returns an FE_* mode, or -1 for a result that is neither
 * neighbour.
 */
static int rounding_from(int pos_up, int pos_down, int neg_down, int neg_up)
{
    if (!(pos_up ^ pos_down) || !(neg_down ^ neg_up))
        return -1;
    /* Round to nearest takes 0.1's upper neighbour, as 0.1 itself does. */
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

static void rounding_body(struct co *self)
{
    int *seen = self->user;

    seen[0] = rounding_mode();
    fesetround(FE_UPWARD);
    co_switch(self, &main_co);
    seen[1] = rounding_mode();
    fesetround(FE_TOWARDZERO);
    co_switch(self, &main_co);
    seen[2] = rounding_mode();
}

static void each_context_keeps_its_own_rounding_mode(void **state)
{
    int seen[3] = {-2, -2, -2};
    struct co *c = co_new(rounding_body, &main_co);

    (void)state;
    c->user = seen;
    assert_int_equal(rounding_mode(), FE_TONEAREST);

    co_switch(&main_co, c);
    assert_int_equal(rounding_mode(), FE_TONEAREST);

    assert_int_equal(fesetround(FE_DOWNWARD), 0);
    co_switch(&main_co, c);
    assert_int_equal(rounding_mode(), FE_DOWNWARD);

    assert_int_equal(fesetround(FE_TONEAREST), 0);
    co_switch(&main_co, c);
    assert_true(c->done);
    assert_int_equal(rounding_mode(), FE_TONEAREST);

    /*
     * A new context starts in round to nearest: the assembly backends
     * set the process default, ucontext copies main's (nearest here).
     */
    assert_int_equal(seen[0], FE_TONEAREST);
    assert_int_equal(seen[1], FE_UPWARD);
    assert_int_equal(seen[2], FE_TOWARDZERO);
    co_free(c);
}

/* ---- stack alignment ----------------------------------------------------- */

static void alignment_body(struct co *self)
{
    /*
     * The compiler lays out frames assuming the ABI alignment at entry,
     * so a misaligned start shows up in every frame below it. The frame
     * address is 16-aligned exactly when the stack was: on x86-64 it is
     * rsp - 8 after the call pushed the return address (rsp % 16 == 8),
     * on AArch64 the frame record, a multiple of 16 below the entry sp.
     */
    _Alignas(16) volatile unsigned char probe[16];

    probe[0] = 1;
    self->val = (long)((uintptr_t)__builtin_frame_address(0) % 16);
    self->val |= (long)((uintptr_t)probe % 16) << 8;
}

static void entry_runs_on_an_abi_aligned_stack(void **state)
{
    struct co *c = co_new(alignment_body, &main_co);
    unsigned char *base = c->stack;

    (void)state;
    /* Stack bounds that are not themselves aligned must not matter. */
    for (size_t skew = 0; skew < 16; skew++) {
        c->val = -1;
        co_make(c, base + skew, STACK_SIZE - 2 * skew, alignment_body,
                &main_co);
        co_switch(&main_co, c);
        assert_true(c->done);
        assert_int_equal(c->val, 0);
    }
    co_free(c);
}

/* ---- ring of three ------------------------------------------------------- */

#define RING_ROUNDS 1000

struct ring {
    struct co *co[3];           /* the ring, in switching order */
    int trace[3 * RING_ROUNDS]; /* index of each coroutine as it ran */
    int n;                      /* entries in trace */
};

static void ring_body(struct co *self)
{
    struct ring *r = self->user;
    int id = (int)self->val;

    for (int i = 0; i < RING_ROUNDS; i++) {
        struct co *next = r->co[(id + 1) % 3];

        r->trace[r->n++] = id;
        /* The last one to run its last round hands back to main. */
        if (id == 2 && i == RING_ROUNDS - 1)
            next = &main_co;
        co_switch(self, next);
    }
}

static void three_coroutines_switch_in_a_ring(void **state)
{
    struct ring *r = calloc(1, sizeof(*r));

    (void)state;
    assert_non_null(r);
    for (int i = 0; i < 3; i++) {
        r->co[i] = co_new(ring_body, &main_co);
        r->co[i]->val = i;
        r->co[i]->user = r;
    }
    co_switch(&main_co, r->co[0]);

    assert_int_equal(r->n, 3 * RING_ROUNDS);
    for (int k = 0; k < r->n; k++)
        assert_int_equal(r->trace[k], k % 3);
    /* Each is parked in its last switch; resuming lets it finish. */
    for (int i = 0; i < 3; i++) {
        assert_false(r->co[i]->done);
        co_switch(&main_co, r->co[i]);
        assert_true(r->co[i]->done);
        co_free(r->co[i]);
    }
    free(r);
}

/* ---- re-make ------------------------------------------------------------- */

static void remake_body(struct co *self)
{
    long gen = self->val;

    /* Park once, so the stack holds a suspended frame before it ends. */
    self->val = -gen;
    co_switch(self, &main_co);
    self->val = gen * 10 + 1;
}

static void finished_coroutine_can_be_remade_on_its_stack(void **state)
{
    struct co *c = co_new(remake_body, &main_co);

    (void)state;
    for (long gen = 1; gen <= 5; gen++) {
        if (gen > 1)
            co_make(c, c->stack, c->size, remake_body, &main_co);
        assert_false(c->done);
        c->val = gen;
        co_switch(&main_co, c);
        assert_int_equal(c->val, -gen);
        assert_false(c->done);
        co_switch(&main_co, c);
        assert_true(c->done);
        assert_int_equal(c->val, gen * 10 + 1);
    }
    co_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_pong_with_main_a_million_times_keeps_count),
        cmocka_unit_test(callee_saved_locals_survive_switches),
        cmocka_unit_test(each_context_keeps_its_own_rounding_mode),
        cmocka_unit_test(entry_runs_on_an_abi_aligned_stack),
        cmocka_unit_test(three_coroutines_switch_in_a_ring),
        cmocka_unit_test(finished_coroutine_can_be_remade_on_its_stack),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
