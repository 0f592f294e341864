/* mt_timer.c - the monotonic clock, a runtime's pending timers, and the
 * sleep leaf.
 *
 * Timers: a binary min-heap of (deadline_ns, waker) under a mutex
 * (textbook: CLRS chapter 6; Go's timers were a 4-ary heap). Insert is
 * O(log n). There is no cancellation: an entry that outlives its sleep
 * (the task finished, or slept again) later fires a stale or spurious
 * wake, which is harmless: a stale token is a no-op and a sleep leaf
 * re-checks the clock. The timer-wheel issue replaces the heap (O(1)
 * insert and cancel) behind the same mt_timers_* interface.
 *
 * Who fires timers:
 *   - running workers, at each fairness tick and whenever their local
 *     queue runs dry (mt_timers_expire); `next_ns` mirrors the earliest
 *     deadline so a worker with nothing due reads one atomic, no lock;
 *   - a parked worker: the first worker to park while timers are pending
 *     "arms" the earliest deadline (mt_timers_arm) and parks with it as
 *     timeout, so timers fire on time when every worker is idle.
 * Arming rule: `armed_ns` is the deadline some parked worker will wake at
 * (MT_NO_DEADLINE: none). A parking worker takes a timeout only when the
 * earliest deadline is before armed_ns, so one worker, not every idle
 * one, wakes per deadline. An insert before armed_ns tells its caller to
 * notify (mt_park.c N1-N3): a worker wakes, or one is searching already,
 * and parks again armed with the new deadline; the timer lock orders the
 * insert against a concurrent arm, and the parking protocol makes the
 * notification reach a worker that parked. A
 * worker coming back from an armed park disarms if armed_ns is still its
 * deadline (a later park re-arms).
 * Limitation (as in Tokio): when the armed worker is woken for work and
 * then runs a long poll, due timers wait for some worker's next tick.
 * Never early: tml_sleep_poll compares tml_now_ns() with the deadline on
 * every poll. Invariants (lock held): heap[0..len) is a min-heap on
 * deadline_ns; next_ns == heap[0].deadline_ns, or MT_NO_DEADLINE if empty. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "mt_internal.h"

#define FIRST_HEAP_CAP 64
#define NS_PER_S 1000000000

int64_t tml_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Initialises an empty timer set (allocates on first insert). */
void mt_timers_init(mt_timers *t) {
    pthread_mutex_init(&t->lock, NULL);
    t->heap = NULL;
    t->len = t->cap = 0;
    t->armed_ns = MT_NO_DEADLINE;
    mt_atomic_store(&t->next_ns, (uint64_t)MT_NO_DEADLINE); /* before sharing */
}

/* Frees the set; pending entries are dropped (they own nothing).
 * Threads: nobody else may use `t` any more. */
void mt_timers_fini(mt_timers *t) {
    pthread_mutex_destroy(&t->lock);
    free(t->heap);
}

static void swap(mt_timer *a, mt_timer *b) {
    mt_timer x = *a;
    *a = *b;
    *b = x;
}

static void sift_up(mt_timer *h, size_t i) {
    for (; i > 0 && h[i].deadline_ns < h[(i - 1) / 2].deadline_ns; i = (i - 1) / 2)
        swap(&h[i], &h[(i - 1) / 2]);
}

static void sift_down(mt_timer *h, size_t len, size_t i) {
    for (;;) {
        size_t min = i, l = 2 * i + 1, r = l + 1;
        if (l < len && h[l].deadline_ns < h[min].deadline_ns)
            min = l;
        if (r < len && h[r].deadline_ns < h[min].deadline_ns)
            min = r;
        if (min == i)
            return;
        swap(&h[i], &h[min]);
        i = min;
    }
}

/* Re-publishes the earliest deadline. Lock held. */
static void publish_next(mt_timers *t) {
    /* relaxed: a hint; a reader that sees an old value fires a little
     * later, or takes the lock for nothing */
    mt_atomic_store(&t->next_ns, (uint64_t)(t->len ? t->heap[0].deadline_ns : MT_NO_DEADLINE));
}

/* Registers a wake of `waker` once the clock reaches `deadline_ns`.
 * *unpark is set when the deadline is earlier than any parked worker
 * will wake for: the caller must then call mt_worker_notify.
 * Threads: any. Returns 0 or -ENOMEM (nothing registered). */
int mt_timers_insert(mt_timers *t, int64_t deadline_ns, tml_waker waker, bool *unpark) {
    int err = 0;
    pthread_mutex_lock(&t->lock);
    if (t->len == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : FIRST_HEAP_CAP;
        mt_timer *heap = realloc(t->heap, ncap * sizeof *heap);
        if (heap) {
            t->heap = heap;
            t->cap = ncap;
        } else {
            err = -ENOMEM;
        }
    }
    if (!err) {
        t->heap[t->len] = (mt_timer){deadline_ns, waker};
        sift_up(t->heap, t->len++);
        publish_next(t);
        *unpark = deadline_ns < t->armed_ns;
    }
    pthread_mutex_unlock(&t->lock);
    return err;
}

/* The earliest pending deadline, or MT_NO_DEADLINE; a lock-free hint.
 * Threads: any. */
int64_t mt_timers_next(const mt_timers *t) {
    return (int64_t)mt_atomic_load(&t->next_ns); /* relaxed: see publish_next */
}

/* Removes up to `max` entries whose deadline is <= now_ns, oldest
 * deadline first, storing their wakers in out[]; the caller wakes them.
 * Returns how many. Threads: any. */
size_t mt_timers_expire(mt_timers *t, int64_t now_ns, tml_waker *out, size_t max) {
    if (mt_timers_next(t) > now_ns)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    while (n < max && t->len > 0 && t->heap[0].deadline_ns <= now_ns) {
        out[n++] = t->heap[0].waker;
        t->heap[0] = t->heap[--t->len];
        sift_down(t->heap, t->len, 0);
    }
    publish_next(t);
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Called by a worker about to park: returns the deadline it must park
 * until (it becomes the armed worker), or MT_NO_DEADLINE when no timer is
 * pending or another parked worker already wakes early enough.
 * Threads: a worker, in step 4 of the parking protocol. */
int64_t mt_timers_arm(mt_timers *t) {
    int64_t deadline = MT_NO_DEADLINE;
    pthread_mutex_lock(&t->lock);
    if (t->len > 0 && t->heap[0].deadline_ns < t->armed_ns)
        deadline = t->armed_ns = t->heap[0].deadline_ns;
    pthread_mutex_unlock(&t->lock);
    return deadline;
}

/* The worker that armed `deadline_ns` (a value mt_timers_arm returned)
 * is awake again. Threads: that worker. */
void mt_timers_disarm(mt_timers *t, int64_t deadline_ns) {
    if (deadline_ns == MT_NO_DEADLINE)
        return;
    pthread_mutex_lock(&t->lock);
    if (t->armed_ns == deadline_ns)
        t->armed_ns = MT_NO_DEADLINE;
    pthread_mutex_unlock(&t->lock);
}

void tml_sleep_until_init(tml_sleep_fut *f, int64_t deadline_ns) {
    MT_ASSERT(f);
    f->timer = (tml_timer_node){NULL, NULL, deadline_ns < 0 ? 0 : deadline_ns, 0, -1, 0};
}

void tml_sleep_init(tml_sleep_fut *f, int64_t duration_ns) {
    int64_t now = tml_now_ns();
    if (duration_ns < 0)
        duration_ns = 0;
    tml_sleep_until_init(f, duration_ns > INT64_MAX - now ? INT64_MAX : now + duration_ns);
}

/* Ready once the clock reached the deadline (spending one unit of the
 * cooperative budget); otherwise registers the task's waker with the
 * runtime's timers (once per sleep). */
tml_poll tml_sleep_poll(tml_sleep_fut *f, tml_cx *cx) {
    MT_ASSERT(f && cx && cx->worker);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (tml_now_ns() >= f->timer.deadline_ns)
        return mt_budget_ready(cx);
    if (f->timer.where < 0) {
        mt_runtime *rt = ((mt_worker *)cx->worker)->rt;
        bool unpark = false;
        int err = mt_timers_insert(&rt->timers, f->timer.deadline_ns, cx->waker, &unpark);
        if (err)
            mt_panic_err("sleep", err);
        if (unpark)
            mt_worker_notify(rt);
        f->timer.where = 0;
    }
    return TML_PENDING;
}

void tml_sleep_drop(tml_sleep_fut *f) {
    (void)f; /* the heap cannot cancel; the wheel replaces it */
}

void tml_sleep_blocking(int64_t duration_ns) {
    tml_sleep_fut f;
    tml_sleep_init(&f, duration_ns);
    int64_t deadline = f.timer.deadline_ns;
    struct timespec ts = {(time_t)(deadline / NS_PER_S), (long)(deadline % NS_PER_S)};
    /* absolute deadline: an interrupted sleep resumes without drift */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}
