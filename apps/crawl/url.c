// SPDX-License-Identifier: MIT
/*
 * URLs for knit-crawl (url.h): RFC 3986 parsing, reference resolution and
 * normalisation, for http and https only.
 *
 * Every URL lives in a struct crawl_url while it is worked on. A reference
 * is split into views of its parts (RFC 3986 appendix B), then applied to
 * the struct holding the base, which becomes the target in place (5.2.2):
 * a relative path keeps the base path up to its last '/' and appends to it,
 * so no merge buffer is needed. Path and query are percent-normalised as
 * they are copied in, and dot segments are removed afterwards, in place.
 *
 * Divisions: character classes; percent-normalisation; splitting a
 * reference; authority; dot segments; applying a reference; the public
 * functions.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "url.h"

/* ---- character classes --------------------------------------------------- */

/* These ignore the locale on purpose: URLs are ASCII syntax. */

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int to_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The value of a hex digit, or -1. */
static int hex_value(int c)
{
    if (is_digit(c))
        return c - '0';
    c = to_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 3986 2.3: never needs encoding, so an encoded one is decoded. */
static bool is_unreserved(int c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Bytes that may not appear raw in a normalised path or query. */
static bool must_encode(int c)
{
    if (c <= 0x20 || c >= 0x7F)
        return true;
    switch (c) {
    case '"':
    case '<':
    case '>':
    case '\\':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
        return true;
    default:
        return false;
    }
}

/* The default port of a scheme already known to be http or https. */
static int default_port(const char *scheme)
{
    return strcmp(scheme, "https") == 0 ? 443 : 80;
}

/* ---- percent-normalisation ----------------------------------------------- */

/*
 * Appends s[0..n) to buf, which holds *len bytes and has room for cap
 * (its NUL included), percent-normalised as url.h describes, and keeps it
 * NUL-terminated. Return: 0; -ENAMETOOLONG if it does not fit.
 */
static int append_normalised(char *buf, size_t cap, size_t *len, const char *s,
                             size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = *len;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        bool encode;
        char enc[3];
        size_t k;

        if (c == '%' && n - i >= 3 && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            c = hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]);
            i += 2;
            encode = !is_unreserved(c);
        } else {
            encode = c == '%' || must_encode(c); /* a lone '%' too */
        }
        if (encode) {
            enc[0] = '%';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            k = 3;
        } else {
            enc[0] = (char)c;
            k = 1;
        }
        if (w + k >= cap)
            return -ENAMETOOLONG;
        memcpy(buf + w, enc, k);
        w += k;
    }
    buf[w] = '\0';
    *len = w;
    return 0;
}

/* ---- splitting a reference ----------------------------------------------- */

/* One part of a reference: a view into the caller's text. */
struct part {
    const char *p; /* first byte; not NUL-terminated */
    size_t len;    /* bytes */
    bool present;  /* the delimiter was there, even if len is 0 */
};

/* A reference split per RFC 3986 appendix B; the fragment is ignored. */
struct parts {
    struct part scheme;    /* before ':' */
    struct part authority; /* after "//" */
    struct part path;      /* always present, perhaps empty */
    struct part query;     /* after '?' */
};

static bool is_scheme_char(int c)
{
    return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
}

/*
 * Splits s[0..n). A prefix before ':' that is not a valid scheme name
 * ("1x:y") is taken as part of the path, as browsers do, not as a scheme.
 */
static void split(const char *s, size_t n, struct parts *r)
{
    size_t i = 0;
    size_t j;

    memset(r, 0, sizeof *r);
    if (n > 0 && is_alpha((unsigned char)s[0])) {
        for (j = 1; j < n && is_scheme_char((unsigned char)s[j]); j++)
            ;
        if (j < n && s[j] == ':') {
            r->scheme = (struct part){s, j, true};
            i = j + 1;
        }
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        for (j = i + 2; j < n && !strchr("/?#", s[j]); j++)
            ;
        r->authority = (struct part){s + i + 2, j - i - 2, true};
        i = j;
    }
    for (j = i; j < n && s[j] != '?' && s[j] != '#'; j++)
        ;
    r->path = (struct part){s + i, j - i, true};
    i = j;
    if (i < n && s[i] == '?') {
        for (j = i + 1; j < n && s[j] != '#'; j++)
            ;
        r->query = (struct part){s + i + 1, j - i - 1, true};
    }
}

/* ---- authority ----------------------------------------------------------- */

/*
 * Sets u->host and u->port from an authority; u->scheme must already be
 * the target's. Return: 0; -EINVAL.
 */
static int set_authority(struct crawl_url *u, struct part a)
{
    const char *p = a.p;
    size_t n = a.len;
    size_t hlen;
    int port = default_port(u->scheme);

    if (memchr(p, '@', n))
        return -EINVAL; /* userinfo, rejected: see url.h */
    if (n > 0 && p[0] == '[') {
        const char *end = memchr(p, ']', n);
        bool colon = false;

        if (!end)
            return -EINVAL;
        hlen = (size_t)(end - p) + 1;
        for (size_t i = 1; i + 1 < hlen; i++) {
            if (p[i] == ':')
                colon = true;
            else if (p[i] != '.' && hex_value((unsigned char)p[i]) < 0)
                return -EINVAL;
        }
        if (!colon)
            return -EINVAL;
    } else {
        for (hlen = 0; hlen < n && p[hlen] != ':'; hlen++)
            if (!is_unreserved((unsigned char)p[hlen]))
                return -EINVAL;
    }
    if (hlen == 0 || hlen >= sizeof u->host)
        return -EINVAL;
    for (size_t i = 0; i < hlen; i++)
        u->host[i] = (char)to_lower((unsigned char)p[i]);
    u->host[hlen] = '\0';

    if (hlen < n) {
        if (p[hlen] != ':')
            return -EINVAL; /* junk after "[...]" */
        if (hlen + 1 < n) { /* "host:" alone means the default port */
            port = 0;
            for (size_t i = hlen + 1; i < n; i++) {
                if (!is_digit((unsigned char)p[i]))
                    return -EINVAL;
                port = port * 10 + (p[i] - '0');
                if (port > 65535)
                    return -EINVAL;
            }
            if (port == 0)
                return -EINVAL;
        }
    }
    u->port = port;
    return 0;
}

/* ---- dot segments -------------------------------------------------------- */

/*
 * RFC 3986 5.2.4 on an absolute path p[0..n), in place, segment by
 * segment; returns the new length. Each segment is read before anything
 * is written over it: the output never grows faster than the input is
 * consumed (w <= r throughout).
 */
static size_t remove_dot_segments(char *p, size_t n)
{
    size_t r = 0;
    size_t w = 0;

    assert(n == 0 || p[0] == '/');
    while (r < n) {
        size_t e = r + 1; /* p[r] is the '/' before the segment */
        size_t seg;
        bool last;

        while (e < n && p[e] != '/')
            e++;
        seg = e - r - 1;
        last = e == n;
        if (seg == 1 && p[r + 1] == '.') {
            if (last)
                p[w++] = '/'; /* "/a/." is "/a/" */
        } else if (seg == 2 && p[r + 1] == '.' && p[r + 2] == '.') {
            while (w > 0 && p[--w] != '/')
                ; /* drop the last output segment and its '/' */
            if (last)
                p[w++] = '/';
        } else {
            memmove(p + w, p + r, seg + 1);
            w += seg + 1;
        }
        r = e;
    }
    return w;
}

/* ---- applying a reference ------------------------------------------------ */

/*
 * Keeps u->path[0..keep) (a prefix ending in '/'), appends the normalised
 * path, then removes dot segments. Return: 0; -ENAMETOOLONG.
 */
static int set_path(struct crawl_url *u, size_t keep, struct part path)
{
    size_t len = keep;
    int err =
        append_normalised(u->path, sizeof u->path, &len, path.p, path.len);

    if (err)
        return err;
    len = remove_dot_segments(u->path, len);
    if (len == 0)
        u->path[len++] = '/';
    u->path[len] = '\0';
    return 0;
}

/* Sets u's query, or none. Return: 0; -ENAMETOOLONG. */
static int set_query(struct crawl_url *u, struct part q)
{
    size_t len = 0;

    u->has_query = q.present;
    u->query[0] = '\0';
    return q.present
               ? append_normalised(u->query, sizeof u->query, &len, q.p, q.len)
               : 0;
}

/*
 * Applies the reference s[0..n) (RFC 3986 5.2.2). With has_base, *u holds
 * the normalised base and becomes the target; without, the reference must
 * be absolute and *u is filled from nothing. On error *u is garbage.
 * Return: 0; -EINVAL; -ENAMETOOLONG.
 */
static int apply(struct crawl_url *u, const char *s, size_t n, bool has_base)
{
    struct parts r;
    size_t keep = 0;
    int err;

    split(s, n, &r);
    if (r.scheme.present) {
        char scheme[sizeof u->scheme] = "";

        if (r.scheme.len > 5)
            return -EINVAL; /* longer than "https" */
        for (size_t i = 0; i < r.scheme.len; i++)
            scheme[i] = (char)to_lower((unsigned char)r.scheme.p[i]);
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
            return -EINVAL;
        /* "http:g" on an http base is relative "g": RFC 3986 5.4.2. */
        if (!has_base || strcmp(scheme, u->scheme) != 0 ||
            r.authority.present) {
            if (!r.authority.present)
                return -EINVAL;
            memcpy(u->scheme, scheme, sizeof scheme);
        }
    } else if (!has_base) {
        return -EINVAL;
    }

    if (r.authority.present) {
        err = set_authority(u, r.authority);
    } else if (r.path.len == 0) {
        /* The base document itself, perhaps with another query. */
        return r.query.present ? set_query(u, r.query) : 0;
    } else {
        /* Merge (5.2.3): u->path begins with '/', so strrchr finds one. */
        if (r.path.p[0] != '/')
            keep = (size_t)(strrchr(u->path, '/') - u->path) + 1;
        err = 0;
    }
    if (!err)
        err = set_path(u, keep, r.path);
    if (!err)
        err = set_query(u, r.query);
    return err;
}

/* ---- the public functions ------------------------------------------------ */

/*
 * Copies s to buf (CRAWL_URL_MAX bytes) the lenient way: trims leading
 * and trailing C0 controls and spaces, and drops tabs, CRs and LFs.
 * Return: 0, with the length in *len; -EINVAL for NULL; -ENAMETOOLONG.
 */
static int clean(const char *s, char *buf, size_t *len)
{
    size_t n;
    size_t w = 0;

    if (!s)
        return -EINVAL;
    n = strlen(s);
    while (n > 0 && (unsigned char)s[n - 1] <= 0x20)
        n--;
    while (n > 0 && (unsigned char)s[0] <= 0x20) {
        s++;
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
            continue;
        if (w == CRAWL_URL_MAX - 1)
            return -ENAMETOOLONG;
        buf[w++] = s[i];
    }
    buf[w] = '\0';
    *len = w;
    return 0;
}

/* Writes u as text, snprintf-style: returns the full length. */
static int write_url(const struct crawl_url *u, char *out, size_t n)
{
    char port[16] = ""; /* ":" and an int, whatever its value */

    if (u->port != default_port(u->scheme))
        snprintf(port, sizeof port, ":%d", u->port);
    /* out may be NULL with n == 0 (measuring), which snprintf allows. */
    // cppcheck-suppress nullPointer
    return snprintf(out, n, "%s://%s%s%s%s%s", u->scheme, u->host, port,
                    u->path, u->has_query ? "?" : "",
                    u->has_query ? u->query : "");
}

/*
 * Resolves ref (NULL: none) against base, both lenient, into u, and
 * checks that the whole URL fits CRAWL_URL_MAX.
 */
static int parse_lenient(const char *base, const char *ref, struct crawl_url *u)
{
    char buf[CRAWL_URL_MAX];
    size_t n;
    int err;

    err = clean(base, buf, &n);
    if (!err)
        err = apply(u, buf, n, false);
    if (!err && ref) {
        err = clean(ref, buf, &n);
        if (!err)
            err = apply(u, buf, n, true);
    }
    if (!err && write_url(u, NULL, 0) >= CRAWL_URL_MAX)
        err = -ENAMETOOLONG;
    return err;
}

/* Finishes a call whose snprintf-style result is len. */
static int fit(int len, char *out, size_t n)
{
    if (len < 0 || (size_t)len >= n) {
        if (n > 0)
            out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int crawl_url_parse(const char *text, struct crawl_url *out)
{
    size_t n = text ? strlen(text) : 0;

    if (n == 0 || n >= CRAWL_URL_MAX)
        goto out_zero;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] <= 0x20 || text[i] == 0x7F)
            goto out_zero;
    if (apply(out, text, n, false) == 0 &&
        write_url(out, NULL, 0) < CRAWL_URL_MAX)
        return 0;
out_zero:
    memset(out, 0, sizeof *out);
    return -EINVAL;
}

int crawl_url_resolve(const char *base, const char *ref, char *out, size_t n)
{
    struct crawl_url u;
    int err = parse_lenient(base, ref, &u);

    if (err) {
        if (n > 0)
            out[0] = '\0';
        return err;
    }
    return fit(write_url(&u, out, n), out, n);
}

int crawl_url_normalize(const char *text, char *out, size_t n)
{
    return crawl_url_resolve(text, NULL, out, n);
}

int crawl_url_format(const struct crawl_url *u, char *out, size_t n)
{
    int len = write_url(u, out, n);

    if (len >= CRAWL_URL_MAX)
        len = -1; /* too long, whatever the size of out */
    return fit(len, out, n);
}

int crawl_url_host_key(const char *url, char *out, size_t n)
{
    struct crawl_url u;
    int err = parse_lenient(url, NULL, &u);

    if (err) {
        if (n > 0)
            out[0] = '\0';
        return err;
    }
    return fit(snprintf(out, n, "%s:%d", u.host, u.port), out, n);
}

int crawl_url_request_target(const char *url, char *out, size_t n)
{
    struct crawl_url u;
    int err = parse_lenient(url, NULL, &u);

    if (err) {
        if (n > 0)
            out[0] = '\0';
        return err;
    }
    return fit(snprintf(out, n, "%s%s%s", u.path, u.has_query ? "?" : "",
                        u.has_query ? u.query : ""),
               out, n);
}
