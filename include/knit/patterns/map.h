/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/map.h - bounded concurrency: run a function over many
 * items with at most N in progress at once (tokio's buffer_unordered and
 * buffered, for_each_concurrent, try_for_each_concurrent).
 *
 * Several workers: fn may run on different workers at once (up to the
 * limit in parallel), so what it shares through ctx needs its own guard;
 * the map itself stays the starting task's (knit_map_next, _free).
 *
 * The function is called once per item, in one of the map's worker tasks
 * (never in the caller's):
 *
 *     int fn(void *ctx, size_t index, void *item, void *result);
 *
 * @index is the item's position in the input (for a channel, the order in
 * which items were received), @item points to it and @result to where its
 * result goes. fn returns >= 0 for success or a negative errno.
 *
 * Two forms:
 *
 *   knit_map_concurrent          the whole array at once: result i lands
 *                                in results[i], status i in status[i];
 *                                returns when every item is done
 *   knit_map_concurrent_chan     the same over the items of a channel, until
 *                                it is closed and drained (for_each)
 *   knit_map_start, _start_chan  a stream: knit_map_next() hands back one
 *   knit_map_next, knit_map_free result at a time, in completion order or in
 *                                input order, as they come
 *
 *     knit_map_opts o = {.limit = 3, .fail_fast = true};
 *     ssize_t n = knit_map_concurrent(&o, urls, 10, sizeof(urls[0]),
 *                                     pages, sizeof(pages[0]), status,
 *                                     fetch, &client);
 *
 * The limit: at most @limit calls of fn run at once, and in the streaming
 * form a result not yet taken by knit_map_next() counts against the limit
 * too (as in tokio, where a stream nobody polls makes no progress), so a
 * slow consumer holds back the map instead of piling up results.
 *
 * Errors: with fail_fast, the first call that fails stops the map: the
 * calls in progress are cancelled (their blocking calls return
 * -ECANCELED), no further item starts, and that first error is what the
 * caller gets. Without it, every item runs and each one's status is kept.
 *
 * Cancellation: the items run in a knit_group owned by the task that
 * started the map; they do not inherit that task's scopes. When the
 * caller's scope fires in knit_map_concurrent*, the items in progress are
 * cancelled and awaited before it returns; knit_map_next only returns the
 * scope's error and leaves the map running until knit_map_free.
 *
 * Like the primitives of knit/sync.h a map is worker-local: it is used by
 * the task that started it, in one runtime.
 */
#ifndef KNIT_PATTERNS_MAP_H
#define KNIT_PATTERNS_MAP_H

#include <sys/types.h>

#include "knit/chan.h"
#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a map runs; there is no default limit, so @limit must be set. */
typedef struct knit_map_opts {
    size_t limit;   /* most calls of fn in progress at once, >= 1 */
    bool ordered;   /* streaming form: results in input order (tokio's
                       buffered) instead of completion order
                       (buffer_unordered); the other forms ignore it */
    bool fail_fast; /* the first failure cancels the rest (tokio's try_
                       variants); else every item runs, failures kept */
} knit_map_opts;

/*
 * One item's work. @index: the item's position; @item: the item (the
 * caller's array element, or the map's copy of a channel element), which
 * fn may modify; @result: where its result goes (NULL when the form keeps
 * no results). Called in one of the map's worker tasks, so it may block;
 * it is cancelled by fail fast and by the caller's cancellation.
 * Return: >= 0 success; a negative errno failure.
 */
typedef int (*knit_map_fn)(void *ctx, size_t index, void *item, void *result);

/* A running streaming map (knit_map_start). Opaque; heap-allocated. */
typedef struct knit_map knit_map;

/**
 * knit_map_concurrent() - call fn on every element of an array, at most
 * @o->limit at once, and wait until all are done.
 * @o:           the limit and the error policy (@o->ordered is ignored:
 *               each result lands in its own slot).
 * @items:       @n elements of @item_size bytes; NULL to pass NULL items
 *               (fn then works from @index alone: a bounded parallel for).
 * @n:           the number of items; 0 returns 0 at once.
 * @item_size:   bytes per item.
 * @results:     @n slots of @result_size bytes: fn gets &results[i] for
 *               item i; NULL to pass NULL.
 * @result_size: bytes per result.
 * @status:      NULL, or @n ints: status[i] is fn's return value for item
 *               i, or -ECANCELED for an item that never started (fail
 *               fast, or the caller cancelled).
 * @fn:          the work.
 * @ctx:         passed to @fn.
 *
 * Items start in input order, each when a previous call has returned.
 * Cancellation point; call from a task. When the caller's scope fires,
 * the calls in progress are cancelled and awaited before this returns.
 * Return: without fail_fast, the number of items whose fn failed (0: all
 * succeeded), >= 0; with fail_fast, 0 or the first failure (the others
 * were cancelled; -ECANCELED results of that cancellation do not count);
 * -EINVAL when @o or @fn is NULL or @o->limit is 0; -ENOMEM (no item
 * started, or those started were cancelled); -ECANCELED / -ETIMEDOUT when
 * the caller's scope fired (@status tells what had run).
 */
KNIT_API ssize_t knit_map_concurrent(const knit_map_opts *o, void *items,
                                     size_t n, size_t item_size, void *results,
                                     size_t result_size, int *status,
                                     knit_map_fn fn, void *ctx);

/**
 * knit_map_concurrent_chan() - call fn on every element received from
 * @in, at most @o->limit at once, until @in is closed and drained (tokio's
 * for_each_concurrent / try_for_each_concurrent).
 * @o:         the limit and the error policy (@o->ordered is ignored).
 * @in:        the input channel; it must stay open to producers as usual
 *             and be closed by them when they are done.
 * @item_size: the channel's element size.
 * @fn:        the work; @index counts the items received, from 0;
 *             @result is NULL.
 * @ctx:       passed to @fn.
 *
 * Items are received only when a call slot is free, so a full @in holds
 * its producers back. When the map stops early (fail fast, the caller's
 * scope), items already received and not finished are lost and the rest
 * stay in @in. Cancellation point; call from a task.
 * Return: as knit_map_concurrent() (the number of failures, or the first
 * failure with fail_fast); -EINVAL for a NULL @o, @in or @fn, a limit of
 * 0 or an @item_size of 0; -ENOMEM; -ECANCELED / -ETIMEDOUT.
 */
KNIT_API ssize_t knit_map_concurrent_chan(const knit_map_opts *o, knit_chan *in,
                                          size_t item_size, knit_map_fn fn,
                                          void *ctx);

/**
 * knit_map_start() - start mapping an array, to take the results one at a
 * time with knit_map_next().
 * @mp:          out; the map, to be freed with knit_map_free().
 * @o:           the limit, the order and the error policy.
 * @items:       @n elements of @item_size bytes, or NULL (NULL items); the
 *               array must outlive the map.
 * @n:           the number of items.
 * @item_size:   bytes per item.
 * @result_size: bytes of each result; fn gets a zeroed buffer of that
 *               size (NULL when 0), and knit_map_next() copies it out.
 * @fn:          the work.
 * @ctx:         passed to @fn.
 *
 * The first min(limit, n) items start at once. Not a cancellation point;
 * call from a task, which alone may then use the map, and which must free
 * it before it returns.
 * Return: 0 and *@mp set; -EINVAL when @mp, @o or @fn is NULL or
 * @o->limit is 0; -ENOMEM (nothing started).
 */
KNIT_API int knit_map_start(knit_map **mp, const knit_map_opts *o, void *items,
                            size_t n, size_t item_size, size_t result_size,
                            knit_map_fn fn, void *ctx);

/**
 * knit_map_start_chan() - start mapping the elements received from @in,
 * to take the results one at a time with knit_map_next().
 * @mp:          out; the map, to be freed with knit_map_free().
 * @o:           the limit, the order and the error policy.
 * @in:          the input channel (the map takes a reference); the map
 *               ends when it is closed and drained.
 * @item_size:   the channel's element size.
 * @result_size: as for knit_map_start().
 * @fn:          the work; @index counts the items received, from 0.
 * @ctx:         passed to @fn.
 *
 * Not a cancellation point; call from a task (see knit_map_start()).
 * Return: 0 and *@mp set; -EINVAL when @mp, @o, @in or @fn is NULL, the
 * limit is 0 or @item_size is 0; -ENOMEM (nothing started).
 */
KNIT_API int knit_map_start_chan(knit_map **mp, const knit_map_opts *o,
                                 knit_chan *in, size_t item_size,
                                 size_t result_size, knit_map_fn fn, void *ctx);

/**
 * knit_map_next() - take the next result, waiting until there is one.
 * @m:      the map.
 * @index:  out, may be NULL; the item's index.
 * @status: out, may be NULL; fn's return value for the item (< 0: it
 *          failed).
 * @result: out, may be NULL; receives the result_size bytes fn wrote.
 *
 * Without @o->ordered, results come in the order the calls finished;
 * with it, in input order (a finished item waits, holding its slot, for
 * those before it). Taking a result frees its slot for the next item.
 * With fail_fast, the first failure is handed back as soon as it happens
 * (in input order or not), as the last result: the calls in progress were
 * cancelled and the results not yet taken are discarded.
 *
 * Cancellation point; only the task that started @m may call it (another
 * task panics).
 * Return: 0, one result handed back; -EPIPE when there is no result left
 * (every item done, or the map stopped on a failure); -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired (nothing was taken; the map
 * keeps running); -EINVAL for a NULL @m.
 */
KNIT_API int knit_map_next(knit_map *m, size_t *index, int *status,
                           void *result);

/**
 * knit_map_free() - stop @m and free it.
 * @m: the map, or NULL.
 *
 * Cancels the calls still in progress and waits for them to return
 * (shielded, so it completes even in a cancelled task; a fn that ignores
 * cancellation delays it); items not yet started never start, and results
 * not taken are discarded. Only the task that started @m may call it
 * (another task panics).
 * Return: nothing.
 */
KNIT_API void knit_map_free(knit_map *m);

#ifdef __cplusplus
}
#endif

#endif
