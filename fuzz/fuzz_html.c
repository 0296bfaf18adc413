// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for link extraction (apps/crawl/html.h): the input is
 * the body of a page fetched from a fixed URL, parsed by
 * crawl_html_links() once with a callback and once counting only.
 *
 * Besides memory errors (ASan), undefined behaviour (UBSan) and leaks
 * (LeakSanitizer, after every input), it checks what html.h promises for
 * any body, aborting on a violation:
 *   - the call returns 0, or -EINVAL with no link (nothing parsed);
 *   - every link reported parses strictly (crawl_url_parse), is a fixed
 *     point of crawl_url_normalize, and is not the page itself;
 *   - no link is reported twice, and info.links counts the callbacks;
 *   - counting without a callback (and without info) gives the same
 *     result and count;
 *   - the title is at most 255 bytes, has no whitespace but single inner
 *     spaces and is not cut inside a UTF-8 sequence.
 *
 * crawl_html_init() runs once, from LLVMFuzzerInitialize.
 *
 * Build: see fuzz/run.sh (apps/crawl/html.c, apps/crawl/url.c and
 * libxml2 from pkg-config).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "url.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "fuzz_html: check failed at line %d: %s\n",        \
                    __LINE__, #x);                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* The page's URL: a path and a query for relative links to work on. */
static const char page_url[] = "http://Example.com:80/dir/sub/page.html?q=1";

/* The links one call reported, as malloc'd copies. */
struct links {
    char **url;               /* n copies, in callback order */
    size_t n;                 /* links held */
    size_t cap;               /* room in url */
    char self[CRAWL_URL_MAX]; /* the page URL, normalised */
};

static void on_link(void *ctx, const char *url)
{
    struct links *l = ctx;
    struct crawl_url u;
    char again[CRAWL_URL_MAX];

    CHECK(url != NULL && strlen(url) < CRAWL_URL_MAX);
    CHECK(crawl_url_parse(url, &u) == 0);
    CHECK(crawl_url_normalize(url, again, sizeof again) == 0);
    CHECK(strcmp(again, url) == 0);
    CHECK(strcmp(url, l->self) != 0);

    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->url, cap * sizeof *p);

        CHECK(p != NULL);
        l->url = p;
        l->cap = cap;
    }
    l->url[l->n] = strdup(url);
    CHECK(l->url[l->n] != NULL);
    l->n++;
}

static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks the links are distinct (sorting them), then frees them. */
static void check_distinct_and_free(struct links *l)
{
    if (l->n > 1)
        qsort(l->url, l->n, sizeof *l->url, compare);
    for (size_t i = 1; i < l->n; i++)
        CHECK(strcmp(l->url[i - 1], l->url[i]) != 0);
    for (size_t i = 0; i < l->n; i++)
        free(l->url[i]);
    free(l->url);
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* The bytes of the UTF-8 sequence lead byte c starts (1 if it is bad). */
static size_t sequence_length(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7)
        return 4;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xC0 && c <= 0xDF)
        return 2;
    return 1;
}

/* Checks the title html.h describes: collapsed, trimmed, whole characters. */
static void check_title(const char *title, size_t cap)
{
    size_t len = strnlen(title, cap);
    size_t i = 0;

    CHECK(len < cap);
    if (len == 0)
        return;
    CHECK(title[0] != ' ' && title[len - 1] != ' ');
    for (size_t k = 0; k < len; k++) {
        CHECK(!is_space((unsigned char)title[k]) || title[k] == ' ');
        CHECK(k == 0 || title[k] != ' ' || title[k - 1] != ' ');
    }
    /* Cut at a character boundary: the last sequence is whole. */
    while (i < len) {
        size_t k = sequence_length((unsigned char)title[i]);

        CHECK(i + k <= len);
        i += k;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    crawl_html_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct links *l = calloc(1, sizeof *l);
    struct crawl_page_info info;
    struct crawl_page_info counted;
    int r;
    int r2;

    CHECK(l != NULL);
    CHECK(crawl_url_normalize(page_url, l->self, sizeof l->self) == 0);

    r = crawl_html_links((const char *)data, size, page_url, on_link, l, &info);
    CHECK(r == 0 || r == -EINVAL);
    CHECK(info.links >= 0 && (size_t)info.links == l->n);
    CHECK(r == 0 || l->n == 0);
    check_title(info.title, sizeof info.title);

    /* Counting only; every other input without info at all. */
    if (size > 0 && data[0] & 1) {
        r2 = crawl_html_links((const char *)data, size, page_url, NULL, NULL,
                              NULL);
        CHECK(r2 == r);
    } else {
        r2 = crawl_html_links((const char *)data, size, page_url, NULL, NULL,
                              &counted);
        CHECK(r2 == r && counted.links == info.links);
        CHECK(strcmp(counted.title, info.title) == 0);
    }

    check_distinct_and_free(l);
    free(l);
    return 0;
}
