// SPDX-License-Identifier: MIT
/* The intrusive list (src/core/list.h), one case per operation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/list.h"

struct item {
    int v;
    struct knit_list link;
};

/* Checks that @head holds exactly the values @want, both ways round. */
static void check(struct knit_list *head, const int *want, int n)
{
    struct knit_list *it;
    int i = 0;
    knit_list_for_each(it, head)
    {
        assert_true(i < n);
        assert_int_equal(knit_container_of(it, struct item, link)->v, want[i]);
        assert_ptr_equal(it->next->prev, it);
        i++;
    }
    assert_int_equal(i, n);
    for (it = head->prev; it != head; it = it->prev)
        assert_int_equal(knit_container_of(it, struct item, link)->v,
                         want[--i]);
}

static void list_push_back_appends(void **state)
{
    (void)state;
    struct knit_list h;
    struct item a = {1, {0}}, b = {2, {0}};
    knit_list_init(&h);
    assert_true(knit_list_is_empty(&h));
    /* before: h    after: h <-> a <-> b */
    knit_list_push_back(&h, &a.link);
    knit_list_push_back(&h, &b.link);
    check(&h, (int[]){1, 2}, 2);
    assert_false(knit_list_is_empty(&h));
}

static void list_push_front_prepends(void **state)
{
    (void)state;
    struct knit_list h;
    struct item a = {1, {0}}, b = {2, {0}};
    knit_list_init(&h);
    /* before: h <-> a    after: h <-> b <-> a */
    knit_list_push_front(&h, &a.link);
    knit_list_push_front(&h, &b.link);
    check(&h, (int[]){2, 1}, 2);
}

static void list_remove_twice_is_safe(void **state)
{
    (void)state;
    struct knit_list h;
    struct item a = {1, {0}}, b = {2, {0}}, c = {3, {0}};
    knit_list_init(&h);
    knit_list_push_back(&h, &a.link);
    knit_list_push_back(&h, &b.link);
    knit_list_push_back(&h, &c.link);
    /* before: h <-> a <-> b <-> c    after: h <-> a <-> c */
    knit_list_remove(&b.link);
    assert_false(knit_list_is_linked(&b.link));
    knit_list_remove(&b.link);
    check(&h, (int[]){1, 3}, 2);
}

static void list_remove_of_zeroed_node_is_safe(void **state)
{
    (void)state;
    struct item z = {0, {0}};
    assert_false(knit_list_is_linked(&z.link));
    knit_list_remove(&z.link);
    assert_false(knit_list_is_linked(&z.link));
}

static void list_pop_front_takes_the_first(void **state)
{
    (void)state;
    struct knit_list h;
    struct item a = {1, {0}}, b = {2, {0}};
    knit_list_init(&h);
    assert_null(knit_list_pop_front(&h));
    knit_list_push_back(&h, &a.link);
    knit_list_push_back(&h, &b.link);
    assert_ptr_equal(knit_list_pop_front(&h), &a.link);
    check(&h, (int[]){2}, 1);
}

static void list_splice_back_moves_everything(void **state)
{
    (void)state;
    struct knit_list h1, h2;
    struct item a = {1, {0}}, b = {2, {0}}, c = {3, {0}};
    knit_list_init(&h1);
    knit_list_init(&h2);
    knit_list_push_back(&h1, &a.link);
    knit_list_push_back(&h2, &b.link);
    knit_list_push_back(&h2, &c.link);
    /* before: h1 <-> a, h2 <-> b <-> c    after: h1 <-> a <-> b <-> c, h2 */
    knit_list_splice_back(&h1, &h2);
    check(&h1, (int[]){1, 2, 3}, 3);
    assert_true(knit_list_is_empty(&h2));
    knit_list_splice_back(&h1, &h2);
    check(&h1, (int[]){1, 2, 3}, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_push_back_appends),
        cmocka_unit_test(list_push_front_prepends),
        cmocka_unit_test(list_remove_twice_is_safe),
        cmocka_unit_test(list_remove_of_zeroed_node_is_safe),
        cmocka_unit_test(list_pop_front_takes_the_first),
        cmocka_unit_test(list_splice_back_moves_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
