// SPDX-License-Identifier: MIT
/*
 * Cancelling reads and writes in flight, 10^5 of them, on whichever I/O
 * backend the run uses (KNIT_IO=epoll|uring; CI runs both). With io_uring
 * a parked knit_read is a READ the kernel owns, into a buffer on the
 * reader's stack: cancelling it must not return before the kernel lets go
 * of that buffer (ASan would see the late write as stack-use-after-return
 * or a clobbered frame), and bytes the kernel did read must be returned,
 * never dropped. The test writes a numbered byte stream into 64 socket
 * pairs while readers are spawned and cancelled at random, then checks
 * that every byte written was read exactly once, in order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <cmocka.h>

#include "kt.h"

/* 64 x 1,600 = 102,400 reads and as many writes; TSan runs a sixteenth
 * of the reads and a twentieth of the writes (its fibers make each switch
 * ~50 times dearer, and a write round refills 64 sockets; fewer writes
 * would cancel too seldom for finish_storm's check), the other builds
 * all. An eighth of the reads took 107 s under TSan on a loaded machine.
 */
#if defined(__SANITIZE_THREAD__)
enum { PAIRS = 64, ROUNDS = 100, WROUNDS = 80, CHUNK = 48 };
#else
enum { PAIRS = 64, ROUNDS = 1600, WROUNDS = 1600, CHUNK = 48 };
#endif

struct pair {
    int fd[2];          /* fd[0] read by the tasks, fd[1] written */
    uint64_t written;   /* bytes written so far; byte k is k % 251 */
    uint64_t read;      /* bytes read so far, checked in order */
    int bad;            /* bytes that broke the sequence */
};

struct reader {
    struct pair *p;
    ssize_t result;
};

static uint64_t rng = 88172645463325252u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Fills @buf with the @n bytes of the sequence from position @at. */
static void sequence(unsigned char *buf, size_t n, uint64_t at)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)((at + i) % 251);
}

/* Opens every pair as a non-blocking socketpair; @sndbuf > 0 makes the
 * written end's send buffer that small, so that writers park. */
static void open_pairs(struct pair *pairs, int sndbuf)
{
    for (int i = 0; i < PAIRS; i++) {
        memset(&pairs[i], 0, sizeof(pairs[i]));
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                                    pairs[i].fd),
                         0);
        if (sndbuf > 0)
            setsockopt(pairs[i].fd[1], SOL_SOCKET, SO_SNDBUF, &sndbuf,
                       sizeof(sndbuf));
    }
}

static void check_bytes(struct pair *p, const unsigned char *b, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++, p->read++)
        if (b[i] != p->read % 251)
            p->bad++;
}

/* Reads up to @max bytes from @p's read end, checking the sequence. */
static void drain_some(struct pair *p, size_t max)
{
    unsigned char buf[4096];
    while (max > 0) {
        ssize_t n = read(p->fd[0], buf, max < sizeof(buf) ? max : sizeof(buf));
        if (n <= 0)
            return;
        check_bytes(p, buf, n);
        max -= (size_t)n;
    }
}

/*
 * The end of a storm: reads what is left in every pair, checks that every
 * byte written arrived once and in order, and that both outcomes (a
 * cancel, a completion) happened many times, or the test proved nothing.
 */
static void finish_storm(struct pair *pairs, uint64_t cancelled,
                         uint64_t completed)
{
    for (int i = 0; i < PAIRS; i++) {
        struct pair *p = &pairs[i];
        drain_some(p, SIZE_MAX);
        assert_int_equal(p->bad, 0);
        assert_int_equal(p->read, p->written);
        close(p->fd[0]);
        close(p->fd[1]);
    }
    assert_true(cancelled > 1000);
    assert_true(completed > 1000);
}

static int reader(void *arg)
{
    struct reader *r = arg;
    unsigned char buf[CHUNK]; /* the kernel writes here under io_uring */
    memset(buf, 0xAA, sizeof(buf));
    r->result = knit_read(r->p->fd[0], buf, sizeof(buf));
    if (r->result > 0)
        check_bytes(r->p, buf, r->result);
    return 0;
}

static void write_some(struct pair *p)
{
    unsigned char buf[CHUNK];
    size_t n = 1 + next() % CHUNK;
    sequence(buf, n, p->written);
    ssize_t w = knit_write(p->fd[1], buf, n);
    assert_true(w > 0);
    p->written += (uint64_t)w;
}

static int t_cancel_storm(void *arg)
{
    (void)arg;
    static struct pair pairs[PAIRS];
    open_pairs(pairs, 0);
    uint64_t cancelled = 0, completed = 0;
    struct reader rd[PAIRS];
    knit_task *t[PAIRS];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PAIRS; i++) {
            rd[i] = (struct reader){&pairs[i], 99};
            t[i] = knit_spawn(reader, &rd[i]);
            assert_non_null(t[i]);
        }
        /* Let some readers park (their reads go to the kernel). */
        for (int y = (int)(next() % 3); y > 0; y--)
            knit_yield();
        for (int i = 0; i < PAIRS; i++) {
            /* 0: data then cancel (a race), 1-2: cancel, 3: data only. */
            uint64_t dice = next() % 4;
            if (dice == 0 || dice == 3)
                write_some(&pairs[i]);
            if (dice != 3)
                knit_cancel(t[i]);
        }
        for (int i = 0; i < PAIRS; i++) {
            knit_join(t[i]);
            if (rd[i].result == -ECANCELED)
                cancelled++;
            else if (rd[i].result > 0 && rd[i].result != 99)
                completed++;
            else if (rd[i].result != 99) /* cancelled before it ran */
                fail_msg("read returned %zd", rd[i].result);
        }
    }
    /* Whatever is left in the sockets, read it here. */
    finish_storm(pairs, cancelled, completed);
    return 0;
}

static void cancelled_reads_lose_no_byte_and_touch_no_dead_stack(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_storm, NULL), 0);
}

/*
 * The same storm for writes: each pair's socket is kept full, so a writer
 * parks (under io_uring its SEND is the kernel's, from a buffer on the
 * writer's stack). Writers are cancelled at random while the other end
 * drains; every byte a writer reports sent must arrive once, in order,
 * and no byte may arrive that was not reported.
 */
struct sender {
    struct pair *p;
    ssize_t result;
};

static int sender(void *arg)
{
    struct sender *sd = arg;
    unsigned char buf[CHUNK]; /* the kernel reads from here */
    sequence(buf, sizeof(buf), sd->p->written);
    sd->result = knit_write(sd->p->fd[1], buf, sizeof(buf));
    memset(buf, 0xEE, sizeof(buf)); /* a late kernel read would see this */
    return 0;
}

/* Fills @p's socket with the sequence until the kernel says EAGAIN. */
static void fill(struct pair *p)
{
    unsigned char buf[CHUNK];
    for (;;) {
        sequence(buf, sizeof(buf), p->written);
        ssize_t w = write(p->fd[1], buf, sizeof(buf));
        if (w <= 0)
            return;
        p->written += (uint64_t)w;
    }
}

static int t_cancel_write_storm(void *arg)
{
    (void)arg;
    static struct pair pairs[PAIRS];
    open_pairs(pairs, 4096);
    uint64_t cancelled = 0, completed = 0;
    struct sender sd[PAIRS];
    knit_task *t[PAIRS];
    for (int round = 0; round < WROUNDS; round++) {
        for (int i = 0; i < PAIRS; i++) {
            fill(&pairs[i]);
            sd[i] = (struct sender){&pairs[i], 99};
            t[i] = knit_spawn(sender, &sd[i]);
            assert_non_null(t[i]);
        }
        for (int y = (int)(next() % 3); y > 0; y--)
            knit_yield();
        for (int i = 0; i < PAIRS; i++) {
            /* 0: room then cancel (a race), 1-2: cancel, 3: room only. */
            uint64_t dice = next() % 4;
            if (dice == 0 || dice == 3)
                drain_some(&pairs[i], 1 + next() % 8192);
            if (dice != 3)
                knit_cancel(t[i]);
        }
        for (int i = 0; i < PAIRS; i++) {
            if (sd[i].result == 99 || sd[i].result == -ECANCELED)
                drain_some(&pairs[i], 8192); /* let a parked one finish */
            knit_join(t[i]);
            if (sd[i].result == 99) {
                /* cancelled before it ran: wrote nothing */
            } else if (sd[i].result > 0) {
                pairs[i].written += (uint64_t)sd[i].result;
                completed++;
            } else if (sd[i].result == -ECANCELED) {
                cancelled++;
            } else {
                fail_msg("write returned %zd", sd[i].result);
            }
        }
    }
    finish_storm(pairs, cancelled, completed);
    return 0;
}

static void cancelled_writes_lose_no_byte_and_read_no_dead_stack(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_write_storm, NULL), 0);
}

/* A writer parked on a full socket, cancelled: nothing half-sent. */
struct writer {
    int fd;
    size_t len;
    ssize_t result;
    size_t done;
};

static int writer(void *arg)
{
    struct writer *w = arg;
    static unsigned char big[1 << 20];
    w->result = knit_write_all_partial(w->fd, big, w->len, &w->done);
    return 0;
}

static int t_write_cancel(void *arg)
{
    (void)arg;
    int fd[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd),
                     0);
    int small = 4096;
    setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    for (int round = 0; round < 200; round++) {
        struct writer w = {fd[1], 1 << 20, 99, 0};
        knit_task *t = knit_spawn(writer, &w);
        for (int y = (int)(next() % 4); y > 0; y--)
            knit_yield();
        knit_cancel(t);
        knit_join(t);
        assert_true(w.result == -ECANCELED || w.result == 99);
        /* Drain what it managed to send, and check the count. */
        size_t got = 0;
        static unsigned char buf[65536];
        ssize_t n;
        while ((n = read(fd[0], buf, sizeof(buf))) > 0)
            got += (size_t)n;
        assert_int_equal(got, w.done);
    }
    close(fd[0]);
    close(fd[1]);
    return 0;
}

static void cancelled_writes_report_what_they_sent(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_write_cancel, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cancelled_reads_lose_no_byte_and_touch_no_dead_stack),
        cmocka_unit_test(cancelled_writes_lose_no_byte_and_read_no_dead_stack),
        cmocka_unit_test(cancelled_writes_report_what_they_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
