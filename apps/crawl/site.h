/* SPDX-License-Identifier: MIT */
/*
 * site.h - the content model of the demo web site that `knit-crawl --demo`
 * and `knit-crawl serve-demo` serve on 127.0.0.1.
 *
 * No sockets here: the server hands each request (host index, request
 * target) to site_respond() and writes back what it says. Everything is a
 * deterministic function of the seed (a private splitmix64, never rand()),
 * except the per-page attempt counters that make transient failures
 * transient. Page bodies are generated on demand from (seed, page); a site
 * stores about 9 bytes per page, so a million pages cost ~9 MB.
 *
 * Hosts. Host h (0 <= h < hosts) is the origin the server passes in, e.g.
 * "http://127.0.0.1:PORT" (virtual hosts differ by port). Each host has an
 * index "/"; host 0's index links to every host's "/" with absolute URLs
 * (some without the final '/', which a normaliser adds back).
 *
 * Pages. cfg.pages counts content pages over all hosts; the indexes come on
 * top (a site has pages + hosts HTML documents). Page k lives on host
 * k % hosts, at a path of one of these shapes (fractions of pages):
 *   50% /articles/<k>.html       15% /docs/<k>/index.html
 *    5% /docs/<k>/draft.html     12% /blog/<2015 + k % 10>/<k>.html
 *    4% /private/<k>.html         4% /archive/<k>.html
 *   10% /archive/public/<k>.html
 * Titles are "Page <k> on host <h>" (one page: "... &amp; friends"), the
 * indexes' "Index of host <h>"; bodies hold 40-600 words of filler
 * (~0.3-4 KB). A spanning structure makes every page reachable from
 * somewhere: page k < hosts is linked from host k's index, page k >= hosts
 * from a random earlier page. Every page and index also has 2-8 extra
 * links, each of which is (fractions of extra links): 60% a random page
 * (on any host), 10% "/go/<k>" (a 301 to page k), 8% "/static/<n>.png",
 * 8% "/data/<n>.json", 6% "/missing/<k>.html" (404), 8% some host's "/".
 * A /go/, resource or /missing/ link names the linking page's host, one in
 * four a random host. Non-base pages also have a fragment-only link
 * "#section-2" (the page itself).
 *
 * Link spellings. A link to another host is absolute: canonical (70%),
 * upper-case "HTTP://..." (10%), network-path "//127.0.0.1:PORT/..." (10%)
 * or with a "/./" segment (10%). A same-host link is absolute (10%),
 * upper-case absolute (5%), root-relative "/articles/12.html" (30%),
 * relative "7.html" / "../docs/3/index.html" (30%), "./"-relative (5%),
 * root-relative through "/x/../" (10%) or relative through "sub/../"
 * (10%). 15% of links carry a fragment "#section-<1..3>". 3% of pages
 * carry <base href="ORIGIN/"> or <base href="ORIGIN/index.html"> naming
 * the next host (h + 1) % hosts, and spell every link relative to that
 * base, so they resolve right only against it.
 *
 * Failures (content pages only; indexes never fail), per page:
 *    3% 503 with Retry-After: 1 on the first attempt, then 200
 *    3% 500 on the first 1 or 2 attempts (half each), then 200
 *    2% connection reset (reset=true) on the first attempt, then 200
 *    2% 429 with Retry-After: 1 on the first attempt, then 200
 *    2% 500 on every attempt
 * Attempts are counted per page on every call, GET or HEAD alike.
 * Independently, 5% of pages answer after delay_ms = cfg.slow_ms and 10%
 * of pages send their 200 with chunked = true.
 *
 * Redirects. "/go/<k>" answers 301 with Location the canonical URL of page
 * k; /go/ links only name pages robots.txt allows, so a client that
 * follows redirects without re-checking robots stays correct. One page
 * links "/chain/1": 301 -> "/chain/2", 302 -> "/chain/3", 307 -> a clean
 * page (three hops). One page links "/loop/a": 301 -> "/loop/b", 302 ->
 * "/loop/a" forever. These paths answer on every host, Location absolute.
 * The pages linking the chain and the loop, and the "&amp;" page, are
 * picked so that they are reached whatever the retries (no failure or
 * robots rule on their spanning path); on a site with none, host 0's
 * index carries the links.
 *
 * robots.txt (text/plain, no Crawl-delay) is shown below in line
 * comments, since its wildcards would end a block comment.
 */
// On host h:
//   User-agent: *            Disallow: /private/  Disallow: /blog/
//   User-agent: knit-crawl   Disallow: /private/
//                            Disallow: /articles/<P>      (P in 10..99)
//                            Allow: /articles/<P><Q>      (Q in 0..9)
//                            Disallow: /archive/
//                            Allow: /archive/public/
//                            Disallow: /*/draft.html$
//                            Disallow: /*.json$           (odd h only)
// P and Q come from the seed per host. Only the knit-crawl group applies to
// knit-crawl (RFC 9309), so /blog/ pages are crawled and listed; a crawler
// that merges the "*" group in loses them.
/*
 * Other resources: "/static/<n>.png" (image/png: a PNG signature and
 * chunk-like bytes with NULs, not a decodable image) and "/data/<n>.json"
 * (application/json) for n < 100 on every host; "/robots.txt". Anything
 * else is 404 text/html. HTML is served as "text/html; charset=utf-8".
 * Request targets are matched exactly (a query string gives 404).
 *
 * Threads: site_respond() may run on several threads at once (the attempt
 * counters are atomic); everything else only reads the site.
 */
#ifndef CRAWL_SITE_H
#define CRAWL_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SITE_DEFAULT_HOSTS 4
#define SITE_DEFAULT_PAGES 400
#define SITE_DEFAULT_SLOW_MS 1000
#define SITE_MAX_HOSTS 64
#define SITE_MAX_PAGES 1000000
#define SITE_MAX_SLOW_MS 60000
/* Longest origin accepted by site_new() (bytes, without the NUL). */
#define SITE_MAX_ORIGIN 200
/* The product token whose robots.txt group site_list() obeys. */
#define SITE_AGENT "knit-crawl"

struct site_config {
    uint64_t seed; /* everything is derived from it */
    int hosts;     /* 1..SITE_MAX_HOSTS */
    int pages;     /* content pages over all hosts, 1..SITE_MAX_PAGES */
    int slow_ms;   /* delay of the slow pages, 0..SITE_MAX_SLOW_MS; 0 = none */
};

/* A generated site. Opaque. */
struct site;

struct site_response {
    int status;               /* 200, 301, 302, 307, 404, 429, 500, 503;
                                 0 when reset */
    bool reset;               /* drop the connection without answering */
    const char *content_type; /* static string; NULL when reset */
    char *body;               /* malloc'd, NUL-terminated beyond
                                 body_len; NULL when reset */
    size_t body_len;          /* bytes at body (may hold NULs) */
    char location[512];       /* absolute URL for 3xx, "" otherwise */
    int retry_after_s;        /* > 0: send Retry-After */
    int delay_ms;             /* wait this long before answering */
    bool chunked;             /* send with Transfer-Encoding: chunked */
};

/* Sets @cfg to the defaults (seed 1, 4 hosts, 400 pages, 1000 ms). */
void site_config_default(struct site_config *cfg);

/**
 * site_new() - generate a site.
 * @cfg:     the configuration (copied).
 * @origins: cfg->hosts strings "http://HOST:PORT" (copied). Each is
 *           canonicalised: scheme and host lower-cased, a final '/' and a
 *           default ":80" dropped. Origins must be distinct.
 *
 * Takes O(pages) time (~10 ms per 100,000 pages) and ~9 bytes per page.
 * Return: the site; NULL with errno EINVAL (a field out of range, an
 * origin missing, not "http://", longer than SITE_MAX_ORIGIN or repeated)
 * or ENOMEM.
 */
struct site *site_new(const struct site_config *cfg,
                      const char *const *origins);

/* Frees @s; NULL is a no-op. */
void site_free(struct site *s);

/**
 * site_respond() - the answer to a request of @target on host @h.
 * @target: path with optional "?query", as in the request line.
 * @out:    filled in; release with site_response_free() (also on error).
 *
 * Counts one attempt when @target is a page of host @h; HEAD requests
 * count too (the body is produced anyway and the server drops it).
 * Safe from several threads at once.
 * Return: 0; -EINVAL (NULL argument, @h out of range); -ENOMEM.
 */
int site_respond(struct site *s, int h, const char *target,
                 struct site_response *out);

/* Frees the body of @r and clears it; safe on a zeroed or freed response. */
void site_response_free(struct site_response *r);

/**
 * site_list() - write the URLs a correct crawler stores as HTML pages.
 * @retries: retries the crawler makes after a failed attempt (>= 0).
 * @out:     receives the URLs, one per line, sorted by strcmp.
 *
 * These are the pages (status 200, text/html) reachable by following
 * <a href> links from origins[0] + "/", through redirects, over pages that
 * succeed within @retries retries and that the knit-crawl group of their
 * host's robots.txt allows. URLs are canonical: "ORIGIN/path". Reads the
 * generation data, not the attempt counters. Needs ~70 bytes per page;
 * 5,000 pages take ~5 ms, a million ~1.5 s.
 * Return: the number of URLs; -EINVAL (NULL argument, @retries < 0);
 * -ENOMEM; -EIO when writing fails.
 */
long site_list(const struct site *s, int retries, FILE *out);

/**
 * site_page_url() - the canonical URL of content page @k (whether or not
 * it is reachable), for tests and tools.
 * Return: 0; -EINVAL (NULL argument, @k out of range); -ERANGE when @len
 * is too small.
 */
int site_page_url(const struct site *s, long k, char *buf, size_t len);

/*
 * site_describe() - print a short summary for serve-demo: pages per host,
 * robots rules, failures by kind, slow/chunked/base pages, redirects and
 * disallowed pages. Takes O(pages) time.
 */
void site_describe(const struct site *s, FILE *out);

#ifdef SITE_INTERNAL
/*
 * Shared by site_gen.c (the model: attributes, link graph, list) and
 * site.c (serving: rendering, robots.txt text, targets). Not API.
 *
 * Nodes number the HTML documents: 0..pages-1 are content pages,
 * pages + h is the index of host h.
 */
#include <stdatomic.h>

enum site_shape {
    SHAPE_ARTICLE, /* /articles/<k>.html */
    SHAPE_DOCS,    /* /docs/<k>/index.html */
    SHAPE_DRAFT,   /* /docs/<k>/draft.html, disallowed */
    SHAPE_BLOG,    /* /blog/<year>/<k>.html, disallowed for "*" only */
    SHAPE_PRIVATE, /* /private/<k>.html, disallowed */
    SHAPE_ARCHIVE, /* /archive/<k>.html, disallowed */
    SHAPE_PUBLIC,  /* /archive/public/<k>.html, re-allowed */
};

enum site_fail {
    FAIL_NONE,
    FAIL_503,   /* 503 + Retry-After on attempt 1 */
    FAIL_500,   /* 500 on attempts 1..fails */
    FAIL_RESET, /* reset on attempt 1 */
    FAIL_429,   /* 429 + Retry-After on attempt 1 */
    FAIL_PERM,  /* 500 always */
};

/* A content page's attributes, recomputed from (seed, k) on demand. */
struct site_page {
    enum site_shape shape; /* its path */
    enum site_fail fail;   /* its failure schedule */
    int fails;    /* failing attempts before a 200; INT_MAX for FAIL_PERM */
    bool slow;    /* answers after cfg.slow_ms */
    bool chunked; /* 200 sent chunked */
    bool base;    /* carries <base href> naming host (h + 1) % hosts */
};

enum site_target {
    TGT_PAGE,    /* content page id, host = id % hosts */
    TGT_INDEX,   /* "/" of host */
    TGT_GO,      /* "/go/<id>" on host, 301 to page id */
    TGT_CHAIN,   /* "/chain/<id>" on host, id = 1..3 */
    TGT_LOOP,    /* "/loop/a" on host */
    TGT_MISSING, /* "/missing/<id>.html" on host, 404 */
    TGT_PNG,     /* "/static/<id>.png" on host */
    TGT_JSON,    /* "/data/<id>.json" on host */
};

#define SITE_LINK_ABSOLUTE 1u /* spell with the full origin */

/* One <a href> of a document: where it leads and how it is spelled. */
struct site_link {
    enum site_target kind; /* what it leads to */
    int host;              /* the host the resolved URL names */
    uint32_t id;           /* see enum site_target */
    unsigned flags;        /* SITE_LINK_* */
    uint64_t form;         /* random bits choosing the spelling */
};

/* A reusable array of links. */
struct site_links {
    struct site_link *v; /* malloc'd; the caller frees */
    size_t n;            /* links in use */
    size_t cap;          /* links allocated */
};

/* Per-host robots.txt parameters for the knit-crawl group. */
struct site_rules {
    unsigned art;       /* Disallow: /articles/<art>, 10..99 */
    unsigned art_allow; /* Allow: /articles/<art><art_allow>, 0..9 */
    bool json;          /* Disallow the .json wildcard (odd hosts) */
};

#define SITE_RESOURCES 100 /* /static/<n>.png and /data/<n>.json, n < this */

struct site {
    struct site_config cfg;                           /* as given */
    uint32_t pages;                                   /* cfg.pages */
    uint32_t hosts;                                   /* cfg.hosts */
    uint32_t nodes;                                   /* pages + hosts */
    char origin[SITE_MAX_HOSTS][SITE_MAX_ORIGIN + 1]; /* canonical */
    struct site_rules rules[SITE_MAX_HOSTS];          /* per host */
    /* The spanning structure in CSR form: the children of node n are
     * child[child_start[n] .. child_start[n + 1]), in increasing order. */
    uint32_t *child_start; /* nodes + 1 entries */
    uint32_t *child;       /* pages entries */
    /* Attempts per content page, saturating at 255. */
    atomic_uchar *attempts;
    uint32_t chain_from; /* node linking "/chain/1" */
    uint32_t chain_to;   /* node "/chain/3" redirects to */
    uint32_t loop_from;  /* node linking "/loop/a" */
    uint32_t amp;        /* page titled "... &amp; friends" (if < pages) */
};

/* A well-mixed 64-bit function of (seed, a, b). */
uint64_t site__hash(uint64_t seed, uint64_t a, uint64_t b);
/* The attributes of content page @k < pages. */
void site__page(const struct site *s, uint32_t k, struct site_page *p);
/* Whether the knit-crawl group of its host allows content page @k. */
bool site__allowed(const struct site *s, uint32_t k);
/* The path of node @n ("/" for an index); @len >= 64 suffices. */
void site__node_path(const struct site *s, uint32_t n, char *buf, size_t len);
/* The path a link leads to; @len >= 64 suffices. */
void site__link_path(const struct site *s, const struct site_link *l, char *buf,
                     size_t len);
/* The host whose origin relative links of node @n resolve against. */
int site__ctx_host(const struct site *s, uint32_t n);
/* Replaces @out's contents by the links of node @n. 0 or -ENOMEM. */
int site__links(const struct site *s, uint32_t n, struct site_links *out);
#endif /* SITE_INTERNAL */

#endif /* CRAWL_SITE_H */
