// SPDX-License-Identifier: MIT
/*
 * site_gen.c - the demo site's model (see site.h for what it contains).
 *
 * Divisions: hashing; page attributes, paths and robots decisions; the link
 * graph of each document; site_new()/site_free(); site_list(), which walks
 * that graph as a correct crawler would; site_describe(). Serving lives in
 * site.c.
 *
 * Only the spanning structure is stored (its inverse cannot be computed on
 * demand: a page knows its parent, its parent must list it). Everything
 * else, including the 2-8 extra links, is recomputed from (seed, node).
 */
#define SITE_INTERNAL
#include "site.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Salts keep the hashes of unrelated decisions independent. */
enum {
    SALT_PAGE = 1,
    SALT_PAGE2,
    SALT_PARENT,
    SALT_RULES,
    SALT_SPECIAL,
    SALT_EXTRA = 0x100,  /* + 1 + i for extra link i */
    SALT_FORM = 0x10000, /* + i for the spelling of link i */
};

#define NO_NODE UINT32_MAX

/* ---- hashing ------------------------------------------------------------ */

/* The splitmix64 finaliser: a bijection with good avalanche. */
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t site__hash(uint64_t seed, uint64_t a, uint64_t b)
{
    return mix(mix(mix(seed) ^ a) ^ (b * 0xd6e8feb86659fd93u));
}

/* Slice @i (0..3) of @r as a percentage roll 0..99. */
static unsigned roll(uint64_t r, int i)
{
    return (unsigned)((r >> (16 * i)) & 0xffff) % 100;
}

/* ---- pages --------------------------------------------------------------- */

void site__page(const struct site *s, uint32_t k, struct site_page *p)
{
    uint64_t r = site__hash(s->cfg.seed, k, SALT_PAGE);
    uint64_t r2 = site__hash(s->cfg.seed, k, SALT_PAGE2);
    unsigned shape = roll(r, 0);
    unsigned fail = roll(r, 1);

    /* The fractions are documented in site.h; keep them in step. */
    p->shape = shape < 50   ? SHAPE_ARTICLE
               : shape < 65 ? SHAPE_DOCS
               : shape < 70 ? SHAPE_DRAFT
               : shape < 82 ? SHAPE_BLOG
               : shape < 86 ? SHAPE_PRIVATE
               : shape < 90 ? SHAPE_ARCHIVE
                            : SHAPE_PUBLIC;
    p->fail = fail < 3    ? FAIL_503
              : fail < 6  ? FAIL_500
              : fail < 8  ? FAIL_RESET
              : fail < 10 ? FAIL_429
              : fail < 12 ? FAIL_PERM
                          : FAIL_NONE;
    switch (p->fail) {
    case FAIL_NONE:
        p->fails = 0;
        break;
    case FAIL_500:
        p->fails = 1 + (int)(r2 & 1);
        break;
    case FAIL_PERM:
        p->fails = INT_MAX;
        break;
    default:
        p->fails = 1;
        break;
    }
    p->slow = roll(r, 2) < 5;
    p->chunked = roll(r, 3) < 10;
    p->base = roll(r2, 1) < 3;
}

bool site__allowed(const struct site *s, uint32_t k)
{
    struct site_page p;
    site__page(s, k, &p);
    switch (p.shape) {
    case SHAPE_DRAFT:
    case SHAPE_PRIVATE:
    case SHAPE_ARCHIVE:
        return false;
    case SHAPE_ARTICLE: {
        /* "/articles/<k>.html" starts with "/articles/<art>" exactly when
         * the decimal k starts with the decimal art; the longer Allow
         * wins over the Disallow it extends. */
        const struct site_rules *r = &s->rules[k % s->hosts];
        char num[16];
        char dis[8];
        char allow[8];
        snprintf(num, sizeof num, "%u", (unsigned)k);
        snprintf(dis, sizeof dis, "%u", r->art);
        snprintf(allow, sizeof allow, "%u%u", r->art, r->art_allow);
        return strncmp(num, dis, strlen(dis)) != 0 ||
               strncmp(num, allow, strlen(allow)) == 0;
    }
    default:
        return true;
    }
}

void site__node_path(const struct site *s, uint32_t n, char *buf, size_t len)
{
    struct site_page p;
    unsigned k = n;

    if (n >= s->pages) {
        snprintf(buf, len, "/");
        return;
    }
    site__page(s, n, &p);
    switch (p.shape) {
    case SHAPE_ARTICLE:
        snprintf(buf, len, "/articles/%u.html", k);
        break;
    case SHAPE_DOCS:
        snprintf(buf, len, "/docs/%u/index.html", k);
        break;
    case SHAPE_DRAFT:
        snprintf(buf, len, "/docs/%u/draft.html", k);
        break;
    case SHAPE_BLOG:
        snprintf(buf, len, "/blog/%u/%u.html", 2015 + k % 10, k);
        break;
    case SHAPE_PRIVATE:
        snprintf(buf, len, "/private/%u.html", k);
        break;
    case SHAPE_ARCHIVE:
        snprintf(buf, len, "/archive/%u.html", k);
        break;
    case SHAPE_PUBLIC:
        snprintf(buf, len, "/archive/public/%u.html", k);
        break;
    }
}

void site__link_path(const struct site *s, const struct site_link *l, char *buf,
                     size_t len)
{
    unsigned id = l->id;

    switch (l->kind) {
    case TGT_PAGE:
        site__node_path(s, l->id, buf, len);
        break;
    case TGT_INDEX:
        snprintf(buf, len, "/");
        break;
    case TGT_GO:
        snprintf(buf, len, "/go/%u", id);
        break;
    case TGT_CHAIN:
        snprintf(buf, len, "/chain/%u", id);
        break;
    case TGT_LOOP:
        snprintf(buf, len, "/loop/a");
        break;
    case TGT_MISSING:
        snprintf(buf, len, "/missing/%u.html", id);
        break;
    case TGT_PNG:
        snprintf(buf, len, "/static/%u.png", id);
        break;
    case TGT_JSON:
        snprintf(buf, len, "/data/%u.json", id);
        break;
    }
}

int site__ctx_host(const struct site *s, uint32_t n)
{
    struct site_page p;

    if (n >= s->pages)
        return (int)(n - s->pages);
    site__page(s, n, &p);
    return (int)((n % s->hosts + (p.base ? 1 : 0)) % s->hosts);
}

/* The host serving node @n. */
static uint32_t node_host(const struct site *s, uint32_t n)
{
    return n >= s->pages ? n - s->pages : n % s->hosts;
}

/* The node whose link makes node @n reachable in the spanning structure. */
static uint32_t parent(const struct site *s, uint32_t n)
{
    if (n >= s->pages)
        return NO_NODE;
    if (n < s->hosts)
        return s->pages + n;
    return (uint32_t)(site__hash(s->cfg.seed, n, SALT_PARENT) % n);
}

/* ---- links --------------------------------------------------------------- */

static int push(const struct site *s, uint32_t n, struct site_links *out,
                enum site_target kind, int host, uint32_t id, unsigned flags)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 32;
        struct site_link *v = realloc(out->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n] = (struct site_link){
        .kind = kind,
        .host = host,
        .id = id,
        .flags = flags,
        .form = site__hash(s->cfg.seed, n, SALT_FORM + out->n),
    };
    out->n++;
    return 0;
}

int site__links(const struct site *s, uint32_t n, struct site_links *out)
{
    uint64_t seed = s->cfg.seed;
    int ctx = site__ctx_host(s, n);
    int err = 0;
    unsigned extra = 2 + (unsigned)(site__hash(seed, n, SALT_EXTRA) % 7);

    out->n = 0;
    if (n == s->pages) /* host 0's index names every host's index */
        for (uint32_t h = 0; h < s->hosts && !err; h++)
            err = push(s, n, out, TGT_INDEX, (int)h, 0, SITE_LINK_ABSOLUTE);
    for (uint32_t i = s->child_start[n]; i < s->child_start[n + 1] && !err;
         i++) {
        uint32_t c = s->child[i];
        err = push(s, n, out, TGT_PAGE, (int)(c % s->hosts), c, 0);
    }
    for (unsigned i = 0; i < extra && !err; i++) {
        uint64_t r = site__hash(seed, n, SALT_EXTRA + 1 + i);
        unsigned cat = (unsigned)(r % 100);
        uint32_t t = (uint32_t)((r >> 8) % s->pages);
        /* Resources live on every host; 1 in 4 names a random one. */
        int on = (r >> 40) % 4 ? ctx : (int)((r >> 42) % s->hosts);

        if (cat < 60 || (cat < 70 && !site__allowed(s, t)))
            err = push(s, n, out, TGT_PAGE, (int)(t % s->hosts), t, 0);
        else if (cat < 70)
            err = push(s, n, out, TGT_GO, on, t, 0);
        else if (cat < 78)
            err = push(s, n, out, TGT_PNG, on, t % SITE_RESOURCES, 0);
        else if (cat < 86)
            err = push(s, n, out, TGT_JSON, on, t % SITE_RESOURCES, 0);
        else if (cat < 92)
            err = push(s, n, out, TGT_MISSING, on, t, 0);
        else
            err = push(s, n, out, TGT_INDEX, (int)((r >> 24) % s->hosts), 0, 0);
    }
    if (!err && n == s->chain_from)
        err = push(s, n, out, TGT_CHAIN, ctx, 1, 0);
    if (!err && n == s->loop_from)
        err = push(s, n, out, TGT_LOOP, ctx, 0, 0);
    return err;
}

/* The document a crawler ends up at by following @l; NO_NODE for none. */
static uint32_t resolve(const struct site *s, const struct site_link *l)
{
    switch (l->kind) {
    case TGT_PAGE:
    case TGT_GO:
        return l->id;
    case TGT_INDEX:
        return s->pages + (uint32_t)l->host;
    case TGT_CHAIN:
        return s->chain_to;
    default:
        return NO_NODE;
    }
}

/* ---- site_new ------------------------------------------------------------ */

void site_config_default(struct site_config *cfg)
{
    cfg->seed = 1;
    cfg->hosts = SITE_DEFAULT_HOSTS;
    cfg->pages = SITE_DEFAULT_PAGES;
    cfg->slow_ms = SITE_DEFAULT_SLOW_MS;
}

/* Writes the canonical form of origin @o to @out; false if unusable. */
static bool canon_origin(const char *o, char *out)
{
    size_t len;

    if (!o || strncasecmp(o, "http://", 7) != 0)
        return false;
    o += 7;
    len = strlen(o);
    if (len && o[len - 1] == '/')
        len--;
    if (len >= 3 && memcmp(o + len - 3, ":80", 3) == 0)
        len -= 3;
    if (len == 0 || len + 7 > SITE_MAX_ORIGIN)
        return false;
    memcpy(out, "http://", 7);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)o[i];
        if (!isalnum(c) && !strchr(".-:[]", c))
            return false;
        out[7 + i] = (char)tolower(c);
    }
    out[7 + len] = '\0';
    return true;
}

/* Whether node @n and its ancestors always answer 200 and are allowed,
 * so that it is reached for any number of retries. */
static bool clean_path(const struct site *s, uint32_t n)
{
    for (; n < s->pages; n = parent(s, n)) {
        struct site_page p;
        site__page(s, n, &p);
        if (p.fail != FAIL_NONE || !site__allowed(s, n))
            return false;
    }
    return true;
}

/* A node other than @avoid picked from the seed satisfying clean_path
 * (with @path) or clean by itself; host 0's index when there is none. */
static uint32_t pick_clean(const struct site *s, unsigned salt, bool path,
                           uint32_t avoid)
{
    uint32_t start =
        (uint32_t)(site__hash(s->cfg.seed, salt, SALT_SPECIAL) % s->pages);

    for (uint32_t i = 0; i < s->pages; i++) {
        uint32_t k = (start + i) % s->pages;
        struct site_page p;
        site__page(s, k, &p);
        if (k == avoid)
            continue;
        if (path ? clean_path(s, k)
                 : p.fail == FAIL_NONE && site__allowed(s, k))
            return k;
    }
    return s->pages;
}

struct site *site_new(const struct site_config *cfg, const char *const *origins)
{
    struct site *s;
    uint32_t nodes;

    if (!cfg || !origins || cfg->hosts < 1 || cfg->hosts > SITE_MAX_HOSTS ||
        cfg->pages < 1 || cfg->pages > SITE_MAX_PAGES || cfg->slow_ms < 0 ||
        cfg->slow_ms > SITE_MAX_SLOW_MS) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        goto out_nomem;
    s->cfg = *cfg;
    s->pages = (uint32_t)cfg->pages;
    s->hosts = (uint32_t)cfg->hosts;
    s->nodes = nodes = s->pages + s->hosts;
    for (uint32_t h = 0; h < s->hosts; h++) {
        uint64_t r = site__hash(cfg->seed, h, SALT_RULES);
        if (!canon_origin(origins[h], s->origin[h]))
            goto out_inval;
        for (uint32_t g = 0; g < h; g++)
            if (strcmp(s->origin[g], s->origin[h]) == 0)
                goto out_inval;
        s->rules[h].art = 10 + (unsigned)(r % 90);
        s->rules[h].art_allow = (unsigned)((r >> 16) % 10);
        s->rules[h].json = h % 2 == 1;
    }

    s->child_start = calloc(nodes + 1, sizeof *s->child_start);
    s->child = malloc(s->pages * sizeof *s->child);
    s->attempts = calloc(s->pages, sizeof *s->attempts);
    if (!s->child_start || !s->child || !s->attempts)
        goto out_free;
    /* Counting sort by parent: count into child_start[p + 1], take prefix
     * sums, place each child at child_start[p]++ (which leaves
     * child_start[p] = start of p + 1), then shift back by one. */
    for (uint32_t k = 0; k < s->pages; k++)
        s->child_start[parent(s, k) + 1]++;
    for (uint32_t n = 0; n < nodes; n++)
        s->child_start[n + 1] += s->child_start[n];
    for (uint32_t k = 0; k < s->pages; k++)
        s->child[s->child_start[parent(s, k)]++] = k;
    memmove(s->child_start + 1, s->child_start, nodes * sizeof *s->child_start);
    s->child_start[0] = 0;

    s->chain_from = pick_clean(s, 1, true, NO_NODE);
    s->loop_from = pick_clean(s, 2, true, NO_NODE);
    s->chain_to = pick_clean(s, 3, false, s->chain_from);
    s->amp = pick_clean(s, 4, true, NO_NODE);
    return s;

out_free:
    site_free(s);
out_nomem:
    errno = ENOMEM;
    return NULL;
out_inval:
    free(s);
    errno = EINVAL;
    return NULL;
}

void site_free(struct site *s)
{
    if (!s)
        return;
    free(s->child_start);
    free(s->child);
    free(s->attempts);
    free(s);
}

int site_page_url(const struct site *s, long k, char *buf, size_t len)
{
    char path[64];
    int n;

    if (!s || !buf || k < 0 || k >= (long)s->pages)
        return -EINVAL;
    site__node_path(s, (uint32_t)k, path, sizeof path);
    n = snprintf(buf, len, "%s%s", s->origin[k % s->hosts], path);
    return (size_t)n < len ? 0 : -ERANGE;
}

/* ---- site_list ----------------------------------------------------------- */

/* Whether a crawler making @retries retries stores node @n once there. */
static bool fetchable(const struct site *s, uint32_t n, int retries)
{
    struct site_page p;

    if (n >= s->pages)
        return true;
    site__page(s, n, &p);
    return p.fails <= retries && site__allowed(s, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes the URLs of the @n nodes at @got, sorted. */
static long write_sorted(const struct site *s, const uint32_t *got, uint32_t n,
                         FILE *out)
{
    size_t cap = (size_t)n * 48 + 64;
    size_t used = 0;
    char *arena = malloc(cap);
    size_t *off = malloc((n ? n : 1) * sizeof *off);
    char **v = malloc((n ? n : 1) * sizeof *v);
    long ret = n;

    if (!arena || !off || !v) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        char path[64];
        uint32_t host = node_host(s, got[i]);
        size_t len;
        site__node_path(s, got[i], path, sizeof path);
        len = strlen(s->origin[host]) + strlen(path) + 1;
        if (used + len > cap) {
            char *a = realloc(arena, 2 * cap + len);
            if (!a) {
                ret = -ENOMEM;
                goto out;
            }
            arena = a;
            cap = 2 * cap + len;
        }
        off[i] = used;
        used += (size_t)sprintf(arena + used, "%s%s", s->origin[host], path);
        used++;
    }
    /* Pointers only now: the arena may have moved while growing. */
    for (uint32_t i = 0; i < n; i++)
        v[i] = arena + off[i];
    qsort(v, n, sizeof *v, cmp_str);
    for (uint32_t i = 0; i < n; i++)
        if (fprintf(out, "%s\n", v[i]) < 0) {
            ret = -EIO;
            goto out;
        }
    if (fflush(out) != 0)
        ret = -EIO;
out:
    free(arena);
    free(off);
    free(v);
    return ret;
}

long site_list(const struct site *s, int retries, FILE *out)
{
    struct site_links links = {0};
    unsigned char *seen;
    uint32_t *queue;
    uint32_t head = 0;
    uint32_t tail = 0;
    uint32_t ngot = 0;
    long ret;

    if (!s || !out || retries < 0)
        return -EINVAL;
    seen = calloc(s->nodes, 1);
    queue = malloc(s->nodes * sizeof *queue);
    if (!seen || !queue) {
        ret = -ENOMEM;
        goto out;
    }
    /* Breadth-first from host 0's index. A node is queued once; when it
     * turns out fetchable it is also kept, in place at queue[ngot]: ngot
     * never passes head, so that slot has already been consumed. */
    queue[tail++] = s->pages;
    seen[s->pages] = 1;
    while (head < tail) {
        uint32_t n = queue[head++];
        if (!fetchable(s, n, retries))
            continue;
        queue[ngot++] = n;
        if (site__links(s, n, &links) < 0) {
            ret = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < links.n; i++) {
            uint32_t m = resolve(s, &links.v[i]);
            if (m != NO_NODE && !seen[m]) {
                seen[m] = 1;
                queue[tail++] = m;
            }
        }
    }
    ret = write_sorted(s, queue, ngot, out);
out:
    free(links.v);
    free(seen);
    free(queue);
    return ret;
}

/* ---- site_describe ------------------------------------------------------- */

void site_describe(const struct site *s, FILE *out)
{
    static const char *const fails[] = {
        "ok",         "503 once", "500 1-2 times",
        "reset once", "429 once", "500 always"};
    unsigned per_host[SITE_MAX_HOSTS] = {0};
    unsigned nfail[FAIL_PERM + 1] = {0};
    unsigned nshape[SHAPE_PUBLIC + 1] = {0};
    unsigned nkind[TGT_JSON + 1] = {0};
    unsigned slow = 0;
    unsigned chunked = 0;
    unsigned base = 0;
    unsigned denied = 0;
    unsigned long nlinks = 0;
    struct site_links links = {0};
    char path[64];

    for (uint32_t k = 0; k < s->pages; k++) {
        struct site_page p;
        site__page(s, k, &p);
        per_host[k % s->hosts]++;
        nfail[p.fail]++;
        nshape[p.shape]++;
        slow += p.slow;
        chunked += p.chunked;
        base += p.base;
        denied += !site__allowed(s, k);
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (site__links(s, n, &links) < 0)
            break; /* a summary without link counts is still useful */
        nlinks += links.n;
        for (size_t i = 0; i < links.n; i++)
            nkind[links.v[i].kind]++;
    }
    free(links.v);

    fprintf(out,
            "demo site: seed %llu, %u hosts, %u pages + %u indexes, "
            "slow pages %d ms\n",
            (unsigned long long)s->cfg.seed, s->hosts, s->pages, s->hosts,
            s->cfg.slow_ms);
    for (uint32_t h = 0; h < s->hosts; h++) {
        const struct site_rules *r = &s->rules[h];
        fprintf(out,
                "  host %u %s: %u pages; robots for " SITE_AGENT
                ": Disallow /articles/%u, Allow /articles/%u%u%s\n",
                h, s->origin[h], per_host[h], r->art, r->art, r->art_allow,
                r->json ? ", Disallow .json" : "");
    }
    fprintf(out, "  failing pages:");
    for (int f = FAIL_503; f <= FAIL_PERM; f++)
        fprintf(out, "%s %s: %u", f == FAIL_503 ? "" : ",", fails[f], nfail[f]);
    fprintf(out,
            "\n  disallowed for " SITE_AGENT ": %u pages (%u drafts, %u "
            "private, %u archive, %u articles); %u /blog/ pages are "
            "disallowed for * only\n",
            denied, nshape[SHAPE_DRAFT], nshape[SHAPE_PRIVATE],
            nshape[SHAPE_ARCHIVE],
            denied - nshape[SHAPE_DRAFT] - nshape[SHAPE_PRIVATE] -
                nshape[SHAPE_ARCHIVE],
            nshape[SHAPE_BLOG]);
    fprintf(out, "  %u slow, %u chunked, %u with <base href>\n", slow, chunked,
            base);
    fprintf(out,
            "  %lu links: %u /go/ redirects, %u to 404s, %u png, %u json\n",
            nlinks, nkind[TGT_GO], nkind[TGT_MISSING], nkind[TGT_PNG],
            nkind[TGT_JSON]);
    site__node_path(s, s->chain_from, path, sizeof path);
    fprintf(out, "  redirect chain /chain/1 (3 hops) linked from %s%s",
            s->origin[node_host(s, s->chain_from)], path);
    site__node_path(s, s->chain_to, path, sizeof path);
    fprintf(out, ", ends at %s%s\n", s->origin[node_host(s, s->chain_to)],
            path);
    site__node_path(s, s->loop_from, path, sizeof path);
    fprintf(out, "  redirect loop /loop/a linked from %s%s\n",
            s->origin[node_host(s, s->loop_from)], path);
}
