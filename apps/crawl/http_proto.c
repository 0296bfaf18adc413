// SPDX-License-Identifier: MIT
/*
 * The HTTP/1.1 protocol layer of the demo server (RFC 9112), as pure
 * functions. The file has four parts:
 *
 *   - character classes and small helpers shared by the parts below;
 *   - the request head parser: a syntax pass over the bytes (request line,
 *     then header lines) that stops at the first bad byte or at the end of
 *     the data, then a semantic pass over the parsed header lines (Host,
 *     Content-Length, Transfer-Encoding, Connection, Expect);
 *   - the chunked body decoder, a byte-at-a-time state machine except for
 *     chunk data, which is copied in blocks;
 *   - response writing: status line and framing headers, reason phrases,
 *     chunk lines.
 *
 * The head parser keeps no state between calls: it parses from the first
 * byte every time. Heads are small (8 KiB by default) and a server calls it
 * once per read, so the rescans cost little, and no state means no state to
 * get wrong when a head arrives one byte at a time.
 */
#include "http_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- character classes and helpers --------------------------------------- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* tchar of RFC 9110 5.6.2: the characters of methods and field names. */
static bool is_tchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Bytes allowed in a request-target: visible ASCII. The URI grammar is
 * narrower, but checking it is the router's business; what matters here
 * is that the target holds no whitespace, controls or non-ASCII bytes.
 */
static bool is_target_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* field-vchar, SP and HTAB (RFC 9110 5.5): anything but controls. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Whether s[0..n) equals the NUL-terminated @lit, ignoring ASCII case. */
static bool ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' ||
            lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return false;
    }
    return lit[n] == '\0';
}

/*
 * Walks the elements of a comma-separated list (RFC 9110 5.6.1): on each
 * call, sets s[0..n) to the next element without OWS (it may be empty) and
 * returns true; returns false when the list is used up. *pos starts at the
 * field value and becomes NULL after the last element.
 */
static bool next_elem(const char **pos, const char *end, const char **s,
                      size_t *n)
{
    const char *p = *pos;
    const char *comma;
    const char *stop;

    if (p == NULL)
        return false;
    comma = memchr(p, ',', (size_t)(end - p));
    stop = comma != NULL ? comma : end;
    while (p < stop && is_ows((unsigned char)*p))
        p++;
    while (stop > p && is_ows((unsigned char)stop[-1]))
        stop--;
    *s = p;
    *n = (size_t)(stop - p);
    *pos = comma != NULL ? comma + 1 : NULL;
    return true;
}

/*
 * Checks for a line end at p: CRLF or a bare LF. Returns its length (1 or
 * 2), 0 when the data stops before it is known, -400 for anything else
 * (in particular a CR followed by something other than LF).
 */
static int line_end(const char *p, const char *end)
{
    if (p == end)
        return 0;
    if (*p == '\n')
        return 1;
    if (*p != '\r')
        return -400;
    if (p + 1 == end)
        return 0;
    return p[1] == '\n' ? 2 : -400;
}

/* ---- request head: syntax ------------------------------------------------ */

/*
 * Parses "method SP request-target SP HTTP-version CRLF" at *pp, advancing
 * *pp past it. Returns 1 when parsed, 0 when the data ends first, or a
 * negative status. Checks happen in byte order, so a prefix of a line
 * gets either 0 or the error the whole line gets.
 */
static int parse_request_line(const char **pp, const char *end,
                              size_t max_target, struct crawl_http_request *req)
{
    static const char proto[] = "HTTP/d.d";
    const char *p = *pp;
    const char *s = p;
    size_t i;
    int n;

    while (p < end && is_tchar((unsigned char)*p))
        p++;
    if (p == end)
        return 0;
    if (p == s || *p != ' ')
        return -400;
    req->method = s;
    req->method_len = (size_t)(p - s);

    s = ++p;
    while (p < end && is_target_char((unsigned char)*p)) {
        /* Reported before the line ends: a huge target gets 414, not 431. */
        if ((size_t)(p - s) == max_target)
            return -414;
        p++;
    }
    if (p == end)
        return 0;
    if (p == s || *p != ' ')
        return -400;
    req->target = s;
    req->target_len = (size_t)(p - s);

    p++;
    for (i = 0; i < sizeof(proto) - 1; i++, p++) {
        if (p == end)
            return 0;
        if (proto[i] == 'd' ? !is_digit((unsigned char)*p) : *p != proto[i])
            return -400;
    }
    n = line_end(p, end);
    if (n <= 0)
        return n;
    /* The version is well-formed; only now is it judged. */
    if (p[-3] != '1' || (p[-1] != '0' && p[-1] != '1'))
        return -505;
    req->minor = p[-1] - '0';
    *pp = p + n;
    return 1;
}

/*
 * Parses header lines and the empty line ending the head, from *pp. Same
 * returns as parse_request_line().
 */
static int parse_header_lines(const char **pp, const char *end, int max_headers,
                              struct crawl_http_request *req)
{
    const char *p = *pp;
    int n;

    for (;;) {
        struct crawl_http_header *h;
        const char *s;
        const char *value_end;

        if (p == end)
            return 0;
        if (*p == '\r' || *p == '\n') {
            n = line_end(p, end);
            if (n <= 0)
                return n;
            *pp = p + n;
            return 1;
        }
        /*
         * A line starting with whitespace is obs-fold, or whitespace
         * between the request line and the first header: RFC 9112 5.2 and
         * 2.2 allow refusing both.
         */
        if (is_ows((unsigned char)*p))
            return -400;
        if (req->nheaders == max_headers)
            return -431;

        s = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        if (p == end)
            return 0;
        /* Also refuses whitespace before the colon (RFC 9112 5.1). */
        if (p == s || *p != ':')
            return -400;
        h = &req->headers[req->nheaders];
        h->name = s;
        h->name_len = (size_t)(p - s);

        p++;
        while (p < end && is_ows((unsigned char)*p))
            p++;
        s = value_end = p;
        while (p < end && *p != '\r' && *p != '\n') {
            if (!is_field_char((unsigned char)*p))
                return -400;
            if (!is_ows((unsigned char)*p))
                value_end = p + 1;
            p++;
        }
        n = line_end(p, end);
        if (n <= 0)
            return n;
        h->value = s;
        h->value_len = (size_t)(value_end - s);
        req->nheaders++;
        p += n;
    }
}

/* ---- request head: semantics --------------------------------------------- */

/* Content-Length = 1*DIGIT (RFC 9112 6.3), at most INT64_MAX. */
static bool parse_length(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        int d = s[i] - '0';

        if (!is_digit((unsigned char)s[i]) || v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/*
 * Host = uri-host [ ":" port ] (RFC 9110 7.2): checked loosely, by
 * characters (those of reg-name, IP literals and the port). The value may
 * be empty.
 */
static bool host_is_valid(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!is_alpha(c) && !is_digit(c) &&
            (c == '\0' || strchr("-._~!$&'()*+,;=:[]%", c) == NULL))
            return false;
    }
    return true;
}

/*
 * Applies the header lines that matter to framing and connection handling;
 * returns 1, or a negative status. Every -400 wins over -501: a message
 * malformed in any way is reported as malformed, whatever coding it names.
 */
static int apply_headers(struct crawl_http_request *req)
{
    bool has_te = false;
    bool unknown_te = false;
    bool close = false;
    bool keep_alive = false;
    int i;

    for (i = 0; i < req->nheaders; i++) {
        const struct crawl_http_header *h = &req->headers[i];
        const char *end = h->value + h->value_len;
        const char *pos = h->value;
        const char *s;
        size_t n;

        if (ieq(h->name, h->name_len, "host")) {
            if (req->host != NULL || !host_is_valid(h->value, h->value_len))
                return -400;
            req->host = h->value;
            req->host_len = h->value_len;
        } else if (ieq(h->name, h->name_len, "content-length")) {
            /*
             * A repeated Content-Length, even with the same value, and a
             * list ("5, 5") are refused: RFC 9112 6.3 allows it, and it
             * leaves no doubt about where the body ends.
             */
            if (req->content_length >= 0 ||
                !parse_length(h->value, h->value_len, &req->content_length))
                return -400;
        } else if (ieq(h->name, h->name_len, "transfer-encoding")) {
            has_te = true;
            while (next_elem(&pos, end, &s, &n)) {
                if (n == 0)
                    continue;
                if (!ieq(s, n, "chunked"))
                    unknown_te = true;
                else if (req->chunked)
                    return -400; /* chunked twice (RFC 9112 7) */
                else
                    req->chunked = true;
            }
        } else if (ieq(h->name, h->name_len, "connection")) {
            while (next_elem(&pos, end, &s, &n)) {
                close = close || ieq(s, n, "close");
                keep_alive = keep_alive || ieq(s, n, "keep-alive");
            }
        } else if (ieq(h->name, h->name_len, "expect")) {
            if (req->minor == 1 && ieq(h->value, h->value_len, "100-continue"))
                req->expect_continue = true;
        }
    }

    if (has_te) {
        /*
         * Both framings at once is the classic smuggling vector (RFC 9112
         * 6.1 allows refusing); HTTP/1.0 has no transfer codings, so the
         * framing is unreliable (RFC 9112 6.1).
         */
        if (req->content_length >= 0 || req->minor == 0)
            return -400;
        if (!req->chunked && !unknown_te)
            return -400; /* only empty elements */
    }
    if (req->minor == 1 && req->host == NULL)
        return -400;
    if (unknown_te)
        return -501;
    req->keep_alive = !close && (req->minor == 1 || keep_alive);
    return 1;
}

int crawl_http_parse_request(const char *buf, size_t len,
                             const struct crawl_http_limits *lim,
                             struct crawl_http_request *req)
{
    size_t max_head = CRAWL_HTTP_DEFAULT_MAX_HEAD;
    size_t max_target = CRAWL_HTTP_DEFAULT_MAX_TARGET;
    int max_headers = CRAWL_HTTP_MAX_HEADERS;
    const char *p = buf;
    const char *end;
    int r;

    if (len == 0)
        return 0; /* also spares buf + 0 on a NULL buf */
    if (lim != NULL) {
        if (lim->max_head_bytes > 0)
            max_head = lim->max_head_bytes;
        if (lim->max_target > 0)
            max_target = lim->max_target;
        if (lim->max_headers > 0 && lim->max_headers < max_headers)
            max_headers = lim->max_headers;
    }
    /* The return value is an int; no head may be longer. */
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    /*
     * Only the first max_head bytes are parsed: a head not complete within
     * them is too large, and errors in them are reported as they are.
     */
    end = buf + (len < max_head ? len : max_head);

    req->method = req->target = req->host = NULL;
    req->method_len = req->target_len = req->host_len = 0;
    req->minor = req->nheaders = 0;
    req->keep_alive = req->chunked = req->expect_continue = false;
    req->content_length = -1;

    /* Empty lines before the request line are skipped (RFC 9112 2.2). */
    r = 1;
    while (r > 0 && p < end && (*p == '\r' || *p == '\n')) {
        r = line_end(p, end);
        p += r > 0 ? r : 0;
    }
    if (r > 0)
        r = parse_request_line(&p, end, max_target, req);
    if (r > 0)
        r = parse_header_lines(&p, end, max_headers, req);
    if (r > 0)
        r = apply_headers(req);
    if (r == 0)
        return len > max_head ? -431 : 0;
    return r < 0 ? r : (int)(p - buf);
}

const struct crawl_http_header *
crawl_http_find_header(const struct crawl_http_request *req, const char *name)
{
    int i;

    for (i = 0; i < req->nheaders; i++) {
        const struct crawl_http_header *h = &req->headers[i];

        if (ieq(h->name, h->name_len, name))
            return h;
    }
    return NULL;
}

/* ---- chunked body decoder ------------------------------------------------ */

/*
 * States of the decoder, named for what the next byte may be. Grammar
 * (RFC 9112 7.1):
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * A CR ending a line is noted in d->cr and left out of the states: the LF
 * that must follow it is handled as a bare LF would be.
 */
enum {
    CH_SIZE,      /* first hex digit of a chunk-size */
    CH_SIZE_MORE, /* more hex digits, or what follows the size */
    CH_EXT_WS,    /* BWS after the size: only ';' may follow */
    CH_EXT,       /* inside chunk extensions, skipped to the line end */
    CH_DATA,      /* chunk data: size bytes still due */
    CH_DATA_END,  /* the line end after chunk data */
    CH_TRAILER,   /* start of a trailer line, or the final empty line */
    CH_TR_NAME,   /* rest of a trailer field name, up to ':' */
    CH_TR_VALUE,  /* trailer field value, up to the line end */
    CH_DONE,      /* the body is over */
};

/* Chunk sizes above this are refused, so sums of sizes cannot overflow. */
#define CHUNK_SIZE_MAX (UINT64_C(1) << 62)

void crawl_http_chunked_init(struct crawl_http_chunked *d)
{
    d->state = CH_SIZE;
    d->size = 0;
    d->meta = 0;
    d->cr = false;
    d->done = false;
}

static int hex_value(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Consumes one byte c outside chunk data and CRs. Returns 0, or -400. */
static int chunked_step(struct crawl_http_chunked *d, unsigned char c)
{
    int v = hex_value(c);

    switch (d->state) {
    case CH_SIZE:
    case CH_SIZE_MORE:
        if (v >= 0) {
            /* size <= 2^58 keeps size * 16 + 15 within uint64_t. */
            if (d->size > CHUNK_SIZE_MAX >> 4)
                return -400;
            d->size = d->size * 16 + (uint64_t)v;
            d->state = CH_SIZE_MORE;
            return d->size > CHUNK_SIZE_MAX ? -400 : 0;
        }
        if (d->state == CH_SIZE)
            return -400;
        /* The size is complete: c follows it, as in CH_EXT_WS. */
        d->state = CH_EXT_WS;
        return chunked_step(d, c);
    case CH_EXT_WS:
    case CH_EXT:
        if (c == '\n') {
            d->state = d->size == 0 ? CH_TRAILER : CH_DATA;
            d->meta = 0;
        } else if (c == ';') {
            d->state = CH_EXT;
        } else if (d->state == CH_EXT ? !is_field_char(c) : !is_ows(c)) {
            return -400;
        }
        return 0;
    case CH_DATA_END:
        if (c != '\n')
            return -400;
        d->state = CH_SIZE;
        d->meta = 0;
        return 0;
    case CH_TRAILER:
        if (c == '\n')
            d->state = CH_DONE;
        else if (is_tchar(c))
            d->state = CH_TR_NAME;
        else
            return -400; /* includes obs-fold */
        return 0;
    case CH_TR_NAME:
        if (c == ':')
            d->state = CH_TR_VALUE;
        else if (!is_tchar(c))
            return -400;
        return 0;
    case CH_TR_VALUE:
        if (c == '\n')
            d->state = CH_TRAILER;
        else if (!is_field_char(c))
            return -400;
        return 0;
    default:
        return -400; /* CH_DATA and CH_DONE never get here */
    }
}

ssize_t crawl_http_chunked_decode(struct crawl_http_chunked *d, const char *in,
                                  size_t len, char *out, size_t *out_len)
{
    size_t cap = out != NULL ? *out_len : SIZE_MAX;
    size_t written = 0;
    size_t i = 0;
    int r = 0;

    while (i < len && d->state != CH_DONE && r == 0) {
        unsigned char c = (unsigned char)in[i];

        if (d->state == CH_DATA) {
            size_t n = len - i;

            if (n > d->size)
                n = (size_t)d->size;
            if (n > cap - written)
                n = cap - written;
            if (n == 0)
                break; /* out is full */
            if (out != NULL)
                memcpy(out + written, in + i, n);
            written += n;
            i += n;
            d->size -= n;
            if (d->size == 0)
                d->state = CH_DATA_END;
            continue;
        }
        /* Size lines and the trailer section are bounded; data is not. */
        if (d->state != CH_DATA_END && ++d->meta > CRAWL_HTTP_CHUNK_META_MAX) {
            r = -400;
        } else if (c == '\r' && !d->cr) {
            d->cr = true;
        } else if (d->cr && c != '\n') {
            r = -400; /* bare CR */
        } else {
            d->cr = false;
            r = chunked_step(d, c);
        }
        i++;
    }
    d->done = d->state == CH_DONE;
    *out_len = written;
    return r < 0 ? r : (ssize_t)i;
}

/* ---- responses ----------------------------------------------------------- */

/* Reason phrases of RFC 9110 15, by status code. */
static const struct {
    int status;
    const char *reason;
} reasons[] = {
    // clang-format off
    {100, "Continue"}, {101, "Switching Protocols"}, {200, "OK"},
    {201, "Created"}, {202, "Accepted"}, {204, "No Content"},
    {206, "Partial Content"}, {301, "Moved Permanently"}, {302, "Found"},
    {303, "See Other"}, {304, "Not Modified"}, {307, "Temporary Redirect"},
    {308, "Permanent Redirect"}, {400, "Bad Request"},
    {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
    {405, "Method Not Allowed"}, {408, "Request Timeout"}, {410, "Gone"},
    {411, "Length Required"}, {413, "Content Too Large"},
    {414, "URI Too Long"}, {415, "Unsupported Media Type"},
    {417, "Expectation Failed"}, {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"}, {501, "Not Implemented"},
    {502, "Bad Gateway"}, {503, "Service Unavailable"},
    {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
    // clang-format on
};

const char *crawl_http_reason(int status)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].status == status)
            return reasons[i].reason;
    }
    return "Unknown";
}

/* snprintf()'s result as a return value: the length, or -ENOSPC. */
static int fit(int len, size_t n)
{
    return len >= 0 && (size_t)len < n ? len : -ENOSPC;
}

int crawl_http_format_head(char *out, size_t n, int status,
                           const char *extra_headers, int64_t body_len,
                           bool keep_alive)
{
    char framing[64] = "";
    bool interim = status < 200;

    if (status < 100 || status > 599)
        return -EINVAL;
    /* 1xx and 204 have no body, and must not claim one (RFC 9110 8.6). */
    if (!interim && status != 204 && body_len >= 0)
        snprintf(framing, sizeof(framing), "Content-Length: %" PRId64 "\r\n",
                 body_len);
    else if (!interim && status != 204)
        strcpy(framing, "Transfer-Encoding: chunked\r\n");
    return fit(snprintf(out, n, "HTTP/1.1 %d %s\r\n%s%s%s\r\n", status,
                        crawl_http_reason(status),
                        extra_headers != NULL ? extra_headers : "", framing,
                        interim || keep_alive ? "" : "Connection: close\r\n"),
               n);
}

int crawl_http_chunk_head(char *out, size_t n, size_t len)
{
    if (len == 0)
        return fit(snprintf(out, n, "0\r\n\r\n"), n);
    return fit(snprintf(out, n, "%zx\r\n", len), n);
}
