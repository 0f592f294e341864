/* mt_runtime_test.c - the runtime object and the ABI around it: wakes
 * from foreign threads (the seed bug; 1M of them against live tasks),
 * stale tokens after slot reuse (1M of them) and after destroy,
 * TML_WORKERS, block_on, shutdown refusing foreign spawns, several
 * runtimes side by side, the worker-id budget, and the current-thread
 * runtime (tasks on the calling thread, foreign wakes and spawns, timers,
 * shutdown), and the shutdown deadline: blocking waits it ends (in a task,
 * on a foreign thread, block_on), a current-thread runtime's, and one too
 * long to reach. */
#include <errno.h>
#include <sched.h>

#include "rt_test.h"

/* What a waiting task and the thread that wakes it share. */
typedef struct handoff {
    mt_atomic token; /* the task's waker, published at each Pending */
    mt_atomic go;    /* set by the waker before it wakes */
    mt_atomic polls;
    latch published, done;
} handoff;

static void handoff_init(handoff *h) {
    mt_atomic_store(&h->token, 0);
    mt_atomic_store(&h->go, 0);
    mt_atomic_store(&h->polls, 0);
    latch_init(&h->published);
    latch_init(&h->done);
}

/* async func waiter(h) { until h.go { publish waker; Pending } }
 * Returns Pending after publishing its waker, like any leaf that must be
 * woken from outside (an I/O completion, a foreign callback). */
typedef struct waiter_frame {
    uint32_t state;
    handoff *h;
} waiter_frame;

static tml_poll waiter_poll(void *frame, tml_cx *cx) {
    handoff *h = ((waiter_frame *)frame)->h;
    mt_atomic_fetch_add(&h->polls, 1);
    if (mt_atomic_load_acquire(&h->go)) { /* pairs with the release in wake_it */
        latch_add(&h->done, 1);
        return TML_READY;
    }
    mt_atomic_store_release(&h->token, cx->waker);
    latch_add(&h->published, 1);
    return TML_PENDING;
}

static const tml_task_vt waiter_vt = {waiter_poll, sizeof(waiter_frame), 0, 0, NULL, "waiter", NULL};

/* The foreign side: a plain pthread the runtime did not create. */
static void *wake_it(void *arg) {
    handoff *h = arg;
    mt_atomic_store_release(&h->go, 1);
    tml_wake(mt_atomic_load_acquire(&h->token));
    return NULL;
}

Test(mt_runtime, foreign_thread_wake_completes_a_pending_task, .timeout = 10) {
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    for (int i = 0; i < 300; i++) { /* workers parked or parking: both orders */
        handoff h;
        tml_join *j;
        handoff_init(&h);
        cr_assert_eq(mt_runtime_spawn(rt, &waiter_vt, &(waiter_frame){.h = &h}, &j), 0);
        cr_assert(latch_wait(&h.published, 1));
        pthread_join(foreign_thread(wake_it, &h), NULL);
        cr_assert(latch_wait(&h.done, 1));
        tml_join_release(j);
    }
    mt_runtime_destroy(rt);
}

/* async func record(out) { *out = my waker } */
typedef struct record_frame {
    uint32_t state;
    tml_waker *out;
} record_frame;

static tml_poll record_poll(void *frame, tml_cx *cx) {
    *((record_frame *)frame)->out = cx->waker;
    return TML_READY;
}

static const tml_task_vt record_vt = {record_poll, sizeof(record_frame), 0, 0, NULL, "record", NULL};

/* Every earlier wake that reached the global queue of a one-worker
 * runtime has been run once this returns (FIFO queue, one worker). */
static void barrier(mt_runtime *rt) {
    tml_waker ignored;
    cr_assert_eq(mt_runtime_block_on(rt, &record_vt, &(record_frame){.out = &ignored}, NULL), 0);
}

/* Spawns a waiter on `rt` and returns its token once it is pending. */
static tml_waker pending_waiter(mt_runtime *rt, handoff *h, tml_join **j) {
    handoff_init(h);
    cr_assert_eq(mt_runtime_spawn(rt, &waiter_vt, &(waiter_frame){.h = h}, j), 0);
    cr_assert(latch_wait(&h->published, 1));
    return mt_atomic_load_acquire(&h->token);
}

/* async func reuse(h) -> JoinHandle {
 *     let old = await spawn(record());   // its slot is freed on this worker
 *     spawn(waiter(h))                   // takes the same slot, next generation
 * } Spawns from inside the runtime reuse the worker's freed slots first. */
typedef struct reuse_frame {
    uint32_t state;
    handoff *h;
    tml_waker *old;
    tml_join *child;
    tml_join_fut aw;
    tml_join *ret;
} reuse_frame;

static tml_poll reuse_poll(void *frame, tml_cx *cx) {
    reuse_frame *f = frame;
    if (f->state == 0) {
        f->child = tml_spawn(&record_vt, &(record_frame){.out = f->old});
        tml_join_init(&f->aw, f->child, NULL);
        f->state = 1;
    }
    if (tml_join_poll(&f->aw, cx) == TML_PENDING)
        return TML_PENDING;
    tml_join_release(f->child);
    f->ret = tml_spawn(&waiter_vt, &(waiter_frame){.h = f->h});
    return TML_READY;
}

static const tml_task_vt reuse_vt = {reuse_poll, sizeof(reuse_frame), offsetof(reuse_frame, ret),
                                     sizeof(tml_join *), NULL, "reuse", NULL};

Test(mt_runtime, stale_token_wake_after_slot_reuse_does_not_poll_the_new_task, .timeout = 10) {
    SKIP_UNDER_CHAOS("it asserts that the stale wakes polled nothing, and chaos wakes tasks spuriously");
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new(1, &rt), 0);
    tml_waker old;
    handoff h;
    tml_join *j;
    handoff_init(&h);
    cr_assert_eq(mt_runtime_block_on(rt, &reuse_vt, &(reuse_frame){.h = &h, .old = &old}, &j), 0);
    cr_assert(latch_wait(&h.published, 1));
    tml_waker now = mt_atomic_load_acquire(&h.token);
    cr_assert_eq(mt_token_slot(now), mt_token_slot(old)); /* the slot was reused */
    cr_assert_eq(mt_token_gen(now), mt_token_gen(old) + 1);
    tml_wake(old); /* stale: must not schedule the new task */
    barrier(rt);
    cr_assert_eq(mt_atomic_load(&h.polls), 1);
    pthread_join(foreign_thread(wake_it, &h), NULL); /* its own token does */
    cr_assert(latch_wait(&h.done, 1));
    cr_assert_eq(mt_atomic_load(&h.polls), 2);
    tml_join_release(j);
    mt_runtime_destroy(rt);
}

Test(mt_runtime, wake_after_destroy_is_a_noop, .timeout = 10) {
    mt_runtime *rt;
    tml_waker t;
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    cr_assert_eq(mt_runtime_block_on(rt, &record_vt, &(record_frame){.out = &t}, NULL), 0);
    mt_runtime_destroy(rt);
    tml_wake(t); /* its slab is freed: ASan would catch any access */
    tml_wake(~t);
    tml_wake(0);
}

Test(mt_runtime, old_token_misses_a_later_runtime_reusing_its_worker_id, .timeout = 10) {
    SKIP_UNDER_CHAOS("it asserts that the stale wake polled nothing, and chaos wakes tasks spuriously");
    mt_runtime *rt;
    tml_waker old;
    cr_assert_eq(mt_runtime_new(1, &rt), 0);
    cr_assert_eq(mt_runtime_block_on(rt, &record_vt, &(record_frame){.out = &old}, NULL), 0);
    mt_runtime_destroy(rt);
    cr_assert_eq(mt_runtime_new(1, &rt), 0);
    handoff h;
    tml_join *j;
    tml_waker now = pending_waiter(rt, &h, &j);
    cr_assert_eq(mt_token_worker(now), mt_token_worker(old)); /* same id ... */
    cr_assert_eq(mt_token_slot(now), mt_token_slot(old));     /* same slot ... */
    cr_assert_neq(mt_token_gen(now), mt_token_gen(old));      /* new generation */
    tml_wake(old);
    barrier(rt);
    cr_assert_eq(mt_atomic_load(&h.polls), 1);
    pthread_join(foreign_thread(wake_it, &h), NULL);
    cr_assert(latch_wait(&h.done, 1));
    tml_join_release(j);
    mt_runtime_destroy(rt);
}

typedef struct destroy_arg {
    mt_runtime *rt;
    latch done;
} destroy_arg;

static void *destroy_it(void *arg) {
    destroy_arg *d = arg;
    mt_runtime_destroy(d->rt);
    latch_add(&d->done, 1);
    return NULL;
}

/* async func gate_then_spawn(g) { await g.recv(); spawn(ready()) } */
static mt_atomic children;

static tml_poll child_poll(void *frame, tml_cx *cx) {
    (void)frame;
    (void)cx;
    mt_atomic_fetch_add(&children, 1);
    return TML_READY;
}

static const tml_task_vt child_vt = {child_poll, sizeof(uint32_t), 0, 0, NULL, "child", NULL};

typedef struct gate_frame {
    gate gate;
} gate_frame;

static tml_poll gate_poll(void *frame, tml_cx *cx) {
    gate_frame *f = frame;
    if (gate_wait(&f->gate, cx) == TML_PENDING)
        return TML_PENDING;
    tml_join_release(tml_spawn(&child_vt, &(uint32_t){0})); /* from inside: allowed */
    tml_receiver_release(f->gate.g);
    return TML_READY;
}

static const tml_task_vt gate_vt = {gate_poll, sizeof(gate_frame), 0, 0, NULL, "gate", NULL};

Test(mt_runtime, shutdown_refuses_foreign_spawns_and_waits_for_tasks, .timeout = 10) {
    destroy_arg d;
    tml_join *j;
    latch_init(&d.done);
    cr_assert_eq(mt_runtime_new(2, &d.rt), 0);
    tml_chan *g = tml_chan_new(sizeof(int64_t), 1, NULL);
    cr_assert_eq(mt_runtime_spawn(d.rt, &gate_vt, &(gate_frame){.gate.g = g}, &j), 0);
    tml_join_release(j);
    pthread_t t = foreign_thread(destroy_it, &d);
    int err;
    int64_t deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    do { /* until destroy has begun; the gate keeps it from finishing */
        err = mt_runtime_spawn(d.rt, &child_vt, &(uint32_t){0}, &j);
        if (err == 0)
            tml_join_release(j);
    } while (err == 0 && tml_now_ns() < deadline);
    cr_assert_eq(err, -ESHUTDOWN);
    cr_assert_eq(latch_count(&d.done), 0); /* still waiting for the gate */
    tml_sender_release(g);                 /* closes: the gate opens */
    cr_assert(latch_wait(&d.done, 1));
    pthread_join(t, NULL);
    cr_assert_geq(mt_atomic_load(&children), 1); /* its inside spawn ran */
}

/* A task that waits for a wake nobody will send; its drop is counted. */
typedef struct stuck_frame {
    uint32_t state;
    latch *polled, *dropped;
} stuck_frame;

static tml_poll stuck_poll(void *frame, tml_cx *cx) {
    (void)cx;
    stuck_frame *f = frame;
    if (f->state++ == 0)
        latch_add(f->polled, 1);
    return TML_PENDING;
}

static void stuck_drop(void *frame) { latch_add(((stuck_frame *)frame)->dropped, 1); }

static const tml_task_vt stuck_vt = {stuck_poll, sizeof(stuck_frame), 0, 0, NULL, "stuck",
                                     stuck_drop};

/* RT-SHUTDOWN-1: a task still waiting at the deadline is dropped: its
 * frame's drop runs once, and a handle to it reports NoResult */
Test(mt_runtime, shutdown_drops_a_stuck_task_at_its_deadline, .timeout = 10) {
    latch polled, dropped;
    latch_init(&polled);
    latch_init(&dropped);
    mt_runtime *rt;
    tml_join *j;
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    mt_runtime_set_shutdown_timeout(rt, 20 * 1000000);
    cr_assert_eq(mt_runtime_spawn(rt, &stuck_vt, &(stuck_frame){0, &polled, &dropped}, &j), 0);
    cr_assert(latch_wait(&polled, 1));
    int64_t t0 = tml_now_ns();
    mt_runtime_shutdown(rt);
    cr_assert_geq(tml_now_ns() - t0, 20 * 1000000); /* it waited for the deadline */
    cr_assert_eq(latch_count(&dropped), 1);
    cr_assert(tml_join_is_finished(j));
    cr_assert_eq(mt_join_take(j, NULL), TML_JOIN_NO_RESULT);
    tml_join_release(j);
    mt_runtime_destroy(rt);
}

Test(mt_runtime, block_on_returns_the_result_and_can_repeat, .timeout = 10) {
    enter_with_workers("2");
    for (int i = 0; i < 50; i++) {
        tml_waker t = 0;
        tml_block_on(&record_vt, &(record_frame){.out = &t}, NULL);
        cr_assert_neq(t, 0);
    }
    cr_assert_eq(tml_main_exit(3), 3);
}

Test(mt_runtime, tml_workers_sets_the_worker_count, .timeout = 10) {
    enter_with_workers("3");
    cr_assert_eq(mt_runtime_current()->nworkers, 3);
    tml_main_exit(0);
}

Test(mt_runtime, tml_workers_zero_panics, .timeout = 10, .exit_code = 101) {
    enter_with_workers("0");
}

Test(mt_runtime, tml_workers_negative_panics, .timeout = 10, .exit_code = 101) {
    enter_with_workers("-2");
}

Test(mt_runtime, tml_workers_garbage_panics, .timeout = 10, .exit_code = 101) {
    enter_with_workers("4x");
}

/* Windows' C runtime cannot hold an empty variable (setting one deletes
 * it), so there the case does not arise. */
#ifndef _WIN32
Test(mt_runtime, tml_workers_empty_panics, .timeout = 10, .exit_code = 101) {
    enter_with_workers("");
}
#endif

/* async func whoami() -> U32: the worker id in the task's own token. */
static tml_poll whoami_poll(void *frame, tml_cx *cx) {
    *(unsigned *)frame = mt_token_worker(cx->waker);
    return TML_READY;
}

static const tml_task_vt whoami_vt = {whoami_poll, sizeof(unsigned), 0, sizeof(unsigned), NULL, "whoami", NULL};

Test(mt_runtime, runtimes_side_by_side_get_distinct_worker_ids, .timeout = 10) {
    mt_runtime *a, *b;
    unsigned ida = 0, idb = 0;
    cr_assert_eq(mt_runtime_new(2, &a), 0);
    cr_assert_eq(mt_runtime_new(3, &b), 0);
    cr_assert_eq(mt_runtime_block_on(a, &whoami_vt, &(unsigned){0}, &ida), 0);
    cr_assert_eq(mt_runtime_block_on(b, &whoami_vt, &(unsigned){0}, &idb), 0);
    cr_assert(ida - a->id_base < 2);
    cr_assert(idb - b->id_base < 3);
    cr_assert(a->id_base + 2 <= b->id_base || b->id_base + 3 <= a->id_base);
    mt_runtime_destroy(a);
    mt_runtime_destroy(b);
}

Test(mt_runtime, worker_ids_are_a_budget_of_256, .timeout = 10) {
    mt_runtime *a, *b, *c;
    cr_assert_eq(mt_runtime_new(0, &a), -EINVAL);
    cr_assert_eq(mt_runtime_new(MT_MAX_WORKERS + 1, &a), -EINVAL);
    cr_assert_eq(mt_runtime_new(200, &a), 0);
    cr_assert_eq(mt_runtime_new(100, &b), -EAGAIN);
    cr_assert_eq(mt_runtime_new(56, &b), 0);
    mt_runtime_destroy(a);
    cr_assert_eq(mt_runtime_new(100, &c), 0); /* freed ids are reused */
    mt_runtime_destroy(b);
    mt_runtime_destroy(c);
}

/* ------------------------------------------------- wakes under contention */

#define CELLS 64
#define WAKERS 4
#define WAKES_PER_WAKER (250000 / TEST_SCALE) /* 1M wakes in all */

/* One live task and the wakes sent to it. */
typedef struct wake_cell {
    mt_atomic sent;  /* wakes sent so far; each is followed by tml_wake */
    mt_atomic token; /* the task's waker, published at its first poll */
    mt_atomic polls;
    uint64_t target; /* wakes it will receive in all */
    latch *published, *done;
} wake_cell;

/* async func counted(cell) { until cell.sent == cell.target { Pending } }:
 * a lost wake leaves it pending forever, because no other wake follows
 * the last one. */
typedef struct counted_frame {
    uint32_t state;
    wake_cell *c;
} counted_frame;

static tml_poll counted_poll(void *frame, tml_cx *cx) {
    counted_frame *f = frame;
    wake_cell *c = f->c;
    mt_atomic_fetch_add(&c->polls, 1);
    if (f->state == 0) {
        mt_atomic_store_release(&c->token, cx->waker);
        latch_add(c->published, 1);
        f->state = 1;
    }
    if (mt_atomic_load_acquire(&c->sent) == c->target) { /* pairs with the waker's RMW */
        latch_add(c->done, 1);
        return TML_READY;
    }
    return TML_PENDING;
}

static const tml_task_vt counted_vt = {counted_poll, sizeof(counted_frame), 0, 0, NULL, "counted", NULL};

static unsigned cell_of(unsigned waker, uint64_t n) {
    return (unsigned)((n * WAKERS + waker) % CELLS);
}

typedef struct waker_arg {
    wake_cell *cells;
    unsigned index;
} waker_arg;

static void *send_wakes(void *arg) {
    waker_arg *a = arg;
    for (uint64_t n = 0; n < WAKES_PER_WAKER; n++) {
        wake_cell *c = &a->cells[cell_of(a->index, n)];
        mt_atomic_fetch_add(&c->sent, 1);
        tml_wake(mt_atomic_load_acquire(&c->token));
    }
    return NULL;
}

/* RT-WAKE-3: 1M wakes from 4 foreign threads lose none */
Test(mt_runtime, a_million_foreign_wakes_against_live_tasks_lose_none, .timeout = 10) {
    static wake_cell cells[CELLS];
    latch published, done;
    latch_init(&published);
    latch_init(&done);
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    for (unsigned w = 0; w < WAKERS; w++) {
        for (uint64_t n = 0; n < WAKES_PER_WAKER; n++)
            cells[cell_of(w, n)].target++;
    }
    tml_join *h[CELLS];
    for (unsigned i = 0; i < CELLS; i++) {
        cells[i].published = &published;
        cells[i].done = &done;
        cr_assert_eq(mt_runtime_spawn(rt, &counted_vt, &(counted_frame){.c = &cells[i]}, &h[i]), 0);
    }
    cr_assert(latch_wait(&published, CELLS));
    waker_arg args[WAKERS];
    pthread_t threads[WAKERS];
    for (unsigned w = 0; w < WAKERS; w++) {
        args[w] = (waker_arg){cells, w};
        threads[w] = foreign_thread(send_wakes, &args[w]);
    }
    for (unsigned w = 0; w < WAKERS; w++)
        pthread_join(threads[w], NULL);
    cr_assert(latch_wait(&done, CELLS)); /* every task saw its last wake */
    uint64_t polls = 0;
    for (unsigned i = 0; i < CELLS; i++) {
        cr_assert_eq(mt_atomic_load(&cells[i].sent), cells[i].target);
        cr_assert_leq(mt_atomic_load(&cells[i].polls), cells[i].target + 1); /* wakes coalesce */
        polls += mt_atomic_load(&cells[i].polls);
        tml_join_release(h[i]);
    }
    cr_assert_geq(polls, 2 * CELLS);
    mt_runtime_destroy(rt);
}

typedef struct stale_arg {
    tml_waker token;
} stale_arg;

static void *send_stale_wakes(void *arg) {
    stale_arg *a = arg;
    for (uint64_t n = 0; n < WAKES_PER_WAKER; n++)
        tml_wake(a->token);
    return NULL;
}

/* RT-WAKE-3: 1M stale wakes after slot reuse are no-ops */
Test(mt_runtime, a_million_stale_wakes_after_slot_reuse_are_noops, .timeout = 10) {
    SKIP_UNDER_CHAOS("it asserts that the stale wakes polled nothing, and chaos wakes tasks spuriously");
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new(1, &rt), 0);
    tml_waker old;
    handoff h;
    tml_join *j;
    handoff_init(&h);
    cr_assert_eq(mt_runtime_block_on(rt, &reuse_vt, &(reuse_frame){.h = &h, .old = &old}, &j), 0);
    cr_assert(latch_wait(&h.published, 1));
    cr_assert_eq(mt_token_slot(mt_atomic_load_acquire(&h.token)), mt_token_slot(old)); /* reused */
    stale_arg arg = {old};
    pthread_t threads[WAKERS];
    for (unsigned w = 0; w < WAKERS; w++)
        threads[w] = foreign_thread(send_stale_wakes, &arg);
    for (unsigned w = 0; w < WAKERS; w++)
        pthread_join(threads[w], NULL);
    barrier(rt);
    cr_assert_eq(mt_atomic_load(&h.polls), 1); /* the slot's new task was never polled */
    pthread_join(foreign_thread(wake_it, &h), NULL);
    cr_assert(latch_wait(&h.done, 1));
    tml_join_release(j);
    mt_runtime_destroy(rt);
}

typedef struct tokens_arg {
    tml_waker *tokens;
    unsigned n;
} tokens_arg;

static void *wake_all(void *arg) {
    tokens_arg *a = arg;
    for (int round = 0; round < 100; round++) {
        for (unsigned i = 0; i < a->n; i++)
            tml_wake(a->tokens[i]);
    }
    return NULL;
}

/* RT-WAKE-3: wakes after mt_runtime_destroy neither crash nor leak */
Test(mt_runtime, foreign_wakes_after_destroy_are_noops, .timeout = 10) {
    enum { N = 100 };
    tml_waker tokens[N];
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(mt_runtime_block_on(rt, &record_vt, &(record_frame){.out = &tokens[i]}, NULL), 0);
    mt_runtime_destroy(rt);
    tokens_arg arg = {tokens, N};
    pthread_t threads[WAKERS];
    for (unsigned w = 0; w < WAKERS; w++) /* the slabs are freed: ASan watches */
        threads[w] = foreign_thread(wake_all, &arg);
    for (unsigned w = 0; w < WAKERS; w++)
        pthread_join(threads[w], NULL);
}

/* ----------------------------------------------- current-thread runtime */

/* async func where() -> pthread_t: the thread that polls it. */
static tml_poll where_poll(void *frame, tml_cx *cx) {
    (void)cx;
    *(pthread_t *)frame = pthread_self();
    return TML_READY;
}

static const tml_task_vt where_vt = {where_poll, sizeof(pthread_t), 0, sizeof(pthread_t), NULL, "where", NULL};

/* RT-CURRENT-1: the current-thread runtime runs everything on the calling thread */
Test(mt_runtime, current_thread_runtime_runs_tasks_on_the_calling_thread, .timeout = 10) {
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new_current_thread(&rt), 0);
    pthread_t ran = 0;
    cr_assert_eq(mt_runtime_block_on(rt, &where_vt, &(pthread_t){0}, &ran), 0);
    cr_assert(pthread_equal(ran, pthread_self()));
    tml_waker old;
    handoff h;
    tml_join *j;
    handoff_init(&h);
    /* spawns and joins from inside: `reuse` awaits a child, then spawns a waiter */
    cr_assert_eq(mt_runtime_block_on(rt, &reuse_vt, &(reuse_frame){.h = &h, .old = &old}, &j), 0);
    cr_assert_neq(old, 0);
    cr_assert_eq(mt_atomic_load(&h.polls), 0); /* block_on returned: nobody drives the waiter */
    mt_atomic_store_release(&h.go, 1);
    mt_runtime_destroy(rt); /* drives the loop until no task is live */
    cr_assert_eq(latch_count(&h.done), 1);
    tml_join_release(j);
}

static void *wake_when_published(void *arg) {
    handoff *h = arg;
    if (latch_wait(&h->published, 1))
        wake_it(h);
    return NULL;
}

Test(mt_runtime, current_thread_runtime_takes_a_wake_from_a_foreign_thread, .timeout = 10) {
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new_current_thread(&rt), 0);
    for (int i = 0; i < 100; i++) { /* the driver parked or parking: both orders */
        handoff h;
        handoff_init(&h);
        pthread_t t = foreign_thread(wake_when_published, &h);
        cr_assert_eq(mt_runtime_block_on(rt, &waiter_vt, &(waiter_frame){.h = &h}, NULL), 0);
        pthread_join(t, NULL);
        cr_assert_eq(latch_count(&h.done), 1);
    }
    mt_runtime_destroy(rt);
}

typedef struct remote_spawn {
    mt_runtime *rt;
    handoff *h;
    int err;
} remote_spawn;

/* async func wake_task(h) { wake_it(h) } */
static tml_poll wake_task_poll(void *frame, tml_cx *cx) {
    (void)cx;
    wake_it(*(handoff **)frame);
    return TML_READY;
}

static const tml_task_vt wake_task_vt = {wake_task_poll, sizeof(handoff *), 0, 0, NULL, "wake_task", NULL};

static void *spawn_when_published(void *arg) {
    remote_spawn *r = arg;
    tml_join *j;
    if (!latch_wait(&r->h->published, 1))
        return NULL;
    r->err = mt_runtime_spawn(r->rt, &wake_task_vt, &r->h, &j);
    if (r->err == 0)
        tml_join_release(j);
    return NULL;
}

Test(mt_runtime, current_thread_runtime_runs_a_foreign_spawn_while_driven, .timeout = 10) {
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new_current_thread(&rt), 0);
    handoff h;
    handoff_init(&h);
    remote_spawn r = {rt, &h, -1};
    pthread_t t = foreign_thread(spawn_when_published, &r);
    /* the waiter ends only when the foreign spawn has run on this thread */
    cr_assert_eq(mt_runtime_block_on(rt, &waiter_vt, &(waiter_frame){.h = &h}, NULL), 0);
    pthread_join(t, NULL);
    cr_assert_eq(r.err, 0);
    mt_runtime_destroy(rt);
}

/* async func doze(flag) { await sleep(2 ms); flag = 1 } */
typedef struct doze_frame {
    uint32_t state;
    mt_atomic *flag;
    tml_sleep_fut aw;
} doze_frame;

static tml_poll doze_poll(void *frame, tml_cx *cx) {
    doze_frame *f = frame;
    if (f->state == 0) {
        tml_sleep_init(&f->aw, 2000000);
        f->state = 1;
    }
    if (tml_sleep_poll(&f->aw, cx) == TML_PENDING)
        return TML_PENDING;
    mt_atomic_store_release(f->flag, 1);
    return TML_READY;
}

static const tml_task_vt doze_vt = {doze_poll, sizeof(doze_frame), 0, 0, NULL, "doze", NULL};

Test(mt_runtime, current_thread_runtime_sleeps_and_shutdown_finishes_its_tasks, .timeout = 10) {
    mt_runtime *rt;
    mt_atomic a = {0}, b = {0};
    tml_join *j;
    cr_assert_eq(mt_runtime_new_current_thread(&rt), 0);
    cr_assert_eq(mt_runtime_block_on(rt, &doze_vt, &(doze_frame){.flag = &a}, NULL), 0);
    cr_assert_eq(mt_atomic_load(&a), 1);
    cr_assert_eq(mt_runtime_spawn(rt, &doze_vt, &(doze_frame){.flag = &b}, &j), 0);
    tml_join_release(j);
    cr_assert_eq(mt_atomic_load(&b), 0); /* nobody drives yet */
    mt_runtime_shutdown(rt);             /* drives until it is done */
    cr_assert_eq(mt_atomic_load(&b), 1);
    cr_assert_eq(mt_runtime_block_on(rt, &doze_vt, &(doze_frame){.flag = &a}, NULL), -ESHUTDOWN);
    mt_runtime_destroy(rt);
}

/* ------------------------------------------------- shutdown deadline */

/* Fails the test unless `c` (a gate: capacity 1, empty) has no receiver
 * waiting: a value sent now stays buffered for the next receive, where a
 * leaf left linked on a dead stack would be handed it. */
static void expect_no_receiver(tml_chan *c) {
    int64_t v = 7, got = 0;
    cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK);
    cr_assert_eq(tml_chan_try_recv(c, &got), TML_CHAN_OK);
    cr_assert_eq(got, 7);
}

/* async func recv_blocked(c) -> status { c.recv() without await }: a
 * task that blocks its worker in a blocking wait. */
typedef struct blocked_frame {
    uint32_t state;
    tml_chan *c;
    int32_t *status;
    latch *started, *done;
} blocked_frame;

static tml_poll blocked_poll(void *frame, tml_cx *cx) {
    (void)cx;
    blocked_frame *f = frame;
    int64_t v;
    latch_add(f->started, 1);
    *f->status = tml_chan_recv_blocking(f->c, &v);
    latch_add(f->done, 1);
    return TML_READY;
}

static const tml_task_vt blocked_vt = {blocked_poll, sizeof(blocked_frame), 0, 0, NULL, "recv_blocked", NULL};

/* RT-SHUTDOWN-2: a task blocked in a blocking recv when the deadline
 * passes gets the channel closed, its worker exits, and no waiter is
 * left on the channel */
Test(mt_runtime, shutdown_deadline_ends_a_blocking_wait_inside_a_task, .timeout = 10) {
    latch started, done;
    latch_init(&started);
    latch_init(&done);
    int32_t status = 99;
    mt_runtime *rt;
    tml_join *j;
    tml_chan *c = new_gate();
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    mt_runtime_set_shutdown_timeout(rt, 20 * 1000000);
    cr_assert_eq(mt_runtime_spawn(rt, &blocked_vt, &(blocked_frame){0, c, &status, &started, &done}, &j), 0);
    cr_assert(latch_wait(&started, 1));
    mt_runtime_shutdown(rt); /* joined the blocked worker for ever */
    cr_assert_eq(latch_count(&done), 1);
    cr_assert_eq(status, TML_CHAN_CLOSED);
    cr_assert_eq(mt_join_take(j, NULL), TML_JOIN_OK); /* the task itself went on and finished */
    expect_no_receiver(c);
    tml_join_release(j);
    mt_runtime_destroy(rt);
    release_both(c);
}

typedef struct foreign_recv {
    tml_chan *c;
    int32_t status;
} foreign_recv;

static void *recv_blocking(void *arg) {
    foreign_recv *r = arg;
    int64_t v;
    r->status = tml_chan_recv_blocking(r->c, &v);
    return NULL;
}

/* Waits until some task of `rt` is live (a spawn from another thread
 * counted); false after WAIT_MS. */
static bool wait_live(mt_runtime *rt) {
    int64_t deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    while (mt_runtime_quiet(rt) && tml_now_ns() < deadline)
        sched_yield();
    return !mt_runtime_quiet(rt);
}

/* RT-SHUTDOWN-2: a foreign thread blocked in a recv when the deadline
 * passes gets the channel closed, and its leaf (on its stack, gone
 * afterwards) is off the channel's wait list */
Test(mt_runtime, shutdown_deadline_ends_a_foreign_blocking_recv_and_unlinks_it, .timeout = 10) {
    enter_with_workers("2");
    mt_runtime *rt = mt_runtime_current();
    mt_runtime_set_shutdown_timeout(rt, 20 * 1000000);
    foreign_recv r = {new_gate(), 99};
    pthread_t t = foreign_thread(recv_blocking, &r);
    cr_assert(wait_live(rt)); /* its wait began before the shutdown */
    tml_main_exit(0);
    pthread_join(t, NULL);
    cr_assert_eq(r.status, TML_CHAN_CLOSED);
    expect_no_receiver(r.c); /* crashed, or handed the value to the dead leaf */
    release_both(r.c);
}

typedef struct foreign_block_on {
    mt_runtime *rt;
    latch *polled, *dropped;
    int err;
} foreign_block_on;

static void *block_on_stuck(void *arg) {
    foreign_block_on *b = arg;
    b->err = mt_runtime_block_on(b->rt, &stuck_vt, &(stuck_frame){0, b->polled, b->dropped}, NULL);
    return NULL;
}

/* RT-SHUTDOWN-2: mt_runtime_block_on whose task the deadline dropped
 * returns -ECANCELED (the task's frame dropped once) */
Test(mt_runtime, block_on_reports_a_task_dropped_at_the_deadline, .timeout = 10) {
    latch polled, dropped;
    latch_init(&polled);
    latch_init(&dropped);
    foreign_block_on b = {NULL, &polled, &dropped, 1};
    cr_assert_eq(mt_runtime_new(2, &b.rt), 0);
    mt_runtime_set_shutdown_timeout(b.rt, 20 * 1000000);
    pthread_t t = foreign_thread(block_on_stuck, &b);
    cr_assert(latch_wait(&polled, 1));
    mt_runtime_shutdown(b.rt);
    pthread_join(t, NULL);
    cr_assert_eq(b.err, -ECANCELED); /* was 0, with no result */
    cr_assert_eq(latch_count(&dropped), 1);
    mt_runtime_destroy(b.rt);
}

/* async func wait_gate(g) { await g.recv() }, whose drop is counted. */
typedef struct gated_frame {
    gate gate;
    latch *dropped;
} gated_frame;

static tml_poll gated_poll(void *frame, tml_cx *cx) {
    return gate_wait(&((gated_frame *)frame)->gate, cx);
}

static void gated_drop(void *frame) {
    gated_frame *f = frame;
    if (f->gate.state == 1)
        tml_recv_drop(&f->gate.aw);
    latch_add(f->dropped, 1);
}

static const tml_task_vt gated_vt = {gated_poll, sizeof(gated_frame), 0, 0, NULL, "wait_gate", gated_drop};

#define ABORTED_TASKS 200

typedef struct abort_arg {
    tml_join **hs;
    int from, step; /* aborts hs[from], hs[from + step], ... */
} abort_arg;

static void *abort_some(void *arg) {
    abort_arg *a = arg;
    for (int i = a->from; i < ABORTED_TASKS; i += a->step)
        tml_join_abort(a->hs[i]);
    return NULL;
}

/* RT-ABORT-1: aborts from foreign threads (two per task, racing with
 * each other and with the tasks' first polls) drop every waiting task
 * once: each drop ran, each receive left the channel, every handle gives
 * TML_JOIN_CANCELLED; an abort of a finished task leaves its result */
Test(mt_runtime, foreign_aborts_drop_each_waiting_task_once, .timeout = 10) {
    enter_with_workers("2");
    latch dropped;
    latch_init(&dropped);
    tml_chan *c = new_gate();
    tml_join *hs[ABORTED_TASKS];
    for (int i = 0; i < ABORTED_TASKS; i++)
        hs[i] = tml_spawn(&gated_vt, &(gated_frame){.gate.g = c, .dropped = &dropped});
    abort_arg args[] = {{hs, 0, 1}, {hs, ABORTED_TASKS / 2, 1}, {hs, 1, 2}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = foreign_thread(abort_some, &args[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < ABORTED_TASKS; i++) {
        cr_assert_eq(tml_join_blocking(hs[i], NULL), TML_JOIN_CANCELLED);
        tml_join_release(hs[i]);
    }
    cr_assert_eq(latch_count(&dropped), ABORTED_TASKS);
    expect_no_receiver(c);
    tml_join *done = tml_spawn(&whoami_vt, &(unsigned){0});
    while (!tml_join_is_finished(done))
        tml_yield_blocking();
    tml_join_abort(done); /* stale: its slot may hold another task by now */
    unsigned who;
    cr_assert_eq(tml_join_blocking(done, &who), TML_JOIN_OK);
    tml_join_release(done);
    release_both(c);
    tml_main_exit(0);
}

/* RT-SHUTDOWN-3: a current-thread runtime's shutdown drives its tasks
 * until the deadline, then drops the one still waiting (its receive
 * leaves the channel) and returns */
Test(mt_runtime, current_thread_shutdown_drops_a_waiting_task_at_its_deadline, .timeout = 10) {
    latch dropped;
    latch_init(&dropped);
    mt_runtime *rt;
    tml_join *j;
    tml_chan *c = new_gate();
    cr_assert_eq(mt_runtime_new_current_thread(&rt), 0);
    mt_runtime_set_shutdown_timeout(rt, 100 * 1000000);
    cr_assert_eq(mt_runtime_spawn(rt, &gated_vt, &(gated_frame){.gate.g = c, .dropped = &dropped}, &j), 0);
    int64_t t0 = tml_now_ns();
    mt_runtime_shutdown(rt); /* drove for ever */
    cr_assert_geq(tml_now_ns() - t0, 100 * 1000000);
    cr_assert_eq(latch_count(&dropped), 1);
    cr_assert(tml_join_is_finished(j));
    cr_assert_eq(mt_join_take(j, NULL), TML_JOIN_NO_RESULT);
    expect_no_receiver(c);
    tml_join_release(j);
    mt_runtime_destroy(rt);
    release_both(c);
}

/* RT-SHUTDOWN-4: a deadline beyond the clock's range saturates at
 * MT_NO_DEADLINE instead of wrapping into the past */
Test(mt_runtime, shutdown_deadline_saturates, .timeout = 10) {
    cr_assert_eq(mt_deadline_after(1000, 5), 1005);
    cr_assert_eq(mt_deadline_after(MT_NO_DEADLINE - 6, 5), MT_NO_DEADLINE - 1);
    cr_assert_eq(mt_deadline_after(MT_NO_DEADLINE - 5, 5), MT_NO_DEADLINE);
    cr_assert_eq(mt_deadline_after(tml_now_ns(), INT64_MAX), MT_NO_DEADLINE);
    /* TML_SHUTDOWN_TIMEOUT_MS's largest value, from a clock 1 s in */
    cr_assert_eq(mt_deadline_after(1000000000, INT64_MAX / 1000000 * 1000000), MT_NO_DEADLINE);
}

/* async func nap(ns) { await sleep(ns) } */
typedef struct nap_frame {
    uint32_t state;
    int64_t ns;
    tml_sleep_fut aw;
} nap_frame;

static tml_poll nap_poll(void *frame, tml_cx *cx) {
    nap_frame *f = frame;
    if (f->state == 0) {
        tml_sleep_init(&f->aw, f->ns);
        f->state = 1;
    }
    return tml_sleep_poll(&f->aw, cx);
}

static const tml_task_vt nap_vt = {nap_poll, sizeof(nap_frame), 0, 0, NULL, "nap", NULL};

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* RT-SHUTDOWN-4: with the longest shutdown timeout, shutdown sleeps until
 * its tasks finish (it spun: the deadline wrapped into the past, and the
 * timed wait failed at once) */
Test(mt_runtime, shutdown_with_the_longest_timeout_sleeps_until_the_tasks_finish, .timeout = 10) {
    mt_runtime *rt;
    tml_join *j;
    cr_assert_eq(mt_runtime_new(2, &rt), 0);
    mt_runtime_set_shutdown_timeout(rt, INT64_MAX / 1000000 * 1000000);
    cr_assert_eq(mt_runtime_spawn(rt, &nap_vt, &(nap_frame){.ns = 50 * 1000000}, &j), 0);
    int64_t t0 = tml_now_ns(), cpu0 = thread_cpu_ns();
    mt_runtime_shutdown(rt);
    int64_t wall = tml_now_ns() - t0, cpu = thread_cpu_ns() - cpu0;
    cr_assert(tml_join_is_finished(j));
    cr_assert_eq(mt_join_take(j, NULL), TML_JOIN_OK);
    cr_assert_lt(2 * cpu, wall, "shutdown used %lld ns of CPU in %lld ns", (long long)cpu, (long long)wall);
    tml_join_release(j);
    mt_runtime_destroy(rt);
}

/* RT-SHUTDOWN-4: TML_SHUTDOWN_TIMEOUT_MS takes its largest value (ms that
 * fit in int64 ns), with which the process runtime exits at once when no
 * task is left */
Test(mt_runtime, tml_shutdown_timeout_ms_takes_its_largest_value, .timeout = 10) {
    setenv("TML_SHUTDOWN_TIMEOUT_MS", "9223372036854", 1);
    enter_with_workers("2");
    cr_assert_eq(mt_runtime_current()->shutdown_timeout_ns, INT64_C(9223372036854) * 1000000);
    cr_assert_eq(tml_main_exit(0), 0);
}

Test(mt_runtime, tml_shutdown_timeout_ms_past_its_largest_value_panics, .timeout = 10, .exit_code = 101) {
    setenv("TML_SHUTDOWN_TIMEOUT_MS", "9223372036855", 1);
    enter_with_workers("2");
}
