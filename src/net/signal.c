// SPDX-License-Identifier: MIT
/*
 * Signals as sequential code (knit/signal.h): knit_signal_wait,
 * knit_ctrl_c and knit_signal_watch, on a signalfd per worker.
 *
 * Each worker keeps, in w->signals, the set of signals it has caught
 * (blocked on its thread and readable from one non-blocking signalfd,
 * which signalfd(fd, new_set) widens in place), the mask its thread had
 * before, the signals read that no call took yet, and the calls now
 * waiting. A waiting call is a record on its task's stack whose I/O wait
 * is armed on the signalfd. Whichever call runs first after a signal
 * arrives reads every pending siginfo and hands each signal to every
 * record whose set holds it, waking those still parked; a signal no
 * record takes is kept for the next wait. Waiters whose signal did not
 * come park again.
 *
 * Trade-off: every parked waiter is armed on the one signalfd, so a
 * signal wakes them all and those it was not for re-arm (one epoll_ctl
 * each). Signals are rare; a single armed "reader" would need a hand-off
 * whenever that reader is cancelled, for no gain that matters here.
 *
 * Divisions: state and catching; delivery; waiting; teardown.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/sched.h"
#include "core/sys.h"
#include "io/driver.h"
#include "knit/signal.h"

/* A worker's signal state (w->signals); worker-local, no lock. */
struct sigstate {
    int sfd;                /* signalfd for @caught, or -1 before any */
    sigset_t caught;        /* blocked by knit on this thread, read by sfd */
    sigset_t orig;          /* the thread's mask when this state was made */
    sigset_t kept;          /* read while no waiting call wanted them */
    struct knit_list waits; /* struct sig_wait.link; calls in progress */
};

/* One knit_signal_wait call; lives on its task's stack. */
struct sig_wait {
    struct knit_io_wait io; /* io.w parks the task; armed on sfd meanwhile */
    struct knit_list link;  /* on sigstate.waits for the whole call */
    sigset_t set;           /* the signals it waits for (a copy) */
    int signo;              /* the signal handed to it, 0 until then */
};

/* ---- state and catching -------------------------------------------------- */

/*
 * Whether @s holds no signal. Not sigisemptyset(): glibc 2.36's misses
 * real-time signals (a set of SIGRTMIN alone reads as empty).
 */
static bool set_is_empty(const sigset_t *s)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(s, sig) == 1)
            return false;
    return true;
}

/* 0 when @set may be waited for, else -EINVAL. */
static int check_set(const sigset_t *set)
{
    if (!set || set_is_empty(set))
        return -EINVAL;
    /* SIGKILL and SIGSTOP cannot be caught; knit's overflow reports rely
     * on SIGSEGV and SIGBUS reaching their handler. */
    static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (sigismember(set, refused[i]) == 1)
            return -EINVAL;
    return 0;
}

static struct knit_worker *worker_or_panic(const char *fn)
{
    struct knit_worker *w = knit__worker();
    if (!w || !w->current)
        knit__panic("%s called outside a task", fn);
    return w;
}

/* The state of @w, made on first use; NULL when out of memory. */
static struct sigstate *state(struct knit_worker *w)
{
    if (w->signals)
        return w->signals;
    struct sigstate *st = knit__malloc(sizeof(*st));
    if (!st)
        return NULL;
    st->sfd = -1;
    sigemptyset(&st->caught);
    sigemptyset(&st->kept);
    pthread_sigmask(SIG_BLOCK, NULL, &st->orig);
    knit_list_init(&st->waits);
    w->signals = st;
    return st;
}

#ifdef KNIT_CTX_UCONTEXT
/*
 * swapcontext() restores the mask saved with each context, so a mask set
 * by one task would be undone by the next switch. Every saved context
 * (the scheduler's and each unfinished task's) gets @add too; tasks made
 * later inherit it through getcontext().
 */
static void add_to_contexts(struct knit_worker *w, const sigset_t *add)
{
    sigset_t *m = &w->sched.ctx.uc.uc_sigmask;
    sigorset(m, m, add);
    /* Tasks are on the books of the worker that spawned them, which may
     * be another: look at every list, under the lock, for the started
     * tasks that run here (only this thread switches to them). */
    knit__lock(w);
    for (int i = 0; i < w->rt->nworkers; i++) {
        struct knit_list *it;
        knit__books_lock(&w->rt->workers[i]);
        knit_list_for_each(it, &w->rt->workers[i].tasks)
        {
            struct knit_task *t =
                knit_container_of(it, struct knit_task, all_link);
            if (knit__task_worker_peek(t) == w && !t->blocking &&
                t->stack.lo &&
                t->state != KNIT_TASK_DONE) {
                m = &t->fiber.ctx.uc.uc_sigmask;
                sigorset(m, m, add);
            }
        }
        knit__books_unlock(&w->rt->workers[i]);
    }
    knit__unlock(w);
}
#endif

/*
 * Catches the signals of @set not caught yet: blocks them on this thread,
 * then widens the signalfd (in that order, so that none arriving in
 * between runs its default action). On failure nothing has changed.
 */
static int catch_set(struct knit_worker *w, struct sigstate *st,
                     const sigset_t *set)
{
    sigset_t add;
    sigset_t all;
    sigset_t before;
    sigemptyset(&add);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1 && !sigismember(&st->caught, sig))
            sigaddset(&add, sig);
    if (set_is_empty(&add))
        return 0;
    sigorset(&all, &st->caught, &add);
    pthread_sigmask(SIG_BLOCK, &add, &before);
    int fd = signalfd(st->sfd, &all, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        /* Unblock only what this call blocked. */
        sigset_t undo;
        sigemptyset(&undo);
        for (int sig = 1; sig < NSIG; sig++)
            if (sigismember(&add, sig) == 1 && !sigismember(&before, sig))
                sigaddset(&undo, sig);
        pthread_sigmask(SIG_UNBLOCK, &undo, NULL);
        return err;
    }
    st->sfd = fd;
    st->caught = all;
#ifdef KNIT_CTX_UCONTEXT
    add_to_contexts(w, &add);
#else
    (void)w;
#endif
    return 0;
}

/* ---- delivery ------------------------------------------------------------ */

/* Hands @sig to every waiting call that wants it; keeps it if none does. */
static void deliver(struct sigstate *st, int sig)
{
    bool taken = false;
    struct knit_list *it;
    knit_list_for_each(it, &st->waits)
    {
        struct sig_wait *sw = knit_container_of(it, struct sig_wait, link);
        if (sw->signo || sigismember(&sw->set, sig) != 1)
            continue;
        sw->signo = sig;
        taken = true;
        /* Parked and armed: it may never see the fd ready (we just read
         * it), so wake it here, as the driver would have. */
        if (knit_list_is_linked(&sw->io.fd_link)) {
            sw->io.io->ops->disarm(sw->io.io, &sw->io);
            knit__io_ready(&sw->io, POLLIN);
        }
    }
    if (!taken)
        sigaddset(&st->kept, sig);
}

/* Reads every pending signal from the signalfd and delivers it. */
static void drain(struct sigstate *st)
{
    struct signalfd_siginfo si[4];
    for (;;) {
        ssize_t n = read(st->sfd, si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* -EAGAIN: nothing more pending */
        for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
            deliver(st, (int)si[i].ssi_signo);
    }
}

/* Takes the lowest kept signal of @set; 0 when there is none. */
static int take_kept(struct sigstate *st, const sigset_t *set)
{
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(&st->kept, sig) == 1 && sigismember(set, sig) == 1) {
            sigdelset(&st->kept, sig);
            return sig;
        }
    }
    return 0;
}

/* ---- waiting ------------------------------------------------------------- */

/* Parks the task until the signalfd is readable or deliver() wakes it. */
static int park(struct knit_worker *w, struct sigstate *st, struct sig_wait *sw)
{
    knit__waiter_init(&sw->io.w, "signal", st, knit__io_wait_cancel);
    int err = knit__io_wait_arm(&w->io, &sw->io, st->sfd, POLLIN);
    if (err)
        return err;
    return knit__wait(&sw->io.w);
}

/* Checks @set and catches it on @w; *@stp is the state on success. */
static int catch_checked(struct knit_worker *w, const sigset_t *set,
                         struct sigstate **stp)
{
    int err = check_set(set);
    if (err)
        return err;
    struct sigstate *st = state(w);
    if (!st)
        return -ENOMEM;
    err = catch_set(w, st, set);
    if (err)
        return err;
    *stp = st;
    return 0;
}

int knit_signal_watch(const sigset_t *set)
{
    struct sigstate *st;
    return catch_checked(worker_or_panic("knit_signal_watch"), set, &st);
}

int knit_signal_wait(const sigset_t *set)
{
    struct knit_worker *w = worker_or_panic("knit_signal_wait");
    int err = check_set(set);
    if (err)
        return err;
    /* A fired scope returns before anything is caught or taken. */
    err = knit__scope_err(w->current);
    if (err)
        return err;
    struct sigstate *st;
    err = catch_checked(w, set, &st);
    if (err)
        return err;
    int sig = take_kept(st, set);
    if (sig)
        return sig;

    struct sig_wait sw;
    sw.set = *set;
    sw.signo = 0;
    knit_list_init(&sw.io.fd_link);
    knit_list_push_back(&st->waits, &sw.link);
    for (;;) {
        drain(st);
        if (sw.signo)
            break;
        err = park(w, st, &sw);
        /* Handed a signal while parked, or before a cancellation that
         * came later: the signal wins, so it is never lost. */
        if (sw.signo || err < 0)
            break;
    }
    knit_list_remove(&sw.link);
    return sw.signo ? sw.signo : err;
}

int knit_ctrl_c(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    int r = knit_signal_wait(&set);
    return r < 0 ? r : 0;
}

/* ---- teardown ------------------------------------------------------------ */

/*
 * On the worker thread as the runtime ends, every task gone. Signals
 * knit caught and nobody took are discarded first: unblocking them would
 * otherwise run their default action now (a second Ctrl-C would kill the
 * process on its way out). Signals that were already blocked when knit
 * first caught a signal stay blocked, and those still pending in the
 * kernel stay pending; kept ones (already read) are discarded with the
 * rest.
 */
void knit__signal_fini(struct knit_worker *w)
{
    struct sigstate *st = w->signals;
    if (!st)
        return;
    sigset_t mine;
    sigemptyset(&mine);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&st->caught, sig) == 1 &&
            sigismember(&st->orig, sig) != 1)
            sigaddset(&mine, sig);
    if (st->sfd >= 0) {
        if (!set_is_empty(&mine) && signalfd(st->sfd, &mine, 0) >= 0) {
            struct signalfd_siginfo si[4];
            ssize_t n;
            do
                n = read(st->sfd, si, sizeof(si));
            while (n > 0 || (n < 0 && errno == EINTR));
        }
        if (w->io.ops)
            w->io.ops->forget(&w->io, st->sfd);
        knit__sys_close(st->sfd);
    }
    pthread_sigmask(SIG_UNBLOCK, &mine, NULL);
    free(st);
    w->signals = NULL;
}
