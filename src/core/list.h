// SPDX-License-Identifier: MIT
/*
 * Intrusive circular doubly linked list (libuv queue.h shape, kernel
 * list_del_init semantics). A node that is not on any list points to
 * itself, so removing a node twice is safe and knit_list_is_linked() tells
 * whether a node is on a list.
 */
#ifndef KNIT_CORE_LIST_H
#define KNIT_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct knit_list {
    struct knit_list *next; /* following node, or the head itself */
    struct knit_list *prev; /* preceding node, or the head itself */
};

#define knit_container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

/* Makes @n an empty list head (or an unlinked node). */
static inline void knit_list_init(struct knit_list *n)
{
    n->next = n->prev = n;
}

static inline bool knit_list_is_empty(const struct knit_list *head)
{
    return head->next == head;
}

/* True when @n is on a list. A zeroed node counts as unlinked too. */
static inline bool knit_list_is_linked(const struct knit_list *n)
{
    return n->next != NULL && n->next != n;
}

/* before: head <-> a <-> ... <-> z    after: head <-> a <-> ... <-> z <-> n */
static inline void knit_list_push_back(struct knit_list *head,
                                       struct knit_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* before: head <-> a ...    after: head <-> n <-> a ... */
static inline void knit_list_push_front(struct knit_list *head,
                                        struct knit_list *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

/* Inserts @n after @pos. */
static inline void knit_list_insert_after(struct knit_list *pos,
                                          struct knit_list *n)
{
    knit_list_push_front(pos, n);
}

/* Unlinks @n and leaves it pointing to itself; safe on an unlinked node. */
static inline void knit_list_remove(struct knit_list *n)
{
    if (n->next == NULL) {
        knit_list_init(n);
        return;
    }
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Removes and returns the first node, or NULL when the list is empty. */
static inline struct knit_list *knit_list_pop_front(struct knit_list *head)
{
    struct knit_list *n = head->next;
    if (n == head)
        return NULL;
    knit_list_remove(n);
    return n;
}

/* Moves every node of @from to the end of @to; @from becomes empty. */
static inline void knit_list_splice_back(struct knit_list *to,
                                         struct knit_list *from)
{
    if (knit_list_is_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    knit_list_init(from);
}

#define knit_list_for_each(it, head)                                           \
    for ((it) = (head)->next; (it) != (head); (it) = (it)->next)

/* Iterates where the body may remove @it. */
#define knit_list_for_each_safe(it, tmp, head)                                 \
    for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head);              \
         (it) = (tmp), (tmp) = (it)->next)

#endif
