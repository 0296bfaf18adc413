// SPDX-License-Identifier: MIT
/*
 * Name resolution (knit_resolve): getaddrinfo on the DNS blocking pool,
 * with the scope's deadline and cancellation.
 *
 * Numeric addresses never leave the calling task: inet_pton recognises
 * them and getaddrinfo(AI_NUMERICHOST) converts them without a lookup.
 * Names become a job on the DNS pool. getaddrinfo cannot be interrupted,
 * so a caller whose scope fires stops waiting and the job runs on: the
 * request is one heap record (struct lookup) with two references, the
 * waiting task's and the job's, and whoever drops the last one frees it
 * together with an answer nobody took. The waiting task knows whether the
 * job ran (it returns JOB_RAN; a job cancelled before a pool thread took
 * it ends with -ECANCELED instead) and drops the job's reference itself
 * when it never will. It waits with a one-case knit_select rather than
 * knit_join because select tells "the job ended" (the case fired, the
 * task is freed) apart from "my scope fired" (the task is untouched)
 * without ambiguity, even when the runtime's shutdown cancels the job.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "blocking/pool.h"
#include "knit/net.h"
#include "knit/select.h"
#include "knit/task.h"
#include "net/net.h"

/* What lookup_job returns; a job that never ran ends with -ECANCELED. */
#define JOB_RAN 1

/* One getaddrinfo request, shared by the waiting task and the pool job. */
struct lookup {
    atomic_int refs;       /* the waiter's and the job's references */
    struct addrinfo hints; /* copied: the caller may be gone */
    struct addrinfo *res;  /* the answer, owned here until taken */
    int gai;               /* getaddrinfo's return value */
    int sys;               /* errno after EAI_SYSTEM */
    char serv[8];          /* the port as a decimal string */
    char host[];           /* copied: the caller may be gone */
};

static void lookup_unref(struct lookup *l)
{
    /* acq_rel: the last holder sees every write of the other one. */
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    free(l);
}

/* getaddrinfo's codes as errnos (knit_resolve's doc lists them). */
static int gai_errno(int gai, int sys)
{
    switch (gai) {
    case 0:
        return 0;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return sys ? -sys : -EIO;
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_SERVICE:
        return -EINVAL;
    default: /* EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_NODATA ... */
        return -EHOSTUNREACH;
    }
}

/* Runs on a pool thread; touches only the record. */
static int lookup_job(void *arg)
{
    struct lookup *l = arg;
    l->gai = getaddrinfo(l->host, l->serv, &l->hints, &l->res);
    l->sys = l->gai == EAI_SYSTEM ? errno : 0;
    lookup_unref(l);
    return JOB_RAN;
}

/* getaddrinfo on the calling thread, for inputs that need no lookup. */
static int lookup_now(const char *host, const char *serv,
                      const struct addrinfo *hints, struct addrinfo **out)
{
    int gai = getaddrinfo(host, serv, hints, out);
    int err = gai_errno(gai, gai == EAI_SYSTEM ? errno : 0);
    if (err)
        *out = NULL;
    return err;
}

/*
 * The waiter's scope fired while @t (the job of @l) may still run: stop
 * it if no thread has taken it, otherwise let it finish and free @l.
 */
static void lookup_abandon(knit_task *t, struct lookup *l)
{
    knit_cancel(t); /* takes it off the pool's queue if still there */
    if (t->state == KNIT_TASK_DONE) {
        /* Ended or never ran: no thread touches @l any more. knit_join of
         * an ended task returns at once, even in a fired scope. */
        if (knit_join(t) != JOB_RAN)
            lookup_unref(l);
    } else {
        knit_detach(t);
    }
    /* @l holds two references (this task's and the job's): the analyzer
     * does not follow the count and sees a double free. */
    lookup_unref(l); // NOLINT(clang-analyzer-unix.Malloc)
}

static int lookup_pooled(const char *host, const char *serv,
                         const struct addrinfo *hints, struct addrinfo **out)
{
    size_t hlen = strlen(host) + 1;
    struct lookup *l = knit__calloc(1, sizeof(*l) + hlen);
    if (!l)
        return -ENOMEM;
    atomic_init(&l->refs, 2);
    l->hints = *hints;
    memcpy(l->serv, serv, sizeof(l->serv));
    memcpy(l->host, host, hlen);
    knit_task *t = knit__spawn_blocking_in(KNIT_POOL_DNS, lookup_job, l);
    if (!t) {
        free(l);
        return -ENOMEM;
    }
    int ran = 0;
    knit_case c = knit_case_join(t, &ran);
    int i = knit_select(&c, 1);
    if (i < 0) {
        lookup_abandon(t, l);
        return i;
    }
    int err;
    if (ran == JOB_RAN) {
        err = gai_errno(l->gai, l->sys);
        if (!err) {
            *out = l->res;
            l->res = NULL;
        }
    } else {
        /* Cancelled before it ran: the runtime is shutting down. */
        lookup_unref(l);
        err = -ECANCELED;
    }
    lookup_unref(l); // NOLINT(clang-analyzer-unix.Malloc): two references
    return err;
}

static bool is_numeric(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 ||
           inet_pton(AF_INET6, host, a) == 1;
}

int knit__net_resolve(const char *host, int port, int socktype, int flags,
                      struct addrinfo **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!host || port < 0 || port > 65535 ||
        (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM))
        return -EINVAL;
    struct knit_task *self = knit__task();
    if (self) {
        int err = knit__scope_err(self);
        if (err)
            return err;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = socktype,
        .ai_flags = flags | AI_NUMERICSERV,
    };
    char serv[8];
    snprintf(serv, sizeof(serv), "%d", port);
    if (is_numeric(host)) {
        hints.ai_flags |= AI_NUMERICHOST;
        return lookup_now(host, serv, &hints, out);
    }
    if (!self)
        return lookup_now(host, serv, &hints, out);
    return lookup_pooled(host, serv, &hints, out);
}

int knit_resolve(const char *host, int port, int socktype,
                 struct addrinfo **out)
{
    return knit__net_resolve(host, port, socktype, 0, out);
}
