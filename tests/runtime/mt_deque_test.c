/* mt_deque_test.c - the local queue: FIFO for the owner, full at
 * MT_DEQUE_CAP, half moved out when full, steals of half (rounded up),
 * and an owner pushing and popping 1M tasks across many wrap-arounds of
 * the ring while 2 thieves steal: every task exactly once. Tasks are fake
 * pointers 1..N (never dereferenced). */
#include "rt_test.h"

#define TASK(v) ((tml_join *)(uintptr_t)(v))
#define VALUE(t) ((uint64_t)(uintptr_t)(t))

Test(mt_deque, owner_pops_in_push_order_and_full_is_reported, .timeout = 10) {
    static mt_deque d;
    tml_join *t = NULL;
    mt_deque_init(&d);
    cr_assert_not(mt_deque_pop(&d, &t));
    for (uint64_t v = 1; v <= MT_DEQUE_CAP; v++)
        cr_assert(mt_deque_push(&d, TASK(v)));
    cr_assert_not(mt_deque_push(&d, TASK(999)));
    cr_assert_eq(mt_deque_len(&d), MT_DEQUE_CAP);
    cr_assert(mt_deque_pop(&d, &t));
    cr_assert_eq(VALUE(t), 1);
    cr_assert(mt_deque_push(&d, TASK(999))); /* room again, at the wrapped cell */
    for (uint64_t v = 2; v <= MT_DEQUE_CAP; v++) {
        cr_assert(mt_deque_pop(&d, &t));
        cr_assert_eq(VALUE(t), v);
    }
    cr_assert(mt_deque_pop(&d, &t));
    cr_assert_eq(VALUE(t), 999);
    cr_assert_not(mt_deque_pop(&d, &t));
}

Test(mt_deque, take_half_moves_out_the_older_half_of_a_full_ring, .timeout = 10) {
    static mt_deque d;
    static tml_join *out[MT_DEQUE_CAP];
    tml_join *t = NULL;
    mt_deque_init(&d);
    cr_assert(mt_deque_push(&d, TASK(1)));
    cr_assert_eq(mt_deque_take_half(&d, out), 0); /* not full: nothing moved */
    for (uint64_t v = 2; v <= MT_DEQUE_CAP; v++)
        cr_assert(mt_deque_push(&d, TASK(v)));
    cr_assert_eq(mt_deque_take_half(&d, out), MT_DEQUE_CAP / 2);
    for (uint64_t i = 0; i < MT_DEQUE_CAP / 2; i++)
        cr_assert_eq(VALUE(out[i]), i + 1);
    cr_assert_eq(mt_deque_len(&d), MT_DEQUE_CAP / 2);
    cr_assert(mt_deque_pop(&d, &t));
    cr_assert_eq(VALUE(t), MT_DEQUE_CAP / 2 + 1);
}

Test(mt_deque, steal_takes_half_rounded_up_and_runs_the_last, .timeout = 10) {
    static mt_deque a, b;
    tml_join *t = NULL;
    mt_deque_init(&a);
    mt_deque_init(&b);
    cr_assert_eq(mt_deque_steal(&a, &b, &t), 0); /* empty victim */
    for (uint64_t v = 1; v <= 8; v++)
        cr_assert(mt_deque_push(&a, TASK(v)));
    cr_assert_eq(mt_deque_steal(&a, &b, &t), 4);
    cr_assert_eq(VALUE(t), 4); /* the newest of the batch runs at once */
    cr_assert_eq(mt_deque_len(&a), 4);
    cr_assert_eq(mt_deque_len(&b), 3);
    for (uint64_t v = 1; v <= 3; v++) {
        cr_assert(mt_deque_pop(&b, &t));
        cr_assert_eq(VALUE(t), v);
    }
    cr_assert(mt_deque_pop(&a, &t));
    cr_assert_eq(VALUE(t), 5); /* the victim keeps its newer half, in order */
    cr_assert_eq(mt_deque_steal(&a, &b, &t), 2); /* half of 3, rounded up */
    cr_assert_eq(mt_deque_steal(&a, &b, &t), 1); /* a single task is stolen too */
    cr_assert_eq(VALUE(t), 8);
    cr_assert_eq(mt_deque_len(&a), 0);
}

Test(mt_deque, steal_needs_room_for_half_a_ring, .timeout = 10) {
    static mt_deque a, b;
    tml_join *t = NULL;
    mt_deque_init(&a);
    mt_deque_init(&b);
    cr_assert(mt_deque_push(&a, TASK(1)));
    for (uint64_t v = 1; v <= MT_DEQUE_CAP / 2 + 1; v++)
        cr_assert(mt_deque_push(&b, TASK(100 + v)));
    cr_assert_eq(mt_deque_steal(&a, &b, &t), 0); /* b is too full */
    cr_assert_eq(mt_deque_len(&a), 1);
}

/* --------------------------------------- owner + 2 thieves, exactly once */

#define THIEVES 2
#define TASKS (1000000 / TEST_SCALE)

typedef struct race {
    mt_deque victim;
    mt_deque thief_q[THIEVES]; /* each thief steals into its own queue */
    mt_atomic owner_done;
    mt_atomic taken, steals, errors; /* checked on the test's thread */
    uint8_t *seen[THIEVES + 1];      /* bitmaps of values 1..TASKS; [0]: owner */
} race;

/* Marks `v` taken by `who`; counts an error for a duplicate or bogus one. */
static void take(race *r, unsigned who, uint64_t v, uint64_t *errors) {
    uint8_t *seen = r->seen[who];
    if (v < 1 || v > TASKS || (seen[v / 8] & (1u << v % 8))) {
        (*errors)++;
        return;
    }
    seen[v / 8] |= (uint8_t)(1u << v % 8);
}

typedef struct thief_arg {
    race *r;
    unsigned index;
} thief_arg;

static void *thief(void *arg) {
    thief_arg *a = arg;
    race *r = a->r;
    mt_deque *mine = &r->thief_q[a->index];
    uint64_t taken = 0, steals = 0, errors = 0;
    tml_join *t = NULL;
    for (;;) {
        bool done = mt_atomic_load_acquire(&r->owner_done);
        uint32_t n = mt_deque_steal(&r->victim, mine, &t);
        if (n > 0) {
            steals++;
            take(r, a->index + 1, VALUE(t), &errors);
            taken++;
            while (mt_deque_pop(mine, &t)) { /* run the rest of the batch */
                take(r, a->index + 1, VALUE(t), &errors);
                taken++;
            }
        } else if (done && mt_deque_len(&r->victim) == 0) {
            break;
        }
    }
    mt_atomic_fetch_add(&r->taken, taken);
    mt_atomic_fetch_add(&r->steals, steals);
    mt_atomic_fetch_add(&r->errors, errors);
    return NULL;
}

/* RT-STEAL-1: owner push/pop with two thieves, exactly once, across wrap-around */
Test(mt_deque, owner_and_two_thieves_take_every_task_exactly_once, .timeout = 10) {
    static race r;
    static tml_join *half[MT_DEQUE_CAP];
    thief_arg args[THIEVES];
    pthread_t threads[THIEVES];
    mt_deque_init(&r.victim);
    for (unsigned i = 0; i <= THIEVES; i++) {
        r.seen[i] = calloc(TASKS / 8 + 1, 1);
        cr_assert_not_null(r.seen[i]);
    }
    for (unsigned i = 0; i < THIEVES; i++) {
        mt_deque_init(&r.thief_q[i]);
        args[i] = (thief_arg){&r, i};
        threads[i] = foreign_thread(thief, &args[i]);
    }
    uint64_t taken = 0, errors = 0;
    tml_join *t = NULL;
    for (uint64_t v = 1; v <= TASKS; v++) {
        while (!mt_deque_push(&r.victim, TASK(v))) { /* full: move half out, as overflow does */
            uint32_t n = mt_deque_take_half(&r.victim, half);
            for (uint32_t i = 0; i < n; i++, taken++)
                take(&r, 0, VALUE(half[i]), &errors);
        }
        if (v % 3 == 0 && mt_deque_pop(&r.victim, &t)) { /* the owner runs some itself */
            take(&r, 0, VALUE(t), &errors);
            taken++;
        }
    }
    while (mt_deque_pop(&r.victim, &t)) {
        take(&r, 0, VALUE(t), &errors);
        taken++;
    }
    mt_atomic_store_release(&r.owner_done, 1);
    for (unsigned i = 0; i < THIEVES; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(errors + mt_atomic_load(&r.errors), 0);
    cr_assert_eq(taken + mt_atomic_load(&r.taken), TASKS);
    uint64_t wrong = 0; /* tasks not taken exactly once, across the takers */
    for (uint64_t v = 1; v <= TASKS; v++) {
        unsigned hits = 0;
        for (unsigned i = 0; i <= THIEVES; i++)
            hits += (r.seen[i][v / 8] >> v % 8) & 1;
        wrong += hits != 1;
    }
    cr_assert_eq(wrong, 0);
    cr_assert_gt(mt_atomic_load(&r.steals), 0); /* the thieves did steal */
    for (unsigned i = 0; i <= THIEVES; i++)
        free(r.seen[i]);
}
