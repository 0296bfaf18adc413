/* SPDX-License-Identifier: MIT */
/*
 * http_proto.h - the HTTP/1.1 protocol layer of knit-crawl's demo server
 * (RFC 9112): request heads in, chunked request bodies in, response heads
 * and chunk framing out.
 *
 * Everything here is a pure function of its arguments: no I/O, no
 * allocation, no global state. The server reads bytes into a buffer and
 * calls crawl_http_parse_request() on what it holds; the parser starts over
 * from the first byte on every call, so the caller keeps no parser state,
 * only its buffer. A parsed request is a set of views into that buffer and
 * is valid only while the buffer is unchanged.
 *
 * The parser is strict where leniency lets two parties disagree about
 * where a message ends (request smuggling): Content-Length must be plain
 * digits and appear once, Content-Length with Transfer-Encoding is refused,
 * obs-fold, bare CR and whitespace before a colon are refused. It is
 * lenient where RFC 9112 allows it and nothing is at stake: bare LF line
 * ends and empty lines before the request line are accepted.
 *
 * Errors are negative HTTP status codes (-400, -414, -431, -501, -505), so
 * the server can answer with -err and close the connection.
 */
#ifndef CRAWL_HTTP_PROTO_H
#define CRAWL_HTTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Header lines a parsed request holds at most (the size of its array). */
#define CRAWL_HTTP_MAX_HEADERS 64
/* Default limits (see struct crawl_http_limits). */
#define CRAWL_HTTP_DEFAULT_MAX_HEAD 8192
#define CRAWL_HTTP_DEFAULT_MAX_TARGET 2048
/*
 * Longest chunk-size line, and longest trailer section, that the chunked
 * decoder accepts (bytes, line ends included); beyond, it fails with -400,
 * so endless chunk extensions or trailers cannot keep a connection busy.
 */
#define CRAWL_HTTP_CHUNK_META_MAX 4096

/*
 * Limits on one request head. A field of 0 takes its default, so {0} and
 * a NULL pointer both mean "all defaults".
 */
struct crawl_http_limits {
    size_t max_head_bytes; /* whole head, every byte crawl_http_parse_request
                              returns counted: leading empty lines, request
                              line, header lines and the final empty line
                              with its CRLF; default 8192 */
    int max_headers;       /* header lines; default and ceiling
                              CRAWL_HTTP_MAX_HEADERS */
    size_t max_target;     /* request-target bytes; default 2048 */
};

/* One header line: views into the caller's buffer, not NUL-terminated. */
struct crawl_http_header {
    const char *name;  /* field name as sent (any case) */
    const char *value; /* field value without leading/trailing SP and HTAB */
    size_t name_len;   /* bytes at name, >= 1 */
    size_t value_len;  /* bytes at value, may be 0 */
};

/* A parsed request head; pointers are views into the caller's buffer. */
struct crawl_http_request {
    const char *method; /* e.g. "GET"; case-sensitive, not interpreted */
    size_t method_len;  /* bytes at method */
    const char *target; /* request-target, e.g. "/a?b=c" */
    size_t target_len;  /* bytes at target */
    int minor;          /* HTTP/1.<minor>: 0 or 1 */
    struct crawl_http_header headers[CRAWL_HTTP_MAX_HEADERS]; /* in order */
    int nheaders;           /* used entries of headers */
    const char *host;       /* Host value; NULL when absent (HTTP/1.0 only) */
    size_t host_len;        /* bytes at host */
    bool keep_alive;        /* the connection may carry another request */
    bool chunked;           /* Transfer-Encoding: chunked frames the body */
    int64_t content_length; /* Content-Length; -1 when absent */
    bool expect_continue;   /* HTTP/1.1 "Expect: 100-continue" was sent */
};

/**
 * crawl_http_parse_request() - parse the request head at the start of @buf.
 * @buf: bytes received so far; may start with empty lines (CRLF or LF,
 *       RFC 9112 2.2), which are skipped and counted in the return value.
 * @len: bytes at @buf; bytes after the head (a body, the next pipelined
 *       request) are not looked at.
 * @lim: limits; NULL for the defaults.
 * @req: out; filled when the return value is positive, unspecified
 *       otherwise.
 *
 * Lines may end in CRLF or a bare LF. A syntax error is reported as soon
 * as its byte is in @buf, the errors of header meaning (Host,
 * Content-Length, Transfer-Encoding) once the head is complete: a caller
 * feeding a head a piece at a time gets 0, then the answer the whole head
 * gets, and that answer never changes as more bytes arrive. Pure: call it
 * again on the grown buffer after each read.
 *
 * Semantics: keep_alive defaults to true for HTTP/1.1 and false for 1.0;
 * a "close" token in any Connection line makes it false, a "keep-alive"
 * token makes it true for 1.0. Transfer-Encoding must be exactly "chunked"
 * (as a list: one "chunked" element plus empty ones). Expect: 100-continue
 * is ignored in HTTP/1.0 (RFC 9110 10.1.1); other expectations are ignored.
 *
 * Return: the head's length in bytes (> 0), body excluded; 0 when the head
 * is not complete yet and within the limits; or a negative status:
 * -400 malformed: request line not "token SP target SP HTTP/d.d" with single
 *      spaces, empty method or target, bad characters in method, target
 *      (only 0x21-0x7E), field name (token) or value (no CTL but HTAB),
 *      bare CR, whitespace before a colon, a line starting with SP/HTAB
 *      (obs-fold), no Host in HTTP/1.1, two Host lines or an invalid Host,
 *      Content-Length not 1*DIGIT, repeated or above INT64_MAX, both
 *      Content-Length and Transfer-Encoding, Transfer-Encoding in HTTP/1.0,
 *      "chunked" twice or an empty Transfer-Encoding;
 * -414 request-target longer than lim->max_target;
 * -431 head longer than lim->max_head_bytes, or more header lines than
 *      lim->max_headers;
 * -501 a transfer coding other than chunked (only when nothing is -400);
 * -505 a well-formed version other than HTTP/1.0 and HTTP/1.1.
 */
int crawl_http_parse_request(const char *buf, size_t len,
                             const struct crawl_http_limits *lim,
                             struct crawl_http_request *req);

/**
 * crawl_http_find_header() - the first header line named @name.
 * @name: NUL-terminated, compared case-insensitively.
 * Return: the header, or NULL when there is none.
 */
const struct crawl_http_header *
crawl_http_find_header(const struct crawl_http_request *req, const char *name);

/*
 * Incremental decoder of a chunked body (RFC 9112 7.1). Caller-allocated;
 * set up by crawl_http_chunked_init(). Fields other than done are the
 * decoder's own.
 */
struct crawl_http_chunked {
    int state;     /* where in the chunked grammar the next byte falls */
    uint64_t size; /* chunk-size being read, then data bytes still due */
    size_t meta;   /* bytes of the current size line or trailer section */
    bool cr;       /* a CR was read: the next byte must be LF */
    bool done;     /* the last chunk and the trailer section were read */
};

/* Sets @d up to decode a new body. */
void crawl_http_chunked_init(struct crawl_http_chunked *d);

/**
 * crawl_http_chunked_decode() - decode the next piece of a chunked body.
 * @d:       the decoder.
 * @in:      the next bytes of the body, as received.
 * @len:     bytes at @in.
 * @out:     receives the decoded body bytes; NULL to discard them (then
 *           the capacity is unlimited).
 * @out_len: in: capacity of @out; out: body bytes written (or discarded).
 *
 * Chunk extensions are skipped; trailer lines are checked for syntax and
 * skipped; line ends may be CRLF or bare LF. Decoding stops when @out is
 * full (call again with room) or when the body ends: then d->done is set
 * and the bytes after the body in @in (the next request) are not consumed.
 * Once done, further calls consume nothing.
 * Return: bytes of @in consumed (>= 0); -400 on malformed framing (a bad
 * size, a chunk size above 2^62, a missing CRLF after data, a bad
 * extension or trailer, a size line or trailer section longer than
 * CRAWL_HTTP_CHUNK_META_MAX). After -400 the decoder must not be reused
 * without crawl_http_chunked_init().
 */
ssize_t crawl_http_chunked_decode(struct crawl_http_chunked *d, const char *in,
                                  size_t len, char *out, size_t *out_len);

/**
 * crawl_http_format_head() - write a response head into @out.
 * @out:           the buffer; @n bytes, room for the head and a NUL.
 * @status:        100..599.
 * @extra_headers: complete header lines ("Name: value\r\n..."), copied as
 *                 they are (the caller vouches for them); NULL for none.
 * @body_len:      the body's length, sent as Content-Length; < 0 sends
 *                 "Transfer-Encoding: chunked" instead. Ignored for 1xx
 *                 and 204, which carry no framing header (RFC 9110 8.6).
 * @keep_alive:    false adds "Connection: close" (not for 1xx).
 *
 * Writes "HTTP/1.1 <status> <reason>\r\n", @extra_headers, the framing
 * line, the Connection line and the empty line, in this order, then a NUL
 * (as snprintf() does).
 * Return: the head's length in bytes, NUL excluded; -ENOSPC when the head
 * and its NUL do not fit in @n bytes (@out then holds a truncated head);
 * -EINVAL for a status outside 100..599.
 */
int crawl_http_format_head(char *out, size_t n, int status,
                           const char *extra_headers, int64_t body_len,
                           bool keep_alive);

/**
 * crawl_http_reason() - the reason phrase of @status.
 * Return: a static string such as "OK" or "Not Found" for the usual codes
 * (RFC 9110 15); "Unknown" for the others.
 */
const char *crawl_http_reason(int status);

/**
 * crawl_http_chunk_head() - write the line that opens a chunk of @len bytes.
 * @len: the chunk's size; 0 writes the last chunk and the empty trailer
 *       section ("0\r\n\r\n"), which ends the body.
 *
 * A chunk is sent as this line, then @len data bytes, then "\r\n". A NUL
 * follows the line (as snprintf() does).
 * Return: the line's length in bytes ("%zx\r\n"), NUL excluded; -ENOSPC
 * when the line and its NUL do not fit in @n bytes.
 */
int crawl_http_chunk_head(char *out, size_t n, size_t len);

#endif /* CRAWL_HTTP_PROTO_H */
