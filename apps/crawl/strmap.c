// SPDX-License-Identifier: MIT
/* The string map of strmap.h: FNV-1a hashing, linear probing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

/* The slot holding @key, or the empty slot where it would go. Needs a
 * table with at least one empty slot (the load factor guarantees it). */
static size_t slot(char **keys, size_t cap, const char *key)
{
    size_t i = (size_t)hash(key) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = slot(m->keys, m->cap, key);
    return m->keys[i] ? m->vals[i] : NULL;
}

bool strmap_has(const struct strmap *m, const char *key)
{
    return m->cap && m->keys[slot(m->keys, m->cap, key)];
}

static int grow(struct strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = calloc(cap, sizeof(*keys));
    void **vals = calloc(cap, sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i]) {
            size_t j = slot(keys, cap, m->keys[i]);
            keys[j] = m->keys[i];
            vals[j] = m->vals[i];
        }
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int strmap_put(struct strmap *m, const char *key, void *val)
{
    if ((m->len + 1) * 2 > m->cap && grow(m) < 0)
        return -ENOMEM;
    size_t i = slot(m->keys, m->cap, key);
    if (m->keys[i]) {
        m->vals[i] = val;
        return 0;
    }
    if (!(m->keys[i] = strdup(key)))
        return -ENOMEM;
    m->vals[i] = val;
    m->len++;
    return 1;
}

void strmap_each(const struct strmap *m,
                 void (*fn)(void *ctx, const char *key, void *val), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            fn(ctx, m->keys[i], m->vals[i]);
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}
