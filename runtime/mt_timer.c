/* mt_timer.c - the monotonic clock, a runtime's pending timers, and the
 * sleep leaf.
 *
 * Timers: one hierarchical timing wheel (timer_wheel.c: Varghese & Lauck
 * 1987) per runtime under a spin lock; insert and cancel are O(1) and
 * never allocate (the node sits in the sleeping future). Every critical
 * section is a few pointer moves, except a cascade, which moves each
 * timer at most once per level.
 *
 * Who fires timers:
 *   - running workers, at each fairness tick and whenever their local
 *     queue runs dry (mt_timers_expire); `next_ns` is at most the earliest
 *     pending deadline (the wheel's next deadline after a poll; an insert
 *     that comes earlier stores its own deadline, sparing the wheel's
 *     search), so a worker with nothing due reads one atomic, no lock;
 *   - the driver: the one parked worker that blocks in the I/O reactor
 *     (mt_worker.c) arms the next deadline (mt_timers_arm) as its poll
 *     timeout, so timers fire on time when every worker is idle.
 * Arming rule: `armed_ns` is the deadline the blocked driver wakes at
 * (MT_NO_DEADLINE: it sleeps until I/O or an unpark), or MT_NOT_ARMED
 * while no driver is blocked. An insert before armed_ns tells its caller
 * to wake the driver, which re-arms with the new deadline; with no driver
 * blocked, some worker is running (a worker only parks off the driver
 * while another holds it) and fires the timer at its next tick or park.
 * The timer lock orders an insert against a concurrent arm.
 * Limitation (as in Tokio): when the driver is woken for work and then
 * runs a long poll, due timers wait for some worker's next tick.
 * Never early: the wheel fires a node only once the clock passed its
 * deadline, and tml_sleep_poll re-checks the clock on every poll. */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

int64_t tml_now_ns(void) {
    return pal_now_ns();
}

/* Initialises an empty timer set. Never fails, never allocates. */
void mt_timers_init(mt_timers *t) {
    mt_spin_init(&t->lock);
    timer_wheel_init(&t->wheel, tml_now_ns());
    t->armed_ns = MT_NOT_ARMED;
    mt_atomic_store(&t->next_ns, (uint64_t)MT_NO_DEADLINE); /* before sharing */
}

/* Forgets the set; pending nodes belong to their futures.
 * Threads: nobody else may use `t` any more. */
void mt_timers_fini(mt_timers *t) {
    timer_wheel_fini(&t->wheel);
}

/* Re-publishes the next deadline. Lock held. */
static void publish_next(mt_timers *t) {
    /* relaxed: a hint; a reader that sees an old value fires a little
     * later, or takes the lock for nothing */
    mt_atomic_store(&t->next_ns, (uint64_t)timer_wheel_next_deadline(&t->wheel));
}

/* Arms `node` (caller memory, where == -1, not moving until it fires or
 * is cancelled) to wake `waker` once the clock reaches `deadline_ns`.
 * Returns true when the blocked driver sleeps past the deadline: the
 * caller must then wake it (mt_worker_wake_driver). Threads: any. */
bool mt_timers_insert(mt_timers *t, tml_timer_node *node, int64_t deadline_ns, tml_waker waker) {
    mt_spin_lock(&t->lock);
    timer_wheel_insert(&t->wheel, node, deadline_ns, waker);
    /* the new earliest deadline is this one: no need to ask the wheel
     * (relaxed: a hint, see publish_next) */
    if (deadline_ns < (int64_t)mt_atomic_load(&t->next_ns))
        mt_atomic_store(&t->next_ns, (uint64_t)deadline_ns);
    bool wake = deadline_ns < t->armed_ns;
    mt_spin_unlock(&t->lock);
    return wake;
}

/* Disarms `node` if it is pending (a dropped future); a no-op once it
 * fired. Threads: any. */
void mt_timers_cancel(mt_timers *t, tml_timer_node *node) {
    mt_spin_lock(&t->lock);
    if (timer_wheel_cancel(&t->wheel, node) && timer_wheel_len(&t->wheel) == 0)
        mt_atomic_store(&t->next_ns, (uint64_t)MT_NO_DEADLINE); /* relaxed: a hint */
    mt_spin_unlock(&t->lock);
}

/* The next deadline (a time <= the earliest pending one), or
 * MT_NO_DEADLINE; a lock-free hint. Threads: any. */
int64_t mt_timers_next(const mt_timers *t) {
    return (int64_t)mt_atomic_load(&t->next_ns); /* relaxed: see publish_next */
}

/* Removes up to `max` timers whose deadline is <= now_ns, earliest tick
 * first, storing their wakers in out[]; the caller wakes them. Returns
 * how many. Threads: any. */
size_t mt_timers_expire(mt_timers *t, int64_t now_ns, tml_waker *out, size_t max) {
    if (mt_chaos(MT_CHAOS_TIMER_DELAY)) /* as if this pass ran up to 16 ticks ago */
        now_ns -= (int64_t)(1 + mt_chaos_below(16)) * TIMER_WHEEL_TICK_NS;
    if (mt_timers_next(t) > now_ns)
        return 0;
    mt_spin_lock(&t->lock);
    size_t n = timer_wheel_poll(&t->wheel, now_ns, out, max);
    publish_next(t);
    mt_spin_unlock(&t->lock);
    return n;
}

/* Called by the driver about to block: returns the deadline to block
 * until (MT_NO_DEADLINE: none pending) and records it, so that earlier
 * inserts wake the driver. Threads: the driver. */
int64_t mt_timers_arm(mt_timers *t) {
    mt_spin_lock(&t->lock);
    int64_t deadline = t->armed_ns = timer_wheel_next_deadline(&t->wheel);
    mt_spin_unlock(&t->lock);
    return deadline;
}

/* The driver is awake again: inserts need not wake it. Threads: the
 * driver. */
void mt_timers_disarm(mt_timers *t) {
    mt_spin_lock(&t->lock);
    t->armed_ns = MT_NOT_ARMED;
    mt_spin_unlock(&t->lock);
}

/* Whether no timer is pending (the deadlock check: mt_deadlock.c).
 * Threads: any; takes the lock, so a timer removed by a thread is seen
 * with what that thread did before. */
bool mt_timers_empty(mt_timers *t) {
    mt_spin_lock(&t->lock);
    bool empty = timer_wheel_len(&t->wheel) == 0;
    mt_spin_unlock(&t->lock);
    return empty;
}

/* timer.reserved of a sleep leaf: what its polls know. */
enum {
    SLEEP_FRESH = 0,  /* never armed; the deadline may have passed */
    SLEEP_ARMED = 1,  /* armed once (the drop must cancel) */
    SLEEP_AHEAD = 2   /* never armed; the deadline was ahead at init */
};

void tml_sleep_until_init(tml_sleep_fut *f, int64_t deadline_ns) {
    MT_ASSERT(f);
    f->timer = (tml_timer_node){NULL, NULL, deadline_ns < 0 ? 0 : deadline_ns, 0, -1, SLEEP_FRESH};
}

void tml_sleep_init(tml_sleep_fut *f, int64_t duration_ns) {
    int64_t now = tml_now_ns();
    if (duration_ns < 0)
        duration_ns = 0;
    tml_sleep_until_init(f, duration_ns > INT64_MAX - now ? INT64_MAX : now + duration_ns);
    if (duration_ns > 0)
        f->timer.reserved = SLEEP_AHEAD;
}

/* A sleep's poll, budget aside: Ready once the clock reached the
 * deadline; otherwise arms the timer with the task's waker, once per
 * sleep: a task's waker never changes, and a fired timer whose wake raced
 * with the clock read leaves the next poll Ready. A sleep whose deadline
 * was ahead at init is armed without reading the clock again (the wheel
 * never fires early), which saves a clock read per `timeout` and `sleep`.
 * Ready never leaves the node in the wheel: a task polled again after
 * its deadline but before any worker expired its timer (the task was
 * woken by something else: a `timeout`'s inner future, a spent budget, a
 * spurious wake) finds the clock past the deadline while the node is
 * still linked, so Ready cancels it. Otherwise the node, which lives in
 * the frame's await union, would be re-initialised by the next await or
 * freed with the frame while the wheel still links it. Ready also
 * disarms the leaf, so a later tml_sleep_drop is a no-op. */
static tml_poll sleep_step(tml_sleep_fut *f, tml_cx *cx) {
    mt_runtime *rt = ((mt_worker *)cx->worker)->rt;
    if (f->timer.reserved != SLEEP_AHEAD && tml_now_ns() >= f->timer.deadline_ns) {
        if (f->timer.reserved == SLEEP_ARMED) {
            mt_timers_cancel(&rt->timers, &f->timer); /* a no-op once it fired */
            f->timer.reserved = SLEEP_FRESH;
        }
        return TML_READY;
    }
    if (f->timer.reserved != SLEEP_ARMED) {
        f->timer.reserved = SLEEP_ARMED;
        if (mt_timers_insert(&rt->timers, &f->timer, f->timer.deadline_ns, cx->waker))
            mt_worker_wake_driver(rt);
    }
    return TML_PENDING;
}

/* sleep_step inside the cooperative budget: a Ready spends one unit. */
tml_poll tml_sleep_poll(tml_sleep_fut *f, tml_cx *cx) {
    MT_ASSERT(f && cx && cx->worker);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    return sleep_step(f, cx) == TML_READY ? mt_budget_ready(cx) : TML_PENDING;
}

/* sleep_step outside the budget (contract: rt.h). */
tml_poll tml_deadline_poll(tml_sleep_fut *f, tml_cx *cx) {
    MT_ASSERT(f && cx && cx->worker);
    return sleep_step(f, cx);
}

static void cancel_in(mt_runtime *rt, void *node) {
    mt_timers_cancel(&rt->timers, node);
}

/* Cancels the timer if it is still armed, in the runtime its waker (the
 * task's token) belongs to; a no-op once that runtime is gone. */
void tml_sleep_drop(tml_sleep_fut *f) {
    MT_ASSERT(f);
    if (f->timer.reserved == SLEEP_ARMED)
        mt_runtime_visit(f->timer.waker, cancel_in, &f->timer);
}

void tml_sleep_blocking(int64_t duration_ns) {
    tml_sleep_fut f;
    tml_sleep_init(&f, duration_ns);
    pal_sleep_until(f.timer.deadline_ns); /* absolute: an interrupted sleep resumes without drift */
}
