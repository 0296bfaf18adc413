// SPDX-License-Identifier: MIT
/*
 * Work that arrives on a thread knit does not own (tokio's
 * Handle::current() + handle.spawn): a C library delivers events from its
 * own thread through a callback. The callback must not block, so it hands
 * each event to the runtime as a task with knit_handle_spawn; the tasks
 * do the async part (here a short sleep standing for an I/O call) and
 * report through a channel that main reads. After the library says it is
 * done, main knows how many events to expect.
 *
 * Run on the manual clock, so the sleeps take no real time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <knit.h>

#define EVENTS 5

/* ---- a stand-in for a library with its own event thread ---------------- */

typedef void (*event_cb)(int id, void *user);

struct lib {
    pthread_t thread;
    event_cb cb;
    void *user;
};

static void *lib_thread(void *arg)
{
    struct lib *l = arg;
    for (int id = 1; id <= EVENTS; id++)
        l->cb(id, l->user); /* from the library's thread */
    return NULL;
}

/* ---- the application ---------------------------------------------------- */

struct app {
    knit_handle *h;      /* the way into the runtime */
    knit_chan *done;     /* (int) event ids, as their tasks finish */
    _Atomic int refused; /* spawns the runtime refused */
};

struct job {
    struct app *app;
    int id;
};

/* A task per event: the async part of handling it. */
static int handle_event(void *arg)
{
    struct job *j = arg;
    int r = knit_sleep(10 * j->id); /* stands for a request */
    if (r == 0)
        r = knit_chan_send(j->app->done, &j->id);
    free(j);
    return r;
}

/* The library's callback: runs on its thread, must not block. */
static void on_event(int id, void *user)
{
    struct app *app = user;
    struct job *j = malloc(sizeof(*j));
    int r = j ? 0 : -ENOMEM;
    if (j) {
        *j = (struct job){.app = app, .id = id};
        knit_task_opts o = {.name = "event"};
        r = knit_handle_spawn(app->h, &o, handle_event, j);
        if (r != 0)
            free(j);
    }
    if (r != 0)
        app->refused++;
}

static int main_task(void *arg)
{
    (void)arg;
    struct app app = {.h = knit_handle_get(),
                      .done = knit_chan_new(sizeof(int), EVENTS)};
    if (!app.h || !app.done)
        return -ENOMEM;
    struct lib lib = {.cb = on_event, .user = &app};
    if (pthread_create(&lib.thread, NULL, lib_thread, &lib) != 0)
        return -EAGAIN;
    /* Tasks finish in an order the library's thread decides (when each
     * event arrived), so the ids are collected and printed in order. */
    int handled[EVENTS + 1] = {0};
    for (int n = 0; n < EVENTS; n++) {
        int id;
        int r = knit_chan_recv(app.done, &id);
        if (r < 0)
            return r;
        if (id < 1 || id > EVENTS)
            return -EPROTO;
        handled[id]++;
    }
    for (int id = 1; id <= EVENTS; id++)
        printf("event %d handled %d time(s)\n", id, handled[id]);
    /* Every event was handled, so the library's thread has made its
     * last call: joining it does not hold the worker. */
    pthread_join(lib.thread, NULL);
    printf("%d events, %d refused\n", EVENTS, app.refused);
    knit_chan_unref(app.done);
    knit_handle_unref(app.h);
    return 0;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL;
    int r = knit_run(&cfg, main_task, NULL);
    if (r != 0) {
        fprintf(stderr, "spawn_from_thread: %d\n", r);
        return 1;
    }
    return 0;
}
