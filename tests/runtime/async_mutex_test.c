/* async_mutex_test.c - Mutex end to end: exact counts under contention,
 * FIFO hand-off, holding across an await, try_lock, dropped lock leaves
 * (waiting and handed), blocking lockers on foreign threads. */
#include "rt_test.h"

#include "async_sync.h"

/* The guarded value of these tests. `inside` catches two holders at once. */
#define MAX_ORDER 64
typedef struct guarded {
    int64_t count;
    int64_t inside;
    int64_t norder;
    int64_t order[MAX_ORDER]; /* ids in the order they took the lock */
} guarded;

static mt_atomic overlaps; /* times a holder found another one inside */

/* Runs with the lock held: checks exclusion, counts, records `id`. */
static void critical(tml_mutex *m, int64_t id) {
    guarded *g = tml_mutex_value(m);
    if (g->inside++ != 0)
        mt_atomic_fetch_add(&overlaps, 1);
    g->count++;
    if (id >= 0 && g->norder < MAX_ORDER)
        g->order[g->norder++] = id;
    g->inside--;
}

static tml_mutex *new_guarded(void) {
    mt_atomic_store(&overlaps, 0);
    return tml_mutex_new(sizeof(guarded), &(guarded){0}, NULL);
}

static guarded *value(tml_mutex *m) { return tml_mutex_value(m); }

/* async func locker(m, id, iters, gate):
 *   repeat iters times { lock m; critical(id); if gate: await gate.recv()
 *   while holding (once); unlock m }
 * Counts its lock polls, and bumps `queued` each time a lock poll returns
 * Pending with the leaf in the wait queue. */
typedef struct locker_frame {
    uint32_t state;
    tml_mutex *m;
    int64_t id, iters;
    tml_chan *gate;
    latch *queued, *holding;
    mt_atomic *polls;
    int64_t i, v;
    bool counted; /* this lock's wait was counted in `queued` */
    union {
        tml_lock_fut lock;
        tml_recv_fut recv;
    } aw;
} locker_frame;

static tml_poll locker_poll(void *frame, tml_cx *cx) {
    locker_frame *f = frame;
    for (; f->i < f->iters; f->i++) {
        switch (f->state) {
        case 0:
            tml_lock_init(&f->aw.lock, f->m);
            f->counted = false;
            f->state = 1;
            /* fallthrough */
        case 1:
            if (f->polls)
                mt_atomic_fetch_add(f->polls, 1);
            if (tml_lock_poll(&f->aw.lock, cx) == TML_PENDING) {
                if (f->queued && !f->counted && f->aw.lock.wait.phase == LEAF_QUEUED && !budget_spent(cx)) {
                    f->counted = true; /* a spurious re-poll is not a new wait */
                    latch_add(f->queued, 1);
                }
                return TML_PENDING;
            }
            critical(f->m, f->id);
            if (!f->gate)
                break;
            if (f->holding)
                latch_add(f->holding, 1);
            tml_recv_init(&f->aw.recv, f->gate, &f->v);
            f->state = 2;
            /* fallthrough */
        case 2:
            if (tml_recv_poll(&f->aw.recv, cx) == TML_PENDING)
                return TML_PENDING;
            f->gate = NULL;
        }
        tml_mutex_unlock(f->m);
        f->state = 0;
    }
    return TML_READY;
}

static const tml_task_vt locker_vt = {.poll = locker_poll, .frame_size = sizeof(locker_frame), .name = "locker"};

static tml_join *spawn_locker(locker_frame f) {
    return tml_spawn(&locker_vt, &f);
}

Test(async_mutex, thousand_tasks_increment_to_exactly_the_product, .timeout = 10) {
    enum { TASKS = 1000, ITERS = 1000 / TEST_SCALE };
    enter_with_workers("2");
    tml_mutex *m = new_guarded();
    tml_join *h[TASKS];
    for (int i = 0; i < TASKS; i++)
        h[i] = spawn_locker((locker_frame){.m = m, .id = -1, .iters = ITERS});
    for (int i = 0; i < TASKS; i++)
        join_unit(h[i]);
    cr_assert_eq(value(m)->count, (int64_t)TASKS * ITERS);
    cr_assert_eq(mt_atomic_load(&overlaps), 0);
    cr_assert_not(tml_mutex_is_locked(m));
    tml_mutex_release(m);
    tml_main_exit(0);
}

Test(async_mutex, one_worker_runs_contended_lockers_to_the_exact_count, .timeout = 10) {
    enum { TASKS = 100, ITERS = 1000 / TEST_SCALE };
    enter_with_workers("1");
    tml_mutex *m = new_guarded();
    tml_join *h[TASKS];
    for (int i = 0; i < TASKS; i++)
        h[i] = spawn_locker((locker_frame){.m = m, .id = -1, .iters = ITERS});
    for (int i = 0; i < TASKS; i++)
        join_unit(h[i]);
    cr_assert_eq(value(m)->count, (int64_t)TASKS * ITERS);
    tml_mutex_release(m);
    tml_main_exit(0);
}

/* Spawns `n` lockers with ids first.., each queued (the lock is held by
 * someone not running) before the next is spawned, so their queue order
 * is known. */
static void spawn_queued(tml_mutex *m, tml_join **h, int first, int n, latch *queued, mt_atomic *polls) {
    for (int i = 0; i < n; i++) {
        h[i] = spawn_locker((locker_frame){.m = m, .id = first + i, .iters = 1, .queued = queued, .polls = polls});
        cr_assert(latch_wait(queued, first + i + 1));
    }
}

Test(async_mutex, queued_waiters_acquire_in_fifo_order, .timeout = 10) {
    enum { N = 16 };
    enter_with_workers("4");
    latch queued;
    latch_init(&queued);
    tml_mutex *m = new_guarded();
    cr_assert(tml_mutex_try_lock(m)); /* this thread holds it */
    tml_join *h[N];
    spawn_queued(m, h, 0, N, &queued, NULL);
    tml_mutex_unlock(m); /* hands off to waiter 0, which hands to 1, ... */
    for (int i = 0; i < N; i++)
        join_unit(h[i]);
    cr_assert_eq(value(m)->norder, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(value(m)->order[i], i, "position %d took the lock as waiter %ld", i, (long)value(m)->order[i]);
    tml_mutex_release(m);
    tml_main_exit(0);
}

Test(async_mutex, holding_across_an_await_keeps_others_queued_without_polling, .timeout = 10) {
    SKIP_UNDER_CHAOS("it asserts that queued tasks are not polled, and chaos wakes them spuriously");
    enum { N = 8 };
    enter_with_workers("2");
    latch queued, holding;
    latch_init(&queued);
    latch_init(&holding);
    mt_atomic polls = {0};
    tml_mutex *m = new_guarded();
    tml_chan *gate = new_gate();
    tml_join *holder = spawn_locker((locker_frame){.m = m, .id = 100, .iters = 1, .gate = gate, .holding = &holding});
    cr_assert(latch_wait(&holding, 1)); /* it holds the lock and awaits the gate */
    tml_join *h[N];
    spawn_queued(m, h, 0, N, &queued, &polls); /* all wait in the queue */
    int64_t before = (int64_t)mt_atomic_load(&polls);
    cr_assert_eq(latch_count(&queued), N); /* queued once each: no re-polls */
    for (int i = 0; i < N; i++)
        cr_assert_not(tml_join_is_finished(h[i]));
    cr_assert(tml_mutex_is_locked(m));
    cr_assert_not(tml_mutex_try_lock(m));
    open_gate(gate);
    join_unit(holder);
    for (int i = 0; i < N; i++)
        join_unit(h[i]);
    cr_assert_eq(value(m)->count, N + 1);
    /* one poll to queue, one to see the hand-off; a spurious wake or two */
    cr_assert_leq(before, 2 * N);
    cr_assert_leq((int64_t)mt_atomic_load(&polls), 3 * N);
    cr_assert_eq(value(m)->order[0], 100);
    for (int i = 0; i < N; i++)
        cr_assert_eq(value(m)->order[i + 1], i); /* FIFO */
    release_both(gate);
    tml_mutex_release(m);
    tml_main_exit(0);
}

Test(async_mutex, try_lock_fails_while_locked_or_while_waiters_queue, .timeout = 10) {
    enter_with_workers("2");
    latch queued, holding;
    latch_init(&queued);
    latch_init(&holding);
    tml_mutex *m = new_guarded();
    cr_assert_not(tml_mutex_is_locked(m));
    cr_assert(tml_mutex_try_lock(m));
    cr_assert(tml_mutex_is_locked(m));
    cr_assert_not(tml_mutex_try_lock(m)); /* locked */
    tml_chan *g1 = new_gate(), *g2 = new_gate();
    tml_join *w1 = spawn_locker((locker_frame){.m = m, .id = 1, .iters = 1, .gate = g1, .queued = &queued, .holding = &holding});
    cr_assert(latch_wait(&queued, 1));
    tml_join *w2 = spawn_locker((locker_frame){.m = m, .id = 2, .iters = 1, .gate = g2, .queued = &queued, .holding = &holding});
    cr_assert(latch_wait(&queued, 2));
    tml_mutex_unlock(m); /* to w1; w2 still queued */
    cr_assert(latch_wait(&holding, 1));
    cr_assert_not(tml_mutex_try_lock(m)); /* held by w1, w2 waits */
    open_gate(g1);
    cr_assert(latch_wait(&holding, 2));
    cr_assert_not(tml_mutex_try_lock(m)); /* held by w2 */
    open_gate(g2);
    join_unit(w1);
    join_unit(w2);
    cr_assert(tml_mutex_try_lock(m)); /* free and nobody waits */
    tml_mutex_unlock(m);
    cr_assert_eq(value(m)->order[0], 1);
    cr_assert_eq(value(m)->order[1], 2);
    release_both(g1);
    release_both(g2);
    tml_mutex_release(m);
    tml_main_exit(0);
}

/* async func drop_lock(m, gate) -> I32: polls a lock leaf until it is
 * queued, then waits for the gate without polling the leaf again (a hand-
 * off may complete it meanwhile), then drops it. Returns 1 when the drop
 * found the lock handed to it, else 0. */
typedef struct drop_lock_frame {
    uint32_t state;
    tml_mutex *m;
    tml_chan *gate;
    latch *queued;
    int64_t v;
    tml_lock_fut lock;
    tml_recv_fut recv;
    int32_t ret;
} drop_lock_frame;

static tml_poll drop_lock_poll(void *frame, tml_cx *cx) {
    drop_lock_frame *f = frame;
    if (f->state == 0) {
        tml_lock_init(&f->lock, f->m);
        f->state = 1;
    }
    if (f->state == 1) {
        cr_assert_eq(tml_lock_poll(&f->lock, cx), TML_PENDING);
        if (f->lock.wait.phase != LEAF_QUEUED) /* spun or yielded first: poll again */
            return TML_PENDING;
        latch_add(f->queued, 1);
        tml_recv_init(&f->recv, f->gate, &f->v);
        f->state = 2;
    }
    if (tml_recv_poll(&f->recv, cx) == TML_PENDING)
        return TML_PENDING;
    f->ret = mt_atomic32_load_acquire(&f->lock.wait.status) == MT_GRANT_PERMIT;
    tml_lock_drop(&f->lock);
    tml_lock_drop(&f->lock); /* a second drop is a no-op */
    return TML_READY;
}

static const tml_task_vt drop_lock_vt = {.poll = drop_lock_poll,
                                         .frame_size = sizeof(drop_lock_frame),
                                         .result_offset = offsetof(drop_lock_frame, ret),
                                         .result_size = sizeof(int32_t),
                                         .name = "drop_lock"};

Test(async_mutex, a_dropped_waiting_lock_leaf_unlinks, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_mutex *m = new_guarded();
    tml_chan *gate = new_gate();
    cr_assert(tml_mutex_try_lock(m));
    tml_join *d = tml_spawn(&drop_lock_vt, &(drop_lock_frame){.m = m, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    open_gate(gate); /* it drops its leaf while we hold the lock */
    cr_assert_eq(join_i32(d), 0);
    tml_mutex_unlock(m); /* nobody waits: the lock is free, not handed */
    cr_assert_not(tml_mutex_is_locked(m));
    cr_assert(tml_mutex_try_lock(m));
    tml_mutex_unlock(m);
    release_both(gate);
    tml_mutex_release(m);
    tml_main_exit(0);
}

Test(async_mutex, a_lock_handed_to_a_dropped_leaf_passes_to_the_next_waiter, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_mutex *m = new_guarded();
    tml_chan *gate = new_gate();
    cr_assert(tml_mutex_try_lock(m));
    tml_join *d = tml_spawn(&drop_lock_vt, &(drop_lock_frame){.m = m, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    tml_join *w = spawn_locker((locker_frame){.m = m, .id = 7, .iters = 1, .queued = &queued});
    cr_assert(latch_wait(&queued, 2)); /* queued behind the dropper */
    tml_mutex_unlock(m); /* handed to the dropper, which does not look */
    cr_assert(tml_mutex_is_locked(m));
    cr_assert_not(tml_mutex_try_lock(m));
    cr_assert_not(tml_join_is_finished(w));
    open_gate(gate); /* the drop unlocks it: to w */
    cr_assert_eq(join_i32(d), 1);
    join_unit(w);
    cr_assert_eq(value(m)->norder, 1);
    cr_assert_eq(value(m)->order[0], 7);
    cr_assert_not(tml_mutex_is_locked(m));
    release_both(gate);
    tml_mutex_release(m);
    tml_main_exit(0);
}

Test(async_mutex, a_lock_handed_to_a_dropped_leaf_with_nobody_behind_is_unlocked, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_mutex *m = new_guarded();
    tml_chan *gate = new_gate();
    cr_assert(tml_mutex_try_lock(m));
    tml_join *d = tml_spawn(&drop_lock_vt, &(drop_lock_frame){.m = m, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    tml_mutex_unlock(m);
    open_gate(gate);
    cr_assert_eq(join_i32(d), 1);
    cr_assert_not(tml_mutex_is_locked(m));
    cr_assert(tml_mutex_try_lock(m)); /* the fast path works again */
    tml_mutex_unlock(m);
    release_both(gate);
    tml_mutex_release(m);
    tml_main_exit(0);
}

/* A foreign thread's share: blocking lock, critical section, unlock. */
typedef struct blocking_share {
    tml_mutex *m;
    int64_t iters;
} blocking_share;

static void *blocking_locker(void *arg) {
    blocking_share *s = arg;
    for (int64_t i = 0; i < s->iters; i++) {
        tml_mutex_lock_blocking(s->m);
        critical(s->m, -1);
        tml_mutex_unlock(s->m);
    }
    return NULL;
}

Test(async_mutex, blocking_lockers_on_foreign_threads_interleave_with_tasks, .timeout = 10) {
    enum { TASKS = 50, THREADS = 3, ITERS = 2000 / TEST_SCALE };
    enter_with_workers("2");
    tml_mutex *m = new_guarded();
    tml_join *h[TASKS];
    pthread_t t[THREADS];
    blocking_share share = {m, ITERS};
    for (int i = 0; i < THREADS; i++)
        t[i] = foreign_thread(blocking_locker, &share);
    for (int i = 0; i < TASKS; i++)
        h[i] = spawn_locker((locker_frame){.m = m, .id = -1, .iters = ITERS});
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < TASKS; i++)
        join_unit(h[i]);
    cr_assert_eq(value(m)->count, (int64_t)(TASKS + THREADS) * ITERS);
    cr_assert_eq(mt_atomic_load(&overlaps), 0);
    tml_mutex_release(m);
    tml_main_exit(0);
}

static int64_t dropped_value;

static void drop_i64(void *v) {
    dropped_value = *(int64_t *)v;
}

Test(async_mutex, the_last_release_drops_the_value, .timeout = 10) {
    int64_t init = 42;
    tml_mutex *m = tml_mutex_new(sizeof init, &init, drop_i64);
    cr_assert_eq(*(int64_t *)tml_mutex_value(m), 42);
    cr_assert_eq((uintptr_t)tml_mutex_value(m) % _Alignof(max_align_t), 0);
    tml_mutex_retain(m);
    tml_mutex_release(m);
    cr_assert_eq(dropped_value, 0);
    tml_mutex_release(m);
    cr_assert_eq(dropped_value, 42);
}

Test(async_mutex, unlocking_an_unlocked_mutex_panics, .timeout = 10, .exit_code = 101) {
    tml_mutex *m = tml_mutex_new(0, NULL, NULL);
    tml_mutex_unlock(m);
}
