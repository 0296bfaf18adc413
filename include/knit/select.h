/* SPDX-License-Identifier: MIT */
/*
 * knit/select.h - wait for the first of several events (Go's select,
 * tokio's select!).
 *
 *     uint64_t v;
 *     knit_case cases[] = {
 *         knit_case_recv(jobs, &v),
 *         knit_case_token(&shutdown),
 *         knit_case_deadline(knit_now() + 1000),
 *     };
 *     switch (knit_select(cases, 3)) {
 *     case 0: ... knit_case_result(&cases[0]) is 0, or -EPIPE if closed
 *     case 1: ... shutting down
 *     case 2: ... a second passed
 *     default: ... -ECANCELED / -ETIMEDOUT: the task's scope fired
 *     }
 *
 * Exactly one case takes effect; the others leave no trace: no value is
 * consumed from or put into a channel, no notify permit is taken, no task
 * is joined. Cases that are ready at once are checked from a random start
 * (fairness); knit_select_biased checks them in order. knit_select is a
 * cancellation point: when the scope fires first it returns the scope's
 * error and no case took effect.
 */
#ifndef KNIT_SELECT_H
#define KNIT_SELECT_H

#include "knit/chan.h"
#include "knit/common.h"
#include "knit/sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most cases in one select. */
#define KNIT_SELECT_MAX 64

/* One case; build it with a knit_case_* constructor. */
KNIT_OPAQUE(knit_case, 48);

/* Receive one element into @out (result 0, or -EPIPE: closed, drained). */
KNIT_API knit_case knit_case_recv(knit_chan *c, void *out);

/* Send the element at @in (result 0, or -EPIPE: closed, nothing sent). */
KNIT_API knit_case knit_case_send(knit_chan *c, const void *in);

/*
 * Join @t: when it fires, @t's result is stored in *@result and @t is
 * freed, as by knit_join (case result 0). When it loses, @t is untouched.
 */
KNIT_API knit_case knit_case_join(knit_task *t, int *result);

/* @fd becomes ready for @events (POLLIN / POLLOUT); result: the events. */
KNIT_API knit_case knit_case_fd(int fd, int events);

/* knit_now() reaches @deadline (KNIT_FOREVER never fires); result 0. */
KNIT_API knit_case knit_case_deadline(int64_t deadline);

/* @n is notified (takes its permit); result 0. */
KNIT_API knit_case knit_case_notify(knit_notify *n);

/* @t is cancelled; result 0. */
KNIT_API knit_case knit_case_token(knit_token *t);

/* The fired case's own result (see each constructor). */
KNIT_API int knit_case_result(const knit_case *c);

/**
 * knit_select() - wait until one of @cases takes effect.
 * @cases: @n cases (1..KNIT_SELECT_MAX).
 * Cancellation point.
 * Return: the index of the case that took effect; -EINVAL for a bad @n or
 * case; -ECANCELED / -ETIMEDOUT when the scope fired first.
 */
KNIT_API int knit_select(knit_case *cases, int n);

/* knit_select() that prefers earlier cases when several are ready. */
KNIT_API int knit_select_biased(knit_case *cases, int n);

#ifdef __cplusplus
}
#endif

#endif
