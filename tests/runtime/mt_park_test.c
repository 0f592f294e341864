/* mt_park_test.c - parkers (sticky notification, deadlines, cross-thread
 * unpark) and the idle protocol (bounded searching, parking, coalesced
 * notifications, re-check and shutdown reports). */
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

/* RT-PARK-1: at most half of the workers search at once */
Test(mt_park, at_most_half_the_workers_search, .timeout = 10) {
    mt_idle idle;
    cr_assert_eq(mt_idle_init(&idle, 4), 0);
    cr_assert(mt_idle_try_search(&idle));
    cr_assert(mt_idle_try_search(&idle));
    cr_assert_not(mt_idle_try_search(&idle)); /* 2 of 4 already search */
    cr_assert_not(mt_idle_stop_search(&idle)); /* one searcher is left */
    cr_assert(mt_idle_try_search(&idle));
    cr_assert_not(mt_idle_stop_search(&idle));
    cr_assert(mt_idle_stop_search(&idle)); /* the last one: must notify */
    mt_idle_fini(&idle);
}

Test(mt_park, one_worker_may_search_alone, .timeout = 10) {
    mt_idle idle;
    cr_assert_eq(mt_idle_init(&idle, 1), 0);
    cr_assert(mt_idle_try_search(&idle));
    cr_assert_not(mt_idle_try_search(&idle));
    mt_idle_fini(&idle);
}

/* RT-PARK-1: an unpark wakes one worker only when none is searching */
Test(mt_park, notify_wakes_one_parked_worker_and_counts_it_searching, .timeout = 10) {
    mt_idle idle;
    unsigned i;
    cr_assert_eq(mt_idle_init(&idle, 3), 0);
    cr_assert_not(mt_idle_may_notify(&idle)); /* nobody parked */
    cr_assert_not(mt_idle_notify(&idle, &i));
    cr_assert_eq(mt_idle_park(&idle, 2, false), MT_IDLE_RECHECK); /* no searcher left */
    cr_assert_eq(mt_idle_park(&idle, 0, false), MT_IDLE_RECHECK);
    cr_assert(mt_idle_may_notify(&idle));
    cr_assert(mt_idle_notify(&idle, &i));
    cr_assert_eq(i, 0); /* the most recently parked */
    cr_assert_not(mt_idle_may_notify(&idle)); /* it searches: coalesced */
    cr_assert_not(mt_idle_notify(&idle, &i));
    cr_assert(mt_idle_unparked(&idle, 0)); /* woken by a notifier: a searcher */
    cr_assert(mt_idle_stop_search(&idle));
    cr_assert(mt_idle_notify(&idle, &i)); /* no searcher again: worker 2 */
    cr_assert_eq(i, 2);
    mt_idle_fini(&idle);
}

Test(mt_park, searcher_left_means_no_recheck, .timeout = 10) {
    mt_idle idle;
    cr_assert_eq(mt_idle_init(&idle, 4), 0);
    cr_assert(mt_idle_try_search(&idle)); /* worker 1 searches */
    cr_assert(mt_idle_try_search(&idle)); /* worker 3 too */
    cr_assert_eq(mt_idle_park(&idle, 0, false), 0);         /* 2 searchers remain */
    cr_assert_eq(mt_idle_park(&idle, 1, true), 0);          /* 1 remains */
    cr_assert_eq(mt_idle_park(&idle, 3, true), MT_IDLE_RECHECK); /* the last searcher */
    mt_idle_fini(&idle);
}

Test(mt_park, worker_waking_by_itself_leaves_the_stack, .timeout = 10) {
    mt_idle idle;
    unsigned i;
    cr_assert_eq(mt_idle_init(&idle, 2), 0);
    mt_idle_park(&idle, 1, false);
    cr_assert_not(mt_idle_unparked(&idle, 1)); /* a timeout: not searching */
    cr_assert_not(mt_idle_may_notify(&idle));  /* everyone unparked again */
    cr_assert_not(mt_idle_notify(&idle, &i));
    mt_idle_close(&idle);
    cr_assert_eq(mt_idle_park(&idle, 1, false), MT_IDLE_RECHECK | MT_IDLE_CLOSED);
    mt_idle_fini(&idle);
}
