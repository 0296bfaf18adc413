// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the robots.txt parser (apps/crawl/robots.h).
 *
 * The input is parsed as a robots.txt for the agent "knit-crawl" and the
 * result is asked about a few fixed paths and about paths taken from the
 * input itself (its first line, and a run of its bytes), so that patterns
 * and paths the fuzzer invents meet each other. Besides memory errors it
 * checks the promises that hold for any input: "/robots.txt" is always
 * allowed and the Crawl-delay stays within [0, CRAWL_ROBOTS_MAX_DELAY_MS].
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I apps/crawl
 *        apps/crawl/robots.c fuzz/fuzz_robots.c -o fuzz_robots
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "robots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longest path taken from the input; long enough to reach the heap path. */
#define MAX_PATH 2048

static void ask(const struct crawl_robots *r, const char *path)
{
    (void)crawl_robots_allowed(r, path);
}

/* Asks about data[0..n) as a path, NULs replaced so it stays whole. */
static void ask_bytes(const struct crawl_robots *r, const uint8_t *data,
                      size_t n)
{
    char path[MAX_PATH + 2];
    if (n > MAX_PATH)
        n = MAX_PATH;
    path[0] = '/';
    for (size_t k = 0; k < n; k++)
        path[k + 1] = data[k] ? (char)data[k] : '0';
    path[n + 1] = '\0';
    ask(r, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crawl_robots *r =
        crawl_robots_parse((const char *)data, size, "knit-crawl");
    if (!r)
        abort(); /* NULL means ENOMEM, which a fuzzer run never hits */

    ask(r, "/");
    ask(r, "/a/b.json?x=1");
    ask(r, "/%7Euser/%e2%82%ac/page.html");
    ask(r, "");
    if (!crawl_robots_allowed(r, "/robots.txt"))
        abort();
    int64_t d = crawl_robots_delay_ms(r);
    if (d < 0 || d > CRAWL_ROBOTS_MAX_DELAY_MS)
        abort();

    const uint8_t *nl = memchr(data, '\n', size);
    ask_bytes(r, data, nl ? (size_t)(nl - data) : size);
    if (size > 16)
        ask_bytes(r, data + size / 2, size - size / 2);

    crawl_robots_free(r);
    return 0;
}
