// SPDX-License-Identifier: MIT
/*
 * robots.txt rules (apps/crawl/robots.h): which group applies to the
 * crawler (its own, case-insensitively and by product token, merged when
 * named twice, else "*", else none); how rules match (longest pattern wins,
 * Allow wins a tie, '*' and '$', percent-normalisation, query strings,
 * "/robots.txt" always allowed); how the text is read (comments, CRLF and
 * CR, BOM, no final newline, NULs and garbage, size, rule and line
 * limits); Crawl-delay; the fixed allow-all and disallow-all objects; and
 * a pathological wildcard pattern that must still get the right answer.
 *
 * Every body parses for the agent "knit-crawl" unless it says otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "robots.h"

#define UA "knit-crawl"

static struct crawl_robots *parse_n(const char *txt, size_t len)
{
    struct crawl_robots *r = crawl_robots_parse(txt, len, UA);
    assert_non_null(r);
    return r;
}

static struct crawl_robots *parse(const char *txt)
{
    return parse_n(txt, strlen(txt));
}

#define ALLOWED(r, p) assert_true(crawl_robots_allowed((r), (p)))
#define REFUSED(r, p) assert_false(crawl_robots_allowed((r), (p)))

/* ---- group selection ----------------------------------------------------- */

static void group_naming_the_agent_beats_the_star_group(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /star\n"
                                   "\n"
                                   "User-agent: knit-crawl\n"
                                   "Disallow: /ours\n");
    REFUSED(r, "/ours");
    ALLOWED(r, "/star"); /* the "*" group no longer applies at all */
    crawl_robots_free(r);
}

static void group_agent_is_matched_case_insensitively(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: KNIT-Crawl\nDisallow: /x\n");
    REFUSED(r, "/x");
    crawl_robots_free(r);

    r = crawl_robots_parse("user-agent: knit-crawl\ndisallow: /x\n", 36,
                           "Knit-CRAWL");
    assert_non_null(r);
    REFUSED(r, "/x");
    crawl_robots_free(r);
}

static void group_with_several_user_agent_lines_applies_to_each(void **state)
{
    (void)state;
    const char *txt = "User-agent: otherbot\n"
                      "User-agent: knit-crawl\n"
                      "User-agent: thirdbot\n"
                      "Disallow: /shared\n"
                      "User-agent: *\n"
                      "Disallow: /\n";
    struct crawl_robots *r = parse(txt);
    REFUSED(r, "/shared");
    ALLOWED(r, "/elsewhere");
    crawl_robots_free(r);

    r = crawl_robots_parse(txt, strlen(txt), "thirdbot");
    assert_non_null(r);
    REFUSED(r, "/shared");
    ALLOWED(r, "/elsewhere");
    crawl_robots_free(r);
}

static void groups_naming_the_agent_twice_are_merged(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: knit-crawl\n"
                                   "Disallow: /a\n"
                                   "User-agent: otherbot\n"
                                   "Disallow: /b\n"
                                   "User-agent: knit-crawl\n"
                                   "Disallow: /c\n"
                                   "Allow: /a/open\n");
    REFUSED(r, "/a");
    REFUSED(r, "/c");
    ALLOWED(r, "/b");
    ALLOWED(r, "/a/open"); /* rules of both groups compete as one set */
    crawl_robots_free(r);
}

static void group_agent_with_version_is_matched_by_product_token(void **state)
{
    (void)state;
    const char *txt = "User-agent: knit-crawl/1.0\nDisallow: /v\n";
    struct crawl_robots *r = parse(txt);
    REFUSED(r, "/v");
    crawl_robots_free(r);

    r = crawl_robots_parse(txt, strlen(txt), "knit-crawl/2.3 (+https://x)");
    assert_non_null(r);
    REFUSED(r, "/v");
    crawl_robots_free(r);
}

static void group_for_a_longer_token_does_not_apply(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: knit-crawler\n"
                                   "Disallow: /a\n"
                                   "User-agent: knit-crawl2\n"
                                   "Disallow: /b\n"
                                   "User-agent: knit\n"
                                   "Disallow: /c\n");
    ALLOWED(r, "/a");
    ALLOWED(r, "/b");
    ALLOWED(r, "/c");
    crawl_robots_free(r);
}

static void star_group_applies_when_no_group_names_the_agent(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: otherbot\n"
                                   "Disallow: /other\n"
                                   "User-agent: *\n"
                                   "Disallow: /star\n");
    REFUSED(r, "/star");
    ALLOWED(r, "/other");
    crawl_robots_free(r);

    r = crawl_robots_parse("User-agent: *\nDisallow: /s\n", 27, NULL);
    assert_non_null(r);
    REFUSED(r, "/s");
    crawl_robots_free(r);
}

static void no_group_for_the_agent_or_star_allows_everything(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: otherbot\nDisallow: /\n");
    ALLOWED(r, "/");
    ALLOWED(r, "/anything");
    crawl_robots_free(r);
}

static void matching_group_without_rules_allows_everything(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: knit-crawl\n"
                                   "Disallow:\n"
                                   "User-agent: *\n"
                                   "Disallow: /\n");
    ALLOWED(r, "/");
    ALLOWED(r, "/page");
    crawl_robots_free(r);
}

static void rules_before_any_user_agent_line_are_ignored(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("Disallow: /early\n"
                                   "User-agent: *\n"
                                   "Disallow: /late\n");
    ALLOWED(r, "/early");
    REFUSED(r, "/late");
    crawl_robots_free(r);
}

static void unknown_fields_neither_apply_nor_split_groups(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: otherbot\n"
                                   "Sitemap: https://example.com/s.xml\n"
                                   "User-agent: knit-crawl\n"
                                   "Host: example.com\n"
                                   "Disallow: /a\n"
                                   "Noindex: /b\n"
                                   "Disallow: /c\n"
                                   "just garbage without a colon\n"
                                   "Disallow: /d\n");
    REFUSED(r, "/a");
    ALLOWED(r, "/b");
    REFUSED(r, "/c");
    REFUSED(r, "/d");
    crawl_robots_free(r);
}

static void blank_lines_do_not_end_a_group(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: knit-crawl\n"
                                   "\n"
                                   "User-agent: *\n"
                                   "\n"
                                   "Disallow: /both\n");
    REFUSED(r, "/both");
    crawl_robots_free(r);
}

/* ---- matching ------------------------------------------------------------ */

static void longest_matching_rule_wins(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /a/b/c\n"
                                   "Allow: /a/b\n"
                                   "Disallow: /a\n");
    ALLOWED(r, "/");
    REFUSED(r, "/a");
    REFUSED(r, "/a/x");
    ALLOWED(r, "/a/b");
    ALLOWED(r, "/a/b/x");
    REFUSED(r, "/a/b/c");
    REFUSED(r, "/a/b/cd");
    crawl_robots_free(r);
}

static void allow_beats_disallow_on_a_tie(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /page\n"
                                   "Allow: /page\n"
                                   "Disallow: /a.htm\n"
                                   "Allow: /*.htm\n");
    ALLOWED(r, "/page");
    ALLOWED(r, "/a.htm"); /* both patterns are 6 bytes long */
    crawl_robots_free(r);
}

static void star_matches_any_run_of_bytes(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /*/private/\n"
                                   "Disallow: /x*y*z\n");
    REFUSED(r, "/a/private/");
    REFUSED(r, "/a/b/private/c");
    REFUSED(r, "//private/"); /* '*' matches nothing too */
    ALLOWED(r, "/private/");
    REFUSED(r, "/xyz");
    REFUSED(r, "/x--y--z--");
    ALLOWED(r, "/x--z--y");
    crawl_robots_free(r);
}

static void dollar_anchors_the_pattern_at_the_end(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /*.json$\n"
                                   "Disallow: /exact$\n");
    REFUSED(r, "/a/b.json");
    REFUSED(r, "/b.json.json");
    ALLOWED(r, "/a/b.json?x=1");
    ALLOWED(r, "/a.jsonx");
    REFUSED(r, "/exact");
    ALLOWED(r, "/exact/");
    ALLOWED(r, "/exactly");
    crawl_robots_free(r);
}

static void dollar_inside_a_pattern_is_literal(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\nDisallow: /a$b\n");
    REFUSED(r, "/a$b");
    REFUSED(r, "/a$bc");
    REFUSED(r, "/a%24b");
    ALLOWED(r, "/a");
    ALLOWED(r, "/ab");
    crawl_robots_free(r);
}

static void empty_disallow_allows_everything(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\nDisallow:\n");
    ALLOWED(r, "/");
    ALLOWED(r, "/any/thing?q=1");
    crawl_robots_free(r);

    r = parse("User-agent: *\nDisallow: \t \nAllow:\n");
    ALLOWED(r, "/x");
    crawl_robots_free(r);
}

static void percent_encoded_forms_are_equivalent(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /a%7eb\n"
                                   "Disallow: /c~d\n"
                                   "Disallow: /e%2fF\n"
                                   "Disallow: /\xc3\xa4\n"
                                   "Disallow: /sp ace\n");
    REFUSED(r, "/a~b");
    REFUSED(r, "/a%7Eb");
    REFUSED(r, "/c%7ed");
    REFUSED(r, "/e%2FF");
    REFUSED(r, "/e%2F%46"); /* 'F' is unreserved, so %46 is 'F' */
    ALLOWED(r, "/e/F");     /* '/' is reserved: %2F is not '/' */
    REFUSED(r, "/%C3%A4");  /* raw UTF-8 in a pattern is encoded */
    REFUSED(r, "/%c3%a4x");
    REFUSED(r, "/sp%20ace");
    crawl_robots_free(r);
}

static void query_strings_take_part_in_matching(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /*?\n"
                                   "Allow: /search?q=ok\n"
                                   "Disallow: /*sessionid=\n");
    ALLOWED(r, "/page");
    REFUSED(r, "/page?x=1");
    ALLOWED(r, "/search?q=ok&p=2");
    REFUSED(r, "/search?q=bad");
    REFUSED(r, "/cart;sessionid=42");
    crawl_robots_free(r);
}

static void literal_star_in_a_path_matches_only_a_wildcard(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: /lit%2a\n"
                                   "Disallow: /w*\n");
    REFUSED(r, "/lit*");
    REFUSED(r, "/lit%2A");
    ALLOWED(r, "/litx");
    REFUSED(r, "/w*");
    crawl_robots_free(r);
}

static void pattern_without_leading_slash_gets_one(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\n"
                                   "Disallow: tmp\n"
                                   "Disallow: *.gif\n");
    REFUSED(r, "/tmp/x");
    ALLOWED(r, "/a/tmp");
    REFUSED(r, "/img/a.gif");
    crawl_robots_free(r);
}

static void robots_txt_is_always_allowed(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\nDisallow: /\n");
    ALLOWED(r, "/robots.txt");
    ALLOWED(r, "/robots.txt?v=2");
    ALLOWED(r, "/robots%2etxt");
    REFUSED(r, "/robots.txt2");
    REFUSED(r, "/robots");
    REFUSED(r, "/");
    crawl_robots_free(r);
}

static void empty_or_null_path_means_the_root(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\nDisallow: /$\n");
    REFUSED(r, "");
    REFUSED(r, NULL);
    ALLOWED(r, "/a");
    crawl_robots_free(r);
}

static void
twenty_star_pattern_against_long_path_gets_right_answer(void **state)
{
    (void)state;
    char txt[128] = "User-agent: *\nDisallow: /";
    for (int k = 0; k < 20; k++)
        strcat(txt, "*a");
    strcat(txt, "*b\n");
    struct crawl_robots *r = parse(txt);

    char path[2001];
    path[0] = '/';
    memset(path + 1, 'a', sizeof path - 2);
    path[sizeof path - 1] = '\0';
    ALLOWED(r, path); /* no 'b': every star placement must fail */
    path[sizeof path - 2] = 'b';
    REFUSED(r, path);
    crawl_robots_free(r);

    r = parse("User-agent: *\nDisallow: /*a*a*a*a*a*a*a*a*a*a*a*a*a*a$\n");
    path[sizeof path - 2] = 'a';
    REFUSED(r, path);
    path[sizeof path - 2] = 'b';
    ALLOWED(r, path);
    crawl_robots_free(r);
}

/* ---- reading the text ---------------------------------------------------- */

static void comments_and_crlf_line_ends_are_handled(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("# robots for example.com\r\n"
                                   "User-agent: knit-crawl # us\r\n"
                                   "Disallow: /a # not /b\r\n"
                                   "#Disallow: /c\r\n"
                                   "Disallow: /d#e\r\n");
    REFUSED(r, "/a");
    ALLOWED(r, "/b");
    ALLOWED(r, "/c");
    REFUSED(r, "/d");
    REFUSED(r, "/dx");
    crawl_robots_free(r);
}

static void bare_cr_line_ends_are_handled(void **state)
{
    (void)state;
    struct crawl_robots *r =
        parse("User-agent: *\rDisallow: /a\r\rDisallow: /b\r");
    REFUSED(r, "/a");
    REFUSED(r, "/b");
    ALLOWED(r, "/c");
    crawl_robots_free(r);
}

static void utf8_bom_is_skipped(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("\xef\xbb\xbfUser-agent: *\nDisallow: /x\n");
    REFUSED(r, "/x");
    crawl_robots_free(r);
}

static void last_line_without_newline_counts(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("User-agent: *\nDisallow: /last");
    REFUSED(r, "/last");
    ALLOWED(r, "/las");
    crawl_robots_free(r);
}

static void field_names_ignore_case_and_space_around_colon(void **state)
{
    (void)state;
    struct crawl_robots *r = parse("  USER-AGENT  :  knit-crawl  \n"
                                   "\tdisALLOW\t:\t/a\t\n"
                                   "ALLOW:/a/b\n"
                                   "Crawl-Delay :2\n");
    REFUSED(r, "/a");
    ALLOWED(r, "/a/b");
    assert_int_equal(crawl_robots_delay_ms(r), 2000);
    crawl_robots_free(r);
}

static void nul_bytes_inside_a_line_do_not_cut_the_text(void **state)
{
    (void)state;
    static const char txt[] = "User-agent: *\nDisallow: /a\0b\nDisallow: /c\n";
    struct crawl_robots *r = parse_n(txt, sizeof txt - 1);
    ALLOWED(r, "/a");
    ALLOWED(r, "/ab");
    REFUSED(r, "/c");
    crawl_robots_free(r);
}

static void binary_garbage_allows_everything_without_crashing(void **state)
{
    (void)state;
    static char buf[64 * 1024];
    uint32_t x = 12345;
    for (int round = 0; round < 16; round++) {
        size_t len = (size_t)round * 4096 + 17;
        for (size_t k = 0; k < len; k++) {
            x = x * 1103515245u + 12345u;
            buf[k] = (char)(x >> 16);
        }
        struct crawl_robots *r = parse_n(buf, len);
        ALLOWED(r, "/");
        ALLOWED(r, "/some/page?q=1");
        assert_int_equal(crawl_robots_delay_ms(r), 0);
        crawl_robots_free(r);
    }

    struct crawl_robots *r = parse_n(NULL, 0);
    ALLOWED(r, "/x");
    crawl_robots_free(r);
    r = parse_n("", 0);
    ALLOWED(r, "/x");
    crawl_robots_free(r);
}

static void text_past_500_kib_is_ignored(void **state)
{
    (void)state;
    const char *head = "User-agent: *\nDisallow: /early\n";
    const char *tail = "Disallow: /late\n";
    size_t len = CRAWL_ROBOTS_MAX_SIZE + 64;
    char *txt = malloc(len);
    assert_non_null(txt);
    memset(txt, '\n', len);
    memcpy(txt, head, strlen(head));
    /*
     * The tail line straddles the limit, cut after "Disallow: /la": a
     * half line is dropped, not read as a shorter rule.
     */
    memcpy(txt + CRAWL_ROBOTS_MAX_SIZE - 13, tail, strlen(tail));
    struct crawl_robots *r = parse_n(txt, len);
    REFUSED(r, "/early");
    ALLOWED(r, "/late");
    ALLOWED(r, "/la");
    crawl_robots_free(r);

    /* Entirely inside the limit it counts. */
    memset(txt + CRAWL_ROBOTS_MAX_SIZE - 13, '\n', strlen(tail));
    memcpy(txt + CRAWL_ROBOTS_MAX_SIZE - 40, tail, strlen(tail));
    r = parse_n(txt, len);
    REFUSED(r, "/late");
    crawl_robots_free(r);
    free(txt);
}

static void rules_past_the_cap_are_ignored(void **state)
{
    (void)state;
    size_t cap = (size_t)CRAWL_ROBOTS_MAX_RULES * 20 + 64;
    char *txt = malloc(cap);
    assert_non_null(txt);
    size_t len = (size_t)sprintf(txt, "User-agent: *\n");
    for (int k = 0; k < CRAWL_ROBOTS_MAX_RULES; k++)
        len += (size_t)sprintf(txt + len, "Disallow: /r%d\n", k);
    len += (size_t)sprintf(txt + len, "Disallow: /over\n");
    struct crawl_robots *r = parse_n(txt, len);
    REFUSED(r, "/r0");
    REFUSED(r, "/r9999");
    ALLOWED(r, "/over");
    crawl_robots_free(r);
    free(txt);
}

static void over_long_rule_is_ignored(void **state)
{
    (void)state;
    size_t n = CRAWL_ROBOTS_MAX_VALUE + 100;
    char *txt = malloc(n + 64);
    assert_non_null(txt);
    size_t len = (size_t)sprintf(txt, "User-agent: *\nDisallow: /");
    memset(txt + len, 'x', n);
    len += n;
    len += (size_t)sprintf(txt + len, "\nDisallow: /short\n");
    struct crawl_robots *r = parse_n(txt, len);
    ALLOWED(r, "/xxxx");
    REFUSED(r, "/short");
    crawl_robots_free(r);
    free(txt);
}

/* ---- Crawl-delay --------------------------------------------------------- */

static int64_t delay_of(const char *value)
{
    char txt[256];
    snprintf(txt, sizeof txt, "User-agent: *\nCrawl-delay: %s\n", value);
    struct crawl_robots *r = parse(txt);
    int64_t ms = crawl_robots_delay_ms(r);
    crawl_robots_free(r);
    return ms;
}

static void crawl_delay_parses_integers_and_fractions(void **state)
{
    (void)state;
    assert_int_equal(delay_of("5"), 5000);
    assert_int_equal(delay_of("0"), 0);
    assert_int_equal(delay_of("0.5"), 500);
    assert_int_equal(delay_of(".25"), 250);
    assert_int_equal(delay_of("2."), 2000);
    assert_int_equal(delay_of("1.2345"), 1234);
    assert_int_equal(delay_of("60"), 60000);
    assert_int_equal(delay_of("61"), 60000);
    assert_int_equal(delay_of("99999999999999999999999999"), 60000);
}

static void crawl_delay_that_is_invalid_counts_as_absent(void **state)
{
    (void)state;
    assert_int_equal(delay_of(""), 0);
    assert_int_equal(delay_of("-1"), 0);
    assert_int_equal(delay_of("5s"), 0);
    assert_int_equal(delay_of("abc"), 0);
    assert_int_equal(delay_of("."), 0);
    assert_int_equal(delay_of("1.2.3"), 0);
    assert_int_equal(delay_of("1 2"), 0);

    struct crawl_robots *r = parse("User-agent: *\nDisallow: /\n");
    assert_int_equal(crawl_robots_delay_ms(r), 0);
    crawl_robots_free(r);
}

static void crawl_delay_comes_from_the_group_used(void **state)
{
    (void)state;
    const char *txt = "User-agent: *\n"
                      "Crawl-delay: 9\n"
                      "User-agent: knit-crawl\n"
                      "Crawl-delay: 1.5\n"
                      "User-agent: otherbot\n"
                      "Crawl-delay: 30\n"
                      "User-agent: knit-crawl\n"
                      "Crawl-delay: 2\n";
    struct crawl_robots *r = parse(txt);
    assert_int_equal(crawl_robots_delay_ms(r), 2000); /* merged: largest */
    crawl_robots_free(r);

    r = crawl_robots_parse(txt, strlen(txt), "nobody");
    assert_non_null(r);
    assert_int_equal(crawl_robots_delay_ms(r), 9000);
    crawl_robots_free(r);
}

/* ---- fixed objects ------------------------------------------------------- */

static void allow_all_and_disallow_all_do_what_they_say(void **state)
{
    (void)state;
    struct crawl_robots *a = crawl_robots_allow_all();
    struct crawl_robots *d = crawl_robots_disallow_all();
    assert_non_null(a);
    assert_non_null(d);
    ALLOWED(a, "/");
    ALLOWED(a, "/any?q");
    REFUSED(d, "/");
    REFUSED(d, "/any?q");
    ALLOWED(d, "/robots.txt");
    assert_int_equal(crawl_robots_delay_ms(a), 0);
    assert_int_equal(crawl_robots_delay_ms(d), 0);
    crawl_robots_free(a);
    crawl_robots_free(d);
    crawl_robots_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_naming_the_agent_beats_the_star_group),
        cmocka_unit_test(group_agent_is_matched_case_insensitively),
        cmocka_unit_test(group_with_several_user_agent_lines_applies_to_each),
        cmocka_unit_test(groups_naming_the_agent_twice_are_merged),
        cmocka_unit_test(group_agent_with_version_is_matched_by_product_token),
        cmocka_unit_test(group_for_a_longer_token_does_not_apply),
        cmocka_unit_test(star_group_applies_when_no_group_names_the_agent),
        cmocka_unit_test(no_group_for_the_agent_or_star_allows_everything),
        cmocka_unit_test(matching_group_without_rules_allows_everything),
        cmocka_unit_test(rules_before_any_user_agent_line_are_ignored),
        cmocka_unit_test(unknown_fields_neither_apply_nor_split_groups),
        cmocka_unit_test(blank_lines_do_not_end_a_group),
        cmocka_unit_test(longest_matching_rule_wins),
        cmocka_unit_test(allow_beats_disallow_on_a_tie),
        cmocka_unit_test(star_matches_any_run_of_bytes),
        cmocka_unit_test(dollar_anchors_the_pattern_at_the_end),
        cmocka_unit_test(dollar_inside_a_pattern_is_literal),
        cmocka_unit_test(empty_disallow_allows_everything),
        cmocka_unit_test(percent_encoded_forms_are_equivalent),
        cmocka_unit_test(query_strings_take_part_in_matching),
        cmocka_unit_test(literal_star_in_a_path_matches_only_a_wildcard),
        cmocka_unit_test(pattern_without_leading_slash_gets_one),
        cmocka_unit_test(robots_txt_is_always_allowed),
        cmocka_unit_test(empty_or_null_path_means_the_root),
        cmocka_unit_test(
            twenty_star_pattern_against_long_path_gets_right_answer),
        cmocka_unit_test(comments_and_crlf_line_ends_are_handled),
        cmocka_unit_test(bare_cr_line_ends_are_handled),
        cmocka_unit_test(utf8_bom_is_skipped),
        cmocka_unit_test(last_line_without_newline_counts),
        cmocka_unit_test(field_names_ignore_case_and_space_around_colon),
        cmocka_unit_test(nul_bytes_inside_a_line_do_not_cut_the_text),
        cmocka_unit_test(binary_garbage_allows_everything_without_crashing),
        cmocka_unit_test(text_past_500_kib_is_ignored),
        cmocka_unit_test(rules_past_the_cap_are_ignored),
        cmocka_unit_test(over_long_rule_is_ignored),
        cmocka_unit_test(crawl_delay_parses_integers_and_fractions),
        cmocka_unit_test(crawl_delay_that_is_invalid_counts_as_absent),
        cmocka_unit_test(crawl_delay_comes_from_the_group_used),
        cmocka_unit_test(allow_all_and_disallow_all_do_what_they_say),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
