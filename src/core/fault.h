// SPDX-License-Identifier: MIT
/*
 * The system-call fault seam. Every I/O system call knit makes on a
 * socket or fd of the application's (src/net/net.h's wrappers: read and
 * write families, accept, connect, socket) first asks knit__fault(site),
 * which can make it fail with a chosen errno without calling the kernel:
 *
 *  - counted (tests): the n-th call at a site from now fails, once
 *    (knit__fault_after), the same way the allocator seam fails the n-th
 *    allocation (core/alloc.h);
 *  - random (soak runs): each call at a site fails with a probability,
 *    from the environment variable KNIT_FAULTS read at knit_run, e.g.
 *    KNIT_FAULTS="read=ECONNRESET:200,accept=EMFILE:1000,write=EINTR:5000"
 *    (site=ERRNO:parts-per-million, comma-separated).
 *
 * Off, it costs one relaxed load and a predicted branch per call. A
 * failure is injected before the kernel is asked, so it never loses data
 * the kernel would have returned.
 */
#ifndef KNIT_CORE_FAULT_H
#define KNIT_CORE_FAULT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/compiler.h"

enum knit_fault_site {
    KNIT_FAULT_READ,    /* read, readv, recv, recvfrom */
    KNIT_FAULT_WRITE,   /* write, writev, send, sendmsg, sendto */
    KNIT_FAULT_ACCEPT,  /* accept4 */
    KNIT_FAULT_CONNECT, /* connect */
    KNIT_FAULT_SOCKET,  /* socket */
    KNIT_FAULT_SITES,
};

/* Non-zero while any site has a fault armed. */
extern atomic_int knit__fault_armed;

int knit__fault_slow(enum knit_fault_site site);

/* 0, or the -errno the call at @site must fail with now. */
static inline int knit__fault(enum knit_fault_site site)
{
    if (knit_likely(atomic_load_explicit(&knit__fault_armed,
                                         memory_order_relaxed) == 0))
        return 0;
    return knit__fault_slow(site);
}

/* Counted mode: the @n-th call at @site from now fails with -@err (n = 0:
 * off). For tests. */
void knit__fault_after(enum knit_fault_site site, long n, int err);

/* Whether @site's counted fault is still to come. */
_Bool knit__fault_pending(enum knit_fault_site site);

/* Random mode from a KNIT_FAULTS-style spec; 0 or -EINVAL (nothing set).
 * NULL or "" turns every site off. */
int knit__fault_parse(const char *spec);

/* Faults injected so far (both modes). */
uint64_t knit__faults_injected(void);

#endif
