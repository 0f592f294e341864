/* mt_park.c - parking and unparking threads; the searching and parked
 * workers of a runtime.
 *
 * mt_parker: a mutex, a CLOCK_MONOTONIC condvar and a sticky `notified`
 * flag. unpark sets the flag and signals while holding the mutex; park
 * returns once it finds the flag set (and clears it) or its deadline has
 * passed. Hence an unpark that comes before the park is never lost, and a
 * spurious condvar wake-up never ends a park early. Because unpark does
 * all its work under the mutex, a parker may be destroyed as soon as its
 * park returned true: the unparker no longer touches it (block_on keeps
 * its parker on the stack and relies on this). A parker parked in the I/O
 * reactor (mt_parker_park_in, the driver) records that reactor in
 * `blocked_in`, under the mutex, and unpark then wakes the reactor
 * (io_reactor_wake: the backend's eventfd, EVFILT_USER or completion
 * packet) instead of signalling: a wake before the poll starts makes it
 * return at once, so none is lost.
 * Activity (mt_deadlock.c): a parker with an `activity` word counts its
 * thread out of it in mt_parker_idle, just before the park, unless a
 * notification is already pending, and in again when it wakes: whoever
 * unparks it does so under the mutex, before the unpark returns, so a
 * thread waking another is still active when the other becomes active
 * (the count of active threads never reads 0 while a wake is under
 * way); a park that ends by itself (timeout, I/O) counts itself in.
 *
 * mt_idle: one atomic word `state` = CLOSED | unparked << 32 | searching,
 * and a stack of parked workers under `lock`. `unparked` counts workers
 * not on the stack; `searching` the unparked ones looking for work to
 * steal. The stack and `unparked` change together, under the lock.
 * Waking a parked thread costs ~400 spins on this machine (DESIGN.md
 * section 4b), so the protocol wakes as few workers as it can.
 *
 * Protocol (Tokio's idle.rs and Go's spinning rule, runtime/proc.go).
 * A worker W out of local work (mt_worker.c):
 *   S1. becomes a searcher only while fewer than half the workers search
 *       (mt_idle_try_search; at least one may); if refused, goes to P1;
 *   S2. as a searcher, steals from random victims and polls the global
 *       queue, with exponential backoff between rounds;
 *   S3. on finding a task it stops searching (mt_idle_stop_search) and,
 *       if it was the last searcher, notifies (N1-N3) before running the
 *       task: more work may be waiting ("spinning -> non-spinning").
 *   P1. parks: under the lock, one RMW takes W out of `unparked` (and
 *       `searching`), and W joins the stack (mt_idle_park);
 *   P2. if that left no searcher (MT_IDLE_RECHECK), W re-checks the
 *       global queue and every local queue, and notifies (N1-N3) if any
 *       holds a task: the notification may pick W itself, whose park then
 *       returns at once (the parker is sticky);
 *   P3. sleeps until unparked: the worker that holds the driver blocks in
 *       the I/O reactor until I/O or its timer deadline (mt_parker_park_in,
 *       mt_worker.c's drive()), the others on their condition variable;
 *   P4. leaves the stack if still on it (mt_idle_unparked: a timeout or
 *       shutdown: W is not searching); if a notifier took it off, W is a
 *       searcher already, counted by the notifier.
 * A thread that published work others should run notifies:
 *   N1. one RMW reads the state (fetch_add 0): if a worker searches, or
 *       none is parked, it is done: a searcher will find the work;
 *   N2. under the lock, re-checks; counts one parked worker (the most
 *       recent: warmest cache) as unparked AND searching; pops it;
 *   N3. unparks it. As it counts as searching from N2 on, further
 *       notifications stop at N1 until it finds work (S3) or parks (P1):
 *       unparks are coalesced, and at most one wakes per burst.
 * No lost wake-up, for work published before N1: P1 and N1 are RMWs of
 * one word, so its modification order puts one first, and each reads the
 * value just before it.
 *   a. N1 first: P1 reads-from N1 (acq_rel), so the publication happens
 *      before W's P2 re-check; if P1 left no searcher, W sees the work.
 *   b. P1 first: N1 sees W parked. With no searcher, N2-N3 wake a worker
 *      that searches. With a searcher S, S is after its own P1 or S3 in
 *      the order: when S parks, its P1 comes after N1 (case a, applied
 *      to S, which re-checks if it is the last searcher); when S finds
 *      other work first, its S3 notification's N1 sees W parked.
 * The same holds for a worker that parks while every worker runs (N1
 * saw none parked): whoever parks after N1 is in case a. Work a worker
 * queues locally without N1 (mt_worker.c) is never lost either: that
 * worker runs it itself; the protocol only decides who helps.
 * CLOSED (mt_idle_close) rides in the same word, so a parking worker's
 * P1 tells it whether shutdown waits for quiescence (mt_runtime.c).
 * Rejected: a futex word per worker (lighter, but ThreadSanitizer does not
 * model futex hand-offs); waking every parked worker (thundering herd);
 * unbounded searching (every idle worker hammering the same queues);
 * parking without searching first (Tokio's choice: costs an unpark per
 * burst of work on this machine); a sleep/poll loop (latency, and CPU
 * burnt while idle). */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

/* Initialises `p` un-notified. Returns 0 or -errno (pal_cond_init). */
int mt_parker_init(mt_parker *p) {
    int err = pal_cond_init(&p->cond);
    if (err)
        return err;
    pal_mutex_init(&p->lock);
    p->notified = p->idle = false;
    p->blocked_in = NULL;
    p->activity = NULL;
    return 0;
}

/* Counts p's thread active again if it was counted out. Lock held. */
static void wake_locked(mt_parker *p) {
    if (p->idle) {
        p->idle = false;
        mt_atomic_fetch_add(p->activity, MT_ACTIVITY_WAKE); /* RMW: ordered with every idle's */
    }
}

/* The calling thread is about to park on `p`: counts it out of p's
 * activity word, unless the word is NULL or a notification is pending
 * (the park returns at once). Returns whether it did, with the word's
 * new value in *word. Threads: the parking thread, before its park. */
bool mt_parker_idle(mt_parker *p, uint64_t *word) {
    if (!p->activity)
        return false;
    pal_mutex_lock(&p->lock);
    p->idle = !p->notified;
    if (p->idle) /* RMW, acq_rel: the checker that reads 0 sees every write before each idle */
        *word = mt_atomic_fetch_add(p->activity, (uint64_t)-MT_ACTIVITY_ONE) - MT_ACTIVITY_ONE;
    bool idle = p->idle;
    pal_mutex_unlock(&p->lock);
    return idle;
}

/* Destroys `p`. Threads: no thread may be parked on it or unparking it. */
void mt_parker_fini(mt_parker *p) {
    pal_cond_fini(&p->cond);
    pal_mutex_fini(&p->lock);
}

/* Blocks the calling thread until `p` is notified or the monotonic clock
 * reaches `deadline_ns` (MT_NO_DEADLINE: no timeout). Consumes the
 * notification. Returns true when notified, false on timeout.
 * Threads: one parking thread per parker at a time. */
bool mt_parker_park(mt_parker *p, int64_t deadline_ns) {
    MT_ASSERT(deadline_ns >= 0);
    int err = 0;
    pal_mutex_lock(&p->lock);
    while (!p->notified && err != -ETIMEDOUT)
        err = pal_cond_wait_until(&p->cond, &p->lock, deadline_ns);
    bool notified = p->notified;
    p->notified = false;
    wake_locked(p); /* timed out */
    pal_mutex_unlock(&p->lock);
    return notified;
}

/* As mt_parker_park, but blocks in io_reactor_poll(r) (which dispatches
 * the I/O wakes it finds), so that unpark interrupts the reactor with
 * io_reactor_wake. Returns true when notified, false on a timeout or an
 * I/O event. Threads: the runtime's driver (one poller per reactor). */
bool mt_parker_park_in(mt_parker *p, io_reactor *r, int64_t deadline_ns) {
    pal_mutex_lock(&p->lock);
    if (!p->notified)
        p->blocked_in = r;
    pal_mutex_unlock(&p->lock);
    if (p->blocked_in) { /* only this thread writes it */
        int64_t timeout = -1;
        if (deadline_ns != MT_NO_DEADLINE) {
            timeout = deadline_ns - tml_now_ns();
            timeout = timeout < 0 ? 0 : timeout;
        }
        /* an unpark from here on signals the reactor (io_reactor_wake): not lost */
        int n = io_reactor_poll(r, timeout);
        if (n < 0)
            mt_panic_err("polling for I/O", n);
    }
    pal_mutex_lock(&p->lock);
    p->blocked_in = NULL;
    bool notified = p->notified;
    p->notified = false;
    wake_locked(p); /* a timeout or I/O */
    pal_mutex_unlock(&p->lock);
    return notified;
}

/* Notifies `p`: its current or next park returns. Threads: any. */
void mt_parker_unpark(mt_parker *p) {
    if (mt_chaos(MT_CHAOS_UNPARK_DELAY))
        mt_chaos_stall(50);
    pal_mutex_lock(&p->lock);
    p->notified = true;
    wake_locked(p);
    if (p->blocked_in)
        io_reactor_wake(p->blocked_in);
    else
        pal_cond_signal(&p->cond);
    pal_mutex_unlock(&p->lock);
}

#define SEARCHING_ONE UINT64_C(1)
#define UNPARKED_ONE (UINT64_C(1) << 32)
#define CLOSED (UINT64_C(1) << 63)


/* Initialises the set of `nworkers` workers, all unparked, none
 * searching. Returns 0 or -ENOMEM. */
int mt_idle_init(mt_idle *idle, unsigned nworkers) {
    MT_ASSERT(nworkers > 0);
    idle->sleepers = malloc(nworkers * sizeof *idle->sleepers);
    if (!idle->sleepers)
        return -ENOMEM;
    pal_mutex_init(&idle->lock);
    idle->nworkers = nworkers;
    idle->nsleepers = 0;
    mt_atomic_store(&idle->state, nworkers * UNPARKED_ONE); /* relaxed: before any thread starts */
    return 0;
}

/* Frees the set. Threads: no worker may use it any more. */
void mt_idle_fini(mt_idle *idle) {
    pal_mutex_fini(&idle->lock);
    free(idle->sleepers);
}

/* S1: the calling worker (not searching) becomes a searcher if fewer than
 * half the workers search. Returns whether it did. Threads: a worker. */
bool mt_idle_try_search(mt_idle *idle) {
    /* relaxed: a bound on contention, not a protocol step; racing workers
     * may overshoot it by one each, as in Tokio */
    if (2 * mt_idle_n_searching(mt_atomic_load(&idle->state)) >= idle->nworkers)
        return false;
    mt_atomic_fetch_add(&idle->state, SEARCHING_ONE); /* RMW: ordered with N1 */
    return true;
}

/* S3: the calling searcher found work. Returns true when it was the last
 * searcher: it must then notify (mt_worker_notify). Threads: a worker. */
bool mt_idle_stop_search(mt_idle *idle) {
    uint64_t prev = mt_atomic_fetch_add(&idle->state, (uint64_t)-SEARCHING_ONE); /* RMW: ordered with N1 */
    MT_ASSERT(mt_idle_n_searching(prev) > 0);
    return mt_idle_n_searching(prev) == 1;
}

/* P1: worker `index` (unparked; `searching` says whether it counts as a
 * searcher) goes on the stack. Returns MT_IDLE_RECHECK when no searcher
 * is left (the caller must do P2) and MT_IDLE_CLOSED once closed.
 * Threads: that worker. */
unsigned mt_idle_park(mt_idle *idle, unsigned index, bool searching) {
    uint64_t delta = UNPARKED_ONE + (searching ? SEARCHING_ONE : 0);
    pal_mutex_lock(&idle->lock);
    MT_ASSERT(idle->nsleepers < idle->nworkers);
    /* RMW: the protocol's ordering point with N1 */
    uint64_t now = mt_atomic_fetch_add(&idle->state, -delta) - delta;
    idle->sleepers[idle->nsleepers++] = index;
    pal_mutex_unlock(&idle->lock);
    return (mt_idle_n_searching(now) == 0 ? MT_IDLE_RECHECK : 0) | (now & CLOSED ? MT_IDLE_CLOSED : 0);
}

/* P4: worker `index` is awake. Returns true when a notifier took it off
 * the stack (it is counted as searching), false when it woke by itself
 * and has now left the stack (counted unparked, not searching).
 * Threads: that worker. */
bool mt_idle_unparked(mt_idle *idle, unsigned index) {
    bool notified = true;
    pal_mutex_lock(&idle->lock);
    for (unsigned i = 0; i < idle->nsleepers; i++) {
        if (idle->sleepers[i] == index) {
            idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
            mt_atomic_fetch_add(&idle->state, UNPARKED_ONE);
            notified = false;
            break;
        }
    }
    pal_mutex_unlock(&idle->lock);
    return notified;
}

/* N1-N2: picks a parked worker to wake when no worker searches; it then
 * counts as a searcher. Returns false when none should be woken; else
 * true and its index in *index, which the caller must unpark (N3).
 * Threads: any; call after publishing the work. */
bool mt_idle_notify(mt_idle *idle, unsigned *index) {
    uint64_t s = mt_atomic_fetch_add(&idle->state, 0); /* N1: RMW, see the protocol */
    if (mt_idle_n_searching(s) != 0 || mt_idle_n_unparked(s) == idle->nworkers)
        return false;
    bool found = false;
    pal_mutex_lock(&idle->lock);
    s = mt_atomic_load(&idle->state); /* relaxed: N2 re-check, a coalescing hint */
    if (mt_idle_n_searching(s) == 0 && idle->nsleepers > 0) {
        mt_atomic_fetch_add(&idle->state, UNPARKED_ONE + SEARCHING_ONE);
        *index = idle->sleepers[--idle->nsleepers];
        found = true;
    }
    pal_mutex_unlock(&idle->lock);
    return found;
}

/* Sets CLOSED: every later P1 reports MT_IDLE_CLOSED. Threads: the
 * thread shutting the runtime down, once. */
void mt_idle_close(mt_idle *idle) {
    uint64_t prev = mt_atomic_fetch_add(&idle->state, CLOSED); /* RMW: ordered with P1 */
    MT_ASSERT(!(prev & CLOSED));
}
