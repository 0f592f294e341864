/* mt_queue_test.c - the global queue (FIFO, growth, wrap-around, many
 * threads) and the worker-local ring (FIFO, full, wrap-around). */
#include "rt_test.h"

Test(mt_queue, pops_in_push_order_across_growth_and_wraparound, .timeout = 10) {
    mt_queue q;
    cr_assert_eq(mt_queue_init(&q, 2), 0); /* tiny: grows and wraps at once */
    tml_waker t, next_out = 1;
    for (tml_waker v = 1; v <= 1000; v++) {
        cr_assert_eq(mt_queue_push(&q, v), 0);
        if (v % 3 == 0) { /* pop sometimes, so head moves and the ring wraps */
            cr_assert(mt_queue_try_pop(&q, &t));
            cr_assert_eq(t, next_out++);
        }
    }
    while (mt_queue_try_pop(&q, &t))
        cr_assert_eq(t, next_out++);
    cr_assert_eq(next_out, 1001);
    mt_queue_fini(&q);
}

Test(mt_queue, empty_queue_pops_nothing, .timeout = 10) {
    mt_queue q;
    tml_waker t;
    cr_assert_eq(mt_queue_init(&q, 4), 0);
    cr_assert(mt_queue_is_empty(&q));
    cr_assert_not(mt_queue_try_pop(&q, &t));
    cr_assert_eq(mt_queue_push(&q, 7), 0);
    cr_assert_not(mt_queue_is_empty(&q));
    cr_assert(mt_queue_try_pop(&q, &t));
    cr_assert(mt_queue_is_empty(&q));
    mt_queue_fini(&q);
}

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 20000

typedef struct shared_queue {
    mt_queue q;
    mt_atomic produced_done; /* producers finished */
    mt_atomic push_errors, popped, sum;
} shared_queue;

typedef struct producer_arg {
    shared_queue *s;
    tml_waker first;
} producer_arg;

static void *produce(void *arg) {
    producer_arg *p = arg;
    for (tml_waker v = p->first; v < p->first + PER_PRODUCER; v++) {
        if (mt_queue_push(&p->s->q, v) != 0) /* asserted on the test's thread */
            mt_atomic_fetch_add(&p->s->push_errors, 1);
    }
    mt_atomic_fetch_add(&p->s->produced_done, 1);
    return NULL;
}

static void *consume(void *arg) {
    shared_queue *s = arg;
    tml_waker t;
    for (;;) {
        bool done = mt_atomic_load_acquire(&s->produced_done) == PRODUCERS;
        if (mt_queue_try_pop(&s->q, &t)) {
            mt_atomic_fetch_add(&s->popped, 1);
            mt_atomic_fetch_add(&s->sum, t);
        } else if (done) {
            return NULL;
        }
    }
}

Test(mt_queue, many_threads_pop_every_token_exactly_once, .timeout = 10) {
    shared_queue s = {0};
    producer_arg args[PRODUCERS];
    pthread_t threads[PRODUCERS + CONSUMERS];
    cr_assert_eq(mt_queue_init(&s.q, 8), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        args[i] = (producer_arg){&s, 1 + (tml_waker)i * PER_PRODUCER};
        threads[i] = foreign_thread(produce, &args[i]);
    }
    for (int i = 0; i < CONSUMERS; i++)
        threads[PRODUCERS + i] = foreign_thread(consume, &s);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(threads[i], NULL);
    uint64_t n = (uint64_t)PRODUCERS * PER_PRODUCER;
    cr_assert_eq(mt_atomic_load(&s.push_errors), 0);
    cr_assert_eq(mt_atomic_load(&s.popped), n);
    cr_assert_eq(mt_atomic_load(&s.sum), n * (n + 1) / 2);
    mt_queue_fini(&s.q);
}

Test(mt_queue, local_ring_pops_in_push_order, .timeout = 10) {
    mt_deque d;
    tml_waker t;
    mt_deque_init(&d);
    for (tml_waker v = 0; v < 10; v++)
        cr_assert(mt_deque_push(&d, v));
    for (tml_waker v = 0; v < 10; v++) {
        cr_assert(mt_deque_pop(&d, &t));
        cr_assert_eq(t, v);
    }
    cr_assert_not(mt_deque_pop(&d, &t));
}

Test(mt_queue, local_ring_push_fails_when_full, .timeout = 10) {
    mt_deque d;
    tml_waker t;
    mt_deque_init(&d);
    for (tml_waker v = 0; v < MT_DEQUE_CAP; v++)
        cr_assert(mt_deque_push(&d, v));
    cr_assert_not(mt_deque_push(&d, 999));
    cr_assert(mt_deque_pop(&d, &t));
    cr_assert_eq(t, 0);
    cr_assert(mt_deque_push(&d, 999)); /* room again */
}

Test(mt_queue, local_ring_wraps_around_keeping_order, .timeout = 10) {
    mt_deque d;
    tml_waker t, expect = 0;
    mt_deque_init(&d);
    for (tml_waker v = 0; v < 5 * MT_DEQUE_CAP; v++) {
        cr_assert(mt_deque_push(&d, v));
        if (v % 2 == 1) { /* drain two, keeping the ring half busy */
            cr_assert(mt_deque_pop(&d, &t));
            cr_assert_eq(t, expect++);
            cr_assert(mt_deque_pop(&d, &t));
            cr_assert_eq(t, expect++);
        }
    }
    cr_assert_eq(expect, 5 * MT_DEQUE_CAP);
}
