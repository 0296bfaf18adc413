// SPDX-License-Identifier: MIT
/*
 * knit-crawl: the command line. Every subcommand runs as the main task of
 * a knit runtime; see usage() for what each does and crawler.h for the
 * exit statuses.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <knit.h>

#include "crawler.h"
#include "demo_server.h"
#include "dist.h"
#include "html.h"
#include "merge.h"
#include "site.h"
#include "store.h"

static const char usage_text[] =
    "usage: knit-crawl --demo [--db FILE] [--quiet] [site options]\n"
    "       knit-crawl serve-demo [--port P] [site options] [--list]\n"
    "       knit-crawl crawl URL... [crawl options]\n"
    "       knit-crawl resume --db FILE [run options]\n"
    "       knit-crawl export --db FILE --jsonl FILE\n"
    "       knit-crawl crawl URL... --redis URL --crawl-id NAME [options]\n"
    "       knit-crawl status --redis URL --crawl-id NAME\n"
    "       knit-crawl merge --db OUT IN.db...\n"
    "       knit-crawl --help | --version\n"
    "\n"
    "--demo starts the embedded demo site on 127.0.0.1 (ephemeral ports),\n"
    "crawls it to the end, checks the stored pages against the site's list\n"
    "and prints a summary. No network needed.\n"
    "\n"
    "site options (--demo, serve-demo):\n"
    "  --hosts H         virtual hosts, one port each (4)\n"
    "  --pages N         content pages over all hosts (400)\n"
    "  --seed S          the site is a function of the seed (1)\n"
    "  --slow-ms MS      delay of the slow pages, 0 = none (1000; demo 200)\n"
    "serve-demo:\n"
    "  --port P          host h listens on P + h (8080)\n"
    "  --list            print the URLs a correct crawler must store as\n"
    "                    HTML pages, and exit\n"
    "  --retries N       the crawler's retries, for --list (3)\n"
    "crawl options:\n"
    "  --db FILE         SQLite database (crawl.db); must be new\n"
    "  --same-host       stay on the seeds' host names, any port (default)\n"
    "  --include RE      crawl only URLs matching RE (POSIX ERE); replaces\n"
    "                    --same-host\n"
    "  --exclude RE      never crawl URLs matching RE\n"
    "  --max-depth D     link hops from a seed (no limit)\n"
    "  --max-pages N     fetches to start (no limit)\n"
    "  --ignore-robots   do not fetch or obey robots.txt\n"
    "  --jsonl FILE      export the pages as JSON Lines at the end\n"
    "run options (crawl, resume):\n"
    "  --concurrency N   fetches in flight (16)\n"
    "  --per-host N      fetches in flight per host (4)\n"
    "  --rate R          requests per second per host, 0 = no limit (10)\n"
    "  --timeout MS      per attempt (10000)\n"
    "  --retries N       after the first attempt (3)\n"
    "  --user-agent S    (knit-crawl/VERSION)\n"
    "  --grace MS        after Ctrl-C, time for fetches in flight (5000)\n"
    "  --quiet           no progress output\n"
    "distributed (crawl --redis; see the README, \"Distributed mode\"):\n"
    "  --redis URL       redis://HOST[:PORT][/DB]: the frontier, seen-set\n"
    "                    and rate limits live there, shared by every\n"
    "                    process given the same --crawl-id and seeds; pages\n"
    "                    are stored in each process's own --db\n"
    "  --crawl-id NAME   the shared crawl (letters, digits, '.', '_', '-')\n"
    "  --consumer NAME   this process's name in the crawl (HOST-PID)\n"
    "  --reclaim-ms N    take over URLs a crawler held this long without a\n"
    "                    sign of life (30000)\n"
    "status: the progress of a whole distributed crawl\n"
    "merge:  the databases of a distributed crawl's processes in one new\n"
    "        database; a page stored twice is kept once\n"
    "\n"
    "Ctrl-C (or SIGTERM) stops intake, lets fetches in flight finish within\n"
    "the grace period and exits 130; a second one stops at once. Either\n"
    "way, and even after kill -9, 'knit-crawl resume --db FILE' continues.\n"
    "\n"
    "exit status: 0 crawl finished (some pages may have failed: see the\n"
    "summary), 1 could not run (database, listen, demo check failed),\n"
    "2 bad command line, 130 interrupted.\n";

enum {
    OPT_DB = 256, OPT_HOSTS, OPT_PAGES, OPT_SEED, OPT_SLOW, OPT_PORT, OPT_LIST,
    OPT_SAME_HOST, OPT_INCLUDE, OPT_EXCLUDE, OPT_MAX_DEPTH, OPT_MAX_PAGES,
    OPT_IGNORE_ROBOTS, OPT_JSONL, OPT_CONCURRENCY, OPT_PER_HOST, OPT_RATE,
    OPT_TIMEOUT, OPT_RETRIES, OPT_UA, OPT_GRACE, OPT_QUIET, OPT_DEMO,
    OPT_HELP, OPT_VERSION, OPT_REDIS, OPT_CRAWL_ID, OPT_CONSUMER,
    OPT_RECLAIM,
};

static const struct option long_opts[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"hosts", required_argument, NULL, OPT_HOSTS},
    {"pages", required_argument, NULL, OPT_PAGES},
    {"seed", required_argument, NULL, OPT_SEED},
    {"slow-ms", required_argument, NULL, OPT_SLOW},
    {"port", required_argument, NULL, OPT_PORT},
    {"list", no_argument, NULL, OPT_LIST},
    {"same-host", no_argument, NULL, OPT_SAME_HOST},
    {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
    {"max-pages", required_argument, NULL, OPT_MAX_PAGES},
    {"ignore-robots", no_argument, NULL, OPT_IGNORE_ROBOTS},
    {"jsonl", required_argument, NULL, OPT_JSONL},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"per-host", required_argument, NULL, OPT_PER_HOST},
    {"rate", required_argument, NULL, OPT_RATE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"user-agent", required_argument, NULL, OPT_UA},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"demo", no_argument, NULL, OPT_DEMO},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"crawl-id", required_argument, NULL, OPT_CRAWL_ID},
    {"consumer", required_argument, NULL, OPT_CONSUMER},
    {"reclaim-ms", required_argument, NULL, OPT_RECLAIM},
    {0},
};

/* Everything the command line says. */
struct cli {
    const char *cmd; /* "demo", "serve-demo", "crawl", "resume", "export" */
    struct crawl_opts crawl;
    struct site_config site;
    bool slow_set;
    int port;
    bool list;
    int list_retries;
    const char *jsonl;
    bool db_set;
    struct dist_opts dist; /* url NULL: a local crawl */
    bool dist_opt_set;     /* --consumer or --reclaim-ms given */
    char err[512];
};

/* Parse a number in [lo, hi] into *out, or complain. */
static bool number(const char *name, const char *s, double lo, double hi,
                   double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "knit-crawl: --%s wants a number in %g..%g, not '%s'\n",
                name, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

static int parse(struct cli *c, int argc, char **argv)
{
    double v;
    int opt;
    while ((opt = getopt_long(argc, argv, "hVq", long_opts, NULL)) != -1) {
        const char *name = opt >= OPT_DB ? long_opts[opt - OPT_DB].name : "";
        switch (opt) {
#define NUM(lo, hi)                                                            \
    if (!number(name, optarg, lo, hi, &v))                                     \
        return CRAWL_USAGE;
        case OPT_DB: c->crawl.db_path = optarg; c->db_set = true; break;
        case OPT_HOSTS: NUM(1, SITE_MAX_HOSTS) c->site.hosts = (int)v; break;
        case OPT_PAGES: NUM(1, SITE_MAX_PAGES) c->site.pages = (int)v; break;
        case OPT_SEED: NUM(0, 1e18) c->site.seed = (uint64_t)v; break;
        case OPT_SLOW:
            NUM(0, SITE_MAX_SLOW_MS) c->site.slow_ms = (int)v;
            c->slow_set = true;
            break;
        case OPT_PORT: NUM(0, 65535) c->port = (int)v; break;
        case OPT_LIST: c->list = true; break;
        case OPT_SAME_HOST: c->crawl.same_host = true; break;
        case OPT_INCLUDE: c->crawl.include_re = optarg; break;
        case OPT_EXCLUDE: c->crawl.exclude_re = optarg; break;
        case OPT_MAX_DEPTH: NUM(0, 1e6) c->crawl.max_depth = (int)v; break;
        case OPT_MAX_PAGES: NUM(1, 1e12) c->crawl.max_pages = (long)v; break;
        case OPT_IGNORE_ROBOTS: c->crawl.ignore_robots = true; break;
        case OPT_JSONL: c->jsonl = optarg; break;
        case OPT_CONCURRENCY: NUM(1, 10000) c->crawl.concurrency = (int)v; break;
        case OPT_PER_HOST: NUM(1, 1000) c->crawl.per_host = (int)v; break;
        case OPT_RATE: NUM(0, 1e6) c->crawl.rate = v; break;
        case OPT_TIMEOUT: NUM(1, 3.6e6) c->crawl.timeout_ms = (int)v; break;
        case OPT_RETRIES:
            NUM(0, 100) c->crawl.retries = (int)v;
            c->list_retries = (int)v;
            break;
        case OPT_UA: c->crawl.user_agent = optarg; break;
        case OPT_GRACE: NUM(0, 3.6e6) c->crawl.grace_ms = (int)v; break;
        case 'q':
        case OPT_QUIET: c->crawl.progress = 0; break;
        case OPT_DEMO: c->cmd = "demo"; break;
        case OPT_REDIS: c->dist.url = optarg; break;
        case OPT_CRAWL_ID: c->dist.crawl_id = optarg; break;
        case OPT_CONSUMER:
            c->dist.consumer = optarg;
            c->dist_opt_set = true;
            break;
        case OPT_RECLAIM:
            NUM(100, 8.64e7) c->dist.reclaim_ms = (int64_t)v;
            c->dist_opt_set = true;
            break;
        case 'h':
        case OPT_HELP: fputs(usage_text, stdout); exit(0);
        case 'V':
        case OPT_VERSION: printf("knit-crawl %s\n", KNIT_VERSION_STRING); exit(0);
        default: fputs(usage_text, stderr); return CRAWL_USAGE;
#undef NUM
        }
    }
    return 0;
}

/* The distributed options: together, with the commands that take them. */
static int check_dist(struct cli *c)
{
    bool status = strcmp(c->cmd, "status") == 0;
    bool crawl = strcmp(c->cmd, "crawl") == 0;
    const char *why = NULL;
    if ((c->dist.url || c->dist.crawl_id) && !crawl && !status)
        why = "--redis and --crawl-id go with 'crawl' and 'status' only";
    else if ((status || c->dist.url || c->dist.crawl_id) &&
             (!c->dist.url || !c->dist.crawl_id))
        why = "give both --redis URL and --crawl-id NAME";
    else if (c->dist_opt_set && !c->dist.url)
        why = "--consumer and --reclaim-ms need --redis";
    else if (c->dist.url && strncmp(c->dist.url, "redis://", 8) != 0)
        why = "--redis wants a redis://HOST[:PORT][/DB] URL";
    else if (c->dist.crawl_id && dist_check_id(c->dist.crawl_id) < 0)
        why = "--crawl-id wants 1 to 64 letters, digits, '.', '_' or '-'";
    else if (c->dist.consumer &&
             (!c->dist.consumer[0] || strlen(c->dist.consumer) > 100))
        why = "--consumer wants a name of 1 to 100 characters";
    if (!why)
        return 0;
    fprintf(stderr, "knit-crawl %s: %s\n", c->cmd, why);
    return CRAWL_USAGE;
}

/* ---- subcommands (each the main task of a runtime) ----------------------- */

static void remove_db(const char *path)
{
    char buf[4096];
    unlink(path);
    snprintf(buf, sizeof(buf), "%s-wal", path);
    unlink(buf);
    snprintf(buf, sizeof(buf), "%s-shm", path);
    unlink(buf);
}

/* The demo's self-check: the HTML pages stored must be the site's list. */
static int check_demo(struct cli *c, struct demo_server *d)
{
    char *want = NULL, *got = NULL;
    size_t wlen = 0, glen = 0;
    FILE *w = open_memstream(&want, &wlen), *g = open_memstream(&got, &glen);
    long n = site_list(demo_server_site(d), c->crawl.retries, w);
    fclose(w);
    struct store *s;
    int64_t m = -1;
    if (store_open(c->crawl.db_path, false, &s, c->err, sizeof(c->err)) == 0) {
        m = store_list_urls(s, "status = 200 AND content_type LIKE 'text/html%'",
                            g);
        store_close(s);
    }
    fclose(g);
    int ok = n >= 0 && m == n && strcmp(want, got) == 0;
    if (ok)
        printf("check: the %ld HTML pages stored are exactly the site's list\n",
               n);
    else
        printf("check FAILED: the site lists %ld HTML pages, the database "
               "holds %lld\n",
               n, (long long)m);
    free(want);
    free(got);
    return ok ? 0 : -1;
}

static int run_demo(void *arg)
{
    struct cli *c = arg;
    struct demo_server *d;
    if (demo_server_start(&c->site, 0, &d, c->err, sizeof(c->err)) < 0)
        return CRAWL_FAILED;
    char seed[128];
    snprintf(seed, sizeof(seed), "%s/", demo_server_origin(d, 0));
    char *seeds[] = {seed};
    c->crawl.seeds = seeds;
    c->crawl.nseeds = 1;
    remove_db(c->crawl.db_path);
    printf("knit-crawl demo: %d hosts, %d pages (seed %llu), served on "
           "%s .. port %d\n",
           c->site.hosts, c->site.pages, (unsigned long long)c->site.seed,
           demo_server_origin(d, 0),
           atoi(strrchr(demo_server_origin(d, c->site.hosts - 1), ':') + 1));
    fflush(stdout);
    struct crawl_summary sum;
    int status = crawl_run(&c->crawl, false, &sum, c->err, sizeof(c->err));
    if (status != CRAWL_FAILED) {
        crawl_summary_print(stdout, &sum, c->crawl.db_path);
        printf("  demo server answered %llu requests\n",
               (unsigned long long)demo_server_requests(d));
        if (status == CRAWL_OK && check_demo(c, d) < 0)
            status = CRAWL_FAILED;
    }
    demo_server_stop(d);
    return status;
}

static int run_serve(void *arg)
{
    struct cli *c = arg;
    struct demo_server *d;
    if (demo_server_start(&c->site, c->port, &d, c->err, sizeof(c->err)) < 0)
        return CRAWL_FAILED;
    printf("serving the demo site (seed %llu, %d pages) on:\n",
           (unsigned long long)c->site.seed, c->site.pages);
    for (int h = 0; h < c->site.hosts; h++)
        printf("  %s/\n", demo_server_origin(d, h));
    site_describe(demo_server_site(d), stdout);
    printf("Ctrl-C to stop\n");
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    knit_signal_wait(&set);
    printf("stopping after %llu requests\n",
           (unsigned long long)demo_server_requests(d));
    demo_server_stop(d);
    return 0;
}

/* serve-demo --list: the origins are a function of --port alone. */
static int print_list(struct cli *c)
{
    char bufs[SITE_MAX_HOSTS][64];
    const char *origins[SITE_MAX_HOSTS];
    if (c->port == 0 || c->port + c->site.hosts - 1 > 65535) {
        fprintf(stderr, "knit-crawl: --list needs a fixed --port (P + hosts "
                        "- 1 <= 65535)\n");
        return CRAWL_USAGE;
    }
    for (int h = 0; h < c->site.hosts; h++) {
        snprintf(bufs[h], sizeof(bufs[h]), "http://127.0.0.1:%d", c->port + h);
        origins[h] = bufs[h];
    }
    struct site *s = site_new(&c->site, origins);
    if (!s) {
        fprintf(stderr, "knit-crawl: bad site options: %s\n", strerror(errno));
        return CRAWL_USAGE;
    }
    long n = site_list(s, c->list_retries, stdout);
    site_free(s);
    return n < 0 ? CRAWL_FAILED : 0;
}

static int export(struct cli *c)
{
    struct store *s;
    if (store_open(c->crawl.db_path, false, &s, c->err, sizeof(c->err)) < 0)
        return CRAWL_FAILED;
    int n = store_export_jsonl(s, c->jsonl);
    if (n < 0)
        snprintf(c->err, sizeof(c->err), "export: %s", store_error(s));
    else if (strcmp(c->jsonl, "-") != 0)
        fprintf(stderr, "exported %d pages to %s\n", n, c->jsonl);
    store_close(s);
    return n < 0 ? CRAWL_FAILED : 0;
}

static int run_status(void *arg)
{
    struct cli *c = arg;
    return dist_status(c->dist.url, c->dist.crawl_id, stdout, c->err,
                       sizeof(c->err)) < 0
               ? CRAWL_FAILED
               : 0;
}

/* merge --db OUT IN...: the inputs are the remaining arguments. */
struct merge_args {
    struct cli *c;
    char **in;
    int n;
};

static int run_merge(void *arg)
{
    struct merge_args *m = arg;
    return crawl_merge(m->c->crawl.db_path, m->in, m->n, stderr, m->c->err,
                       sizeof(m->c->err)) < 0
               ? CRAWL_FAILED
               : 0;
}

static int run_crawl(void *arg)
{
    struct cli *c = arg;
    if (strcmp(c->cmd, "export") == 0)
        return export(c);
    struct crawl_summary sum;
    bool resume = strcmp(c->cmd, "resume") == 0;
    struct dist *d = NULL;
    if (c->dist.url) {
        if (dist_open(&c->dist, &d, c->err, sizeof(c->err)) < 0)
            return CRAWL_FAILED;
        c->crawl.dist = d;
    }
    int status = crawl_run(&c->crawl, resume, &sum, c->err, sizeof(c->err));
    dist_close(d);
    if (status == CRAWL_FAILED)
        return status;
    if (c->crawl.progress)
        crawl_summary_print(stderr, &sum, c->crawl.db_path);
    if (c->jsonl && status == CRAWL_OK) {
        int r = export(c);
        if (r)
            return r;
    }
    return status;
}

int main(int argc, char **argv)
{
    static struct cli c;
    crawl_opts_default(&c.crawl);
    site_config_default(&c.site);
    c.port = 8080;
    c.list_retries = c.crawl.retries;
    c.crawl.progress = isatty(STDERR_FILENO) ? 2 : 1;
    if (argc > 1 && argv[1][0] != '-') {
        c.cmd = argv[1];
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    c.dist.reclaim_ms = 30000;
    c.dist.log = stderr;
    int r = parse(&c, argc, argv);
    if (r)
        return r;
    if (c.cmd && (r = check_dist(&c)))
        return r;
    if (!c.cmd) {
        fputs(usage_text, stderr);
        return CRAWL_USAGE;
    }
    knit_fn fn = run_crawl;
    void *arg = &c;
    if (strcmp(c.cmd, "demo") == 0) {
        fn = run_demo;
        if (!c.db_set)
            c.crawl.db_path = "knit-crawl-demo.db";
        if (!c.slow_set)
            c.site.slow_ms = 200;
        c.crawl.rate = 50;
        c.crawl.timeout_ms = 5000;
        c.crawl.backoff_ms = 100;
    } else if (strcmp(c.cmd, "serve-demo") == 0) {
        if (c.list)
            return print_list(&c);
        fn = run_serve;
    } else if (strcmp(c.cmd, "crawl") == 0) {
        c.crawl.seeds = argv + optind;
        c.crawl.nseeds = argc - optind;
        if (c.crawl.nseeds < 1 || c.crawl.nseeds > 64) {
            fprintf(stderr, "knit-crawl crawl: give 1 to 64 start URLs\n");
            return CRAWL_USAGE;
        }
        optind = argc;
    } else if (strcmp(c.cmd, "status") == 0) {
        fn = run_status;
    } else if (strcmp(c.cmd, "merge") == 0) {
        if (!c.db_set || optind >= argc) {
            fprintf(stderr, "knit-crawl merge: give --db OUT and one or more"
                            " input databases\n");
            return CRAWL_USAGE;
        }
        static struct merge_args m;
        m = (struct merge_args){&c, argv + optind, argc - optind};
        optind = argc;
        fn = run_merge;
        arg = &m;
    } else if (strcmp(c.cmd, "resume") == 0 || strcmp(c.cmd, "export") == 0) {
        if (!c.db_set || (strcmp(c.cmd, "export") == 0 && !c.jsonl)) {
            fprintf(stderr, "knit-crawl %s: --db FILE%s is required\n", c.cmd,
                    strcmp(c.cmd, "export") == 0 ? " and --jsonl FILE" : "");
            return CRAWL_USAGE;
        }
    } else {
        fprintf(stderr, "knit-crawl: unknown command '%s'\n\n%s", c.cmd,
                usage_text);
        return CRAWL_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "knit-crawl: unexpected argument '%s'\n", argv[optind]);
        return CRAWL_USAGE;
    }
    crawl_html_init();
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.workers = 1;
    r = knit_run(&cfg, fn, arg);
    if (r == CRAWL_FAILED && c.err[0])
        fprintf(stderr, "knit-crawl: %s\n", c.err);
    return r < 0 ? CRAWL_FAILED : r;
}
