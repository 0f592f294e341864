/* async_sem_test.c - Semaphore and Notify end to end: the permit bound
 * under contention, FIFO hand-off, dropped acquires (waiting and handed),
 * try_acquire; notify_one's stored permit, notify_all, dropped notified
 * leaves. */
#include "rt_test.h"

#include "async_sync.h"

/* What holders share: how many hold a permit now, the most ever seen,
 * and the order of acquisition. */
typedef struct holders {
    mt_atomic now, max, next;
    int64_t order[64];
} holders;

/* async func holder(s, id, yields, gate): acquire s; note it; yield
 * `yields` times (or await gate) while holding; release s. Bumps `queued`
 * when a poll leaves the acquire leaf waiting in the queue. */
typedef struct holder_frame {
    uint32_t state;
    tml_sem *s;
    int64_t id, yields;
    tml_chan *gate;
    holders *h;
    latch *queued;
    int64_t i, v;
    bool counted; /* this acquire's wait was counted in `queued` */
    union {
        tml_acquire_fut acquire;
        tml_yield_fut yield;
        tml_recv_fut recv;
    } aw;
} holder_frame;

static void enter(holders *h, int64_t id) {
    uint64_t now = mt_atomic_fetch_add(&h->now, 1) + 1;
    uint64_t max = mt_atomic_load(&h->max);
    while (now > max && mt_atomic_cas(&h->max, max, now) != max)
        max = mt_atomic_load(&h->max);
    uint64_t slot = mt_atomic_fetch_add(&h->next, 1);
    if (slot < 64)
        h->order[slot] = id;
}

static tml_poll holder_poll(void *frame, tml_cx *cx) {
    holder_frame *f = frame;
    switch (f->state) {
    case 0:
        tml_acquire_init(&f->aw.acquire, f->s);
        f->counted = false;
        f->state = 1;
        /* fallthrough */
    case 1:
        if (tml_acquire_poll(&f->aw.acquire, cx) == TML_PENDING) {
            if (f->queued && !f->counted && f->aw.acquire.wait.phase == LEAF_QUEUED && !budget_spent(cx)) {
                f->counted = true; /* a spurious re-poll is not a new wait */
                latch_add(f->queued, 1);
            }
            return TML_PENDING;
        }
        enter(f->h, f->id);
        f->state = f->gate ? 3 : 2;
        if (f->gate)
            tml_recv_init(&f->aw.recv, f->gate, &f->v);
        else
            tml_yield_init(&f->aw.yield);
        /* fallthrough */
    case 2:
    case 3:
        for (; f->state == 2 && f->i < f->yields; f->i++) {
            if (tml_yield_poll(&f->aw.yield, cx) == TML_PENDING)
                return TML_PENDING;
            tml_yield_init(&f->aw.yield);
        }
        if (f->state == 3 && tml_recv_poll(&f->aw.recv, cx) == TML_PENDING)
            return TML_PENDING;
    }
    mt_atomic_fetch_add(&f->h->now, -1);
    tml_sem_release(f->s);
    return TML_READY;
}

static const tml_task_vt holder_vt = {.poll = holder_poll, .frame_size = sizeof(holder_frame), .name = "holder"};

static tml_join *spawn_holder(holder_frame f) {
    return tml_spawn(&holder_vt, &f);
}

Test(async_sem, never_more_holders_than_permits_under_a_thousand_tasks, .timeout = 10) {
    enum { TASKS = 1000, PERMITS = 3 };
    enter_with_workers("4");
    holders h = {0};
    tml_sem *s = tml_sem_new(PERMITS);
    tml_join *t[TASKS];
    for (int i = 0; i < TASKS; i++)
        t[i] = spawn_holder((holder_frame){.s = s, .id = i, .yields = i % 4, .h = &h});
    for (int i = 0; i < TASKS; i++)
        join_unit(t[i]);
    cr_assert_eq(mt_atomic_load(&h.next), TASKS);
    cr_assert_leq(mt_atomic_load(&h.max), PERMITS);
    cr_assert_geq(mt_atomic_load(&h.max), 1);
    cr_assert_eq(tml_sem_available(s), PERMITS);
    tml_sem_unref(s);
    tml_main_exit(0);
}

Test(async_sem, queued_acquires_are_served_in_fifo_order, .timeout = 10) {
    enum { N = 12 };
    enter_with_workers("4");
    latch queued;
    latch_init(&queued);
    holders h = {0};
    tml_sem *s = tml_sem_new(0);
    tml_join *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = spawn_holder((holder_frame){.s = s, .id = i, .h = &h, .queued = &queued});
        cr_assert(latch_wait(&queued, i + 1));
    }
    cr_assert_not(tml_sem_try_acquire(s)); /* no permit, waiters queue */
    tml_sem_release(s); /* one permit goes around: each holder releases it to the next */
    for (int i = 0; i < N; i++)
        join_unit(t[i]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(h.order[i], i);
    cr_assert_eq(mt_atomic_load(&h.max), 1);
    cr_assert_eq(tml_sem_available(s), 1);
    tml_sem_unref(s);
    tml_main_exit(0);
}

Test(async_sem, try_acquire_takes_free_permits_only, .timeout = 10) {
    tml_sem *s = tml_sem_new(2);
    cr_assert_eq(tml_sem_available(s), 2);
    cr_assert(tml_sem_try_acquire(s));
    cr_assert(tml_sem_try_acquire(s));
    cr_assert_not(tml_sem_try_acquire(s));
    cr_assert_eq(tml_sem_available(s), 0);
    tml_sem_release(s);
    tml_sem_release(s);
    tml_sem_release(s); /* more than it started with is fine */
    cr_assert_eq(tml_sem_available(s), 3);
    tml_sem_retain(s);
    tml_sem_unref(s);
    tml_sem_unref(s);
}

Test(async_sem, negative_permits_panic, .timeout = 10, .exit_code = 101) {
    tml_sem_new(-1);
}

/* async func drop_acquire(s, gate) -> I32: polls an acquire leaf until it
 * is queued, waits for the gate without polling it again, then drops it.
 * Returns 1 when a permit had been handed to it. */
typedef struct drop_acquire_frame {
    uint32_t state;
    tml_sem *s;
    tml_chan *gate;
    latch *queued;
    int64_t v;
    tml_acquire_fut acquire;
    tml_recv_fut recv;
    int32_t ret;
} drop_acquire_frame;

static tml_poll drop_acquire_poll(void *frame, tml_cx *cx) {
    drop_acquire_frame *f = frame;
    if (f->state == 0) {
        tml_acquire_init(&f->acquire, f->s);
        f->state = 1;
    }
    if (f->state == 1) {
        cr_assert_eq(tml_acquire_poll(&f->acquire, cx), TML_PENDING);
        if (budget_spent(cx))
            return TML_PENDING; /* a budget yield (chaos), not the wait: poll again */
        cr_assert_eq(f->acquire.wait.phase, LEAF_QUEUED);
        latch_add(f->queued, 1);
        tml_recv_init(&f->recv, f->gate, &f->v);
        f->state = 2;
    }
    if (tml_recv_poll(&f->recv, cx) == TML_PENDING)
        return TML_PENDING;
    f->ret = mt_atomic32_load_acquire(&f->acquire.wait.status) == MT_GRANT_PERMIT;
    tml_acquire_drop(&f->acquire);
    return TML_READY;
}

static const tml_task_vt drop_acquire_vt = {.poll = drop_acquire_poll,
                                            .frame_size = sizeof(drop_acquire_frame),
                                            .result_offset = offsetof(drop_acquire_frame, ret),
                                            .result_size = sizeof(int32_t),
                                            .name = "drop_acquire"};

Test(async_sem, a_dropped_waiting_acquire_unlinks, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_sem *s = tml_sem_new(0);
    tml_chan *gate = new_gate();
    tml_join *d = tml_spawn(&drop_acquire_vt, &(drop_acquire_frame){.s = s, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    open_gate(gate);
    cr_assert_eq(join_i32(d), 0);
    tml_sem_release(s); /* nobody waits any more: the permit is free */
    cr_assert_eq(tml_sem_available(s), 1);
    cr_assert(tml_sem_try_acquire(s));
    release_both(gate);
    tml_sem_unref(s);
    tml_main_exit(0);
}

Test(async_sem, a_permit_handed_to_a_dropped_acquire_is_not_lost, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    holders h = {0};
    tml_sem *s = tml_sem_new(0);
    tml_chan *g1 = new_gate(), *g2 = new_gate();
    tml_join *d = tml_spawn(&drop_acquire_vt, &(drop_acquire_frame){.s = s, .gate = g1, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    tml_join *w = spawn_holder((holder_frame){.s = s, .id = 5, .gate = g2, .h = &h, .queued = &queued});
    cr_assert(latch_wait(&queued, 2));
    tml_sem_release(s); /* to the dropper, which does not look */
    cr_assert_eq(tml_sem_available(s), 0);
    open_gate(g1); /* its drop passes the permit on to w */
    cr_assert_eq(join_i32(d), 1);
    open_gate(g2);
    join_unit(w);
    cr_assert_eq(mt_atomic_load(&h.next), 1);
    cr_assert_eq(tml_sem_available(s), 1); /* back to n */
    release_both(g1);
    release_both(g2);
    tml_sem_unref(s);
    tml_main_exit(0);
}

Test(async_sem, a_permit_handed_to_a_dropped_acquire_returns_to_the_pool, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_sem *s = tml_sem_new(0);
    tml_chan *gate = new_gate();
    tml_join *d = tml_spawn(&drop_acquire_vt, &(drop_acquire_frame){.s = s, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    tml_sem_release(s);
    open_gate(gate);
    cr_assert_eq(join_i32(d), 1);
    cr_assert_eq(tml_sem_available(s), 1);
    release_both(gate);
    tml_sem_unref(s);
    tml_main_exit(0);
}

static void *acquire_release_many(void *arg) {
    for (int i = 0; i < 1000 / TEST_SCALE; i++) {
        tml_sem_acquire_blocking(arg);
        tml_sem_release(arg);
    }
    return NULL;
}

Test(async_sem, blocking_acquires_from_foreign_threads_keep_the_count, .timeout = 10) {
    enter_with_workers("2");
    tml_sem *s = tml_sem_new(1);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = foreign_thread(acquire_release_many, s);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(tml_sem_available(s), 1);
    tml_sem_unref(s);
    tml_main_exit(0);
}

/* ---------------------------------------------------------------- notify */

/* async func waiter(n, rounds): awaits n.notified() `rounds` times; bumps
 * `waiting` whenever a poll leaves it queued and `woken` after each. */
typedef struct waiter_frame {
    uint32_t state;
    tml_notify *n;
    int64_t rounds;
    latch *waiting, *woken;
    int64_t i;
    tml_notified_fut aw;
} waiter_frame;

static tml_poll waiter_poll(void *frame, tml_cx *cx) {
    waiter_frame *f = frame;
    for (; f->i < f->rounds; f->i++) {
        if (f->state == 0) {
            tml_notified_init(&f->aw, f->n);
            f->state = 1;
        }
        if (tml_notified_poll(&f->aw, cx) == TML_PENDING) {
            if (f->waiting && f->state == 1 && f->aw.wait.phase == LEAF_QUEUED && !budget_spent(cx)) {
                f->state = 2; /* counted: a spurious re-poll is not a new wait */
                latch_add(f->waiting, 1);
            }
            return TML_PENDING;
        }
        f->state = 0;
        if (f->woken)
            latch_add(f->woken, 1);
    }
    return TML_READY;
}

static const tml_task_vt waiter_vt = {.poll = waiter_poll, .frame_size = sizeof(waiter_frame), .name = "waiter"};

static tml_join *spawn_waiter(waiter_frame f) {
    return tml_spawn(&waiter_vt, &f);
}

Test(async_notify, notify_one_before_the_wait_is_stored_as_one_permit, .timeout = 10) {
    enter_with_workers("2");
    latch waiting, woken;
    latch_init(&waiting);
    latch_init(&woken);
    tml_notify *n = tml_notify_new();
    tml_notify_one(n);
    tml_notify_one(n); /* still one permit */
    tml_join *w = spawn_waiter((waiter_frame){.n = n, .rounds = 2, .waiting = &waiting, .woken = &woken});
    cr_assert(latch_wait(&woken, 1));   /* the stored permit, at once */
    cr_assert(latch_wait(&waiting, 1)); /* the second round waits */
    cr_assert_eq(latch_count(&woken), 1);
    tml_notify_one(n);
    join_unit(w);
    cr_assert_eq(latch_count(&woken), 2);
    tml_notify_one(n);
    tml_notified_blocking(n); /* the blocking form takes a stored permit too */
    tml_notify_release(n);
    tml_main_exit(0);
}

static void *notify_soon(void *n) {
    tml_notify_one(n);
    return NULL;
}

Test(async_notify, notify_one_wakes_the_oldest_waiter_only, .timeout = 10) {
    enter_with_workers("2");
    latch waiting, woken;
    latch_init(&waiting);
    latch_init(&woken);
    tml_notify *n = tml_notify_new();
    tml_join *a = spawn_waiter((waiter_frame){.n = n, .rounds = 1, .waiting = &waiting, .woken = &woken});
    cr_assert(latch_wait(&waiting, 1));
    tml_join *b = spawn_waiter((waiter_frame){.n = n, .rounds = 1, .waiting = &waiting, .woken = &woken});
    cr_assert(latch_wait(&waiting, 2));
    tml_notify_one(n);
    join_unit(a);
    cr_assert_not(tml_join_is_finished(b));
    cr_assert_eq(latch_count(&woken), 1);
    pthread_join(foreign_thread(notify_soon, n), NULL); /* any thread */
    join_unit(b);
    tml_notify_release(n);
    tml_main_exit(0);
}

Test(async_notify, notify_all_wakes_every_waiter_and_stores_nothing, .timeout = 10) {
    enum { N = 20 };
    enter_with_workers("3");
    latch waiting, woken;
    latch_init(&waiting);
    latch_init(&woken);
    tml_notify *n = tml_notify_new();
    tml_notify_all(n); /* nobody waits: nothing happens */
    tml_join *w[N];
    for (int i = 0; i < N; i++)
        w[i] = spawn_waiter((waiter_frame){.n = n, .rounds = 1, .waiting = &waiting, .woken = &woken});
    cr_assert(latch_wait(&waiting, N));
    cr_assert_eq(latch_count(&woken), 0);
    tml_notify_all(n);
    for (int i = 0; i < N; i++)
        join_unit(w[i]);
    cr_assert_eq(latch_count(&woken), N);
    /* no permit was stored: a new waiter waits */
    tml_join *late = spawn_waiter((waiter_frame){.n = n, .rounds = 1, .waiting = &waiting, .woken = &woken});
    cr_assert(latch_wait(&waiting, N + 1));
    cr_assert_not(tml_join_is_finished(late));
    tml_notify_one(n);
    join_unit(late);
    tml_notify_release(n);
    tml_main_exit(0);
}

/* A notified() leaf initialised before notify_all completes even though
 * it was first polled after it (Tokio's notify_waiters). */
typedef struct early_frame {
    tml_notify *n;
    tml_notified_fut aw;
    int32_t ret;
} early_frame;

/* Polls the leaf once: 1 if Ready; else drops it (unlinks) and gives 0.
 * (A budget yield, which chaos makes, is not that poll: it polls again.) */
static tml_poll early_poll(void *frame, tml_cx *cx) {
    early_frame *f = frame;
    f->ret = tml_notified_poll(&f->aw, cx) == TML_READY;
    if (!f->ret && budget_spent(cx))
        return TML_PENDING;
    if (!f->ret)
        tml_notified_drop(&f->aw);
    return TML_READY;
}

static const tml_task_vt early_vt = {.poll = early_poll,
                                     .frame_size = sizeof(early_frame),
                                     .result_offset = offsetof(early_frame, ret),
                                     .result_size = sizeof(int32_t),
                                     .name = "early"};

Test(async_notify, a_leaf_initialised_before_notify_all_is_completed_by_it, .timeout = 10) {
    enter_with_workers("2");
    tml_notify *n = tml_notify_new();
    early_frame before = {.n = n}, after = {.n = n};
    tml_notified_init(&before.aw, n); /* frames are copied before the first poll */
    tml_notify_all(n);
    tml_notified_init(&after.aw, n);
    cr_assert_eq(join_i32(tml_spawn(&early_vt, &before)), 1);
    cr_assert_eq(join_i32(tml_spawn(&early_vt, &after)), 0); /* initialised after: waits */
    tml_notify_release(n);
    tml_main_exit(0);
}

/* async func drop_notified(n, gate) -> I32: waits queued, then drops the
 * leaf at the gate; 1 when a notify_one had been given to it. */
typedef struct drop_notified_frame {
    uint32_t state;
    tml_notify *n;
    tml_chan *gate;
    latch *waiting;
    int64_t v;
    tml_notified_fut aw;
    tml_recv_fut recv;
    int32_t ret;
} drop_notified_frame;

static tml_poll drop_notified_poll(void *frame, tml_cx *cx) {
    drop_notified_frame *f = frame;
    if (f->state == 0) {
        tml_notified_init(&f->aw, f->n);
        f->state = 1;
    }
    if (f->state == 1) {
        cr_assert_eq(tml_notified_poll(&f->aw, cx), TML_PENDING);
        if (budget_spent(cx))
            return TML_PENDING; /* a budget yield (chaos), not the wait: poll again */
        latch_add(f->waiting, 1);
        tml_recv_init(&f->recv, f->gate, &f->v);
        f->state = 2;
    }
    if (tml_recv_poll(&f->recv, cx) == TML_PENDING)
        return TML_PENDING;
    f->ret = mt_atomic32_load_acquire(&f->aw.wait.status) == MT_GRANT_PERMIT;
    tml_notified_drop(&f->aw);
    return TML_READY;
}

static const tml_task_vt drop_notified_vt = {.poll = drop_notified_poll,
                                             .frame_size = sizeof(drop_notified_frame),
                                             .result_offset = offsetof(drop_notified_frame, ret),
                                             .result_size = sizeof(int32_t),
                                             .name = "drop_notified"};

Test(async_notify, a_notify_one_given_to_a_dropped_leaf_passes_on, .timeout = 10) {
    enter_with_workers("2");
    latch waiting, woken;
    latch_init(&waiting);
    latch_init(&woken);
    tml_notify *n = tml_notify_new();
    tml_chan *gate = new_gate();
    tml_join *d = tml_spawn(&drop_notified_vt, &(drop_notified_frame){.n = n, .gate = gate, .waiting = &waiting});
    cr_assert(latch_wait(&waiting, 1));
    tml_join *w = spawn_waiter((waiter_frame){.n = n, .rounds = 1, .waiting = &waiting, .woken = &woken});
    cr_assert(latch_wait(&waiting, 2));
    tml_notify_one(n); /* to the dropper */
    cr_assert_not(tml_join_is_finished(w));
    open_gate(gate);
    cr_assert_eq(join_i32(d), 1);
    join_unit(w); /* got the notification the dropper passed on */
    release_both(gate);
    tml_notify_release(n);
    tml_main_exit(0);
}

Test(async_notify, a_notify_all_wake_of_a_dropped_leaf_is_not_passed_on, .timeout = 10) {
    enter_with_workers("2");
    latch waiting;
    latch_init(&waiting);
    tml_notify *n = tml_notify_new();
    tml_chan *gate = new_gate();
    tml_join *d = tml_spawn(&drop_notified_vt, &(drop_notified_frame){.n = n, .gate = gate, .waiting = &waiting});
    cr_assert(latch_wait(&waiting, 1));
    tml_notify_all(n);
    open_gate(gate);
    cr_assert_eq(join_i32(d), 0);
    /* nothing was stored: a later waiter waits for a notify_one */
    early_frame probe = {.n = n};
    tml_notified_init(&probe.aw, n);
    cr_assert_eq(join_i32(tml_spawn(&early_vt, &probe)), 0);
    release_both(gate);
    tml_notify_release(n);
    tml_main_exit(0);
}
