// SPDX-License-Identifier: MIT
/*
 * Links and title of an HTML page (html.h), on libxml2's HTML parser.
 *
 * The body is parsed into a tree (recovery mode, no network, no output),
 * then walked twice: once for the first <base href> and the first <title>,
 * once for the links, since a <base> applies to links before it too. The
 * walks follow the parent and next pointers instead of recursing, so the
 * depth of the markup costs no stack. A small open-addressing set of the
 * URLs reported so far, seeded with the page's own URL, drops duplicates
 * and self-links while the callbacks keep document order.
 *
 * Divisions: the seen-set; preparing the body; the tree walk; the title;
 * the parse (options, error silencing, the two walks); the public
 * functions.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/encoding.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "html.h"
#include "url.h"

/* ---- the seen-set -------------------------------------------------------- */

/* The URLs reported for one page: open addressing, linear probing. */
struct seen {
    char **slots; /* cap entries, each NULL or a malloc'd URL */
    size_t cap;   /* a power of two, or 0 before the first add */
    size_t count; /* URLs held; kept at most cap / 2 so probes stay short */
};

/* FNV-1a: short URLs differ in their last bytes, which it mixes well. */
static uint64_t hash_url(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;

    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 0x100000001b3u;
    }
    return h;
}

/* Puts url (owned by the set) in the first free slot of its probe run. */
static void seen_place(char **slots, size_t cap, char *url)
{
    size_t i = hash_url(url) & (cap - 1);

    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = url;
}

static int seen_grow(struct seen *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    char **slots = calloc(cap, sizeof *slots);

    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i])
            seen_place(slots, cap, s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* Return: 1 if url was added, 0 if it was there already; -ENOMEM. */
static int seen_add(struct seen *s, const char *url)
{
    size_t i;
    char *copy;

    if (2 * (s->count + 1) > s->cap) {
        int err = seen_grow(s);

        if (err)
            return err;
    }
    for (i = hash_url(url) & (s->cap - 1); s->slots[i];
         i = (i + 1) & (s->cap - 1))
        if (strcmp(s->slots[i], url) == 0)
            return 0;
    copy = strdup(url);
    if (!copy)
        return -ENOMEM;
    s->slots[i] = copy;
    s->count++;
    return 1;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
}

/* ---- preparing the body -------------------------------------------------- */

/*
 * libxml2 2.9 ends the document at the first NUL byte, so a body with
 * NULs is copied with each one replaced by U+FFFD (what the HTML standard's
 * tokenizer makes of most of them). UTF-16 and UCS-4 bodies are full of
 * NULs that are halves of characters, and are left alone. On return
 * *text and *n are what to parse: body itself, or *copy (to be freed).
 */
static int prepare(const char *body, size_t len, char **copy, const char **text,
                   size_t *n)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    size_t nuls = 0;
    xmlCharEncoding enc;
    char *w;

    *copy = NULL;
    *text = body;
    *n = len < INT_MAX ? len : INT_MAX;
    if (!memchr(body, '\0', *n))
        return 0;
    enc = xmlDetectCharEncoding((const unsigned char *)body,
                                *n < 4 ? (int)*n : 4);
    switch (enc) {
    case XML_CHAR_ENCODING_UTF16LE:
    case XML_CHAR_ENCODING_UTF16BE:
    case XML_CHAR_ENCODING_UCS4LE:
    case XML_CHAR_ENCODING_UCS4BE:
    case XML_CHAR_ENCODING_UCS4_2143:
    case XML_CHAR_ENCODING_UCS4_3412:
        return 0;
    default:
        break;
    }
    for (size_t i = 0; i < *n; i++)
        nuls += body[i] == '\0';
    w = malloc(*n + 2 * nuls);
    if (!w)
        return -ENOMEM;
    *copy = w;
    *text = w;
    for (size_t i = 0; i < *n; i++) {
        if (body[i] == '\0') {
            memcpy(w, fffd, 3);
            w += 3;
        } else {
            *w++ = body[i];
        }
    }
    *n = (size_t)(w - *copy);
    if (*n > INT_MAX)
        *n = INT_MAX; /* the parser takes an int; the tail is dropped */
    return 0;
}

/* ---- the tree walk ------------------------------------------------------- */

/*
 * The node after n in document order. Only elements are descended into:
 * nothing else in an HTML tree holds links, and the children of some
 * other node types (entity references) are shared, not owned.
 */
static xmlNode *next_node(xmlNode *n)
{
    if (n->type == XML_ELEMENT_NODE && n->children)
        return n->children;
    while (!n->next) {
        n = n->parent;
        if (!n || n->type != XML_ELEMENT_NODE)
            return NULL; /* back at the document node */
    }
    return n->next;
}

static bool is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->name &&
           xmlStrcasecmp(n->name, (const xmlChar *)name) == 0;
}

/* ---- the title ----------------------------------------------------------- */

/* The length of the UTF-8 sequence that lead byte c starts (1 if bad). */
static size_t utf8_length(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7)
        return 4;
    if (c >= 0xE0)
        return c <= 0xEF ? 3 : 1;
    if (c >= 0xC0)
        return 2;
    return 1;
}

static bool is_html_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/*
 * Copies s into dst (cap bytes) with each run of whitespace made one
 * space and none at either end, stopping before the first character that
 * would not fit whole.
 */
static void copy_title(char *dst, size_t cap, const char *s)
{
    size_t w = 0;
    bool space = false; /* whitespace seen since the last character */

    while (*s) {
        size_t k;

        if (is_html_space((unsigned char)*s)) {
            space = w > 0;
            s++;
            continue;
        }
        k = strnlen(s, utf8_length((unsigned char)*s));
        if (w + space + k >= cap)
            break;
        if (space)
            dst[w++] = ' ';
        space = false;
        memcpy(dst + w, s, k);
        w += k;
        s += k;
    }
    dst[w] = '\0';
}

/* ---- the parse ----------------------------------------------------------- */

/*
 * XML_PARSE_HUGE lifts libxml2's nesting limit of 256 elements, past which
 * it stops parsing: tag soup with unclosed <font> or <div> goes deeper than
 * that. The HTML parser, tree building and freeing are iterative, so depth
 * costs heap, not stack (tested to 400,000 levels), and memory stays
 * linear in the body, whose size the caller caps.
 */
enum {
    PARSE_OPTIONS = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                    HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                    HTML_PARSE_COMPACT | XML_PARSE_HUGE,
};

/* Swallows what libxml2 reports outside a parser context (charsets, I/O). */
static void silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

/* The first <base href> and <title> of the document into base and info. */
static void read_head(xmlDoc *doc, const char *self, char *base,
                      struct crawl_page_info *info)
{
    bool have_base = false;
    bool have_title = false;

    snprintf(base, CRAWL_URL_MAX, "%s", self);
    for (xmlNode *n = doc->children; n && !(have_base && have_title);
         n = next_node(n)) {
        if (!have_base && is_element(n, "base")) {
            xmlChar *href = xmlGetNoNsProp(n, (const xmlChar *)"href");

            if (href) {
                /* A base that does not resolve leaves the page's URL. */
                if (crawl_url_resolve(self, (const char *)href, base,
                                      CRAWL_URL_MAX) != 0)
                    snprintf(base, CRAWL_URL_MAX, "%s", self);
                have_base = true;
                xmlFree(href);
            }
        } else if (!have_title && is_element(n, "title")) {
            xmlChar *text = xmlNodeGetContent(n);

            if (text)
                copy_title(info->title, sizeof info->title, (const char *)text);
            have_title = true;
            xmlFree(text);
        }
    }
}

/* Reports each new link of the document. Return: 0; -ENOMEM. */
static int read_links(xmlDoc *doc, const char *base, struct seen *seen,
                      void (*on_link)(void *ctx, const char *url), void *ctx,
                      struct crawl_page_info *info)
{
    char url[CRAWL_URL_MAX];

    for (xmlNode *n = doc->children; n; n = next_node(n)) {
        xmlChar *href;
        int added = 0;

        if (!is_element(n, "a") && !is_element(n, "area"))
            continue;
        href = xmlGetNoNsProp(n, (const xmlChar *)"href");
        if (!href)
            continue;
        if (crawl_url_resolve(base, (const char *)href, url, sizeof url) == 0)
            added = seen_add(seen, url);
        xmlFree(href);
        if (added < 0)
            return added;
        if (added) {
            info->links++;
            if (on_link)
                on_link(ctx, url);
        }
    }
    return 0;
}

/* ---- the public functions ------------------------------------------------ */

void crawl_html_init(void)
{
    LIBXML_TEST_VERSION
    xmlInitParser();
}

int crawl_html_links(const char *body, size_t len, const char *page_url,
                     void (*on_link)(void *ctx, const char *url), void *ctx,
                     struct crawl_page_info *info)
{
    struct crawl_page_info scratch;
    char self[CRAWL_URL_MAX];
    char base[CRAWL_URL_MAX];
    struct seen seen = {0};
    xmlGenericErrorFunc old_handler;
    void *old_handler_ctx;
    const char *text;
    char *copy;
    size_t n;
    xmlDoc *doc;
    int err;

    if (!info)
        info = &scratch;
    memset(info, 0, sizeof *info);
    if (crawl_url_normalize(page_url, self, sizeof self) != 0)
        return -EINVAL;
    if (len == 0)
        return 0;
    err = prepare(body, len, &copy, &text, &n);
    if (err)
        return err;

    /* The handler is per thread in libxml2; it is back before we return. */
    old_handler = xmlGenericError;
    old_handler_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, silent);

    doc = htmlReadMemory(text, (int)n, NULL, NULL, PARSE_OPTIONS);
    free(copy);
    if (!doc) {
        err = -EINVAL;
        goto out_restore_handler;
    }
    read_head(doc, self, base, info);
    /* The page itself goes in first, never to be reported. */
    err = seen_add(&seen, self);
    if (err >= 0)
        err = read_links(doc, base, &seen, on_link, ctx, info);
    seen_free(&seen);
    xmlFreeDoc(doc);
out_restore_handler:
    xmlSetGenericErrorFunc(old_handler_ctx, old_handler);
    return err;
}
