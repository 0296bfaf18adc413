// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the demo server's HTTP/1.1 layer
 * (apps/crawl/http_proto.c). The input is read twice:
 *
 *   - as a connection's bytes: request heads parsed one after another
 *     (pipelining), each followed by its body as a server would skip it
 *     (Content-Length bytes, or a chunked body through the decoder);
 *   - as a chunked body on its own, decoded in one call and again in small
 *     pieces into a 3-byte buffer; both ways must agree.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it checks
 * what the header promises: views lie inside the head, a complete head's
 * proper prefixes are incomplete, an error stays the same as more bytes
 * arrive, and errors are only the documented statuses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static int parse_copy(const char *buf, size_t len,
                      struct crawl_http_request *req)
{
    /* An exact-size copy: reading past len is caught by ASan. */
    char *copy = malloc(len > 0 ? len : 1);
    int r;

    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    r = crawl_http_parse_request(copy, len, NULL, req);
    free(copy);
    return r;
}

static void check_view(const char *p, size_t len, const char *head, int n)
{
    CHECK(p != NULL && p >= head && len <= (size_t)n &&
          (size_t)(p - head) <= (size_t)n - len);
}

static void check_request(const struct crawl_http_request *req,
                          const char *head, int n)
{
    int i;

    CHECK(n <= CRAWL_HTTP_DEFAULT_MAX_HEAD);
    check_view(req->method, req->method_len, head, n);
    check_view(req->target, req->target_len, head, n);
    CHECK(req->method_len > 0 && req->target_len > 0);
    CHECK(req->target_len <= CRAWL_HTTP_DEFAULT_MAX_TARGET);
    CHECK(req->minor == 0 || req->minor == 1);
    CHECK(req->nheaders >= 0 && req->nheaders <= CRAWL_HTTP_MAX_HEADERS);
    for (i = 0; i < req->nheaders; i++) {
        check_view(req->headers[i].name, req->headers[i].name_len, head, n);
        check_view(req->headers[i].value, req->headers[i].value_len, head, n);
    }
    if (req->host != NULL)
        check_view(req->host, req->host_len, head, n);
    CHECK(req->minor == 0 || req->host != NULL);
    CHECK(!(req->chunked && req->content_length >= 0));
}

static bool is_status(int r)
{
    return r == -400 || r == -414 || r == -431 || r == -501 || r == -505;
}

/* Skips a chunked body at in[0..len); returns the bytes it takes. */
static size_t skip_chunked(const char *in, size_t len)
{
    struct crawl_http_chunked d;
    size_t out_len = 0;
    ssize_t r;

    crawl_http_chunked_init(&d);
    r = crawl_http_chunked_decode(&d, in, len, NULL, &out_len);
    if (r < 0 || !d.done)
        return len; /* the connection would be closed */
    CHECK((size_t)r <= len && out_len <= (size_t)r);
    return (size_t)r;
}

static void fuzz_connection(const char *buf, size_t size)
{
    struct crawl_http_request req;
    struct crawl_http_request tmp;
    size_t off = 0;
    int r;

    for (;;) {
        size_t left = size - off;

        /* The input ends where the fuzzer's block does: no copy needed. */
        r = crawl_http_parse_request(buf + off, left, NULL, &req);
        if (r <= 0)
            break;
        CHECK((size_t)r <= left);
        check_request(&req, buf + off, r);
        /* One byte less is never a complete head nor an error. */
        CHECK(parse_copy(buf + off, (size_t)r - 1, &tmp) == 0);
        off += (size_t)r;
        if (req.chunked)
            off += skip_chunked(buf + off, size - off);
        else if (req.content_length > 0)
            off += (uint64_t)req.content_length < size - off
                       ? (size_t)req.content_length
                       : size - off;
    }
    if (r < 0) {
        int half = parse_copy(buf + off, (size - off) / 2, &tmp);

        CHECK(is_status(r));
        /* A prefix gets 0 or the same error. */
        CHECK(half == 0 || half == r);
    }
}

/*
 * Decodes in[0..len) in pieces of step bytes into a 3-byte buffer,
 * appending the body to out. Returns the bytes consumed, or -400.
 */
static ssize_t decode_pieces(const char *in, size_t len, size_t step, char *out,
                             size_t *out_len, bool *done)
{
    struct crawl_http_chunked d;
    size_t used = 0;

    crawl_http_chunked_init(&d);
    *out_len = 0;
    while (used < len && !d.done) {
        size_t n = len - used < step ? len - used : step;
        char *piece = malloc(n);
        size_t w = 3;
        ssize_t r;

        CHECK(piece != NULL);
        memcpy(piece, in + used, n);
        r = crawl_http_chunked_decode(&d, piece, n, out + *out_len, &w);
        free(piece);
        if (r < 0)
            return r;
        CHECK(w <= 3 && (size_t)r <= n);
        CHECK(r > 0 || w > 0); /* room and input always give progress */
        used += (size_t)r;
        *out_len += w;
    }
    *done = d.done;
    return (ssize_t)used;
}

static void fuzz_chunked(const char *buf, size_t size)
{
    struct crawl_http_chunked d;
    char *out = malloc(size + 3);
    char *out2 = malloc(size + 3);
    size_t out_len = size;
    size_t out2_len;
    bool done2 = false;
    ssize_t r;
    ssize_t r2;

    CHECK(out != NULL && out2 != NULL);
    crawl_http_chunked_init(&d);
    r = crawl_http_chunked_decode(&d, buf, size, out, &out_len);
    r2 = decode_pieces(buf, size, size > 0 ? 1 + (uint8_t)buf[0] % 7 : 1, out2,
                       &out2_len, &done2);
    CHECK(r == r2);
    if (r >= 0) {
        CHECK((size_t)r <= size && out_len <= (size_t)r);
        CHECK(d.done == done2 && out_len == out2_len);
        CHECK(memcmp(out, out2, out_len) == 0);
        CHECK(d.done || (size_t)r == size);
    }
    free(out);
    free(out2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_connection((const char *)data, size);
    fuzz_chunked((const char *)data, size);
    return 0;
}
