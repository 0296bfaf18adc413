/* SPDX-License-Identifier: MIT */
/*
 * url.h - http(s) URLs for knit-crawl: parsing, resolution of references
 * found in pages (RFC 3986 section 5) and normalisation, so that two
 * spellings of one page become one string for the seen-set, the frontier
 * and robots.txt matching.
 *
 * Only absolute "http" and "https" URLs with a host are ever produced;
 * everything else (mailto:, javascript:, data:, ftp:, relative text with no
 * base) is -EINVAL. A normalised URL is never longer than CRAWL_URL_MAX - 1
 * bytes.
 *
 * Normalisation rules, applied by every function that writes a URL:
 *  - scheme and host are lower-cased;
 *  - the default port is dropped (":80" for http, ":443" for https), an
 *    empty port ("http://h:/") counts as the default; leading zeros go;
 *  - an empty path becomes "/";
 *  - dot segments are removed (RFC 3986 5.2.4), after percent-decoding, so
 *    "%2E%2E" counts as "..";
 *  - the fragment is dropped;
 *  - in path and query, percent-encodings get upper-case hex digits,
 *    encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, a lone
 *    '%' not followed by two hex digits becomes "%25", and the bytes that
 *    must be encoded are: space, control characters, bytes >= 0x7F and
 *    '"' '<' '>' '\' '^' '`' '{' '|' '}'; other reserved characters
 *    (including an encoded "%2F") are left exactly as they are;
 *  - the query is otherwise kept as-is, and "?" with an empty query is kept
 *    distinct from no query at all.
 *
 * Lenient input (crawl_url_resolve, crawl_url_normalize and the helpers):
 * leading and trailing spaces and control characters are trimmed and tabs,
 * CRs and LFs anywhere are removed, as browsers do with href attributes.
 * crawl_url_parse is strict instead and rejects any space or control byte.
 *
 * Also decided here:
 *  - userinfo ("user:pass@host") is rejected with -EINVAL: the crawler
 *    never sends credentials and never stores them in its database;
 *  - a host is ASCII letters, digits, '-', '.', '_' and '~', or an IPv6
 *    literal in brackets (hex digits, ':' and '.'); percent-encoded and
 *    non-ASCII (IDN) hosts are rejected, since there is no IDNA here;
 *  - ports 1..65535 only;
 *  - "http:g" against an http base is read as the relative reference "g"
 *    (the backward-compatible reading RFC 3986 5.4.2 allows);
 *  - '\' is data, encoded as "%5C", not a path separator as in browsers;
 *  - non-ASCII bytes are encoded as they are, so callers should pass UTF-8
 *    (the query is not re-encoded into the page's charset, unlike browsers).
 *
 * Threads: every function is reentrant and keeps its state on the stack
 * (about 7 KiB at most, safe on knit's default 64 KiB task stacks). None of
 * them blocks or allocates.
 */
#ifndef CRAWL_URL_H
#define CRAWL_URL_H

#include <stdbool.h>
#include <stddef.h>

enum { CRAWL_URL_MAX = 2048 }; /* buffer size for a URL, its NUL included */

/*
 * A parsed, normalised URL. The fields are fixed buffers (no pointers), so
 * a struct can be copied with '=' and needs no freeing.
 */
struct crawl_url {
    char scheme[16];           /* "http" or "https" */
    char host[256];            /* lower-case; an IPv6 literal keeps its [] */
    int port;                  /* explicit, or the scheme's default */
    char path[CRAWL_URL_MAX];  /* normalised; always begins with '/' */
    char query[CRAWL_URL_MAX]; /* normalised, without the '?'; "" if none */
    bool has_query;            /* there was a '?', perhaps with "" after it */
};

/**
 * crawl_url_parse() - parse and normalise an absolute http(s) URL.
 * @text: NUL-terminated URL, e.g. from the command line or the database.
 * @out:  receives the normalised parts.
 *
 * Strict: no trimming, and any space or control byte is an error.
 * Return: 0; -EINVAL for bad syntax, a scheme other than http(s), no host
 * or an empty one, userinfo, a bad port, a space or control byte, or text
 * or a normalised URL longer than CRAWL_URL_MAX - 1 bytes. On error *out
 * is zeroed.
 */
int crawl_url_parse(const char *text, struct crawl_url *out);

/**
 * crawl_url_resolve() - resolve a reference found in a page.
 * @base: the absolute URL the reference is relative to (the page's URL or
 *        its <base href>); read leniently, like @ref.
 * @ref:  the reference as found, e.g. an href value; NULL is the same as
 *        "" (the result is then @base, normalised).
 * @out:  receives the normalised absolute URL, NUL-terminated.
 * @n:    size of @out in bytes; CRAWL_URL_MAX is always enough.
 *
 * Resolution follows RFC 3986 5.2 (all the examples of 5.4 hold, except
 * those whose result is not http(s)), then the rules at the top of this
 * file. The fragment of @ref is dropped.
 * Return: 0; -EINVAL if @base or @ref does not parse or the result is not
 * an absolute http(s) URL with a host (mailto:, javascript:, data:, ...);
 * -ENAMETOOLONG if an input, the path before dot-segment removal or the
 * result is longer than CRAWL_URL_MAX - 1 bytes, or the result does not
 * fit in @n bytes. On error @out is "" if @n > 0.
 */
int crawl_url_resolve(const char *base, const char *ref, char *out, size_t n);

/**
 * crawl_url_normalize() - normalise one absolute http(s) URL.
 * @text: the URL, read leniently.
 * @out:  receives the normalised URL.
 * @n:    size of @out; CRAWL_URL_MAX is always enough.
 *
 * The same as crawl_url_resolve(@text, NULL, @out, @n).
 * Return: 0; -EINVAL; -ENAMETOOLONG (as crawl_url_resolve).
 */
int crawl_url_normalize(const char *text, char *out, size_t n);

/**
 * crawl_url_format() - write a parsed URL back as text.
 * @u:   the URL, as filled in by crawl_url_parse (its fields are not
 *       normalised again).
 * @out: receives "scheme://host[:port]path[?query]", the port only when it
 *       is not the scheme's default.
 * @n:   size of @out.
 *
 * Return: 0; -ENAMETOOLONG if the text is longer than CRAWL_URL_MAX - 1
 * bytes or does not fit in @n bytes (then @out is "" if @n > 0).
 */
int crawl_url_format(const struct crawl_url *u, char *out, size_t n);

/**
 * crawl_url_host_key() - the key for per-host politeness.
 * @url: an absolute URL, read leniently.
 * @out: receives "host:port" with the port always present, e.g.
 *       "127.0.0.1:8080", "example.com:443" or "[::1]:80".
 * @n:   size of @out; 262 bytes is always enough.
 *
 * Return: 0; -EINVAL (as crawl_url_normalize); -ENAMETOOLONG if the URL is
 * too long or the key does not fit in @n bytes.
 */
int crawl_url_host_key(const char *url, char *out, size_t n);

/**
 * crawl_url_request_target() - the path and query of a URL.
 * @url: an absolute URL, read leniently.
 * @out: receives the normalised path plus "?query" when there is a '?',
 *       as sent in the HTTP request line and matched against robots.txt.
 * @n:   size of @out; CRAWL_URL_MAX is always enough.
 *
 * Return: 0; -EINVAL (as crawl_url_normalize); -ENAMETOOLONG if the URL is
 * too long or the target does not fit in @n bytes.
 */
int crawl_url_request_target(const char *url, char *out, size_t n);

#endif
