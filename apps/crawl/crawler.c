// SPDX-License-Identifier: MIT
/*
 * The crawl engine (crawler.h). Everything here runs on one knit worker,
 * so the shared state (queues, seen-set, counters) needs no locks: tasks
 * only switch at knit calls.
 *
 * Accounting invariant: c->queued counts URLs sitting in host queues,
 * c->running counts fetch tasks alive; the crawl is complete when both are
 * 0 (or nothing more may start: max pages reached, intake stopped).
 */
#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <knit.h>
#include <knit/http.h>
#include <knit/patterns.h>

#include "crawler.h"
#include "dist.h"
#include "html.h"
#include "progress.h"
#include "robots.h"
#include "store.h"
#include "strmap.h"
#include "url.h"

enum {
    FETCH_STACK = 256 * 1024, /* libcurl, libxml2 and TLS run on it */
    MAX_HOPS = 10,            /* redirects followed from one link */
    MAX_BODY = 8 << 20,
    STORE_BACKLOG = 256,      /* results waiting for the writer */
};

struct item {
    struct item *next;
    int depth, hops;
    char id[48]; /* distributed: the frontier entry's id; else "" */
    char url[];  /* normalised */
};

struct host {
    struct crawler *c;
    char key[264];       /* "host:port" */
    char origin[300];    /* "scheme://host:port" */
    struct item *head, *tail;
    knit_notify work;    /* an item was queued, or intake stopped */
    knit_sem slots;      /* --per-host */
    struct crawl_robots *robots;
    knit_task *actor;
    bool throttled;      /* waiting for the rate limiter now */
    double rate;         /* distributed: requests per second, 0 = any */
};

struct crawler {
    struct crawl_opts o;
    struct store *store;
    knit_http_client *http;
    knit_keyed_ratelimit *rate;
    struct strmap seen;  /* every URL queued, ever; distributed: value
                            (void *)1 once its page is stored here */
    struct strmap hosts; /* key -> struct host * */
    struct strmap seed_hosts; /* host names of the seeds (--same-host) */
    regex_t include, exclude;
    knit_sem slots;      /* --concurrency */
    knit_token stop;     /* cancels every actor and fetch */
    knit_notify changed; /* wakes crawl_run: progress or stop */
    /* Distributed mode (o.dist): the feeder task takes entries from Redis
     * while fewer than feed_max URLs are queued or running here. */
    knit_notify room;    /* a URL queued here left (wakes the feeder) */
    knit_waitgroup fetches;
    long started;        /* fetches started (max pages) */
    long queued, running;
    long feed_max;       /* distributed: see room */
    struct crawl_summary sum;
    struct progress *progress;
    int store_err;
    int dist_err;        /* distributed: why the feeder gave up, or 0 */
    bool has_include, has_exclude;
    bool stopping;       /* intake stopped (a signal) */
    bool dist_done;      /* distributed: the whole crawl is finished */
};

/* ---- options ------------------------------------------------------------- */

void crawl_opts_default(struct crawl_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->db_path = "crawl.db";
    o->concurrency = 16;
    o->per_host = 4;
    o->rate = 10;
    o->max_depth = -1;
    o->timeout_ms = 10000;
    o->retries = 3;
    o->backoff_ms = 250;
    o->same_host = true;
    o->user_agent = "knit-crawl/" KNIT_VERSION_STRING;
    o->grace_ms = 5000;
    o->progress = 1;
    o->log = stderr;
}

/* The options a resume must reuse, kept in the database's meta table. */
static int save_scope(struct crawler *c)
{
    char buf[64];
    int err = 0;
    snprintf(buf, sizeof(buf), "%d", c->o.max_depth);
    err = err ? err : store_meta_set(c->store, "max_depth", buf);
    snprintf(buf, sizeof(buf), "%ld", c->o.max_pages);
    err = err ? err : store_meta_set(c->store, "max_pages", buf);
    err = err ? err
              : store_meta_set(c->store, "same_host",
                               c->o.same_host ? "1" : "0");
    err = err ? err
              : store_meta_set(c->store, "ignore_robots",
                               c->o.ignore_robots ? "1" : "0");
    if (c->o.include_re)
        err = err ? err : store_meta_set(c->store, "include", c->o.include_re);
    if (c->o.exclude_re)
        err = err ? err : store_meta_set(c->store, "exclude", c->o.exclude_re);
    for (int i = 0; i < c->o.nseeds && !err; i++) {
        snprintf(buf, sizeof(buf), "seed.%d", i);
        err = store_meta_set(c->store, buf, c->o.seeds[i]);
    }
    return err;
}

/* Strings read back by load_scope live as long as the crawl. */
struct owned {
    char *v[72];
    int n;
};

static char *meta(struct crawler *c, struct owned *keep, const char *key)
{
    char *v = store_meta_get(c->store, key);
    if (v && keep->n < (int)(sizeof(keep->v) / sizeof(keep->v[0])))
        keep->v[keep->n++] = v;
    else if (v) {
        free(v);
        v = NULL;
    }
    return v;
}

static void load_scope(struct crawler *c, struct owned *keep,
                       char **seeds, int max_seeds)
{
    char *v;
    if ((v = meta(c, keep, "max_depth")))
        c->o.max_depth = atoi(v);
    if ((v = meta(c, keep, "max_pages")))
        c->o.max_pages = atol(v);
    if ((v = meta(c, keep, "same_host")))
        c->o.same_host = v[0] == '1';
    if ((v = meta(c, keep, "ignore_robots")))
        c->o.ignore_robots = v[0] == '1';
    c->o.include_re = meta(c, keep, "include");
    c->o.exclude_re = meta(c, keep, "exclude");
    c->o.nseeds = 0;
    for (int i = 0; i < max_seeds; i++) {
        char key[32];
        snprintf(key, sizeof(key), "seed.%d", i);
        if (!(v = meta(c, keep, key)))
            break;
        seeds[c->o.nseeds++] = v;
    }
    c->o.seeds = seeds;
}

/* ---- scope rules --------------------------------------------------------- */

static bool in_scope(struct crawler *c, const char *url, int depth)
{
    if (c->o.max_depth >= 0 && depth > c->o.max_depth)
        return false;
    if (c->has_include && regexec(&c->include, url, 0, NULL, 0) != 0)
        return false;
    if (c->has_exclude && regexec(&c->exclude, url, 0, NULL, 0) == 0)
        return false;
    if (c->o.same_host && !c->has_include) {
        struct crawl_url u;
        if (crawl_url_parse(url, &u) < 0 || !strmap_has(&c->seed_hosts, u.host))
            return false;
    }
    return true;
}

/* ---- hosts and queues ---------------------------------------------------- */

static int host_actor(void *arg);

static struct host *host_of(struct crawler *c, const char *url)
{
    char key[264];
    if (crawl_url_host_key(url, key, sizeof(key)) < 0)
        return NULL;
    struct host *h = strmap_get(&c->hosts, key);
    if (h)
        return h;
    if (!(h = calloc(1, sizeof(*h))))
        return NULL;
    h->c = c;
    snprintf(h->key, sizeof(h->key), "%s", key);
    struct crawl_url u;
    crawl_url_parse(url, &u);
    u.path[0] = '/';
    u.path[1] = '\0';
    u.has_query = false;
    u.query[0] = '\0';
    crawl_url_format(&u, h->origin, sizeof(h->origin));
    h->origin[strlen(h->origin) - 1] = '\0'; /* drop the path's '/' */
    knit_notify_init(&h->work);
    knit_sem_init(&h->slots, (unsigned)c->o.per_host);
    h->rate = c->o.rate;
    knit_task_opts o = {.name = "host actor", .stack_size = FETCH_STACK};
    if (strmap_put(&c->hosts, key, h) < 0 ||
        !(h->actor = knit_spawn_with(&o, host_actor, h))) {
        free(h);
        return NULL;
    }
    return h;
}

/* Queue @url (already in the seen-set) on its host; @id: its frontier
 * entry in distributed mode, else NULL. */
static int enqueue_id(struct crawler *c, const char *url, int depth, int hops,
                      const char *id)
{
    struct host *h = host_of(c, url);
    size_t len = strlen(url) + 1;
    struct item *it = h ? malloc(sizeof(*it) + len) : NULL;
    if (!it)
        return -ENOMEM;
    it->next = NULL;
    it->depth = depth;
    it->hops = hops;
    snprintf(it->id, sizeof(it->id), "%s", id ? id : "");
    memcpy(it->url, url, len);
    if (h->tail)
        h->tail->next = it;
    else
        h->head = it;
    h->tail = it;
    c->queued++;
    knit_notify_one(&h->work);
    return 0;
}

static int enqueue(struct crawler *c, const char *url, int depth, int hops)
{
    return enqueue_id(c, url, depth, hops, NULL);
}

/* ---- slots: host, rate, global ------------------------------------------- */

/* Distributed: Redis failed for good (dist.c retried for a minute, or
 * refused): stop as after Ctrl-C, and fail. */
static void dist_failed(struct crawler *c, int err)
{
    if (!c->dist_err)
        fprintf(c->o.log, "knit-crawl: redis: %s; stopping\n",
                strerror(-err));
    c->dist_err = c->dist_err ? c->dist_err : err;
    c->stopping = true;
    knit_notify_one(&c->changed);
}

static int acquire_slot(struct host *h)
{
    struct crawler *c = h->c;
    int err = knit_sem_acquire(&h->slots, 1);
    if (err)
        return err;
    if (c->rate || (c->o.dist && h->rate > 0)) {
        h->throttled = true;
        err = c->rate ? knit_keyed_ratelimit_acquire(c->rate, h->key, 1)
                      : dist_rate_acquire(c->o.dist, h->key, h->rate);
        h->throttled = false;
        if (err < 0 && !c->rate && !knit_token_is_cancelled(&c->stop))
            dist_failed(c, err);
    }
    if (!err)
        err = knit_sem_acquire(&c->slots, 1);
    if (err)
        knit_sem_release(&h->slots, 1);
    return err;
}

static void release_slot(struct host *h)
{
    knit_sem_release(&h->c->slots, 1);
    knit_sem_release(&h->slots, 1);
}

/* ---- one fetch ----------------------------------------------------------- */

struct fetch {
    struct host *h;
    struct item *it;
    struct store_page page;
    char **links; /* first seen on this page */
    int nlinks, caplinks;
    bool links_failed;
};

static bool retryable_status(int status)
{
    return status == 429 || status == 500 || status == 502 ||
           status == 503 || status == 504;
}

static bool retryable_error(int err)
{
    return err == -ETIMEDOUT || err == -ECONNREFUSED || err == -ECONNRESET ||
           err == -EHOSTUNREACH || err == -ENETUNREACH || err == -EPROTO ||
           err == -EIO;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Called by the HTML parser for each link of the page. */
static void on_link(void *ctx, const char *url)
{
    struct fetch *f = ctx;
    struct crawler *c = f->h->c;
    f->page.links_out++;
    if (strmap_has(&c->seen, url) || !in_scope(c, url, f->it->depth + 1))
        return;
    if (f->nlinks == f->caplinks) {
        int cap = f->caplinks ? f->caplinks * 2 : 16;
        char **v = realloc(f->links, (size_t)cap * sizeof(*v));
        if (!v) {
            f->links_failed = true;
            return;
        }
        f->links = v;
        f->caplinks = cap;
    }
    char *dup = strdup(url);
    if (!dup || strmap_put(&c->seen, url, NULL) < 0) {
        free(dup);
        f->links_failed = true;
        return;
    }
    f->links[f->nlinks++] = dup;
}

/* A redirect: its target is queued like a link, at the same depth. */
static void on_redirect(struct fetch *f, const char *location)
{
    struct crawler *c = f->h->c;
    char url[CRAWL_URL_MAX];
    c->sum.redirects++;
    if (crawl_url_resolve(f->it->url, location, url, sizeof(url)) < 0) {
        f->page.error = strdup("redirect to an unusable URL");
        return;
    }
    f->page.redirect_to = strdup(url);
    if (f->it->hops + 1 > MAX_HOPS) {
        f->page.error = strdup("too many redirects");
        return;
    }
    if (strmap_has(&c->seen, url) || !in_scope(c, url, f->it->depth))
        return;
    f->page.links_out = 1;
    on_link(f, url);
    f->page.links_out = 1;
}

/* Parsing a page: the links, collected first so that a large page can be
 * parsed on the blocking pool (libxml2 takes milliseconds per megabyte,
 * and the worker must not stall); small pages parse in place. */
enum { PARSE_OFFLOAD = 256 * 1024 };

struct parse {
    const char *body, *url;
    size_t len;
    char **links;
    int n, cap;
    bool failed;
    struct crawl_page_info info;
    int err;
};

static void collect(void *ctx, const char *url)
{
    struct parse *ps = ctx;
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 32;
        char **v = realloc(ps->links, (size_t)cap * sizeof(*v));
        if (!v) {
            ps->failed = true;
            return;
        }
        ps->links = v;
        ps->cap = cap;
    }
    if (!(ps->links[ps->n] = strdup(url)))
        ps->failed = true;
    else
        ps->n++;
}

static int parse_job(void *arg)
{
    struct parse *ps = arg;
    ps->err = crawl_html_links(ps->body, ps->len, ps->url, collect, ps,
                               &ps->info);
    return 0;
}

/* Parse @ps, off the worker when it is large; waits either way (the job
 * uses @ps, so the wait is shielded). */
static void parse_page(struct parse *ps)
{
    knit_task *t = ps->len > PARSE_OFFLOAD ? knit_spawn_blocking(parse_job, ps)
                                           : NULL;
    if (!t) {
        parse_job(ps);
        return;
    }
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    knit_join(t);
    knit_scope_exit(&shield);
}

static bool is_html(const char *ct)
{
    return ct && (strncasecmp(ct, "text/html", 9) == 0 ||
                  strncasecmp(ct, "application/xhtml+xml", 21) == 0);
}

/* Fill f->page from a response. */
static void take_response(struct fetch *f, knit_http_response *r)
{
    struct store_page *p = &f->page;
    p->status = r->status;
    p->final_url = r->final_url ? strdup(r->final_url) : NULL;
    p->content_type = r->content_type ? strdup(r->content_type) : NULL;
    p->bytes = (int64_t)r->body_len;
    if (r->status >= 300 && r->status < 400 && r->location) {
        on_redirect(f, r->location);
    } else if (r->status >= 200 && r->status < 300 &&
               is_html(r->content_type)) {
        struct parse ps = {.body = r->body ? r->body : "",
                           .len = r->body_len,
                           .url = r->final_url ? r->final_url : f->it->url};
        parse_page(&ps);
        for (int i = 0; i < ps.n; i++) {
            on_link(f, ps.links[i]);
            free(ps.links[i]);
        }
        free(ps.links);
        if (ps.err == 0 && ps.info.title[0])
            p->title = strdup(ps.info.title);
        f->h->c->sum.html++;
    } else if (r->status >= 400) {
        f->h->c->sum.http_errors++;
    }
}

/*
 * Fetch f->it with retries. Returns 0 when the outcome (success or a
 * permanent failure) is in f->page, or -ECANCELED when the crawl was
 * cancelled (nothing is stored: the URL stays queued).
 */
static int fetch_with_retries(struct fetch *f, bool have_slot)
{
    struct host *h = f->h;
    struct crawler *c = h->c;
    knit_backoff b;
    knit_backoff_policy pol = {.initial_ms = c->o.backoff_ms,
                               .max_ms = 30000,
                               .max_attempts = c->o.retries + 1,
                               .jitter = KNIT_JITTER_FULL};
    knit_backoff_init(&b, &pol);
    for (;;) {
        int err = have_slot ? 0 : acquire_slot(h);
        have_slot = false;
        if (err)
            return -ECANCELED;
        f->page.attempts++;
        knit_http_response r;
        knit_scope sc;
        knit_scope_enter(&sc, knit_now() + c->o.timeout_ms);
        err = knit_http_get(c->http, f->it->url, &r);
        int fired = knit_scope_exit(&sc);
        release_slot(h);
        if (knit_token_is_cancelled(&c->stop)) {
            knit_http_response_destroy(&r);
            return -ECANCELED;
        }
        if (fired == -ETIMEDOUT)
            err = -ETIMEDOUT;
        bool again = err ? retryable_error(err) : retryable_status(r.status);
        int64_t delay = again ? knit_backoff_next(&b, r.retry_after_ms) : -1;
        if (delay >= 0) {
            c->sum.retries++;
            knit_http_response_destroy(&r);
            if (knit_sleep(delay) < 0)
                return -ECANCELED;
            continue;
        }
        char why[300];
        if (err) {
            snprintf(why, sizeof(why), "%s%s%s", r.error[0] ? r.error
                                                          : strerror(-err),
                     again ? "; gave up after " : "",
                     again ? "all attempts" : "");
            f->page.error = strdup(why);
            f->page.status = r.status;
            c->sum.failed++;
        } else {
            take_response(f, &r);
            if (again) {
                snprintf(why, sizeof(why), "HTTP %d; gave up after %d attempts",
                         r.status, f->page.attempts);
                f->page.error = strdup(why);
                c->sum.failed++;
            }
        }
        knit_http_response_destroy(&r);
        return 0;
    }
}

/* A fetch waiting for its page's commit (distributed mode). */
struct commit_wait {
    knit_notify n;
    bool done;
    int err;
};

/* store_page.committed: runs in the writer task. */
static void on_committed(void *ctx, int err)
{
    struct commit_wait *w = ctx;
    w->err = err;
    w->done = true;
    knit_notify_one(&w->n);
}

/*
 * Distributed mode: store @p here, add @links to the shared frontier, and
 * once the page is committed, ack its entry (the order dist.h relies on).
 * Whatever fails leaves the entry unacked, so it is fetched again by this
 * or another process: at least once, never lost.
 */
static void finish_dist(struct crawler *c, const struct item *it,
                        struct store_page *p, char **links, int nlinks,
                        int depth, int hops)
{
    struct commit_wait w = {0};
    knit_notify_init(&w.n);
    p->committed = on_committed;
    p->committed_ctx = &w;
    int status = p->status;
    int64_t bytes = p->bytes;
    int err = store_submit(c->store, p);
    if (err) {
        c->store_err = c->store_err ? c->store_err : err;
        store_page_clear(p);
        return;
    }
    c->sum.fetched++;
    knit_scope sc;
    knit_scope_enter(&sc, KNIT_FOREVER);
    knit_scope_link_token(&sc, &c->stop);
    int added = dist_add(c->o.dist, links, nlinks, depth, hops);
    {
        knit_scope shield; /* the writer calls back into @w */
        knit_scope_enter_shielded(&shield, KNIT_FOREVER);
        while (!w.done)
            knit_notify_wait(&w.n);
        knit_scope_exit(&shield);
    }
    if (w.err == 0) /* seen-set value 1: stored here (see on_entry) */
        strmap_put(&c->seen, it->url, (void *)1);
    if (added >= 0 && w.err == 0 &&
        dist_ack(c->o.dist, it->id, it->url, status, bytes) < 0)
        added = -EIO;
    /* Acked or not, this process stops keeping it: unacked, it is
     * reclaimed after the reclaim time. */
    dist_release(c->o.dist, it->id);
    knit_scope_exit(&sc);
    if (added < 0 && !knit_token_is_cancelled(&c->stop))
        fprintf(c->o.log, "knit-crawl: %s: not acked (%s); another crawler "
                          "will fetch it again\n",
                it->url, strerror(-added));
}

/* Hand the outcome to the writer, then queue the links it found. */
static void finish(struct fetch *f)
{
    struct crawler *c = f->h->c;
    struct store_page *p = &f->page;
    int hops = p->redirect_to ? f->it->hops + 1 : 0;
    int depth = p->redirect_to ? f->it->depth : f->it->depth + 1;
    p->url = strdup(f->it->url);
    p->depth = f->it->depth;
    p->fetched_at = wall_now();
    if (c->o.dist) {
        /* The page's own frontier row (state 1 once written), so that the
         * local database reads like a local crawl's: export, merge. */
        p->links = calloc(2, sizeof(char *));
        if (p->links && (p->links[0] = strdup(f->it->url)))
            p->nlinks = 1;
        p->link_depth = f->it->depth;
        finish_dist(c, f->it, p, f->links, f->nlinks, depth, hops);
        for (int i = 0; i < f->nlinks; i++)
            free(f->links[i]);
        free(f->links);
        return;
    }
    /* The writer owns copies; the originals are queued below. */
    p->links = calloc((size_t)f->nlinks + 1, sizeof(char *));
    for (int i = 0; p->links && i < f->nlinks; i++)
        p->links[p->nlinks++] = strdup(f->links[i]);
    p->link_depth = depth;
    p->link_hops = hops;
    int err = store_submit(c->store, p);
    if (err) {
        c->store_err = c->store_err ? c->store_err : err;
        store_page_clear(p);
    } else {
        c->sum.fetched++;
        for (int i = 0; i < f->nlinks; i++)
            enqueue(c, f->links[i], depth, hops);
    }
    for (int i = 0; i < f->nlinks; i++)
        free(f->links[i]);
    free(f->links);
}

/* A fetch task: owns @arg (a struct fetch) and, at start, a slot. */
static int fetch_task(void *arg)
{
    struct fetch *f = arg;
    struct crawler *c = f->h->c;
    knit_scope sc;
    knit_scope_enter(&sc, KNIT_FOREVER);
    knit_scope_link_token(&sc, &c->stop);
    int err = fetch_with_retries(f, true);
    knit_scope_exit(&sc);
    if (err == 0)
        finish(f);
    else
        store_page_clear(&f->page);
    free(f->it);
    free(f);
    c->running--;
    knit_waitgroup_done(&c->fetches);
    knit_notify_one(&c->changed);
    knit_notify_one(&c->room);
    return 0;
}

/* ---- robots.txt ---------------------------------------------------------- */

/* Fetch and parse the host's robots.txt (RFC 9309 2.3.1): 2xx parsed,
 * 4xx allow all, 5xx or unreachable (after retries) disallow all. */
static void load_robots(struct host *h)
{
    struct crawler *c = h->c;
    char url[CRAWL_URL_MAX];
    snprintf(url, sizeof(url), "%s/robots.txt", h->origin);
    knit_backoff b;
    knit_backoff_policy pol = {.initial_ms = c->o.backoff_ms,
                               .max_attempts = c->o.retries + 1,
                               .jitter = KNIT_JITTER_FULL};
    knit_backoff_init(&b, &pol);
    for (;;) {
        if (acquire_slot(h) < 0)
            return;
        knit_http_response r;
        knit_scope sc;
        knit_scope_enter(&sc, knit_now() + c->o.timeout_ms);
        int err = knit_http_get(c->http, url, &r);
        knit_scope_exit(&sc);
        release_slot(h);
        int64_t delay = -1;
        if (err == 0 && r.status >= 200 && r.status < 300) {
            h->robots = crawl_robots_parse(r.body ? r.body : "", r.body_len,
                                           "knit-crawl");
        } else if (err == 0 && r.status >= 400 && r.status < 500 &&
                   r.status != 429) {
            h->robots = crawl_robots_allow_all();
        } else if ((delay = knit_backoff_next(&b, r.retry_after_ms)) < 0) {
            h->robots = crawl_robots_disallow_all();
            fprintf(c->o.log, "knit-crawl: %s: robots.txt unreachable (%s);"
                              " not crawling this host\n",
                    h->origin, err ? r.error : "server error");
        }
        knit_http_response_destroy(&r);
        if (h->robots || knit_token_is_cancelled(&c->stop))
            break;
        c->sum.retries++;
        if (knit_sleep(delay) < 0)
            return;
    }
    int64_t delay_ms = h->robots ? crawl_robots_delay_ms(h->robots) : 0;
    if (delay_ms > 0 && c->rate)
        knit_keyed_ratelimit_set_rate(c->rate, h->key, 1000.0 / (double)delay_ms,
                                      1);
    if (delay_ms > 0 && (h->rate <= 0 || 1000.0 / (double)delay_ms < h->rate))
        h->rate = 1000.0 / (double)delay_ms;
}

/* ---- the host actor ------------------------------------------------------ */

/* The URL is forbidden by robots.txt: recorded as skipped. */
static void skip(struct host *h, struct item *it)
{
    struct crawler *c = h->c;
    struct store_page p = {.url = strdup(it->url), .skipped = true,
                           .depth = it->depth};
    c->sum.robots_skipped++;
    knit_notify_one(&c->room);
    if (c->o.dist) {
        /* Nothing to store: no frontier row here, and no page. */
        store_page_clear(&p);
        dist_ack(c->o.dist, it->id, it->url, -1, 0);
        return;
    }
    if (store_submit(c->store, &p) < 0)
        store_page_clear(&p);
}

static int host_actor(void *arg)
{
    struct host *h = arg;
    struct crawler *c = h->c;
    knit_scope sc;
    knit_scope_enter(&sc, KNIT_FOREVER);
    knit_scope_link_token(&sc, &c->stop);
    if (!c->o.ignore_robots)
        load_robots(h);
    char target[CRAWL_URL_MAX];
    for (;;) {
        while (!h->head && !c->stopping)
            if (knit_notify_wait(&h->work) < 0)
                goto out;
        if (c->stopping || (c->o.max_pages && c->started >= c->o.max_pages))
            break;
        struct item *it = h->head;
        if (h->robots && crawl_url_request_target(it->url, target,
                                                  sizeof(target)) == 0 &&
            !crawl_robots_allowed(h->robots, target)) {
            h->head = it->next;
            if (!h->head)
                h->tail = NULL;
            c->queued--;
            skip(h, it);
            free(it);
            knit_notify_one(&c->changed);
            continue;
        }
        if (acquire_slot(h) < 0)
            break;
        if (c->stopping) {
            release_slot(h);
            break;
        }
        struct fetch *f = calloc(1, sizeof(*f));
        if (!f) {
            release_slot(h);
            break;
        }
        h->head = it->next;
        if (!h->head)
            h->tail = NULL;
        c->queued--;
        f->h = h;
        f->it = it;
        knit_task_opts o = {.name = "fetch", .stack_size = FETCH_STACK};
        knit_waitgroup_add(&c->fetches, 1);
        knit_task *t = knit_spawn_with(&o, fetch_task, f);
        if (!t) {
            knit_waitgroup_done(&c->fetches);
            release_slot(h);
            free(f);
            free(it);
            break;
        }
        knit_detach(t);
        c->started++;
        c->running++;
    }
out:
    knit_scope_exit(&sc);
    knit_notify_one(&c->changed);
    return 0;
}

/* ---- the crawl ----------------------------------------------------------- */

/* Stops intake at the first signal and cancels everything at the second. */
static int signal_watch(void *arg)
{
    struct crawler *c = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (knit_signal_wait(&set) < 0)
        return 0;
    c->stopping = true;
    fprintf(c->o.log, "\nknit-crawl: stopping: no new fetches; waiting up to"
                      " %d ms for %ld in flight (again to stop at once)\n",
            c->o.grace_ms, c->running);
    knit_notify_one(&c->changed);
    if (knit_signal_wait(&set) > 0)
        knit_token_cancel(&c->stop);
    return 0;
}

static void wake_host(void *ctx, const char *key, void *val)
{
    (void)ctx;
    (void)key;
    knit_notify_one(&((struct host *)val)->work);
}

static void reap_host(void *ctx, const char *key, void *val)
{
    (void)ctx;
    (void)key;
    struct host *h = val;
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    knit_join(h->actor);
    knit_scope_exit(&shield);
    for (struct item *it = h->head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    crawl_robots_free(h->robots);
    free(h);
}

static void count_throttled(void *ctx, const char *key, void *val)
{
    (void)key;
    *(int *)ctx += ((struct host *)val)->throttled;
}

static void report(struct crawler *c, bool final)
{
    if (!c->progress)
        return;
    struct progress_sample s = {
        .done = c->sum.fetched,
        .queued = (uint64_t)c->queued,
        .in_flight = (uint64_t)c->running,
        .errors = c->sum.failed,
        .retries = c->sum.retries,
        .hosts = c->hosts.len,
    };
    int throttled = 0;
    strmap_each(&c->hosts, count_throttled, &throttled);
    s.throttled = (uint64_t)throttled;
    progress_update(c->progress, &s, final);
}

/* Resume/new: put every frontier row back where it belongs. */
static void on_row(void *ctx, const char *url, int depth, int hops, int state)
{
    struct crawler *c = ctx;
    strmap_put(&c->seen, url, NULL);
    if (state == 0)
        enqueue(c, url, depth, hops);
}

static int setup_scope(struct crawler *c, char *err, size_t errlen)
{
    if (c->o.include_re) {
        if (regcomp(&c->include, c->o.include_re, REG_EXTENDED | REG_NOSUB)) {
            snprintf(err, errlen, "bad --include regex: %s", c->o.include_re);
            return -EINVAL;
        }
        c->has_include = true;
    }
    if (c->o.exclude_re) {
        if (regcomp(&c->exclude, c->o.exclude_re, REG_EXTENDED | REG_NOSUB)) {
            snprintf(err, errlen, "bad --exclude regex: %s", c->o.exclude_re);
            return -EINVAL;
        }
        c->has_exclude = true;
    }
    for (int i = 0; i < c->o.nseeds; i++) {
        struct crawl_url u;
        if (crawl_url_parse(c->o.seeds[i], &u) < 0) {
            snprintf(err, errlen, "not an http(s) URL: %s", c->o.seeds[i]);
            return -EINVAL;
        }
        strmap_put(&c->seed_hosts, u.host, NULL);
    }
    return 0;
}

/* Normalise the seeds in place (they may be freed only by their owner:
 * the normalised copies go to the store). */
static int add_seeds(struct crawler *c, char *err, size_t errlen)
{
    char **norm = calloc((size_t)c->o.nseeds, sizeof(*norm));
    int r = norm ? 0 : -ENOMEM;
    for (int i = 0; i < c->o.nseeds && r == 0; i++) {
        char buf[CRAWL_URL_MAX];
        if (crawl_url_normalize(c->o.seeds[i], buf, sizeof(buf)) < 0) {
            snprintf(err, errlen, "not an http(s) URL: %s", c->o.seeds[i]);
            r = -EINVAL;
        } else if (!(norm[i] = strdup(buf))) {
            r = -ENOMEM;
        }
    }
    if (r == 0 && c->o.dist) {
        /* Every process adds the seeds: the first one's count, the others
         * find them seen. Before any finished test, so added > 0. */
        if ((r = dist_add(c->o.dist, norm, c->o.nseeds, 0, 0)) < 0)
            snprintf(err, errlen, "redis: adding the seeds: %s",
                     strerror(-r));
    } else if (r == 0 &&
               (r = store_add_urls(c->store, norm, c->o.nseeds, 0)) < 0) {
        snprintf(err, errlen, "%s: %s", c->o.db_path, store_error(c->store));
    }
    for (int i = 0; norm && i < c->o.nseeds; i++)
        free(norm[i]);
    free(norm);
    return r;
}

static bool complete(struct crawler *c)
{
    if (c->running > 0)
        return false;
    if (c->stopping || (c->o.max_pages && c->started >= c->o.max_pages))
        return true;
    /* Distributed: nothing here is not enough, others may add URLs. */
    return c->queued == 0 && (!c->o.dist || c->dist_done);
}

/* ---- distributed mode: the feeder ---------------------------------------- */

/* dist_take's callback: an entry for this process. */
static void on_entry(void *ctx, const char *id, const char *url, int depth,
                     int hops)
{
    struct crawler *c = ctx;
    if (strmap_get(&c->seen, url)) {
        /* Stored here already, but its ack failed (Redis went away): ack
         * it now rather than store it twice. */
        dist_ack(c->o.dist, id, url, -1, 0);
        return;
    }
    strmap_put(&c->seen, url, NULL);
    /* Without memory the entry stays unacked: reclaimed later. */
    enqueue_id(c, url, depth, hops, id);
}

/*
 * Takes entries from Redis while fewer than feed_max URLs are queued or
 * running here (the rest stay in Redis for the other processes), and
 * checks whether the whole crawl is finished whenever this process has
 * nothing to do and Redis had nothing new.
 */
static int feeder(void *arg)
{
    struct crawler *c = arg;
    while (!c->stopping && !c->dist_done) {
        long here = c->queued + c->running;
        if (here >= c->feed_max) {
            if (knit_notify_wait(&c->room) < 0)
                break;
            continue;
        }
        int n = dist_take(c->o.dist, (int)(c->feed_max - here), on_entry, c);
        if (n == -ECANCELED)
            break;
        if (n < 0) {
            dist_failed(c, n);
            break;
        }
        if (n == 0 && c->queued == 0 && c->running == 0 &&
            dist_finished(c->o.dist) == 1)
            c->dist_done = true;
        knit_notify_one(&c->changed);
    }
    knit_notify_one(&c->changed);
    return 0;
}

int crawl_run(const struct crawl_opts *o, bool resume,
              struct crawl_summary *sum, char *err, size_t errlen)
{
    struct crawler *c = calloc(1, sizeof(*c));
    struct owned keep = {0};
    char *seeds[64];
    int status = CRAWL_FAILED;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return CRAWL_FAILED;
    }
    c->o = *o;
    int64_t t0 = knit_now();
    knit_sem_init(&c->slots, (unsigned)c->o.concurrency);
    knit_token_init(&c->stop, NULL);
    knit_notify_init(&c->changed);
    knit_notify_init(&c->room);
    knit_waitgroup_init(&c->fetches);
    if (store_open(o->db_path, !resume, &c->store, err, errlen) < 0)
        goto out;
    if (resume)
        load_scope(c, &keep, seeds, 64);
    if (setup_scope(c, err, errlen) < 0)
        goto out;
    if (!resume && (save_scope(c) < 0 || add_seeds(c, err, errlen) < 0)) {
        if (!err[0])
            snprintf(err, errlen, "%s: %s", o->db_path, store_error(c->store));
        goto out;
    }
    knit_http_client_opts ho = {.user_agent = c->o.user_agent,
                                .max_redirects = -1,
                                .max_body = MAX_BODY,
                                .connect_timeout_ms = c->o.timeout_ms,
                                .max_connections = c->o.concurrency * 2};
    c->http = knit_http_client_new(&ho);
    if (c->o.rate > 0 && !c->o.dist) /* else shared, in Redis */
        c->rate = knit_keyed_ratelimit_new(c->o.rate, 1, KNIT_FOREVER);
    if (!c->http || (c->o.rate > 0 && !c->o.dist && !c->rate) ||
        store_writer_start(c->store, STORE_BACKLOG) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    c->progress = progress_new(c->o.log, c->o.progress);
    if (store_load(c->store, on_row, c) < 0) {
        snprintf(err, errlen, "%s: %s", o->db_path, store_error(c->store));
        goto out_stop;
    }
    knit_task *sig = knit_spawn(signal_watch, c);
    knit_task *feed = NULL;
    if (c->o.dist) {
        knit_task_opts fo = {.name = "redis feeder"};
        c->feed_max = c->o.concurrency * 2L;
        feed = knit_spawn_with(&fo, feeder, c);
    }
    while (!complete(c)) {
        knit_case cases[] = {
            knit_case_notify(&c->changed),
            knit_case_deadline(knit_now() + progress_interval_ms(c->progress)),
        };
        knit_select(cases, 2);
        report(c, false);
        if (c->stopping)
            strmap_each(&c->hosts, wake_host, NULL);
    }
    if (c->stopping && c->running > 0) {
        knit_scope grace;
        knit_scope_enter(&grace, knit_now() + c->o.grace_ms);
        knit_waitgroup_wait(&c->fetches);
        knit_scope_exit(&grace);
    }
    status = c->stopping ? CRAWL_INTERRUPTED : CRAWL_OK;
    if (c->dist_err) {
        snprintf(err, errlen, "redis: %s (the URLs this process held go "
                              "to the other crawlers)",
                 strerror(-c->dist_err));
        status = CRAWL_FAILED;
    }
    knit_cancel(sig);
    knit_join(sig);
    if (feed) {
        knit_cancel(feed);
        knit_join(feed);
    }
out_stop:
    knit_token_cancel(&c->stop);
    knit_waitgroup_wait(&c->fetches);
    report(c, true);
    strmap_each(&c->hosts, reap_host, NULL);
    strmap_free(&c->hosts);
    {
        int werr = store_writer_finish(c->store);
        if (werr < 0 || c->store_err < 0) {
            snprintf(err, errlen, "%s: %s", o->db_path, store_error(c->store));
            status = CRAWL_FAILED;
        }
    }
    c->sum.queued = (uint64_t)c->queued;
    c->sum.reclaimed = c->o.dist ? dist_reclaimed(c->o.dist) : 0;
    c->sum.distributed = c->o.dist != NULL;
out:
    c->sum.seconds = (double)(knit_now() - t0) / 1000.0;
    c->sum.interrupted = status == CRAWL_INTERRUPTED;
    *sum = c->sum;
    progress_free(c->progress);
    knit_http_client_free(c->http);
    knit_keyed_ratelimit_free(c->rate);
    store_close(c->store);
    strmap_free(&c->seen);
    strmap_free(&c->hosts);
    strmap_free(&c->seed_hosts);
    if (c->has_include)
        regfree(&c->include);
    if (c->has_exclude)
        regfree(&c->exclude);
    knit_token_destroy(&c->stop);
    for (int i = 0; i < keep.n; i++)
        free(keep.v[i]);
    free(c);
    return status;
}

void crawl_summary_print(FILE *f, const struct crawl_summary *s,
                         const char *db_path)
{
    fprintf(f,
            "%s: %llu pages stored (%llu HTML) in %.1f s, %.1f pages/s\n"
            "  failed %llu, HTTP 4xx %llu, retries %llu, redirects %llu,"
            " robots.txt skipped %llu\n"
            "  database: %s\n",
            s->interrupted ? "interrupted" : "done",
            (unsigned long long)s->fetched, (unsigned long long)s->html,
            s->seconds, s->seconds > 0 ? (double)s->fetched / s->seconds : 0,
            (unsigned long long)s->failed, (unsigned long long)s->http_errors,
            (unsigned long long)s->retries, (unsigned long long)s->redirects,
            (unsigned long long)s->robots_skipped, db_path);
    if (s->distributed)
        fprintf(f, "  distributed: %llu entries reclaimed from stalled "
                   "crawlers\n",
                (unsigned long long)s->reclaimed);
    if (s->interrupted && s->distributed)
        fprintf(f, "  the URLs it held go to the other crawlers (or to the "
                   "next one started)\n");
    else if (s->interrupted)
        fprintf(f, "  continue with: knit-crawl resume --db %s\n", db_path);
}
