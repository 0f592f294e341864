/* mt_queue_test.c - the global queue: FIFO across wrap-around and spill,
 * batches of about half, blocking pop with and without a deadline, and
 * 4 producers x 1M tasks against 4 consumers, every task exactly once,
 * through the lock-free ring alone and through a tiny ring whose overflow
 * carries most of them. Tasks are fake pointers 1..N (never dereferenced). */
#include <sched.h>

#include "rt_test.h"

#define TASK(v) ((tml_join *)(uintptr_t)(v))
#define VALUE(t) ((uint64_t)(uintptr_t)(t))

Test(mt_queue, fifo_across_wraparound_and_spill, .timeout = 10) {
    mt_queue q;
    tml_join *t = NULL;
    uint64_t next_out = 1;
    cr_assert_eq(mt_queue_init(&q, 8), 0); /* tiny: wraps and spills at once */
    for (uint64_t v = 1; v <= 1000; v++) {
        cr_assert_eq(mt_queue_push(&q, TASK(v)), 0);
        if (v % 3 == 0) { /* pop sometimes, so head moves and the ring wraps */
            cr_assert(mt_queue_try_pop(&q, &t));
            cr_assert_eq(VALUE(t), next_out++);
        }
    }
    cr_assert_gt(mt_atomic_load(&q.spilled), 0); /* the overflow was used */
    while (mt_queue_try_pop(&q, &t))
        cr_assert_eq(VALUE(t), next_out++);
    cr_assert_eq(next_out, 1001);
    cr_assert(mt_queue_is_empty(&q));
    mt_queue_fini(&q);
}

Test(mt_queue, try_push_reports_a_full_ring, .timeout = 10) {
    mt_queue q;
    tml_join *t = NULL;
    cr_assert_eq(mt_queue_init(&q, 4), 0);
    for (uint64_t v = 1; v <= 4; v++)
        cr_assert(mt_queue_try_push(&q, TASK(v)));
    cr_assert_not(mt_queue_try_push(&q, TASK(5)));
    cr_assert(mt_queue_try_pop(&q, &t));
    cr_assert_eq(VALUE(t), 1);
    cr_assert(mt_queue_try_push(&q, TASK(5))); /* room again */
    mt_queue_fini(&q);
}

Test(mt_queue, steal_takes_about_half_in_one_batch, .timeout = 10) {
    mt_queue q;
    tml_join *out[64];
    cr_assert_eq(mt_queue_init(&q, 64), 0);
    cr_assert_eq(mt_queue_steal(&q, out, 64), 0); /* empty */
    for (uint64_t v = 1; v <= 10; v++)
        cr_assert_eq(mt_queue_push(&q, TASK(v)), 0);
    cr_assert_eq(mt_queue_steal(&q, out, 64), 5);
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_eq(VALUE(out[i]), i + 1); /* the oldest, in order */
    cr_assert_eq(mt_queue_steal(&q, out, 2), 2); /* capped by max */
    cr_assert_eq(mt_queue_steal(&q, out, 64), 2); /* half of 3, rounded up */
    cr_assert_eq(mt_queue_steal(&q, out, 64), 1);
    cr_assert_eq(VALUE(out[0]), 10);
    cr_assert_eq(mt_queue_steal(&q, out, 64), 0);
    mt_queue_fini(&q);
}

Test(mt_queue, pop_with_a_deadline_times_out_on_an_empty_queue, .timeout = 10) {
    mt_queue q;
    tml_join *t = NULL;
    cr_assert_eq(mt_queue_init(&q, 4), 0);
    int64_t deadline = tml_now_ns() + 5000000;
    cr_assert_not(mt_queue_pop(&q, &t, deadline));
    cr_assert_geq(tml_now_ns(), deadline);
    mt_queue_fini(&q);
}

typedef struct blocked_pop {
    mt_queue q;
    tml_join *got;
    latch done;
} blocked_pop;

static void *pop_forever(void *arg) {
    blocked_pop *b = arg;
    if (mt_queue_pop(&b->q, &b->got, MT_NO_DEADLINE))
        latch_add(&b->done, 1);
    return NULL;
}

Test(mt_queue, push_wakes_a_blocked_pop, .timeout = 10) {
    blocked_pop b = {.got = NULL};
    cr_assert_eq(mt_queue_init(&b.q, 4), 0);
    latch_init(&b.done);
    pthread_t t = foreign_thread(pop_forever, &b);
    int64_t deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    while (mt_atomic_load(&b.q.waiters) == 0 && tml_now_ns() < deadline) /* until it waits */
        sched_yield();
    cr_assert_eq(mt_atomic_load(&b.q.waiters), 1);
    cr_assert_eq(mt_queue_push(&b.q, TASK(42)), 0);
    cr_assert(latch_wait(&b.done, 1));
    pthread_join(t, NULL);
    cr_assert_eq(VALUE(b.got), 42);
    mt_queue_fini(&b.q);
}

/* ------------------------------------------- 4 producers, 4 consumers */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER (1000000 / TEST_SCALE)
#define ITEMS ((uint64_t)PRODUCERS * PER_PRODUCER)

typedef struct contention {
    mt_queue q;
    bool ring_only;          /* producers use try_push and retry when full */
    mt_atomic producers_done;
    mt_atomic popped, sum, errors; /* errors: checked on the test's thread */
    mt_atomic spilled_items; /* popped while the overflow held tasks */
    uint8_t *seen[CONSUMERS]; /* per consumer: a bitmap of values 1..ITEMS */
} contention;

typedef struct worker_arg {
    contention *c;
    unsigned index;
} worker_arg;

static void *produce(void *arg) {
    worker_arg *a = arg;
    contention *c = a->c;
    uint64_t first = 1 + (uint64_t)a->index * PER_PRODUCER;
    for (uint64_t v = first; v < first + PER_PRODUCER; v++) {
        if (!c->ring_only) {
            if (mt_queue_push(&c->q, TASK(v)) != 0)
                mt_atomic_fetch_add(&c->errors, 1);
            continue;
        }
        while (!mt_queue_try_push(&c->q, TASK(v)))
            sched_yield(); /* full: the consumers make room */
    }
    mt_atomic_fetch_add(&c->producers_done, 1);
    return NULL;
}

static void *consume(void *arg) {
    worker_arg *a = arg;
    contention *c = a->c;
    uint8_t *seen = c->seen[a->index];
    tml_join *batch[16];
    uint64_t popped = 0, sum = 0, spilled = 0, errors = 0;
    for (;;) {
        bool done = mt_atomic_load_acquire(&c->producers_done) == PRODUCERS;
        size_t n = mt_queue_steal(&c->q, batch, popped % 2 ? 16 : 1); /* batches and singles */
        if (mt_atomic_load(&c->q.spilled) > 0)
            spilled += n;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = VALUE(batch[i]);
            if (v < 1 || v > ITEMS || (seen[v / 8] & (1u << v % 8))) {
                errors++; /* out of range, or twice on this consumer */
                continue;
            }
            seen[v / 8] |= (uint8_t)(1u << v % 8);
            sum += v;
        }
        popped += n;
        if (n == 0 && done && mt_queue_is_empty(&c->q))
            break;
        if (n == 0) /* 8 threads on few cores: let a preempted pusher publish */
            sched_yield();
    }
    mt_atomic_fetch_add(&c->popped, popped);
    mt_atomic_fetch_add(&c->sum, sum);
    mt_atomic_fetch_add(&c->spilled_items, spilled);
    mt_atomic_fetch_add(&c->errors, errors);
    return NULL;
}

/* Runs the producers and consumers to the end; checks every value
 * 1..ITEMS came out exactly once. */
static void run_contention(contention *c) {
    worker_arg args[PRODUCERS + CONSUMERS];
    pthread_t threads[PRODUCERS + CONSUMERS];
    for (unsigned i = 0; i < CONSUMERS; i++) {
        c->seen[i] = calloc(ITEMS / 8 + 1, 1);
        cr_assert_not_null(c->seen[i]);
    }
    for (unsigned i = 0; i < PRODUCERS + CONSUMERS; i++) {
        args[i] = (worker_arg){c, i < PRODUCERS ? i : i - PRODUCERS};
        threads[i] = foreign_thread(i < PRODUCERS ? produce : consume, &args[i]);
    }
    for (unsigned i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(mt_atomic_load(&c->errors), 0);
    cr_assert_eq(mt_atomic_load(&c->popped), ITEMS);
    cr_assert_eq(mt_atomic_load(&c->sum), ITEMS * (ITEMS + 1) / 2);
    uint64_t wrong = 0; /* values not popped exactly once, across consumers */
    for (uint64_t v = 1; v <= ITEMS; v++) {
        unsigned hits = 0;
        for (unsigned i = 0; i < CONSUMERS; i++)
            hits += (c->seen[i][v / 8] >> v % 8) & 1;
        wrong += hits != 1;
    }
    cr_assert_eq(wrong, 0);
    for (unsigned i = 0; i < CONSUMERS; i++)
        free(c->seen[i]);
}

/* RT-QUEUE-1: lock-free MPMC ring, 4 producers x 1M, 4 consumers, exactly once */
Test(mt_queue, ring_delivers_4x1M_tasks_exactly_once_to_4_consumers, .timeout = 10) {
    static contention c;
    c.ring_only = true;
    cr_assert_eq(mt_queue_init(&c.q, 1024), 0);
    run_contention(&c);
    cr_assert_eq(c.q.over_cap, 0); /* the overflow was never used */
    mt_queue_fini(&c.q);
}

/* RT-QUEUE-1: a full ring spills to the overflow list and loses nothing */
Test(mt_queue, overflow_carries_most_of_4x1M_tasks_exactly_once, .timeout = 10) {
    static contention c;
    c.ring_only = false;
    cr_assert_eq(mt_queue_init(&c.q, 4), 0); /* tiny ring: nearly everything spills */
    run_contention(&c);
    cr_assert_gt(mt_atomic_load(&c.spilled_items) * 2, ITEMS,
                 "only %llu of %llu tasks were popped while the overflow held tasks",
                 (unsigned long long)mt_atomic_load(&c.spilled_items), (unsigned long long)ITEMS);
    mt_queue_fini(&c.q);
}
