// SPDX-License-Identifier: MIT
/*
 * URLs for knit-crawl (apps/crawl/url.h): reference resolution against
 * every example of RFC 3986 section 5.4 (normal and abnormal), each
 * normalisation rule on its own (case, ports, empty path, dot segments,
 * fragments, percent-encoding, whitespace in hrefs), IPv6 literals, the
 * inputs that must be refused and with which error, the strict parser and
 * its struct, formatting, the host key and the request target; then a
 * seeded random walk checking that every URL produced is a fixed point of
 * normalisation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "url.h"

/* The base of RFC 3986 section 5.4. */
#define RFC_BASE "http://a/b/c/d;p?q"

/* A reference and the URL it must resolve to. */
struct example {
    const char *ref;
    const char *want;
};

static void check_resolve(const char *base, const char *ref, const char *want)
{
    char out[CRAWL_URL_MAX];
    int err = crawl_url_resolve(base, ref, out, sizeof out);

    if (err != 0)
        fail_msg("resolve(\"%s\", \"%s\") = %d, want \"%s\"", base,
                 ref ? ref : "(null)", err, want);
    if (strcmp(out, want) != 0)
        fail_msg("resolve(\"%s\", \"%s\") = \"%s\", want \"%s\"", base,
                 ref ? ref : "(null)", out, want);
}

static void check_normalize(const char *text, const char *want)
{
    check_resolve(text, NULL, want);
}

/* Checks that resolving fails with err and leaves "" in the buffer. */
static void check_resolve_fails(const char *base, const char *ref, int err)
{
    char out[CRAWL_URL_MAX] = "junk";
    int got = crawl_url_resolve(base, ref, out, sizeof out);

    if (got != err)
        fail_msg("resolve(\"%s\", \"%s\") = %d, want %d", base,
                 ref ? ref : "(null)", got, err);
    assert_string_equal(out, "");
}

static void check_normalize_fails(const char *text, int err)
{
    check_resolve_fails(text, NULL, err);
}

/* ---- RFC 3986 section 5.4 ------------------------------------------------ */

static void rfc3986_normal_examples_resolve(void **state)
{
    /*
     * As in 5.4.1, normalised: the fragment is dropped and "http://g"
     * gains its empty path's "/". "g:h" is the one example missing from
     * the table: it resolves to "g:h", a URL but not http(s), so -EINVAL.
     */
    static const struct example ex[] = {
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g/"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q"},
        {"g#s", "http://a/b/c/g"},
        {"g?y#s", "http://a/b/c/g?y"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        check_resolve(RFC_BASE, ex[i].ref, ex[i].want);
    check_resolve_fails(RFC_BASE, "g:h", -EINVAL);
}

static void rfc3986_abnormal_examples_resolve(void **state)
{
    /* As in 5.4.2, with fragments dropped. */
    static const struct example ex[] = {
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g"},
        {"g#s/../x", "http://a/b/c/g"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        check_resolve(RFC_BASE, ex[i].ref, ex[i].want);
}

static void http_g_on_an_http_base_is_relative(void **state)
{
    /* 5.4.2 allows "http:g" either way; we take the lenient reading. */
    (void)state;
    check_resolve(RFC_BASE, "http:g", "http://a/b/c/g");
    check_resolve(RFC_BASE, "HTTP:/g", "http://a/g");
    /* With another scheme it is absolute, and has no host. */
    check_resolve_fails(RFC_BASE, "https:g", -EINVAL);
}

static void
scheme_relative_and_absolute_references_replace_the_host(void **state)
{
    (void)state;
    check_resolve("https://a/b/c", "//x/y", "https://x/y");
    check_resolve("https://a:8443/b/c", "//x/y", "https://x/y");
    check_resolve("http://a/b/c", "https://x:443/../y?z", "https://x/y?z");
    check_resolve("http://a/b/c", "HTTP://X:8080", "http://x:8080/");
    check_resolve("http://a/b/c?q", "?", "http://a/b/c?");
}

/* ---- normalisation rules ------------------------------------------------- */

static void scheme_and_host_are_lower_cased(void **state)
{
    (void)state;
    check_normalize("HTTP://Example.COM/Path", "http://example.com/Path");
    check_normalize("hTTpS://WWW.x.ORG/A?B=C", "https://www.x.org/A?B=C");
}

static void default_ports_are_dropped_and_others_kept(void **state)
{
    (void)state;
    check_normalize("http://h:80/", "http://h/");
    check_normalize("https://h:443/", "https://h/");
    check_normalize("http://h:443/", "http://h:443/");
    check_normalize("https://h:80/", "https://h:80/");
    check_normalize("http://h:/", "http://h/");
    check_normalize("http://h:0080/", "http://h/");
    check_normalize("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x");
}

static void empty_path_becomes_a_slash(void **state)
{
    (void)state;
    check_normalize("http://h", "http://h/");
    check_normalize("http://h?q", "http://h/?q");
    check_normalize("http://h#f", "http://h/");
}

static void dot_segments_are_removed(void **state)
{
    (void)state;
    check_normalize("http://h/a/./b/../c", "http://h/a/c");
    check_normalize("http://h/../../a", "http://h/a");
    check_normalize("http://h/a/b/..", "http://h/a/");
    check_normalize("http://h/a/.", "http://h/a/");
    check_normalize("http://h/a//../b", "http://h/a/b");
    check_normalize("http://h/a/%2E%2e/b/%2e", "http://h/b/");
    check_normalize("http://h/a/.../b", "http://h/a/.../b");
}

static void fragment_is_dropped(void **state)
{
    (void)state;
    check_normalize("http://h/p#frag", "http://h/p");
    check_normalize("http://h/p?q#frag?x", "http://h/p?q");
    check_normalize("http://h/p#", "http://h/p");
}

static void percent_encodings_are_normalised(void **state)
{
    (void)state;
    /* Hex digits upper-cased. */
    check_normalize("http://h/%c3%a9?x=%2f", "http://h/%C3%A9?x=%2F");
    /* Encoded unreserved characters decoded, in path and query. */
    check_normalize("http://h/%41%7a%2D%2e%5F%7E?%41=%31",
                    "http://h/Az-._~?A=1");
    /* Encoded reserved characters stay encoded. */
    check_normalize("http://h/a%2Fb%3F%23?k=%26%3D",
                    "http://h/a%2Fb%3F%23?k=%26%3D");
    /* A lone '%' becomes %25. */
    check_normalize("http://h/100%?p=5%&q=%4", "http://h/100%25?p=5%25&q=%254");
    check_normalize("http://h/%zz", "http://h/%25zz");
}

static void unsafe_bytes_are_percent_encoded(void **state)
{
    (void)state;
    check_normalize("http://h/a b?c d", "http://h/a%20b?c%20d");
    check_normalize("http://h/\xc3\xa9t\xc3\xa9", "http://h/%C3%A9t%C3%A9");
    check_normalize("http://h/\"<>\\^`{|}",
                    "http://h/%22%3C%3E%5C%5E%60%7B%7C%7D");
    check_normalize("http://h/?\"<>\\^`{|}",
                    "http://h/?%22%3C%3E%5C%5E%60%7B%7C%7D");
    check_normalize("http://h/a\x01\x7f", "http://h/a%01%7F");
    /* Characters that are fine raw are left alone. */
    check_normalize("http://h/!$&'()*+,;=:@[]?/?:@!$'()*+,;=",
                    "http://h/!$&'()*+,;=:@[]?/?:@!$'()*+,;=");
}

static void query_is_kept_as_is_apart_from_percent_encoding(void **state)
{
    (void)state;
    check_normalize("http://h/?b=2&a=1&&a=1", "http://h/?b=2&a=1&&a=1");
    check_normalize("http://h/p?", "http://h/p?");
    check_normalize("http://h/p", "http://h/p");
    check_normalize("http://h/p?a/../b", "http://h/p?a/../b");
}

static void
href_whitespace_is_trimmed_and_tabs_and_newlines_removed(void **state)
{
    (void)state;
    check_resolve(RFC_BASE, "  \t\n g \r\n", "http://a/b/c/g");
    check_resolve(RFC_BASE, "/a\tb\nc\rd", "http://a/abcd");
    /* So a split "javascript:" is still recognised, and refused. */
    check_resolve_fails(RFC_BASE, "java\nscript:alert(1)", -EINVAL);
}

static void ipv6_literal_host_keeps_its_brackets(void **state)
{
    (void)state;
    check_normalize("http://[::1]:8080/x", "http://[::1]:8080/x");
    check_normalize("http://[2001:DB8::A]/", "http://[2001:db8::a]/");
    check_normalize("https://[::ffff:192.0.2.1]:443",
                    "https://[::ffff:192.0.2.1]/");
    /* Bad literals are in bad_inputs_are_einval. */
}

/* ---- refused inputs ------------------------------------------------------ */

static void bad_inputs_are_einval(void **state)
{
    static const char *const bad[] = {
        /* no URL, no host, no scheme or not http(s) */
        "", "   ", "http://", "http:///path", "http:no-authority",
        "//host/no-scheme", "relative/path", "ftp://x/", "https1://x/",
        "javascript:alert(1)", "mailto:a@b", "data:text/html,hi",
        /* bad ports */
        "http://host:99999/", "http://host:65536/", "http://host:0/",
        "http://host:8x/", "http://host:-1/",
        /* bad hosts, userinfo */
        "http://ho st/", "http://ho\x01st/", "http://ex%41mple.com/",
        "http://caf\xc3\xa9.fr/", "http://user:pass@host/", "http://@host/",
        "http://[::1/", "http://[::1]x/", "http://[zz::1]/",
        "http://[127.0.0.1]/", "http://[]/", "http://[fe80::1%25eth0]/"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_normalize_fails(bad[i], -EINVAL);
    check_normalize_fails(NULL, -EINVAL);
    check_resolve_fails("mailto:a@b", "http://x/", -EINVAL);
    check_resolve_fails(RFC_BASE, "mailto:a@b", -EINVAL);
    check_resolve_fails(RFC_BASE, "javascript:void(0)", -EINVAL);
    check_resolve_fails(RFC_BASE, "data:,x", -EINVAL);
    check_resolve_fails(RFC_BASE, "//user@x/", -EINVAL);
}

/* Writes head, then count copies of c, then tail into buf. */
static char *make(char *buf, const char *head, int c, size_t count,
                  const char *tail)
{
    size_t n = strlen(head);

    memcpy(buf, head, n);
    memset(buf + n, c, count);
    strcpy(buf + n + count, tail);
    return buf;
}

static void overlong_urls_are_enametoolong(void **state)
{
    char text[3 * CRAWL_URL_MAX];
    char base[CRAWL_URL_MAX];
    char out[CRAWL_URL_MAX];
    struct crawl_url u;

    (void)state;
    /* The longest URL that fits: 9 + 2038 = CRAWL_URL_MAX - 1 bytes. */
    make(text, "http://h/", 'a', CRAWL_URL_MAX - 10, "");
    assert_int_equal(crawl_url_normalize(text, out, sizeof out), 0);
    assert_string_equal(out, text);
    assert_int_equal(crawl_url_parse(text, &u), 0);
    /* One more byte is too long; parse calls that -EINVAL. */
    make(text, "http://h/", 'a', CRAWL_URL_MAX - 9, "");
    check_normalize_fails(text, -ENAMETOOLONG);
    assert_int_equal(crawl_url_parse(text, &u), -EINVAL);
    /* Short text that grows past the limit when encoded. */
    check_normalize_fails(make(text, "http://h/", ' ', 1000, "x"),
                          -ENAMETOOLONG);
    /* A path and a query that fit alone but not together. */
    make(text, "http://h/", 'p', 1500, "?");
    make(text + strlen(text), "", 'q', 1000, "");
    check_normalize_fails(text, -ENAMETOOLONG);
    /* A relative reference that makes the base too long. */
    check_resolve_fails(make(base, "http://h/", 'b', 1000, "/x"),
                        make(text, "", 'r', 1500, ""), -ENAMETOOLONG);
    /* A host longer than 255 bytes is simply invalid. */
    check_normalize_fails(make(text, "http://", 'h', 256, "/"), -EINVAL);
}

static void a_small_output_buffer_is_enametoolong(void **state)
{
    char out[12] = "junk";

    (void)state;
    assert_int_equal(crawl_url_normalize("http://h/ab", out, 12), 0);
    assert_string_equal(out, "http://h/ab");
    assert_int_equal(crawl_url_normalize("http://h/abc", out, 12),
                     -ENAMETOOLONG);
    assert_string_equal(out, "");
    assert_int_equal(crawl_url_normalize("http://h/", NULL, 0), -ENAMETOOLONG);
    assert_int_equal(crawl_url_host_key("http://hostname/", out, 8),
                     -ENAMETOOLONG);
    assert_int_equal(crawl_url_request_target("http://h/abcdefghijkl", out, 12),
                     -ENAMETOOLONG);
    assert_string_equal(out, "");
}

/* ---- the strict parser and its struct ------------------------------------ */

static void parse_fills_every_field(void **state)
{
    struct crawl_url u;

    (void)state;
    assert_int_equal(crawl_url_parse("HTTPS://Ex.COM/a/../b%7e?x=%4a#f", &u),
                     0);
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.host, "ex.com");
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/b~");
    assert_string_equal(u.query, "x=J");
    assert_true(u.has_query);

    assert_int_equal(crawl_url_parse("http://[::1]:8080", &u), 0);
    assert_string_equal(u.host, "[::1]");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.path, "/");
    assert_string_equal(u.query, "");
    assert_false(u.has_query);

    assert_int_equal(crawl_url_parse("http://h/?", &u), 0);
    assert_string_equal(u.query, "");
    assert_true(u.has_query);
}

static void parse_is_strict_about_spaces_and_control_chars(void **state)
{
    static const char *const bad[] = {
        " http://h/",    "http://h/ ",    "http://h/a b",  "http://h/a\tb",
        "http://h/\x01", "http://h/\x1f", "http://h/\x7f", "http://h/\n"};
    struct crawl_url u;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(crawl_url_parse(bad[i], &u), -EINVAL);
    /* The lenient functions trim, drop or encode the same bytes. */
    check_normalize(" http://h/", "http://h/");
    check_normalize("http://h/a\tb", "http://h/ab");
    check_normalize("http://h/\x01x", "http://h/%01x");
    check_normalize("http://h/x\x7f", "http://h/x%7F");
    /* Non-ASCII is not a control byte: it is encoded. */
    assert_int_equal(crawl_url_parse("http://h/\xe2\x82\xac", &u), 0);
    assert_string_equal(u.path, "/%E2%82%AC");
}

static void parse_failure_zeroes_the_struct(void **state)
{
    struct crawl_url u;
    struct crawl_url zero;

    (void)state;
    memset(&zero, 0, sizeof zero);
    memset(&u, 0x5a, sizeof u);
    assert_int_equal(crawl_url_parse("ftp://x/", &u), -EINVAL);
    assert_memory_equal(&u, &zero, sizeof u);
    memset(&u, 0x5a, sizeof u);
    assert_int_equal(crawl_url_parse("http://h:99999/", &u), -EINVAL);
    assert_memory_equal(&u, &zero, sizeof u);
    assert_int_equal(crawl_url_parse(NULL, &u), -EINVAL);
    assert_int_equal(crawl_url_parse("", &u), -EINVAL);
}

static void format_writes_back_a_parsed_url(void **state)
{
    struct crawl_url u;
    char out[CRAWL_URL_MAX];
    char big[2 * CRAWL_URL_MAX];

    (void)state;
    assert_int_equal(crawl_url_parse("HTTP://H:80/a/./b?c#d", &u), 0);
    assert_int_equal(crawl_url_format(&u, out, sizeof out), 0);
    assert_string_equal(out, "http://h/a/b?c");

    u.port = 8080;
    u.has_query = false;
    assert_int_equal(crawl_url_format(&u, out, sizeof out), 0);
    assert_string_equal(out, "http://h:8080/a/b");
    assert_int_equal(crawl_url_format(&u, out, 10), -ENAMETOOLONG);
    assert_string_equal(out, "");

    /* Hand-filled fields that add up to more than CRAWL_URL_MAX. */
    make(u.path, "/", 'p', sizeof u.path - 2, "");
    assert_int_equal(crawl_url_format(&u, big, sizeof big), -ENAMETOOLONG);
    assert_string_equal(big, "");
}

/* ---- host key and request target ----------------------------------------- */

static void host_key_always_has_the_port(void **state)
{
    static const struct example ex[] = {
        {"http://127.0.0.1:8080/a?b", "127.0.0.1:8080"},
        {"http://Example.com/", "example.com:80"},
        {"https://example.com/x", "example.com:443"},
        {"https://example.com:8443", "example.com:8443"},
        {"http://[::1]/", "[::1]:80"},
    };
    char out[262];

    (void)state;
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        assert_int_equal(crawl_url_host_key(ex[i].ref, out, sizeof out), 0);
        assert_string_equal(out, ex[i].want);
    }
    assert_int_equal(crawl_url_host_key("mailto:a@b", out, sizeof out),
                     -EINVAL);
    assert_string_equal(out, "");
}

static void request_target_is_the_path_and_query(void **state)
{
    static const struct example ex[] = {
        {"http://h", "/"},
        {"http://h/a/../b%7E?x=1#f", "/b~?x=1"},
        {"http://h/p?", "/p?"},
        {"https://h:8443/a b", "/a%20b"},
    };
    char out[CRAWL_URL_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        assert_int_equal(crawl_url_request_target(ex[i].ref, out, sizeof out),
                         0);
        assert_string_equal(out, ex[i].want);
    }
    assert_int_equal(crawl_url_request_target("/relative", out, sizeof out),
                     -EINVAL);
}

/* ---- properties ---------------------------------------------------------- */

/* A deterministic generator (xorshift64), so failures reproduce. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_references_resolve_to_fixed_points(void **state)
{
    /* Bytes biased towards URL syntax, plus anything else. */
    static const char alphabet[] = "/./../?#%:@[]aZ09-_~ \t\n\"<>\\^`{|}"
                                   "%2e%2E%41%zz%%http:https://";
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char ref[64];
    char out[CRAWL_URL_MAX];
    char again[CRAWL_URL_MAX];
    struct crawl_url u;

    (void)state;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = next_random(&seed) % (sizeof ref - 1);
        int err;

        for (size_t i = 0; i < len; i++) {
            uint64_t r = next_random(&seed);
            ref[i] = r % 4 ? alphabet[(r >> 8) % (sizeof alphabet - 1)]
                           : (char)(1 + (r >> 8) % 255);
        }
        ref[len] = '\0';
        err = crawl_url_resolve("http://h.test/a/b/c?q", ref, out, sizeof out);
        if (err) {
            assert_true(err == -EINVAL || err == -ENAMETOOLONG);
            continue;
        }
        /* A result is strict-parseable and normalises to itself. */
        assert_int_equal(crawl_url_parse(out, &u), 0);
        assert_int_equal(crawl_url_normalize(out, again, sizeof again), 0);
        if (strcmp(out, again) != 0)
            fail_msg("ref \"%s\": \"%s\" then \"%s\"", ref, out, again);
        assert_int_equal(crawl_url_format(&u, again, sizeof again), 0);
        assert_string_equal(out, again);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3986_normal_examples_resolve),
        cmocka_unit_test(rfc3986_abnormal_examples_resolve),
        cmocka_unit_test(http_g_on_an_http_base_is_relative),
        cmocka_unit_test(
            scheme_relative_and_absolute_references_replace_the_host),
        cmocka_unit_test(scheme_and_host_are_lower_cased),
        cmocka_unit_test(default_ports_are_dropped_and_others_kept),
        cmocka_unit_test(empty_path_becomes_a_slash),
        cmocka_unit_test(dot_segments_are_removed),
        cmocka_unit_test(fragment_is_dropped),
        cmocka_unit_test(percent_encodings_are_normalised),
        cmocka_unit_test(unsafe_bytes_are_percent_encoded),
        cmocka_unit_test(query_is_kept_as_is_apart_from_percent_encoding),
        cmocka_unit_test(
            href_whitespace_is_trimmed_and_tabs_and_newlines_removed),
        cmocka_unit_test(ipv6_literal_host_keeps_its_brackets),
        cmocka_unit_test(bad_inputs_are_einval),
        cmocka_unit_test(overlong_urls_are_enametoolong),
        cmocka_unit_test(a_small_output_buffer_is_enametoolong),
        cmocka_unit_test(parse_fills_every_field),
        cmocka_unit_test(parse_is_strict_about_spaces_and_control_chars),
        cmocka_unit_test(parse_failure_zeroes_the_struct),
        cmocka_unit_test(format_writes_back_a_parsed_url),
        cmocka_unit_test(host_key_always_has_the_port),
        cmocka_unit_test(request_target_is_the_path_and_query),
        cmocka_unit_test(random_references_resolve_to_fixed_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
