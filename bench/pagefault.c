// SPDX-License-Identifier: MIT
/*
 * knit-pagefault: what a fresh page costs on this machine, the floor
 * under timers_sleep and idle memory (bench/RESULTS.md). A parked task
 * holds at least the top page of its stack; a million of them touch a
 * million fresh pages, one per stack-sized stride, as this does.
 *
 *   knit-pagefault [PAGES]       (default 100000)
 *
 * Prints, in microseconds per page: a first touch; MADV_POPULATE_WRITE
 * then a touch (what knit's stack pool does for a fresh stack's top
 * page); MAP_POPULATE of a dense mapping then a touch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define STRIDE (20 * 1024) /* a 16 KiB stack plus its guard and header */
#define PAGE 4096

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *map(size_t len, int extra)
{
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | extra, -1, 0);
    if (p == MAP_FAILED) {
        perror("knit-pagefault: mmap");
        exit(1);
    }
    return p;
}

/* Writes one byte near the top of each of @n strides of @p. */
static double touch(char *p, long n, size_t stride)
{
    double t = now();
    for (long i = 0; i < n; i++)
        p[(size_t)i * stride + stride - 64] = 1;
    return (now() - t) / (double)n * 1e6;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    if (n <= 0 || n > 10000000) {
        fprintf(stderr, "usage: knit-pagefault [PAGES 1..10000000]\n");
        return 2;
    }
    size_t len = (size_t)n * STRIDE;

    char *p = map(len, 0);
    printf("first touch: %.2f us/page\n", touch(p, n, STRIDE));
    munmap(p, len);

    p = map(len, 0);
    double t = now();
    for (long i = 0; i < n; i++)
        if (madvise(p + (size_t)i * STRIDE + STRIDE - PAGE, PAGE,
                    MADV_POPULATE_WRITE) != 0) {
            perror("knit-pagefault: madvise(MADV_POPULATE_WRITE)");
            return 1;
        }
    double pop = (now() - t) / (double)n * 1e6;
    printf("MADV_POPULATE_WRITE %.2f + touch %.2f us/page\n", pop,
           touch(p, n, STRIDE));
    munmap(p, len);

    len = (size_t)n * PAGE;
    t = now();
    p = map(len, MAP_POPULATE);
    pop = (now() - t) / (double)n * 1e6;
    printf("MAP_POPULATE (dense) %.2f + touch %.2f us/page\n", pop,
           touch(p, n, PAGE));
    munmap(p, len);
    return 0;
}
