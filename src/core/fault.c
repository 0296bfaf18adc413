// SPDX-License-Identifier: MIT
/* The system-call fault seam (fault.h). */
#include "core/fault.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct site {
    atomic_long countdown; /* counted mode: n-th call fails; 0 off */
    atomic_int count_err;  /* its errno */
    atomic_uint ppm;       /* random mode: failures per million calls */
    atomic_int rand_err;   /* its errno */
};

atomic_int knit__fault_armed;
static struct site sites[KNIT_FAULT_SITES];
static atomic_uint_fast64_t injected;

static void rearm(void)
{
    int armed = 0;
    for (int i = 0; i < KNIT_FAULT_SITES; i++)
        if (atomic_load(&sites[i].countdown) > 0 || atomic_load(&sites[i].ppm))
            armed = 1;
    atomic_store(&knit__fault_armed, armed);
}

/* A per-thread xorshift, seeded from the thread's stack address. */
static uint32_t rand32(void)
{
    static _Thread_local uint64_t s;
    if (!s)
        s = (uint64_t)(uintptr_t)&s * 0x9e3779b97f4a7c15u | 1;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (uint32_t)(s >> 32);
}

int knit__fault_slow(enum knit_fault_site site)
{
    struct site *x = &sites[site];
    if (atomic_load_explicit(&x->countdown, memory_order_relaxed) > 0) {
        long prev = atomic_fetch_sub(&x->countdown, 1);
        if (prev == 1) {
            atomic_fetch_add(&injected, 1);
            rearm();
            return -atomic_load(&x->count_err);
        }
        if (prev <= 0)
            atomic_store(&x->countdown, 0);
    }
    unsigned ppm = atomic_load_explicit(&x->ppm, memory_order_relaxed);
    if (ppm && rand32() % 1000000u < ppm) {
        atomic_fetch_add(&injected, 1);
        return -atomic_load(&x->rand_err);
    }
    return 0;
}

void knit__fault_after(enum knit_fault_site site, long n, int err)
{
    atomic_store(&sites[site].count_err, err);
    atomic_store(&sites[site].countdown, n > 0 ? n : 0);
    rearm();
}

bool knit__fault_pending(enum knit_fault_site site)
{
    return atomic_load(&sites[site].countdown) > 0;
}

uint64_t knit__faults_injected(void)
{
    return atomic_load(&injected);
}

static const char *const site_names[KNIT_FAULT_SITES] = {
    "read", "write", "accept", "connect", "socket"};

static const struct {
    const char *name;
    int err;
} errnos[] = {
    {"EINTR", EINTR},         {"EAGAIN", EAGAIN},   {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},       {"ENOBUFS", ENOBUFS}, {"ENOMEM", ENOMEM},
    {"ECONNRESET", ECONNRESET}, {"EPIPE", EPIPE},   {"ECONNREFUSED", ECONNREFUSED},
    {"ECONNABORTED", ECONNABORTED}, {"ETIMEDOUT", ETIMEDOUT},
};

/* Parses one "site=ERRNO:ppm" of @len bytes into the arrays. */
static bool parse_one(const char *p, size_t len, unsigned ppm[], int err[])
{
    char item[64];
    if (len == 0 || len >= sizeof(item))
        return false;
    memcpy(item, p, len);
    item[len] = '\0';
    char *eq = strchr(item, '='), *colon = strchr(item, ':');
    if (!eq || !colon || colon < eq)
        return false;
    *eq = *colon = '\0';
    int s = -1;
    for (int i = 0; i < KNIT_FAULT_SITES; i++)
        if (strcmp(item, site_names[i]) == 0)
            s = i;
    int e = 0;
    for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
        if (strcmp(eq + 1, errnos[i].name) == 0)
            e = errnos[i].err;
    char *end;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (s < 0 || !e || *end || end == colon + 1 || v > 1000000)
        return false;
    ppm[s] = (unsigned)v;
    err[s] = e;
    return true;
}

int knit__fault_parse(const char *spec)
{
    unsigned ppm[KNIT_FAULT_SITES] = {0};
    int err[KNIT_FAULT_SITES] = {0};
    for (const char *p = spec; p && *p;) {
        size_t len = strcspn(p, ",");
        if (!parse_one(p, len, ppm, err))
            return -EINVAL;
        p += len;
        if (*p == ',')
            p++;
    }
    for (int i = 0; i < KNIT_FAULT_SITES; i++) {
        atomic_store(&sites[i].rand_err, err[i]);
        atomic_store(&sites[i].ppm, ppm[i]);
    }
    rearm();
    return 0;
}
