// SPDX-License-Identifier: MIT
/*
 * knit-soak: the echo soak of issue 9. One process runs a knit TCP echo
 * server on 127.0.0.1 (an accept loop, a task per connection with an idle
 * timeout) and --clients client tasks that loop: connect, send messages of
 * random size (1 B .. 64 KiB), check each echo byte for byte, sometimes
 * close and reconnect, sometimes hang up mid-exchange. Every error is
 * counted by errno and the client reconnects after a short backoff.
 *
 * Run it with KNIT_FAULTS set (core/fault.h) to make the I/O calls fail
 * at random; bench/soak.sh does, in phases. It prints a progress line
 * every 10 s and one summary line at the end, and exits 1 when:
 *
 *   - an echo came back different from what was sent (corrupt > 0: data
 *     loss, as faults are injected before the kernel is asked);
 *   - no exchange succeeded;
 *   - an exchange or a connect did not end within STALL_MS / CONNECT_MS
 *     (stalls > 0: a lost wakeup, as no fault can legitimately park a
 *     connection that long; an injected ETIMEDOUT is no stall);
 *   - RSS at the end exceeds RSS after the warm-up by more than
 *     --rss-bound-mb (16 MiB by default; 0 skips the check);
 *   - fds or server connections are left over once every client is gone;
 *   - the run does not end within --seconds + 30 s (a watchdog thread).
 *
 * Not part of the test suite: see docs/soak.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <knit.h>
#include <knit/patterns.h>

#include "core/fault.h" /* knit__faults_injected: the internal counter */

#define MAX_MSG (64 * 1024) /* largest message */
#define IDLE_MS 5000        /* server: a silent connection is dropped */
#define STALL_MS 10000      /* client: one exchange must end within this */
#define CONNECT_MS 5000     /* client: one connect must end within this */
#define PROGRESS_S 10       /* a progress line every 10 s */
#define WATCHDOG_GRACE_S 30 /* the run must end within seconds + 30 s */
#define MAX_ERRNO 256       /* errors are counted per errno below this */

/* ---- counters (atomic: clients and connections run on every worker) ---- */

struct counters {
    atomic_ullong exchanges_ok; /* echoes checked equal */
    atomic_ullong bytes;        /* bytes sent and checked */
    atomic_ullong connects;     /* connections made by clients */
    atomic_ullong abandoned;    /* connections a client dropped on purpose */
    atomic_ullong corrupt;      /* echoes that differed */
    atomic_ullong stalls;       /* exchanges or connects that stalled */
    atomic_ullong accepted;     /* connections the server accepted */
    atomic_llong conns_live;    /* server connection tasks alive */
    atomic_ullong client_err[MAX_ERRNO];
    atomic_ullong server_err[MAX_ERRNO];
};

static struct counters ctr;
static atomic_bool stopping; /* the clients are being stopped */

static void count_err(atomic_ullong *table, int err)
{
    if (err < 0)
        err = -err;
    atomic_fetch_add(&table[err < MAX_ERRNO ? err : 0], 1);
}

/* The short name of @err; strerrorname_np is glibc-only (2.32). */
static const char *err_name(int err)
{
    static _Thread_local char buf[16];
    static const struct {
        int err;
        const char *name;
    } names[] = {
        {EINTR, "EINTR"},
        {EAGAIN, "EAGAIN"},
        {EMFILE, "EMFILE"},
        {ENFILE, "ENFILE"},
        {ENOBUFS, "ENOBUFS"},
        {ENOMEM, "ENOMEM"},
        {ECONNRESET, "ECONNRESET"},
        {EPIPE, "EPIPE"},
        {ECONNREFUSED, "ECONNREFUSED"},
        {ECONNABORTED, "ECONNABORTED"},
        {ETIMEDOUT, "ETIMEDOUT"},
        {ECANCELED, "ECANCELED"},
        {EBADF, "EBADF"},
        {EIO, "EIO"},
        {EPROTO, "EPROTO"},
        {ENOTCONN, "ENOTCONN"},
        {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].err == err)
            return names[i].name;
    snprintf(buf, sizeof(buf), "errno%d", err);
    return buf;
}

/* "ECONNRESET:12,EPIPE:3" (or "none") into @out. */
static void format_errs(atomic_ullong *table, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int e = 0; e < MAX_ERRNO; e++) {
        unsigned long long n = atomic_load(&table[e]);
        if (n && len < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s:%llu",
                                    len ? "," : "", err_name(e), n);
    }
    if (!len)
        snprintf(out, size, "none");
}

/* ---- process figures from /proc ----------------------------------------- */

/* A "Name:   N kB" field of /proc/self/status, in kB; -1 if absent. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Open fds of this process (the directory's own fd excluded). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* ---- the server ------------------------------------------------------- */

/* One connection: echo until end of file, an error or IDLE_MS of silence. */
static int serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16 * 1024]; /* on the task's stack (64 KiB by default) */
    for (;;) {
        /* The idle scope covers the write too: a client that stops
         * reading is dropped like one that stops writing. */
        knit_scope idle;
        knit_scope_enter(&idle, knit_now() + IDLE_MS);
        ssize_t n = knit_read(fd, buf, sizeof(buf));
        if (n > 0)
            n = knit_write_all(fd, buf, (size_t)n);
        knit_scope_exit(&idle);
        if (n == 0)
            break;
        if (n < 0) {
            /* Cancelled at the end of the run: not an error. */
            if (n != -ECANCELED)
                count_err(ctr.server_err, (int)n);
            break;
        }
    }
    knit_close(fd);
    atomic_fetch_sub(&ctr.conns_live, 1);
    return 0;
}

/* The accept loop: a task per connection, until cancelled. */
static int accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = knit_tcp_accept(lfd, NULL, NULL);
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0) {
            /* knit_tcp_accept handles EMFILE itself; anything it passes
             * on is counted and the loop goes on after a breath. */
            count_err(ctr.server_err, fd);
            knit_sleep(10);
            continue;
        }
        atomic_fetch_add(&ctr.accepted, 1);
        atomic_fetch_add(&ctr.conns_live, 1);
        knit_task *t = knit_spawn(serve_conn, (void *)(intptr_t)fd);
        if (!t) {
            atomic_fetch_sub(&ctr.conns_live, 1);
            count_err(ctr.server_err, ENOMEM);
            knit_close(fd);
            continue;
        }
        knit_detach(t);
    }
}

/* ---- the clients ------------------------------------------------------ */

struct client {
    int port;
    unsigned char *out, *in; /* MAX_MSG each */
    knit_task *task;
};

/* A message size: log-uniform over 1 B .. 64 KiB, so small and large
 * messages are both common (uniform would make nearly all of them big). */
static size_t msg_size(void)
{
    unsigned bits = (unsigned)(knit_random() % 17); /* 2^0 .. 2^16 */
    size_t hi = (size_t)1 << bits;
    size_t n = hi / 2 + (size_t)(knit_random() % (hi / 2 + 1));
    return n < 1 ? 1 : n > MAX_MSG ? MAX_MSG : n;
}

/* Fills @buf with bytes from a xorshift seeded by @seed: every message
 * differs, so a byte from another message (or another connection) shows. */
static void fill(unsigned char *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = (unsigned char)(s >> 56);
    }
}

/* What an exchange can end with besides 0 and -errno. */
enum { CORRUPT = 1, STALLED = 2 };

/*
 * One exchange on @fd: send @n bytes and read the echo. The whole message
 * is written before reading: 64 KiB fits in loopback's socket buffers
 * (tcp_rmem's default is 128 KiB), so writer and echo cannot deadlock.
 * Returns 0, CORRUPT, STALLED (the STALL_MS scope fired: an injected
 * -ETIMEDOUT is an error like any other, not a stall), or -errno.
 */
static int exchange(struct client *c, int fd, size_t n)
{
    fill(c->out, n, knit_random());
    knit_scope s;
    knit_scope_enter(&s, knit_now() + STALL_MS);
    ssize_t r = knit_write_all(fd, c->out, n);
    if (r >= 0)
        r = knit_read_exact(fd, c->in, n);
    int fired = knit_scope_exit(&s);
    if (r < 0)
        return fired == -ETIMEDOUT ? STALLED : (int)r;
    if (memcmp(c->in, c->out, n) != 0) {
        size_t at = 0;
        while (c->in[at] == c->out[at])
            at++;
        fprintf(stderr,
                "soak: CORRUPT echo: %zu-byte message differs at byte %zu "
                "(sent 0x%02x, got 0x%02x)\n",
                n, at, c->out[at], c->in[at]);
        return CORRUPT;
    }
    return 0;
}

/* Connects within CONNECT_MS: the fd, STALLED or -errno. */
static int connect_once(int port)
{
    knit_scope cs;
    knit_scope_enter(&cs, knit_now() + CONNECT_MS);
    int fd = knit_tcp_connect("127.0.0.1", port);
    int fired = knit_scope_exit(&cs);
    return fd < 0 && fired == -ETIMEDOUT ? -STALLED : fd;
}

static int client_main(void *arg)
{
    struct client *c = arg;
    knit_backoff bo;
    /* Reconnects wait 1 ms doubling to 100 ms, full jitter: short enough
     * to keep the load up, spread so the clients do not reconnect in
     * lockstep after the server shed them together. */
    knit_backoff_policy policy = {
        .initial_ms = 1, .max_ms = 100, .jitter = KNIT_JITTER_FULL};
    knit_backoff_init(&bo, &policy);
    while (!atomic_load(&stopping)) {
        int fd = connect_once(c->port);
        int err = fd == -STALLED ? STALLED : fd < 0 ? fd : 0;
        if (fd >= 0) {
            atomic_fetch_add(&ctr.connects, 1);
            /* 1 to 32 exchanges, then close and reconnect. */
            int rounds = 1 + (int)(knit_random() % 32);
            for (int i = 0; i < rounds && !err; i++) {
                size_t n = msg_size();
                /* One in 64: hang up mid-exchange, so the server meets
                 * resets and broken pipes from real peers too. */
                if (knit_random() % 64 == 0) {
                    knit_write_all(fd, c->out, n);
                    atomic_fetch_add(&ctr.abandoned, 1);
                    break;
                }
                err = exchange(c, fd, n);
                if (err == 0) {
                    atomic_fetch_add(&ctr.exchanges_ok, 1);
                    atomic_fetch_add(&ctr.bytes, n);
                    knit_backoff_reset(&bo);
                }
            }
            knit_close(fd);
        }
        if (err == CORRUPT)
            atomic_fetch_add(&ctr.corrupt, 1);
        else if (err == STALLED)
            atomic_fetch_add(&ctr.stalls, 1);
        else if (err == -ECANCELED && atomic_load(&stopping))
            break; /* the end of the run, not an error */
        else if (err < 0)
            count_err(ctr.client_err, err);
        if (err && knit_sleep(knit_backoff_next(&bo, 0)) < 0)
            break;
    }
    return 0;
}

/* ---- the run ---------------------------------------------------------- */

struct opts {
    int seconds, workers, clients, rss_bound_mb;
    int io; /* KNIT_IO_* */
    uint64_t seed;
};

struct result {
    long rss_start_kb, rss_warm_kb, rss_end_kb, rss_peak_kb;
    size_t heap_warm_kb, heap_end_kb; /* malloc's bytes in use (mallinfo2) */
    int fds_start, fds_end;
    long long conns_left;
    uint64_t seed;
    const char *io;
    double seconds;
};

static struct opts opt = {
    .seconds = 60, .workers = 2, .clients = 50, .rss_bound_mb = 16};
static struct result res;

static int stats_here(void *arg)
{
    return knit_rt_stats(arg);
}

/* "mapped/pooled" stacks of each worker (the counters are per worker, so
 * a task on each reads them): a pool that grows without bound shows. */
static void format_stacks(char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int w = 0; w < opt.workers && len < size; w++) {
        knit_stats st = {0};
        knit_task *t = knit_spawn_on(w, NULL, stats_here, &st);
        if (t)
            knit_join(t);
        len +=
            (size_t)snprintf(out + len, size - len, "%s%llu/%llu", w ? "," : "",
                             (unsigned long long)st.stacks_mapped,
                             (unsigned long long)st.stacks_pooled);
    }
}

static void progress(int64_t t0)
{
    char errs[1024], serrs[1024], stacks[256];
    format_stacks(stacks, sizeof(stacks));
    format_errs(ctr.client_err, errs, sizeof(errs));
    format_errs(ctr.server_err, serrs, sizeof(serrs));
    printf("soak progress: t=%llds exchanges_ok=%llu bytes=%llu connects=%llu "
           "errors=%s server_errors=%s faults_injected=%llu rss_kb=%ld "
           "heap_kb=%zu fds=%d conns=%lld stacks=%s\n",
           (long long)((knit_now() - t0) / 1000),
           (unsigned long long)atomic_load(&ctr.exchanges_ok),
           (unsigned long long)atomic_load(&ctr.bytes),
           (unsigned long long)atomic_load(&ctr.connects), errs, serrs,
           (unsigned long long)knit__faults_injected(), status_kb("VmRSS"),
           mallinfo2().uordblks / 1024, count_fds(),
           (long long)atomic_load(&ctr.conns_live), stacks);
    fflush(stdout);
}

/* A listener despite random socket faults: a few tries. */
static int listen_retry(void)
{
    int lfd = -EIO;
    for (int i = 0; i < 100 && lfd < 0; i++)
        lfd = knit_tcp_listen("127.0.0.1", 0, 1024);
    return lfd;
}

static int soak_main(void *arg)
{
    (void)arg;
    knit_stats st;
    knit_rt_stats(&st);
    res.seed = st.seed;
    res.io = st.io_backend;
    int lfd = listen_retry();
    if (lfd < 0) {
        fprintf(stderr, "soak: listen: %s\n", strerror(-lfd));
        return lfd;
    }
    /* After the listener: the first one opens knit's reserve fd. */
    res.fds_start = count_fds();
    knit_task *server = knit_spawn(accept_loop, (void *)(intptr_t)lfd);
    struct client *cl = calloc((size_t)opt.clients, sizeof(*cl));
    if (!server || !cl)
        return -ENOMEM;
    for (int i = 0; i < opt.clients; i++) {
        cl[i].port = knit_local_port(lfd);
        cl[i].out = malloc(MAX_MSG);
        cl[i].in = malloc(MAX_MSG);
        if (!cl[i].out || !cl[i].in ||
            !(cl[i].task = knit_spawn(client_main, &cl[i])))
            return -ENOMEM;
    }

    /* The warm-up (a quarter of the run, at most 10 s) fills the stack
     * pool and the allocator's arenas: RSS growth is measured from there. */
    int64_t t0 = knit_now(), end = t0 + (int64_t)opt.seconds * 1000;
    int64_t warm = t0 + (opt.seconds < 40 ? opt.seconds * 250 : 10000);
    int64_t next = t0 + PROGRESS_S * 1000;
    bool warmed = false;
    while (knit_now() < end) {
        int64_t wake = next < end ? next : end;
        if (!warmed && warm < wake)
            wake = warm;
        knit_sleep_until(wake);
        if (!warmed && knit_now() >= warm) {
            res.rss_warm_kb = status_kb("VmRSS");
            res.heap_warm_kb = mallinfo2().uordblks / 1024;
            warmed = true;
        }
        if (knit_now() >= next) {
            progress(t0);
            next += PROGRESS_S * 1000;
        }
    }
    res.rss_end_kb = status_kb("VmRSS"); /* still under full load */
    res.heap_end_kb = mallinfo2().uordblks / 1024;
    res.seconds = (double)(knit_now() - t0) / 1000.0;

    /* Stop: cancel the clients (their calls return -ECANCELED and they
     * close their fds), then let the server's tasks see the end of file. */
    atomic_store(&stopping, true);
    for (int i = 0; i < opt.clients; i++) {
        knit_cancel(cl[i].task);
        knit_join(cl[i].task);
        free(cl[i].out);
        free(cl[i].in);
    }
    free(cl);
    for (int i = 0; i < (IDLE_MS + 2000) / 10 && atomic_load(&ctr.conns_live);
         i++)
        knit_sleep(10);
    res.conns_left = atomic_load(&ctr.conns_live);
    res.fds_end = count_fds();
    knit_cancel(server);
    knit_join(server);
    knit_close(lfd);
    return 0;
}

/* Ends a run that hangs: nothing else may stop knit_run from outside. */
static void *watchdog(void *arg)
{
    (void)arg;
    struct timespec ts = {.tv_sec = opt.seconds + WATCHDOG_GRACE_S};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    fprintf(stderr,
            "soak echo: HUNG: the run did not end within %d s; "
            "exchanges_ok=%llu conns=%lld\n",
            opt.seconds + WATCHDOG_GRACE_S,
            (unsigned long long)atomic_load(&ctr.exchanges_ok),
            (long long)atomic_load(&ctr.conns_live));
    _exit(1);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: knit-soak [--seconds N] [--workers W] [--clients C]\n"
               "                 [--rss-bound-mb M] [--seed S] [--io B]\n"
               "  --seconds N       run time, 1..600 (60)\n"
               "  --workers W       knit workers, 1..64 (2)\n"
               "  --clients C       client tasks, 1..10000 (50)\n"
               "  --rss-bound-mb M  fail when RSS grows more than M MiB after\n"
               "                    the warm-up; 0 = no check (16)\n"
               "  --seed S          knit's seed (message sizes, backoff); 0 = "
               "random\n"
               "  --io B            I/O backend: auto, epoll or uring (auto)\n"
               "Faults come from KNIT_FAULTS (see docs/soak.md). Exit status 0 "
               "ok, 1 failed, 2 bad usage.\n");
}

/* Parses @s into *@out if it lies in [@lo, @hi]. */
static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"seconds", required_argument, NULL, 's'},
        {"workers", required_argument, NULL, 'w'},
        {"clients", required_argument, NULL, 'c'},
        {"rss-bound-mb", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'S'},
        {"io", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int o;
    bool ok = true;
    while ((o = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (o) {
        case 's':
            ok = parse_int(optarg, 1, 600, &opt.seconds);
            break;
        case 'w':
            ok = parse_int(optarg, 1, 64, &opt.workers);
            break;
        case 'c':
            ok = parse_int(optarg, 1, 10000, &opt.clients);
            break;
        case 'r':
            ok = parse_int(optarg, 0, 1 << 20, &opt.rss_bound_mb);
            break;
        case 'S':
            opt.seed = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            opt.io = strcmp(optarg, "epoll") == 0   ? KNIT_IO_EPOLL
                     : strcmp(optarg, "uring") == 0 ? KNIT_IO_URING
                     : strcmp(optarg, "auto") == 0  ? KNIT_IO_AUTO
                                                    : -1;
            ok = opt.io >= 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            ok = false;
        }
        if (!ok)
            break;
    }
    if (!ok || optind < argc) {
        usage(stderr);
        return 2;
    }

    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0) {
        perror("soak: watchdog");
        return 1;
    }
    pthread_detach(wd);

    const char *spec = getenv("KNIT_FAULTS");
    res.rss_start_kb = status_kb("VmRSS");
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.workers = opt.workers;
    cfg.seed = opt.seed;
    cfg.io = opt.io;
    /* Stall reports measure scheduling, not faults: off, or a loaded
     * machine (or ASan) would flood the log. */
    cfg.stall_ms = -1;
    printf("soak echo: %d s, %d workers, %d clients, KNIT_FAULTS=\"%s\"\n",
           opt.seconds, opt.workers, opt.clients, spec ? spec : "");
    fflush(stdout);
    int r = knit_run(&cfg, soak_main, NULL);
    /* VmHWM comes from per-thread counters the kernel folds in lazily: it
     * can lag a VmRSS sample by a few hundred kB, so take the larger. */
    res.rss_peak_kb = status_kb("VmHWM");
    if (res.rss_peak_kb < res.rss_end_kb)
        res.rss_peak_kb = res.rss_end_kb;

    char errs[1024], serrs[1024];
    format_errs(ctr.client_err, errs, sizeof(errs));
    format_errs(ctr.server_err, serrs, sizeof(serrs));
    unsigned long long okx = atomic_load(&ctr.exchanges_ok);
    unsigned long long corrupt = atomic_load(&ctr.corrupt);
    unsigned long long stalls = atomic_load(&ctr.stalls);
    long growth_kb = res.rss_end_kb - res.rss_warm_kb;
    bool rss_ok =
        opt.rss_bound_mb == 0 || growth_kb <= opt.rss_bound_mb * 1024L;
    bool fds_ok = res.fds_end <= res.fds_start && res.conns_left == 0;
    bool pass =
        r == 0 && corrupt == 0 && okx > 0 && stalls == 0 && rss_ok && fds_ok;
    printf("soak echo: seconds=%.0f exchanges_ok=%llu bytes=%llu connects=%llu "
           "abandoned=%llu accepted=%llu errors=%s server_errors=%s "
           "faults_injected=%llu stalls=%llu rss_start_kb=%ld "
           "rss_warm_kb=%ld rss_end_kb=%ld rss_peak_kb=%ld heap_warm_kb=%zu "
           "heap_end_kb=%zu "
           "rss_bound_kb=%ld fds_start=%d fds_end=%d conns_left=%lld "
           "corrupt=%llu seed=%llu io=%s result=%s\n",
           res.seconds, okx, (unsigned long long)atomic_load(&ctr.bytes),
           (unsigned long long)atomic_load(&ctr.connects),
           (unsigned long long)atomic_load(&ctr.abandoned),
           (unsigned long long)atomic_load(&ctr.accepted), errs, serrs,
           (unsigned long long)knit__faults_injected(), stalls,
           res.rss_start_kb, res.rss_warm_kb, res.rss_end_kb, res.rss_peak_kb,
           res.heap_warm_kb, res.heap_end_kb, opt.rss_bound_mb * 1024L,
           res.fds_start, res.fds_end, res.conns_left, corrupt,
           (unsigned long long)res.seed, res.io ? res.io : "?",
           pass ? "ok" : "FAIL");
    if (r != 0)
        fprintf(stderr, "soak: knit_run: %s\n", strerror(r < 0 ? -r : r));
    if (!rss_ok)
        fprintf(stderr,
                "soak: RSS grew by %ld kB after the warm-up (bound "
                "%d MiB)\n",
                growth_kb, opt.rss_bound_mb);
    if (!fds_ok)
        fprintf(stderr, "soak: %d fds and %lld connections left over\n",
                res.fds_end - res.fds_start, res.conns_left);
    return pass ? 0 : 1;
}
