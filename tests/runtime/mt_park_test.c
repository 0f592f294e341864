/* mt_park_test.c - parkers (sticky notification, deadlines, cross-thread
 * unpark) and the idle set (announce, cancel, pop). */
#include "rt_test.h"

Test(mt_park, unpark_before_park_is_not_lost, .timeout = 10) {
    mt_parker p;
    cr_assert_eq(mt_parker_init(&p), 0);
    mt_parker_unpark(&p);
    cr_assert(mt_parker_park(&p, MT_NO_DEADLINE)); /* returns at once */
    mt_parker_fini(&p);
}

Test(mt_park, notification_is_consumed_once, .timeout = 10) {
    mt_parker p;
    cr_assert_eq(mt_parker_init(&p), 0);
    mt_parker_unpark(&p);
    mt_parker_unpark(&p); /* coalesces with the first */
    cr_assert(mt_parker_park(&p, MT_NO_DEADLINE));
    cr_assert_not(mt_parker_park(&p, tml_now_ns() + 1000000)); /* times out */
    mt_parker_fini(&p);
}

Test(mt_park, park_times_out_no_earlier_than_deadline, .timeout = 10) {
    mt_parker p;
    cr_assert_eq(mt_parker_init(&p), 0);
    int64_t deadline = tml_now_ns() + 5000000;
    cr_assert_not(mt_parker_park(&p, deadline));
    cr_assert_geq(tml_now_ns(), deadline);
    mt_parker_fini(&p);
}

typedef struct parked_thread {
    mt_parker p;
    latch parking, woke;
} parked_thread;

static void *park_forever(void *arg) {
    parked_thread *s = arg;
    latch_add(&s->parking, 1);
    if (mt_parker_park(&s->p, MT_NO_DEADLINE))
        latch_add(&s->woke, 1);
    return NULL;
}

Test(mt_park, unpark_wakes_a_thread_parked_without_deadline, .timeout = 10) {
    parked_thread s;
    cr_assert_eq(mt_parker_init(&s.p), 0);
    latch_init(&s.parking);
    latch_init(&s.woke);
    pthread_t t = foreign_thread(park_forever, &s);
    cr_assert(latch_wait(&s.parking, 1));
    mt_parker_unpark(&s.p); /* before or during its park: either way it wakes */
    cr_assert(latch_wait(&s.woke, 1));
    pthread_join(t, NULL);
    mt_parker_fini(&s.p);
}

Test(mt_park, idle_set_pops_most_recent_and_cancels, .timeout = 10) {
    mt_idle idle;
    unsigned i;
    cr_assert_eq(mt_idle_init(&idle, 3), 0);
    cr_assert_not(mt_idle_any(&idle));
    cr_assert_not(mt_idle_pop(&idle, &i));
    mt_idle_announce(&idle, 0);
    mt_idle_announce(&idle, 2);
    mt_idle_announce(&idle, 1);
    cr_assert(mt_idle_any(&idle));
    cr_assert(mt_idle_cancel(&idle, 2));
    cr_assert_not(mt_idle_cancel(&idle, 2)); /* no longer listed */
    cr_assert(mt_idle_pop(&idle, &i));
    cr_assert_eq(i, 1);
    cr_assert(mt_idle_pop(&idle, &i));
    cr_assert_eq(i, 0);
    cr_assert_not(mt_idle_any(&idle));
    cr_assert_not(mt_idle_cancel(&idle, 0)); /* popped by a waker */
    mt_idle_fini(&idle);
}
