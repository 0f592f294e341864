/* async_sync.h - what the async_*.c modules share: the waiting-leaf
 * protocol, wait-list removal, and the permit queue (mt_sem) that
 * Semaphore, Mutex and Notify are built on, with its inline fast paths.
 *
 * Waiting-leaf protocol (channel send/recv, lock, acquire, notified):
 *   status  IN_FLIGHT until the leaf's operation has happened; then its
 *           result (final statuses are >= 0). Written with release by
 *           whoever completes it: the leaf's own poll, or a hand-off by
 *           another thread under the owner's lock (which pops the leaf's
 *           node first). Read without the lock with acquire, so a woken
 *           leaf costs one load. A channel send may instead be GRANTED
 *           (async_sync.c): popped and given a slot, but its value not
 *           yet moved; only its own poll (which writes the value) or its
 *           drop (which passes the slot on) changes that.
 *   phase   how far the leaf got (LEAF_FRESH, LEAF_QUEUED, LEAF_DONE).
 *           Written only by the thread polling or dropping
 *           the leaf; the task state machine orders successive polls, so
 *           it is a plain field.
 *   node    `linked` exactly while on the owner's wait list (under its
 *           lock). Under the lock, a leaf that was queued is either
 *           linked or has its status set, never both, never neither.
 * Drop: DONE or FRESH leaves hold nothing (a FRESH leaf was never queued
 * and never completed: its polls only saw the budget spent, or yielded).
 * A QUEUED one takes the lock: linked, it unlinks; not linked, a hand-off
 * completed (or granted) it and the drop hands what it got on (a value
 * back to the channel, a permit or a send's slot to the next waiter), so
 * nothing is lost to a drop.
 * Wakes: the thread that completes a leaf copies its waker token before
 * the release store of `status`; after that store the leaf's frame may
 * be freed at any moment (its task may see Ready on a spurious poll), so
 * the node is never touched again and the token, stale or not, is safe to
 * wake after the lock is dropped. */
#ifndef ASYNC_SYNC_H
#define ASYNC_SYNC_H

#include "mt_internal.h"

#define IN_FLIGHT (-1) /* status of a leaf that has not finished */
#define GRANTED (-2)   /* status of a send leaf given a slot, value not yet in */

/* LEAF_YIELDED + k: FRESH, after k + 1 yields of a contended lock leaf
 * (async_mutex.c, C2); every other module treats it as FRESH. */
enum { LEAF_FRESH = 0, LEAF_QUEUED = 1, LEAF_DONE = 2, LEAF_YIELDED = 3 };

/* Unlinks `w`, which is on `l`. Owner's lock held. */
void mt_waitlist_remove(mt_waitlist *l, tml_waiter *w);

/* --------------------------------------------------- permit queue (mt_sem)
 * A counting semaphore whose waiters queue FIFO (async_sem.c).
 * state = permits << 2 | HANDED | QUEUED. QUEUED is set exactly while the
 * wait list is non-empty, and then permits == 0 (a permit given while
 * tasks wait goes to the oldest one). So the fast paths are single CASes
 * that can never overtake a waiter: take needs permits > 0, give needs
 * !QUEUED; a state with QUEUED set changes only under `lock` (but for
 * HANDED, which the granted leaf clears by CAS). HANDED is
 * a hint, never needed for correctness: a permit went to a waiter that
 * has not run since (set by the hand-off, cleared by the waiter's poll or
 * drop). Mutex uses it to tell a running holder (worth spinning for) from
 * one still sitting in a run queue (async_mutex.c). */
#define MT_SEM_QUEUED UINT64_C(1)
#define MT_SEM_HANDED UINT64_C(2)
#define MT_SEM_PERMIT UINT64_C(4)
#define MT_SEM_MAX_PERMITS (INT64_MAX >> 3)

/* tml_permit_wait.status of a granted leaf: it got one permit (take,
 * notify_one), or was woken by notify_all without one. */
enum { MT_GRANT_PERMIT = 0, MT_GRANT_ALL = 1 };

typedef struct mt_sem {
    mt_atomic state; /* permits << 2 | HANDED | QUEUED */
    mt_spin lock;    /* guards waiters, and state while QUEUED */
    mt_waitlist waiters; /* tml_permit_wait.w, oldest first */
} mt_sem;

void mt_sem_init(mt_sem *s, uint64_t permits);
void mt_sem_wait_init(tml_permit_wait *pw);
bool mt_sem_step(mt_sem *s, tml_permit_wait *pw, const mt_atomic *epoch, uint32_t seen, tml_waker waker);
bool mt_sem_give_slow(mt_sem *s, uint64_t max);
void mt_sem_drop(mt_sem *s, tml_permit_wait *pw, uint64_t max);

static inline uint64_t mt_sem_permits(uint64_t state) { return state >> 2; }

/* Takes one permit if one is free (then nobody waits). Threads: any;
 * lock-free: a load and one CAS per attempt. */
static inline bool mt_sem_try_take(mt_sem *s) {
    uint64_t old = mt_atomic_load(&s->state); /* relaxed: the CAS re-checks */
    while (old >= MT_SEM_PERMIT) {
        /* acquire: what the giver did before giving happens before us */
        uint64_t seen = mt_atomic_cas(&s->state, old, old - MT_SEM_PERMIT);
        if (seen == old)
            return true;
        old = seen;
    }
    return false;
}

/* Gives one permit back: to the oldest waiter, else to the pool unless
 * it already holds `max`. Returns false when the pool was full (nothing
 * given). Threads: any; one CAS when nobody waits. */
static inline bool mt_sem_give(mt_sem *s, uint64_t max) {
    uint64_t old = mt_atomic_load(&s->state); /* relaxed: the CAS re-checks */
    while (!(old & MT_SEM_QUEUED)) {
        if (mt_sem_permits(old) >= max)
            return false;
        /* release: our critical section happens before the next taker's */
        uint64_t seen = mt_atomic_cas(&s->state, old, old + MT_SEM_PERMIT);
        if (seen == old)
            return true;
        old = seen;
    }
    return mt_sem_give_slow(s, max);
}

#endif /* ASYNC_SYNC_H */
