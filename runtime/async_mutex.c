/* async_mutex.c - Mutex[T]: a permit queue of one permit (async_sem.c)
 * and the value it guards, inline in one reference-counted block.
 *
 * State (mt_sem): PERMIT = unlocked; 0 = locked, nobody waits; QUEUED =
 * locked, tasks wait; HANDED = the lock was just handed to a waiter that
 * has not run yet. Uncontended lock is one CAS PERMIT -> 0 and unlock one
 * CAS 0 -> PERMIT, with no load first: those are the only states they can
 * succeed from. Waiters queue FIFO; an unlock with waiters hands the lock
 * to the oldest, which is woken owning it (async_sem.c, G2). Nobody
 * overtakes a queued waiter: the fast paths cannot succeed while QUEUED
 * (try_lock fails), so no waiter starves. A lock handed to a dropped
 * leaf is unlocked again, i.e. passed to the next waiter (async_sem.c, D).
 *
 * Contention. Strict FIFO hand-off has one well-known failure, the lock
 * convoy: once a queue forms, every unlock hands off, the unlocker's next
 * lock must queue behind, and from then on every lock/unlock costs a task
 * switch; with tasks that re-lock in a loop the queue never drains.
 * W7 (1,000 tasks x 1,000 lock/increment/unlock, no await while
 * holding, 2 workers; a C version, 25 interleaved runs on the shared
 * 2-core VM): queueing at once, as Tokio, median 30 ms [7.8..118]: the
 * fast runs are those where no queue ever formed, the slow ones where a
 * single contended lock started a convoy that lasted to the end. With
 * C1-C3 below: median 17.1 ms [8.0..47] (Go's sync.Mutex, which barges:
 * 21.5; Tokio: 77). Go avoids convoys by barging (its normal mode); we
 * keep FIFO for queued waiters and avoid queueing when the wait is short.
 * A FRESH leaf that finds the lock taken:
 *   C1. spins (PAUSE, exponential backoff to BACKOFF_MAX) while the lock
 *       is held by a task that is being polled right now on another
 *       worker (`holder` names it; its slot's RUNNING bit says so) and
 *       nobody waits, up to SPIN_NS: such a holder lets go within its
 *       poll unless it awaits while holding;
 *   C2. yields (re-queued behind its worker's other tasks, not as a
 *       waiter) while the lock was just handed to a waiter (HANDED) or is
 *       held by a running holder with waiters queued: the lock will be
 *       free again in a moment, and queueing then would extend a convoy
 *       that would otherwise drain; at most MAX_YIELDS times;
 *   C3. queues otherwise: the holder is not running (it awaits while
 *       holding, or is still in a run queue), the spin or yields ran out,
 *       or the runtime has one worker (a holder task cannot run while we
 *       spin on its only worker).
 * Spinning and yielding never take the lock from a queued waiter: a
 * contender only ever takes a free permit, and a permit is never free
 * while someone is queued. The poll count of a waiter is bounded
 * (MAX_YIELDS + a few), and a task holding the lock across an await
 * makes the others queue at once (C3), so they are not polled again
 * until the lock is theirs.
 * `holder` is a hint: written after each acquisition by a task (the
 * fast path's one extra store, on the state's cache line), 0 when a
 * thread outside any task holds the lock. A stale view only makes a
 * contender spin, yield or queue when another choice was better.
 * Rejected: Go's barging (breaks FIFO: try_lock would succeed while tasks
 * wait); unbounded spinning (a holder that awaits while holding would
 * burn a worker); few yields in C2 (with 16, tasks that ran out joined
 * the queue faster than it drained and W7 took 0.4-1.8 s); parking
 * contenders on a second list until the queue drains (more state for
 * what C2 does). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "async_sync.h"

#define SPIN_NS 100000 /* C1: longest spin, ns */
#define BACKOFF_MAX 32 /* C1: most PAUSEs between two looks (~1 us here) */
#define MAX_YIELDS 1024 /* C2: yields per lock leaf */

struct tml_mutex {
    mt_sem sem;        /* one permit: unlocked */
    mt_atomic holder;  /* token of the task that locked it last; 0: a thread */
    mt_atomic refs;
    void (*value_drop)(void *);
    max_align_t value[]; /* the guarded value */
};

tml_mutex *tml_mutex_new(size_t value_size, const void *init, void (*value_drop)(void *)) {
    void *p = NULL;
    if (value_size > SIZE_MAX - sizeof(tml_mutex) ||
        !(p = pal_aligned_alloc(MT_CACHE_LINE, sizeof(tml_mutex) + value_size)))
        tml_panic_at(NULL, 0, 0, "out of memory");
    tml_mutex *m = p;
    mt_sem_init(&m->sem, 1);
    mt_atomic_store(&m->holder, 0); /* relaxed, both: before sharing */
    mt_atomic_store(&m->refs, 1);
    m->value_drop = value_drop;
    if (init)
        memcpy(m->value, init, value_size);
    else
        memset(m->value, 0, value_size);
    return m;
}

/* The caller holds a reference: any ordering would do. */
void tml_mutex_retain(tml_mutex *m) { mt_atomic_fetch_add(&m->refs, 1); }

void tml_mutex_release(tml_mutex *m) {
    /* acq_rel: every owner's use of the value happens before the drop */
    if (mt_atomic_fetch_add(&m->refs, -1) != 1)
        return;
    MT_ASSERT(!m->sem.waiters.head); /* waiting leaves' owners hold references */
    if (m->value_drop)
        m->value_drop(m->value);
    pal_aligned_free(m);
}

void *tml_mutex_value(tml_mutex *m) {
    MT_ASSERT(m);
    return m->value;
}

/* The uncontended lock: the only state it succeeds from.
 * acquire: pairs with the unlock's release CAS. */
static bool lock_fast(tml_mutex *m) {
    return mt_atomic_cas(&m->sem.state, MT_SEM_PERMIT, 0) == MT_SEM_PERMIT;
}

/* Records who holds the lock now (the hint C1-C3 read). */
static void set_holder(tml_mutex *m, tml_waker token) {
    mt_atomic_store(&m->holder, token); /* relaxed: a hint */
}

/* Whether the task named by `t` is being polled now. A thread (0) or a
 * task of another runtime counts as not running: we cannot tell, and
 * queueing is the safe choice. */
static bool holder_running(mt_runtime *rt, tml_waker t) {
    unsigned index = mt_token_worker(t) - rt->id_base; /* unsigned: wraps when below */
    if (t == 0 || index >= rt->nworkers)
        return false;
    mt_slot *slot = mt_slab_slot(&rt->workers[index].slab, mt_token_slot(t));
    if (!slot)
        return false;
    uint64_t w = mt_atomic_load(&slot->word); /* relaxed: a hint */
    return mt_task_gen(w) == mt_token_gen(t) && (mt_task_state(w) & MT_TASK_RUNNING);
}

enum { GOT, YIELD, QUEUE };

/* C1-C3 for a FRESH (or YIELDED) leaf whose fast path failed. */
static int contend(tml_mutex *m, int32_t phase, tml_cx *cx) {
    mt_runtime *rt = ((mt_worker *)cx->worker)->rt;
    int32_t yields = phase == LEAF_FRESH ? 0 : phase - LEAF_YIELDED + 1;
    int64_t deadline = 0;
    unsigned backoff = 1, misses = 0;
    for (;;) {
        uint64_t s = mt_atomic_load(&m->sem.state); /* relaxed: a hint; CASes decide */
        if (mt_sem_permits(s) > 0) {
            if (mt_sem_try_take(&m->sem))
                return GOT;
            continue;
        }
        bool running = holder_running(rt, mt_atomic_load(&m->holder)); /* relaxed: a hint */
        if ((s & MT_SEM_HANDED) || (s != 0 && running)) /* C2 */
            return yields < MAX_YIELDS ? YIELD : QUEUE;
        if (!running && ++misses >= 3) /* C3; a fresh holder may not have written `holder` yet */
            return QUEUE;
        if (running && rt->nworkers == 1) /* the holder is us (a deadlock in the making) */
            return QUEUE;
        if (deadline == 0)
            deadline = tml_now_ns() + SPIN_NS;
        else if (backoff == BACKOFF_MAX && tml_now_ns() > deadline)
            return QUEUE;
        for (unsigned n = backoff; n; n--) /* C1 */
            mt_cpu_relax();
        if (backoff < BACKOFF_MAX)
            backoff *= 2;
    }
}

void tml_lock_init(tml_lock_fut *f, tml_mutex *m) {
    MT_ASSERT(f && m);
    f->m = m;
    mt_sem_wait_init(&f->wait);
}

tml_poll tml_lock_poll(tml_lock_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->m && cx && f->wait.phase != LEAF_DONE);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    int how = QUEUE;
    if (f->wait.phase != LEAF_QUEUED && (lock_fast(f->m) || (how = contend(f->m, f->wait.phase, cx)) == GOT)) {
        f->wait.status = MT_GRANT_PERMIT; /* not queued: nobody else writes it */
    } else if (how == YIELD) {
        f->wait.phase = f->wait.phase == LEAF_FRESH ? LEAF_YIELDED : f->wait.phase + 1;
        mt_worker_self_wake(cx);
        return TML_PENDING;
    } else if (!mt_sem_step(&f->m->sem, &f->wait, NULL, 0, cx->waker)) {
        return mt_task_waits(cx, MT_WAIT_LOCK);
    }
    set_holder(f->m, cx->waker);
    f->wait.phase = LEAF_DONE;
    return mt_budget_ready(cx);
}

void tml_lock_drop(tml_lock_fut *f) {
    MT_ASSERT(f && f->m);
    mt_sem_drop(&f->m->sem, &f->wait, 1); /* a handed lock: unlocked again */
}

/* The calling task's token, or 0 outside any task. */
static tml_waker current_task(void) {
    mt_worker *w = mt_worker_current();
    return w && w->running ? w->running->token : 0;
}

bool tml_mutex_try_lock(tml_mutex *m) {
    MT_ASSERT(m);
    if (!lock_fast(m))
        return false;
    set_holder(m, current_task());
    return true;
}

bool tml_mutex_is_locked(tml_mutex *m) {
    MT_ASSERT(m);
    return mt_sem_permits(mt_atomic_load(&m->sem.state)) == 0; /* relaxed: a snapshot */
}

void tml_mutex_unlock(tml_mutex *m) {
    MT_ASSERT(m);
    /* release: our critical section happens before the next locker's */
    if (mt_atomic_cas(&m->sem.state, 0, MT_SEM_PERMIT) == 0)
        return;
    if (!mt_sem_give(&m->sem, 1)) /* QUEUED: hand-off (async_sem.c, G2) */
        tml_panic_at(NULL, 0, 0, "unlock of an unlocked mutex");
}

static tml_poll lock_leaf(void *leaf, tml_cx *cx) { return tml_lock_poll(leaf, cx); }
static void lock_leaf_drop(void *leaf) { tml_lock_drop(leaf); }

/* Panics when the shutdown deadline ends the wait: there is no lock to
 * return and no error to say so. */
void tml_mutex_lock_blocking(tml_mutex *m) {
    if (tml_mutex_try_lock(m))
        return;
    tml_lock_fut f;
    tml_lock_init(&f, m);
    if (!mt_block_on_leaf(lock_leaf, lock_leaf_drop, &f))
        mt_panic_err("mutex lock", -ECANCELED);
    set_holder(m, 0); /* this thread holds it, not the helper task */
}
