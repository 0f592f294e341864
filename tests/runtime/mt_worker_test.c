/* mt_worker_test.c - the worker loop: every spawned task runs (from
 * outside, and from inside through local-queue overflow), a task woken
 * during its poll is polled again but never on two workers at once, the
 * global queue is not starved by a busy local queue, a blocking wait
 * inside a task hands the worker's queue to the others, and tasks woken
 * during a poll are held from thieves until it ends. */
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

static const tml_task_vt ready_vt = {ready_poll, sizeof(ready_frame), 0, 0, NULL, "ready", NULL};

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

static const tml_task_vt spawner_vt = {spawner_poll, sizeof(spawner_frame), 0, 0, NULL, "spawner", NULL};

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

static const tml_task_vt restless_vt = {restless_poll, sizeof(restless_frame), 0, 0, NULL, "restless", NULL};

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

static const tml_task_vt yielder_vt = {yielder_poll, sizeof(yielder_frame), 0, 0, NULL, "yielder", NULL};

/* async func setter(flag) { flag = true } */
static tml_poll setter_poll(void *frame, tml_cx *cx) {
    (void)cx;
    mt_atomic_store_release(((yielder_frame *)frame)->flag, 1);
    return TML_READY;
}

static const tml_task_vt setter_vt = {setter_poll, sizeof(yielder_frame), 0, 0, NULL, "setter", NULL};

/* async func start_yielder(flag) { spawn(yielder(flag)) }: so the yielder
 * lives in the worker's local queue, not the global one. */
static tml_poll start_yielder_poll(void *frame, tml_cx *cx) {
    (void)cx;
    tml_join_release(tml_spawn(&yielder_vt, frame));
    return TML_READY;
}

static const tml_task_vt start_yielder_vt = {start_yielder_poll, sizeof(yielder_frame), 0, 0, NULL,
                                             "start_yielder", NULL};

/* RT-QUEUE-1: the global queue is polled every N ticks even when local work exists */
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
                                      sizeof(int64_t), NULL, "answer", NULL};

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
                                      sizeof(int64_t), NULL, "parent", NULL};

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

/* ------------------------------------------------------- work stealing */

/* async func busy(shared): on the spawner's worker, waits (bounded) until
 * a task has run on another worker, which only a steal can bring about:
 * the spawner's queue never overflows and its LIFO slot is never stolen. */
typedef struct steal_shared {
    mt_atomic spawner; /* index of the worker that spawned every task */
    int64_t deadline;  /* for all the waits together; set before the spawns */
    mt_atomic elsewhere, done, ran_on[4];
} steal_shared;

typedef struct busy_frame {
    uint32_t state;
    steal_shared *s;
} busy_frame;

static tml_poll busy_poll(void *frame, tml_cx *cx) {
    steal_shared *s = ((busy_frame *)frame)->s;
    unsigned me = ((mt_worker *)cx->worker)->index;
    if (me != mt_atomic_load(&s->spawner)) {
        mt_atomic_fetch_add(&s->elsewhere, 1);
    } else {
        while (mt_atomic_load_acquire(&s->elsewhere) == 0 && tml_now_ns() < s->deadline) {
        }
    }
    mt_atomic_fetch_add(&s->ran_on[me], 1);
    mt_atomic_fetch_add(&s->done, 1);
    return TML_READY;
}

static const tml_task_vt busy_vt = {busy_poll, sizeof(busy_frame), 0, 0, NULL, "busy", NULL};

/* async func fan_out(shared, n) { for 1..n { spawn(busy(shared)) } }:
 * every task starts on this worker's LIFO slot and local queue. */
typedef struct fan_out_frame {
    uint32_t state;
    steal_shared *s;
    int n;
} fan_out_frame;

static tml_poll fan_out_poll(void *frame, tml_cx *cx) {
    fan_out_frame *f = frame;
    mt_atomic_store(&f->s->spawner, ((mt_worker *)cx->worker)->index);
    f->s->deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    for (int i = 0; i < f->n; i++)
        tml_join_release(tml_spawn(&busy_vt, &(busy_frame){.s = f->s}));
    return TML_READY;
}

static const tml_task_vt fan_out_vt = {fan_out_poll, sizeof(fan_out_frame), 0, 0, NULL, "fan_out", NULL};

/* RT-STEAL-1: idle workers steal half of a busy worker's queue; the steal counter proves it */
Test(mt_worker, idle_workers_steal_tasks_spawned_on_one_worker, .timeout = 10) {
    enum { WORKERS = 4, TASKS = 200 }; /* fewer than a local queue holds: no overflow */
    static steal_shared s;
    mt_runtime *rt;
    cr_assert_eq(mt_runtime_new(WORKERS, &rt), 0);
    cr_assert_eq(mt_runtime_block_on(rt, &fan_out_vt, &(fan_out_frame){.s = &s, .n = TASKS}, NULL), 0);
    mt_runtime_shutdown(rt); /* waits for every task */
    cr_assert_eq(mt_atomic_load(&s.done), TASKS);
    uint64_t steals = 0, stolen = 0, overflows = 0;
    unsigned busy_workers = 0;
    for (unsigned k = 0; k < WORKERS; k++) {
        steals += mt_atomic_load(&rt->workers[k].stats.steals);
        stolen += mt_atomic_load(&rt->workers[k].stats.stolen);
        overflows += mt_atomic_load(&rt->workers[k].stats.overflows);
        busy_workers += mt_atomic_load(&s.ran_on[k]) > 0;
    }
    cr_assert_eq(overflows, 0); /* so the other workers got tasks by stealing */
    cr_assert_gt(mt_atomic_load(&s.elsewhere), 0);
    cr_assert_gt(steals, 0);
    cr_assert_geq(stolen, steals);
    cr_assert_gt(busy_workers, 1);
    mt_runtime_destroy(rt);
}

/* ------------------------------------------------------------ fairness */

/* async func spinner(flag) { while !flag { await yield_now() } } */
typedef struct spinner_frame {
    uint32_t state;
    mt_atomic *flag;
    tml_yield_fut aw;
} spinner_frame;

static tml_poll spinner_poll(void *frame, tml_cx *cx) {
    spinner_frame *f = frame;
    for (;;) {
        if (f->state == 0) {
            if (mt_atomic_load_acquire(f->flag))
                return TML_READY;
            tml_yield_init(&f->aw);
            f->state = 1;
        }
        if (tml_yield_poll(&f->aw, cx) == TML_PENDING)
            return TML_PENDING;
        f->state = 0;
    }
}

static const tml_task_vt spinner_vt = {spinner_poll, sizeof(spinner_frame), 0, 0, NULL, "spinner", NULL};

/* async func stamp(at, done) { *at = now; done += 1 }: when it first ran. */
typedef struct stamp_frame {
    uint32_t state;
    int64_t *at;
    latch *done;
} stamp_frame;

static tml_poll stamp_poll(void *frame, tml_cx *cx) {
    (void)cx;
    stamp_frame *f = frame;
    *f->at = tml_now_ns();
    latch_add(f->done, 1);
    return TML_READY;
}

static const tml_task_vt stamp_vt = {stamp_poll, sizeof(stamp_frame), 0, 0, NULL, "stamp", NULL};

/* async func sleeper(at, done) { await sleep(5 ms); *at = now; done += 1 } */
typedef struct sleeper_frame {
    uint32_t state;
    int64_t *at, *deadline;
    latch *done;
    tml_sleep_fut aw;
} sleeper_frame;

static tml_poll sleeper_poll(void *frame, tml_cx *cx) {
    sleeper_frame *f = frame;
    if (f->state == 0) {
        tml_sleep_init(&f->aw, 5000000);
        *f->deadline = f->aw.timer.deadline_ns;
        f->state = 1;
    }
    if (tml_sleep_poll(&f->aw, cx) == TML_PENDING)
        return TML_PENDING;
    *f->at = tml_now_ns();
    latch_add(f->done, 1);
    return TML_READY;
}

static const tml_task_vt sleeper_vt = {sleeper_poll, sizeof(sleeper_frame), 0, 0, NULL, "sleeper", NULL};

/* async func crowd(flag, ...) { spawn(spinner(flag)); spawn(sleeper(..)) }:
 * on the one worker, a task yielding in a tight loop shares it with a
 * timer and, later, with a task spawned from outside. */
typedef struct crowd_frame {
    uint32_t state;
    mt_atomic *flag;
    int64_t *woke, *deadline;
    latch *done;
} crowd_frame;

static tml_poll crowd_poll(void *frame, tml_cx *cx) {
    (void)cx;
    crowd_frame *f = frame;
    tml_join_release(tml_spawn(&sleeper_vt, &(sleeper_frame){.at = f->woke, .deadline = f->deadline,
                                                              .done = f->done}));
    tml_join_release(tml_spawn(&spinner_vt, &(spinner_frame){.flag = f->flag}));
    return TML_READY;
}

static const tml_task_vt crowd_vt = {crowd_poll, sizeof(crowd_frame), 0, 0, NULL, "crowd", NULL};

#define FAIR_BOUND_NS (100 * INT64_C(1000000)) /* generous: a correctness bound */

/* RT-FAIR-1: a task yielding in a tight loop delays neither a timer nor a new task */
Test(mt_worker, yielding_task_delays_neither_a_timer_nor_a_new_task, .timeout = 10) {
    enter_with_workers("1");
    mt_atomic flag = {0};
    latch done;
    latch_init(&done);
    int64_t woke = 0, deadline = 0, ran = 0;
    tml_block_on(&crowd_vt, &(crowd_frame){.flag = &flag, .woke = &woke, .deadline = &deadline, .done = &done},
                 NULL);
    cr_assert(latch_wait(&done, 1)); /* the timer fired while the spinner spun */
    cr_assert_geq(woke, deadline);
    cr_assert_lt(woke - deadline, FAIR_BOUND_NS);
    int64_t spawned = tml_now_ns();
    tml_join_release(tml_spawn(&stamp_vt, &(stamp_frame){.at = &ran, .done = &done}));
    cr_assert(latch_wait(&done, 2));
    cr_assert_lt(ran - spawned, FAIR_BOUND_NS);
    mt_atomic_store_release(&flag, 1);
    tml_main_exit(0);
}

/* ---------------------------------------------------- the LIFO slot bound */

/* async func bouncer(rx, tx, flag) {
 *     loop { when await rx.recv() { Ok(v) => if flag { break } else { await tx.send(v) }, Err => break } }
 *     tx.close()
 * } Two of them, joined by two capacity-1 channels, wake each other
 * through the LIFO slot forever until the flag is set. */
typedef struct bouncer_frame {
    uint32_t state;
    tml_chan *rx, *tx;
    mt_atomic *flag;
    int64_t v;
    union {
        tml_recv_fut r;
        tml_send_fut s;
    } aw;
} bouncer_frame;

static tml_poll bouncer_poll(void *frame, tml_cx *cx) {
    bouncer_frame *f = frame;
    for (;;) {
        if (f->state == 0) {
            tml_recv_init(&f->aw.r, f->rx, &f->v);
            f->state = 1;
        }
        if (f->state == 1) {
            if (tml_recv_poll(&f->aw.r, cx) == TML_PENDING)
                return TML_PENDING;
            if (f->aw.r.status != TML_CHAN_OK || mt_atomic_load_acquire(f->flag))
                break;
            tml_send_init(&f->aw.s, f->tx, &f->v);
            f->state = 2;
        }
        if (tml_send_poll(&f->aw.s, cx) == TML_PENDING)
            return TML_PENDING;
        f->state = 0;
    }
    tml_chan_close(f->tx);
    return TML_READY;
}

static const tml_task_vt bouncer_vt = {bouncer_poll, sizeof(bouncer_frame), 0, 0, NULL, "bouncer", NULL};

/* async func patient(flag) { await yield_now(); flag = true }: after its
 * yield it waits in the local queue, behind the pair's LIFO ping-pong. */
static tml_poll patient_poll(void *frame, tml_cx *cx) {
    spinner_frame *f = frame;
    if (f->state == 0) {
        tml_yield_init(&f->aw);
        f->state = 1;
    }
    if (tml_yield_poll(&f->aw, cx) == TML_PENDING)
        return TML_PENDING;
    mt_atomic_store_release(f->flag, 1);
    return TML_READY;
}

static const tml_task_vt patient_vt = {patient_poll, sizeof(spinner_frame), 0, 0, NULL, "patient", NULL};

/* async func rally(a, b, flag) -> [JoinHandle; 3] {
 *     [spawn(bouncer(a, b)), spawn(bouncer(b, a)), spawn(patient(flag))]
 * } All three on one worker; `a` holds a value already. */
typedef struct rally_frame {
    uint32_t state;
    tml_chan *a, *b;
    mt_atomic *flag;
    tml_join *ret[3];
} rally_frame;

static tml_poll rally_poll(void *frame, tml_cx *cx) {
    (void)cx;
    rally_frame *f = frame;
    f->ret[0] = tml_spawn(&bouncer_vt, &(bouncer_frame){.rx = f->a, .tx = f->b, .flag = f->flag});
    f->ret[1] = tml_spawn(&bouncer_vt, &(bouncer_frame){.rx = f->b, .tx = f->a, .flag = f->flag});
    f->ret[2] = tml_spawn(&patient_vt, &(spinner_frame){.flag = f->flag});
    return TML_READY;
}

static const tml_task_vt rally_vt = {rally_poll, sizeof(rally_frame), offsetof(rally_frame, ret),
                                     sizeof(tml_join *[3]), NULL, "rally", NULL};

/* RT-STEAL-1: the LIFO slot is capped, so ping-ponging tasks cannot starve the queue */
Test(mt_worker, tasks_waking_each_other_cannot_starve_the_local_queue, .timeout = 10) {
    enter_with_workers("1");
    mt_atomic flag = {0};
    tml_chan *a = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_chan *b = tml_chan_new(sizeof(int64_t), 1, NULL);
    int64_t one = 1;
    cr_assert_eq(tml_chan_send_blocking(a, &one), TML_CHAN_OK);
    tml_join *h[3];
    tml_block_on(&rally_vt, &(rally_frame){.a = a, .b = b, .flag = &flag}, h);
    for (int i = 0; i < 3; i++) { /* the patient task got its turn: all end */
        cr_assert_eq(tml_join_blocking(h[i], NULL), TML_JOIN_OK);
        tml_join_release(h[i]);
    }
    cr_assert_eq(mt_atomic_load(&flag), 1);
    tml_sender_release(a);
    tml_receiver_release(a);
    tml_sender_release(b);
    tml_receiver_release(b);
    tml_main_exit(0);
}

/* ------------------------------------------- tasks held during a poll */

typedef struct held_shared {
    mt_atomic token[2]; /* each dozer's waker, once it waits */
    mt_atomic ran[2];   /* set by each dozer once woken */
    mt_atomic queued;   /* the waker's local queue length after both wakes */
} held_shared;

/* async func dozer(s, i): waits once, registered nowhere but s.token[i];
 * its next poll means it was woken. */
typedef struct dozer_frame {
    uint32_t state;
    held_shared *s;
    int i;
} dozer_frame;

static tml_poll dozer_poll(void *frame, tml_cx *cx) {
    dozer_frame *f = frame;
    if (f->state == 0) {
        f->state = 1;
        mt_atomic_store_release(&f->s->token[f->i], cx->waker);
        return TML_PENDING;
    }
    mt_atomic_store_release(&f->s->ran[f->i], 1);
    return TML_READY;
}

static const tml_task_vt dozer_vt = {dozer_poll, sizeof(dozer_frame), 0, 0, NULL, "dozer", NULL};

/* async func rouser(s, block) -> [JoinHandle; 2]: spawns two dozers,
 * yields until both wait, then wakes both in one poll, so the first
 * woken leaves the LIFO slot for the second. With `block` it then joins
 * the first, blocking its thread: this worker must hand its tasks, held
 * ones too, to the other worker. */
typedef struct rouser_frame {
    uint32_t state;
    held_shared *s;
    bool block;
    tml_yield_fut aw;
    tml_join *ret[2];
} rouser_frame;

static tml_poll rouser_poll(void *frame, tml_cx *cx) {
    rouser_frame *f = frame;
    if (f->state == 0) {
        for (int i = 0; i < 2; i++)
            f->ret[i] = tml_spawn(&dozer_vt, &(dozer_frame){.s = f->s, .i = i});
        f->state = 1;
    }
    while (!mt_atomic_load_acquire(&f->s->token[0]) || !mt_atomic_load_acquire(&f->s->token[1])) {
        if (f->state == 1) {
            tml_yield_init(&f->aw);
            f->state = 2;
        }
        if (tml_yield_poll(&f->aw, cx) == TML_PENDING)
            return TML_PENDING;
        f->state = 1;
    }
    tml_wake(mt_atomic_load(&f->s->token[0]));
    tml_wake(mt_atomic_load(&f->s->token[1]));
    mt_atomic_store(&f->s->queued, mt_deque_len(&mt_worker_current()->local));
    if (f->block)
        tml_join_blocking(f->ret[0], NULL);
    return TML_READY;
}

static const tml_task_vt rouser_vt = {rouser_poll, sizeof(rouser_frame), offsetof(rouser_frame, ret),
                                      sizeof(tml_join *[2]), NULL, "rouser", NULL};

/* Runs rouser on `workers` workers; both dozers must run. Returns the
 * waker's local queue length right after its wakes. */
static uint64_t rouse(const char *workers, bool block) {
    enter_with_workers(workers);
    held_shared s = {0};
    tml_join *h[2];
    tml_block_on(&rouser_vt, &(rouser_frame){.s = &s, .block = block}, h);
    for (int i = 0; i < 2; i++) { /* with `block`, rouser joined the first */
        int32_t want = block && i == 0 ? TML_JOIN_ALREADY_JOINED : TML_JOIN_OK;
        cr_assert_eq(tml_join_blocking(h[i], NULL), want);
        tml_join_release(h[i]);
        cr_assert_eq(mt_atomic_load(&s.ran[i]), 1);
    }
    tml_main_exit(0);
    return mt_atomic_load(&s.queued);
}

/* RT-STEAL-2: a task woken during a poll is not stealable until it ends */
Test(mt_worker, tasks_woken_during_a_poll_are_queued_when_it_ends, .timeout = 10) {
    /* one worker: nothing else runs, so the queue holds only what the
     * wakes put there, and thieves could have taken */
    cr_assert_eq(rouse("1", false), 0);
}

/* RT-STEAL-2: ... and a blocking wait inside the poll hands them on */
Test(mt_worker, blocking_inside_a_poll_hands_on_the_tasks_it_woke, .timeout = 10) {
    /* held until the block (no thief could take them before it), then
     * handed on: otherwise the held dozer would never run, a hang */
    cr_assert_eq(rouse("2", true), 0);
}

/* ---------------------------------------------------------------- budget */

/* async func greedy(c, flag) -> I64 {
 *     while !flag { let v = (await c.recv()).unwrap(); await c.send(v) }
 * } `c` is unbounded and holds a value: every leaf is ready at once, so
 * the task never waits; only the budget makes it return Pending. */
typedef struct greedy_frame {
    uint32_t state;
    tml_chan *c;
    mt_atomic *flag;
    int64_t v;
    union {
        tml_recv_fut r;
        tml_send_fut s;
    } aw;
    int64_t ret; /* rounds */
} greedy_frame;

static tml_poll greedy_poll(void *frame, tml_cx *cx) {
    greedy_frame *f = frame;
    for (;;) {
        if (f->state == 0) {
            if (mt_atomic_load_acquire(f->flag))
                return TML_READY;
            tml_recv_init(&f->aw.r, f->c, &f->v);
            f->state = 1;
        }
        if (f->state == 1) {
            if (tml_recv_poll(&f->aw.r, cx) == TML_PENDING)
                return TML_PENDING;
            tml_send_init(&f->aw.s, f->c, &f->v);
            f->state = 2;
        }
        if (tml_send_poll(&f->aw.s, cx) == TML_PENDING)
            return TML_PENDING;
        f->ret++;
        f->state = 0;
    }
}

static const tml_task_vt greedy_vt = {greedy_poll, sizeof(greedy_frame), offsetof(greedy_frame, ret),
                                      sizeof(int64_t), NULL, "greedy", NULL};

/* async func pair(c, flag) -> JoinHandle { let s = spawn(setter(flag)); spawn(greedy(c, flag)) }:
 * the greedy task runs first (LIFO slot); the setter waits in the queue. */
typedef struct pair_frame {
    uint32_t state;
    tml_chan *c;
    mt_atomic *flag;
    tml_join *ret;
} pair_frame;

static tml_poll pair_poll(void *frame, tml_cx *cx) {
    (void)cx;
    pair_frame *f = frame;
    tml_join_release(tml_spawn(&setter_vt, &(yielder_frame){.flag = f->flag}));
    f->ret = tml_spawn(&greedy_vt, &(greedy_frame){.c = f->c, .flag = f->flag});
    return TML_READY;
}

static const tml_task_vt pair_vt = {pair_poll, sizeof(pair_frame), offsetof(pair_frame, ret),
                                    sizeof(tml_join *), NULL, "pair", NULL};

/* RT-BUDGET-1: the cooperative budget makes a never-waiting task yield */
Test(mt_worker, budget_lets_a_never_waiting_task_share_its_worker, .timeout = 10) {
    SKIP_UNDER_CHAOS("it counts the leaves of one whole budget, which chaos spends early");
    enter_with_workers("1");
    mt_atomic flag = {0};
    tml_chan *c = tml_chan_new(sizeof(int64_t), -1, NULL);
    int64_t v = 7;
    cr_assert_eq(tml_chan_send_blocking(c, &v), TML_CHAN_OK);
    tml_join *greedy;
    tml_block_on(&pair_vt, &(pair_frame){.c = c, .flag = &flag}, &greedy);
    int64_t rounds = 0;
    cr_assert_eq(tml_join_blocking(greedy, &rounds), TML_JOIN_OK);
    cr_assert_geq(rounds, MT_BUDGET / 2 - 1); /* it ran a whole budget first */
    cr_assert_eq(mt_atomic_load(&flag), 1);
    tml_join_release(greedy);
    tml_sender_release(c);
    tml_receiver_release(c);
    tml_main_exit(0);
}

/* --------------------------------------------------------------- metrics */

/* RT-METRICS-1: per-worker counters */
Test(mt_worker, metrics_count_polls_per_worker, .timeout = 10) {
    tml_worker_metrics m[8];
    cr_assert_eq(tml_runtime_metrics(m, 8), 0); /* no process runtime yet */
    enter_with_workers("3");
    for (int i = 0; i < 100; i++)
        tml_join_release(tml_spawn(&ready_vt, &(ready_frame){0}));
    tml_block_on(&ready_vt, &(ready_frame){0}, NULL);
    cr_assert_eq(tml_runtime_metrics(m, 2), 3); /* the count, though only 2 fit */
    cr_assert_eq(tml_runtime_metrics(m, 8), 3);
    uint64_t polls = 0;
    for (int k = 0; k < 3; k++)
        polls += m[k].polls;
    cr_assert_geq(polls, 1); /* a snapshot: some of the 101 tasks have run */
    tml_main_exit(0);
    cr_assert_eq(tml_runtime_metrics(m, 8), 0);
}
