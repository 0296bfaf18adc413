// SPDX-License-Identifier: MIT
/*
 * Whole-file helpers (knit/file.h): knit_file_read_all and
 * knit_file_write_all.
 *
 * Every call is one request record (struct freq) and a job on the FILE
 * blocking pool that does the calls that can block on a disk: open,
 * fstat, write, fsync, rename. Reading is done by the job too, unless the
 * caller's worker runs io_uring: then the job only opens the file and the
 * task reads it through completion reads (knit__io_op_run), parked
 * between chunks like any I/O wait.
 *
 * Ownership. A cancelled caller stops waiting while the job may run on
 * (nothing interrupts open(2) or write(2)), so the record is shared, as in
 * net/resolve.c: it holds two references, the caller's and the job's, and
 * the last to drop one frees the record with what it still owns (an open
 * fd, the buffer read so far, the copy of the data to write). The caller
 * tells the job it left through freq.state; the job then stops at its
 * next chunk and removes its temporary file. The rename is the write's
 * point of no return: the job claims it with the same atomic, so either
 * the caller left first (no rename happens) or the job committed first
 * (the caller waits for the end, shielded, and reports it). Data in the
 * caller's memory is never touched by a job it may leave: a write copies
 * the data into the record, and io_uring reads land in the record's
 * buffer and are waited for even when cancelled (knit__io_op_run).
 *
 * Divisions: system calls; the record; the pool job and waiting for it;
 * reading; writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "blocking/pool.h"
#include "core/sched.h"
#include "core/sys.h"
#include "io/driver.h"
#include "knit/file.h"
#include "knit/net.h"
#include "knit/scope.h"
#include "knit/select.h"
#include "knit/task.h"

/* One read or write; a cancelled caller waits for at most one read. */
#define CHUNK ((size_t)1 << 20)
/* The first buffer for a file whose size fstat cannot tell (/proc, FIFOs). */
#define UNKNOWN_SIZE_START 512
/* The longest file name kept in a temporary's name, so it fits NAME_MAX. */
#define TMP_BASE_MAX (NAME_MAX - 15)
/* Names tried for the temporary file before giving up with -EEXIST. */
#define TMP_TRIES 64
/* What job_run returns; a job that never ran ends with -ECANCELED. */
#define JOB_RAN 1

/* ---- system calls ------------------------------------------------------- */

/* -1/errno as -errno (src/core/sys.h's rule; they move there with the
 * fault-injection seam). EINTR is retried where a signal can cut in. */

static int sys_open(const char *path, int flags, mode_t mode)
{
    int fd;
    while ((fd = open(path, flags, mode)) < 0 && errno == EINTR)
        ;
    return fd < 0 ? -errno : fd;
}

static ssize_t sys_read(int fd, void *buf, size_t n)
{
    ssize_t r;
    while ((r = read(fd, buf, n)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -errno : r;
}

static ssize_t sys_write(int fd, const void *buf, size_t n)
{
    ssize_t r;
    while ((r = write(fd, buf, n)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -errno : r;
}

static int sys_fstat(int fd, struct stat *st)
{
    return fstat(fd, st) < 0 ? -errno : 0;
}

static int sys_fsync(int fd)
{
    return fsync(fd) < 0 ? -errno : 0;
}

static int sys_rename(const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

/* ---- the record --------------------------------------------------------- */

enum freq_state {
    FREQ_RUNNING,   /* the caller waits (or has not started a job) */
    FREQ_ABANDONED, /* the caller left: stop, undo, free */
    FREQ_COMMITTED, /* the job is renaming: the caller waits for it */
};

/* One call, shared by the calling task and its pool job. */
struct freq {
    atomic_int refs;             /* the caller's and the job's */
    atomic_int state;            /* enum freq_state */
    int (*work)(struct freq *r); /* what the job does */
    int err;                     /* work's result */
    int fd;                      /* an open file owned here, or -1 */
    int flags;                   /* write: KNIT_FILE_* */
    bool open_only;              /* read: the task reads (io_uring) */
    size_t max;                  /* read: the size limit, 0 none */
    size_t cap;                  /* read: the first buffer size (from fstat) */
    char *buf;        /* read: the data; write: the copy; owned here */
    size_t len;       /* bytes in buf */
    const void *data; /* write: what to write (buf, or the caller's) */
    char *tmp;        /* write: the temporary's path, in name[] */
    char name[];      /* the path, then room for the temporary's */
};

static struct freq *freq_new(const char *path, size_t extra)
{
    size_t plen = strlen(path) + 1;
    struct freq *r = knit__calloc(1, sizeof(*r) + plen + extra);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    atomic_init(&r->state, FREQ_RUNNING);
    r->fd = -1;
    memcpy(r->name, path, plen);
    return r;
}

static void freq_unref(struct freq *r)
{
    /* acq_rel: the last holder sees every write of the other one. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (r->fd >= 0)
        knit__sys_close(r->fd);
    free(r->buf);
    free(r);
}

/* ---- the pool job and waiting for it ------------------------------------ */

static bool abandoned(struct freq *r)
{
    return atomic_load(&r->state) == FREQ_ABANDONED;
}

/* The entry check of both calls: the scope's error, or 0; *@in_task
 * tells whether a task calls (else the work runs right here). */
static int call_enter(bool *in_task)
{
    struct knit_task *self = knit__task();
    *in_task = self != NULL;
    return self ? knit__scope_err(self) : 0;
}

/* Runs on a pool thread; touches only the record. */
static int job_run(void *arg)
{
    struct freq *r = arg;
    r->err = r->work(r);
    freq_unref(r);
    return JOB_RAN;
}

/*
 * The scope fired while @t, the job of @r, may still run: take it off the
 * queue if no thread has it yet, otherwise leave it to end (and free)
 * alone. Drops the job's reference when the job never runs; the caller
 * keeps its own.
 */
static void job_abandon(knit_task *t, struct freq *r)
{
    knit_cancel(t);
    if (t->state != KNIT_TASK_DONE) {
        knit_detach(t);
        return;
    }
    /* Ended, or unqueued and never to run: a join returns at once, even
     * in a fired scope. */
    if (knit_join(t) != JOB_RAN)
        freq_unref(r);
}

/*
 * Does r->work on the file pool, or right here outside a task. Return: 0
 * when the work ran (its result is r->err); -ENOMEM; -ECANCELED /
 * -ETIMEDOUT when the scope fired first (or the runtime ends). The caller
 * keeps its reference either way.
 */
static int freq_run(struct freq *r)
{
    if (!knit__task()) {
        r->err = r->work(r);
        return 0;
    }
    atomic_store(&r->refs, 2);
    knit_task *t = knit__spawn_blocking_in(KNIT_POOL_FILE, job_run, r);
    if (!t) {
        atomic_store(&r->refs, 1);
        return -ENOMEM;
    }
    int ran = 0;
    knit_case c = knit_case_join(t, &ran);
    int err = knit_select(&c, 1);
    if (err >= 0) {
        if (ran == JOB_RAN)
            return 0;
        freq_unref(r); /* cancelled before it ran: the runtime ends */
        return -ECANCELED;
    }
    int running = FREQ_RUNNING;
    if (atomic_compare_exchange_strong(&r->state, &running, FREQ_ABANDONED)) {
        job_abandon(t, r);
        return err;
    }
    /* The job is renaming: the outcome is decided, wait for it. */
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    ran = knit_join(t);
    knit_scope_exit(&shield);
    return ran == JOB_RAN ? 0 : -ECANCELED;
}

/* ---- reading ------------------------------------------------------------ */

/* The largest size accepted: @max, or no limit but the buffer's size. */
static size_t read_limit(const struct freq *r)
{
    return r->max && r->max < SIZE_MAX - 2 ? r->max : SIZE_MAX - 2;
}

/* Opens r's file for reading and sizes the buffer (r->cap) from fstat. */
static int read_open(struct freq *r)
{
    int fd = sys_open(r->name, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
    if (fd < 0)
        return fd;
    r->fd = fd;
    struct stat st;
    int err = sys_fstat(fd, &st);
    if (err)
        return err;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    size_t limit = read_limit(r);
    r->cap = UNKNOWN_SIZE_START;
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((uintmax_t)st.st_size > limit)
            return -EFBIG;
        /* The data, one byte to see the end without a realloc, the NUL. */
        r->cap = (size_t)st.st_size + 2;
    }
    if (r->cap > limit + 2)
        r->cap = limit + 2;
    return 0;
}

/* Reads up to n bytes at the file position; bytes, 0 at EOF, or -errno. */
typedef ssize_t (*read_fn)(int fd, void *buf, size_t n);
/* 0 to go on, or the error that stops the read. */
typedef int (*stop_fn)(struct freq *r);

/*
 * Reads r->fd to its end into r->buf (NUL-terminated), in chunks, asking
 * @stop before each. r->buf stays owned by the record on every path.
 */
static int read_loop(struct freq *r, read_fn rd, stop_fn stop)
{
    size_t limit = read_limit(r);
    size_t cap = r->cap;
    r->buf = knit__malloc(cap);
    if (!r->buf)
        return -ENOMEM;
    for (;;) {
        int err = stop(r);
        if (err)
            return err;
        if (cap - r->len < 2) {
            /* cap <= limit + 1 here, so the file may still fit. */
            size_t ncap = cap <= (limit + 2) / 2 ? cap * 2 : limit + 2;
            char *b = knit__realloc(r->buf, ncap);
            if (!b)
                return -ENOMEM;
            r->buf = b;
            cap = ncap;
        }
        size_t want = cap - r->len - 1;
        ssize_t n = rd(r->fd, r->buf + r->len, want < CHUNK ? want : CHUNK);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        r->len += (size_t)n;
        if (r->len > limit)
            return -EFBIG;
    }
    r->buf[r->len] = '\0';
    return 0;
}

static int stop_if_abandoned(struct freq *r)
{
    return abandoned(r) ? -ECANCELED : 0;
}

/* The job: open, and read too unless the task does (io_uring). */
static int read_work(struct freq *r)
{
    if (abandoned(r))
        return -ECANCELED; /* taken by a thread after the caller left */
    int err = read_open(r);
    if (err || r->open_only)
        return err;
    return read_loop(r, sys_read, stop_if_abandoned);
}

/* One io_uring read into the record's buffer, on the current worker. */
static ssize_t uring_read(int fd, void *buf, size_t n)
{
    struct knit_io_op op = {
        .opcode = KNIT_IO_OP_READ, .fd = fd, .buf = buf, .len = n};
    return knit__io_op_run(&knit__worker()->io, &op);
}

static int stop_if_scope_fired(struct freq *r)
{
    (void)r;
    return knit__scope_err(knit__task());
}

int knit_file_read_all(const char *path, size_t max, char **out, size_t *len)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!path || !out || !len)
        return -EINVAL;
    bool in_task;
    int err = call_enter(&in_task);
    if (err)
        return err;
    struct freq *r = freq_new(path, 0);
    if (!r)
        return -ENOMEM;
    r->work = read_work;
    r->max = max;
    /* On a completion backend the job only opens: the worker reads. */
    r->open_only = in_task && knit__worker()->io.ops->submit;
    err = freq_run(r);
    if (!err)
        err = r->err;
    if (!err && r->open_only) {
        /* The job has ended: the record is this task's alone. */
        err = read_loop(r, uring_read, stop_if_scope_fired);
        knit_close(r->fd); /* tells the driver, unlike the record's close */
        r->fd = -1;
    }
    if (!err) {
        *out = r->buf;
        *len = r->len;
        r->buf = NULL;
    }
    freq_unref(r); // NOLINT(clang-analyzer-unix.Malloc): two references
    return err;
}

/* ---- writing ------------------------------------------------------------ */

/* A name nobody else picks: a per-process count mixed with the clock. */
static uint32_t tmp_suffix(void)
{
    static atomic_uint_fast64_t count;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = atomic_fetch_add(&count, 1) + (uint64_t)getpid() * 1000003u +
                 (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u;
    x ^= x >> 31; /* splitmix64's finaliser */
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    return (uint32_t)(x >> 32);
}

/*
 * Creates r's temporary file ".<name>.knit-XXXXXXXX" beside the target,
 * with the target's permission bits when it is a regular file.
 */
static int tmp_create(struct freq *r)
{
    const char *path = r->name;
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dlen;
    int blen = (int)strnlen(base, TMP_BASE_MAX);
    r->tmp = r->name + strlen(path) + 1;
    struct stat st;
    bool keep_mode = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
    for (int i = 0; i < TMP_TRIES; i++) {
        /* dlen + blen + 15 characters and the NUL: freq_new made room. */
        memcpy(r->tmp, path, dlen);
        snprintf(r->tmp + dlen, (size_t)blen + 16, ".%.*s.knit-%08x", blen,
                 base, (unsigned)tmp_suffix());
        int fd =
            sys_open(r->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd == -EEXIST)
            continue;
        if (fd < 0) {
            r->tmp = NULL;
            return fd;
        }
        r->fd = fd;
        if (keep_mode && fchmod(fd, st.st_mode & 07777) < 0)
            return -errno;
        return 0;
    }
    r->tmp = NULL;
    return -EEXIST;
}

/* fsync of the directory holding r's target, so the rename is durable. */
static int sync_dir(const struct freq *r)
{
    const char *slash = strrchr(r->name, '/');
    char dir[PATH_MAX];
    if (!slash) {
        memcpy(dir, ".", 2);
    } else {
        size_t dlen = slash == r->name ? 1 : (size_t)(slash - r->name);
        if (dlen >= sizeof(dir))
            return -ENAMETOOLONG;
        memcpy(dir, r->name, dlen);
        dir[dlen] = '\0';
    }
    int fd = sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int err = sys_fsync(fd);
    knit__sys_close(fd);
    return err;
}

/* Writes the data to the temporary file, chunk by chunk. */
static int write_data(struct freq *r)
{
    const char *p = r->data;
    for (size_t done = 0; done < r->len;) {
        if (abandoned(r))
            return -ECANCELED;
        size_t n = r->len - done < CHUNK ? r->len - done : CHUNK;
        ssize_t w = sys_write(r->fd, p + done, n);
        if (w < 0)
            return (int)w;
        done += (size_t)w;
    }
    return 0;
}

/* The job: temporary file, data, fsync, close, then the rename. */
static int write_work(struct freq *r)
{
    if (abandoned(r))
        return -ECANCELED; /* taken by a thread after the caller left */
    int err = tmp_create(r);
    if (!err)
        err = write_data(r);
    if (!err && (r->flags & KNIT_FILE_SYNC))
        err = sys_fsync(r->fd);
    if (r->fd >= 0) {
        /* close reports late write errors (NFS, quotas). */
        int cerr = knit__sys_close(r->fd);
        r->fd = -1;
        if (!err)
            err = cerr;
    }
    int running = FREQ_RUNNING;
    if (!err &&
        !atomic_compare_exchange_strong(&r->state, &running, FREQ_COMMITTED))
        err = -ECANCELED; /* the caller left: no effect */
    if (!err)
        err = sys_rename(r->tmp, r->name);
    if (err) {
        if (r->tmp)
            unlink(r->tmp);
        return err;
    }
    if (r->flags & KNIT_FILE_SYNC)
        err = sync_dir(r);
    return err;
}

int knit_file_write_all(const char *path, const void *buf, size_t len,
                        int flags)
{
    if (!path || (!buf && len > 0) || (flags & ~KNIT_FILE_SYNC))
        return -EINVAL;
    bool in_task;
    int err = call_enter(&in_task);
    if (err)
        return err;
    size_t plen = strlen(path);
    struct freq *r = freq_new(path, plen + 16);
    if (!r)
        return -ENOMEM;
    r->work = write_work;
    r->flags = flags;
    r->len = len;
    r->data = buf;
    if (in_task && len > 0) {
        /* The job may outlive a cancelled caller and its buffer. */
        r->buf = knit__malloc(len);
        if (!r->buf) {
            freq_unref(r);
            return -ENOMEM;
        }
        memcpy(r->buf, buf, len);
        r->data = r->buf;
    }
    err = freq_run(r);
    if (!err)
        err = r->err;
    freq_unref(r); // NOLINT(clang-analyzer-unix.Malloc): two references
    return err;
}
