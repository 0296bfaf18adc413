/* SPDX-License-Identifier: MIT */
/*
 * knit/time.h - the runtime clock, sleeping and intervals.
 *
 * Times are int64_t milliseconds on the runtime's clock. knit_now() is
 * cached once per scheduler loop iteration, so it is cheap and every task
 * of one iteration sees the same time. With KNIT_CLOCK_MANUAL the clock
 * starts at 0 and moves only when every task is idle (straight to the next
 * timer) or through knit_clock_advance().
 */
#ifndef KNIT_TIME_H
#define KNIT_TIME_H

#include "knit/common.h"
#include "knit/scope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Now, in ms, on the runtime's clock (0 outside a runtime). */
KNIT_API int64_t knit_now(void);

/**
 * knit_sleep() - wait @ms milliseconds (0 or less: yield once).
 * Cancellation point.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the scope fired.
 */
KNIT_API int knit_sleep(int64_t ms);

/**
 * knit_sleep_until() - wait until knit_now() >= @deadline; KNIT_FOREVER
 * waits until the scope fires.
 * Cancellation point.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the scope fired.
 */
KNIT_API int knit_sleep_until(int64_t deadline);

/* What knit_interval_tick() does about ticks missed while the task was busy. */
#define KNIT_MISSED_BURST 0 /* fire the missed ticks at once, one per call */
#define KNIT_MISSED_DELAY 1 /* next tick one period after the late one */
#define KNIT_MISSED_SKIP 2  /* drop them; keep to the original grid */

KNIT_OPAQUE(knit_interval, 32);

/**
 * knit_interval_init() - a periodic timer. Its first tick completes at
 * once, at the first knit_interval_tick() call; the grid starts there.
 * @period_ms: > 0.  @missed: a KNIT_MISSED_* policy.
 * Return: 0; -EINVAL for a bad period or policy.
 */
KNIT_API int knit_interval_init(knit_interval *iv, int64_t period_ms,
                                int missed);

/**
 * knit_interval_tick() - wait for the next tick.
 * Cancellation point.
 * Return: the tick's scheduled time (>= 0); -ECANCELED / -ETIMEDOUT when
 * the scope fired (the tick is not consumed).
 */
KNIT_API int64_t knit_interval_tick(knit_interval *iv);

#ifdef __cplusplus
}
#endif

#endif
