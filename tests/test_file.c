// SPDX-License-Identifier: MIT
/*
 * The whole-file helpers (knit/file.h): round trips of every size, the
 * errors, atomic replacement that leaves no temporary behind, and
 * cancellation while a pool job is stuck in open(2) or a read waits on a
 * FIFO. Every case runs on epoll (reads on the file pool) and on io_uring
 * (reads through completion reads), which is skipped where it does not
 * work. The files live in a directory made by the group setup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/sched.h"
#include "kt.h"

static char dir[64]; /* the test directory, made by setup */

/* @name inside the test directory, into @buf. */
static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* How many temporaries of knit_file_write_all are in @d. */
static int temporaries_in(const char *d)
{
    DIR *h = opendir(d);
    assert_non_null(h);
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(h)) != NULL)
        if (strstr(e->d_name, ".knit-"))
            n++;
    closedir(h);
    return n;
}

/* The pool jobs of this runtime that have not ended yet. */
static int jobs_in_flight(void)
{
    struct knit_rt *rt = knit__worker()->rt;
    return KNIT_LOCKED(rt->blocking_inflight);
}

/* Waits (real time) until every job left behind by a cancelled call has
 * ended, so the test ends with nothing alive. */
static void drain_jobs(void)
{
    while (jobs_in_flight() > 0) {
        usleep(1000);
        assert_int_equal(knit_yield(), 0);
    }
}

/* Whether thread @tid of this process is blocked in openat(2). */
static bool in_openat(const char *tid)
{
    char path[64 + NAME_MAX];
    snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false; /* the thread is gone */
    long nr = -1;
    int n = fscanf(f, "%ld", &nr); /* "running" for a running thread */
    fclose(f);
    return n == 1 && nr == SYS_openat;
}

/* Waits until a pool thread is blocked in openat(2) (on a FIFO). */
static void wait_blocked_in_open(void)
{
    for (;;) {
        DIR *h = opendir("/proc/self/task");
        assert_non_null(h);
        bool found = false;
        const struct dirent *e;
        while (!found && (e = readdir(h)) != NULL)
            found = e->d_name[0] != '.' && in_openat(e->d_name);
        closedir(h);
        if (found)
            return;
        usleep(1000);
        assert_int_equal(knit_yield(), 0);
    }
}

/* Opens @fifo for writing once its reader (a pool job) is in open(2). */
static int open_writer(const char *fifo)
{
    for (;;) {
        int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        assert_int_equal(errno, ENXIO);
        usleep(1000);
        assert_int_equal(knit_yield(), 0);
    }
}

/* Waits until the reader has taken everything written to the FIFO. */
static void wait_drained(int wfd)
{
    for (;;) {
        int n;
        assert_int_equal(ioctl(wfd, FIONREAD, &n), 0);
        if (n == 0)
            return;
        usleep(1000);
        assert_int_equal(knit_yield(), 0);
    }
}

static void expect_file(const char *path, const char *want, size_t wlen)
{
    char *got = NULL;
    size_t len = 99;
    assert_int_equal(knit_file_read_all(path, 0, &got, &len), 0);
    assert_non_null(got);
    assert_int_equal(len, wlen);
    assert_memory_equal(got, want, wlen);
    assert_int_equal(got[len], '\0');
    free(got);
}

/* ---- running on both backends ------------------------------------------- */

/* A cmocka case that runs @body on both backends. */
#define BOTH_BACKENDS(name, body)                                              \
    static void name(void **state)                                             \
    {                                                                          \
        (void)state;                                                           \
        kt_run_both(body, NULL);                                                        \
    }

/* ---- round trips -------------------------------------------------------- */

static int t_round_trip(void *arg)
{
    /* The backend asked for is the one that runs (and so reads). */
    (void)arg;
    int uring = kt_both_io() == KNIT_IO_URING;
    assert_int_equal(knit__worker()->io.ops->submit != NULL, uring);
    char p[128];
    path_in(p, sizeof(p), "round");
    assert_int_equal(knit_file_write_all(p, "hello\n", 6, 0), 0);
    expect_file(p, "hello\n", 6);
    /* Replacing it: the new contents, shorter, and no temporary left. */
    assert_int_equal(knit_file_write_all(p, "bye", 3, KNIT_FILE_SYNC), 0);
    expect_file(p, "bye", 3);
    assert_int_equal(temporaries_in(dir), 0);
    assert_int_equal(unlink(p), 0);
    return 0;
}

BOTH_BACKENDS(file_written_is_read_back_and_replaced_whole, t_round_trip)

static int t_empty(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "empty");
    assert_int_equal(knit_file_write_all(p, NULL, 0, 0), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    expect_file(p, "", 0);
    assert_int_equal(unlink(p), 0);
    return 0;
}

BOTH_BACKENDS(empty_file_reads_as_an_empty_nul_terminated_buffer, t_empty)

enum { BIG = 8 << 20 };

static int t_big(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "big");
    uint32_t *data = malloc(BIG);
    assert_non_null(data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < BIG / sizeof(*data); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = x;
    }
    assert_int_equal(knit_file_write_all(p, data, BIG, KNIT_FILE_SYNC), 0);
    expect_file(p, (const char *)data, BIG);
    /* A limit of exactly the size is enough; one byte less is not. */
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(knit_file_read_all(p, BIG, &got, &len), 0);
    assert_int_equal(len, BIG);
    free(got);
    assert_int_equal(knit_file_read_all(p, BIG - 1, &got, &len), -EFBIG);
    assert_null(got);
    assert_int_equal(len, 0);
    free(data);
    assert_int_equal(unlink(p), 0);
    return 0;
}

BOTH_BACKENDS(big_file_round_trips_in_chunks_with_its_content, t_big)

static int t_proc(void *arg)
{
    (void)arg;
    /* fstat says 0 bytes: the buffer grows as the data comes. */
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(knit_file_read_all("/proc/self/status", 0, &got, &len), 0);
    assert_true(len > 64);
    assert_int_equal(strlen(got), len);
    assert_non_null(strstr(got, "Name:"));
    free(got);
    assert_int_equal(knit_file_read_all("/proc/self/status", 16, &got, &len),
                     -EFBIG);
    assert_null(got);
    return 0;
}

BOTH_BACKENDS(file_of_unknown_size_is_read_to_its_end_within_max, t_proc)

/* ---- errors ------------------------------------------------------------- */

static int t_errors(void *arg)
{
    (void)arg;
    char p[128];
    char *got = (char *)"untouched";
    size_t len = 7;
    path_in(p, sizeof(p), "missing");
    assert_int_equal(knit_file_read_all(p, 0, &got, &len), -ENOENT);
    assert_null(got);
    assert_int_equal(len, 0);
    assert_int_equal(knit_file_read_all(dir, 0, &got, &len), -EISDIR);
    assert_null(got);
    path_in(p, sizeof(p), "small");
    assert_int_equal(knit_file_write_all(p, "0123456789", 10, 0), 0);
    assert_int_equal(knit_file_read_all(p, 9, &got, &len), -EFBIG);
    assert_int_equal(knit_file_read_all(p, 10, &got, &len), 0);
    free(got);
    char in_file[128];
    path_in(in_file, sizeof(in_file), "small/x"); /* a file as a directory */
    assert_int_equal(knit_file_read_all(in_file, 0, &got, &len), -ENOTDIR);
    assert_int_equal(knit_file_write_all(in_file, "x", 1, 0), -ENOTDIR);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(knit_file_read_all(NULL, 0, &got, &len), -EINVAL);
    assert_int_equal(knit_file_read_all(p, 0, NULL, &len), -EINVAL);
    assert_int_equal(knit_file_read_all(p, 0, &got, NULL), -EINVAL);
    assert_int_equal(knit_file_write_all(NULL, "x", 1, 0), -EINVAL);
    assert_int_equal(knit_file_write_all(p, NULL, 1, 0), -EINVAL);
    assert_int_equal(knit_file_write_all(p, "x", 1, 2), -EINVAL);
    /* Writing over a directory fails at the rename; nothing is left. */
    char sub[128];
    path_in(sub, sizeof(sub), "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(knit_file_write_all(sub, "x", 1, 0), -EISDIR);
    assert_int_equal(temporaries_in(dir), 0);
    assert_int_equal(rmdir(sub), 0);
    return 0;
}

BOTH_BACKENDS(missing_directory_and_oversized_files_fail_with_errno, t_errors)

static int t_missing_dir(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "nodir/file");
    assert_int_equal(knit_file_write_all(p, "data", 4, KNIT_FILE_SYNC),
                     -ENOENT);
    DIR *h = opendir(dir);
    assert_non_null(h);
    const struct dirent *e;
    while ((e = readdir(h)) != NULL)
        assert_true(strcmp(e->d_name, ".") == 0 ||
                    strcmp(e->d_name, "..") == 0);
    closedir(h);
    return 0;
}

BOTH_BACKENDS(write_into_a_missing_directory_is_enoent_and_leaves_nothing,
              t_missing_dir)

static int t_mode(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "secret");
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(knit_file_write_all(p, "s3cret", 6, 0), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    expect_file(p, "s3cret", 6);
    assert_int_equal(unlink(p), 0);
    return 0;
}

BOTH_BACKENDS(replacing_a_file_keeps_its_permissions, t_mode)

/* Every allocation of a write and a read, failed in turn: each run ends
 * in -ENOMEM (or absorbs it) and leaves no temporary; ASan checks leaks. */
static int t_oom(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "oom");
    for (long n = 1;; n++) {
        knit__alloc_fail_after(n);
        int err = knit_file_write_all(p, "data", 4, 0);
        if (err == 0) {
            char *got;
            size_t len;
            err = knit_file_read_all(p, 0, &got, &len);
            if (err == 0)
                free(got);
        }
        bool pending = knit__alloc_fault_pending();
        knit__alloc_fail_after(0);
        assert_int_equal(temporaries_in(dir), 0);
        if (pending) {
            assert_int_equal(err, 0); /* ran through: every failure seen */
            break;
        }
        if (err != 0)
            assert_int_equal(err, -ENOMEM);
    }
    assert_int_equal(unlink(p), 0);
    return 0;
}

BOTH_BACKENDS(failed_allocations_end_in_enomem_and_leave_nothing, t_oom)

/* ---- cancellation ------------------------------------------------------- */

struct reader {
    const char *path;
    int64_t deadline; /* KNIT_FOREVER: none */
    char *got;
    size_t len;
};

static int read_task(void *arg)
{
    struct reader *r = arg;
    knit_scope s;
    knit_scope_enter(&s, r->deadline);
    int err = knit_file_read_all(r->path, 0, &r->got, &r->len);
    knit_scope_exit(&s);
    return err;
}

static int t_fired_scope(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "never");
    knit_scope s;
    knit_scope_enter(&s, knit_now());
    char *got = NULL;
    size_t len = 0;
    /* A fired scope: no effect at all, not even a job. */
    assert_int_equal(knit_file_read_all(dir, 0, &got, &len), -ETIMEDOUT);
    assert_int_equal(knit_file_write_all(p, "x", 1, 0), -ETIMEDOUT);
    assert_int_equal(jobs_in_flight(), 0);
    knit_scope_exit(&s);
    assert_int_equal(access(p, F_OK), -1);
    return 0;
}

BOTH_BACKENDS(calls_in_a_fired_scope_fail_at_once_without_effect, t_fired_scope)

static int t_deadline_in_open(void *arg)
{
    (void)arg;
    char fifo[128];
    path_in(fifo, sizeof(fifo), "fifo-open");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    struct reader r = {fifo, knit_now() + 10, NULL, 0};
    knit_task *t = knit_spawn(read_task, &r);
    /* The job is on a pool thread, blocked opening a FIFO with no
     * writer: the caller still leaves on time. */
    wait_blocked_in_open();
    knit_clock_advance(10);
    assert_int_equal(knit_join(t), -ETIMEDOUT);
    assert_null(r.got);
    /* Let the abandoned job through: it reads EOF, frees, ends. */
    int w = open_writer(fifo);
    close(w);
    drain_jobs();
    assert_int_equal(unlink(fifo), 0);
    return 0;
}

BOTH_BACKENDS(deadline_while_open_blocks_returns_etimedout_promptly,
              t_deadline_in_open)

static int t_cancel_in_read(void *arg)
{
    (void)arg;
    char fifo[128];
    path_in(fifo, sizeof(fifo), "fifo-read");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    struct reader r = {fifo, KNIT_FOREVER, NULL, 0};
    knit_task *t = knit_spawn(read_task, &r);
    int w = open_writer(fifo);
    /* Part of the data arrives and is taken: the read (a pool thread's
     * read(2), or an io_uring read) now waits for more. */
    assert_int_equal(write(w, "partial", 7), 7);
    wait_drained(w);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_null(r.got);
    assert_int_equal(r.len, 0);
    /* The abandoned job, if any, sees EOF and frees its buffer. */
    close(w);
    drain_jobs();
    assert_int_equal(unlink(fifo), 0);
    return 0;
}

BOTH_BACKENDS(cancel_while_reading_returns_ecanceled_and_frees_the_data,
              t_cancel_in_read)

struct writer {
    const char *path;
    const void *data;
    size_t len;
};

static int write_task(void *arg)
{
    const struct writer *w = arg;
    return knit_file_write_all(w->path, w->data, w->len, KNIT_FILE_SYNC);
}

static int t_cancel_write(void *arg)
{
    (void)arg;
    char p[128];
    path_in(p, sizeof(p), "target");
    assert_int_equal(knit_file_write_all(p, "old", 3, 0), 0);
    enum { N = 32 << 20 };
    char *data = malloc(N);
    assert_non_null(data);
    memset(data, 'n', N);
    struct writer wr = {p, data, N};
    knit_task *t = knit_spawn(write_task, &wr);
    assert_int_equal(knit_yield(), 0);
    knit_cancel(t);
    int err = knit_join(t);
    /* The caller's buffer is the caller's again at once. */
    memset(data, 'x', N);
    free(data);
    /* Almost always cancelled before the rename; if the job got there
     * first the call reported the new file. Never anything else. */
    drain_jobs();
    if (err == -ECANCELED) {
        expect_file(p, "old", 3);
    } else {
        assert_int_equal(err, 0);
        print_message("the write committed before the cancel came\n");
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_size, N);
    }
    assert_int_equal(temporaries_in(dir), 0);
    assert_int_equal(unlink(p), 0);
    return 0;
}

BOTH_BACKENDS(cancelled_write_leaves_the_target_whole_and_no_temporary,
              t_cancel_write)

/* ---- outside a runtime -------------------------------------------------- */

static void calls_outside_a_task_run_on_the_calling_thread(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof(p), "plain");
    assert_int_equal(knit_file_write_all(p, "plain", 5, KNIT_FILE_SYNC), 0);
    expect_file(p, "plain", 5);
    assert_int_equal(temporaries_in(dir), 0);
    assert_int_equal(unlink(p), 0);
}

/* ---- setup -------------------------------------------------------------- */

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/knit-test-file-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_dir(void **state)
{
    (void)state;
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_written_is_read_back_and_replaced_whole),
        cmocka_unit_test(empty_file_reads_as_an_empty_nul_terminated_buffer),
        cmocka_unit_test(big_file_round_trips_in_chunks_with_its_content),
        cmocka_unit_test(file_of_unknown_size_is_read_to_its_end_within_max),
        cmocka_unit_test(missing_directory_and_oversized_files_fail_with_errno),
        cmocka_unit_test(
            write_into_a_missing_directory_is_enoent_and_leaves_nothing),
        cmocka_unit_test(replacing_a_file_keeps_its_permissions),
        cmocka_unit_test(failed_allocations_end_in_enomem_and_leave_nothing),
        cmocka_unit_test(calls_in_a_fired_scope_fail_at_once_without_effect),
        cmocka_unit_test(deadline_while_open_blocks_returns_etimedout_promptly),
        cmocka_unit_test(
            cancel_while_reading_returns_ecanceled_and_frees_the_data),
        cmocka_unit_test(
            cancelled_write_leaves_the_target_whole_and_no_temporary),
        cmocka_unit_test(calls_outside_a_task_run_on_the_calling_thread),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
