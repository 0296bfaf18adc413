// SPDX-License-Identifier: MIT
/*
 * site.c - serving the demo site: site_respond() maps a request target to
 * a document of the model (site_gen.c) and renders its answer on demand.
 *
 * Divisions: a growable output buffer; how links are spelled; HTML
 * documents; the other bodies (robots.txt, PNG, JSON, error pages);
 * request targets; site_respond().
 */
#define SITE_INTERNAL
#include "site.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { SALT_BODY = 0x20000 };

/* ---- buffer -------------------------------------------------------------- */

/* Output under construction; after a failed allocation it only sets oom. */
struct buf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

static bool reserve(struct buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->oom)
        return false;
    if (b->len + more < b->cap)
        return true;
    cap = b->cap ? b->cap : 1024;
    while (cap <= b->len + more)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

__attribute__((format(printf, 2, 3))) static void put(struct buf *b,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void put_bytes(struct buf *b, const void *data, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* The next number of a splitmix64 sequence. */
static uint64_t next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- link spellings ------------------------------------------------------ */

/* Writes the relative reference from directory @dir (ending in '/') to
 * @path: "../" for each directory of @dir below their common prefix, then
 * the rest of @path; "./" when that is empty. */
static void relative(const char *dir, const char *path, char *out, size_t len)
{
    size_t i = 0;
    size_t last = 0;
    size_t used = 0;

    for (; dir[i] && dir[i] == path[i]; i++)
        if (dir[i] == '/')
            last = i;
    out[0] = '\0';
    for (const char *d = dir + last + 1; *d; d++)
        if (*d == '/')
            used += (size_t)snprintf(out + used, len - used, "../");
    snprintf(out + used, len - used, "%s", path + last + 1);
    if (!out[0])
        snprintf(out, len, "./");
}

/*
 * Writes how link @l is spelled on a document whose relative references
 * resolve against host @ctx and directory @dir. The fractions are
 * documented in site.h; every spelling resolves and normalises (RFC 3986)
 * to the same canonical URL.
 */
static void spell(const struct site *s, int ctx, const char *dir,
                  const struct site_link *l, char *out, size_t len)
{
    const char *origin = s->origin[l->host];
    unsigned pick = (unsigned)(l->form % 100);
    unsigned frag = (unsigned)((l->form >> 16) % 100);
    char path[64];
    char rel[160];
    char upper[SITE_MAX_ORIGIN + 1];
    int n;

    site__link_path(s, l, path, sizeof path);
    for (size_t i = 0; i <= strlen(origin); i++)
        upper[i] = (char)toupper((unsigned char)origin[i]);
    relative(dir, path, rel, sizeof rel);

    if (l->host != ctx || (l->flags & SITE_LINK_ABSOLUTE)) {
        /* An index may be named by its bare origin (empty path). */
        bool bare = l->kind == TGT_INDEX && (l->form >> 32) % 10 < 3;
        if (pick < 70)
            n = snprintf(out, len, "%s%s", origin, bare ? "" : path);
        else if (pick < 80)
            n = snprintf(out, len, "%s%s", upper, path);
        else if (pick < 90)
            n = snprintf(out, len, "//%s%s", origin + 7, path);
        else
            n = snprintf(out, len, "%s/./%s", origin, path + 1);
    } else if (pick < 10) {
        n = snprintf(out, len, "%s%s", origin, path);
    } else if (pick < 15) {
        n = snprintf(out, len, "%s%s", upper, path);
    } else if (pick < 45) {
        n = snprintf(out, len, "%s", path);
    } else if (pick < 75) {
        n = snprintf(out, len, "%s", rel);
    } else if (pick < 80) {
        bool dotted = rel[0] == '.';
        n = snprintf(out, len, "%s%s", dotted ? "" : "./", rel);
    } else if (pick < 90) {
        n = snprintf(out, len, "/x/../%s", path + 1);
    } else {
        n = snprintf(out, len, "sub/../%s", rel);
    }
    if (frag < 15 && n >= 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, "#section-%u",
                 1 + (unsigned)((l->form >> 24) % 3));
}

/* ---- HTML documents ------------------------------------------------------ */

static const char *const words[] = {
    "knit",   "crawl",  "thread", "loop",    "stitch",   "yarn",   "needle",
    "spool",  "fabric", "weave",  "pattern", "fibre",    "cotton", "wool",
    "row",    "column", "cable",  "purl",    "seam",     "hem",    "task",
    "queue",  "socket", "timer",  "channel", "scope",    "group",  "signal",
    "page",   "link",   "host",   "robot",   "deadline", "worker", "wheel",
    "select", "mutex",  "permit", "ready",   "quiet",
};

/* Appends @n words of filler in sentences of up to 12 words; @cont says
 * the paragraph already has text, so a space comes first. */
static void filler(struct buf *b, uint64_t *rng, unsigned n, bool cont)
{
    bool start = true;

    for (unsigned i = 0; i < n; i++) {
        const char *w = words[next(rng) % (sizeof words / sizeof *words)];
        bool end = i + 1 == n || next(rng) % 12 == 0;
        char first = start ? (char)toupper((unsigned char)w[0]) : w[0];
        /* Bytes, not put(): filler is most of a page and printf-ing it
         * word by word would dominate the server's time. */
        if (i || cont)
            put_bytes(b, " ", 1);
        put_bytes(b, &first, 1);
        put_bytes(b, w + 1, strlen(w + 1));
        if (end)
            put_bytes(b, ".", 1);
        start = end;
    }
}

static void link_text(const struct site *s, const struct site_link *l,
                      char *out, size_t len)
{
    switch (l->kind) {
    case TGT_PAGE:
        snprintf(out, len, "page %u on host %u", (unsigned)l->id,
                 (unsigned)(l->id % s->hosts));
        break;
    case TGT_INDEX:
        snprintf(out, len, "index of host %d", l->host);
        break;
    case TGT_GO:
        snprintf(out, len, "go to page %u", (unsigned)l->id);
        break;
    case TGT_CHAIN:
        snprintf(out, len, "the long way round");
        break;
    case TGT_LOOP:
        snprintf(out, len, "round and round");
        break;
    case TGT_MISSING:
        snprintf(out, len, "an old page");
        break;
    case TGT_PNG:
        snprintf(out, len, "figure %u", (unsigned)l->id);
        break;
    case TGT_JSON:
        snprintf(out, len, "data set %u", (unsigned)l->id);
        break;
    }
}

/* Renders node @n (content page or index) into @b. */
static void render(const struct site *s, uint32_t n, struct buf *b)
{
    struct site_links links = {0};
    struct site_page p = {0};
    uint64_t rng = site__hash(s->cfg.seed, n, SALT_BODY);
    unsigned nwords = 40 + (unsigned)(next(&rng) % 561);
    int ctx = site__ctx_host(s, n);
    int host = n >= s->pages ? (int)(n - s->pages) : (int)(n % s->hosts);
    char title[64];
    char dir[64];
    char href[512];
    char text[64];
    unsigned per;

    if (site__links(s, n, &links) < 0) {
        b->oom = true;
        return;
    }
    if (n < s->pages)
        site__page(s, n, &p);
    if (n >= s->pages)
        snprintf(title, sizeof title, "Index of host %d", host);
    else
        snprintf(title, sizeof title, "Page %u on host %d%s", (unsigned)n, host,
                 n == s->amp ? " &amp; friends" : "");
    /* Relative references resolve against the base, which is a directory
     * "/" on the next host, or else against the page's own directory. */
    site__node_path(s, n, dir, sizeof dir);
    if (p.base)
        strcpy(dir, "/");
    else
        strrchr(dir, '/')[1] = '\0';

    put(b,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
        "<meta charset=\"utf-8\">\n<title>%s</title>\n",
        title);
    if (p.base)
        put(b, "<base href=\"%s%s\">\n", s->origin[ctx],
            n % 2 ? "/index.html" : "/");
    put(b, "</head>\n<body>\n<h1>%s</h1>\n", title);
    if (!p.base)
        put(b, "<p><a href=\"#section-2\">Skip to section 2</a></p>\n");
    if (n >= s->pages)
        put(b, "<p>Host %d serves %u pages.</p>\n", host,
            s->pages / s->hosts +
                ((uint32_t)host < s->pages % s->hosts ? 1u : 0u));
    put(b, "<h2 id=\"section-1\">Section 1</h2>\n");
    per = nwords / (unsigned)(links.n + 2);
    for (size_t i = 0; i < links.n; i++) {
        spell(s, ctx, dir, &links.v[i], href, sizeof href);
        link_text(s, &links.v[i], text, sizeof text);
        if (i % 3 == 0)
            put(b, "<p>");
        filler(b, &rng, per + 1, i % 3 != 0);
        put(b, " See <a href=\"%s\">%s</a>.", href, text);
        if (i % 3 == 2 || i + 1 == links.n)
            put(b, "</p>\n");
    }
    put(b, "<h2 id=\"section-2\">Section 2</h2>\n<p>");
    filler(b, &rng, per + 1, false);
    put(b, "</p>\n<h2 id=\"section-3\">Section 3</h2>\n<p>");
    filler(b, &rng, nwords - per * (unsigned)(links.n + 1), false);
    put(b, "</p>\n</body>\n</html>\n");
    free(links.v);
}

/* ---- other bodies -------------------------------------------------------- */

static void robots_txt(const struct site *s, int h, struct buf *b)
{
    const struct site_rules *r = &s->rules[h];

    put(b,
        "# knit-crawl demo site, host %d\n"
        "User-agent: *\nDisallow: /private/\nDisallow: /blog/\n\n"
        "User-agent: " SITE_AGENT "\n"
        "Disallow: /private/\n"
        "Disallow: /articles/%u\n"
        "Allow: /articles/%u%u\n"
        "Disallow: /archive/\n"
        "Allow: /archive/public/\n"
        "Disallow: /*/draft.html$\n",
        h, r->art, r->art, r->art_allow);
    if (r->json)
        put(b, "Disallow: /*.json$\n");
}

/* PNG-looking bytes: the signature and chunk headers hold NULs, the pixel
 * bytes are seeded. Not a decodable image (the CRCs are not computed). */
static void png(const struct site *s, int h, uint32_t id, struct buf *b)
{
    static const unsigned char head[] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0,   0,   13,  'I', 'H',
        'D',  'R', 0,   0,   0,    16,   0,    0,    0, 16,  8,   6,   0,   0,
        0,    0,   0,   0,   0,    0,    0,    0,    0, 'I', 'D', 'A', 'T'};
    uint64_t rng = site__hash(s->cfg.seed, ((uint64_t)h << 32) | id, 7);
    unsigned n = 64 + (unsigned)(next(&rng) % 960);

    put_bytes(b, head, sizeof head);
    for (unsigned i = 0; i < n; i++) {
        unsigned char c = i % 5 ? (unsigned char)next(&rng) : 0;
        put_bytes(b, &c, 1);
    }
    put_bytes(b, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
}

static void json(const struct site *s, int h, uint32_t id, struct buf *b)
{
    uint64_t rng = site__hash(s->cfg.seed, ((uint64_t)h << 32) | id, 8);
    unsigned n = 1 + (unsigned)(next(&rng) % 20);

    put(b, "{\"id\":%u,\"host\":%d,\"values\":[", (unsigned)id, h);
    for (unsigned i = 0; i < n; i++)
        put(b, "%s%u", i ? "," : "", (unsigned)(next(&rng) % 1000));
    put(b, "]}\n");
}

static void error_page(struct site_response *out, struct buf *b, int status,
                       const char *what)
{
    out->status = status;
    out->content_type = "text/html; charset=utf-8";
    put(b,
        "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
        "<body><h1>%d %s</h1></body></html>\n",
        status, what, status, what);
}

static void redirect(struct site_response *out, struct buf *b, int status,
                     const char *origin, const char *path)
{
    out->status = status;
    out->content_type = "text/html; charset=utf-8";
    snprintf(out->location, sizeof out->location, "%s%s", origin, path);
    put(b,
        "<!DOCTYPE html>\n<html><head><title>Moved</title></head>"
        "<body><p>Moved to <a href=\"%s\">%s</a>.</p></body></html>\n",
        out->location, out->location);
}

/* ---- request targets ----------------------------------------------------- */

/* Whether @t is exactly @prefix, a decimal id (at most 7 digits, no
 * leading zero) and @suffix; stores the id. */
static bool parse_id(const char *t, const char *prefix, const char *suffix,
                     uint32_t *id)
{
    size_t plen = strlen(prefix);
    size_t digits = 0;
    uint32_t v = 0;

    if (strncmp(t, prefix, plen) != 0)
        return false;
    t += plen;
    while (digits < 8 && isdigit((unsigned char)t[digits]))
        v = v * 10 + (uint32_t)(t[digits++] - '0');
    if (digits == 0 || digits > 7 || (t[0] == '0' && digits > 1) ||
        strcmp(t + digits, suffix) != 0)
        return false;
    *id = v;
    return true;
}

/* The content page of host @h at @t, or UINT32_MAX. */
static uint32_t page_at(const struct site *s, int h, const char *t)
{
    static const char *const shapes[][2] = {
        {"/articles/", ".html"},   {"/docs/", "/index.html"},
        {"/docs/", "/draft.html"}, {"/private/", ".html"},
        {"/archive/", ".html"},    {"/archive/public/", ".html"},
    };
    char path[64];
    uint32_t k = UINT32_MAX;

    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        if (parse_id(t, shapes[i][0], shapes[i][1], &k))
            break;
    if (k == UINT32_MAX && strncmp(t, "/blog/", 6) == 0 && strlen(t) > 11 &&
        t[10] == '/')
        parse_id(t + 10, "/", ".html", &k);
    /* The parse only proposes k; the exact path decides. */
    if (k >= s->pages || k % s->hosts != (uint32_t)h)
        return UINT32_MAX;
    site__node_path(s, k, path, sizeof path);
    return strcmp(path, t) == 0 ? k : UINT32_MAX;
}

/* Counts an attempt at page @k; returns its number (1, 2, ...; at most
 * 255). Relaxed: counters publish nothing but themselves. */
static unsigned attempt(struct site *s, uint32_t k)
{
    atomic_uchar *c = &s->attempts[k];
    unsigned char a = atomic_load_explicit(c, memory_order_relaxed);

    while (a < 255 && !atomic_compare_exchange_weak_explicit(
                          c, &a, (unsigned char)(a + 1), memory_order_relaxed,
                          memory_order_relaxed))
        ;
    return a < 255 ? a + 1u : 255u;
}

static void serve_page(struct site *s, uint32_t k, struct site_response *out,
                       struct buf *b)
{
    struct site_page p;
    unsigned a = attempt(s, k);

    site__page(s, k, &p);
    out->delay_ms = p.slow ? s->cfg.slow_ms : 0;
    if (p.fail != FAIL_NONE && a <= (unsigned)p.fails) {
        switch (p.fail) {
        case FAIL_503:
            out->retry_after_s = 1;
            error_page(out, b, 503, "Service Unavailable");
            return;
        case FAIL_429:
            out->status = 429;
            out->retry_after_s = 1;
            out->content_type = "text/plain; charset=utf-8";
            put(b, "Too many requests; retry after 1 s.\n");
            return;
        case FAIL_RESET:
            out->reset = true;
            return;
        default:
            error_page(out, b, 500, "Internal Server Error");
            return;
        }
    }
    out->status = 200;
    out->content_type = "text/html; charset=utf-8";
    out->chunked = p.chunked;
    render(s, k, b);
}

/* ---- site_respond -------------------------------------------------------- */

int site_respond(struct site *s, int h, const char *target,
                 struct site_response *out)
{
    struct buf b = {0};
    const char *origin;
    char path[64];
    uint32_t id;
    uint32_t k;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!s || !target || h < 0 || (uint32_t)h >= s->hosts)
        return -EINVAL;
    origin = s->origin[h];

    if (strcmp(target, "/") == 0) {
        out->status = 200;
        out->content_type = "text/html; charset=utf-8";
        render(s, s->pages + (uint32_t)h, &b);
    } else if (strcmp(target, "/robots.txt") == 0) {
        out->status = 200;
        out->content_type = "text/plain; charset=utf-8";
        robots_txt(s, h, &b);
    } else if ((k = page_at(s, h, target)) != UINT32_MAX) {
        serve_page(s, k, out, &b);
    } else if (parse_id(target, "/go/", "", &id) && id < s->pages) {
        site__node_path(s, id, path, sizeof path);
        redirect(out, &b, 301, s->origin[id % s->hosts], path);
    } else if (strcmp(target, "/chain/1") == 0) {
        redirect(out, &b, 301, origin, "/chain/2");
    } else if (strcmp(target, "/chain/2") == 0) {
        redirect(out, &b, 302, origin, "/chain/3");
    } else if (strcmp(target, "/chain/3") == 0) {
        uint32_t to = s->chain_to;
        uint32_t host = to >= s->pages ? to - s->pages : to % s->hosts;
        site__node_path(s, to, path, sizeof path);
        redirect(out, &b, 307, s->origin[host], path);
    } else if (strcmp(target, "/loop/a") == 0) {
        redirect(out, &b, 301, origin, "/loop/b");
    } else if (strcmp(target, "/loop/b") == 0) {
        redirect(out, &b, 302, origin, "/loop/a");
    } else if (parse_id(target, "/static/", ".png", &id) &&
               id < SITE_RESOURCES) {
        out->status = 200;
        out->content_type = "image/png";
        png(s, h, id, &b);
    } else if (parse_id(target, "/data/", ".json", &id) &&
               id < SITE_RESOURCES) {
        out->status = 200;
        out->content_type = "application/json";
        json(s, h, id, &b);
    } else {
        error_page(out, &b, 404, "Not Found");
    }

    if (out->reset)
        return 0; /* nothing was written: no body */
    if (reserve(&b, 1))
        b.p[b.len] = '\0'; /* a terminator beyond body_len, for text users */
    if (b.oom) {
        free(b.p);
        memset(out, 0, sizeof *out);
        return -ENOMEM;
    }
    out->body = b.p;
    out->body_len = b.len;
    return 0;
}

void site_response_free(struct site_response *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}
