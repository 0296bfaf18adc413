// SPDX-License-Identifier: MIT
/*
 * The demo server's HTTP/1.1 protocol layer (apps/crawl/http_proto.h):
 * request head parsing (fields, whitespace rules, pipelining, every
 * incremental split point, every error status with a minimal input, the
 * limits, Content-Length forms, keep-alive rules), the chunked body
 * decoder (every split point, extensions, trailers, malformed framing) and
 * the exact bytes of response heads and chunk lines.
 *
 * Inputs are copied to heap blocks of their exact length before parsing,
 * so that AddressSanitizer catches any read past the end.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http_proto.h"

/* ---- helpers ------------------------------------------------------------- */

/*
 * Parses the first len bytes of s from an exact-size heap copy. The copy
 * is kept until the next call (views in req point into it).
 */
static int parse_n(const char *s, size_t len,
                   const struct crawl_http_limits *lim,
                   struct crawl_http_request *req)
{
    static char *copy;

    free(copy);
    copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    return crawl_http_parse_request(copy, len, lim, req);
}

static int parse(const char *s, struct crawl_http_request *req)
{
    return parse_n(s, strlen(s), NULL, req);
}

/* Asserts that the view p[0..len) holds exactly the string want. */
static void assert_view(const char *p, size_t len, const char *want)
{
    assert_non_null(p);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

/* Asserts that request req has a header name with value want. */
static void assert_header(const struct crawl_http_request *req,
                          const char *name, const char *want)
{
    const struct crawl_http_header *h = crawl_http_find_header(req, name);

    assert_non_null(h);
    assert_view(h->value, h->value_len, want);
}

/* An input and the status crawl_http_parse_request() must return. */
struct bad {
    const char *in;
    int want;
};

static void expect_all(const struct bad *cases, size_t n)
{
    struct crawl_http_request req;
    size_t i;

    for (i = 0; i < n; i++) {
        int r = parse(cases[i].in, &req);

        if (r != cases[i].want)
            print_error("input %zu: \"%s\"\n", i, cases[i].in);
        assert_int_equal(r, cases[i].want);
    }
}

#define EXPECT_ALL(cases) expect_all(cases, sizeof(cases) / sizeof(cases[0]))

/* ---- request heads: fields and syntax ------------------------------------ */

static void parse_simple_get_fills_every_field(void **state)
{
    static const char in[] = "GET /index.html?q=1 HTTP/1.1\r\n"
                             "Host: a.test:8080\r\n"
                             "User-Agent: knit-crawl/1.0\r\n"
                             "\r\n";
    struct crawl_http_request req;

    (void)state;
    assert_int_equal(parse(in, &req), (int)strlen(in));
    assert_view(req.method, req.method_len, "GET");
    assert_view(req.target, req.target_len, "/index.html?q=1");
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.nheaders, 2);
    assert_view(req.headers[0].name, req.headers[0].name_len, "Host");
    assert_view(req.headers[0].value, req.headers[0].value_len, "a.test:8080");
    assert_view(req.headers[1].name, req.headers[1].name_len, "User-Agent");
    assert_view(req.headers[1].value, req.headers[1].value_len,
                "knit-crawl/1.0");
    assert_view(req.host, req.host_len, "a.test:8080");
    assert_true(req.keep_alive);
    assert_false(req.chunked);
    assert_int_equal(req.content_length, -1);
    assert_false(req.expect_continue);
}

static void parse_head_request_keeps_its_method_and_target(void **state)
{
    static const char in[] = "HEAD * HTTP/1.0\r\n\r\n";
    struct crawl_http_request req;

    (void)state;
    assert_int_equal(parse(in, &req), (int)strlen(in));
    assert_view(req.method, req.method_len, "HEAD");
    assert_view(req.target, req.target_len, "*");
    assert_int_equal(req.minor, 0);
    assert_int_equal(req.nheaders, 0);
    assert_null(req.host);
    assert_false(req.keep_alive);
}

static void parse_trims_whitespace_around_values_but_keeps_it_inside(void **s)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Host:a\r\n"
                             "X-Tabs:\t \tv  w\t \r\n"
                             "X-Empty:\r\n"
                             "X-Blank:   \t\r\n"
                             "X-Obs-Text: caf\xc3\xa9\r\n"
                             "\r\n";
    struct crawl_http_request req;

    (void)s;
    assert_int_equal(parse(in, &req), (int)strlen(in));
    assert_header(&req, "host", "a");
    assert_header(&req, "x-tabs", "v  w");
    assert_header(&req, "x-empty", "");
    assert_header(&req, "x-blank", "");
    assert_header(&req, "x-obs-text", "caf\xc3\xa9");
}

static void parse_refuses_obs_fold_and_whitespace_before_colons(void **state)
{
    static const struct bad cases[] = {
        /* obs-fold: a header line continued on the next */
        {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", -400},
        /* whitespace between the request line and the first header */
        {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400},
        /* whitespace between a field name and its colon */
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", -400},
    };

    (void)state;
    EXPECT_ALL(cases);
}

static void parse_refuses_bare_cr_and_nul_anywhere_in_the_head(void **state)
{
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n";
    struct crawl_http_request req;

    static const struct bad cases[] = {
        {"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\rHost: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", -400},
        {"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    };

    (void)state;
    EXPECT_ALL(cases);
    assert_int_equal(parse_n(nul, sizeof(nul) - 1, NULL, &req), -400);
    assert_int_equal(parse_n("GET /\0 HTTP/1.1\r\n", 17, NULL, &req), -400);
}

static void parse_accepts_leading_empty_lines_and_bare_lf(void **state)
{
    static const char crlf[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char lf[] = "\nGET /lf HTTP/1.1\nHost: b\nX: y\n\n";
    static const char mixed[] = "GET / HTTP/1.1\nHost: c\r\n\n";
    struct crawl_http_request req;

    (void)state;
    assert_int_equal(parse(crlf, &req), (int)strlen(crlf));
    assert_view(req.method, req.method_len, "GET");
    assert_view(req.host, req.host_len, "a");
    assert_int_equal(parse(lf, &req), (int)strlen(lf));
    assert_view(req.target, req.target_len, "/lf");
    assert_header(&req, "x", "y");
    assert_int_equal(parse(mixed, &req), (int)strlen(mixed));
    assert_view(req.host, req.host_len, "c");
}

static void parse_pipelined_heads_one_after_another(void **state)
{
    /* A head, a 5-byte body, then two more heads; then half a head. */
    static const char in[] = "POST /form HTTP/1.1\r\nHost: a\r\n"
                             "Content-Length: 5\r\n\r\n"
                             "hello"
                             "GET /two HTTP/1.1\r\nHost: a\r\n\r\n"
                             "GET /three HTTP/1.1\r\nHost: a\r\n"
                             "Connection: close\r\n\r\n"
                             "GET /four HT";
    struct crawl_http_request req;
    size_t len = strlen(in);
    size_t off = 0;
    int r;

    (void)state;
    r = crawl_http_parse_request(in, len, NULL, &req);
    assert_int_equal(r, 51);
    assert_view(req.method, req.method_len, "POST");
    assert_int_equal(req.content_length, 5);
    off += (size_t)r + 5;

    r = crawl_http_parse_request(in + off, len - off, NULL, &req);
    assert_int_equal(r, 30);
    assert_view(req.target, req.target_len, "/two");
    assert_true(req.keep_alive);
    off += (size_t)r;

    r = crawl_http_parse_request(in + off, len - off, NULL, &req);
    assert_int_equal(r, 51);
    assert_view(req.target, req.target_len, "/three");
    assert_false(req.keep_alive);
    off += (size_t)r;

    assert_int_equal(crawl_http_parse_request(in + off, len - off, NULL, &req),
                     0);
}

static void parse_every_prefix_of_a_head_needs_more_bytes(void **state)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ("\r\nPOST /up HTTP/1.1\r\nHost: a.test\r\n"
         "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"),
        "GET /lf HTTP/1.0\nConnection: keep-alive\n\n",
        "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nX-E:\r\n\r\n",
    };
    struct crawl_http_request req;
    size_t i;
    size_t n;

    (void)state;
    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        size_t len = strlen(heads[i]);

        for (n = 0; n < len; n++)
            assert_int_equal(parse_n(heads[i], n, NULL, &req), 0);
        assert_int_equal(parse_n(heads[i], len, NULL, &req), (int)len);
    }
}

/* ---- request heads: errors ------------------------------------------------
 */

static const struct bad malformed[] = {
    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400}, /* two spaces */
    {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400}, /* tab as separator */
    {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", -400}, /* empty method */
    {"GET HTTP/1.1\r\nHost: a\r\n\r\n", -400},    /* no target */
    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400}, /* space after version */
    {"GET /\r\n\r\n", -400},                      /* HTTP/0.9 style */
    {"GET / http/1.1\r\nHost: a\r\n\r\n", -400},  /* case-sensitive name */
    {"GET / HTTP/1\r\nHost: a\r\n\r\n", -400},
    {"GET / HTTP/1.10\r\nHost: a\r\n\r\n", -400},
    {"GET / HTTP/11.1\r\nHost: a\r\n\r\n", -400},
    {"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", -400},     /* '@' is no tchar */
    {"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", -400}, /* DEL in the target */
    {"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", -400}, /* non-ASCII */
    {"GET / HTTP/1.1\r\nHo/st: a\r\n\r\n", -400},           /* '/' in a name */
    {"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", -400},     /* empty name */
    {"GET / HTTP/1.1\r\nHost a\r\n\r\n", -400},             /* no colon */
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", -400}, /* CTL */
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n\r\n", -400}, /* no Host in 1.1 */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400}, /* invalid Host */
    {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
     "Content-Length: 2\r\n\r\n",
     -400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked"
     "\r\n\r\n",
     -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", -400},
    /* -400 wins over -501 */
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
     "Content-Length: 3\r\n\r\n",
     -400},
    /* the other statuses */
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505},
    {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505},
    {"GET / HTTP/0.9\r\n\r\n", -505},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", -501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
     "\r\n\r\n",
     -501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", -501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
     -501},
};

static void parse_reports_each_error_status_for_a_minimal_input(void **state)
{
    (void)state;
    EXPECT_ALL(malformed);
}

static void parse_prefixes_of_a_bad_head_give_zero_or_its_error(void **state)
{
    struct crawl_http_request req;
    size_t i;
    size_t n;

    (void)state;
    for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        size_t len = strlen(malformed[i].in);
        bool seen = false;

        /* Once the error shows it stays; before, the answer is 0. */
        for (n = 0; n <= len; n++) {
            int r = parse_n(malformed[i].in, n, NULL, &req);

            seen = seen || r != 0;
            assert_int_equal(r, seen ? malformed[i].want : 0);
        }
    }
}

/* ---- request heads: limits ------------------------------------------------
 */

static void parse_target_over_the_limit_is_414_even_unfinished(void **state)
{
    struct crawl_http_limits lim = {.max_target = 8};
    struct crawl_http_request req;

    (void)state;
    assert_int_equal(
        parse_n("GET /2345678 HTTP/1.1\r\nHost: a\r\n\r\n", 34, &lim, &req),
        34);
    assert_int_equal(req.target_len, 8);
    assert_int_equal(parse_n("GET /23456789 HTTP/1.1\r\n", 24, &lim, &req),
                     -414);
    /* Known as soon as the ninth target byte is in. */
    assert_int_equal(parse_n("GET /2345678", 12, &lim, &req), 0);
    assert_int_equal(parse_n("GET /23456789", 13, &lim, &req), -414);
    /* A target longer than the whole head limit still gets 414. */
    lim.max_head_bytes = 16;
    assert_int_equal(parse_n("GET /23456789abcdef", 19, &lim, &req), -414);
}

/* Builds "GET / HTTP/1.1" with n header lines "H<i>: v" into buf. */
static size_t head_with_headers(char *buf, size_t size, int n)
{
    size_t len = (size_t)snprintf(buf, size, "GET / HTTP/1.1\r\nHost: a\r\n");
    int i;

    for (i = 1; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "H%d: v\r\n", i);
    len += (size_t)snprintf(buf + len, size - len, "\r\n");
    return len;
}

static void parse_header_count_at_the_limit_passes_one_more_is_431(void **s)
{
    char buf[4096];
    struct crawl_http_limits lim = {.max_headers = 3};
    struct crawl_http_request req;
    size_t len;

    (void)s;
    len = head_with_headers(buf, sizeof(buf), CRAWL_HTTP_MAX_HEADERS);
    assert_int_equal(parse_n(buf, len, NULL, &req), (int)len);
    assert_int_equal(req.nheaders, CRAWL_HTTP_MAX_HEADERS);
    assert_header(&req, "h63", "v");
    len = head_with_headers(buf, sizeof(buf), CRAWL_HTTP_MAX_HEADERS + 1);
    assert_int_equal(parse_n(buf, len, NULL, &req), -431);

    len = head_with_headers(buf, sizeof(buf), 3);
    assert_int_equal(parse_n(buf, len, &lim, &req), (int)len);
    len = head_with_headers(buf, sizeof(buf), 4);
    assert_int_equal(parse_n(buf, len, &lim, &req), -431);
    /* Known as soon as the extra line starts. */
    assert_int_equal(parse_n(buf, len - 8, &lim, &req), -431);
    assert_int_equal(parse_n(buf, len - 9, &lim, &req), 0);

    /* Larger limits are capped at the array size. */
    lim.max_headers = 1000;
    len = head_with_headers(buf, sizeof(buf), CRAWL_HTTP_MAX_HEADERS + 1);
    assert_int_equal(parse_n(buf, len, &lim, &req), -431);
}

static void parse_head_limit_counts_every_byte_to_the_final_crlf(void **state)
{
    /* A 27-byte head, of which the final CRLF is the last two bytes. */
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
    struct crawl_http_limits lim = {.max_head_bytes = 27};
    struct crawl_http_request req;

    (void)state;
    /* Exactly at the limit: accepted, whatever follows. */
    assert_int_equal(parse_n(in, 27, &lim, &req), 27);
    assert_int_equal(parse_n(in, 30, &lim, &req), 27);
    /* One byte over: refused, as soon as the 27th byte shows it. */
    lim.max_head_bytes = 26;
    assert_int_equal(parse_n(in, 26, &lim, &req), 0);
    assert_int_equal(parse_n(in, 27, &lim, &req), -431);
    /* Leading empty lines count too. */
    lim.max_head_bytes = 28;
    assert_int_equal(
        parse_n("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 30, &lim, &req), -431);
    /* So do bare LFs, which make the same head smaller. */
    lim.max_head_bytes = 24;
    assert_int_equal(parse_n("GET / HTTP/1.1\nHost: a\n\n", 24, &lim, &req),
                     24);
    /* Endless empty lines end in 431 too. */
    lim.max_head_bytes = 8;
    assert_int_equal(parse_n("\r\n\r\n\r\n\r\n", 8, &lim, &req), 0);
    assert_int_equal(parse_n("\r\n\r\n\r\n\r\n\r", 9, &lim, &req), -431);
    assert_int_equal(parse_n("\n\r\n\r\n\r\n\r\n", 9, &lim, &req), -431);
}

static void parse_limits_of_zero_or_null_take_the_defaults(void **state)
{
    static char buf[CRAWL_HTTP_DEFAULT_MAX_HEAD + 64];
    struct crawl_http_limits zero = {0};
    struct crawl_http_request req;
    size_t len;

    (void)state;
    /* A target of exactly 2048 bytes passes, 2049 does not. */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', CRAWL_HTTP_DEFAULT_MAX_TARGET - 1);
    len = 4 + CRAWL_HTTP_DEFAULT_MAX_TARGET;
    memcpy(buf + len, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    assert_int_equal(parse_n(buf, len + 22, &zero, &req), (int)len + 22);
    assert_int_equal(parse_n(buf, len + 22, NULL, &req), (int)len + 22);
    memcpy(buf + len, "a HTTP/1.1\r\nHost: a\r\n\r\n", 23);
    assert_int_equal(parse_n(buf, len + 23, &zero, &req), -414);

    /* A head of exactly 8192 bytes passes, 8193 does not. */
    len =
        (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + len, 'x', CRAWL_HTTP_DEFAULT_MAX_HEAD - len - 4);
    memcpy(buf + CRAWL_HTTP_DEFAULT_MAX_HEAD - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_n(buf, CRAWL_HTTP_DEFAULT_MAX_HEAD, &zero, &req),
                     CRAWL_HTTP_DEFAULT_MAX_HEAD);
    memcpy(buf + CRAWL_HTTP_DEFAULT_MAX_HEAD - 4, "x\r\n\r\n", 5);
    assert_int_equal(parse_n(buf, CRAWL_HTTP_DEFAULT_MAX_HEAD + 1, NULL, &req),
                     -431);
}

/* ---- request heads: semantics -------------------------------------------- */

static void parse_content_length_accepts_only_plain_digits_once(void **state)
{
    static const struct {
        const char *value;
        int64_t want; /* -2: refused with -400 */
    } cases[] = {
        {"10", 10},
        {"  10 ", 10}, /* OWS is the field's, not the value's */
        {"0", 0},
        {"007", 7},
        {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", -2},  /* INT64_MAX + 1 */
        {"18446744073709551616", -2}, /* 20 digits */
        {"", -2},
        {"1,1", -2}, /* a list, even of equal values */
        {"1, 1", -2},
        {"-1", -2},
        {"+5", -2},
        {"5 5", -2},
        {"0x10", -2},
        {"1e3", -2},
        {"12a", -2},
    };
    char in[128];
    struct crawl_http_request req;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int len = snprintf(in, sizeof(in),
                           "POST / HTTP/1.1\r\nHost: a\r\n"
                           "Content-Length:%s\r\n\r\n",
                           cases[i].value);
        int r = parse(in, &req);

        if (cases[i].want == -2) {
            assert_int_equal(r, -400);
        } else {
            assert_int_equal(r, len);
            assert_int_equal(req.content_length, cases[i].want);
        }
    }
    /* Repeated, even with the same value. */
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                           "Content-Length: 1\r\n\r\n",
                           &req),
                     -400);
}

static void parse_transfer_encoding_accepts_chunked_alone(void **state)
{
    static const char *const ok[] = {
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: CHUNKED",
        "Transfer-Encoding: , chunked ,",
        "transfer-encoding:\tChunked\t",
    };
    char in[128];
    struct crawl_http_request req;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int len = snprintf(in, sizeof(in),
                           "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", ok[i]);

        assert_int_equal(parse(in, &req), len);
        assert_true(req.chunked);
        assert_int_equal(req.content_length, -1);
    }
}

static void parse_keep_alive_defaults_differ_between_1_0_and_1_1(void **s)
{
    static const struct {
        const char *in;
        bool want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n", false},
    };
    struct crawl_http_request req;
    size_t i;

    (void)s;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].in, &req), strlen(cases[i].in));
        assert_int_equal(req.keep_alive, cases[i].want);
    }
}

static void parse_connection_token_lists_are_searched(void **state)
{
    static const struct {
        const char *in;
        bool want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close,foo\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: ,, close ,\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\n"
         "Connection: close\r\n\r\n",
         false},
        {"GET / HTTP/1.0\r\nConnection: te, keep-alive\r\n\r\n", true},
        /* close wins over keep-alive */
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, keep-alive\r\n\r\n",
         false},
    };
    struct crawl_http_request req;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].in, &req), strlen(cases[i].in));
        assert_int_equal(req.keep_alive, cases[i].want);
    }
}

static void parse_expect_100_continue_only_in_http_1_1(void **state)
{
    struct crawl_http_request req;

    (void)state;
    assert_true(parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                      "Expect: 100-Continue\r\n\r\n",
                      &req) > 0);
    assert_true(req.expect_continue);
    assert_true(parse("PUT / HTTP/1.0\r\nContent-Length: 3\r\n"
                      "Expect: 100-continue\r\n\r\n",
                      &req) > 0);
    assert_false(req.expect_continue);
    assert_true(parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
                      &req) > 0);
    assert_false(req.expect_continue);
}

static void find_header_ignores_case_and_returns_the_first(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: one\r\n"
                             "x-dup: two\r\n\r\n";
    struct crawl_http_request req;

    (void)state;
    assert_true(parse(in, &req) > 0);
    assert_header(&req, "X-DUP", "one");
    assert_ptr_equal(crawl_http_find_header(&req, "x-dup"), &req.headers[1]);
    assert_null(crawl_http_find_header(&req, "x-du"));
    assert_null(crawl_http_find_header(&req, "x-dupe"));
    assert_null(crawl_http_find_header(&req, ""));
}

/* ---- chunked bodies ------------------------------------------------------ */

/* A body with extensions, an empty-looking data chunk and trailers. */
static const char chunked_body[] = "5;name=value\r\nhello\r\n"
                                   "1A ; a ; b=\"q;\"\r\n"
                                   ", and a longer chunk here!\r\n"
                                   "000A\nfrom a LF\n\n"
                                   "0;last\r\n"
                                   "Trailer-One: 1\r\n"
                                   "Trailer-Two:\r\n"
                                   "\r\n";
static const char chunked_data[] = "hello, and a longer chunk here!from a LF\n";

/*
 * Decodes in[0..len) fed in pieces of at most step bytes into out pieces
 * of at most room bytes, the way a server loop would. Returns the bytes
 * consumed in all, or -400; *out_len receives the body bytes.
 */
static ssize_t decode_pieces(const char *in, size_t len, size_t step,
                             size_t room, char *out, size_t *out_len)
{
    struct crawl_http_chunked d;
    size_t used = 0;
    size_t got = 0;

    crawl_http_chunked_init(&d);
    while (used < len && !d.done) {
        size_t n = len - used < step ? len - used : step;
        char *piece = malloc(n); /* exact size: over-reads are caught */
        size_t w = room;
        ssize_t r;

        assert_non_null(piece);
        memcpy(piece, in + used, n);
        r = crawl_http_chunked_decode(&d, piece, n, out + got, &w);
        free(piece);
        if (r < 0)
            return r;
        assert_true(w <= room);
        /* Progress, unless the piece ended mid-way through nothing. */
        assert_true(r > 0 || w > 0 || n == 0);
        used += (size_t)r;
        got += w;
    }
    *out_len = got;
    return (ssize_t)used;
}

static void chunked_decodes_a_body_and_stops_at_its_end(void **state)
{
    char in[256];
    char out[256];
    size_t len = strlen(chunked_body);
    size_t w = sizeof(out);
    struct crawl_http_chunked d;

    (void)state;
    /* The next request after the body is not consumed. */
    memcpy(in, chunked_body, len);
    memcpy(in + len, "GET", 3);
    crawl_http_chunked_init(&d);
    assert_false(d.done);
    assert_int_equal(crawl_http_chunked_decode(&d, in, len + 3, out, &w), len);
    assert_true(d.done);
    assert_int_equal(w, strlen(chunked_data));
    assert_memory_equal(out, chunked_data, w);

    /* Once done, nothing more is consumed. */
    w = sizeof(out);
    assert_int_equal(crawl_http_chunked_decode(&d, "GET", 3, out, &w), 0);
    assert_int_equal(w, 0);
    assert_true(d.done);
}

static void chunked_decodes_the_same_at_every_split_point(void **state)
{
    size_t len = strlen(chunked_body);
    size_t k;

    (void)state;
    for (k = 0; k <= len; k++) {
        struct crawl_http_chunked d;
        char *a = malloc(k > 0 ? k : 1);
        char *b = malloc(len - k > 0 ? len - k : 1);
        char out[256];
        size_t w1 = sizeof(out);
        size_t w2;
        ssize_t r1;
        ssize_t r2;

        assert_non_null(a);
        assert_non_null(b);
        memcpy(a, chunked_body, k);
        memcpy(b, chunked_body + k, len - k);
        crawl_http_chunked_init(&d);
        r1 = crawl_http_chunked_decode(&d, a, k, out, &w1);
        assert_int_equal(r1, k);
        assert_int_equal(d.done, k == len);
        w2 = sizeof(out) - w1;
        r2 = crawl_http_chunked_decode(&d, b, len - k, out + w1, &w2);
        assert_int_equal(r2, len - k);
        assert_true(d.done);
        assert_int_equal(w1 + w2, strlen(chunked_data));
        assert_memory_equal(out, chunked_data, w1 + w2);
        free(a);
        free(b);
    }
}

static void chunked_decodes_byte_by_byte_into_small_buffers(void **state)
{
    size_t len = strlen(chunked_body);
    size_t step;
    size_t room;

    (void)state;
    for (step = 1; step <= 7; step++) {
        for (room = 1; room <= 5; room++) {
            char out[256];
            size_t w = 0;

            assert_int_equal(
                decode_pieces(chunked_body, len, step, room, out, &w), len);
            assert_int_equal(w, strlen(chunked_data));
            assert_memory_equal(out, chunked_data, w);
        }
    }
}

static void chunked_stops_when_out_is_full_and_resumes(void **state)
{
    static const char in[] = "a\r\n0123456789\r\n0\r\n\r\n";
    struct crawl_http_chunked d;
    char out[4];
    size_t w = sizeof(out);

    (void)state;
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, in, 20, out, &w), 7);
    assert_int_equal(w, 4);
    assert_memory_equal(out, "0123", 4);
    w = 0; /* no room: no progress, no harm */
    assert_int_equal(crawl_http_chunked_decode(&d, in + 7, 13, out, &w), 0);
    w = sizeof(out);
    assert_int_equal(crawl_http_chunked_decode(&d, in + 7, 13, out, &w), 4);
    assert_memory_equal(out, "4567", 4);
    w = sizeof(out);
    assert_int_equal(crawl_http_chunked_decode(&d, in + 11, 9, out, &w), 9);
    assert_int_equal(w, 2);
    assert_memory_equal(out, "89", 2);
    assert_true(d.done);
}

static void chunked_discards_data_when_out_is_null(void **state)
{
    struct crawl_http_chunked d;
    size_t w = 0;

    (void)state;
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, chunked_body,
                                               strlen(chunked_body), NULL, &w),
                     strlen(chunked_body));
    assert_int_equal(w, strlen(chunked_data));
    assert_true(d.done);
}

static void chunked_refuses_malformed_framing(void **state)
{
    static const char *const cases[] = {
        "\r\n",  /* no size */
        "g\r\n", /* not hex */
        "-1\r\n",
        "+1\r\n",
        " 1\r\n", /* whitespace before the size */
        "0x1\r\n",
        "1 2\r\n", /* whitespace not followed by ';' */
        "1\rx",    /* bare CR */
        "1;a\rb\r\n",
        "1;a\x01\r\n",     /* control in an extension */
        "3\r\nabcd\r\n",   /* data longer than the size */
        "3\r\nab\r\n\r\n", /* data shorter than the size */
        "3\r\nabc\rX",
        "3\r\nabcX",
        "0\r\nTrailer\r\n\r\n", /* trailer without a colon */
        "0\r\nBad Name: x\r\n\r\n",
        "0\r\nT: 1\r\n folded\r\n\r\n",
        "0\r\n: x\r\n\r\n", /* empty trailer name */
        "0\r\nT: a\x7f\r\n\r\n",
        "0\r\nT: a\r\n\rx",
        "0\r\n\rx",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        size_t w = 0;
        ssize_t r =
            decode_pieces(cases[i], strlen(cases[i]), 64, sizeof(out), out, &w);

        if (r != -400)
            print_error("case %zu: \"%s\"\n", i, cases[i]);
        assert_int_equal(r, -400);
        /* Fed one byte at a time, the same input fails the same way. */
        assert_int_equal(
            decode_pieces(cases[i], strlen(cases[i]), 1, 1, out, &w), -400);
    }
}

static void chunked_refuses_sizes_above_2_62(void **state)
{
    struct crawl_http_chunked d;
    size_t w = 0;

    (void)state;
    crawl_http_chunked_init(&d);
    assert_int_equal(
        crawl_http_chunked_decode(&d, "4000000000000000\r\nab", 20, NULL, &w),
        20);
    assert_int_equal(d.size, (UINT64_C(1) << 62) - 2);
    crawl_http_chunked_init(&d);
    assert_int_equal(
        crawl_http_chunked_decode(&d, "00004000000000000001", 20, NULL, &w),
        -400);
    crawl_http_chunked_init(&d);
    assert_int_equal(
        crawl_http_chunked_decode(&d, "10000000000000000", 17, NULL, &w), -400);
    crawl_http_chunked_init(&d);
    assert_int_equal(
        crawl_http_chunked_decode(&d, "ffffffffffffffffffff", 20, NULL, &w),
        -400);
}

static void chunked_refuses_endless_extensions_and_trailers(void **state)
{
    static char in[CRAWL_HTTP_CHUNK_META_MAX + 16];
    struct crawl_http_chunked d;
    size_t w = 0;
    size_t n;
    size_t max = CRAWL_HTTP_CHUNK_META_MAX;

    (void)state;
    /* A size line of exactly the maximum passes; one byte more does not. */
    in[0] = '1';
    in[1] = ';';
    memset(in + 2, 'x', max - 4);
    memcpy(in + max - 2, "\r\nZ\r\n", 5);
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, in, max + 3, NULL, &w),
                     max + 3);
    assert_int_equal(w, 1);
    memcpy(in + max - 2, "x\r\n", 3);
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, in, max + 1, NULL, &w),
                     -400);

    /* The same for the trailer section... */
    memcpy(in, "0\r\nT:", 5);
    memset(in + 5, 'v', max - 6);
    memcpy(in + max - 1, "\r\n\r\n", 4);
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, in, max + 3, NULL, &w),
                     max + 3);
    assert_true(d.done);
    memcpy(in + max - 1, "v\r\n\r\n", 5);
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, in, max + 4, NULL, &w),
                     -400);

    /* ...whatever its line count. */
    for (n = 3; n - 3 <= max; n += 5)
        memcpy(in + n, "T:1\r\n", 5);
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, in, n, NULL, &w), -400);
}

/* ---- responses ------------------------------------------------------------
 */

static void format_head_writes_the_exact_bytes(void **state)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n";
    static const char nf[] = "HTTP/1.1 404 Not Found\r\n"
                             "Content-Type: text/plain\r\nX-A: b\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n";
    static const char ch[] = "HTTP/1.1 200 OK\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n";
    static const char big[] = "HTTP/1.1 299 Unknown\r\n"
                              "Content-Length: 9223372036854775807\r\n\r\n";
    char out[256];

    (void)state;
    memset(out, '#', sizeof(out));
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 200, NULL, 42, true),
        strlen(ok));
    assert_string_equal(out, ok);
    assert_int_equal(crawl_http_format_head(out, sizeof(out), 404,
                                            "Content-Type: text/plain\r\n"
                                            "X-A: b\r\n",
                                            0, false),
                     strlen(nf));
    assert_string_equal(out, nf);
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 200, "", -1, true),
        strlen(ch));
    assert_string_equal(out, ch);
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 299, NULL, INT64_MAX, true),
        strlen(big));
    assert_string_equal(out, big);
}

static void format_head_omits_framing_for_1xx_and_204(void **state)
{
    char out[128];

    (void)state;
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 100, NULL, 0, false), 25);
    assert_string_equal(out, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 204, NULL, 10, false), 46);
    assert_string_equal(out, "HTTP/1.1 204 No Content\r\n"
                             "Connection: close\r\n\r\n");
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 304, NULL, 10, true), 49);
    assert_string_equal(out, "HTTP/1.1 304 Not Modified\r\n"
                             "Content-Length: 10\r\n\r\n");
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 99, NULL, 0, true), -EINVAL);
    assert_int_equal(
        crawl_http_format_head(out, sizeof(out), 600, NULL, 0, true), -EINVAL);
}

static void format_head_needs_room_for_every_byte_and_the_nul(void **s)
{
    static const char want[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Retry-After: 1\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "Connection: close\r\n\r\n";
    size_t len = strlen(want);
    size_t n;

    (void)s;
    for (n = 0; n <= len + 1; n++) {
        char *out = malloc(n > 0 ? n : 1); /* exact: overruns are caught */
        int r;

        assert_non_null(out);
        r = crawl_http_format_head(out, n, 503, "Retry-After: 1\r\n", -1,
                                   false);
        if (n <= len) {
            assert_int_equal(r, -ENOSPC);
        } else {
            assert_int_equal(r, len);
            assert_string_equal(out, want);
        }
        free(out);
    }
}

static void reason_phrases_cover_the_usual_codes(void **state)
{
    (void)state;
    assert_string_equal(crawl_http_reason(200), "OK");
    assert_string_equal(crawl_http_reason(301), "Moved Permanently");
    assert_string_equal(crawl_http_reason(404), "Not Found");
    assert_string_equal(crawl_http_reason(414), "URI Too Long");
    assert_string_equal(crawl_http_reason(429), "Too Many Requests");
    assert_string_equal(crawl_http_reason(431),
                        "Request Header Fields Too Large");
    assert_string_equal(crawl_http_reason(505), "HTTP Version Not Supported");
    assert_string_equal(crawl_http_reason(299), "Unknown");
    assert_string_equal(crawl_http_reason(-1), "Unknown");
}

static void chunk_head_writes_hex_sizes_and_the_last_chunk(void **state)
{
    char out[32];
    char small[5];

    (void)state;
    assert_int_equal(crawl_http_chunk_head(out, sizeof(out), 1), 3);
    assert_string_equal(out, "1\r\n");
    assert_int_equal(crawl_http_chunk_head(out, sizeof(out), 4096), 6);
    assert_string_equal(out, "1000\r\n");
    assert_int_equal(crawl_http_chunk_head(out, sizeof(out), 0xabcdef), 8);
    assert_string_equal(out, "abcdef\r\n");
    assert_int_equal(crawl_http_chunk_head(out, sizeof(out), 0), 5);
    assert_string_equal(out, "0\r\n\r\n");
    /* The NUL needs room too. */
    assert_int_equal(crawl_http_chunk_head(small, 5, 0), -ENOSPC);
    assert_int_equal(crawl_http_chunk_head(small, 5, 0x1000), -ENOSPC);
    assert_int_equal(crawl_http_chunk_head(small, 4, 0x10), -ENOSPC);
    assert_int_equal(crawl_http_chunk_head(small, 5, 0x10), 4);
    assert_string_equal(small, "10\r\n");
}

static void chunk_head_output_decodes_back(void **state)
{
    /* What the writers produce, the decoder reads back. */
    static const size_t sizes[] = {1, 15, 16, 255, 256, 1000};
    static char body[4096];
    static char data[2048];
    static char out[2048];
    struct crawl_http_chunked d;
    size_t len = 0;
    size_t want = 0;
    size_t w = sizeof(out);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        len += (size_t)crawl_http_chunk_head(body + len, sizeof(body) - len,
                                             sizes[i]);
        memset(data + want, 'a' + (int)i, sizes[i]);
        memcpy(body + len, data + want, sizes[i]);
        len += sizes[i];
        want += sizes[i];
        memcpy(body + len, "\r\n", 2);
        len += 2;
    }
    len += (size_t)crawl_http_chunk_head(body + len, sizeof(body) - len, 0);
    crawl_http_chunked_init(&d);
    assert_int_equal(crawl_http_chunked_decode(&d, body, len, out, &w), len);
    assert_true(d.done);
    assert_int_equal(w, want);
    assert_memory_equal(out, data, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_simple_get_fills_every_field),
        cmocka_unit_test(parse_head_request_keeps_its_method_and_target),
        cmocka_unit_test(
            parse_trims_whitespace_around_values_but_keeps_it_inside),
        cmocka_unit_test(parse_refuses_obs_fold_and_whitespace_before_colons),
        cmocka_unit_test(parse_refuses_bare_cr_and_nul_anywhere_in_the_head),
        cmocka_unit_test(parse_accepts_leading_empty_lines_and_bare_lf),
        cmocka_unit_test(parse_pipelined_heads_one_after_another),
        cmocka_unit_test(parse_every_prefix_of_a_head_needs_more_bytes),
        cmocka_unit_test(parse_reports_each_error_status_for_a_minimal_input),
        cmocka_unit_test(parse_prefixes_of_a_bad_head_give_zero_or_its_error),
        cmocka_unit_test(parse_target_over_the_limit_is_414_even_unfinished),
        cmocka_unit_test(
            parse_header_count_at_the_limit_passes_one_more_is_431),
        cmocka_unit_test(parse_head_limit_counts_every_byte_to_the_final_crlf),
        cmocka_unit_test(parse_limits_of_zero_or_null_take_the_defaults),
        cmocka_unit_test(parse_content_length_accepts_only_plain_digits_once),
        cmocka_unit_test(parse_transfer_encoding_accepts_chunked_alone),
        cmocka_unit_test(parse_keep_alive_defaults_differ_between_1_0_and_1_1),
        cmocka_unit_test(parse_connection_token_lists_are_searched),
        cmocka_unit_test(parse_expect_100_continue_only_in_http_1_1),
        cmocka_unit_test(find_header_ignores_case_and_returns_the_first),
        cmocka_unit_test(chunked_decodes_a_body_and_stops_at_its_end),
        cmocka_unit_test(chunked_decodes_the_same_at_every_split_point),
        cmocka_unit_test(chunked_decodes_byte_by_byte_into_small_buffers),
        cmocka_unit_test(chunked_stops_when_out_is_full_and_resumes),
        cmocka_unit_test(chunked_discards_data_when_out_is_null),
        cmocka_unit_test(chunked_refuses_malformed_framing),
        cmocka_unit_test(chunked_refuses_sizes_above_2_62),
        cmocka_unit_test(chunked_refuses_endless_extensions_and_trailers),
        cmocka_unit_test(format_head_writes_the_exact_bytes),
        cmocka_unit_test(format_head_omits_framing_for_1xx_and_204),
        cmocka_unit_test(format_head_needs_room_for_every_byte_and_the_nul),
        cmocka_unit_test(reason_phrases_cover_the_usual_codes),
        cmocka_unit_test(chunk_head_writes_hex_sizes_and_the_last_chunk),
        cmocka_unit_test(chunk_head_output_decodes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
