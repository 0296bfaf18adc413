// SPDX-License-Identifier: MIT
/*
 * Every system call knit makes goes through these wrappers: they turn the
 * -1/errno convention into -errno, and they are the one seam where fault
 * injection will fail the Nth call (reliability issue).
 */
#ifndef KNIT_CORE_SYS_H
#define KNIT_CORE_SYS_H

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

static inline int knit__sys_close(int fd)
{
    return close(fd) < 0 ? -errno : 0;
}

/* Returns the mapping or NULL (errno set). */
static inline void *knit__sys_mmap(size_t len, int prot, int flags)
{
    void *p = mmap(NULL, len, prot, flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static inline int knit__sys_munmap(void *p, size_t len)
{
    return munmap(p, len) < 0 ? -errno : 0;
}

static inline int knit__sys_mprotect(void *p, size_t len, int prot)
{
    return mprotect(p, len, prot) < 0 ? -errno : 0;
}

static inline int knit__sys_madvise(void *p, size_t len, int advice)
{
    return madvise(p, len, advice) < 0 ? -errno : 0;
}

#endif
