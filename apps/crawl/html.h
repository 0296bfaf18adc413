/* SPDX-License-Identifier: MIT */
/*
 * html.h - links and title of an HTML page, for knit-crawl.
 *
 * The body is parsed with libxml2's HTML parser in recovery mode, so tag
 * soup, unclosed elements and truncated bodies still give their links, and
 * garbage gives few or none but never a crash. Links are taken from
 * <a href> and <area href> in document order, resolved against the page's
 * base URL and normalised with crawl_url_resolve() (url.h). The base URL is
 * the first <base href> of the document, itself resolved against the
 * page's URL, wherever it sits; otherwise the page's URL.
 *
 * What is reported, once per page:
 *  - each distinct link once, at its first occurrence;
 *  - not links equal to the page itself (after normalisation): "#top",
 *    "", "?" on a page with an empty query, and so on, since the crawler
 *    has that page already. A link to the <base href> URL is reported if
 *    that URL is not the page's;
 *  - not references that do not resolve to an http(s) URL (mailto:,
 *    javascript:, data:, tel:, malformed ones or ones longer than
 *    CRAWL_URL_MAX - 1 bytes);
 *  - rel="nofollow" links are reported like the others: nofollow is a
 *    ranking hint, not a crawling rule, and robots.txt is what forbids.
 *
 * Charset: libxml2 picks the encoding from a byte-order mark or a <meta>
 * charset, else reads UTF-8 and falls back to ISO-8859-1 on the first
 * invalid byte. Titles and links come out as UTF-8 (links then
 * percent-encoded). A body whose bytes are invalid in its declared charset
 * is parsed only up to the first bad byte (libxml2 2.9 stops there). NUL
 * bytes are read as U+FFFD, as the HTML standard's tokenizer does, except in
 * UTF-16 and UCS-4 bodies (libxml2 would otherwise stop at the first one).
 *
 * Size: there is no nesting limit (libxml2's 256 is lifted, see html.c)
 * and no limit on the size of a text node, so time and memory are linear
 * in the body's size: the caller caps the body it fetches (a few MiB is
 * plenty for links).
 *
 * Threads: call crawl_html_init() once, from the main thread, before any
 * thread parses; crawl_html_links() is then safe from any number of threads
 * at once. It never prints: libxml2's per-thread generic error handler is
 * swapped for a silent one for the duration of each call, then restored.
 * It ran within a 32 KiB thread stack in tests, but it is CPU-bound
 * (milliseconds for a large page), so a crawler should run it in the
 * blocking pool rather than on a runtime worker.
 */
#ifndef CRAWL_HTML_H
#define CRAWL_HTML_H

#include <stddef.h>

/* What crawl_html_links() learnt about a page besides its links. */
struct crawl_page_info {
    char title[256]; /* the first <title>: entities decoded, whitespace runs
                        collapsed to one space, trimmed, cut at a UTF-8
                        character boundary; "" if none */
    int links;       /* on_link calls made */
};

/**
 * crawl_html_init() - prepare libxml2 for use from several threads.
 *
 * Call once at startup, from the main thread, before any thread calls
 * crawl_html_links(). Calling it again does nothing.
 */
void crawl_html_init(void);

/**
 * crawl_html_links() - report the links of an HTML page.
 * @body:     the body, @len bytes of anything, NULs included; not modified.
 *            NULL is allowed when @len is 0.
 * @len:      its length; bytes past INT_MAX are ignored.
 * @page_url: the page's final URL, after redirects, read leniently as by
 *            crawl_url_normalize().
 * @on_link:  called with @ctx and each distinct absolute, normalised link,
 *            in document order (see the top of this file); the string is
 *            valid only during the call. NULL: only count them.
 * @ctx:      passed to @on_link.
 * @info:     receives the title and the link count; may be NULL. Filled in
 *            even on error (as far as the parse went).
 *
 * An empty body is an empty page: 0 and no links.
 * Return: 0; -EINVAL if @page_url is not an absolute http(s) URL or the
 * body could not be parsed at all; -ENOMEM (some links may have been
 * reported already).
 */
int crawl_html_links(const char *body, size_t len, const char *page_url,
                     void (*on_link)(void *ctx, const char *url), void *ctx,
                     struct crawl_page_info *info);

#endif
