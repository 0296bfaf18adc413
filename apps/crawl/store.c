// SPDX-License-Identifier: MIT
/*
 * knit-crawl's SQLite store (see store.h). Every SQLite call runs inside a
 * job on knit's blocking pool, joined in a shielded scope: the job uses
 * memory of the calling task (statements, batches), so the caller must not
 * leave before the job ends, whatever happens to its own scope. One job
 * runs at a time per store (the writer task, or a caller before the writer
 * starts), so the connection is never used by two threads at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include <sqlite3.h>

#include "store.h"

enum { BATCH = 512 };

struct store {
    sqlite3 *db;
    sqlite3_stmt *ins_page, *ins_url, *set_state;
    knit_chan *ch; /* struct store_page * to the writer */
    knit_task *writer;
    int writer_err; /* first error the writer met */
    uint64_t committed, transactions;
    struct store_page *batch[BATCH]; /* the writer's current transaction */
    char errmsg[256];
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS frontier(url TEXT PRIMARY KEY,"
    " depth INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
    " hops INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS pages(url TEXT PRIMARY KEY, final_url TEXT,"
    " status INTEGER, depth INTEGER, content_type TEXT, bytes INTEGER,"
    " title TEXT, links_out INTEGER, fetched_at REAL, error TEXT,"
    " attempts INTEGER, redirect_to TEXT);";

/* ---- running SQLite on the blocking pool --------------------------------- */

/* Run fn(arg) on the blocking pool and wait for it, even if the caller's
 * scope fires meanwhile (fn uses the caller's memory). */
static int blocking(knit_fn fn, void *arg)
{
    knit_task *t = knit_spawn_blocking(fn, arg);
    if (!t)
        return -ENOMEM;
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    int r = knit_join(t);
    knit_scope_exit(&shield);
    return r;
}

/* Record SQLite's message for store_error and turn @rc into an errno. */
static int sql_fail(struct store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s",
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    return rc == SQLITE_NOMEM ? -ENOMEM
           : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY
           : rc == SQLITE_FULL ? -ENOSPC
                               : -EIO;
}

const char *store_error(const struct store *s)
{
    return s->errmsg;
}

void store_page_clear(struct store_page *p)
{
    free(p->url);
    free(p->final_url);
    free(p->content_type);
    free(p->title);
    free(p->error);
    free(p->redirect_to);
    for (int i = 0; i < p->nlinks; i++)
        free(p->links[i]);
    free(p->links);
    memset(p, 0, sizeof(*p));
}

/* ---- open and close ------------------------------------------------------ */

struct open_job {
    struct store *s;
    const char *path;
    bool fresh;
};

/* Rows in frontier, or -1 on error. */
static int64_t frontier_rows(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM frontier", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int open_job(void *arg)
{
    struct open_job *j = arg;
    struct store *s = j->s;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(j->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(s, rc);
    sqlite3_busy_timeout(s->db, 5000);
    rc = sqlite3_exec(s->db, schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(s, rc);
    int64_t rows = frontier_rows(s->db);
    if (j->fresh && rows > 0) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s already holds a crawl (use 'resume', or another --db)",
                 j->path);
        return -EEXIST;
    }
    if (!j->fresh && rows <= 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "%s holds no crawl to resume",
                 j->path);
        return -ENOENT;
    }
    const char *ins_page =
        "INSERT INTO pages(url, final_url, status, depth,"
        " content_type, bytes, title, links_out, fetched_at, error, attempts,"
        " redirect_to) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
    const char *ins_url = "INSERT OR IGNORE INTO frontier(url, depth, hops)"
                          " VALUES (?, ?, ?)";
    const char *set_state = "UPDATE frontier SET state = ? WHERE url = ?";
    if ((rc = sqlite3_prepare_v2(s->db, ins_page, -1, &s->ins_page, NULL)) ||
        (rc = sqlite3_prepare_v2(s->db, ins_url, -1, &s->ins_url, NULL)) ||
        (rc = sqlite3_prepare_v2(s->db, set_state, -1, &s->set_state, NULL)))
        return sql_fail(s, rc);
    return 0;
}

static int close_job(void *arg)
{
    struct store *s = arg;
    sqlite3_finalize(s->ins_page);
    sqlite3_finalize(s->ins_url);
    sqlite3_finalize(s->set_state);
    sqlite3_close(s->db);
    return 0;
}

int store_open(const char *path, bool fresh, struct store **out, char *err,
               size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    struct open_job j = {s, path, fresh};
    int r = blocking(open_job, &j);
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", path,
                 s->errmsg[0] ? s->errmsg : strerror(-r));
        blocking(close_job, s);
        free(s);
        return r;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->writer)
        store_writer_finish(s);
    blocking(close_job, s);
    free(s);
}

/* ---- meta ---------------------------------------------------------------- */

struct meta_job {
    struct store *s;
    const char *key, *value;
    char *got;
};

static int meta_set_job(void *arg)
{
    struct meta_job *j = arg;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->s->db,
                                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(j->s, rc);
    sqlite3_bind_text(st, 1, j->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->value, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(j->s, rc);
}

static int meta_get_job(void *arg)
{
    struct meta_job *j = arg;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->s->db,
                                "SELECT value FROM meta WHERE key = ?", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(j->s, rc);
    sqlite3_bind_text(st, 1, j->key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        j->got = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return 0;
}

int store_meta_set(struct store *s, const char *key, const char *value)
{
    struct meta_job j = {s, key, value, NULL};
    return blocking(meta_set_job, &j);
}

char *store_meta_get(struct store *s, const char *key)
{
    struct meta_job j = {s, key, NULL, NULL};
    blocking(meta_get_job, &j);
    return j.got;
}

/* ---- writing pages ------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Run a reset-after statement; SQLITE_DONE is success. */
static int step(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(s, rc);
}

static int queue_url(struct store *s, const char *url, int depth, int hops)
{
    sqlite3_bind_text(s->ins_url, 1, url, -1, SQLITE_STATIC);
    sqlite3_bind_int(s->ins_url, 2, depth);
    sqlite3_bind_int(s->ins_url, 3, hops);
    return step(s, s->ins_url);
}

static int write_page(struct store *s, const struct store_page *p)
{
    int err;
    for (int i = 0; i < p->nlinks; i++)
        if ((err = queue_url(s, p->links[i], p->link_depth, p->link_hops)))
            return err;
    sqlite3_bind_int(s->set_state, 1, p->skipped ? 2 : 1);
    sqlite3_bind_text(s->set_state, 2, p->url, -1, SQLITE_STATIC);
    if ((err = step(s, s->set_state)) || p->skipped)
        return err;
    sqlite3_stmt *st = s->ins_page;
    bind_text(st, 1, p->url);
    bind_text(st, 2, p->final_url);
    sqlite3_bind_int(st, 3, p->status);
    sqlite3_bind_int(st, 4, p->depth);
    bind_text(st, 5, p->content_type);
    sqlite3_bind_int64(st, 6, p->bytes);
    bind_text(st, 7, p->title);
    sqlite3_bind_int(st, 8, p->links_out);
    sqlite3_bind_double(st, 9, p->fetched_at);
    bind_text(st, 10, p->error);
    sqlite3_bind_int(st, 11, p->attempts);
    bind_text(st, 12, p->redirect_to);
    return step(s, st);
}

struct batch_job {
    struct store *s;
    struct store_page **pages;
    int n;
    int depth; /* for store_add_urls */
    char *const *urls;
};

/* One transaction for the whole batch: all of it commits, or none. */
static int batch_job(void *arg)
{
    struct batch_job *j = arg;
    struct store *s = j->s;
    int err = 0, rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(s, rc);
    for (int i = 0; i < j->n && !err; i++)
        err = j->pages ? write_page(s, j->pages[i])
                       : queue_url(s, j->urls[i], j->depth, 0);
    rc = sqlite3_exec(s->db, err ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    if (!err && rc != SQLITE_OK)
        err = sql_fail(s, rc);
    return err;
}

int store_add_urls(struct store *s, char *const *urls, int n, int depth)
{
    struct batch_job j = {.s = s, .n = n, .depth = depth, .urls = urls};
    return blocking(batch_job, &j);
}

/* The writer: commits whatever has arrived, one transaction per round, so
 * batches grow by themselves while the disk is the bottleneck. */
static int writer(void *arg)
{
    struct store *s = arg;
    struct store_page **pages = s->batch;
    struct store_page *p;
    knit_scope shield; /* the writer ends when its channel is closed */
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    while (knit_chan_recv(s->ch, &p) == 0) {
        int n = 0;
        pages[n++] = p;
        while (n < BATCH && knit_chan_try_recv(s->ch, &p) == 0)
            pages[n++] = p;
        struct batch_job j = {.s = s, .pages = pages, .n = n};
        int err = blocking(batch_job, &j);
        if (err && !s->writer_err)
            s->writer_err = err;
        if (!err) {
            s->committed += (uint64_t)n;
            s->transactions++;
        }
        for (int i = 0; i < n; i++) {
            if (pages[i]->committed)
                pages[i]->committed(pages[i]->committed_ctx, err);
            store_page_clear(pages[i]);
            free(pages[i]);
        }
    }
    knit_scope_exit(&shield);
    return 0;
}

int store_writer_start(struct store *s, size_t capacity)
{
    s->ch = knit_chan_new(sizeof(struct store_page *), capacity);
    if (!s->ch)
        return -ENOMEM;
    knit_task_opts o = {.name = "store writer"};
    s->writer = knit_spawn_with(&o, writer, s);
    return s->writer ? 0 : -ENOMEM;
}

int store_submit(struct store *s, struct store_page *p)
{
    if (s->writer_err)
        return s->writer_err;
    struct store_page *copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *p;
    int r = knit_chan_send(s->ch, &copy);
    if (r < 0) {
        free(copy);
        return r;
    }
    memset(p, 0, sizeof(*p));
    return 0;
}

int store_writer_finish(struct store *s)
{
    if (!s->writer)
        return s->writer_err;
    knit_chan_close(s->ch);
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    knit_join(s->writer);
    knit_scope_exit(&shield);
    s->writer = NULL;
    knit_chan_unref(s->ch);
    s->ch = NULL;
    return s->writer_err;
}

uint64_t store_committed(const struct store *s)
{
    return s->committed;
}

uint64_t store_transactions(const struct store *s)
{
    return s->transactions;
}

/* ---- reading ------------------------------------------------------------- */

struct load_job {
    struct store *s;
    void (*on_url)(void *ctx, const char *url, int depth, int hops,
                   int state);
    void *ctx;
};

/* Runs on the pool thread but only collects rows; the callback runs in
 * the task afterwards (it may touch task-side state). */
struct row {
    char *url;
    int depth, hops, state;
};
struct rows {
    struct load_job j;
    struct row *v;
    size_t n, cap;
};

static int load_job(void *arg)
{
    struct rows *r = arg;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(r->j.s->db,
                                "SELECT url, depth, hops, state FROM frontier"
                                " ORDER BY rowid",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(r->j.s, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 1024;
            struct row *v = realloc(r->v, cap * sizeof(*v));
            if (!v) {
                sqlite3_finalize(st);
                return -ENOMEM;
            }
            r->v = v;
            r->cap = cap;
        }
        r->v[r->n++] = (struct row){
            strdup((const char *)sqlite3_column_text(st, 0)),
            sqlite3_column_int(st, 1), sqlite3_column_int(st, 2),
            sqlite3_column_int(st, 3)};
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(r->j.s, rc);
}

int store_load(struct store *s,
               void (*on_url)(void *ctx, const char *url, int depth, int hops,
                              int state),
               void *ctx)
{
    struct rows r = {.j = {s, on_url, ctx}};
    int err = blocking(load_job, &r);
    for (size_t i = 0; i < r.n; i++) {
        if (!err && r.v[i].url)
            on_url(ctx, r.v[i].url, r.v[i].depth, r.v[i].hops, r.v[i].state);
        free(r.v[i].url);
    }
    free(r.v);
    return err;
}

/* A query over pages: count(*) when @out is NULL, else the urls. */
struct query_job {
    struct store *s;
    const char *where;
    FILE *out;
    int64_t n;
};

static int query_job(void *arg)
{
    struct query_job *j = arg;
    char sql[512];
    snprintf(sql, sizeof(sql),
             j->out ? "SELECT url FROM pages WHERE %s ORDER BY url"
                    : "SELECT count(*) FROM pages WHERE %s",
             j->where);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(j->s, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!j->out) {
            j->n = sqlite3_column_int64(st, 0);
            continue;
        }
        fprintf(j->out, "%s\n", (const char *)sqlite3_column_text(st, 0));
        j->n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(j->s, rc);
}

int64_t store_count(struct store *s, const char *where)
{
    struct query_job j = {s, where, NULL, 0};
    int err = blocking(query_job, &j);
    return err < 0 ? err : j.n;
}

int64_t store_list_urls(struct store *s, const char *where, FILE *out)
{
    struct query_job j = {s, where, out, 0};
    int err = blocking(query_job, &j);
    return err < 0 ? err : j.n;
}

/* ---- JSON Lines export --------------------------------------------------- */

/* Writes @v as a JSON string (or null). Bytes >= 0x80 pass through: the
 * stored text is UTF-8 (titles come from libxml2, URLs are ASCII). */
static void json_str(FILE *f, const unsigned char *v)
{
    if (!v) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else if (*v == '\t')
            fputs("\\t", f);
        else if (*v < 0x20 || *v == 0x7f)
            fprintf(f, "\\u%04x", *v);
        else
            fputc(*v, f);
    }
    fputc('"', f);
}

struct export_job {
    struct store *s;
    const char *path;
    int64_t rows;
};

static int export_job(void *arg)
{
    struct export_job *j = arg;
    bool to_stdout = strcmp(j->path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(j->path, "w");
    if (!f) {
        snprintf(j->s->errmsg, sizeof(j->s->errmsg), "%s: %s", j->path,
                 strerror(errno));
        return -errno;
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        j->s->db,
        "SELECT url, final_url, status, depth, content_type, bytes, title,"
        " links_out, fetched_at, error, attempts, redirect_to FROM pages"
        " ORDER BY rowid",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        if (!to_stdout)
            fclose(f);
        return sql_fail(j->s, rc);
    }
    static const char *const names[] = {
        "url",     "final_url",  "status", "depth",    "content_type",
        "bytes",   "title",      "links_out", "fetched_at", "error",
        "attempts", "redirect_to"};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fputc('{', f);
        for (int i = 0; i < 12; i++) {
            fprintf(f, "%s\"%s\":", i ? "," : "", names[i]);
            int type = sqlite3_column_type(st, i);
            if (type == SQLITE_INTEGER)
                fprintf(f, "%lld", (long long)sqlite3_column_int64(st, i));
            else if (type == SQLITE_FLOAT)
                fprintf(f, "%.3f", sqlite3_column_double(st, i));
            else
                json_str(f, type == SQLITE_NULL ? NULL
                                                : sqlite3_column_text(st, i));
        }
        fputs("}\n", f);
        j->rows++;
    }
    sqlite3_finalize(st);
    int err = rc == SQLITE_DONE ? 0 : sql_fail(j->s, rc);
    if (fflush(f) != 0 && !err) {
        snprintf(j->s->errmsg, sizeof(j->s->errmsg), "%s: %s", j->path,
                 strerror(errno));
        err = -EIO;
    }
    if (!to_stdout && fclose(f) != 0 && !err)
        err = -EIO;
    return err < 0 ? err : 0;
}

int store_export_jsonl(struct store *s, const char *out_path)
{
    struct export_job j = {s, out_path, 0};
    int err = blocking(export_job, &j);
    return err < 0 ? err : (int)(j.rows > 0x7fffffff ? 0x7fffffff : j.rows);
}
