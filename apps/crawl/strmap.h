/* SPDX-License-Identifier: MIT */
/*
 * A string-keyed hash map (open addressing, linear probing, power-of-two
 * capacity, at most half full). Keys are copied; values are opaque
 * pointers. Used as the crawler's seen-set (value unused) and its host
 * table. No removal: a crawl only ever adds.
 */
#ifndef CRAWL_STRMAP_H
#define CRAWL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap {
    char **keys;
    void **vals;
    size_t cap; /* slots, a power of two, or 0 */
    size_t len; /* keys stored */
};

/* The value stored under @key, or NULL (also when the value is NULL). */
void *strmap_get(const struct strmap *m, const char *key);

/* Whether @key is present. */
bool strmap_has(const struct strmap *m, const char *key);

/* Store @val under @key. Returns 1 when @key was new, 0 when it was
 * present (its value is replaced), -ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *val);

/* Call fn(ctx, key, val) for every entry, in no particular order. */
void strmap_each(const struct strmap *m,
                 void (*fn)(void *ctx, const char *key, void *val),
                 void *ctx);

/* Free the keys and the table (not the values). */
void strmap_free(struct strmap *m);

#endif
