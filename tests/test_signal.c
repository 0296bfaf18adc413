// SPDX-License-Identifier: MIT
/*
 * Signals (knit/signal.h): knit_signal_wait, knit_ctrl_c and
 * knit_signal_watch. Signals are sent with raise() from a task (directed
 * at the worker thread, which runs every task) unless a test is about
 * process-directed signals (kill(getpid())) or another thread. Each
 * blocking call gets its success, -ECANCELED and -ETIMEDOUT cases; then
 * delivery to several waiters, kept signals, and what the thread looks
 * like after the runtime ends.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

static sigset_t set_of(int a, int b)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, a);
    if (b)
        sigaddset(&s, b);
    return s;
}

/* Whether @sig is blocked on the calling thread. */
static bool is_blocked(int sig)
{
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, sig) == 1;
}

struct waiter {
    int a, b; /* the set: one or two signals */
    int sig;  /* knit_signal_wait's result, 0 while waiting */
};

static int wait_task(void *arg)
{
    struct waiter *w = arg;
    sigset_t s = set_of(w->a, w->b);
    w->sig = knit_signal_wait(&s);
    return w->sig < 0 ? w->sig : 0;
}

static int wait_one(int sig)
{
    sigset_t s = set_of(sig, 0);
    return knit_signal_wait(&s);
}

/* knit_signal_wait for @sig inside a scope that expires after @ms. */
static int wait_one_within(int sig, int64_t ms)
{
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + ms);
    int r = wait_one(sig);
    knit_scope_exit(&sc);
    return r;
}

/* ---- waking a waiter ----------------------------------------------------- */

static int t_raise(void *arg)
{
    (void)arg;
    struct waiter w = {SIGUSR1, 0, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(w.sig, 0); /* parked */
    assert_true(is_blocked(SIGUSR1));
    /* Default action: terminate. Caught, it only wakes the waiter. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.sig, SIGUSR1);
    assert_int_equal(knit_now(), 0);
    /* Caught until the runtime ends. */
    assert_true(is_blocked(SIGUSR1));
    return 0;
}

static void signal_wait_returns_a_signal_raised_by_another_task(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_raise, NULL), 0);
}

static int t_kill(void *arg)
{
    (void)arg;
    struct waiter w = {SIGUSR1, 0, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    /* Process-directed: the kernel picks any thread that does not block
     * SIGUSR1. This process has no thread but the worker, which blocks
     * it, so it stays pending for the process and the worker's signalfd
     * reads it. A thread of the application that did not block it could
     * take it instead (knit's own threads block every signal). */
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.sig, SIGUSR1);
    return 0;
}

static void signal_wait_takes_a_process_directed_signal(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_kill, NULL), 0);
}

static int t_set(void *arg)
{
    (void)arg;
    struct waiter w = {SIGUSR1, SIGRTMIN, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(raise(SIGRTMIN), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.sig, SIGRTMIN);
    return 0;
}

static void signal_wait_returns_whichever_signal_of_its_set_came(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_set, NULL), 0);
}

static int t_every_waiter(void *arg)
{
    (void)arg;
    struct waiter a = {SIGUSR1, 0, 0};
    struct waiter b = {SIGUSR1, 0, 0};
    struct waiter c = {SIGUSR2, 0, 0};
    knit_task *ta = knit_spawn(wait_task, &a);
    knit_task *tb = knit_spawn(wait_task, &b);
    knit_task *tc = knit_spawn(wait_task, &c);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(knit_join(ta), 0);
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(a.sig, SIGUSR1);
    assert_int_equal(b.sig, SIGUSR1);
    /* Woken along with the others (one signalfd), it parked again. */
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(c.sig, 0);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(knit_join(tc), 0);
    assert_int_equal(c.sig, SIGUSR2);
    return 0;
}

static void every_waiter_for_a_signal_gets_it_and_no_other(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_every_waiter, NULL), 0);
}

static int t_handed_over(void *arg)
{
    (void)arg;
    struct waiter b = {SIGUSR1, 0, 0};
    knit_task *tb = knit_spawn(wait_task, &b);
    assert_int_equal(knit_yield(), 0);
    /* The driver has not seen the signalfd readable yet: this call reads
     * the signal and must wake the parked waiter itself. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(wait_one(SIGUSR1), SIGUSR1);
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(b.sig, SIGUSR1);
    return 0;
}

static void a_call_that_reads_the_signal_wakes_the_parked_waiters(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_handed_over, NULL), 0);
}

static int t_ctrl_c_task(void *arg)
{
    (void)arg;
    return knit_ctrl_c();
}

static int t_ctrl_c(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(t_ctrl_c_task, NULL);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(knit_join(t), 0);
    /* A second Ctrl-C while nobody waits does not end the process: it is
     * kept for the next knit_ctrl_c. */
    assert_int_equal(kill(getpid(), SIGINT), 0);
    assert_int_equal(knit_ctrl_c(), 0);
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + 10);
    assert_int_equal(knit_ctrl_c(), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&sc), -ETIMEDOUT);
    return 0;
}

static void ctrl_c_returns_zero_on_sigint_and_keeps_a_second_one(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_ctrl_c, NULL), 0);
}

/* ---- cancellation and deadlines ------------------------------------------ */

static int t_cancel(void *arg)
{
    (void)arg;
    struct waiter w = {SIGUSR1, 0, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(w.sig, -ECANCELED);
    /* No trace: the record is gone from the list (ASan would see a write
     * to the dead task's stack) and the next wait works. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(wait_one(SIGUSR1), SIGUSR1);
    return 0;
}

static void signal_wait_returns_ecanceled_and_leaves_no_trace(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel, NULL), 0);
}

static int t_timeout(void *arg)
{
    (void)arg;
    knit_scope sc;
    knit_scope_enter(&sc, 75);
    assert_int_equal(wait_one(SIGUSR1), -ETIMEDOUT);
    assert_int_equal(knit_now(), 75);
    assert_int_equal(knit_scope_exit(&sc), -ETIMEDOUT);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(wait_one(SIGUSR1), SIGUSR1);
    assert_int_equal(knit_now(), 75);
    return 0;
}

static void signal_wait_returns_etimedout_when_the_scope_expires(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_timeout, NULL), 0);
}

static int t_fired_scope(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(knit_signal_watch(&s), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    knit_scope sc;
    knit_scope_enter(&sc, KNIT_FOREVER);
    knit_scope_cancel(&sc);
    assert_int_equal(knit_signal_wait(&s), -ECANCELED);
    assert_int_equal(knit_scope_exit(&sc), -ECANCELED);
    /* The signal is still there for a call that is not cancelled. */
    assert_int_equal(knit_signal_wait(&s), SIGUSR1);
    return 0;
}

static void a_fired_scope_returns_without_taking_a_signal(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fired_scope, NULL), 0);
}

static int t_signal_before_cancel(void *arg)
{
    (void)arg;
    struct waiter w = {SIGUSR1, 0, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    /* The waiter is woken by the cancel, but this task runs first and
     * hands it the signal: the signal wins and is not lost. */
    assert_int_equal(raise(SIGUSR1), 0);
    knit_cancel(t);
    assert_int_equal(wait_one(SIGUSR1), SIGUSR1);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.sig, SIGUSR1);
    return 0;
}

static void a_signal_handed_over_before_a_cancel_is_returned(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_signal_before_cancel, NULL), 0);
}

/* ---- arguments ----------------------------------------------------------- */

static int t_einval(void *arg)
{
    (void)arg;
    sigset_t empty;
    sigemptyset(&empty);
    assert_int_equal(knit_signal_wait(NULL), -EINVAL);
    assert_int_equal(knit_signal_wait(&empty), -EINVAL);
    assert_int_equal(knit_signal_watch(NULL), -EINVAL);
    assert_int_equal(knit_signal_watch(&empty), -EINVAL);
    static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        sigset_t s = set_of(SIGUSR1, refused[i]);
        assert_int_equal(knit_signal_wait(&s), -EINVAL);
        assert_int_equal(knit_signal_watch(&s), -EINVAL);
    }
    sigset_t all;
    sigfillset(&all);
    assert_int_equal(knit_signal_wait(&all), -EINVAL);
    /* A failed call changed nothing. */
    assert_false(is_blocked(SIGUSR1));
    assert_int_equal(knit_now(), 0);
    return 0;
}

static void signal_wait_and_watch_reject_bad_sets(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_einval, NULL), 0);
}

/* ---- kept signals -------------------------------------------------------- */

static int t_watch(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(knit_signal_watch(&s), 0);
    assert_true(is_blocked(SIGUSR1));
    assert_int_equal(raise(SIGUSR1), 0); /* nobody waits yet */
    assert_int_equal(knit_sleep(10), 0);
    assert_int_equal(knit_signal_wait(&s), SIGUSR1);
    assert_int_equal(knit_now(), 10);
    /* Taken: the next wait waits. */
    assert_int_equal(wait_one_within(SIGUSR1, 10), -ETIMEDOUT);
    return 0;
}

static void signal_watch_keeps_a_signal_that_comes_before_the_wait(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_watch, NULL), 0);
}

static int t_kept(void *arg)
{
    (void)arg;
    sigset_t rt = set_of(SIGRTMIN, 0);
    assert_int_equal(knit_signal_watch(&rt), 0);
    struct waiter w = {SIGUSR2, 0, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    /* The waiter for SIGUSR2 reads all three; nobody waits for SIGRTMIN,
     * so it is kept, and its two queued instances count as one. */
    assert_int_equal(raise(SIGRTMIN), 0);
    assert_int_equal(raise(SIGRTMIN), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.sig, SIGUSR2);
    assert_int_equal(knit_signal_wait(&rt), SIGRTMIN);
    assert_int_equal(knit_now(), 0);
    assert_int_equal(wait_one_within(SIGRTMIN, 10), -ETIMEDOUT);
    return 0;
}

static void a_signal_nobody_waits_for_is_kept_for_the_next_wait(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_kept, NULL), 0);
}

/* ---- other threads ------------------------------------------------------- */

struct sender {
    pthread_t th;
    bool inherited; /* SIGUSR1 was blocked in the new thread */
};

static void *send_later(void *arg)
{
    struct sender *s = arg;
    s->inherited = is_blocked(SIGUSR1);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(getpid(), SIGUSR1);
    return NULL;
}

static int t_thread(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(knit_signal_watch(&s), 0);
    struct sender snd = {0};
    assert_int_equal(pthread_create(&snd.th, NULL, send_later, &snd), 0);
    /* No timer is armed: the idle worker sleeps in the driver until the
     * other thread's signal makes the signalfd readable. */
    assert_int_equal(knit_signal_wait(&s), SIGUSR1);
    assert_int_equal(knit_now(), 0);
    pthread_join(snd.th, NULL);
    /* Created after the catch, the thread inherited the block, so the
     * process-directed signal could only reach the worker. */
    assert_true(snd.inherited);
    return 0;
}

static void idle_worker_is_woken_by_a_signal_from_another_thread(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_thread, NULL), 0);
}

/* ---- after the runtime --------------------------------------------------- */

static volatile sig_atomic_t usr1_handled;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_handled++;
}

static void handle_usr1(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, old), 0);
    usr1_handled = 0;
}

static void assert_same_mask(const sigset_t *want)
{
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    for (int sig = 1; sig < NSIG; sig++)
        assert_int_equal(sigismember(&now, sig), sigismember(want, sig));
}

static void signal_mask_is_restored_when_the_runtime_ends(void **state)
{
    (void)state;
    struct sigaction old;
    handle_usr1(&old);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    assert_int_equal(kt_run(t_raise, NULL), 0);
    assert_same_mask(&before);
    assert_int_equal(usr1_handled, 0);
    /* SIGUSR1 runs the program's handler again. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(usr1_handled, 1);
    sigaction(SIGUSR1, &old, NULL);
}

static int t_leave_pending(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(knit_signal_watch(&s), 0);
    struct waiter w = {SIGUSR2, 0, 0};
    knit_task *t = knit_spawn(wait_task, &w);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(knit_join(t), 0);   /* SIGUSR1 is now kept */
    assert_int_equal(raise(SIGUSR1), 0); /* and pending in the signalfd */
    return 0;
}

static void caught_signals_nobody_took_are_discarded_at_the_end(void **state)
{
    (void)state;
    struct sigaction old;
    handle_usr1(&old);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    assert_int_equal(kt_run(t_leave_pending, NULL), 0);
    assert_same_mask(&before);
    assert_int_equal(usr1_handled, 0);
    sigset_t pending;
    assert_int_equal(sigpending(&pending), 0);
    assert_int_equal(sigismember(&pending, SIGUSR1), 0);
    assert_int_equal(sigismember(&pending, SIGUSR2), 0);
    sigaction(SIGUSR1, &old, NULL);
}

static int t_raise_usr2(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR2, 0);
    assert_int_equal(knit_signal_watch(&s), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    return 0;
}

static void
signals_blocked_before_the_runtime_stay_blocked_and_pending(void **state)
{
    (void)state;
    sigset_t usr2 = set_of(SIGUSR2, 0);
    sigset_t before;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr2, &before), 0);
    sigset_t blocked;
    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    assert_int_equal(kt_run(t_raise_usr2, NULL), 0);
    /* knit caught SIGUSR2 but did not block it: it leaves it blocked and
     * its pending instance where the program expects it. */
    assert_same_mask(&blocked);
    sigset_t pending;
    assert_int_equal(sigpending(&pending), 0);
    assert_int_equal(sigismember(&pending, SIGUSR2), 1);
    struct timespec zero = {0, 0};
    assert_int_equal(sigtimedwait(&usr2, NULL, &zero), SIGUSR2);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signal_wait_returns_a_signal_raised_by_another_task),
        cmocka_unit_test(signal_wait_takes_a_process_directed_signal),
        cmocka_unit_test(signal_wait_returns_whichever_signal_of_its_set_came),
        cmocka_unit_test(every_waiter_for_a_signal_gets_it_and_no_other),
        cmocka_unit_test(a_call_that_reads_the_signal_wakes_the_parked_waiters),
        cmocka_unit_test(ctrl_c_returns_zero_on_sigint_and_keeps_a_second_one),
        cmocka_unit_test(signal_wait_returns_ecanceled_and_leaves_no_trace),
        cmocka_unit_test(signal_wait_returns_etimedout_when_the_scope_expires),
        cmocka_unit_test(a_fired_scope_returns_without_taking_a_signal),
        cmocka_unit_test(a_signal_handed_over_before_a_cancel_is_returned),
        cmocka_unit_test(signal_wait_and_watch_reject_bad_sets),
        cmocka_unit_test(
            signal_watch_keeps_a_signal_that_comes_before_the_wait),
        cmocka_unit_test(a_signal_nobody_waits_for_is_kept_for_the_next_wait),
        cmocka_unit_test(idle_worker_is_woken_by_a_signal_from_another_thread),
        cmocka_unit_test(signal_mask_is_restored_when_the_runtime_ends),
        cmocka_unit_test(caught_signals_nobody_took_are_discarded_at_the_end),
        cmocka_unit_test(
            signals_blocked_before_the_runtime_stay_blocked_and_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
