/* async_sem.c - the permit queue (mt_sem), and Semaphore and Notify on
 * it. Mutex is one more user (async_mutex.c): a queue of one permit.
 *
 * mt_sem: permits in an atomic word and a FIFO wait list under a spin
 * lock (async_sync.h has the state word and its invariant: QUEUED set
 * exactly while someone waits, and then no permit is free). Protocol:
 *   T1. take, fast: a CAS that removes a permit; it can only succeed
 *       when permits > 0, hence when nobody waits: no barging.
 *   T2. take, slow (a FRESH leaf whose T1 failed): under the lock, CAS
 *       a permit away if one appeared, else CAS QUEUED on and append the
 *       leaf; both CASes re-check, as fast paths of other threads may
 *       change a state without QUEUED at any time.
 *   G1. give, fast: a CAS that adds a permit; only while !QUEUED.
 *   G2. give, slow (QUEUED seen): under the lock, pop the oldest leaf,
 *       clear QUEUED if the list is now empty and set HANDED (one CAS),
 *       set the leaf's status to MT_GRANT_PERMIT (release), drop the
 *       lock, wake the token. The granted leaf clears HANDED when it
 *       first runs (or is dropped). The
 *       permit never becomes free, so nobody can overtake the waiter:
 *       it wakes already holding it (FIFO hand-off, as Tokio's
 *       batch_semaphore and Go's starvation-mode sync.Mutex).
 *   D.  drop of a QUEUED leaf: under the lock, unlink it (clearing QUEUED
 *       when it was the last) or, when it is no longer linked, find the
 *       permit it was granted and give it back through G1/G2.
 * While QUEUED is set no fast path can succeed, so the state changes only
 * under the lock (but for the HANDED hint, which G2 sets and the granted
 * leaf clears by CAS), which is what lets T2 append and G2/D clear QUEUED
 * with no lost update.
 * Orderings: T1/G1 are acq_rel CASes (a giver's critical section happens
 * before the next taker's); a hand-off pairs G2's release store of
 * `status` with the woken leaf's acquire load (async_sync.h).
 * Notify is an mt_sem capped at one permit (notify_one: G1/G2 with max 1)
 * plus `epoch`, the count of notify_all calls: notify_all bumps it and
 * grants MT_GRANT_ALL to every waiter under the lock; a leaf records the
 * epoch at init, so a notify_all after its init completes it even before
 * it queued (Tokio's notify_waiters does the same with a call counter).
 * Wakes from notify_all happen under the lock (tml_wake takes no lock of
 * ours, so no cycle; notify_all is rare and the list unbounded). */
#include <errno.h>
#include <stdlib.h>

#include "async_sync.h"

#define WAIT_OF(w) ((tml_permit_wait *)((char *)(w) - offsetof(tml_permit_wait, w)))

void mt_sem_init(mt_sem *s, uint64_t permits) {
    MT_ASSERT(permits <= MT_SEM_MAX_PERMITS);
    mt_atomic_store(&s->state, permits * MT_SEM_PERMIT); /* relaxed: before sharing */
    mt_spin_init(&s->lock);
    s->waiters = (mt_waitlist){NULL, NULL};
}

/* Completes a waiter just popped with `code`; returns its token, to be
 * woken by the caller (after the lock if it likes). Lock held. */
static tml_waker grant(tml_waiter *w, int32_t code) {
    tml_waker waker = w->waker; /* before the store: async_sync.h, "Wakes" */
    /* release: pairs with the acquire in mt_sem_step */
    mt_atomic32_store_release(&WAIT_OF(w)->status, code);
    return waker;
}

/* Pops the oldest waiter for a hand-off: clears QUEUED when it was the
 * last, sets HANDED when `handed`. Lock held; QUEUED set. */
static tml_waiter *pop_waiter(mt_sem *s, bool handed) {
    tml_waiter *w = mt_waitlist_pop(&s->waiters);
    MT_ASSERT(w);
    uint64_t old = mt_atomic_load(&s->state); /* relaxed: the CAS re-checks */
    for (;;) { /* with QUEUED set only HANDED changes outside the lock */
        uint64_t next = (s->waiters.head ? old : old & ~MT_SEM_QUEUED) | (handed ? MT_SEM_HANDED : 0);
        uint64_t seen = mt_atomic_cas(&s->state, old, next);
        if (seen == old)
            return w;
        old = seen;
    }
}

/* Clears the HANDED hint: the granted leaf has run. */
static void clear_handed(mt_sem *s) {
    uint64_t old = mt_atomic_load(&s->state); /* relaxed: a hint; the CAS re-checks */
    while (old & MT_SEM_HANDED) {
        uint64_t seen = mt_atomic_cas(&s->state, old, old & ~MT_SEM_HANDED);
        if (seen == old)
            return;
        old = seen;
    }
}

/* G2: mt_sem_give found QUEUED. Returns false when it added nothing
 * (no waiter and `max` permits free). Threads: any. */
bool mt_sem_give_slow(mt_sem *s, uint64_t max) {
    tml_waker waker = 0;
    bool handed = false, given = true;
    mt_spin_lock(&s->lock);
    uint64_t old = mt_atomic_load(&s->state); /* relaxed: the lock or the CAS orders */
    for (;;) {
        if (old & MT_SEM_QUEUED) {
            waker = grant(pop_waiter(s, true), MT_GRANT_PERMIT);
            handed = true;
            break;
        }
        if (mt_sem_permits(old) >= max) { /* the queue emptied meanwhile (a drop) */
            given = false;
            break;
        }
        uint64_t seen = mt_atomic_cas(&s->state, old, old + MT_SEM_PERMIT); /* as G1 */
        if (seen == old)
            break;
        old = seen;
    }
    mt_spin_unlock(&s->lock);
    if (handed)
        tml_wake(waker);
    return given;
}

/* T2 under the lock for a FRESH leaf: takes a permit or queues. Returns
 * true when it took one. */
static bool take_or_queue(mt_sem *s, tml_permit_wait *pw, tml_waker waker) {
    uint64_t old = mt_atomic_load(&s->state); /* relaxed: the CASes re-check */
    for (;;) {
        uint64_t next = old >= MT_SEM_PERMIT ? old - MT_SEM_PERMIT : old | MT_SEM_QUEUED;
        uint64_t seen = mt_atomic_cas(&s->state, old, next); /* acquire, as T1 */
        if (seen == old)
            break;
        old = seen;
    }
    if (old >= MT_SEM_PERMIT)
        return true;
    mt_waitlist_push(&s->waiters, &pw->w, waker);
    pw->phase = LEAF_QUEUED;
    return false;
}

/* Whether a notify_all came after the leaf's init (its `seen` epoch). */
static bool epoch_moved(const mt_atomic *epoch, uint32_t seen) {
    /* relaxed: under the lock it is exact (notify_all bumps it there);
     * outside, a moved epoch is final and an old one is re-checked under
     * the lock before the leaf queues */
    return epoch && (uint32_t)mt_atomic_load(epoch) != seen;
}

/* One attempt of a waiting leaf, without the budget: T1, then T2. Returns
 * true once `pw->status` is final. `epoch` (Notify only; else NULL) and
 * `seen`: see the module header. */
bool mt_sem_step(mt_sem *s, tml_permit_wait *pw, const mt_atomic *epoch, uint32_t seen, tml_waker waker) {
    bool fresh = pw->phase != LEAF_QUEUED; /* DONE leaves are never polled */
    int32_t code = mt_atomic32_load_acquire(&pw->status); /* pairs with grant() */
    bool done = code != IN_FLIGHT;
    if (done) {
        /* granted while queued */
    } else if (fresh && epoch_moved(epoch, seen)) {
        code = MT_GRANT_ALL, done = true;
    } else if (fresh && mt_sem_try_take(s)) {
        code = MT_GRANT_PERMIT, done = true;
    } else {
        mt_spin_lock(&s->lock);
        if (pw->w.linked) {
            pw->w.waker = waker; /* a spurious wake: wait on */
        } else if (!fresh) {
            code = pw->status, done = true; /* granted since our load */
        } else if (epoch_moved(epoch, seen)) {
            code = MT_GRANT_ALL, done = true;
        } else if (take_or_queue(s, pw, waker)) {
            code = MT_GRANT_PERMIT, done = true;
        }
        mt_spin_unlock(&s->lock);
    }
    if (done && fresh)
        mt_atomic32_store_release(&pw->status, code); /* atomic: mt_sem_drop may read it so */
    else if (done && code == MT_GRANT_PERMIT)
        clear_handed(s); /* a hand-off: we run now */
    return done;
}

/* D: ends a leaf that may wait or have been granted; a permit it got
 * goes back through mt_sem_give(s, max). A no-op unless QUEUED. */
void mt_sem_drop(mt_sem *s, tml_permit_wait *pw, uint64_t max) {
    if (pw->phase == LEAF_QUEUED) {
        int32_t st = mt_atomic32_load_acquire(&pw->status); /* pairs with grant() */
        if (st == IN_FLIGHT) {
            mt_spin_lock(&s->lock);
            if (pw->w.linked) {
                mt_waitlist_remove(&s->waiters, &pw->w);
                if (!s->waiters.head) /* as in pop_waiter */
                    mt_atomic_fetch_add(&s->state, -MT_SEM_QUEUED);
            } else {
                st = pw->status; /* granted while we took the lock */
            }
            mt_spin_unlock(&s->lock);
        }
        if (st == MT_GRANT_PERMIT) {
            clear_handed(s);
            mt_sem_give(s, max);
        }
    }
    pw->phase = LEAF_DONE;
}

void mt_sem_wait_init(tml_permit_wait *pw) {
    pw->w.linked = 0;
    pw->status = IN_FLIGHT;
    pw->phase = LEAF_FRESH;
}

/* ------------------------------------------------------------ semaphore */

struct tml_sem {
    mt_sem sem;
    mt_atomic refs;
};

tml_sem *tml_sem_new(int64_t permits) {
    if (permits < 0 || permits > MT_SEM_MAX_PERMITS)
        tml_panic_at(NULL, 0, 0, "semaphore permits out of range");
    tml_sem *s = tml_alloc(sizeof *s);
    mt_sem_init(&s->sem, (uint64_t)permits);
    mt_atomic_store(&s->refs, 1); /* relaxed: before sharing */
    return s;
}

/* The caller holds a reference: any ordering would do. */
void tml_sem_retain(tml_sem *s) { mt_atomic_fetch_add(&s->refs, 1); }

void tml_sem_unref(tml_sem *s) {
    /* acq_rel: every owner's use happens before the free */
    if (mt_atomic_fetch_add(&s->refs, -1) == 1) {
        MT_ASSERT(!s->sem.waiters.head); /* waiting leaves' owners hold references */
        tml_free(s);
    }
}

void tml_acquire_init(tml_acquire_fut *f, tml_sem *s) {
    MT_ASSERT(f && s);
    f->s = s;
    mt_sem_wait_init(&f->wait);
}

tml_poll tml_acquire_poll(tml_acquire_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->s && cx && f->wait.phase != LEAF_DONE);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (!mt_sem_step(&f->s->sem, &f->wait, NULL, 0, cx->waker))
        return mt_task_waits(cx, MT_WAIT_ACQUIRE);
    f->wait.phase = LEAF_DONE;
    return mt_budget_ready(cx);
}

void tml_acquire_drop(tml_acquire_fut *f) {
    MT_ASSERT(f && f->s);
    mt_sem_drop(&f->s->sem, &f->wait, MT_SEM_MAX_PERMITS);
}

bool tml_sem_try_acquire(tml_sem *s) {
    MT_ASSERT(s);
    return mt_sem_try_take(&s->sem);
}

void tml_sem_release(tml_sem *s) {
    MT_ASSERT(s);
    if (!mt_sem_give(&s->sem, MT_SEM_MAX_PERMITS))
        tml_panic_at(NULL, 0, 0, "semaphore permits overflow");
}

static tml_poll acquire_leaf(void *leaf, tml_cx *cx) { return tml_acquire_poll(leaf, cx); }
static void acquire_leaf_drop(void *leaf) { tml_acquire_drop(leaf); }

/* Panics when the shutdown deadline ends the wait (no permit, no error). */
void tml_sem_acquire_blocking(tml_sem *s) {
    if (tml_sem_try_acquire(s))
        return;
    tml_acquire_fut f;
    tml_acquire_init(&f, s);
    if (!mt_block_on_leaf(acquire_leaf, acquire_leaf_drop, &f))
        mt_panic_err("semaphore acquire", -ECANCELED);
}

int64_t tml_sem_available(tml_sem *s) {
    MT_ASSERT(s);
    return (int64_t)mt_sem_permits(mt_atomic_load(&s->sem.state)); /* relaxed: a snapshot */
}

/* --------------------------------------------------------------- notify */

struct tml_notify {
    mt_sem sem;      /* at most one permit */
    mt_atomic epoch; /* notify_all calls; written under sem.lock */
    mt_atomic refs;
};

tml_notify *tml_notify_new(void) {
    tml_notify *n = tml_alloc(sizeof *n);
    mt_sem_init(&n->sem, 0);
    mt_atomic_store(&n->epoch, 0); /* relaxed, both: before sharing */
    mt_atomic_store(&n->refs, 1);
    return n;
}

void tml_notify_retain(tml_notify *n) { mt_atomic_fetch_add(&n->refs, 1); } /* as tml_sem_retain */

void tml_notify_release(tml_notify *n) {
    if (mt_atomic_fetch_add(&n->refs, -1) == 1) { /* as tml_sem_unref */
        MT_ASSERT(!n->sem.waiters.head);
        tml_free(n);
    }
}

void tml_notify_one(tml_notify *n) {
    MT_ASSERT(n);
    mt_sem_give(&n->sem, 1); /* false: a permit is stored already */
}

void tml_notify_all(tml_notify *n) {
    MT_ASSERT(n);
    mt_spin_lock(&n->sem.lock);
    mt_atomic_store(&n->epoch, mt_atomic_load(&n->epoch) + 1); /* relaxed: see epoch_moved */
    if (mt_atomic_load(&n->sem.state) & MT_SEM_QUEUED) { /* relaxed: stable under the lock */
        while (n->sem.waiters.head)
            tml_wake(grant(pop_waiter(&n->sem, false), MT_GRANT_ALL));
    }
    mt_spin_unlock(&n->sem.lock);
}

void tml_notified_init(tml_notified_fut *f, tml_notify *n) {
    MT_ASSERT(f && n);
    f->n = n;
    mt_sem_wait_init(&f->wait);
    /* relaxed: a notify_all that happens before this init is never seen
     * as newer (coherence); a later one is, by this or a locked re-read */
    f->epoch = (uint32_t)mt_atomic_load(&n->epoch);
    f->reserved = 0;
}

tml_poll tml_notified_poll(tml_notified_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->n && cx && f->wait.phase != LEAF_DONE);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (!mt_sem_step(&f->n->sem, &f->wait, &f->n->epoch, f->epoch, cx->waker))
        return mt_task_waits(cx, MT_WAIT_NOTIFIED);
    f->wait.phase = LEAF_DONE;
    return mt_budget_ready(cx);
}

void tml_notified_drop(tml_notified_fut *f) {
    MT_ASSERT(f && f->n);
    mt_sem_drop(&f->n->sem, &f->wait, 1); /* a notify_one is passed on; MT_GRANT_ALL is not */
}

static tml_poll notified_leaf(void *leaf, tml_cx *cx) { return tml_notified_poll(leaf, cx); }
static void notified_leaf_drop(void *leaf) { tml_notified_drop(leaf); }

/* Panics when the shutdown deadline ends the wait (no notification, no
 * error). */
void tml_notified_blocking(tml_notify *n) {
    tml_notified_fut f;
    tml_notified_init(&f, n);
    if (!mt_block_on_leaf(notified_leaf, notified_leaf_drop, &f))
        mt_panic_err("notified", -ECANCELED);
}
