// SPDX-License-Identifier: MIT
/*
 * The demo site's content model (apps/crawl/site.h): configuration checks,
 * determinism, the list's form, the documented failure schedules,
 * redirects, robots.txt and resource types; and a cross-check of the list
 * against the site as served.
 *
 * The cross-check is a small reference crawler that lives in this file
 * only: it scans generated HTML for href="..." (the generator writes
 * regular HTML, so string matching is enough here, unlike in the real
 * crawler), resolves references per RFC 3986 (base, dot segments, case,
 * fragments), obeys the served robots.txt through its own little matcher,
 * retries failures, follows redirects and detects loops, walking the site
 * breadth-first through site_respond() from host 0's "/". The set of HTML
 * pages it stores must equal site_list()'s output.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "site.h"

/* snprintf that fails the test instead of truncating. */
__attribute__((format(printf, 3, 4))) static void fmt(char *dst, size_t len,
                                                      const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(dst, len, f, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < len);
}

/* ---- fixtures ------------------------------------------------------------ */

static char origin_buf[SITE_MAX_HOSTS][32];
static const char *origins[SITE_MAX_HOSTS];

/* The origins used everywhere: host h at port 9000 + h. */
static void init_origins(void)
{
    for (int h = 0; h < SITE_MAX_HOSTS; h++) {
        fmt(origin_buf[h], sizeof origin_buf[h], "http://127.0.0.1:%d",
            9000 + h);
        origins[h] = origin_buf[h];
    }
}

static struct site *make(uint64_t seed, int hosts, int pages, int slow_ms)
{
    struct site_config cfg = {
        .seed = seed, .hosts = hosts, .pages = pages, .slow_ms = slow_ms};
    struct site *s;

    init_origins();
    s = site_new(&cfg, origins);
    assert_non_null(s);
    return s;
}

/* A list of strings. */
struct strs {
    char **v;
    size_t n;
    size_t cap;
};

static void strs_add(struct strs *a, const char *str)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        assert_non_null(a->v);
    }
    a->v[a->n] = strdup(str);
    assert_non_null(a->v[a->n]);
    a->n++;
}

static void strs_free(struct strs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool strs_has_sorted(const struct strs *a, const char *str)
{
    return bsearch(&str, a->v, a->n, sizeof *a->v, cmp_str) != NULL;
}

/* site_list() as text. */
static char *list_text(const struct site *s, int retries, long *count)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    *count = site_list(s, retries, f);
    assert_int_equal(fclose(f), 0);
    assert_true(*count >= 0);
    return text;
}

/* site_list() as lines, in its order. */
static void list_lines(const struct site *s, int retries, struct strs *out)
{
    long count;
    char *text = list_text(s, retries, &count);

    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        strs_add(out, line);
    assert_int_equal(out->n, (size_t)count);
    free(text);
}

/* Splits canonical @url into its host and request target; -1 (and a
 * NULL target) if it names none of the origins. */
static int split(int hosts, const char *url, const char **target)
{
    *target = NULL;
    for (int h = 0; h < hosts; h++) {
        size_t len = strlen(origins[h]);
        if (strncmp(url, origins[h], len) == 0 && url[len] == '/') {
            *target = url + len;
            return h;
        }
    }
    return -1;
}

static bool is_html(const struct site_response *r)
{
    return r->content_type && strncmp(r->content_type, "text/html", 9) == 0 &&
           (r->content_type[9] == '\0' || r->content_type[9] == ';');
}

static bool is_failure(const struct site_response *r)
{
    return r->reset || r->status == 429 || r->status >= 500;
}

/* Requests @target until it stops failing, at most 1 + @retries times. */
static void fetch(struct site *s, int h, const char *target, int retries,
                  struct site_response *r)
{
    for (int i = 0; i <= retries; i++) {
        if (i)
            site_response_free(r);
        assert_int_equal(site_respond(s, h, target, r), 0);
        if (!is_failure(r))
            return;
    }
}

/* ---- references (RFC 3986, the subset the generator writes) -------------- */

/* RFC 3986 5.2.4 remove_dot_segments. */
static void remove_dots(const char *in, char *out)
{
    size_t o = 0;

    while (*in) {
        if (strncmp(in, "../", 3) == 0) {
            in += 3;
        } else if (strncmp(in, "./", 2) == 0) {
            in += 2;
        } else if (strncmp(in, "/./", 3) == 0) {
            in += 2;
        } else if (strcmp(in, "/.") == 0) {
            in = "/";
        } else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
            in = in[3] ? in + 3 : "/";
            while (o > 0 && out[--o] != '/')
                ;
        } else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
            in += strlen(in);
        } else {
            do
                out[o++] = *in++;
            while (*in && *in != '/');
        }
    }
    out[o] = '\0';
}

/* Resolves @href against the canonical absolute @base into a canonical URL
 * without fragment: lower-case scheme and host, dot segments removed. */
static void resolve(const char *base, const char *href, char *out)
{
    char ref[1024];
    char auth[256];
    char path[1024];
    char *hash;
    const char *base_auth = base + 7;
    size_t base_auth_len = strcspn(base_auth, "/");

    fmt(ref, sizeof ref, "%s", href);
    hash = strchr(ref, '#');
    if (hash)
        *hash = '\0';
    if (strncasecmp(ref, "http://", 7) == 0 || strncmp(ref, "//", 2) == 0) {
        const char *a = ref + (ref[0] == '/' ? 2 : 7);
        size_t alen = strcspn(a, "/");
        fmt(auth, sizeof auth, "%.*s", (int)alen, a);
        fmt(path, sizeof path, "%s", a[alen] ? a + alen : "/");
    } else {
        fmt(auth, sizeof auth, "%.*s", (int)base_auth_len, base_auth);
        if (ref[0] == '/') {
            fmt(path, sizeof path, "%s", ref);
        } else {
            const char *bpath = base_auth + base_auth_len;
            const char *slash = strrchr(bpath, '/');
            if (ref[0] == '\0') /* same document */
                fmt(path, sizeof path, "%s", bpath);
            else
                fmt(path, sizeof path, "%.*s%s", (int)(slash - bpath + 1),
                    bpath, ref);
        }
    }
    for (char *c = auth; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    strcpy(out, "http://");
    strcat(out, auth);
    remove_dots(path, out + strlen(out));
}

static void reference_resolves_dots_case_and_fragments(void **state)
{
    static const char *const cases[][3] = {
        {"http://a:1/articles/5.html", "7.html", "http://a:1/articles/7.html"},
        {"http://a:1/articles/5.html", "../docs/3/index.html#x",
         "http://a:1/docs/3/index.html"},
        {"http://a:1/docs/3/index.html", "sub/../../../go/4",
         "http://a:1/go/4"},
        {"http://a:1/x.html", "/x/../blog/2015/7.html",
         "http://a:1/blog/2015/7.html"},
        {"http://a:1/x.html", "HTTP://A:2", "http://a:2/"},
        {"http://a:1/x.html", "//a:3/./y.html", "http://a:3/y.html"},
        {"http://a:1/d/x.html", "#section-2", "http://a:1/d/x.html"},
        {"http://a:1/d/x.html", "./", "http://a:1/d/"},
        {"http://a:1/d/e/x.html", "../..", "http://a:1/"},
    };
    char out[1024];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resolve(cases[i][0], cases[i][1], out);
        assert_string_equal(out, cases[i][2]);
    }
}

/* ---- robots.txt (just enough of RFC 9309 for the generated files) ------- */

struct rule {
    bool allow;
    char pat[128];
};

struct robots {
    struct rule r[32];
    int n;
    bool delay; /* a Crawl-delay line was seen */
};

/* Keeps the rules of the groups naming SITE_AGENT. */
static void robots_parse(const char *txt, struct robots *rb)
{
    char line[256];
    bool ours = false;
    bool in_agents = false;

    memset(rb, 0, sizeof *rb);
    while (*txt) {
        size_t len = strcspn(txt, "\n");
        char *value;
        fmt(line, sizeof line, "%.*s", (int)len, txt);
        txt += len + (txt[len] == '\n');
        if (strncasecmp(line, "Crawl-delay:", 12) == 0)
            rb->delay = true;
        value = strchr(line, ':');
        if (!value || line[0] == '#')
            continue;
        *value++ = '\0';
        while (*value == ' ')
            value++;
        if (strcasecmp(line, "User-agent") == 0) {
            if (!in_agents)
                ours = false;
            in_agents = true;
            ours |= strcasecmp(value, SITE_AGENT) == 0;
            continue;
        }
        in_agents = false;
        if (ours && *value && rb->n < 32 &&
            (strcasecmp(line, "Allow") == 0 ||
             strcasecmp(line, "Disallow") == 0)) {
            rb->r[rb->n].allow = strcasecmp(line, "Allow") == 0;
            fmt(rb->r[rb->n].pat, sizeof rb->r[rb->n].pat, "%s", value);
            rb->n++;
        }
    }
}

/* Whether @pat ('*' any run, final '$' the end) matches a prefix of @p. */
static bool robots_match(const char *pat, const char *p)
{
    if (*pat == '\0')
        return true;
    if (pat[0] == '$' && pat[1] == '\0')
        return *p == '\0';
    if (*pat == '*') {
        for (;; p++) {
            if (robots_match(pat + 1, p))
                return true;
            if (!*p)
                return false;
        }
    }
    return *p == *pat && robots_match(pat + 1, p + 1);
}

/* The longest matching rule wins, Allow wins a tie. */
static bool robots_allowed(const struct robots *rb, const char *path)
{
    int best = -1;
    bool allow = true;

    for (int i = 0; i < rb->n; i++) {
        int len = (int)strlen(rb->r[i].pat);
        if (robots_match(rb->r[i].pat, path) &&
            (len > best || (len == best && rb->r[i].allow))) {
            best = len;
            allow = rb->r[i].allow;
        }
    }
    return allow;
}

static void load_robots(struct site *s, int hosts, struct robots *rb)
{
    for (int h = 0; h < hosts; h++) {
        struct site_response r;
        assert_int_equal(site_respond(s, h, "/robots.txt", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/plain; charset=utf-8");
        robots_parse(r.body, &rb[h]);
        site_response_free(&r);
    }
}

static void robots_matcher_follows_rfc_9309(void **state)
{
    struct robots rb;

    (void)state;
    robots_parse("User-agent: *\nDisallow: /\n\nUser-agent: other\n"
                 "User-agent: KNIT-crawl\nDisallow: /a/\nAllow: /a/b\n"
                 "Disallow: /*.json$\nDisallow: /*/d.html$\n",
                 &rb);
    assert_int_equal(rb.n, 4);
    assert_true(robots_allowed(&rb, "/"));
    assert_false(robots_allowed(&rb, "/a/x"));
    assert_true(robots_allowed(&rb, "/a/bc"));
    assert_false(robots_allowed(&rb, "/x/1.json"));
    assert_true(robots_allowed(&rb, "/x/1.jsonx"));
    assert_false(robots_allowed(&rb, "/docs/3/d.html"));
}

/* ---- the reference crawler ----------------------------------------------- */

/* A set of strings (open addressing). */
struct set {
    char **slot;
    size_t cap;
    size_t n;
};

static uint64_t fnv(const char *str)
{
    uint64_t h = 1469598103934665603u;
    for (; *str; str++)
        h = (h ^ (unsigned char)*str) * 1099511628211u;
    return h;
}

/* Adds @str; returns false if it was there. */
static bool set_add(struct set *st, const char *str)
{
    if (2 * (st->n + 1) > st->cap) {
        struct set big = {calloc(st->cap ? 2 * st->cap : 1024, sizeof(char *)),
                          st->cap ? 2 * st->cap : 1024, 0};
        assert_non_null(big.slot);
        for (size_t i = 0; i < st->cap; i++)
            if (st->slot[i]) {
                size_t j = fnv(st->slot[i]) & (big.cap - 1);
                while (big.slot[j])
                    j = (j + 1) & (big.cap - 1);
                big.slot[j] = st->slot[i];
                big.n++;
            }
        free(st->slot);
        *st = big;
    }
    size_t j = fnv(str) & (st->cap - 1);
    for (; st->slot[j]; j = (j + 1) & (st->cap - 1))
        if (strcmp(st->slot[j], str) == 0)
            return false;
    st->slot[j] = strdup(str);
    assert_non_null(st->slot[j]);
    st->n++;
    return true;
}

static void set_free(struct set *st)
{
    for (size_t i = 0; i < st->cap; i++)
        free(st->slot[i]);
    free(st->slot);
}

/* What the crawl saw. */
struct crawl {
    struct strs stored;     /* HTML pages answered 200 */
    struct strs disallowed; /* URLs robots.txt refused */
    struct strs failed;     /* URLs still failing after the retries */
    int redirects;          /* 3xx answers followed */
    int loops;              /* redirect loops detected */
    int resources;          /* non-HTML 200 answers */
    int not_found;          /* 404 answers */
    int based;              /* pages with <base href> */
    int chunked;            /* pages served chunked */
};

/* Queues every link of the HTML @body of @url. */
static void scan_links(const char *url, const char *body, struct set *seen,
                       struct strs *queue, struct crawl *c)
{
    char base[1024];
    char href[1024];
    char abs[1024];
    const char *b = strstr(body, "<base href=\"");

    fmt(base, sizeof base, "%s", url);
    if (b) {
        b += 12;
        fmt(base, sizeof base, "%.*s", (int)strcspn(b, "\""), b);
        c->based++;
    }
    for (const char *p = body; (p = strstr(p, "<a href=\"")) != NULL;) {
        p += 9;
        fmt(href, sizeof href, "%.*s", (int)strcspn(p, "\""), p);
        resolve(base, href, abs);
        if (set_add(seen, abs))
            strs_add(queue, abs);
    }
}

static void crawl(struct site *s, int hosts, int retries, struct crawl *c)
{
    struct robots rb[SITE_MAX_HOSTS];
    struct set seen = {0};
    struct strs queue = {0};
    char url[1024];

    memset(c, 0, sizeof *c);
    load_robots(s, hosts, rb);
    fmt(url, sizeof url, "%s/", origins[0]);
    set_add(&seen, url);
    strs_add(&queue, url);
    for (size_t qi = 0; qi < queue.n; qi++) {
        struct strs hops = {0}; /* this chain of redirects */
        fmt(url, sizeof url, "%s", queue.v[qi]);
        for (;;) {
            struct site_response r;
            const char *target;
            int h = split(hosts, url, &target);

            assert_true(h >= 0); /* every link names a known host */
            if (!robots_allowed(&rb[h], target)) {
                strs_add(&c->disallowed, url);
                break;
            }
            strs_add(&hops, url);
            fetch(s, h, target, retries, &r);
            if (is_failure(&r)) {
                strs_add(&c->failed, url);
            } else if (r.status >= 300 && r.status < 400) {
                char next[1024];
                bool loop = false;
                assert_true(r.location[0] != '\0');
                resolve(url, r.location, next);
                c->redirects++;
                for (size_t i = 0; i < hops.n; i++)
                    loop |= strcmp(hops.v[i], next) == 0;
                if (loop) {
                    c->loops++;
                } else if (set_add(&seen, next)) {
                    fmt(url, sizeof url, "%s", next);
                    site_response_free(&r);
                    continue; /* follow it */
                }
            } else if (r.status == 200 && is_html(&r)) {
                strs_add(&c->stored, url);
                c->chunked += r.chunked;
                scan_links(url, r.body, &seen, &queue, c);
            } else if (r.status == 200) {
                c->resources++;
            } else {
                assert_int_equal(r.status, 404);
                c->not_found++;
            }
            site_response_free(&r);
            break;
        }
        strs_free(&hops);
    }
    qsort(c->stored.v, c->stored.n, sizeof *c->stored.v, cmp_str);
    strs_free(&queue);
    set_free(&seen);
}

static void crawl_free(struct crawl *c)
{
    strs_free(&c->stored);
    strs_free(&c->disallowed);
    strs_free(&c->failed);
}

/* Crawls a fresh site and compares what it stored with site_list(). */
static void check_crawl_equals_list(uint64_t seed, int hosts, int pages,
                                    int retries)
{
    struct site *s = make(seed, hosts, pages, 100);
    struct strs list = {0};
    struct crawl c;

    list_lines(s, retries, &list);
    crawl(s, hosts, retries, &c);
    assert_int_equal(c.stored.n, list.n);
    for (size_t i = 0; i < list.n; i++)
        assert_string_equal(c.stored.v[i], list.v[i]);
    for (size_t i = 0; i < c.disallowed.n; i++)
        assert_false(strs_has_sorted(&list, c.disallowed.v[i]));
    for (size_t i = 0; i < c.failed.n; i++)
        assert_false(strs_has_sorted(&list, c.failed.v[i]));
    assert_int_equal(c.loops, 1); /* /loop/a is always reached, once */
    if (pages >= 5000) {
        /* Every feature shows up on a big site. */
        assert_true(c.disallowed.n > 0);
        assert_true(c.failed.n > 0);
        assert_true(c.redirects > 100);
        assert_true(c.resources > 0);
        assert_true(c.not_found > 0);
        assert_true(c.based > 0);
        assert_true(c.chunked > 0);
        assert_true(list.n > (size_t)pages / 2);
    }
    crawl_free(&c);
    strs_free(&list);
    site_free(s);
}

static void crawl_finds_the_list_on_tiny_sites(void **state)
{
    (void)state;
    for (int retries = 0; retries <= 2; retries++) {
        check_crawl_equals_list(1, 1, 1, retries);
        check_crawl_equals_list(2, 8, 1, retries);
        check_crawl_equals_list(3, 1, 50, retries);
        check_crawl_equals_list(4, 8, 50, retries);
    }
}

static void crawl_finds_the_list_on_the_default_site(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++)
        check_crawl_equals_list(seed, SITE_DEFAULT_HOSTS, SITE_DEFAULT_PAGES,
                                (int)seed % 3);
}

static void crawl_finds_the_list_on_5000_pages_over_8_hosts(void **state)
{
    (void)state;
    check_crawl_equals_list(42, 8, 5000, 0);
    check_crawl_equals_list(42, 8, 5000, 2);
}

static void crawl_finds_the_list_on_5000_pages_on_1_host(void **state)
{
    (void)state;
    check_crawl_equals_list(43, 1, 5000, 1);
}

/* ---- configuration ------------------------------------------------------- */

static void site_new_rejects_bad_configs_with_einval(void **state)
{
    static const struct site_config bad[] = {
        {1, 0, 10, 0},      {1, 65, 10, 0}, {1, 2, 0, 0},
        {1, 2, 1000001, 0}, {1, 2, 10, -1}, {1, 2, 10, 60001},
    };
    struct site_config ok = {1, 2, 10, 0};
    const char *dup[] = {"http://127.0.0.1:1", "HTTP://127.0.0.1:1/"};
    const char *ftp[] = {"ftp://127.0.0.1:1", "http://127.0.0.1:2"};
    const char *path[] = {"http://127.0.0.1:1/x", "http://127.0.0.1:2"};
    const char *none[] = {"http://127.0.0.1:1", NULL};

    (void)state;
    init_origins();
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        assert_null(site_new(&bad[i], origins));
        assert_int_equal(errno, EINVAL);
    }
    const char *const *sets[] = {dup, ftp, path, none, NULL};
    for (size_t i = 0; i < 4; i++) {
        errno = 0;
        assert_null(site_new(&ok, sets[i]));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(site_new(NULL, origins));
    assert_int_equal(errno, EINVAL);
    assert_null(site_new(&ok, NULL));
    site_free(NULL);
}

static void origins_are_canonicalised(void **state)
{
    struct site_config cfg = {9, 2, 20, 0};
    const char *o[] = {"HTTP://LocalHost:80/", "http://127.0.0.1:8080/"};
    struct site *s = site_new(&cfg, o);
    struct strs list = {0};
    char url[256];

    (void)state;
    assert_non_null(s);
    list_lines(s, 2, &list);
    assert_string_equal(list.v[0], "http://127.0.0.1:8080/");
    assert_true(strs_has_sorted(&list, "http://localhost/"));
    for (size_t i = 0; i < list.n; i++)
        assert_true(strncmp(list.v[i], "http://127.0.0.1:8080/", 22) == 0 ||
                    strncmp(list.v[i], "http://localhost/", 17) == 0);
    assert_int_equal(site_page_url(s, 1, url, sizeof url), 0);
    assert_int_equal(strncmp(url, "http://127.0.0.1:8080/", 22), 0);
    assert_int_equal(site_page_url(s, 1, url, 10), -ERANGE);
    assert_int_equal(site_page_url(s, 20, url, sizeof url), -EINVAL);
    assert_int_equal(site_page_url(s, -1, url, sizeof url), -EINVAL);
    strs_free(&list);
    site_free(s);
}

/* ---- determinism and the list's form ------------------------------------- */

/* Every page's first answer and the list, as one blob. */
static char *fingerprint(uint64_t seed, size_t *len)
{
    struct site *s = make(seed, 3, 300, 50);
    char *blob = NULL;
    FILE *f = open_memstream(&blob, len);
    char url[256];
    long count;
    char *list = list_text(s, 1, &count);

    assert_non_null(f);
    fputs(list, f);
    for (long k = 0; k < 300; k++) {
        struct site_response r;
        const char *target;
        assert_int_equal(site_page_url(s, k, url, sizeof url), 0);
        int h = split(3, url, &target);
        assert_int_equal(site_respond(s, h, target, &r), 0);
        fprintf(f, "%s %d %d %s %d %d %d %zu\n", url, r.status, r.reset,
                r.content_type ? r.content_type : "-", r.retry_after_s,
                r.delay_ms, r.chunked, r.body_len);
        if (r.body)
            fwrite(r.body, 1, r.body_len, f);
        site_response_free(&r);
    }
    for (int h = 0; h < 3; h++) {
        static const char *const other[] = {"/", "/robots.txt", "/static/7.png",
                                            "/data/7.json", "/go/7"};
        for (size_t i = 0; i < 5; i++) {
            struct site_response r;
            assert_int_equal(site_respond(s, h, other[i], &r), 0);
            fprintf(f, "%d %s %s\n", r.status, r.content_type, r.location);
            fwrite(r.body, 1, r.body_len, f);
            site_response_free(&r);
        }
    }
    assert_int_equal(fclose(f), 0);
    free(list);
    site_free(s);
    return blob;
}

static void same_seed_gives_byte_identical_responses_and_list(void **state)
{
    size_t alen;
    size_t blen;
    char *a = fingerprint(77, &alen);
    char *b = fingerprint(77, &blen);

    (void)state;
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    free(a);
    free(b);
}

static void different_seed_gives_a_different_site(void **state)
{
    struct site *a = make(1, 4, 400, 0);
    struct site *b = make(2, 4, 400, 0);
    long na;
    long nb;
    char *la = list_text(a, 2, &na);
    char *lb = list_text(b, 2, &nb);
    struct site_response ra;
    struct site_response rb;

    (void)state;
    assert_string_not_equal(la, lb);
    assert_int_equal(site_respond(a, 0, "/", &ra), 0);
    assert_int_equal(site_respond(b, 0, "/", &rb), 0);
    assert_true(ra.body_len != rb.body_len ||
                memcmp(ra.body, rb.body, ra.body_len) != 0);
    site_response_free(&ra);
    site_response_free(&rb);
    free(la);
    free(lb);
    site_free(a);
    site_free(b);
}

static void list_is_sorted_canonical_and_without_duplicates(void **state)
{
    struct site *s = make(5, 8, 5000, 0);
    struct strs list = {0};

    (void)state;
    list_lines(s, 2, &list);
    assert_true(list.n > 2500);
    for (size_t i = 0; i < list.n; i++) {
        const char *target;
        assert_true(split(8, list.v[i], &target) >= 0);
        assert_null(strstr(target, "/."));
        assert_null(strchr(target, '#'));
        assert_null(strstr(target, "//"));
        if (i)
            assert_true(strcmp(list.v[i - 1], list.v[i]) < 0);
    }
    for (int h = 0; h < 8; h++) { /* every index is listed */
        char url[64];
        fmt(url, sizeof url, "%s/", origins[h]);
        assert_true(strs_has_sorted(&list, url));
    }
    strs_free(&list);
    site_free(s);
}

static void every_listed_url_answers_200_html_within_the_retries(void **state)
{
    (void)state;
    for (int retries = 0; retries <= 2; retries++) {
        struct site *s = make(6, 4, 2000, 0);
        struct strs list = {0};
        list_lines(s, retries, &list);
        for (size_t i = 0; i < list.n; i++) {
            struct site_response r;
            const char *target;
            int h = split(4, list.v[i], &target);
            fetch(s, h, target, retries, &r);
            assert_int_equal(r.status, 200);
            assert_true(is_html(&r));
            assert_non_null(strstr(r.body, "<title>"));
            site_response_free(&r);
        }
        strs_free(&list);
        site_free(s);
    }
}

/* ---- failures ------------------------------------------------------------ */

/* The documented schedules, as the statuses of attempts until a 200 (a
 * reset is 0); PERM: 500 on every attempt. */
enum sched { OK, S503, S500, S500X2, RESET, S429, PERM, NSCHED };

static enum sched schedule_of(struct site *s, int h, const char *target)
{
    int st[8];
    int n = 0;

    for (; n < 8; n++) {
        struct site_response r;
        assert_int_equal(site_respond(s, h, target, &r), 0);
        st[n] = r.status;
        if (r.status == 503 || r.status == 429)
            assert_int_equal(r.retry_after_s, 1);
        else
            assert_int_equal(r.retry_after_s, 0);
        if (r.reset) {
            assert_int_equal(r.status, 0);
            assert_null(r.body);
        }
        site_response_free(&r);
        if (st[n] == 200)
            break;
    }
    if (n == 8) {
        for (int i = 0; i < 8; i++)
            assert_int_equal(st[i], 500);
        return PERM;
    }
    switch (n) {
    case 0:
        return OK;
    case 1:
        switch (st[0]) {
        case 503:
            return S503;
        case 500:
            return S500;
        case 0:
            return RESET;
        case 429:
            return S429;
        }
        break;
    case 2:
        if (st[0] == 500 && st[1] == 500)
            return S500X2;
        break;
    }
    fail_msg("%s: undocumented schedule, %d failures first %d", target, n,
             st[0]);
    return NSCHED;
}

static void transient_failures_fail_as_documented_then_succeed(void **state)
{
    struct site *s = make(8, 4, 5000, 0);
    struct strs list0 = {0};
    struct strs list1 = {0};
    struct strs list2 = {0};
    int count[NSCHED] = {0};
    char url[256];

    (void)state;
    list_lines(s, 0, &list0);
    list_lines(s, 1, &list1);
    list_lines(s, 2, &list2);
    for (long k = 0; k < 5000; k++) {
        const char *target;
        assert_int_equal(site_page_url(s, k, url, sizeof url), 0);
        int h = split(4, url, &target);
        enum sched sc = schedule_of(s, h, target);
        count[sc]++;
        /* A page needing more retries than allowed is never listed. */
        if (sc != OK)
            assert_false(strs_has_sorted(&list0, url));
        if (sc == S500X2 || sc == PERM)
            assert_false(strs_has_sorted(&list1, url));
        if (sc == PERM)
            assert_false(strs_has_sorted(&list2, url));
    }
    for (int i = 0; i < NSCHED; i++)
        assert_true(count[i] > 0);
    /* Roughly the documented fractions (3, 3, 2, 2, 2 %). */
    assert_in_range(count[S503], 100, 200);
    assert_in_range(count[S500] + count[S500X2], 100, 200);
    assert_in_range(count[RESET] + count[S429] + count[PERM], 200, 400);
    strs_free(&list0);
    strs_free(&list1);
    strs_free(&list2);
    site_free(s);
}

static void
disallowed_and_permanently_failing_pages_are_not_listed(void **state)
{
    struct site *s = make(9, 8, 5000, 0);
    struct robots rb[8];
    struct strs list = {0};
    int denied = 0;
    int perm = 0;
    int blog = 0;
    char url[256];

    (void)state;
    load_robots(s, 8, rb);
    list_lines(s, 5, &list);
    for (long k = 0; k < 5000; k++) {
        const char *target;
        assert_int_equal(site_page_url(s, k, url, sizeof url), 0);
        int h = split(8, url, &target);
        if (!robots_allowed(&rb[h], target)) {
            denied++;
            assert_false(strs_has_sorted(&list, url));
        } else if (schedule_of(s, h, target) == PERM) {
            perm++;
            assert_false(strs_has_sorted(&list, url));
        } else if (strncmp(target, "/blog/", 6) == 0) {
            /* Refused to "*" only: knit-crawl obeys its own group. */
            blog += strs_has_sorted(&list, url);
        }
    }
    assert_in_range(denied, 500, 1000); /* ~13% + a few articles */
    assert_in_range(perm, 50, 200);     /* ~2% */
    assert_true(blog > 300);            /* ~12%, nearly all reachable */
    strs_free(&list);
    site_free(s);
}

/* Requests one target from several threads at once. */
struct hammer {
    struct site *s;
    int h;
    const char *target;
    int failures; /* answers other than 200 this thread got */
};

static void *hammer_run(void *arg)
{
    struct hammer *hm = arg;

    for (int i = 0; i < 50; i++) {
        struct site_response r;
        if (site_respond(hm->s, hm->h, hm->target, &r) != 0 || r.status != 200)
            hm->failures++;
        site_response_free(&r);
    }
    return NULL;
}

static void concurrent_requests_see_a_transient_failure_once(void **state)
{
    struct site *probe = make(17, 2, 500, 0);
    struct site *s = make(17, 2, 500, 0);
    struct hammer hm[8];
    pthread_t th[8];
    char url[256];
    const char *target = NULL;
    int h = -1;
    int failures = 0;

    (void)state;
    for (long k = 0; k < 500 && h < 0; k++) {
        assert_int_equal(site_page_url(probe, k, url, sizeof url), 0);
        int g = split(2, url, &target);
        if (schedule_of(probe, g, target) == S503)
            h = g;
    }
    assert_true(h >= 0);
    for (int i = 0; i < 8; i++) {
        hm[i] = (struct hammer){s, h, target, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &hm[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        failures += hm[i].failures;
    }
    assert_int_equal(failures, 1);
    site_free(probe);
    site_free(s);
}

/* ---- redirects ----------------------------------------------------------- */

static void go_redirects_carry_the_canonical_location(void **state)
{
    struct site *s = make(10, 4, 400, 0);
    char url[256];

    (void)state;
    for (long k = 0; k < 400; k += 7) {
        struct site_response r;
        char target[32];
        fmt(target, sizeof target, "/go/%ld", k);
        assert_int_equal(site_respond(s, (int)(k % 3), target, &r), 0);
        assert_int_equal(r.status, 301);
        assert_int_equal(site_page_url(s, k, url, sizeof url), 0);
        assert_string_equal(r.location, url);
        site_response_free(&r);
    }
    struct site_response r;
    assert_int_equal(site_respond(s, 0, "/go/400", &r), 0);
    assert_int_equal(r.status, 404);
    site_response_free(&r);
    assert_int_equal(site_respond(s, 0, "/go/07", &r), 0);
    assert_int_equal(r.status, 404);
    site_response_free(&r);
    site_free(s);
}

static void redirect_chain_has_three_hops_and_the_loop_loops(void **state)
{
    struct site *s = make(11, 4, 400, 0);
    struct strs list = {0};
    static const int codes[] = {301, 302, 307};
    char url[512];
    const char *target = "/chain/1";
    int h = 2;

    (void)state;
    list_lines(s, 0, &list);
    for (int i = 0; i < 3; i++) {
        struct site_response r;
        assert_int_equal(site_respond(s, h, target, &r), 0);
        assert_int_equal(r.status, codes[i]);
        fmt(url, sizeof url, "%s", r.location);
        h = split(4, url, &target);
        assert_true(h >= 0);
        site_response_free(&r);
    }
    struct site_response r;
    assert_int_equal(site_respond(s, h, target, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(strs_has_sorted(&list, url)); /* the target is listed */
    site_response_free(&r);

    target = "/loop/a";
    for (int i = 0; i < 6; i++) {
        assert_int_equal(site_respond(s, 1, target, &r), 0);
        assert_true(r.status == 301 || r.status == 302);
        fmt(url, sizeof url, "%s%s", origins[1], i % 2 ? "/loop/a" : "/loop/b");
        assert_string_equal(r.location, url);
        target = i % 2 ? "/loop/a" : "/loop/b";
        site_response_free(&r);
    }
    strs_free(&list);
    site_free(s);
}

/* ---- resources and odds and ends ----------------------------------------- */

static void resources_have_their_content_types(void **state)
{
    struct site *s = make(12, 2, 50, 0);
    struct site_response r;
    static const char *const missing[] = {
        "/missing/3.html", "/nothing",           "/articles/x.html",
        "/static/100.png", "/data/01.json",      "/?q=1",
        "/robots.txt?x",   "/articles/1.html?x", "",
        "/loop/c"};

    (void)state;
    assert_int_equal(site_respond(s, 1, "/static/3.png", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "image/png");
    assert_memory_equal(r.body, "\x89PNG\r\n\x1a\n", 8);
    assert_non_null(memchr(r.body, 0, r.body_len));
    assert_true(r.body_len > 64);
    site_response_free(&r);

    assert_int_equal(site_respond(s, 0, "/data/99.json", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.body[0], '{');
    assert_int_equal(r.body[r.body_len - 2], '}');
    assert_int_equal(strlen(r.body), r.body_len);
    site_response_free(&r);

    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        assert_int_equal(site_respond(s, 0, missing[i], &r), 0);
        assert_int_equal(r.status, 404);
        assert_true(is_html(&r));
        site_response_free(&r);
    }
    /* A page answers on its own host only. */
    char url[256];
    const char *target;
    assert_int_equal(site_page_url(s, 1, url, sizeof url), 0);
    assert_int_equal(split(2, url, &target), 1);
    assert_int_equal(site_respond(s, 0, target, &r), 0);
    assert_int_equal(r.status, 404);
    site_response_free(&r);

    assert_int_equal(site_respond(s, 2, "/", &r), -EINVAL);
    assert_int_equal(site_respond(s, -1, "/", &r), -EINVAL);
    assert_int_equal(site_respond(s, 0, NULL, &r), -EINVAL);
    assert_null(r.body);
    site_response_free(&r);
    site_free(s);
}

static void robots_txt_groups_and_rules_are_as_documented(void **state)
{
    struct site *s = make(13, 4, 400, 0);
    struct robots rb[4];

    (void)state;
    load_robots(s, 4, rb);
    for (int h = 0; h < 4; h++) {
        assert_false(rb[h].delay);
        assert_false(robots_allowed(&rb[h], "/private/3.html"));
        assert_true(robots_allowed(&rb[h], "/blog/2015/3.html"));
        assert_false(robots_allowed(&rb[h], "/archive/3.html"));
        assert_true(robots_allowed(&rb[h], "/archive/public/3.html"));
        assert_false(robots_allowed(&rb[h], "/docs/3/draft.html"));
        assert_true(robots_allowed(&rb[h], "/docs/3/index.html"));
        assert_int_equal(robots_allowed(&rb[h], "/data/3.json"), h % 2 == 0);
        assert_true(robots_allowed(&rb[h], "/go/3"));
    }
    site_free(s);
}

static void pages_are_slow_chunked_or_titled_as_documented(void **state)
{
    struct site *s = make(14, 4, 2000, 250);
    struct site *fast = make(14, 4, 2000, 0);
    int slow = 0;
    int chunked = 0;
    int amp = 0;
    char url[256];

    (void)state;
    for (long k = 0; k < 2000; k++) {
        struct site_response r;
        struct site_response rf;
        const char *target;
        assert_int_equal(site_page_url(s, k, url, sizeof url), 0);
        int h = split(4, url, &target);
        fetch(s, h, target, 5, &r);
        fetch(fast, h, target, 5, &rf);
        assert_true(r.delay_ms == 0 || r.delay_ms == 250);
        assert_int_equal(rf.delay_ms, 0);
        slow += r.delay_ms == 250;
        chunked += r.chunked;
        if (r.status == 200) {
            char title[80];
            fmt(title, sizeof title, "<title>Page %ld on host %d", k, h);
            assert_non_null(strstr(r.body, title));
            amp += strstr(r.body, "&amp;") != NULL;
        }
        site_response_free(&r);
        site_response_free(&rf);
    }
    assert_in_range(slow, 50, 150);     /* 5% */
    assert_in_range(chunked, 100, 300); /* 10% */
    assert_int_equal(amp, 1);
    site_free(s);
    site_free(fast);
}

static void million_pages_are_generated_on_demand(void **state)
{
    struct site *s = make(15, 64, SITE_MAX_PAGES, 0);
    struct site_response r;
    char url[256];
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *target;

    (void)state;
    assert_int_equal(site_page_url(s, SITE_MAX_PAGES - 1, url, sizeof url), 0);
    int h = split(64, url, &target);
    assert_int_equal(h, (SITE_MAX_PAGES - 1) % 64);
    fetch(s, h, target, 5, &r);
    assert_true(r.status == 200 || r.status == 500);
    site_response_free(&r);
    assert_non_null(f);
    site_describe(s, f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "1000000 pages"));
    assert_non_null(strstr(text, "host 63 http://127.0.0.1:9063: 15625"));
    free(text);
    site_free(s);
}

static void site_list_rejects_bad_arguments(void **state)
{
    struct site *s = make(16, 1, 1, 0);

    (void)state;
    assert_int_equal(site_list(s, -1, stdout), -EINVAL);
    assert_int_equal(site_list(NULL, 0, stdout), -EINVAL);
    assert_int_equal(site_list(s, 0, NULL), -EINVAL);
    site_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_resolves_dots_case_and_fragments),
        cmocka_unit_test(robots_matcher_follows_rfc_9309),
        cmocka_unit_test(site_new_rejects_bad_configs_with_einval),
        cmocka_unit_test(origins_are_canonicalised),
        cmocka_unit_test(same_seed_gives_byte_identical_responses_and_list),
        cmocka_unit_test(different_seed_gives_a_different_site),
        cmocka_unit_test(list_is_sorted_canonical_and_without_duplicates),
        cmocka_unit_test(every_listed_url_answers_200_html_within_the_retries),
        cmocka_unit_test(transient_failures_fail_as_documented_then_succeed),
        cmocka_unit_test(
            disallowed_and_permanently_failing_pages_are_not_listed),
        cmocka_unit_test(concurrent_requests_see_a_transient_failure_once),
        cmocka_unit_test(go_redirects_carry_the_canonical_location),
        cmocka_unit_test(redirect_chain_has_three_hops_and_the_loop_loops),
        cmocka_unit_test(resources_have_their_content_types),
        cmocka_unit_test(robots_txt_groups_and_rules_are_as_documented),
        cmocka_unit_test(pages_are_slow_chunked_or_titled_as_documented),
        cmocka_unit_test(crawl_finds_the_list_on_tiny_sites),
        cmocka_unit_test(crawl_finds_the_list_on_the_default_site),
        cmocka_unit_test(crawl_finds_the_list_on_5000_pages_over_8_hosts),
        cmocka_unit_test(crawl_finds_the_list_on_5000_pages_on_1_host),
        cmocka_unit_test(million_pages_are_generated_on_demand),
        cmocka_unit_test(site_list_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
