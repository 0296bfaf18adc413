/* SPDX-License-Identifier: MIT */
/*
 * knit/file.h - whole-file helpers: read a file into memory, replace a
 * file atomically (tokio's fs::read and fs::write, made crash-safe).
 *
 * Regular files are always "ready" to epoll, so a plain read(2) on one
 * would freeze the worker on a slow disk. These calls keep the worker
 * free: open, fstat, rename and fsync run on knit's file pool (a blocking
 * pool of its own, so a hung resolver or slow user jobs cannot starve
 * it; see knit/blocking.h), and the reading itself goes through io_uring
 * completion reads when the calling worker runs that backend, else on the
 * file pool too.
 *
 * Both calls are cancellation points and take their deadline from the
 * enclosing scope:
 *
 *     knit_scope s;
 *     knit_scope_enter(&s, knit_now() + 1000);
 *     char *text;
 *     size_t len;
 *     int err = knit_file_read_all("conf.ini", 1 << 20, &text, &len);
 *     knit_scope_exit(&s);            // err: 0, -ETIMEDOUT, -ENOENT, ...
 *     ...
 *     free(text);
 *
 * A cancelled call returns at once; work already handed to a pool thread
 * (an open(2) stuck on a dead NFS server, say) finishes there on its own
 * and frees what it holds. Outside a task (a plain thread, a blocking job)
 * both calls simply run on the calling thread.
 */
#ifndef KNIT_FILE_H
#define KNIT_FILE_H

#include <stddef.h>

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * knit_file_read_all() - read the whole file at @path into memory.
 * @path: the file; anything open(2) can read until end of file (regular
 *        files, /proc files, FIFOs), except directories.
 * @max:  the largest size accepted, in bytes; 0 means no limit but
 *        memory. A file of exactly @max bytes is read; a regular file
 *        larger than @max fails before anything is read, any other file
 *        as soon as more than @max bytes have come.
 * @out:  out; on success a malloc'd buffer of *@len bytes plus a NUL
 *        byte (so text can be used as a string); the caller frees it.
 *        NULL on failure.
 * @len:  out; the size read, without the NUL. 0 on failure.
 *
 * Cancellation point. When the scope fires the call returns promptly and
 * frees whatever it had read (it waits only for an io_uring read already
 * in the kernel, one chunk of at most 1 MiB).
 * Return: 0; -EINVAL for a NULL argument; -EFBIG larger than @max;
 * -ENOMEM; -ECANCELED / -ETIMEDOUT from the scope; -EISDIR for a
 * directory; another -errno of open(2), fstat(2) or read(2) (-ENOENT,
 * -EACCES, -ENOTDIR, -ENAMETOOLONG, -ELOOP, -EIO ...).
 */
KNIT_API int knit_file_read_all(const char *path, size_t max, char **out,
                                size_t *len);

/*
 * knit_file_write_all flags. KNIT_FILE_SYNC: fsync the data before the
 * rename and the directory after it, so the new file is on disk when the
 * call returns.
 */
#define KNIT_FILE_SYNC 1

/**
 * knit_file_write_all() - replace the file at @path with @len bytes of
 * @buf, atomically.
 * @path:  the target; its directory must exist.
 * @buf:   the new contents (may be NULL when @len is 0). Copied when the
 *         call runs on the pool, so a cancelled caller may reuse it.
 * @len:   its size.
 * @flags: 0 or KNIT_FILE_SYNC.
 *
 * The data goes to a new temporary file in the same directory
 * (".<name>.knit-XXXXXXXX"), which is then renamed over @path, so readers
 * see the old file or the new one, never a part. The new file keeps the
 * permission bits of the file it replaces; a new one gets 0666 minus the
 * umask. Without KNIT_FILE_SYNC a crash soon after the call may leave
 * the old contents (or, on some filesystems, an empty file); with it the
 * data and the rename are on disk when the call returns 0. A symbolic
 * link at @path is replaced by the file, not followed.
 *
 * Cancellation point. A call whose scope fires before the rename returns
 * -ECANCELED / -ETIMEDOUT at once and has no effect: the target is left
 * as it was and the temporary file is removed (by the pool thread, when
 * it gets there). Once the rename has begun the outcome is decided: the
 * call waits for it (and, with KNIT_FILE_SYNC, the directory's fsync)
 * and returns it even if the scope fires meanwhile.
 * Return: 0; -EINVAL for a NULL @path, a NULL @buf with @len > 0 or an
 * unknown flag; -ENOMEM; -ECANCELED / -ETIMEDOUT from the scope; another
 * -errno of open(2), write(2), fsync(2), close(2) or rename(2) (-ENOENT
 * for a missing directory, -EACCES, -ENOSPC, -EDQUOT, -EISDIR, -EIO ...).
 */
KNIT_API int knit_file_write_all(const char *path, const void *buf, size_t len,
                                 int flags);

#ifdef __cplusplus
}
#endif

#endif
