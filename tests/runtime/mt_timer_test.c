/* mt_timer_test.c - the runtime's timers driven with chosen times, cancel, the arming
 * rule, and sleeps end to end: never early, zero sleeps, deadline order,
 * timers firing while every worker is parked, blocking sleep. */
#include "rt_test.h"

#define MS INT64_C(1000000)

Test(mt_timer, expires_due_entries_in_deadline_order, .timeout = 10) {
    SKIP_UNDER_CHAOS("it expires at chosen times, which chaos delays");
    mt_timers t;
    tml_waker out[8];
    tml_timer_node node[6];
    mt_timers_init(&t);
    int64_t base = tml_now_ns();
    cr_assert_eq(mt_timers_next(&t), MT_NO_DEADLINE);
    const int64_t ms[] = {50, 10, 40, 20, 30, 10};
    for (int i = 0; i < 6; i++) {
        node[i].where = -1;
        mt_timers_insert(&t, &node[i], base + ms[i] * MS, (tml_waker)ms[i]);
    }
    cr_assert_leq(mt_timers_next(&t), base + 10 * MS);
    cr_assert_eq(mt_timers_expire(&t, base + 10 * MS - 1, out, 8), 0); /* nothing due yet */
    size_t n = mt_timers_expire(&t, base + 30 * MS, out, 8);         /* 10, 10, 20, 30 */
    cr_assert_eq(n, 4);
    for (size_t i = 1; i < n; i++)
        cr_assert_leq(out[i - 1], out[i]);
    cr_assert_eq(out[3], 30);
    cr_assert_leq(mt_timers_next(&t), base + 40 * MS);
    cr_assert_gt(mt_timers_next(&t), base + 30 * MS);
    cr_assert_eq(mt_timers_expire(&t, base + 1000 * MS, out, 1), 1); /* batch limit */
    cr_assert_eq(out[0], 40);
    cr_assert_eq(mt_timers_expire(&t, base + 1000 * MS, out, 8), 1);
    cr_assert_eq(mt_timers_next(&t), MT_NO_DEADLINE);
    mt_timers_fini(&t);
}

Test(mt_timer, a_cancelled_timer_never_fires, .timeout = 10) {
    mt_timers t;
    tml_waker out[4];
    tml_timer_node a = {.where = -1}, b = {.where = -1};
    mt_timers_init(&t);
    int64_t base = tml_now_ns();
    mt_timers_insert(&t, &a, base + 5 * MS, 1);
    mt_timers_insert(&t, &b, base + 6 * MS, 2);
    mt_timers_cancel(&t, &a);
    mt_timers_cancel(&t, &a); /* twice: a no-op */
    cr_assert_eq(mt_timers_expire(&t, base + 100 * MS, out, 4), 1);
    cr_assert_eq(out[0], 2);
    mt_timers_cancel(&t, &b); /* after it fired: a no-op */
    cr_assert_eq(mt_timers_next(&t), MT_NO_DEADLINE);
    mt_timers_fini(&t);
}

Test(mt_timer, an_insert_before_the_armed_deadline_wakes_the_driver, .timeout = 10) {
    mt_timers t;
    tml_timer_node n[3] = {{.where = -1}, {.where = -1}, {.where = -1}};
    mt_timers_init(&t);
    int64_t base = tml_now_ns();
    cr_assert_not(mt_timers_insert(&t, &n[0], base + 100 * MS, 1)); /* no driver blocked */
    cr_assert_leq(mt_timers_arm(&t), base + 100 * MS);                /* the driver blocks */
    cr_assert_not(mt_timers_insert(&t, &n[1], base + 200 * MS, 2));  /* it wakes first */
    cr_assert(mt_timers_insert(&t, &n[2], base + 50 * MS, 3));       /* earlier: wake it */
    cr_assert_leq(mt_timers_arm(&t), base + 50 * MS);                 /* it re-arms */
    mt_timers_disarm(&t);
    cr_assert_not(mt_timers_insert(&t, &(tml_timer_node){.where = -1}, base, 4));
    mt_timers_fini(&t);
}

/* async func nap(ms: I64) { await sleep(ms); record when } */
typedef struct nap_frame {
    uint32_t state;
    int64_t ns;
    int64_t deadline;   /* what the test checks against */
    tml_sleep_fut aw;
    int64_t *woke_at;   /* out: clock at Ready, and the deadline */
    int64_t *deadline_at;
    latch *order;       /* counts wake-ups; the position is the count */
    int64_t *position;  /* out: 1-based wake-up position */
} nap_frame;

static tml_poll nap_poll(void *frame, tml_cx *cx) {
    nap_frame *f = frame;
    if (f->state == 0) {
        tml_sleep_init(&f->aw, f->ns);
        f->deadline = f->aw.timer.deadline_ns;
        f->state = 1;
    }
    if (tml_sleep_poll(&f->aw, cx) == TML_PENDING)
        return TML_PENDING;
    if (f->woke_at) { /* checked on the test's thread */
        *f->woke_at = tml_now_ns();
        *f->deadline_at = f->deadline;
    }
    if (f->order) {
        latch_add(f->order, 1);
        *f->position = latch_count(f->order);
    }
    return TML_READY;
}

static const tml_task_vt nap_vt = {nap_poll, sizeof(nap_frame), 0, 0, NULL, "nap", NULL};

/* RT-TIMER-1: sleeps of 0..100 ms (every level of the wheel's first two)
 * never fire before their deadline */
Test(mt_timer, sleep_never_fires_early, .timeout = 10) {
    enum { N = 200 };
    enter_with_workers("2");
    tml_join *h[N];
    int64_t woke[N], deadline[N], start[N];
    for (int i = 0; i < N; i++) {
        start[i] = tml_now_ns();
        h[i] = tml_spawn(&nap_vt, &(nap_frame){.ns = (i * 37 % 101) * MS, .woke_at = &woke[i],
                                               .deadline_at = &deadline[i]});
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(tml_join_blocking(h[i], NULL), TML_JOIN_OK);
        cr_assert_geq(woke[i], deadline[i]);
        cr_assert_geq(woke[i] - start[i], (i * 37 % 101) * MS);
        tml_join_release(h[i]);
    }
    tml_main_exit(0);
}

/* A task that arms a sleep, then keeps its worker until the clock passes
 * the deadline and polls the sleep again: no worker can have expired the
 * timer (the only worker is busy in this poll), so the Ready comes from
 * the clock. Records the wheel's own accounting right after. */
typedef struct late_out {
    tml_poll second;      /* the second poll's result */
    size_t pending_after; /* timer_wheel_len after the Ready */
    int32_t where_after;  /* the node's slot after the Ready */
} late_out;

typedef struct late_frame {
    tml_sleep_fut aw;
    late_out *out; /* checked on the test's thread */
} late_frame;

static tml_poll late_poll(void *frame, tml_cx *cx) {
    late_frame *f = frame;
    mt_runtime *rt = ((mt_worker *)cx->worker)->rt;
    tml_sleep_init(&f->aw, 1 * MS);
    if (tml_sleep_poll(&f->aw, cx) != TML_PENDING || f->aw.timer.where < 0)
        return TML_READY; /* not armed: out keeps its poison */
    while (tml_now_ns() < f->aw.timer.deadline_ns) {
    }
    f->out->second = tml_sleep_poll(&f->aw, cx);
    mt_spin_lock(&rt->timers.lock);
    f->out->pending_after = timer_wheel_len(&rt->timers.wheel);
    f->out->where_after = f->aw.timer.where;
    mt_spin_unlock(&rt->timers.lock);
    tml_sleep_drop(&f->aw); /* after Ready: a no-op */
    return TML_READY;
}

static const tml_task_vt late_vt = {late_poll, sizeof(late_frame), 0, 0, NULL, "late", NULL};

/* RT-TIMER-6: a sleep polled past its deadline, before its timer was
 * expired, is Ready and unlinks its node from the wheel */
Test(mt_timer, a_sleep_ready_by_the_clock_leaves_no_node_in_the_wheel, .timeout = 10) {
    SKIP_UNDER_CHAOS("it polls a leaf twice in one poll, and chaos may spend the budget at the first");
    enter_with_workers("1"); /* no other worker may expire the timer */
    for (int i = 0; i < 20; i++) {
        late_out out = {TML_PENDING, 99, 99};
        tml_block_on(&late_vt, &(late_frame){.out = &out}, NULL);
        cr_assert_eq(out.second, TML_READY);
        cr_assert_eq(out.pending_after, 0);
        cr_assert_eq(out.where_after, -1);
    }
    tml_main_exit(0);
}

Test(mt_timer, zero_and_negative_sleeps_complete, .timeout = 10) {
    enter_with_workers("1");
    tml_block_on(&nap_vt, &(nap_frame){.ns = 0}, NULL);
    tml_block_on(&nap_vt, &(nap_frame){.ns = -5 * MS}, NULL);
    tml_main_exit(0);
}

Test(mt_timer, sleeping_tasks_resume_in_deadline_order, .timeout = 10) {
    enter_with_workers("1"); /* one worker: wake-ups run in queue order */
    latch order;
    latch_init(&order);
    int64_t pos[3];
    const int64_t ms[3] = {60, 20, 40};
    tml_join *h[3];
    for (int i = 0; i < 3; i++)
        h[i] = tml_spawn(&nap_vt, &(nap_frame){.ns = ms[i] * MS, .order = &order, .position = &pos[i]});
    for (int i = 0; i < 3; i++) {
        tml_join_blocking(h[i], NULL);
        tml_join_release(h[i]);
    }
    cr_assert_eq(pos[1], 1);
    cr_assert_eq(pos[2], 2);
    cr_assert_eq(pos[0], 3);
    tml_main_exit(0);
}

Test(mt_timer, timer_fires_while_every_worker_is_parked, .timeout = 10) {
    enter_with_workers("4");
    latch done;
    latch_init(&done);
    int64_t pos;
    /* nothing else runs: all four workers park; one must wake on time */
    tml_join_release(tml_spawn(&nap_vt, &(nap_frame){.ns = 30 * MS, .order = &done, .position = &pos}));
    cr_assert(latch_wait(&done, 1));
    tml_main_exit(0);
}

Test(mt_timer, sleeping_tasks_do_not_occupy_the_worker, .timeout = 10) {
    enter_with_workers("1");
    latch done;
    latch_init(&done);
    int64_t pos[50];
    int64_t start = tml_now_ns();
    for (int i = 0; i < 50; i++) /* 50 x 100 ms on one worker */
        tml_join_release(tml_spawn(&nap_vt, &(nap_frame){.ns = 100 * MS, .order = &done, .position = &pos[i]}));
    cr_assert(latch_wait(&done, 50));
    cr_assert_lt(tml_now_ns() - start, 2500 * MS); /* far below the 5 s sum */
    tml_main_exit(0);
}

Test(mt_timer, blocking_sleep_never_returns_early, .timeout = 10) {
    for (int i = 0; i < 5; i++) {
        int64_t start = tml_now_ns();
        tml_sleep_blocking(2 * MS);
        cr_assert_geq(tml_now_ns() - start, 2 * MS);
    }
    tml_sleep_blocking(-1); /* returns at once */
}
