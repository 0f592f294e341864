/* mt_worker_test.c - the worker loop: every spawned task runs (from
 * outside, and from inside through local-queue overflow), a task woken
 * during its poll is polled again but never on two workers at once, the
 * global queue is not starved by a busy local queue, and a blocking wait
 * inside a task hands the worker's queue to the others. */
#include "rt_test.h"

static mt_atomic completed;

/* async func ready() { completed += 1 } */
typedef struct ready_frame {
    uint32_t state;
} ready_frame;

static tml_poll ready_poll(void *frame, tml_cx *cx) {
    (void)frame;
    (void)cx;
    mt_atomic_fetch_add(&completed, 1);
    return TML_READY;
}

static const tml_task_vt ready_vt = {ready_poll, sizeof(ready_frame), 0, 0, NULL, "ready"};

/* async func spawner(n) { for 1..n { spawn(ready()) } } */
typedef struct spawner_frame {
    uint32_t state;
    int n;
} spawner_frame;

static tml_poll spawner_poll(void *frame, tml_cx *cx) {
    (void)cx;
    spawner_frame *f = frame;
    for (int i = 0; i < f->n; i++) /* from a worker: its local queue, then overflow */
        tml_join_release(tml_spawn(&ready_vt, &(ready_frame){0}));
    return TML_READY;
}

static const tml_task_vt spawner_vt = {spawner_poll, sizeof(spawner_frame), 0, 0, NULL, "spawner"};

Test(mt_worker, every_spawned_task_runs_to_completion, .timeout = 10) {
    enum { OUTSIDE = 10000, INSIDE = 4 * MT_DEQUE_CAP };
    enter_with_workers("4");
    for (int i = 0; i < OUTSIDE; i++) /* handles dropped at once */
        tml_join_release(tml_spawn(&ready_vt, &(ready_frame){0}));
    tml_join_release(tml_spawn(&spawner_vt, &(spawner_frame){.n = INSIDE}));
    tml_main_exit(0); /* waits for every task */
    cr_assert_eq(mt_atomic_load(&completed), OUTSIDE + INSIDE);
}

/* async func restless(): wakes itself during its polls, while foreign
 * threads wake it too; checks no two polls ever overlap. */
typedef struct restless_shared {
    mt_atomic in_poll, overlaps, token, polls;
} restless_shared;

typedef struct restless_frame {
    uint32_t state;
    restless_shared *s;
} restless_frame;

#define RESTLESS_POLLS 2000

static tml_poll restless_poll(void *frame, tml_cx *cx) {
    restless_shared *s = ((restless_frame *)frame)->s;
    if (mt_atomic_cas(&s->in_poll, 0, 1) != 0)
        mt_atomic_fetch_add(&s->overlaps, 1);
    mt_atomic_store_release(&s->token, cx->waker);
    uint64_t polls = mt_atomic_fetch_add(&s->polls, 1) + 1;
    if (polls % 2)
        tml_wake(cx->waker); /* woken while running: must be re-polled */
    mt_atomic_store(&s->in_poll, 0);
    return polls >= RESTLESS_POLLS ? TML_READY : TML_PENDING;
}

static const tml_task_vt restless_vt = {restless_poll, sizeof(restless_frame), 0, 0, NULL, "restless"};

typedef struct hammer_arg {
    restless_shared *s;
    tml_join *h;
} hammer_arg;

static void *hammer(void *arg) {
    hammer_arg *a = arg;
    while (!tml_join_is_finished(a->h))
        tml_wake(mt_atomic_load_acquire(&a->s->token));
    return NULL;
}

Test(mt_worker, woken_task_is_repolled_but_never_concurrently, .timeout = 10) {
    enter_with_workers("4");
    restless_shared s = {0};
    tml_join *h = tml_spawn(&restless_vt, &(restless_frame){.s = &s});
    hammer_arg arg = {&s, h};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = foreign_thread(hammer, &arg);
    cr_assert_eq(tml_join_blocking(h, NULL), TML_JOIN_OK); /* odd polls self-wake: it finishes */
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(mt_atomic_load(&s.overlaps), 0);
    cr_assert_geq(mt_atomic_load(&s.polls), RESTLESS_POLLS);
    tml_join_release(h);
    tml_main_exit(0);
}

/* async func yielder(flag) { while !flag { yield_now() } } */
typedef struct yielder_frame {
    uint32_t state;
    mt_atomic *flag;
} yielder_frame;

static tml_poll yielder_poll(void *frame, tml_cx *cx) {
    yielder_frame *f = frame;
    if (mt_atomic_load_acquire(f->flag))
        return TML_READY;
    tml_wake(cx->waker); /* yield: back on this worker's local queue */
    return TML_PENDING;
}

static const tml_task_vt yielder_vt = {yielder_poll, sizeof(yielder_frame), 0, 0, NULL, "yielder"};

/* async func setter(flag) { flag = true } */
static tml_poll setter_poll(void *frame, tml_cx *cx) {
    (void)cx;
    mt_atomic_store_release(((yielder_frame *)frame)->flag, 1);
    return TML_READY;
}

static const tml_task_vt setter_vt = {setter_poll, sizeof(yielder_frame), 0, 0, NULL, "setter"};

/* async func start_yielder(flag) { spawn(yielder(flag)) }: so the yielder
 * lives in the worker's local queue, not the global one. */
static tml_poll start_yielder_poll(void *frame, tml_cx *cx) {
    (void)cx;
    tml_join_release(tml_spawn(&yielder_vt, frame));
    return TML_READY;
}

static const tml_task_vt start_yielder_vt = {start_yielder_poll, sizeof(yielder_frame), 0, 0, NULL,
                                             "start_yielder"};

Test(mt_worker, busy_local_queue_does_not_starve_the_global_queue, .timeout = 10) {
    enter_with_workers("1");
    mt_atomic flag = {0};
    tml_block_on(&start_yielder_vt, &(yielder_frame){.flag = &flag}, NULL);
    /* the only worker now spins the yielder through its local queue; the
     * setter arrives through the global queue and must get a turn */
    tml_join_release(tml_spawn(&setter_vt, &(yielder_frame){.flag = &flag}));
    tml_main_exit(0);
    cr_assert_eq(mt_atomic_load(&flag), 1);
}

/* async func parent() -> I64 { let h = spawn(answer()); h.join() (blocking!) } */
typedef struct answer_frame {
    uint32_t state;
    int64_t ret;
} answer_frame;

static tml_poll answer_poll(void *frame, tml_cx *cx) {
    (void)cx;
    ((answer_frame *)frame)->ret = 42;
    return TML_READY;
}

static const tml_task_vt answer_vt = {answer_poll, sizeof(answer_frame), offsetof(answer_frame, ret),
                                      sizeof(int64_t), NULL, "answer"};

typedef struct parent_frame {
    uint32_t state;
    int64_t ret;
} parent_frame;

static tml_poll parent_poll(void *frame, tml_cx *cx) {
    (void)cx;
    parent_frame *f = frame;
    tml_join *h = tml_spawn(&answer_vt, &(answer_frame){0}); /* lands in this worker's queue */
    tml_join_blocking(h, &f->ret);                            /* blocks this worker */
    tml_join_release(h);
    return TML_READY;
}

static const tml_task_vt parent_vt = {parent_poll, sizeof(parent_frame), offsetof(parent_frame, ret),
                                      sizeof(int64_t), NULL, "parent"};

Test(mt_worker, blocking_wait_inside_a_task_hands_its_queue_to_other_workers, .timeout = 10) {
    enter_with_workers("2");
    int64_t out = 0;
    tml_block_on(&parent_vt, &(parent_frame){0}, &out);
    cr_assert_eq(out, 42);
    tml_main_exit(0);
}

Test(mt_worker, blocking_wait_inside_a_task_with_one_worker_panics, .timeout = 10, .exit_code = 101) {
    enter_with_workers("1");
    tml_block_on(&parent_vt, &(parent_frame){0}, NULL); /* would deadlock */
}
