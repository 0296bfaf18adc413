// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the URL functions of knit-crawl (apps/crawl/url.h).
 *
 * The input is a base and a reference separated by the first NUL byte (the
 * reference ends at the next one); an input without a NUL is a reference
 * against a fixed base with a port, a path and a query. Both are passed to
 * every function: crawl_url_resolve, crawl_url_normalize, crawl_url_parse,
 * crawl_url_format, crawl_url_host_key and crawl_url_request_target.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it checks
 * what url.h promises for any input, aborting on a violation:
 *   - a URL written by any function parses strictly, is no longer than
 *     CRAWL_URL_MAX - 1 bytes and holds no space, control byte, byte
 *     >= 0x7F or '#';
 *   - normalising it again gives the same string, and so does resolving it
 *     against the base (an absolute reference replaces the base) and
 *     formatting what crawl_url_parse made of it;
 *   - the host key and the request target agree with the parsed parts, and
 *     they fail exactly when normalising fails, with the same error;
 *   - resolving against the base or against the base normalised gives the
 *     same result;
 *   - strict parsing agrees with lenient normalising on strict input;
 *   - a failure leaves "" in the buffer (a zeroed struct for parse), and a
 *     buffer one byte short is -ENAMETOOLONG.
 *
 * Build: see fuzz/run.sh (apps/crawl/url.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "fuzz_url: check failed at line %d: %s\n",         \
                    __LINE__, #x);                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* The base of inputs without a NUL: every part a reference can replace. */
static const char default_base[] = "http://Example.COM:8080/a/b/c;p?q=1";

/* The longest host key: a 255-byte host, ':', 5 digits and the NUL. */
enum { HOST_KEY_MAX = 262 };

static bool is_error(int r)
{
    return r == -EINVAL || r == -ENAMETOOLONG;
}

/* The checks every URL a function wrote must pass. */
static void check_written(const char *url)
{
    size_t len = strlen(url);

    CHECK(len > 0 && len < CRAWL_URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];

        CHECK(c > 0x20 && c < 0x7F && c != '#');
    }
}

/*
 * Checks that url, as written by a successful call, is a fixed point of
 * every function: it parses strictly, formats back to itself, normalises
 * to itself and resolves to itself against base; its host key and request
 * target are its parts.
 */
static void check_fixed_point(const char *base, const char *url)
{
    struct crawl_url u;
    char again[CRAWL_URL_MAX];
    char key[HOST_KEY_MAX];
    char want[CRAWL_URL_MAX + 8];
    size_t len = strlen(url);

    check_written(url);
    CHECK(crawl_url_parse(url, &u) == 0);
    CHECK(strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0);
    CHECK(u.host[0] != '\0' && u.port >= 1 && u.port <= 65535);
    CHECK(u.path[0] == '/');
    CHECK(u.has_query || u.query[0] == '\0');

    CHECK(crawl_url_format(&u, again, sizeof again) == 0);
    CHECK(strcmp(again, url) == 0);

    CHECK(crawl_url_normalize(url, again, sizeof again) == 0);
    CHECK(strcmp(again, url) == 0);

    /* An absolute reference (with "//host") replaces all of the base. */
    if (base) {
        CHECK(crawl_url_resolve(base, url, again, sizeof again) == 0);
        CHECK(strcmp(again, url) == 0);
    }
    /* An empty reference is the base document itself. */
    CHECK(crawl_url_resolve(url, "", again, sizeof again) == 0);
    CHECK(strcmp(again, url) == 0);

    /* Exactly enough room is enough; one byte less is not. */
    CHECK(crawl_url_normalize(url, again, len + 1) == 0);
    CHECK(strcmp(again, url) == 0);
    CHECK(crawl_url_normalize(url, again, len) == -ENAMETOOLONG);
    CHECK(again[0] == '\0');

    CHECK(crawl_url_host_key(url, key, sizeof key) == 0);
    snprintf(want, sizeof want, "%s:%d", u.host, u.port);
    CHECK(strcmp(key, want) == 0);

    CHECK(crawl_url_request_target(url, again, sizeof again) == 0);
    snprintf(want, sizeof want, "%s%s%s", u.path, u.has_query ? "?" : "",
             u.has_query ? u.query : "");
    CHECK(strcmp(again, want) == 0);
    check_written(again);
    CHECK(again[0] == '/');
}

/* Lenient text: normalise it and check the helpers agree with that. */
static void fuzz_lenient(const char *text)
{
    char out[CRAWL_URL_MAX] = "junk";
    char key[HOST_KEY_MAX] = "junk";
    char target[CRAWL_URL_MAX] = "junk";
    int r = crawl_url_normalize(text, out, sizeof out);
    int rk = crawl_url_host_key(text, key, sizeof key);
    int rt = crawl_url_request_target(text, target, sizeof target);

    /* The helpers read the URL as normalising does: same verdict. */
    CHECK(rk == r && rt == r);
    if (r != 0) {
        CHECK(is_error(r));
        CHECK(out[0] == '\0' && key[0] == '\0' && target[0] == '\0');
        return;
    }
    check_fixed_point(NULL, out);
}

/* Strict text: crawl_url_parse; on strict input, lenient reading agrees. */
static void fuzz_strict(const char *text)
{
    static const struct crawl_url zero;
    struct crawl_url u;
    char out[CRAWL_URL_MAX];
    char norm[CRAWL_URL_MAX];
    int r;

    memset(&u, 0x5A, sizeof u);
    r = crawl_url_parse(text, &u);
    if (r != 0) {
        CHECK(r == -EINVAL);
        CHECK(memcmp(&u, &zero, sizeof u) == 0);
        return;
    }
    CHECK(crawl_url_format(&u, out, sizeof out) == 0);
    check_fixed_point(NULL, out);
    /* Strict input has nothing for the lenient reading to trim. */
    CHECK(crawl_url_normalize(text, norm, sizeof norm) == 0);
    CHECK(strcmp(norm, out) == 0);
}

static void fuzz_resolve(const char *base, const char *ref)
{
    char out[CRAWL_URL_MAX] = "junk";
    char nbase[CRAWL_URL_MAX];
    char again[CRAWL_URL_MAX] = "junk";
    int r = crawl_url_resolve(base, ref, out, sizeof out);
    int rb;
    int r2;

    if (r != 0) {
        CHECK(is_error(r));
        CHECK(out[0] == '\0');
    } else {
        check_fixed_point(base, out);
    }

    /*
     * Resolution reads the base normalised: the normalised base gives the
     * same answer (it may fail alone, being too long where a reference
     * replaced the long part).
     */
    rb = crawl_url_normalize(base, nbase, sizeof nbase);
    if (rb == 0) {
        r2 = crawl_url_resolve(nbase, ref, again, sizeof again);
        CHECK(r2 == r);
        CHECK(strcmp(again, out) == 0);
    } else {
        CHECK(r != 0 || rb == -ENAMETOOLONG);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    const char *base;
    const char *ref;
    const char *nul;

    CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    nul = memchr(buf, '\0', size);
    if (nul) {
        base = buf;
        ref = nul + 1; /* up to the next NUL, or buf[size] */
    } else {
        base = default_base;
        ref = buf;
    }

    fuzz_resolve(base, ref);
    fuzz_lenient(ref);
    fuzz_strict(ref);
    if (nul) {
        fuzz_lenient(base);
        fuzz_strict(base);
        /* NULL stands for "no reference": the base, normalised. */
        fuzz_resolve(base, NULL);
    }
    free(buf);
    return 0;
}
