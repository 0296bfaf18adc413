// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for channels, knit_select and knit_sem (knit/chan.h,
 * knit/select.h, knit/sync.h): an operation-sequence fuzzer checked
 * step by step against a reference model.
 *
 * Each input is one knit_run on the manual clock (one worker, fixed seed)
 * in which 2 to 5 worker tasks run programs over three channels (capacity
 * 1, capacity 3 and unbounded) and one semaphore. The first byte sets the
 * task count and the semaphore's permits; every following 4-byte record
 * is one operation of one task (see run_op): blocking and try_ sends and
 * receives, selects of 1-4 send, receive and deadline cases (biased or
 * not), closes, semaphore acquire / try_acquire / release / close, sleeps,
 * yields, advancing the clock, and cancelling another task's pending
 * operation. Blocking operations run inside a scope that may have a short
 * deadline, or may have fired already (the call must then fail at once).
 *
 * The model. The runtime has one worker and tasks switch only where they
 * park or yield, so the model is updated in the running task right before
 * each operation, in the same order as the runtime acts:
 *   - an operation that can complete at once (the model says how, and
 *     with which value) must return that, without a context switch;
 *   - one that must wait is queued in the model exactly as the channel or
 *     semaphore queues its waiter (FIFO, one waiter per select case), and
 *     must switch away; whatever later hands it a value, a permit, -EPIPE,
 *     a select deadline or its scope's expiry or cancellation records the
 *     outcome in the model, which the task compares with what its call
 *     returned when it resumes;
 *   - timers (scope deadlines, select deadline cases) fire in (deadline,
 *     arm order), as the wheel promises, before any task runs at that
 *     time; the model replays the ones due each time a task looks;
 *   - after every operation, each channel's length and closed flag and the
 *     semaphore's permits and closed flag must equal the model's.
 * So FIFO order per channel, closed channels draining then -EPIPE, try_
 * calls returning -EAGAIN exactly when the model says, the semaphore never
 * granting more than it holds, and selects firing only a ready case (the
 * first one when biased) are all checked exactly. Independently of the
 * model, every value is unique and counted: at the end each value whose
 * send succeeded was received exactly once, and no other value ever was.
 *
 * Ending: when every unfinished worker waits with no timer that could
 * wake it, the main task closes the channels and the semaphore (through
 * the model), which releases them; it then joins the workers, drains the
 * channels against the model and checks the counts.
 *
 * The channel and semaphore calls that enter the coop budget
 * (knit_chan_send / recv) could yield at the budget's end, between the
 * model's step and the runtime's: workers yield on their own well before
 * that (COOP_SAFE).
 *
 * Build: see fuzz/run.sh (links a libknit built with the same sanitizers).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCHAN 3
#define MAX_TASKS 5
#define MAX_CASES 4
#define MAX_OPS 600                          /* records read per input */
#define MAX_VALUES (MAX_OPS * MAX_CASES + 1) /* value 0 is never sent */
#define MAX_WAITERS (MAX_TASKS * MAX_CASES)  /* per queue */
#define MAX_TIMERS (MAX_TASKS * (MAX_CASES + 1))
#define COOP_SAFE 100 /* chan send/recv calls between yields (budget 128) */
#define PARKED 1      /* a model step's answer: the call waits */

static const size_t capacity[NCHAN] = {1, 3, 0};

/* ---- the model ----------------------------------------------------------- */

enum task_state {
    T_IDLE,   /* between operations (perhaps sleeping or yielded) */
    T_PARKED, /* waiting in an operation; its waiters are queued */
    T_WOKEN,  /* the operation's outcome is decided; not yet resumed */
    T_DONE,   /* its program has ended */
};

enum op_kind { K_SEND, K_RECV, K_SELECT, K_ACQUIRE };
enum case_kind { C_RECV, C_SEND, C_DEADLINE };

struct mcase {
    int kind;         /* enum case_kind */
    int chan;         /* C_RECV, C_SEND */
    uint32_t value;   /* C_SEND: the value offered; C_RECV: the one taken */
    int64_t deadline; /* C_DEADLINE */
};

struct mtask {
    int id;
    int state;      /* enum task_state */
    int op;         /* enum op_kind of the operation waiting or woken */
    int chan;       /* K_SEND, K_RECV */
    uint32_t value; /* K_SEND: the value; K_RECV: the value handed over */
    unsigned want;  /* K_ACQUIRE: permits asked for */
    int ncases;     /* K_SELECT */
    struct mcase cases[MAX_CASES];
    int fired;         /* K_SELECT: the case that took effect, or -1 */
    int result;        /* the outcome (a case's result for a select) */
    knit_scope *scope; /* the operation's scope while it runs, or NULL */
    unsigned coop;     /* chan send/recv calls since its last yield */
    const uint8_t *ops[MAX_OPS]; /* its records, 4 bytes each */
    int nops;
    knit_task *task;
};

/* One queued waiter: a task's plain operation (kase -1) or select case. */
struct mwaiter {
    int task;
    int kase;
};

struct mqueue {
    struct mwaiter w[MAX_WAITERS];
    int n;
};

struct mchan {
    uint32_t buf[MAX_VALUES]; /* buf[head..tail): never wraps, a value is
                                 pushed at most once */
    int head;
    int tail;
    bool closed;
    struct mqueue recvq; /* receivers waiting (buffer empty) */
    struct mqueue sendq; /* senders waiting (buffer full) */
};

struct mtimer {
    int64_t deadline;
    uint64_t seq; /* arm order */
    int task;
    int kase; /* -1: the operation's scope deadline; else a deadline case */
};

static struct fuzz {
    /* the real objects */
    knit_chan *chans[NCHAN];
    knit_sem sem;
    /* the model */
    struct mchan ch[NCHAN];
    struct mtask tasks[MAX_TASKS];
    int ntasks;
    int finished;
    uint64_t permits;
    bool sem_closed;
    struct mqueue semq; /* acquirers; their wanted permits in the task */
    struct mtimer timers[MAX_TIMERS];
    int ntimers;
    uint64_t timer_seq;
    /* the independent count */
    uint32_t next_value;
    bool sent[MAX_VALUES];        /* its send returned 0 */
    uint8_t received[MAX_VALUES]; /* receives that returned it */
    int step;                     /* operations run, for messages */
} fz;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fuzz_chan_ops: step %d, time %lld: ", fz.step,
            (long long)knit_now());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            fail("check failed at line %d: %s", __LINE__, #x);                 \
    } while (0)

static int chan_len(const struct mchan *c)
{
    return c->tail - c->head;
}

static bool has_room(int i)
{
    return capacity[i] == 0 || (size_t)chan_len(&fz.ch[i]) < capacity[i];
}

static void q_push(struct mqueue *q, int task, int kase)
{
    CHECK(q->n < MAX_WAITERS);
    q->w[q->n++] = (struct mwaiter){task, kase};
}

static struct mwaiter q_pop(struct mqueue *q)
{
    struct mwaiter w = q->w[0];

    q->n--;
    memmove(q->w, q->w + 1, (size_t)q->n * sizeof q->w[0]);
    return w;
}

/* Drops every waiter of task t from q. */
static void q_purge(struct mqueue *q, int t)
{
    int k = 0;

    for (int i = 0; i < q->n; i++)
        if (q->w[i].task != t)
            q->w[k++] = q->w[i];
    q->n = k;
}

static void timer_arm(int t, int kase, int64_t deadline)
{
    CHECK(fz.ntimers < MAX_TIMERS);
    fz.timers[fz.ntimers++] =
        (struct mtimer){deadline, fz.timer_seq++, t, kase};
}

static void timers_purge(int t)
{
    int k = 0;

    for (int i = 0; i < fz.ntimers; i++)
        if (fz.timers[i].task != t)
            fz.timers[k++] = fz.timers[i];
    fz.ntimers = k;
}

/*
 * Decides task t's waiting operation: it will return result (for a
 * select, as case kase's result). Its other waiters and timers go, as a
 * claimed select's losers no longer count.
 */
static void resolve(int t, int kase, int result)
{
    struct mtask *m = &fz.tasks[t];

    CHECK(m->state == T_PARKED);
    m->state = T_WOKEN;
    m->fired = kase;
    m->result = result;
    for (int i = 0; i < NCHAN; i++) {
        q_purge(&fz.ch[i].recvq, t);
        q_purge(&fz.ch[i].sendq, t);
    }
    q_purge(&fz.semq, t);
    timers_purge(t);
}

/* The value a waiting sender offers. */
static uint32_t offered(struct mwaiter w)
{
    const struct mtask *m = &fz.tasks[w.task];

    return w.kase < 0 ? m->value : m->cases[w.kase].value;
}

/* Hands v to a waiting receiver. */
static void deliver(struct mwaiter w, uint32_t v)
{
    struct mtask *m = &fz.tasks[w.task];

    if (w.kase < 0)
        m->value = v;
    else
        m->cases[w.kase].value = v;
    resolve(w.task, w.kase, 0);
}

/* knit_chan_try_send in the model: 0, -EAGAIN or -EPIPE. */
static int m_try_send(int i, uint32_t v)
{
    struct mchan *c = &fz.ch[i];

    if (c->closed)
        return -EPIPE;
    if (c->recvq.n > 0) {
        deliver(q_pop(&c->recvq), v);
        return 0;
    }
    if (!has_room(i))
        return -EAGAIN;
    CHECK(c->tail < MAX_VALUES);
    c->buf[c->tail++] = v;
    return 0;
}

/* knit_chan_try_recv in the model: 0 with *v, -EAGAIN or -EPIPE. */
static int m_try_recv(int i, uint32_t *v)
{
    struct mchan *c = &fz.ch[i];

    if (chan_len(c) > 0) {
        *v = c->buf[c->head++];
        if (c->sendq.n > 0) {
            /* The first waiting sender's value takes the freed slot. */
            struct mwaiter s = q_pop(&c->sendq);

            CHECK(c->tail < MAX_VALUES);
            c->buf[c->tail++] = offered(s);
            resolve(s.task, s.kase, 0);
        }
        return 0;
    }
    if (c->sendq.n > 0) {
        struct mwaiter s = q_pop(&c->sendq);

        *v = offered(s);
        resolve(s.task, s.kase, 0);
        return 0;
    }
    return c->closed ? -EPIPE : -EAGAIN;
}

static void m_chan_close(int i)
{
    struct mchan *c = &fz.ch[i];

    if (c->closed)
        return;
    c->closed = true;
    while (c->recvq.n > 0) {
        struct mwaiter w = q_pop(&c->recvq);

        resolve(w.task, w.kase, -EPIPE);
    }
    while (c->sendq.n > 0) {
        struct mwaiter w = q_pop(&c->sendq);

        resolve(w.task, w.kase, -EPIPE);
    }
}

/* Grants permits to the head of the queue while they cover its request. */
static void m_sem_serve(void)
{
    while (fz.semq.n > 0 && fz.tasks[fz.semq.w[0].task].want <= fz.permits) {
        struct mwaiter w = q_pop(&fz.semq);

        fz.permits -= fz.tasks[w.task].want;
        resolve(w.task, -1, 0);
    }
}

static int m_sem_try_acquire(unsigned n)
{
    if (fz.sem_closed)
        return -EPIPE;
    if (n == 0)
        return 0;
    if (fz.semq.n > 0 || fz.permits < n)
        return -EAGAIN;
    fz.permits -= n;
    return 0;
}

static void m_sem_close(void)
{
    if (fz.sem_closed)
        return;
    fz.sem_closed = true;
    while (fz.semq.n > 0) {
        struct mwaiter w = q_pop(&fz.semq);

        resolve(w.task, -1, -EPIPE);
    }
}

/* A waiting operation's scope fired (deadline or cancellation). */
static void m_cancel(int t, int err)
{
    struct mtask *m = &fz.tasks[t];

    if (m->state != T_PARKED)
        return; /* already decided: the scope no longer matters to it */
    resolve(t, -1, err);
    if (m->op == K_ACQUIRE)
        m_sem_serve(); /* the permits it was waiting for may serve others */
}

/* Fires the model's timers that are due, in (deadline, arm) order. */
static void model_sync(void)
{
    int64_t now = knit_now();

    for (;;) {
        int best = -1;

        for (int i = 0; i < fz.ntimers; i++) {
            const struct mtimer *x = &fz.timers[i];

            if (x->deadline <= now &&
                (best < 0 || x->deadline < fz.timers[best].deadline ||
                 (x->deadline == fz.timers[best].deadline &&
                  x->seq < fz.timers[best].seq)))
                best = i;
        }
        if (best < 0)
            return;
        struct mtimer x = fz.timers[best];

        fz.timers[best] = fz.timers[--fz.ntimers];
        if (x.kase < 0)
            m_cancel(x.task, -ETIMEDOUT);
        else if (fz.tasks[x.task].state == T_PARKED)
            resolve(x.task, x.kase, 0); /* the deadline case fires */
    }
}

/* ---- checks on the real objects ------------------------------------------ */

static uint64_t switches(void)
{
    knit_stats s;

    CHECK(knit_rt_stats(&s) == 0);
    return s.switches;
}

/* The real channels and semaphore look like the model's. */
static void check_objects(void)
{
    for (int i = 0; i < NCHAN; i++) {
        if (knit_chan_len(fz.chans[i]) != (size_t)chan_len(&fz.ch[i]))
            fail("channel %d holds %zu values, the model %d", i,
                 knit_chan_len(fz.chans[i]), chan_len(&fz.ch[i]));
        CHECK(knit_chan_is_closed(fz.chans[i]) == fz.ch[i].closed);
    }
    if (knit_sem_available(&fz.sem) != fz.permits)
        fail("the semaphore holds %zu permits, the model %llu",
             knit_sem_available(&fz.sem), (unsigned long long)fz.permits);
    CHECK(knit_sem_is_closed(&fz.sem) == fz.sem_closed);
}

static void on_sent(uint32_t v)
{
    CHECK(v > 0 && v < MAX_VALUES && !fz.sent[v]);
    fz.sent[v] = true;
}

static void on_received(uint32_t v)
{
    if (v == 0 || v >= MAX_VALUES)
        fail("received value %u, never sent", v);
    if (++fz.received[v] > 1)
        fail("value %u received twice", v);
}

/*
 * Compares a plain operation's outcome with the model's: expect is the
 * immediate result, or PARKED when the model queued the task.
 */
static int check_outcome(struct mtask *m, int expect, int r, bool switched)
{
    if (expect != PARKED) {
        if (switched)
            fail("task %d: the call switched away; the model completes it "
                 "at once with %d",
                 m->id, expect);
        if (r != expect)
            fail("task %d: returned %d at once, the model says %d", m->id, r,
                 expect);
        return expect;
    }
    if (!switched)
        fail("task %d: returned %d at once; the model says it waits", m->id, r);
    if (m->state != T_WOKEN)
        fail("task %d: returned %d while the model says it still waits", m->id,
             r);
    m->state = T_IDLE;
    if (r != m->result)
        fail("task %d: woke with %d, the model says %d", m->id, r, m->result);
    return r;
}

/* ---- the operations ------------------------------------------------------ */

static uint32_t new_value(void)
{
    CHECK(fz.next_value < MAX_VALUES);
    return fz.next_value++;
}

/* The scope a blocking operation runs in. */
struct op_scope {
    knit_scope s;
    bool entered;
    int err; /* it fired before the call: the call returns this at once */
};

/*
 * Enters the operation's scope as byte b says (b % 4): 0 none; 1 without
 * deadline (another task may cancel it); 2 a deadline 1-8 ms ahead; 3 the
 * same, or for (b >> 2) % 8 == 0 a deadline already passed and for 1 a
 * scope cancelled at once: the call inside must then fail at once, even
 * when it could complete.
 */
static void scope_enter(struct mtask *m, struct op_scope *x, uint8_t b)
{
    unsigned sub = (b >> 2) & 7;
    int64_t deadline;

    x->entered = false;
    x->err = 0;
    if ((b & 3) == 0)
        return;
    if ((b & 3) == 1 || ((b & 3) == 3 && sub == 1))
        deadline = KNIT_FOREVER;
    else if ((b & 3) == 3 && sub == 0)
        deadline = knit_now();
    else
        deadline = knit_now() + 1 + sub;
    knit_scope_enter(&x->s, deadline);
    x->entered = true;
    m->scope = &x->s;
    if (deadline == KNIT_FOREVER && sub == 1 && (b & 3) == 3) {
        knit_scope_cancel(&x->s);
        x->err = -ECANCELED;
    } else if (deadline == knit_now()) {
        x->err = -ETIMEDOUT;
    } else if (deadline != KNIT_FOREVER) {
        timer_arm(m->id, -1, deadline);
    }
}

static void scope_exit(struct mtask *m, struct op_scope *x)
{
    int err;

    if (!x->entered)
        return;
    m->scope = NULL;
    timers_purge(m->id); /* the scope's deadline, if the call did not wait */
    err = knit_scope_exit(&x->s);
    if (x->err && err != x->err)
        fail("task %d: scope fired with %d, exit says %d", m->id, x->err, err);
}

/* Queues task m's plain operation in q: it waits. */
static int park(struct mtask *m, int op, struct mqueue *q)
{
    m->state = T_PARKED;
    m->op = op;
    q_push(q, m->id, -1);
    return PARKED;
}

static void op_send(struct mtask *m, int i, uint8_t b)
{
    uint32_t v = new_value();
    struct op_scope x;
    uint64_t before;
    int expect;
    int r;

    scope_enter(m, &x, b);
    expect = x.err ? x.err : m_try_send(i, v);
    if (expect == -EAGAIN) {
        m->chan = i;
        m->value = v;
        expect = park(m, K_SEND, &fz.ch[i].sendq);
    }
    before = switches();
    r = knit_chan_send(fz.chans[i], &v);
    m->coop++;
    model_sync();
    r = check_outcome(m, expect, r, switches() != before);
    if (r == 0)
        on_sent(v);
    scope_exit(m, &x);
}

static void op_recv(struct mtask *m, int i, uint8_t b)
{
    uint32_t want = 0;
    uint32_t v = 0;
    struct op_scope x;
    uint64_t before;
    int expect;
    int r;

    scope_enter(m, &x, b);
    expect = x.err ? x.err : m_try_recv(i, &want);
    if (expect == -EAGAIN) {
        m->chan = i;
        expect = park(m, K_RECV, &fz.ch[i].recvq);
    }
    before = switches();
    r = knit_chan_recv(fz.chans[i], &v);
    m->coop++;
    model_sync();
    if (expect == PARKED)
        want = m->value;
    r = check_outcome(m, expect, r, switches() != before);
    if (r == 0) {
        if (v != want)
            fail("task %d: received %u from channel %d, the model says %u",
                 m->id, v, i, want);
        on_received(v);
    }
    scope_exit(m, &x);
}

static void op_try_send(struct mtask *m, int i)
{
    uint32_t v = new_value();
    int expect = m_try_send(i, v);
    int r = knit_chan_try_send(fz.chans[i], &v);

    if (r != expect)
        fail("task %d: try_send on channel %d returned %d, the model says %d",
             m->id, i, r, expect);
    if (r == 0)
        on_sent(v);
}

static void op_try_recv(struct mtask *m, int i)
{
    uint32_t want = 0;
    uint32_t v = 0;
    int expect = m_try_recv(i, &want);
    int r = knit_chan_try_recv(fz.chans[i], &v);

    if (r != expect)
        fail("task %d: try_recv on channel %d returned %d, the model says %d",
             m->id, i, r, expect);
    if (r == 0) {
        if (v != want)
            fail("task %d: try_recv got %u, the model says %u", m->id, v, want);
        on_received(v);
    }
}

/* Whether case c could complete without waiting, per the model. */
static bool case_ready(const struct mcase *c)
{
    const struct mchan *ch = &fz.ch[c->chan];

    switch (c->kind) {
    case C_RECV:
        return chan_len(ch) > 0 || ch->sendq.n > 0 || ch->closed;
    case C_SEND:
        return ch->closed || ch->recvq.n > 0 || has_room(c->chan);
    default:
        return c->deadline <= knit_now();
    }
}

/* Takes case k of a select that completed at once; returns its result. */
static int apply_ready_case(struct mcase *c)
{
    switch (c->kind) {
    case C_RECV:
        return m_try_recv(c->chan, &c->value);
    case C_SEND:
        return m_try_send(c->chan, c->value);
    default:
        return 0;
    }
}

/*
 * A select of n cases. Each 3-bit code picks a case: 0-2 receive from
 * that channel, 3-5 send to channel code - 3, 6 a deadline 1-4 ms ahead,
 * 7 a deadline already due.
 */
static void op_select(struct mtask *m, unsigned n, bool biased, unsigned codes,
                      uint8_t b)
{
    knit_case cases[MAX_CASES];
    uint32_t in[MAX_CASES] = {0};
    uint32_t out[MAX_CASES] = {0};
    struct mcase mc[MAX_CASES];
    bool ready[MAX_CASES];
    int first_ready = -1;
    struct op_scope x;
    uint64_t before;
    int fired;
    int expect = PARKED;

    for (unsigned k = 0; k < n; k++, codes >>= 3) {
        unsigned code = codes & 7;

        memset(&mc[k], 0, sizeof mc[k]);
        if (code < 3) {
            mc[k].kind = C_RECV;
            mc[k].chan = (int)code;
            cases[k] = knit_case_recv(fz.chans[code], &out[k]);
        } else if (code < 6) {
            mc[k].kind = C_SEND;
            mc[k].chan = (int)code - 3;
            mc[k].value = in[k] = new_value();
            cases[k] = knit_case_send(fz.chans[code - 3], &in[k]);
        } else {
            mc[k].kind = C_DEADLINE;
            mc[k].deadline =
                code == 7 ? knit_now() : knit_now() + 1 + ((b >> 4) & 3);
            cases[k] = knit_case_deadline(mc[k].deadline);
        }
    }
    scope_enter(m, &x, b);
    for (unsigned k = 0; k < n; k++) {
        ready[k] = case_ready(&mc[k]);
        if (ready[k] && first_ready < 0)
            first_ready = (int)k;
    }
    if (x.err) {
        /* A fired scope: the select fails before trying any case. */
        fired = knit_select(cases, (int)n);
        if (fired != x.err)
            fail("task %d: select in a fired scope returned %d, not %d", m->id,
                 fired, x.err);
        scope_exit(m, &x);
        return;
    }
    if (first_ready < 0) {
        /* Every case is registered, in order; the deadlines are armed. */
        m->state = T_PARKED;
        m->op = K_SELECT;
        m->ncases = (int)n;
        memcpy(m->cases, mc, n * sizeof mc[0]);
        for (unsigned k = 0; k < n; k++) {
            if (mc[k].kind == C_RECV)
                q_push(&fz.ch[mc[k].chan].recvq, m->id, (int)k);
            else if (mc[k].kind == C_SEND)
                q_push(&fz.ch[mc[k].chan].sendq, m->id, (int)k);
            else
                timer_arm(m->id, (int)k, mc[k].deadline);
        }
    }
    before = switches();
    fired =
        biased ? knit_select_biased(cases, (int)n) : knit_select(cases, (int)n);
    model_sync();
    if (first_ready >= 0) {
        /* It completes at once with a ready case: any, or the first. */
        if (switches() != before)
            fail("task %d: select switched away with case %d ready", m->id,
                 first_ready);
        if (fired < 0 || fired >= (int)n || !ready[fired])
            fail("task %d: select returned %d, not a ready case", m->id, fired);
        if (biased && fired != first_ready)
            fail("task %d: biased select fired case %d, not the first ready "
                 "%d",
                 m->id, fired, first_ready);
        expect = apply_ready_case(&mc[fired]);
        CHECK(expect != -EAGAIN);
    } else {
        if (switches() == before)
            fail("task %d: select returned %d at once with no case ready",
                 m->id, fired);
        if (m->state != T_WOKEN)
            fail("task %d: select returned %d while the model waits", m->id,
                 fired);
        m->state = T_IDLE;
        /* The model's case, or its error when the scope fired first. */
        if (fired != (m->fired >= 0 ? m->fired : m->result))
            fail("task %d: select returned %d, the model says %d", m->id, fired,
                 m->fired >= 0 ? m->fired : m->result);
        if (fired >= 0) {
            expect = m->result;
            mc[fired].value = m->cases[fired].value;
        }
    }
    if (fired >= 0) {
        int r = knit_case_result(&cases[fired]);

        if (r != expect)
            fail("task %d: select case %d result %d, the model says %d", m->id,
                 fired, r, expect);
        if (mc[fired].kind == C_SEND && r == 0)
            on_sent(in[fired]);
        if (mc[fired].kind == C_RECV && r == 0) {
            if (out[fired] != mc[fired].value)
                fail("task %d: select received %u, the model says %u", m->id,
                     out[fired], mc[fired].value);
            on_received(out[fired]);
        }
    }
    scope_exit(m, &x);
}

static void op_acquire(struct mtask *m, unsigned n, uint8_t b)
{
    struct op_scope x;
    uint64_t before;
    int expect;
    int r;

    scope_enter(m, &x, b);
    expect = x.err ? x.err : m_sem_try_acquire(n);
    if (expect == -EAGAIN) {
        m->want = n;
        expect = park(m, K_ACQUIRE, &fz.semq);
    }
    before = switches();
    r = knit_sem_acquire(&fz.sem, n);
    model_sync();
    check_outcome(m, expect, r, switches() != before);
    scope_exit(m, &x);
}

static void op_try_acquire(struct mtask *m, unsigned n)
{
    int expect = m_sem_try_acquire(n);
    int r = knit_sem_try_acquire(&fz.sem, n);

    if (r != expect)
        fail("task %d: sem try_acquire(%u) returned %d, the model says %d",
             m->id, n, r, expect);
}

/* Cancels task t's pending operation, if it has one. */
static void op_cancel(int t)
{
    struct mtask *x = &fz.tasks[t];

    if (!x->scope)
        return;
    m_cancel(t, -ECANCELED);
    knit_scope_cancel(x->scope);
}

/*
 * Runs one record of task m. Bits 0-2 and 6-7 of r[0] pick the operation
 * (modulo 14; bits 3-5 picked the task), r[1..3] are its arguments: r[1]
 * the channel, the permits or the like, r[2] the scope (scope_enter),
 * r[3] more select cases.
 */
static void run_op(struct mtask *m, const uint8_t *r)
{
    unsigned op = (unsigned)(r[0] & 7) | (unsigned)((r[0] >> 6) << 3);
    int i = r[1] % NCHAN;

    if (m->coop >= COOP_SAFE) {
        CHECK(knit_yield() == 0);
        m->coop = 0;
    }
    model_sync();
    switch (op % 14) {
    case 0:
        op_send(m, i, r[2]);
        break;
    case 1:
        op_recv(m, i, r[2]);
        break;
    case 2:
        op_try_send(m, i);
        break;
    case 3:
        op_try_recv(m, i);
        break;
    case 4:
        op_select(m, 1 + (r[1] & 3), r[1] & 4,
                  (unsigned)(r[1] >> 3) | (unsigned)r[3] << 5, r[2]);
        break;
    case 5:
        /* One time in four: closing is final, so random bytes should
         * not close every channel at once. */
        if ((r[2] & 3) == 0) {
            m_chan_close(i);
            knit_chan_close(fz.chans[i]);
        }
        break;
    case 6:
        op_acquire(m, r[1] & 3, r[2]);
        break;
    case 7:
        op_try_acquire(m, r[1] & 3);
        break;
    case 8:
        fz.permits += r[1] & 3;
        m_sem_serve();
        knit_sem_release(&fz.sem, r[1] & 3);
        break;
    case 9:
        if ((r[2] & 3) == 0) {
            m_sem_close();
            knit_sem_close(&fz.sem);
        }
        break;
    case 10:
        CHECK(knit_sleep(1 + (r[1] & 3)) == 0);
        m->coop = 0;
        break;
    case 11:
        CHECK(knit_yield() == 0);
        m->coop = 0;
        break;
    case 12:
        op_cancel(r[1] % fz.ntasks);
        break;
    default:
        knit_clock_advance(r[1] & 3);
        break;
    }
    model_sync();
    check_objects();
    fz.step++;
}

static int worker(void *arg)
{
    struct mtask *m = arg;

    for (int k = 0; k < m->nops; k++)
        run_op(m, m->ops[k]);
    m->state = T_DONE;
    fz.finished++;
    return 0;
}

/*
 * True when no unfinished worker can ever be woken: each waits with no
 * timer (the main task, sleeping, is the only other one).
 */
static bool all_stuck(void)
{
    for (int t = 0; t < fz.ntasks; t++) {
        if (fz.tasks[t].state == T_DONE)
            continue;
        if (fz.tasks[t].state != T_PARKED)
            return false;
        for (int i = 0; i < fz.ntimers; i++)
            if (fz.timers[i].task == t)
                return false;
    }
    return true;
}

static int fuzz_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < NCHAN; i++) {
        fz.chans[i] = knit_chan_new(sizeof(uint32_t), capacity[i]);
        CHECK(fz.chans[i] != NULL);
    }
    for (int t = 0; t < fz.ntasks; t++) {
        fz.tasks[t].task = knit_spawn(worker, &fz.tasks[t]);
        CHECK(fz.tasks[t].task != NULL);
    }
    /* Wait for the workers; release the ones that wait forever. */
    while (fz.finished < fz.ntasks) {
        CHECK(knit_sleep(50) == 0);
        model_sync();
        if (fz.finished < fz.ntasks && all_stuck()) {
            for (int i = 0; i < NCHAN; i++) {
                m_chan_close(i);
                knit_chan_close(fz.chans[i]);
            }
            m_sem_close();
            knit_sem_close(&fz.sem);
        }
    }
    for (int t = 0; t < fz.ntasks; t++)
        CHECK(knit_join(fz.tasks[t].task) == 0);
    check_objects();

    /* What is still buffered comes out in the model's order. */
    for (int i = 0; i < NCHAN; i++) {
        uint32_t want = 0;
        uint32_t v = 0;
        int expect;
        int r;

        do {
            expect = m_try_recv(i, &want);
            r = knit_chan_try_recv(fz.chans[i], &v);
            if (r != expect)
                fail("draining channel %d: %d, the model says %d", i, r,
                     expect);
            if (r == 0) {
                CHECK(v == want);
                on_received(v);
            }
        } while (r == 0);
        knit_chan_unref(fz.chans[i]);
    }
    /* Each value whose send succeeded was received once; no other was. */
    for (uint32_t v = 1; v < fz.next_value; v++) {
        if (fz.sent[v] && fz.received[v] != 1)
            fail("value %u was sent and received %u times", v, fz.received[v]);
        if (!fz.sent[v] && fz.received[v] != 0)
            fail("value %u was received but its send failed", v);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    knit_config cfg;
    size_t nrec;

    if (size < 1)
        return 0;
    memset(&fz, 0, sizeof fz);
    fz.ntasks = 2 + data[0] % 4;
    fz.next_value = 1;
    knit_sem_init(&fz.sem, (data[0] >> 2) & 3);
    fz.permits = (data[0] >> 2) & 3;
    for (int t = 0; t < fz.ntasks; t++)
        fz.tasks[t].id = t;
    /* Record k belongs to the task its bits 3-5 name. */
    nrec = (size - 1) / 4;
    if (nrec > MAX_OPS)
        nrec = MAX_OPS;
    for (size_t k = 0; k < nrec; k++) {
        const uint8_t *r = data + 1 + 4 * k;
        struct mtask *m = &fz.tasks[((r[0] >> 3) & 7) % fz.ntasks];

        m->ops[m->nops++] = r;
    }

    knit_config_default(&cfg);
    cfg.workers = 1;
    cfg.clock = KNIT_CLOCK_MANUAL;
    cfg.io = KNIT_IO_EPOLL;
    cfg.seed = 1;
    cfg.stall_ms = -1;
    CHECK(knit_run(&cfg, fuzz_main, NULL) == 0);
    return 0;
}
