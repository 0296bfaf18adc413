// SPDX-License-Identifier: MIT
/*
 * knit_token (knit/sync.h): a tree of cancellation tokens, each with a
 * cancelled flag and a queue of waiters (which may include knit_select
 * token cases, see sync.h).
 *
 * The tree is intrusive: a token holds a list of its children and sits on
 * its parent's list through its sibling link, so building it allocates
 * nothing, and knit_token_destroy() must unlink a token before its storage
 * goes away. Invariant: the descendants of a cancelled token are all
 * cancelled (cancel walks down; a child of a cancelled parent starts
 * cancelled; destroy moves children to their grandparent, which is
 * cancelled only if the destroyed token was). So knit_token_cancel() can
 * skip any subtree whose root is already cancelled, and it walks the tree
 * iteratively (down to children, across to siblings, up through parents),
 * so a deep chain of tokens cannot overflow a task's small stack.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 */
#include <errno.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "knit/scope.h"
#include "sync/sync.h"

struct token {
    struct token *parent;      /* NULL for a root */
    struct knit_list children; /* token.sibling of each child */
    struct knit_list sibling;  /* on parent->children */
    struct knit_list waiters;  /* knit_waiter.link of tasks in wait */
    bool cancelled;            /* final once set */
};

_Static_assert(sizeof(knit_token) >= sizeof(struct token), "grow");

static inline struct token *impl(knit_token *t)
{
    return (struct token *)(void *)t;
}

static inline struct token *of_sibling(struct knit_list *n)
{
    return knit_container_of(n, struct token, sibling);
}

/* Links the new token @x under @p (rt lock: @p is shared). */
static void adopt(struct token *p, struct token *x)
{
    knit_list_push_back(knit__wq_lazy(&p->children), &x->sibling);
    x->parent = p;
    x->cancelled = p->cancelled;
}

void knit_token_init(knit_token *t, knit_token *parent)
{
    struct token *x = impl(t);
    memset(x, 0, sizeof(*x));
    knit_list_init(&x->children);
    knit_list_init(&x->sibling);
    knit_list_init(&x->waiters);
    if (parent)
        KNIT_LOCKED_VOID(adopt(impl(parent), x));
}

/* The first child of @x not yet cancelled, or NULL. */
static struct token *first_live_child(struct token *x)
{
    struct knit_list *n;
    if (!x->children.next)
        return NULL;
    knit_list_for_each(n, &x->children)
    {
        if (!of_sibling(n)->cancelled)
            return of_sibling(n);
    }
    return NULL;
}

/* The first sibling after @x (which has a parent) not yet cancelled. */
static struct token *next_live_sibling(struct token *x)
{
    struct knit_list *head = &x->parent->children;
    for (struct knit_list *n = x->sibling.next; n != head; n = n->next) {
        if (!of_sibling(n)->cancelled)
            return of_sibling(n);
    }
    return NULL;
}

static void cancel(struct token *root)
{
    struct token *x = root;
    if (root->cancelled)
        return;
    for (;;) {
        /* Visit x: not cancelled yet, nor are its descendants. */
        x->cancelled = true;
        if (x->waiters.next)
            knit__wq_wake_all(&x->waiters, 0);
        struct token *next = first_live_child(x);
        while (!next && x != root) {
            next = next_live_sibling(x);
            if (!next)
                x = x->parent;
        }
        if (!next)
            return;
        x = next;
    }
}

void knit_token_cancel(knit_token *t)
{
    KNIT_LOCKED_VOID(cancel(impl(t)));
}

bool knit__token_is_cancelled(const knit_token *t)
{
    return ((const struct token *)(const void *)t)->cancelled;
}

bool knit_token_is_cancelled(const knit_token *t)
{
    return KNIT_LOCKED(knit__token_is_cancelled(t));
}

void knit__token_enqueue(knit_token *t, struct knit_waiter *w)
{
    knit_list_push_back(knit__wq_lazy(&impl(t)->waiters), &w->link);
}

static int token_wait(knit_token *t)
{
    struct knit_task *self = knit__task();
    if (knit_unlikely(!self))
        knit__panic("knit_token_wait called outside a task");
    int err = knit__scope_err(self);
    if (knit_unlikely(err))
        return err;
    if (impl(t)->cancelled)
        return 0;
    struct knit_waiter w;
    knit__waiter_init(&w, "token", t, knit__waiter_unlink);
    knit__token_enqueue(t, &w);
    return knit__wait(&w);
}

int knit_token_wait(knit_token *t)
{
    return KNIT_LOCKED(token_wait(t));
}

static void destroy(struct token *x)
{
    if (knit_unlikely(x->waiters.next && !knit_list_is_empty(&x->waiters)))
        knit__panic("knit_token_destroy of a token that tasks wait on");
    struct knit_list *n;
    while (x->children.next &&
           (n = knit_list_pop_front(&x->children)) != NULL) {
        struct token *c = of_sibling(n);
        c->parent = x->parent;
        if (x->parent)
            knit_list_push_back(&x->parent->children, &c->sibling);
    }
    knit_list_remove(&x->sibling);
    x->parent = NULL;
}

void knit_token_destroy(knit_token *t)
{
    KNIT_LOCKED_VOID(destroy(impl(t)));
}

/* ---- scopes linked to a token (knit/scope.h) ------------------------- */

static void token_fired(struct knit_waiter *w, int result)
{
    (void)result;
    struct knit_scope_user *u =
        knit_container_of(w, struct knit_scope_user, token_w);
    u->s.token_linked = false; /* the token unlinked it */
    knit__scope_fire(&u->s, -ECANCELED);
}

/* Under the lock: a cancel on another worker may fire token_w at once,
 * and knit_scope_exit unlinks it under the lock too. */
static void link_token(struct knit_scope_user *u, struct knit_token *tok)
{
    struct knit_scope_impl *x = &u->s;
    if (x->token_linked)
        knit__panic("knit_scope_link_token: the scope is linked already");
    if (knit__token_is_cancelled(tok)) {
        knit__scope_fire(x, -ECANCELED);
        return;
    }
    knit__waiter_init(&u->token_w, "scope token", tok, knit__waiter_unlink);
    u->token_w.wake_fn = token_fired;
    x->token_linked = true;
    knit__token_enqueue(tok, &u->token_w);
}

void knit_scope_link_token(knit_scope *s, struct knit_token *tok)
{
    KNIT_LOCKED_VOID(link_token((struct knit_scope_user *)(void *)s, tok));
}
