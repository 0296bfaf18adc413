/* SPDX-License-Identifier: MIT */
/*
 * knit/signal.h - wait for Unix signals as sequential code (tokio's
 * signal::ctrl_c and signal::unix).
 *
 *     int err = knit_ctrl_c();        // parks this task until SIGINT
 *     if (err == 0)
 *         begin_shutdown();
 *
 * How it works: the first time a task waits for (or watches) a signal,
 * the worker thread blocks it with pthread_sigmask and reads it through a
 * signalfd, so the signal never runs a handler or its default action
 * while the runtime lives. A caught signal stays caught until the runtime
 * ends: pressing Ctrl-C a second time does not kill the program, it is
 * kept for the next knit_ctrl_c. When knit_run returns, the thread's
 * signal mask is as it was (knit unblocks exactly the signals it blocked)
 * and caught signals that no task took are discarded, so the process
 * behaves as it did before.
 *
 * Delivery. Every task waiting for a signal when it arrives gets it, so
 * several tasks may wait for the same one (a broadcast). A caught signal
 * that arrives while no task waits for it is kept, and the next wait
 * whose set contains it returns it at once; like the kernel's pending
 * set, several instances of one kept signal count as one (also for
 * real-time signals). knit_signal_watch starts catching before the first
 * wait, so that a signal arriving early is kept instead of killing the
 * process.
 *
 * Threads. A process-directed signal (kill(1), Ctrl-C in a terminal) is
 * taken by any thread that does not block it. knit's own threads (the
 * blocking pool, the stall monitor) block every signal, and threads that
 * a task creates after a signal is caught inherit the worker's mask; a
 * thread that the application started earlier must block the signals
 * itself (pthread_sigmask), or it may take them instead of knit. Each
 * worker reads signals through a signalfd of its own: with several
 * workers, "every waiting task gets it" holds among the tasks of one
 * worker, and a process-directed signal goes to one worker's waiters, so
 * wait for signals from tasks of one worker (main's, worker 0, or pin
 * them with knit_spawn_on). A signal sent with raise() is directed at the
 * calling thread only; use kill(getpid(), sig) to reach a waiter on
 * another worker. Child
 * processes inherit the mask too, even across exec: a program started
 * while SIGINT is caught ignores Ctrl-C unless it is given a clean mask
 * (posix_spawnattr_setsigmask, or pthread_sigmask in the child).
 *
 * Without _GNU_SOURCE or _POSIX_C_SOURCE, <signal.h> has no sigset_t
 * under a strict -std=c11; <sys/select.h> provides it for this header,
 * but building a set (sigemptyset, sigaddset) still needs POSIX.
 */
#ifndef KNIT_SIGNAL_H
#define KNIT_SIGNAL_H

#include <signal.h>
#include <sys/select.h>

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * knit_signal_wait() - wait until one of the signals in @set arrives.
 * @set: the signals to wait for; not SIGKILL or SIGSTOP (they cannot be
 *       caught) nor SIGSEGV or SIGBUS (knit reports stack overflows with
 *       them). Copied: the caller may change it while waiting.
 *
 * Catches every signal of @set from now until the runtime ends (see
 * above). Returns at once with a kept signal of @set, if there is one.
 * Cancellation point: a fired scope returns its error without taking a
 * kept signal; a signal that was already handed to this call before the
 * task ran again wins over a later cancellation, so it is never lost.
 * Call from a task.
 *
 * Return: the signal number (> 0); -EINVAL when @set is NULL, empty or
 * holds a signal listed above; -ECANCELED / -ETIMEDOUT from the scope;
 * -ENOMEM; -EMFILE / -ENFILE when no signalfd can be created.
 */
KNIT_API int knit_signal_wait(const sigset_t *set);

/**
 * knit_ctrl_c() - wait for SIGINT (Ctrl-C in a terminal).
 *
 * knit_signal_wait() for SIGINT alone. Cancellation point. Call from a
 * task.
 *
 * Return: 0 once SIGINT arrived; -ECANCELED / -ETIMEDOUT from the scope;
 * -ENOMEM; -EMFILE / -ENFILE.
 */
KNIT_API int knit_ctrl_c(void);

/**
 * knit_signal_watch() - start catching the signals in @set now.
 * @set: as for knit_signal_wait().
 *
 * From now until the runtime ends, a signal of @set that arrives while
 * no task waits for it is kept for the next knit_signal_wait() instead
 * of running its handler or default action (which for SIGINT or SIGTERM
 * ends the process). Waiting catches a set by itself; watch first when
 * the signal may come before the wait starts (a child process, a test
 * harness). Not a cancellation point. Call from a task.
 *
 * Return: 0; -EINVAL as for knit_signal_wait(); -ENOMEM; -EMFILE /
 * -ENFILE.
 */
KNIT_API int knit_signal_watch(const sigset_t *set);

#ifdef __cplusplus
}
#endif

#endif
