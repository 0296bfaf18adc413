// SPDX-License-Identifier: MIT
/*
 * robots.txt parsing and matching (RFC 9309) for knit-crawl.
 *
 * Divisions: percent-normalisation, shared by patterns and paths so that
 * both are compared in one canonical form; wildcard matching, a greedy
 * loop that backtracks only to the last '*' (O(pattern x path), never
 * exponential); line and field splitting; group selection, done in two
 * passes over the text (the first learns whether any group names our
 * agent, the second keeps the rules of the groups that apply, so rules of
 * other agents never cost memory); the public API.
 *
 * Rules keep their normalised patterns in one growing pool and refer to
 * them by offset, so growing the pool never invalidates a rule.
 */
#include "robots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rule {
    size_t off;    /* of the normalised pattern in crawl_robots.pool */
    size_t len;    /* bytes of the pattern, the final '$' excluded */
    bool allow;    /* Allow (true) or Disallow */
    bool anchored; /* the pattern ended in '$': it must match all the path */
};

struct crawl_robots {
    struct rule *rules; /* in file order */
    size_t n;           /* rules in use */
    size_t cap;         /* rules allocated */
    char *pool;         /* the patterns, back to back, not NUL-terminated */
    size_t pool_len;    /* bytes in use */
    size_t pool_cap;    /* bytes allocated */
    int64_t delay_ms;   /* largest valid Crawl-delay of the groups used */
};

/* ---- percent-normalisation ---------------------------------------------- */

enum norm_mode {
    NORM_PATH,    /* '*' and '$' are literal bytes, encoded as %2A and %24 */
    NORM_PATTERN, /* '*' is the wildcard (runs collapse to one); '$' literal */
};

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 2.3: decoding these never changes what a URI means. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

static char *put_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    *o++ = '%';
    *o++ = hex[c >> 4];
    *o++ = hex[c & 15];
    return o;
}

/*
 * Writes the canonical form of s[0..n) to out, which must hold 3 * n bytes,
 * and returns its length. "%xx" becomes the byte when unreserved, else
 * "%XX"; control, space, DEL and non-ASCII bytes are encoded (RFC 9309
 * 2.2.2). A path's '*' and '$' are encoded too, so a raw '*' left in a
 * pattern's output can only be a wildcard.
 */
static size_t normalize(const char *s, size_t n, char *out, enum norm_mode m)
{
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi = i + 2 < n ? hex_value((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value((unsigned char)s[i + 2]) : -1;
        if (c == '%' && lo >= 0) {
            unsigned char d = (unsigned char)(hi << 4 | lo);
            if (is_unreserved(d))
                *o++ = (char)d;
            else
                o = put_escape(o, d);
            i += 2;
        } else if (c <= ' ' || c >= 0x7f || c == '$' ||
                   (c == '*' && m == NORM_PATH)) {
            o = put_escape(o, c);
        } else if (c == '*' && o > out && o[-1] == '*') {
            continue; /* "**" means what '*' means, and costs more to match */
        } else {
            *o++ = (char)c;
        }
    }
    return (size_t)(o - out);
}

/* ---- matching ----------------------------------------------------------- */

/*
 * Whether pattern p[0..m) matches a prefix of s[0..n) (all of s when
 * anchored). On a mismatch only the last '*' seen takes one more byte:
 * earlier stars never need to, since whatever they would take the last
 * one can take as well. So each byte of s is retried at most m times.
 */
static bool match(const char *p, size_t m, bool anchored, const char *s,
                  size_t n)
{
    size_t i = 0;           /* next byte of s */
    size_t j = 0;           /* next byte of p */
    size_t star = SIZE_MAX; /* index in p of the last '*' seen */
    size_t mark = 0;        /* where in s the bytes of that '*' end */

    for (;;) {
        if (j == m) {
            if (!anchored || i == n)
                return true;
        } else if (p[j] == '*') {
            star = j++;
            mark = i;
            continue;
        } else if (i < n && p[j] == s[i]) {
            i++;
            j++;
            continue;
        }
        if (star == SIZE_MAX || mark == n)
            return false;
        j = star + 1;
        i = ++mark;
    }
}

static bool is_robots_txt(const char *s, size_t n)
{
    static const char name[] = "/robots.txt";
    size_t k = sizeof name - 1;
    return n >= k && memcmp(s, name, k) == 0 && (n == k || s[k] == '?');
}

/* The longest matching pattern decides; Allow wins a tie (RFC 9309 2.2.2). */
static bool decide(const struct crawl_robots *r, const char *s, size_t n)
{
    bool found = false;
    bool allow = true;
    size_t best = 0;

    for (size_t k = 0; k < r->n; k++) {
        const struct rule *u = &r->rules[k];
        size_t w = u->len + u->anchored; /* the '$' counts, as written */
        if (found && (w < best || (w == best && (allow || !u->allow))))
            continue; /* cannot beat the current winner */
        if (match(r->pool + u->off, u->len, u->anchored, s, n)) {
            found = true;
            best = w;
            allow = u->allow;
        }
    }
    return allow;
}

/* ---- lines and fields --------------------------------------------------- */

enum field { F_OTHER, F_AGENT, F_ALLOW, F_DISALLOW, F_DELAY };

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Takes the next line off [*p, end) into [*ls, *le); LF, CRLF, CR end one. */
static bool next_line(const char **p, const char *end, const char **ls,
                      const char **le)
{
    const char *e = *p;
    if (e >= end)
        return false;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    *ls = *p;
    *le = e;
    if (e < end && *e == '\r' && e + 1 < end && e[1] == '\n')
        e++;
    *p = e < end ? e + 1 : e;
    return true;
}

static bool key_is(const char *k, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(k, name, n) == 0;
}

/*
 * Splits "key : value # comment" and says which field it is; the value,
 * trimmed, goes to *v, *vn. Lines without ':' are F_OTHER.
 */
static enum field split_field(const char *s, const char *e, const char **v,
                              size_t *vn)
{
    const char *hash = memchr(s, '#', (size_t)(e - s));
    if (hash)
        e = hash;
    const char *colon = memchr(s, ':', (size_t)(e - s));
    if (!colon)
        return F_OTHER;
    const char *ke = colon;
    const char *vs = colon + 1;
    while (s < ke && is_blank(*s))
        s++;
    while (ke > s && is_blank(ke[-1]))
        ke--;
    while (vs < e && is_blank(*vs))
        vs++;
    while (e > vs && is_blank(e[-1]))
        e--;
    *v = vs;
    *vn = (size_t)(e - vs);

    size_t kn = (size_t)(ke - s);
    if (key_is(s, kn, "user-agent"))
        return F_AGENT;
    if (key_is(s, kn, "allow"))
        return F_ALLOW;
    if (key_is(s, kn, "disallow"))
        return F_DISALLOW;
    if (key_is(s, kn, "crawl-delay"))
        return F_DELAY;
    return F_OTHER;
}

/*
 * Length of the product token at the start of s: letters, '-' and '_' per
 * RFC 9309 2.2.1, plus digits, so "bot2" is not taken for "bot".
 */
static size_t token_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_unreserved((unsigned char)s[i]) && s[i] != '.' &&
           s[i] != '~')
        i++;
    return i;
}

/* Seconds, maybe fractional, as ms capped at the maximum; -1 if invalid. */
static int64_t parse_delay(const char *v, size_t n)
{
    int64_t ms = 0;
    size_t i = 0;
    size_t digits = 0;

    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, digits++)
        if (ms <= CRAWL_ROBOTS_MAX_DELAY_MS) /* else saturated: no overflow */
            ms = ms * 10 + (v[i] - '0') * 1000;
    if (i < n && v[i] == '.') {
        int64_t scale = 100; /* ms per unit of the next fraction digit */
        for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++, digits++) {
            ms += (v[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (digits == 0 || i != n)
        return -1;
    return ms > CRAWL_ROBOTS_MAX_DELAY_MS ? CRAWL_ROBOTS_MAX_DELAY_MS : ms;
}

/* ---- groups ------------------------------------------------------------- */

static int add_rule(struct crawl_robots *r, const char *v, size_t vn,
                    bool allow)
{
    /* An empty value is no rule at all (RFC 9309 2.2.2). */
    if (vn == 0 || vn > CRAWL_ROBOTS_MAX_VALUE ||
        r->n == CRAWL_ROBOTS_MAX_RULES)
        return 0;
    /* vn is 1..CRAWL_ROBOTS_MAX_VALUE here and v has vn bytes; cppcheck
     * mixes the bound up with a caller's short literal. */
    // cppcheck-suppress arrayIndexOutOfBoundsCond
    bool anchored = v[vn - 1] == '$';
    if (anchored)
        vn--;

    size_t need = r->pool_len + 1 + 3 * vn;
    if (need > r->pool_cap) {
        size_t cap = r->pool_cap ? r->pool_cap : 256;
        while (cap < need)
            cap *= 2;
        char *pool = realloc(r->pool, cap);
        if (!pool)
            return -ENOMEM;
        r->pool = pool;
        r->pool_cap = cap;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct rule *rules = realloc(r->rules, cap * sizeof *rules);
        if (!rules)
            return -ENOMEM;
        r->rules = rules;
        r->cap = cap;
    }

    struct rule *u = &r->rules[r->n++];
    char *o = r->pool + r->pool_len;
    u->off = r->pool_len;
    u->allow = allow;
    u->anchored = anchored;
    /* Paths start with '/', so a pattern written without one gets it. */
    if (vn == 0 || (v[0] != '/' && v[0] != '*'))
        *o++ = '/';
    o += normalize(v, vn, o, NORM_PATTERN);
    u->len = (size_t)(o - (r->pool + u->off));
    r->pool_len += u->len;
    return 0;
}

enum keep {
    KEEP_NONE, /* first pass: only learn whether a group names us */
    KEEP_OURS, /* keep the groups naming us */
    KEEP_STAR, /* keep the "*" groups */
};

struct scan {
    const char *ua;  /* our product token */
    size_t ua_len;   /* its length; 0: no group can name us */
    bool in_agents;  /* the last group line was a User-agent line */
    bool names_us;   /* the current group lists our token */
    bool names_star; /* the current group lists "*" */
    bool found;      /* some group lists our token */
};

/*
 * One pass over the text. A User-agent line after a rule line starts a new
 * group; consecutive User-agent lines share one. Rules before the first
 * User-agent line belong to no group and are dropped. Other lines are
 * transparent: a Sitemap line between User-agent lines splits nothing.
 * Return: 0; -ENOMEM.
 */
static int scan(struct crawl_robots *r, const char *p, const char *end,
                struct scan *sc, enum keep keep)
{
    const char *ls;
    const char *le;

    sc->in_agents = sc->names_us = sc->names_star = false;
    while (next_line(&p, end, &ls, &le)) {
        const char *v;
        size_t vn;
        enum field f = split_field(ls, le, &v, &vn);
        if (f == F_OTHER)
            continue;
        if (f == F_AGENT) {
            if (!sc->in_agents)
                sc->names_us = sc->names_star = false;
            sc->in_agents = true;
            size_t tn = token_len(v, vn);
            if (vn > 0 && v[0] == '*' && (vn == 1 || is_blank(v[1])))
                sc->names_star = true;
            else if (tn > 0 && tn == sc->ua_len &&
                     strncasecmp(v, sc->ua, tn) == 0)
                sc->names_us = sc->found = true;
            continue;
        }
        sc->in_agents = false;
        if (keep == KEEP_NONE ||
            !(keep == KEEP_OURS ? sc->names_us : sc->names_star))
            continue;
        if (f == F_DELAY) {
            int64_t d = parse_delay(v, vn);
            if (d > r->delay_ms)
                r->delay_ms = d;
        } else if (add_rule(r, v, vn, f == F_ALLOW) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* ---- API ---------------------------------------------------------------- */

struct crawl_robots *crawl_robots_parse(const char *txt, size_t len,
                                        const char *ua)
{
    struct crawl_robots *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (!txt) {
        txt = "";
        len = 0;
    }
    if (len > CRAWL_ROBOTS_MAX_SIZE) {
        /* Drop the line cut in two: half a rule may mean something else. */
        len = CRAWL_ROBOTS_MAX_SIZE;
        while (len > 0 && txt[len - 1] != '\n' && txt[len - 1] != '\r')
            len--;
    }
    const char *p = txt;
    /* len never exceeds the caller's buffer (it only shrinks above). */
    // cppcheck-suppress pointerOutOfBoundsCond
    const char *end = txt + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;

    struct scan sc = {.ua = ua ? ua : ""};
    sc.ua_len = token_len(sc.ua, strlen(sc.ua));
    if (sc.ua_len > 0)
        (void)scan(r, p, end, &sc, KEEP_NONE); /* keeps nothing: no error */
    if (scan(r, p, end, &sc, sc.found ? KEEP_OURS : KEEP_STAR) < 0) {
        crawl_robots_free(r);
        return NULL;
    }
    return r;
}

struct crawl_robots *crawl_robots_allow_all(void)
{
    return calloc(1, sizeof(struct crawl_robots));
}

struct crawl_robots *crawl_robots_disallow_all(void)
{
    struct crawl_robots *r = calloc(1, sizeof *r);
    if (r && add_rule(r, "/", 1, false) < 0) {
        crawl_robots_free(r);
        return NULL;
    }
    return r;
}

bool crawl_robots_allowed(const struct crawl_robots *r, const char *path)
{
    char stack[3 * 1024];
    char *buf = stack;
    size_t n = path ? strlen(path) : 0;

    if (n == 0) {
        path = "/";
        n = 1;
    }
    if (n > sizeof stack / 3) {
        if (n > SIZE_MAX / 3 || !(buf = malloc(3 * n)))
            return false; /* refusing is the safe answer */
    }
    size_t m = normalize(path, n, buf, NORM_PATH);
    bool ok = is_robots_txt(buf, m) || decide(r, buf, m);
    if (buf != stack)
        free(buf);
    return ok;
}

int64_t crawl_robots_delay_ms(const struct crawl_robots *r)
{
    return r->delay_ms;
}

void crawl_robots_free(struct crawl_robots *r)
{
    if (!r)
        return;
    free(r->rules);
    free(r->pool);
    free(r);
}
