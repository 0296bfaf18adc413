/* SPDX-License-Identifier: MIT */
/*
 * knit/net.h - file descriptor readiness (sockets come with the networking
 * issue). Fds are plain non-blocking file descriptors.
 */
#ifndef KNIT_NET_H
#define KNIT_NET_H

#include <poll.h>

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * knit_wait_fd() - wait until @fd is ready for @events.
 * @events: POLLIN, POLLOUT or both.
 * Cancellation point. Regular files are always ready.
 * Return: the ready events (> 0, may include POLLERR / POLLHUP); -EINVAL
 * for bad @events or a negative fd; -EBADF for a closed fd; -ECANCELED /
 * -ETIMEDOUT when the scope fired.
 */
KNIT_API int knit_wait_fd(int fd, int events);

#ifdef __cplusplus
}
#endif

#endif
