/* mt_queue.c - the global (injector) run queue: a lock-free bounded MPMC
 * ring of task pointers, spilling to an unbounded overflow list.
 *
 * Users: spawns and wakes from threads that are not workers of the
 * runtime, local-queue overflow (half a local queue in one batch), and a
 * worker about to block handing its queue over. Workers take from it
 * every MT_FAIR_TICKS polls and when their own queue runs dry, half of it
 * at a time (mt_queue_steal); the current-thread runtime parks in
 * mt_queue_pop.
 *
 * Ring: Dmitry Vyukov's bounded MPMC queue (1024cores.net, "Bounded MPMC
 * queue", 2010). cap = 2^k cells, each with a sequence number `seq`; head
 * and tail are free-running 64-bit positions (they never wrap in
 * practice, so no ABA); position p lives in cell p & mask. Invariants:
 *   1. cell c is free for the push of position p  iff  c.seq == p;
 *   2. it holds the task of position p             iff  c.seq == p + 1;
 *   3. the pop of position p sets c.seq = p + cap: free for the next lap.
 * Push: read tail = p; if the cell is free (1), claim p with a CAS on
 * tail, write the task, publish with a release store seq = p + 1; seq < p
 * means the ring is full (the cell still holds last lap's task). Pop is
 * symmetric on head with (2) and (3). A batch claims k consecutive ready
 * cells with one CAS: a cell seen ready stays ready until its position is
 * claimed, and only the CAS winner claims it.
 * Not linearizable in one respect, as Vyukov notes: a pusher preempted
 * between its CAS and its publication makes pops report "empty" for the
 * positions behind it until it resumes. Nothing waits on that forever:
 * every pusher signals waiters after publishing (below), and the
 * scheduler's pushers notify a worker after publishing (mt_worker.c).
 *
 * Overflow: when the ring is full, a push spills to a FIFO ring under
 * `lock` that grows by doubling: no task is ever dropped. While the
 * overflow holds tasks, pushes go there too, so spilled tasks are not
 * overtaken forever by a ring that keeps refilling; pops take from the
 * ring, then from the overflow. `spilled` mirrors over_len for lock-free
 * readers (a stale read only costs a lock or some FIFO order). An
 * overflow that grew past its first size is freed once drained.
 *
 * Blocking pop. A popper that finds the queue empty announces itself with
 * an RMW on `waiters`, re-checks under `lock`, and waits on `nonempty`.
 * Every push publishes, then reads `waiters` with an RMW (fetch_add 0).
 * Two RMWs on one word are ordered by its modification order, and each
 * reads the value just before it: either the pusher's RMW sees the waiter
 * (and broadcasts under the lock, which the waiter holds from its
 * re-check until its wait), or the waiter's RMW reads-from the pusher's
 * (acq_rel), so the publication happens before its re-check. The pushers'
 * RMW is one per batch, on a line that is otherwise read-only.
 * Rejected: one mutex around a deque (the previous version: every
 * foreign wake and every overflow serialised on it); Michael-Scott's
 * linked queue (a node allocation per push); an unbounded lock-free list
 * (Tokio's injector is a mutex-protected list; a bounded ring with a rare
 * locked spill keeps the common path lock-free and allocation-free). */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

#define FIRST_OVERFLOW_CAP 256

/* Initialises an empty queue whose ring holds `capacity` tasks (a power
 * of two) before it spills. Returns 0, or -ENOMEM / -errno. */
int mt_queue_init(mt_queue *q, size_t capacity) {
    MT_ASSERT(capacity > 0 && (capacity & (capacity - 1)) == 0);
    int err = pal_cond_init(&q->nonempty);
    if (err)
        return err;
    q->cells = malloc(capacity * sizeof *q->cells);
    if (!q->cells) {
        pal_cond_fini(&q->nonempty);
        return -ENOMEM;
    }
    for (size_t i = 0; i < capacity; i++)
        mt_atomic_store(&q->cells[i].seq, i); /* relaxed, all: before the queue is shared */
    q->mask = capacity - 1;
    mt_atomic_store(&q->head, 0);
    mt_atomic_store(&q->tail, 0);
    mt_atomic_store(&q->spilled, 0);
    mt_atomic_store(&q->waiters, 0);
    pal_mutex_init(&q->lock);
    q->over = NULL;
    q->over_cap = q->over_head = q->over_len = 0;
    return 0;
}

/* Frees the queue; tasks still queued are forgotten (the caller owns
 * them). Threads: no other thread may use `q` any more. */
void mt_queue_fini(mt_queue *q) {
    pal_mutex_fini(&q->lock);
    pal_cond_fini(&q->nonempty);
    free(q->over);
    free(q->cells);
}

/* Claims up to `max` consecutive ready positions at `end` (tail for
 * pushes, ready = 0; head for pops, ready = 1: invariants 1 and 2).
 * Returns how many, the first in *first; 0 when the ring is full (push)
 * or empty (pop). Threads: any. */
static size_t claim(mt_queue *q, mt_atomic *end, uint64_t ready, size_t max, uint64_t *first) {
    uint64_t pos = mt_atomic_load(end); /* relaxed: the CAS validates it */
    for (;;) {
        /* acquire, each: pairs with the release stores of publish() and consume() */
        uint64_t seq = mt_atomic_load_acquire(&q->cells[pos & q->mask].seq);
        int64_t dif = (int64_t)(seq - (pos + ready));
        if (dif < 0)
            return 0; /* full (push) or empty (pop) */
        if (dif > 0) {
            pos = mt_atomic_load(end); /* stale: another thread moved `end`; relaxed as above */
            continue;
        }
        size_t k = 1;
        while (k < max && mt_atomic_load_acquire(&q->cells[(pos + k) & q->mask].seq) == pos + k + ready)
            k++;
        uint64_t seen = mt_atomic_cas(end, pos, pos + k);
        if (seen == pos) {
            *first = pos;
            return k;
        }
        pos = seen;
    }
}

static void publish(mt_queue *q, uint64_t pos, tml_join *t) {
    mt_queue_cell *c = &q->cells[pos & q->mask];
    c->task = t;
    mt_atomic_store_release(&c->seq, pos + 1); /* pairs with the acquire in claim */
}

static tml_join *consume(mt_queue *q, uint64_t pos) {
    mt_queue_cell *c = &q->cells[pos & q->mask];
    tml_join *t = c->task;
    /* release: our read of `task` happens before the next lap's write */
    mt_atomic_store_release(&c->seq, pos + q->mask + 1);
    return t;
}

/* Appends ts[0..n) to the overflow FIFO. Lock held. Returns 0 or -ENOMEM
 * (nothing appended). */
static int spill_locked(mt_queue *q, tml_join *const *ts, size_t n) {
    if (q->over_len + n > q->over_cap) {
        size_t cap = q->over_cap ? q->over_cap : FIRST_OVERFLOW_CAP;
        while (cap < q->over_len + n)
            cap *= 2;
        tml_join **over = malloc(cap * sizeof *over);
        if (!over)
            return -ENOMEM;
        for (size_t i = 0; i < q->over_len; i++) /* unroll: head becomes 0 */
            over[i] = q->over[(q->over_head + i) % q->over_cap];
        free(q->over);
        q->over = over;
        q->over_cap = cap;
        q->over_head = 0;
    }
    for (size_t i = 0; i < n; i++)
        q->over[(q->over_head + q->over_len + i) % q->over_cap] = ts[i];
    q->over_len += n;
    mt_atomic_store(&q->spilled, q->over_len); /* relaxed: a hint; the lock orders the data */
    return 0;
}

/* Takes up to `max` tasks from the front of the overflow. Lock held. */
static size_t unspill_locked(mt_queue *q, tml_join **out, size_t max) {
    size_t n = q->over_len < max ? q->over_len : max;
    for (size_t i = 0; i < n; i++)
        out[i] = q->over[(q->over_head + i) % q->over_cap];
    if (n) {
        q->over_head = (q->over_head + n) % q->over_cap;
        q->over_len -= n;
        mt_atomic_store(&q->spilled, q->over_len); /* relaxed: as in spill_locked */
    }
    if (q->over_len == 0 && q->over_cap > FIRST_OVERFLOW_CAP) { /* a burst is over: give it back */
        free(q->over);
        q->over = NULL;
        q->over_cap = q->over_head = 0;
    }
    return n;
}

/* Wakes the threads blocked in mt_queue_pop, if any (see "Blocking pop").
 * Call after publishing. */
static void signal_waiters(mt_queue *q) {
    if (mt_atomic_fetch_add(&q->waiters, 0) == 0) /* RMW: pairs with the waiter's */
        return;
    pal_mutex_lock(&q->lock);
    pal_cond_broadcast(&q->nonempty);
    pal_mutex_unlock(&q->lock);
}

/* Pushes ts[0..n) into the ring as far as it has room; returns how many. */
static size_t ring_push(mt_queue *q, tml_join *const *ts, size_t n) {
    size_t done = 0;
    while (done < n) {
        uint64_t pos;
        size_t k = claim(q, &q->tail, 0, n - done, &pos);
        if (k == 0)
            break;
        for (size_t i = 0; i < k; i++)
            publish(q, pos + i, ts[done + i]);
        done += k;
    }
    return done;
}

/* Appends `t` to the ring only. Returns false, queueing nothing, when the
 * ring is full (the caller decides where the task goes instead); does not
 * signal blocked poppers. Threads: any; lock-free. */
bool mt_queue_try_push(mt_queue *q, tml_join *t) {
    return ring_push(q, &t, 1) == 1;
}

/* Appends ts[0..n) in order: into the ring, the rest (or all, while the
 * overflow is in use) into the overflow; then wakes blocked poppers.
 * Threads: any. Returns 0, or -ENOMEM when the overflow could not grow
 * (the tasks not queued are the last ones). */
int mt_queue_push_batch(mt_queue *q, tml_join *const *ts, size_t n) {
    size_t done = 0;
    int err = 0;
    if (mt_atomic_load(&q->spilled) == 0) /* relaxed: a hint, see "Overflow" */
        done = ring_push(q, ts, n);
    if (done < n) {
        pal_mutex_lock(&q->lock);
        err = spill_locked(q, ts + done, n - done);
        pal_mutex_unlock(&q->lock);
    }
    signal_waiters(q);
    return err;
}

/* Appends `t` (never dropped: spills when the ring is full) and wakes
 * blocked poppers. Threads: any. Returns 0 or -ENOMEM (not queued). */
int mt_queue_push(mt_queue *q, tml_join *t) {
    return mt_queue_push_batch(q, &t, 1);
}

/* Takes up to `max` tasks: up to half of the ring's (rounded up), else up
 * to half of the overflow's. `locked`: the caller holds q->lock. */
static size_t take(mt_queue *q, tml_join **out, size_t max, bool locked) {
    /* relaxed: an estimate; claim() validates every position it takes */
    uint64_t half = (mt_atomic_load(&q->tail) - mt_atomic_load(&q->head) + 1) / 2;
    size_t want = half == 0 ? 1 : half < max ? (size_t)half : max;
    uint64_t pos;
    size_t n = claim(q, &q->head, 1, want, &pos);
    for (size_t i = 0; i < n; i++)
        out[i] = consume(q, pos + i);
    if (n > 0 || mt_atomic_load(&q->spilled) == 0) /* relaxed: a hint */
        return n;
    if (!locked)
        pal_mutex_lock(&q->lock);
    half = (q->over_len + 1) / 2;
    n = unspill_locked(q, out, half < max ? (size_t)half : max);
    if (!locked)
        pal_mutex_unlock(&q->lock);
    return n;
}

/* Takes up to `max` (> 0) of the oldest tasks in one batch, at most about
 * half of those queued, into out[]. Returns how many; 0 when the queue
 * looks empty. Threads: any; lock-free unless the overflow is in use. */
size_t mt_queue_steal(mt_queue *q, tml_join **out, size_t max) {
    MT_ASSERT(max > 0);
    return take(q, out, max, false);
}

/* Takes the oldest task into *out; false when the queue looks empty.
 * Threads: any. */
bool mt_queue_try_pop(mt_queue *q, tml_join **out) {
    return take(q, out, 1, false) == 1;
}

/* Takes the oldest task into *out, blocking the calling thread until one
 * is pushed or the monotonic clock reaches `deadline_ns` (MT_NO_DEADLINE:
 * no limit). Returns false on timeout. Threads: any; several may wait. */
bool mt_queue_pop(mt_queue *q, tml_join **out, int64_t deadline_ns) {
    MT_ASSERT(deadline_ns >= 0);
    if (take(q, out, 1, false) == 1)
        return true;
    int err = 0;
    bool found;
    mt_atomic_fetch_add(&q->waiters, 1); /* RMW: pairs with signal_waiters */
    pal_mutex_lock(&q->lock);
    while (!(found = take(q, out, 1, true) == 1) && err != -ETIMEDOUT)
        err = pal_cond_wait_until(&q->nonempty, &q->lock, deadline_ns);
    pal_mutex_unlock(&q->lock);
    mt_atomic_fetch_add(&q->waiters, (uint64_t)-1);
    return found;
}

/* Whether no task is queued or being pushed. Exact for the parking
 * protocol's re-check (mt_park.c), which calls it after an RMW that
 * orders it after every push it must see; elsewhere a hint. Threads: any. */
bool mt_queue_is_empty(mt_queue *q) {
    /* relaxed, all three: see above; a claimed but unpublished position
     * counts as queued, so a re-check never misses a push in flight */
    return mt_atomic_load(&q->tail) == mt_atomic_load(&q->head) && mt_atomic_load(&q->spilled) == 0;
}
