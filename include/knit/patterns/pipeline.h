/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/pipeline.h - pipelines: a source and stages connected by
 * bounded channels, each stage with its own number of worker tasks.
 *
 * Several workers: a stage's functions may run on different workers at
 * once (N calls in parallel for N workers); knit_pipeline_cancel and
 * knit_pipeline_stats may be called by tasks on any worker.
 *
 *     source --chan--> stage 1 (N1 workers) --chan--> ... --> last stage
 *
 * The source is called repeatedly for the next item until it says there
 * is none (-EPIPE); each stage receives items from the channel before it,
 * calls its function on each, and sends what the function produced to
 * the channel after it; the last stage is a sink (it produces nothing).
 *
 *     knit_pipeline *p = knit_pipeline_new();
 *     knit_pipeline_source(p, "read", sizeof(struct line), read_line, f);
 *     knit_pipeline_stage(p, "parse", 1, 8, sizeof(struct rec), parse, NULL);
 *     knit_pipeline_stage(p, "enrich", 4, 8, sizeof(struct rec), enrich, db);
 *     knit_pipeline_stage(p, "write", 1, 8, 0, write_rec, out);
 *     err = knit_pipeline_run(p);         // every task has ended
 *     knit_pipeline_stats(p, 2, &st);     // the "enrich" counters
 *     knit_pipeline_free(p);
 *
 * Backpressure: every channel is bounded, so a slow stage holds back the
 * stages before it, down to the source: the items between the source and
 * the last stage never exceed the channels' capacities plus one per
 * worker (the source's included).
 *
 * The end: when the source returns -EPIPE its channel is closed; a stage
 * whose input is closed and drained ends, and the last of its workers to
 * end closes its output, so the end travels down the pipeline and
 * knit_pipeline_run() returns 0 once the last stage has finished.
 *
 * Failure: when a function fails (returns a negative errno), that stage
 * and every stage before it, the source included, are cancelled: their
 * blocking calls return -ECANCELED (a producer waiting on a full channel
 * is released), items still in their channels are discarded. The stages
 * after it finish the items already passed to them, then see the end as
 * above. knit_pipeline_run() returns the first failure. knit_pipeline_cancel()
 * and the caller's own cancellation stop every stage at once.
 *
 * Order: a stage with one worker keeps the order of its input; with
 * several, items leave it in the order they finish.
 *
 * Counters: knit_pipeline_stats() reads each stage's counters, during the
 * run (from any task of the runtime) or after it.
 *
 * Like the primitives of knit/sync.h a pipeline is worker-local: it runs
 * in one runtime, and knit_pipeline_run() is called by one task, which
 * owns the pipeline's tasks until it returns.
 */
#ifndef KNIT_PATTERNS_PIPELINE_H
#define KNIT_PATTERNS_PIPELINE_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A stage function's answer for an item it filters out: nothing is sent. */
#define KNIT_STAGE_SKIP 1

/*
 * The source: writes the next item (item_size bytes) into @out.
 * Called again and again in the source's task; may block.
 * Return: 0 (or any value >= 0), an item is in @out; -EPIPE, there is no
 * item left (normal end); another negative errno, a failure.
 */
typedef int (*knit_source_fn)(void *ctx, void *out);

/*
 * A stage: processes the item at @in (the previous stage's out_size
 * bytes; the function may modify it) and writes its product into @out
 * (this stage's out_size bytes; NULL for the last stage). Called in the
 * stage's worker tasks, one item per call; may block.
 * Return: 0 (or > 0 other than KNIT_STAGE_SKIP), send @out on (for the
 * last stage: the item is done); KNIT_STAGE_SKIP, send nothing; a
 * negative errno, a failure, which tears the pipeline down.
 */
typedef int (*knit_stage_fn)(void *ctx, void *in, void *out);

/* A pipeline. Opaque; heap-allocated by knit_pipeline_new(). */
typedef struct knit_pipeline knit_pipeline;

/*
 * One stage's counters (the source is stage 0). Every item a stage
 * received is accounted for exactly once:
 * in == out + skipped + errors + dropped + in_flight. The source's
 * failures produce no item, so for it in == out + dropped + in_flight.
 */
typedef struct knit_stage_stats {
    const char *name;       /* as given; valid until knit_pipeline_free */
    unsigned workers;       /* its tasks (1 for the source) */
    size_t capacity;        /* its input channel's capacity; 0: source */
    uint64_t in;            /* items received (the source: produced) */
    uint64_t out;           /* items sent on (last stage: finished) */
    uint64_t skipped;       /* items its function filtered out */
    uint64_t errors;        /* items its function failed on (the
                               source: its failures, 0 or 1) */
    uint64_t dropped;       /* items lost to a teardown: the function was
                               cancelled or the product could not be sent */
    uint64_t in_flight;     /* received and not yet done with, now */
    uint64_t max_in_flight; /* the most in flight at once */
    size_t queued;          /* items waiting in its input channel now (at
                               the end: those discarded by a teardown) */
    size_t high_water;      /* the most items its input channel held */
} knit_stage_stats;

/**
 * knit_pipeline_new() - create an empty pipeline; add the source, then
 * the stages, then run it.
 *
 * Not a cancellation point; may be called outside a runtime.
 * Return: the pipeline; NULL when out of memory.
 */
KNIT_API knit_pipeline *knit_pipeline_new(void);

/**
 * knit_pipeline_source() - set the pipeline's source (stage 0).
 * @p:         the pipeline, with no source and no stage yet.
 * @name:      for the counters (copied, up to 31 bytes); NULL: "".
 * @item_size: bytes of each item it produces, >= 1.
 * @fn:        the source function.
 * @ctx:       passed to @fn.
 *
 * A failed call adds nothing and is remembered: knit_pipeline_run()
 * returns the same error, so a builder may check only run's result.
 * Return: 0; -EINVAL for a NULL @p or @fn, an @item_size of 0, or a
 * pipeline that has a source already or has run; -ENOMEM.
 */
KNIT_API int knit_pipeline_source(knit_pipeline *p, const char *name,
                                  size_t item_size, knit_source_fn fn,
                                  void *ctx);

/**
 * knit_pipeline_stage() - append a stage.
 * @p:        the pipeline, with its source set.
 * @name:     for the counters (copied, up to 31 bytes); NULL: "".
 * @workers:  its concurrency: tasks calling @fn, >= 1.
 * @capacity: its input channel's capacity, >= 1 (channels are bounded).
 * @out_size: bytes of each item it produces; 0 for the last stage (a
 *            sink), which no stage may follow.
 * @fn:       the stage function.
 * @ctx:      passed to @fn (by every worker: share it with care).
 *
 * A failed call adds nothing and is remembered (see
 * knit_pipeline_source()).
 * Return: 0; -EINVAL for a NULL @p or @fn, 0 workers or capacity, no
 * source yet, a stage after a sink, or a pipeline that has run; -ENOMEM.
 */
KNIT_API int knit_pipeline_stage(knit_pipeline *p, const char *name,
                                 unsigned workers, size_t capacity,
                                 size_t out_size, knit_stage_fn fn, void *ctx);

/**
 * knit_pipeline_run() - run the pipeline until it has ended.
 * @p: the pipeline: a source and at least one stage, the last a sink.
 *
 * Creates the channels, starts the source and every stage's workers in
 * a group owned by the caller, and returns when every one of them has
 * ended; every channel is then closed. A pipeline runs once.
 * Cancellation point; call from a task. When the caller's scope fires,
 * every stage is cancelled and awaited before this returns.
 * Return: 0 when the source ended and every item went through; the first
 * failure of a function (source or stage) otherwise; -ECANCELED when
 * knit_pipeline_cancel() stopped it; -ECANCELED / -ETIMEDOUT when the
 * caller's scope fired (which outranks the rest); the error a builder
 * call failed with; -EINVAL for a NULL @p, no source, no stage or a
 * last stage that is not a sink; -EALREADY when @p has run; -ENOMEM
 * (stages that had started were cancelled).
 */
KNIT_API int knit_pipeline_run(knit_pipeline *p);

/**
 * knit_pipeline_cancel() - stop every stage of a running pipeline.
 * @p: the pipeline.
 *
 * Every blocking call in the source and the stages returns -ECANCELED
 * from now on; knit_pipeline_run() returns -ECANCELED (or the failure that
 * came first). Before the run, the run returns -ECANCELED at once; after
 * it, this does nothing. Not a cancellation point; any task of the
 * runtime, a stage function included.
 * Return: nothing.
 */
KNIT_API void knit_pipeline_cancel(knit_pipeline *p);

/**
 * knit_pipeline_len() - count the stages, the source included.
 * @p: the pipeline.
 *
 * Return: the number of stages (0 without a source).
 */
KNIT_API size_t knit_pipeline_len(const knit_pipeline *p);

/**
 * knit_pipeline_stats() - read stage @i's counters.
 * @p:   the pipeline.
 * @i:   0 for the source, then 1, 2, ... in the order the stages were
 *       added.
 * @out: out; the counters.
 *
 * Any time: before, during (from any task of the runtime) or after the
 * run. Not a cancellation point.
 * Return: 0; -EINVAL for a NULL @p or @out, or @i past the last stage.
 */
KNIT_API int knit_pipeline_stats(const knit_pipeline *p, size_t i,
                                 knit_stage_stats *out);

/**
 * knit_pipeline_free() - free @p, its channels and its counters.
 * @p: the pipeline, or NULL; not running (freeing a running pipeline
 *     panics).
 *
 * Return: nothing.
 */
KNIT_API void knit_pipeline_free(knit_pipeline *p);

#ifdef __cplusplus
}
#endif

#endif
