// SPDX-License-Identifier: MIT
/*
 * Links and titles of HTML pages (apps/crawl/html.h): resolution against
 * the page URL and <base href>, deduplication in first-seen order, the
 * links that are skipped (the page itself, mailto:, javascript:, bad
 * ones), which elements count, title decoding and trimming, charsets,
 * broken markup, NUL bytes, random garbage (with nothing printed on
 * stderr), deep nesting, many links, parses from several threads at once
 * and the edge cases of the arguments.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "html.h"
#include "url.h"

/* The links reported for one page. */
struct links {
    char *url[16384]; /* malloc'd copies, in callback order */
    int n;
};

static void collect(void *ctx, const char *url)
{
    struct links *l = ctx;

    assert_true(l->n < (int)(sizeof l->url / sizeof l->url[0]));
    l->url[l->n] = strdup(url);
    assert_non_null(l->url[l->n]);
    l->n++;
}

static void links_free(struct links *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->url[i]);
    l->n = 0;
}

/*
 * Parses len bytes of body fetched from page and checks that the links
 * reported are exactly want[] (NULL-terminated), in order. Returns the
 * title, valid until the next call.
 */
static const char *check_body(const char *body, size_t len, const char *page,
                              const char *const *want)
{
    static struct links l; /* too big for the stack */
    static struct crawl_page_info info;
    int n = 0;

    assert_int_equal(crawl_html_links(body, len, page, collect, &l, &info), 0);
    for (; want[n]; n++) {
        if (n >= l.n)
            fail_msg("link %d missing, want %s", n, want[n]);
        if (strcmp(l.url[n], want[n]) != 0)
            fail_msg("link %d is %s, want %s", n, l.url[n], want[n]);
    }
    if (l.n != n)
        fail_msg("%d links, want %d; extra: %s", l.n, n, l.url[n]);
    assert_int_equal(info.links, n);
    links_free(&l);
    return info.title;
}

static void check_links(const char *body, const char *page,
                        const char *const *want)
{
    check_body(body, strlen(body), page, want);
}

static const char *title_of(const char *body)
{
    static struct crawl_page_info info;

    assert_int_equal(
        crawl_html_links(body, strlen(body), "http://h/", NULL, NULL, &info),
        0);
    return info.title;
}

/* ---- resolution ---------------------------------------------------------- */

static void relative_links_resolve_against_the_page_url(void **state)
{
    (void)state;
    check_links("<a href=x>1</a><a href='../y?q=1'>2</a>"
                "<a href=\"/z#frag\">3</a><a href=//other:8080/w>4</a>"
                "<a href=HTTPS://Ext.Example/>5</a>",
                "http://h/dir/page.html",
                (const char *const[]){"http://h/dir/x", "http://h/y?q=1",
                                      "http://h/z", "http://other:8080/w",
                                      "https://ext.example/", NULL});
}

static void base_href_is_honoured(void **state)
{
    (void)state;
    check_links("<head><base href='http://b.example/dir/'></head>"
                "<a href=x>1</a><a href=/y>2</a>",
                "http://h/p/q",
                (const char *const[]){"http://b.example/dir/x",
                                      "http://b.example/y", NULL});
}

static void relative_base_href_resolves_against_the_page_url(void **state)
{
    (void)state;
    check_links("<base href='../other/'><a href=x>1</a>", "http://h/a/b/c",
                (const char *const[]){"http://h/a/other/x", NULL});
}

static void only_the_first_base_counts_even_for_earlier_links(void **state)
{
    (void)state;
    check_links(
        "<a href=x>before</a><base href='/one/'><base href='/two/'>"
        "<a href=y>after</a>",
        "http://h/p",
        (const char *const[]){"http://h/one/x", "http://h/one/y", NULL});
    /* A <base> with no href does not count; one that fails is ignored. */
    check_links("<base target=_top><base href='javascript:x'>"
                "<base href='/no/'><a href=x>1</a>",
                "http://h/p/q", (const char *const[]){"http://h/p/x", NULL});
}

static void a_link_to_the_base_itself_is_reported(void **state)
{
    (void)state;
    check_links("<base href='http://h/b/'><a href='#top'>1</a>",
                "http://h/page", (const char *const[]){"http://h/b/", NULL});
}

/* ---- what is reported ---------------------------------------------------- */

static void duplicates_are_reported_once_in_first_seen_order(void **state)
{
    (void)state;
    check_links(
        "<a href=b>1</a><a href=a>2</a><a href=./b>3</a>"
        "<a href='b#x'>4</a><a href='%62'>5</a><a href=c>6</a>"
        "<a href='http://H:80/b'>7</a><a href=a>8</a>",
        "http://h/",
        (const char *const[]){"http://h/b", "http://h/a", "http://h/c", NULL});
}

static void links_to_the_page_itself_are_skipped(void **state)
{
    (void)state;
    check_links("<a href='#top'>1</a><a href=''>2</a><a href='p?q#x'>3</a>"
                "<a href='http://H/d/p?q'>4</a><a href=p>5</a>"
                "<a href='?'>6</a>",
                "http://h/d/p?q#frag",
                (const char *const[]){"http://h/d/p", "http://h/d/p?", NULL});
}

static void mailto_javascript_and_bad_links_are_skipped(void **state)
{
    (void)state;
    check_links("<a href='mailto:a@b.c'>1</a>"
                "<a href='javascript:void(0)'>2</a>"
                "<a href='  JavaScript:alert(1)'>3</a>"
                "<a href='tel:+100'>4</a><a href='data:text/html,x'>5</a>"
                "<a href='ftp://f/x'>6</a><a href='http://'>7</a>"
                "<a href='http://h:99999/'>8</a>"
                "<a href='http://u:p@h/'>9</a><a href=ok>10</a>",
                "http://h/", (const char *const[]){"http://h/ok", NULL});
}

static void area_is_a_link_and_other_elements_are_not(void **state)
{
    (void)state;
    check_links(
        "<link href=style.css rel=stylesheet><img src=i.png>"
        "<script src=s.js></script><a name=anchor>no href</a>"
        "<map><area href=area shape=rect></map>"
        "<iframe src=f.html></iframe><form action=post></form>"
        "<a href=nofollow rel=nofollow>kept</a>",
        "http://h/",
        (const char *const[]){"http://h/area", "http://h/nofollow", NULL});
}

static void href_values_are_decoded_and_trimmed(void **state)
{
    (void)state;
    check_links("<a href='a?x=1&amp;y=2'>1</a><a href=' \n b c \t'>2</a>"
                "<a href='caf&eacute;'>3</a>",
                "http://h/",
                (const char *const[]){"http://h/a?x=1&y=2", "http://h/b%20c",
                                      "http://h/caf%C3%A9", NULL});
}

/* ---- titles -------------------------------------------------------------- */

static void title_is_decoded_collapsed_and_empty_if_missing(void **state)
{
    (void)state;
    assert_string_equal(title_of("<title>\n  Fish &amp;\t Chips &lt;3 "
                                 "&#x263A;\r\n</title>"),
                        "Fish & Chips <3 \xe2\x98\xba");
    assert_string_equal(title_of("<title>first</title><title>second</title>"),
                        "first");
    assert_string_equal(title_of("<title> \n </title>"), "");
    assert_string_equal(title_of("<p>no title here</p>"), "");
}

static void a_long_title_is_cut_at_a_character_boundary(void **state)
{
    char body[2048] = "<title>";
    size_t n = strlen(body);
    const char *title;

    (void)state;
    /* 253 ASCII bytes, then 2-byte characters: the first one fits whole,
     * the second one would need bytes 256 and 257. */
    memset(body + n, 'x', 253);
    n += 253;
    for (int i = 0; i < 100; i++) {
        memcpy(body + n, "\xc3\xa9", 2);
        n += 2;
    }
    strcpy(body + n, "</title>");
    title = title_of(body);
    assert_int_equal(strlen(title), 255);
    assert_memory_equal(title + 253, "\xc3\xa9", 2);
}

/* ---- charsets and bad input ---------------------------------------------- */

static void declared_charsets_are_decoded_to_utf8(void **state)
{
    /* "caf\xe9" in ISO-8859-1 is "café"; its UTF-8 bytes get encoded. */
    static const char latin1[] =
        "<meta charset=iso-8859-1>"
        "<title>caf\xe9</title><a href='caf\xe9'>x</a>";
    /* UTF-16LE with a byte-order mark: NULs everywhere, left alone. */
    static const char utf16[] = "\xff\xfe<\0a\0 \0h\0r\0e\0f\0=\0x\0>\0";

    (void)state;
    assert_string_equal(
        check_body(latin1, sizeof latin1 - 1, "http://h/",
                   (const char *const[]){"http://h/caf%C3%A9", NULL}),
        "caf\xc3\xa9");
    check_body(utf16, sizeof utf16 - 1, "http://h/",
               (const char *const[]){"http://h/x", NULL});
}

static void broken_markup_still_yields_links(void **state)
{
    (void)state;
    /*
     * Upper case, unclosed and stray end tags. In "<a href='four' <a
     * href=five>" the second href is a duplicate attribute of the first
     * tag and is dropped, as browsers do; a tag cut off by the end of the
     * body still counts (browsers would drop it; harmless here).
     */
    check_links("<HTML><BODY><P>unclosed <A HREF=one>1<div><a href=two>2"
                "<table><tr><td><a href=\"three\">3</table></b></i></p>"
                "<a href='four' <a href=five>5</a><a href=six",
                "http://h/",
                (const char *const[]){"http://h/one", "http://h/two",
                                      "http://h/three", "http://h/four",
                                      "http://h/six", NULL});
    /* A body cut inside an attribute value: libxml2 keeps what it has. */
    check_links("<a href=ok>x</a><a href='cut", "http://h/",
                (const char *const[]){"http://h/ok", "http://h/cut", NULL});
}

static void nul_bytes_do_not_end_the_document(void **state)
{
    static const char body[] = "<a href=a>1</a>\0\0<a href=b\0c>2</a>"
                               "<title>t\0t</title><a href=d>3</a>";

    (void)state;
    /* Each NUL is read as U+FFFD, which is then percent-encoded. */
    assert_string_equal(
        check_body(body, sizeof body - 1, "http://h/",
                   (const char *const[]){"http://h/a", "http://h/b%EF%BF%BDc",
                                         "http://h/d", NULL}),
        "t\xef\xbf\xbdt");
}

/* A deterministic generator (xorshift64), so failures reproduce. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Every URL a parse reports must be a normalised http(s) URL. */
static void check_normalised(void *ctx, const char *url)
{
    char again[CRAWL_URL_MAX];

    (*(int *)ctx)++;
    assert_int_equal(crawl_url_normalize(url, again, sizeof again), 0);
    assert_string_equal(url, again);
}

/* stderr sent to a temporary file while a test runs. */
struct capture {
    FILE *file; /* where fd 2 points meanwhile */
    int saved;  /* the real stderr */
};

static void capture_stderr(struct capture *c)
{
    c->file = tmpfile();
    c->saved = dup(STDERR_FILENO);
    assert_non_null(c->file);
    assert_true(c->saved >= 0);
    fflush(stderr);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns how many bytes were written meanwhile. */
static long captured_bytes(struct capture *c)
{
    struct stat st;

    fflush(stderr);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    assert_int_equal(fstat(fileno(c->file), &st), 0);
    fclose(c->file);
    return (long)st.st_size;
}

static void garbage_returns_without_crashing_or_printing(void **state)
{
    /* Markup fragments mixed with raw bytes, NULs, bad UTF-8 and charsets
     * that lie about the bytes. */
    static const char *const bits[] = {
        /* markup */
        "<a href=", "'", "\"", ">", "</a>", "<", "<!--", "-->",
        "<base href=", "<title>", "&amp;", "&#0;", "&#xFFFFFFF;", "<![CDATA[",
        "<?xml ?>", "<area href=",
        /* charsets and byte-order marks */
        "<meta charset=shift_jis>", "<meta charset=utf-16>", "\xff\xfe",
        "\xef\xbb\xbf",
        /* URL pieces */
        "javascript:", "//", "../", "#", "%"};
    static char body[8192];
    uint64_t seed = 0x2545f4914f6cdd1du;
    struct capture cap;

    (void)state;
    capture_stderr(&cap);

    for (int iter = 0; iter < 2000; iter++) {
        size_t len = next_random(&seed) % sizeof body;
        struct crawl_page_info info;
        int n = 0;
        int err;

        for (size_t i = 0; i < len;) {
            uint64_t r = next_random(&seed);
            const char *bit = bits[(r >> 8) % (sizeof bits / sizeof bits[0])];
            size_t k = strlen(bit);

            if (r % 3 == 0 && i + k <= len) {
                memcpy(body + i, bit, k);
                i += k;
            } else {
                body[i++] = (char)(r >> 32);
            }
        }
        err = crawl_html_links(body, len, "http://h.test/a/b", check_normalised,
                               &n, &info);
        assert_true(err == 0 || err == -EINVAL);
        assert_int_equal(info.links, n);
        assert_true(strlen(info.title) < sizeof info.title);
    }

    assert_int_equal(captured_bytes(&cap), 0);
}

static void links_nested_100000_deep_are_found(void **state)
{
    enum { DEPTH = 100000 };
    static char body[DEPTH * 5 + 64];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < DEPTH; i++) {
        memcpy(body + n, "<div>", 5);
        n += 5;
    }
    n += (size_t)sprintf(body + n, "<a href=deep>x</a>");
    /* Past libxml2's default limit of 256 levels, which is lifted. */
    check_body(body, n, "http://h/",
               (const char *const[]){"http://h/deep", NULL});
}

static void many_links_are_all_reported_once(void **state)
{
    enum { LINKS = 10000 };
    static char body[LINKS * 2 * 32];
    static struct links l;
    char want[64];
    size_t n = 0;

    (void)state;
    /* Each link twice, the second time in another spelling. */
    for (int i = 0; i < LINKS; i++)
        n += (size_t)sprintf(body + n, "<a href=p%d>.</a>", i);
    for (int i = 0; i < LINKS; i++)
        n += (size_t)sprintf(body + n, "<a href=./p%d#x>.</a>", i);
    assert_int_equal(crawl_html_links(body, n, "http://h/", collect, &l, NULL),
                     0);
    assert_int_equal(l.n, LINKS);
    for (int i = 0; i < LINKS; i++) {
        snprintf(want, sizeof want, "http://h/p%d", i);
        assert_string_equal(l.url[i], want);
    }
    links_free(&l);
}

/* Counts links; unlike cmocka's asserts, safe on any thread. */
static void count_link(void *ctx, const char *url)
{
    (void)url;
    (*(int *)ctx)++;
}

/* One thread's share of the concurrent test. */
struct worker {
    int links; /* summed over its parses */
    int bad;   /* parses whose title or count was wrong */
};

static void *parse_repeatedly(void *arg)
{
    /* A declared charset that lies about its bytes makes libxml2 report
     * through its per-thread generic handler. */
    static const char body[] = "<meta charset=shift_jis><title>T</title>"
                               "<a href=a>a</a><a href=b>b</a>\xff\xff";
    struct worker *w = arg;

    for (int i = 0; i < 500; i++) {
        struct crawl_page_info info;
        int n = 0;

        if (crawl_html_links(body, sizeof body - 1, "http://h/", count_link, &n,
                             &info) != 0 ||
            strcmp(info.title, "T") != 0 || info.links != n)
            w->bad++;
        w->links += n;
    }
    return NULL;
}

static void parses_from_four_threads_at_once_agree_silently(void **state)
{
    pthread_t t[4];
    struct worker w[4] = {{0}};
    struct capture cap;

    (void)state;
    capture_stderr(&cap);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, parse_repeatedly, &w[i]),
                         0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
        assert_int_equal(w[i].links, 2 * 500);
    }
    assert_int_equal(captured_bytes(&cap), 0);
}

/* ---- arguments ----------------------------------------------------------- */

static void an_empty_body_is_an_empty_page(void **state)
{
    struct crawl_page_info info;
    int n = 0;

    (void)state;
    memset(&info, 0x5a, sizeof info);
    assert_int_equal(
        crawl_html_links("", 0, "http://h/", check_normalised, &n, &info), 0);
    assert_int_equal(info.links, 0);
    assert_string_equal(info.title, "");
    assert_int_equal(crawl_html_links(NULL, 0, "http://h/", NULL, NULL, NULL),
                     0);
    /* Whitespace only is a page too, with nothing in it. */
    assert_int_equal(
        crawl_html_links(" \n", 2, "http://h/", check_normalised, &n, &info),
        0);
    assert_int_equal(n, 0);
}

static void a_bad_page_url_is_einval(void **state)
{
    static const char body[] = "<title>t</title><a href=x>x</a>";
    struct crawl_page_info info;
    int n = 0;

    (void)state;
    assert_int_equal(crawl_html_links(body, sizeof body - 1, "/relative",
                                      check_normalised, &n, &info),
                     -EINVAL);
    assert_int_equal(crawl_html_links(body, sizeof body - 1, "mailto:a@b",
                                      check_normalised, &n, &info),
                     -EINVAL);
    assert_int_equal(n, 0);
    assert_string_equal(info.title, "");
    assert_int_equal(info.links, 0);
}

static void links_are_counted_without_a_callback_or_info(void **state)
{
    static const char body[] = "<a href=x>x</a><a href=y>y</a><a href=x>";
    struct crawl_page_info info;

    (void)state;
    assert_int_equal(
        crawl_html_links(body, sizeof body - 1, "http://h/", NULL, NULL, &info),
        0);
    assert_int_equal(info.links, 2);
    assert_int_equal(
        crawl_html_links(body, sizeof body - 1, "http://h/", NULL, NULL, NULL),
        0);
}

static int setup(void **state)
{
    (void)state;
    crawl_html_init();
    crawl_html_init(); /* twice is harmless */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relative_links_resolve_against_the_page_url),
        cmocka_unit_test(base_href_is_honoured),
        cmocka_unit_test(relative_base_href_resolves_against_the_page_url),
        cmocka_unit_test(only_the_first_base_counts_even_for_earlier_links),
        cmocka_unit_test(a_link_to_the_base_itself_is_reported),
        cmocka_unit_test(duplicates_are_reported_once_in_first_seen_order),
        cmocka_unit_test(links_to_the_page_itself_are_skipped),
        cmocka_unit_test(mailto_javascript_and_bad_links_are_skipped),
        cmocka_unit_test(area_is_a_link_and_other_elements_are_not),
        cmocka_unit_test(href_values_are_decoded_and_trimmed),
        cmocka_unit_test(title_is_decoded_collapsed_and_empty_if_missing),
        cmocka_unit_test(a_long_title_is_cut_at_a_character_boundary),
        cmocka_unit_test(declared_charsets_are_decoded_to_utf8),
        cmocka_unit_test(broken_markup_still_yields_links),
        cmocka_unit_test(nul_bytes_do_not_end_the_document),
        cmocka_unit_test(garbage_returns_without_crashing_or_printing),
        cmocka_unit_test(links_nested_100000_deep_are_found),
        cmocka_unit_test(many_links_are_all_reported_once),
        cmocka_unit_test(parses_from_four_threads_at_once_agree_silently),
        cmocka_unit_test(an_empty_body_is_an_empty_page),
        cmocka_unit_test(a_bad_page_url_is_einval),
        cmocka_unit_test(links_are_counted_without_a_callback_or_info),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
