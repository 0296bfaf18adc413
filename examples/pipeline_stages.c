// SPDX-License-Identifier: MIT
/*
 * A pipeline (tokio: tasks joined by mpsc channels): read -> parse ->
 * transform (4 workers) -> write, every channel bounded to 4 items.
 *
 * Reading is instant, parsing too, transforming takes 30 ms an item (4
 * at a time: 7.5 ms an item) and writing 20 ms an item, so the writer is
 * the bottleneck: the reader runs ahead until every channel and every
 * worker is full, then its "read" lines come 20 ms apart, at the
 * writer's pace. That is backpressure: no queue grows without bound.
 * Per-stage counters are printed at the end.
 *
 * Part 2 feeds a malformed line: parse fails, which stops the reader and
 * parse at once; transform and write finish the items already passed to
 * them and see the end, and knit_pipeline_run returns parse's error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>

#define CAP 4

struct line {
    int no;        /* line number, from 1 */
    char text[32]; /* the line */
};

struct rec {
    int no;        /* the line it came from */
    char user[16]; /* parsed */
    int bytes;     /* parsed */
    int kib;       /* computed by transform */
};

struct input {
    char (*lines)[32]; /* the "file" */
    int n;             /* its lines */
    int next;          /* the next line to read */
    int written;       /* records the writer finished */
    int skipped;       /* comment lines parse dropped */
    int max_ahead;     /* most lines read and not yet done with */
    bool verbose;      /* print every read and write */
    knit_pipeline *p;  /* for the queue lengths */
};

static long long now(void)
{
    return (long long)knit_now();
}

/* knit_source_fn: the next line, or -EPIPE at the end of the file. */
static int read_line(void *ctx, void *out)
{
    struct input *in = ctx;
    struct line *l = out;
    if (in->next == in->n)
        return -EPIPE;
    l->no = in->next + 1;
    snprintf(l->text, sizeof(l->text), "%s", in->lines[in->next++]);
    int ahead = in->next - in->written - in->skipped;
    if (ahead > in->max_ahead)
        in->max_ahead = ahead;
    if (in->verbose) {
        knit_stage_stats parse;
        knit_pipeline_stats(in->p, 1, &parse);
        printf("t=%3lldms read  line %2d (parse queue %zu/%d)\n", now(), l->no,
               parse.queued, CAP);
    }
    return 0;
}

/* knit_stage_fn: "user bytes" -> a record; comments are skipped. */
static int parse(void *ctx, void *in, void *out)
{
    struct input *src = ctx;
    const struct line *l = in;
    struct rec *r = out;
    if (l->text[0] == '#') {
        src->skipped++;
        return KNIT_STAGE_SKIP;
    }
    if (sscanf(l->text, "%15s %d", r->user, &r->bytes) != 2)
        return -EBADMSG; /* tears the pipeline down */
    r->no = l->no;
    return 0;
}

/* knit_stage_fn: a slow lookup of 20, 30 or 40 ms, 4 at a time. */
static int transform(void *ctx, void *in, void *out)
{
    (void)ctx;
    int err = knit_sleep(20 + 10 * (((struct rec *)in)->no % 3));
    if (err < 0)
        return err;
    struct rec *r = out;
    *r = *(struct rec *)in;
    r->kib = (r->bytes + 1023) / 1024;
    return 0;
}

/* knit_stage_fn: the sink, the slowest stage. */
static int write_rec(void *ctx, void *in, void *out)
{
    struct input *src = ctx;
    const struct rec *r = in;
    (void)out;
    int err = knit_sleep(20);
    if (err < 0)
        return err;
    src->written++;
    if (src->verbose)
        printf("t=%3lldms write line %2d: %-7s %2d KiB\n", now(), r->no,
               r->user, r->kib);
    return 0;
}

static void print_stats(knit_pipeline *p)
{
    printf("stage     workers   in  out skip  err drop  max in flight  "
           "max queued\n");
    for (size_t i = 0; i < knit_pipeline_len(p); i++) {
        knit_stage_stats s;
        knit_pipeline_stats(p, i, &s);
        printf("%-9s %7u %4llu %4llu %4llu %4llu %4llu %14llu  ", s.name,
               s.workers, (unsigned long long)s.in, (unsigned long long)s.out,
               (unsigned long long)s.skipped, (unsigned long long)s.errors,
               (unsigned long long)s.dropped,
               (unsigned long long)s.max_in_flight);
        if (s.capacity)
            printf("%8zu/%zu\n", s.high_water, s.capacity);
        else
            printf("%10s\n", "-");
    }
}

static int run_file(struct input *in)
{
    knit_pipeline *p = knit_pipeline_new();
    if (!p)
        return -ENOMEM;
    in->p = p;
    /* Builder errors are remembered and returned by knit_pipeline_run. */
    knit_pipeline_source(p, "read", sizeof(struct line), read_line, in);
    knit_pipeline_stage(p, "parse", 1, CAP, sizeof(struct rec), parse, in);
    knit_pipeline_stage(p, "transform", 4, CAP, sizeof(struct rec), transform,
                        NULL);
    knit_pipeline_stage(p, "write", 1, CAP, 0, write_rec, in);
    int err = knit_pipeline_run(p);
    printf("t=%3lldms pipeline: %s\n", now(),
           err == 0          ? "done"
           : err == -EBADMSG ? "-EBADMSG"
                             : strerror(-err));
    print_stats(p);
    knit_pipeline_free(p);
    return err;
}

#define LINES 28
#define BAD_LINES 10

static const char *const users[] = {"alice", "bob",   "carol",  "dave",
                                    "erin",  "frank", "grace",  "heidi",
                                    "ivan",  "judy",  "mallory"};

/* Fills @lines with @n log lines: "user bytes", every tenth from the
 * fourth a comment; with @bad, line 6 is malformed. */
static void make_lines(char (*lines)[32], int n, bool bad)
{
    for (int i = 0; i < n; i++) {
        if (i % 10 == 3)
            snprintf(lines[i], 32, "# rotated");
        else if (bad && i == 5)
            snprintf(lines[i], 32, "oops");
        else
            snprintf(lines[i], 32, "%s %d", users[i % 11],
                     (i * 737) % 9000 + 1);
    }
}

static int run(void *arg)
{
    (void)arg;
    static char lines[LINES][32];
    make_lines(lines, LINES, false);
    struct input in = {.lines = lines, .n = LINES, .verbose = true};
    printf("1. %d lines, three of them comments\n", in.n);
    int err = run_file(&in);
    if (err < 0)
        return err;
    /* 1 line in read's hands + (4 queued + 1) parse + (4 + 4) transform +
     * (4 + 1) write. */
    printf("at most %d lines between read and write (bound %d)\n", in.max_ahead,
           1 + (CAP + 1) + (CAP + 4) + (CAP + 1));

    make_lines(lines, BAD_LINES, true);
    struct input bad = {.lines = lines, .n = BAD_LINES};
    printf("2. %d lines, line 6 malformed\n", bad.n);
    err = run_file(&bad);
    printf("%d records written\n", bad.written);
    return err == -EBADMSG ? 0 : -EPROTO;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL; /* sleeps are instant and exact */
    cfg.workers = 1;
    cfg.seed = 1;
    int err = knit_run(&cfg, run, NULL);
    if (err < 0) {
        fprintf(stderr, "pipeline_stages: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
