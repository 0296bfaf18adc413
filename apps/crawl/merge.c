// SPDX-License-Identifier: MIT
/*
 * knit-crawl merge (merge.h). The output is created by store_open, so it
 * has the schema of any crawl's database; each input is ATTACHed in turn
 * and its pages upserted in one transaction.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <knit.h>

#include "merge.h"
#include "store.h"

/* Keep the first copy of a page, unless it failed and this one did not. */
static const char upsert_sql[] =
    "INSERT INTO pages SELECT * FROM src.pages WHERE true"
    " ON CONFLICT(url) DO UPDATE SET final_url = excluded.final_url,"
    " status = excluded.status, depth = excluded.depth,"
    " content_type = excluded.content_type, bytes = excluded.bytes,"
    " title = excluded.title, links_out = excluded.links_out,"
    " fetched_at = excluded.fetched_at, error = excluded.error,"
    " attempts = excluded.attempts, redirect_to = excluded.redirect_to"
    " WHERE pages.error IS NOT NULL AND excluded.error IS NULL;"
    "INSERT OR IGNORE INTO frontier(url, depth, state)"
    " SELECT url, depth, 1 FROM src.pages;"
    "INSERT OR IGNORE INTO meta SELECT * FROM src.meta;";

struct merge_job {
    const char *out;
    char *const *in;
    int n;
    int64_t pages, dups;
    char *err;
    size_t errlen;
};

static int64_t count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Merge input @path into @db; SQLite's message in j->err on failure. */
static int merge_one(struct merge_job *j, sqlite3 *db, const char *path)
{
    char *sql = sqlite3_mprintf("ATTACH %Q AS src", path);
    int rc = sql ? sqlite3_exec(db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        goto out_fail;
    int64_t before = count(db, "SELECT count(*) FROM main.pages");
    int64_t in = count(db, "SELECT count(*) FROM src.pages");
    if (in < 0) {
        sqlite3_exec(db, "DETACH src", NULL, NULL, NULL);
        snprintf(j->err, j->errlen, "%s: not a knit-crawl database", path);
        return -EINVAL;
    }
    rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, upsert_sql, NULL, NULL, NULL);
    rc = sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL,
                      NULL, NULL) == SQLITE_OK
             ? rc
             : SQLITE_ERROR;
    int64_t after = count(db, "SELECT count(*) FROM main.pages");
    if (rc != SQLITE_OK) {
        snprintf(j->err, j->errlen, "%s: %s", path, sqlite3_errmsg(db));
        sqlite3_exec(db, "DETACH src", NULL, NULL, NULL);
        return -EIO;
    }
    sqlite3_exec(db, "DETACH src", NULL, NULL, NULL);
    j->pages += in;
    j->dups += in - (after - before);
    return 0;
out_fail:
    snprintf(j->err, j->errlen, "%s: %s", path, sqlite3_errmsg(db));
    return -EIO;
}

static int merge_job(void *arg)
{
    struct merge_job *j = arg;
    sqlite3 *db;
    if (sqlite3_open_v2(j->out, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(j->err, j->errlen, "%s: %s", j->out, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -EIO;
    }
    int err = 0;
    for (int i = 0; i < j->n && err == 0; i++)
        err = merge_one(j, db, j->in[i]);
    sqlite3_close(db);
    return err;
}

int crawl_merge(const char *out, char *const *in, int n, FILE *log, char *err,
                size_t errlen)
{
    if (access(out, F_OK) == 0) {
        snprintf(err, errlen, "%s exists; merge writes a new database", out);
        return -EEXIST;
    }
    for (int i = 0; i < n; i++) {
        if (access(in[i], R_OK) != 0) {
            int e = errno;
            snprintf(err, errlen, "%s: %s", in[i], strerror(e));
            return -e;
        }
    }
    struct store *s;
    int r = store_open(out, true, &s, err, errlen);
    if (r < 0)
        return r;
    store_close(s);
    struct merge_job j = {.out = out, .in = in, .n = n, .err = err,
                          .errlen = errlen};
    knit_task *t = knit_spawn_blocking(merge_job, &j);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    knit_scope shield; /* the job uses @j */
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    r = knit_join(t);
    knit_scope_exit(&shield);
    if (r == 0)
        fprintf(log, "merged %d databases into %s: %lld pages, %lld distinct"
                     " (%lld stored twice, kept once)\n",
                n, out, (long long)j.pages, (long long)(j.pages - j.dups),
                (long long)j.dups);
    return r;
}
