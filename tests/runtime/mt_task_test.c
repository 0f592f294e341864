/* mt_task_test.c - the task slab (slot reuse, generations, chunked
 * growth), the state machine driven by hand, and join handles on the
 * process runtime (result moved once, several awaiters, unjoined results
 * dropped). */
#include "rt_test.h"

/* A stand-in task block: the slab stores the pointer, never reads it. */
static tml_join *const FAKE_TASK = (tml_join *)&(max_align_t){0};

static uint32_t start_task(mt_slab *s, uint32_t *gen) {
    uint32_t slot;
    cr_assert_eq(mt_slab_alloc(s, true, &slot, gen), 0);
    mt_slab_start(s, slot, *gen, FAKE_TASK);
    return slot;
}

/* Runs one poll that returns Ready: what a worker does for such a task. */
static void poll_to_completion(mt_slab *s, uint32_t slot) {
    mt_slot *sl = mt_slab_slot(s, slot);
    mt_task_begin_poll(sl);
    mt_slab_free(s, slot, mt_task_gen(mt_atomic_load(&sl->word)), true);
}

Test(mt_task, freed_slot_is_reused_with_the_next_generation, .timeout = 10) {
    mt_slab s;
    uint32_t gen1, gen2;
    mt_slab_init(&s, 7);
    uint32_t a = start_task(&s, &gen1);
    cr_assert_eq(gen1, 7);
    poll_to_completion(&s, a);
    uint32_t b = start_task(&s, &gen2);
    cr_assert_eq(b, a);
    cr_assert_eq(gen2, gen1 + 1);
    poll_to_completion(&s, b);
    mt_slab_fini(&s);
}

/* RT-WAKE-4: generation 0 is never handed out, so token 0 (worker 0,
 * slot 0, generation 0: "no waiter" to the reactor) is never live */
Test(mt_task, no_live_task_has_token_zero, .timeout = 10) {
    mt_slab s;
    uint32_t gen;
    mt_slab_init(&s, 0); /* the first slab of worker id 0 */
    uint32_t slot = start_task(&s, &gen);
    cr_assert_eq(slot, 0);
    cr_assert_neq(mt_token(0, slot, gen), 0);
    cr_assert_eq(gen, 1);
    mt_slab_fini(&s);
    mt_slab_init(&s, UINT32_MAX); /* a slot whose generation wraps */
    slot = start_task(&s, &gen);
    cr_assert_eq(gen, UINT32_MAX);
    poll_to_completion(&s, slot);
    cr_assert_eq(start_task(&s, &gen), slot);
    cr_assert_eq(gen, 1); /* 0 skipped */
    cr_assert_neq(mt_token(0, slot, gen), 0);
    cr_assert_eq(mt_slab_fini(&s), 2); /* the next slab starts past it, not at 0 */
    mt_slab_init(&s, UINT32_MAX); /* a floor that wraps to 0 on the next slab */
    start_task(&s, &gen);
    cr_assert_eq(mt_slab_fini(&s), 1);
}

Test(mt_task, stale_generation_wake_is_a_noop, .timeout = 10) {
    mt_slab s;
    uint32_t old_gen, gen;
    mt_slab_init(&s, 1);
    uint32_t slot = start_task(&s, &old_gen);
    poll_to_completion(&s, slot);
    cr_assert_null(mt_task_notify(mt_slab_slot(&s, slot), old_gen)); /* freed slot */
    cr_assert_eq(start_task(&s, &gen), slot);                         /* reused */
    mt_slot *sl = mt_slab_slot(&s, slot);
    mt_task_begin_poll(sl);
    cr_assert_not(mt_task_end_pending(sl, false)); /* new task now idle */
    uint64_t before = mt_atomic_load(&sl->word);
    cr_assert_null(mt_task_notify(sl, old_gen)); /* old token: no effect */
    cr_assert_eq(mt_atomic_load(&sl->word), before);
    cr_assert_eq(mt_task_notify(sl, gen), FAKE_TASK); /* its own token schedules it */
    mt_slab_fini(&s);
}

Test(mt_task, idle_task_is_scheduled_by_the_first_wake_only, .timeout = 10) {
    mt_slab s;
    uint32_t gen;
    mt_slab_init(&s, 1);
    mt_slot *sl = mt_slab_slot(&s, start_task(&s, &gen));
    cr_assert_null(mt_task_notify(sl, gen)); /* already scheduled by spawn */
    mt_task_begin_poll(sl);
    cr_assert_not(mt_task_end_pending(sl, false));
    cr_assert_eq(mt_task_notify(sl, gen), FAKE_TASK); /* idle -> scheduled: queue it */
    cr_assert_null(mt_task_notify(sl, gen));          /* queued once only */
    mt_slab_fini(&s);
}

Test(mt_task, wake_while_running_repolls_exactly_once, .timeout = 10) {
    mt_slab s;
    uint32_t gen;
    mt_slab_init(&s, 1);
    mt_slot *sl = mt_slab_slot(&s, start_task(&s, &gen));
    mt_task_begin_poll(sl);
    cr_assert_null(mt_task_notify(sl, gen));   /* marks NOTIFIED, no queueing */
    cr_assert_null(mt_task_notify(sl, gen));   /* coalesced */
    cr_assert(mt_task_end_pending(sl, false)); /* the poller re-queues it */
    mt_task_begin_poll(sl);
    cr_assert_not(mt_task_end_pending(sl, false)); /* no wake this time: idle */
    cr_assert_eq(mt_task_notify(sl, gen), FAKE_TASK);
    mt_task_begin_poll(sl);
    cr_assert(mt_task_end_pending(sl, true)); /* it woke itself: re-queued */
    mt_slab_fini(&s);
}

/* RT-ABORT-1: an abort marks the task in every state; the poll start that
 * follows reports it (the first one too), so the worker drops the task
 * instead of polling it; a stale token's abort changes nothing */
Test(mt_task, abort_is_seen_by_the_next_poll_start_in_every_state, .timeout = 10) {
    mt_slab s;
    uint32_t gen, old_gen;
    mt_slab_init(&s, 1);
    uint32_t slot = start_task(&s, &gen); /* scheduled, never polled */
    mt_slot *sl = mt_slab_slot(&s, slot);
    cr_assert_null(mt_task_signal(sl, gen, MT_TASK_ABORTED)); /* already queued */
    cr_assert(mt_task_first_poll(sl, gen));                 /* dropped before its first poll */
    mt_slab_free(&s, slot, gen, true);

    slot = start_task(&s, &gen);
    sl = mt_slab_slot(&s, slot);
    cr_assert_not(mt_task_first_poll(sl, gen));
    cr_assert_null(mt_task_signal(sl, gen, MT_TASK_ABORTED)); /* running: marked */
    cr_assert(mt_task_end_pending(sl, false));              /* re-queued by the abort */
    cr_assert(mt_task_begin_poll(sl));                      /* its next turn drops it */
    mt_slab_free(&s, slot, gen, true);

    old_gen = gen;
    cr_assert_eq(start_task(&s, &gen), slot);
    cr_assert_not(mt_task_first_poll(sl, gen));
    cr_assert_not(mt_task_end_pending(sl, false)); /* idle */
    uint64_t before = mt_atomic_load(&sl->word);
    cr_assert_null(mt_task_signal(sl, old_gen, MT_TASK_ABORTED)); /* stale handle */
    cr_assert_eq(mt_atomic_load(&sl->word), before);
    cr_assert_eq(mt_task_signal(sl, gen, MT_TASK_ABORTED), FAKE_TASK); /* idle: queue it */
    cr_assert(mt_task_begin_poll(sl));
    mt_slab_fini(&s);
}

Test(mt_task, slots_never_move_as_the_slab_grows, .timeout = 10) {
    enum { N = 3000 }; /* chunks of 64, 64, 128, ..., 2048 */
    static mt_slot *seen[N];
    mt_slab s;
    uint32_t gen;
    mt_slab_init(&s, 1);
    cr_assert_null(mt_slab_slot(&s, 0)); /* no chunk yet: a bogus token */
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(start_task(&s, &gen), i);
        seen[i] = mt_slab_slot(&s, i);
    }
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(mt_slab_slot(&s, i), seen[i]);
    cr_assert_null(mt_slab_slot(&s, MT_MAX_SLOTS - 1));
    mt_slab_fini(&s);
}

Test(mt_task, next_slab_starts_past_every_issued_generation, .timeout = 10) {
    mt_slab s;
    uint32_t gen, last = 0;
    mt_slab_init(&s, 1);
    for (int i = 0; i < 5; i++) { /* slot 0 used five times */
        uint32_t slot = start_task(&s, &gen);
        last = gen;
        poll_to_completion(&s, slot);
    }
    start_task(&s, &gen); /* slot 0 again, never completed */
    uint32_t floor = mt_slab_fini(&s);
    cr_assert_gt(floor, gen);
    cr_assert_gt(floor, last);
    mt_slab_init(&s, floor);
    start_task(&s, &gen);
    cr_assert_eq(gen, floor);
    mt_slab_fini(&s);
}

/* ------------------------------------------------- join, end to end */

/* async func answer(x: I64) -> I64 { return x * 2 } */
typedef struct answer_frame {
    uint32_t state;
    int64_t x;
    int64_t ret;
} answer_frame;

static tml_poll answer_poll(void *frame, tml_cx *cx) {
    (void)cx;
    answer_frame *f = frame;
    f->ret = f->x * 2;
    return TML_READY;
}

static const tml_task_vt answer_vt = {answer_poll, sizeof(answer_frame), offsetof(answer_frame, ret),
                                      sizeof(int64_t), NULL, "answer", NULL};

Test(mt_task, join_moves_the_result_once_then_already_joined, .timeout = 10) {
    enter_with_workers("2");
    tml_join *h = tml_spawn(&answer_vt, &(answer_frame){.x = 21});
    int64_t out = 0;
    cr_assert_eq(tml_join_blocking(h, &out), TML_JOIN_OK);
    cr_assert_eq(out, 42);
    cr_assert(tml_join_is_finished(h));
    out = 0;
    cr_assert_eq(tml_join_blocking(h, &out), TML_JOIN_ALREADY_JOINED);
    cr_assert_eq(out, 0); /* untouched */
    tml_join_release(h);
    cr_assert_eq(tml_main_exit(0), 0);
}

/* async func gate(g: Receiver[I64]) -> I64 { return (await g.recv()).unwrap() }
 * A task that finishes only when the test lets it. */
typedef struct gate_frame {
    gate gate;
    int64_t ret;
} gate_frame;

static tml_poll gate_poll(void *frame, tml_cx *cx) {
    gate_frame *f = frame;
    if (gate_wait(&f->gate, cx) == TML_PENDING)
        return TML_PENDING;
    f->ret = f->gate.v;
    return TML_READY;
}

static const tml_task_vt gate_vt = {gate_poll, sizeof(gate_frame), offsetof(gate_frame, ret),
                                    sizeof(int64_t), NULL, "gate", NULL};

/* async func joiner(h: JoinHandle[I64]) -> I32 { (await h) error code } */
typedef struct joiner_frame {
    uint32_t state;
    tml_join *h;
    int64_t value;
    tml_join_fut aw;
    latch *registered;
    int32_t ret;
} joiner_frame;

static tml_poll joiner_poll(void *frame, tml_cx *cx) {
    joiner_frame *f = frame;
    if (f->state == 0) {
        tml_join_init(&f->aw, f->h, &f->value);
        f->state = 1;
    }
    if (tml_join_poll(&f->aw, cx) == TML_PENDING) {
        latch_add(f->registered, 1);
        return TML_PENDING;
    }
    f->ret = f->aw.err;
    return TML_READY;
}

static const tml_task_vt joiner_vt = {joiner_poll, sizeof(joiner_frame), offsetof(joiner_frame, ret),
                                      sizeof(int32_t), NULL, "joiner", NULL};

Test(mt_task, tasks_awaiting_one_handle_get_the_result_once, .timeout = 10) {
    enter_with_workers("3");
    tml_chan *g = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *target = tml_spawn(&gate_vt, &(gate_frame){.gate.g = g});
    latch registered;
    latch_init(&registered);
    tml_join *a = tml_spawn(&joiner_vt, &(joiner_frame){.h = target, .registered = &registered});
    tml_join *b = tml_spawn(&joiner_vt, &(joiner_frame){.h = target, .registered = &registered});
    cr_assert(latch_wait(&registered, 2)); /* both wait on the handle */
    int64_t v = 7;
    cr_assert_eq(tml_chan_send_blocking(g, &v), TML_CHAN_OK); /* opens the gate */
    int32_t ea = -1, eb = -1;
    cr_assert_eq(tml_join_blocking(a, &ea), TML_JOIN_OK);
    cr_assert_eq(tml_join_blocking(b, &eb), TML_JOIN_OK);
    cr_assert_eq(ea + eb, TML_JOIN_ALREADY_JOINED); /* one OK (0), one already joined */
    int64_t late = 0;
    cr_assert_eq(tml_join_blocking(target, &late), TML_JOIN_ALREADY_JOINED);
    tml_join_release(a);
    tml_join_release(b);
    tml_join_release(target);
    tml_sender_release(g);
    tml_receiver_release(g);
    tml_main_exit(0);
}

/* async func boxed() -> Box: a result that owns memory. */
static mt_atomic drops;

static void box_drop(void *result) {
    free(*(int64_t **)result);
    mt_atomic_fetch_add(&drops, 1);
}

typedef struct boxed_frame {
    uint32_t state;
    int64_t *ret;
} boxed_frame;

static tml_poll boxed_poll(void *frame, tml_cx *cx) {
    (void)cx;
    boxed_frame *f = frame;
    f->ret = malloc(sizeof *f->ret);
    *f->ret = 5;
    return TML_READY;
}

static const tml_task_vt boxed_vt = {boxed_poll, sizeof(boxed_frame), offsetof(boxed_frame, ret),
                                     sizeof(int64_t *), box_drop, "boxed", NULL};

Test(mt_task, unjoined_result_is_dropped_with_the_last_reference, .timeout = 10) {
    enter_with_workers("2");
    for (int i = 0; i < 100; i++) /* handles dropped at once, before or after completion */
        tml_join_release(tml_spawn(&boxed_vt, &(boxed_frame){0}));
    tml_join *kept = tml_spawn(&boxed_vt, &(boxed_frame){0});
    tml_join_retain(kept); /* a copy of the handle */
    int64_t *box = NULL;
    cr_assert_eq(tml_join_blocking(kept, &box), TML_JOIN_OK);
    tml_join_release(kept);
    tml_join_release(kept);
    tml_main_exit(0);
    cr_assert_eq(mt_atomic_load(&drops), 100); /* the joined one is ours */
    cr_assert_eq(*box, 5);
    free(box);
}
