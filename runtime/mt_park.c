/* mt_park.c - parking and unparking threads; the set of parked workers.
 *
 * mt_parker: a mutex, a CLOCK_MONOTONIC condvar and a sticky `notified`
 * flag. unpark sets the flag and signals while holding the mutex; park
 * returns once it finds the flag set (and clears it) or its deadline has
 * passed. Hence an unpark that comes before the park is never lost, and a
 * spurious condvar wake-up never ends a park early. Because unpark does
 * all its work under the mutex, a parker may be destroyed as soon as its
 * park returned true: the unparker no longer touches it (block_on keeps
 * its parker on the stack and relies on this).
 *
 * mt_idle: a runtime's parked workers, a stack of indices under a mutex,
 * plus their number `parked`, which wakers read without the lock.
 *
 * Protocol (no lost wake-up). A worker goes to sleep in these steps
 * (mt_worker.c, park()):
 *   1. it finds its local queue, the global queue and the timers empty;
 *   2. it announces itself: pushes its index on the idle stack and
 *      updates `parked` (mt_idle_announce);
 *   3. it re-checks, under the queue's lock, that the global queue is
 *      empty (mt_queue_is_empty), and the stop flag; if either says go,
 *      it takes itself off the stack (mt_idle_cancel) and goes back;
 *   4. it arms the timers (mt_timers_arm, under the timer lock) and parks
 *      until unparked or until the earliest timer deadline;
 *   5. it disarms, takes itself off the stack if still there (timed out),
 *      and goes back to step 1.
 * A thread that makes work available to parked workers does:
 *   a. publishes the work under the lock of where it goes (global queue
 *      push; timer insert);
 *   b. after that unlock, reads `parked` (mt_idle_any); if zero, done;
 *   c. pops one index from the stack and unparks that worker.
 * Why no wake-up is lost: the worker's re-check (3 or 4) and the waker's
 * publication (a) take the same lock, so one comes first. If the waker's
 * does, the worker sees the work. If the worker's does, its update of
 * `parked` (2) happens before its unlock, which happens before the
 * waker's lock, so the waker's read (b) sees parked > 0 and unparks a
 * worker, who re-checks. (This is the store->load "Dekker" pattern, made
 * safe by the lock instead of fences, which ThreadSanitizer cannot model.)
 * A worker popped in (c) just after it left in step 3 keeps the sticky
 * notification: its next park returns at once and it loops one extra
 * time, harmless.
 * Sources: Tokio's parker (mutex + condvar + notified state) and idle
 * set (tokio/src/runtime/scheduler/multi_thread/{park,idle}.rs); Go's
 * "spinning M re-checks after announcing" (runtime/proc.go, findRunnable).
 * Rejected: a futex word per worker (lighter, but ThreadSanitizer does not
 * model futex hand-offs; the parking issue may switch, keeping this
 * interface); waking every parked worker (thundering herd); a sleep/poll
 * loop (latency, and CPU burnt while idle).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "mt_internal.h"

/* Initialises `p` un-notified. Returns 0 or -errno from pthread. */
int mt_parker_init(mt_parker *p) {
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err)
        return -err;
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!err)
        err = pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err)
        return -err;
    pthread_mutex_init(&p->lock, NULL);
    p->notified = false;
    return 0;
}

/* Destroys `p`. Threads: no thread may be parked on it or unparking it. */
void mt_parker_fini(mt_parker *p) {
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

/* Blocks the calling thread until `p` is notified or the monotonic clock
 * reaches `deadline_ns` (MT_NO_DEADLINE: no timeout). Consumes the
 * notification. Returns true when notified, false on timeout.
 * Threads: one parking thread per parker at a time. */
bool mt_parker_park(mt_parker *p, int64_t deadline_ns) {
    MT_ASSERT(deadline_ns >= 0);
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    int err = 0;
    pthread_mutex_lock(&p->lock);
    while (!p->notified && err != ETIMEDOUT) {
        if (deadline_ns == MT_NO_DEADLINE)
            pthread_cond_wait(&p->cond, &p->lock);
        else
            err = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    bool notified = p->notified;
    p->notified = false;
    pthread_mutex_unlock(&p->lock);
    return notified;
}

/* Notifies `p`: its current or next park returns. Threads: any. */
void mt_parker_unpark(mt_parker *p) {
    pthread_mutex_lock(&p->lock);
    p->notified = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Initialises an empty idle set for `nworkers` workers.
 * Returns 0 or -ENOMEM. */
int mt_idle_init(mt_idle *idle, unsigned nworkers) {
    MT_ASSERT(nworkers > 0);
    idle->stack = malloc(nworkers * sizeof *idle->stack);
    if (!idle->stack)
        return -ENOMEM;
    pthread_mutex_init(&idle->lock, NULL);
    idle->len = 0;
    mt_atomic_store(&idle->parked, 0); /* before any thread starts */
    return 0;
}

/* Frees the set. Threads: no worker may use it any more. */
void mt_idle_fini(mt_idle *idle) {
    pthread_mutex_destroy(&idle->lock);
    free(idle->stack);
}

/* Step 2: worker `index` (not listed yet) joins the idle set. The
 * caller's re-check that follows must take the lock wakers publish work
 * under (see the protocol). Threads: that worker. */
void mt_idle_announce(mt_idle *idle, unsigned index) {
    pthread_mutex_lock(&idle->lock);
    idle->stack[idle->len++] = index;
    mt_atomic_store(&idle->parked, idle->len); /* relaxed: the protocol's locks order it */
    pthread_mutex_unlock(&idle->lock);
}

/* Takes worker `index` off the idle set if it is still listed. Returns
 * false when a waker already popped it (its parker holds, or will hold,
 * a notification). Threads: that worker. */
bool mt_idle_cancel(mt_idle *idle, unsigned index) {
    bool found = false;
    pthread_mutex_lock(&idle->lock);
    for (unsigned i = 0; i < idle->len; i++) {
        if (idle->stack[i] == index) {
            idle->stack[i] = idle->stack[--idle->len];
            mt_atomic_store(&idle->parked, idle->len); /* relaxed: as in announce */
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&idle->lock);
    return found;
}

/* Step b: may some worker be parked? Exact for the protocol when called
 * after publishing work under the lock the parker re-checks under;
 * elsewhere a hint. Threads: any. */
bool mt_idle_any(mt_idle *idle) {
    /* relaxed: a parker's update happens before our read through that
     * lock (see the protocol), and coherence then forbids an older value */
    return mt_atomic_load(&idle->parked) != 0;
}

/* Step c: pops the most recently parked worker into *index (the caller
 * unparks it). Returns false when none is parked. Threads: any. */
bool mt_idle_pop(mt_idle *idle, unsigned *index) {
    bool found = false;
    pthread_mutex_lock(&idle->lock);
    if (idle->len > 0) {
        *index = idle->stack[--idle->len];
        mt_atomic_store(&idle->parked, idle->len); /* relaxed: as in announce */
        found = true;
    }
    pthread_mutex_unlock(&idle->lock);
    return found;
}
