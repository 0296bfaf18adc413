/* SPDX-License-Identifier: MIT */
/*
 * knit/common.h - what every knit header needs: the export macro, the task
 * function type, KNIT_FOREVER and the opaque storage helper.
 *
 * Errors: every knit call that can fail returns a negative errno value
 * (kernel / liburing style) and >= 0 on success. Reserved meanings:
 * -ETIMEDOUT a deadline passed, -ECANCELED cancelled, -EPIPE closed,
 * -EAGAIN a try_ call would block, -EOVERFLOW a broadcast receiver lagged.
 */
#ifndef KNIT_COMMON_H
#define KNIT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(KNIT_BUILDING)
#define KNIT_API __attribute__((visibility("default")))
#else
#define KNIT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* No deadline: wait as long as it takes. */
#define KNIT_FOREVER ((int64_t)-1)

/* A task body. Its return value is what knit_join() returns. */
typedef int (*knit_fn)(void *arg);

/* A task: a stackful coroutine. Opaque; see knit/task.h. */
typedef struct knit_task knit_task;

/*
 * Storage for caller-allocated objects whose layout is private. All-zero
 * bytes are a valid initial state for every knit type built with it.
 */
#define KNIT_OPAQUE(name, size)                                                \
    typedef struct name {                                                      \
        _Alignas(max_align_t) unsigned char opaque_[size];                     \
    } name

#ifdef __cplusplus
}
#endif

#endif
