/* mt_queue.c - run queues of task tokens: the global (injector) queue and
 * each worker's local queue.
 *
 * mt_queue, the global queue: an unbounded FIFO ring under one mutex, used
 * by spawns and wakes from outside a worker, by workers handing work to
 * idle peers, and by local-queue overflow. Any thread pushes and pops.
 * Invariants: 0 <= len <= cap; the tokens are buf[(head + i) % cap] for
 * i < len; `size` equals len after every unlock, so try_pop skips the
 * lock when the queue looks empty (a stale answer only delays a pop: the
 * parking re-check, mt_queue_is_empty, takes the lock).
 * The lock-free MPMC ring (Vyukov) of the queue issue replaces the body and
 * keeps this interface.
 *
 * mt_deque, a worker's local queue: a fixed ring only its owner touches,
 * so no lock and no atomics. FIFO, so a busy worker stays fair among its
 * own tasks. Invariants: head and tail are free-running uint32; tail -
 * head <= MT_DEQUE_CAP (a power of two); slot i lives at buf[i % CAP].
 * The work-stealing issue turns it into a Chase-Lev deque (mt_deque.c)
 * that thieves may steal half of. */
#include <errno.h>
#include <stdlib.h>

#include "mt_internal.h"

_Static_assert((MT_DEQUE_CAP & (MT_DEQUE_CAP - 1)) == 0, "MT_DEQUE_CAP must be a power of two");

/* Initialises an empty queue with room for `initial_cap` (> 0) tokens
 * before its first growth. Returns 0 or -ENOMEM. */
int mt_queue_init(mt_queue *q, size_t initial_cap) {
    MT_ASSERT(initial_cap > 0);
    q->buf = malloc(initial_cap * sizeof *q->buf);
    if (!q->buf)
        return -ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    q->cap = initial_cap;
    q->head = q->len = 0;
    mt_atomic_store(&q->size, 0); /* before the queue is shared */
    return 0;
}

/* Frees the queue; tokens still queued are dropped (they own nothing).
 * Threads: no other thread may use `q` any more. */
void mt_queue_fini(mt_queue *q) {
    pthread_mutex_destroy(&q->lock);
    free(q->buf);
}

/* Doubles the ring, unrolling it so head becomes 0. Lock held. */
static int grow(mt_queue *q) {
    tml_waker *buf = malloc(2 * q->cap * sizeof *buf);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < q->len; i++)
        buf[i] = q->buf[(q->head + i) % q->cap];
    free(q->buf);
    q->buf = buf;
    q->cap *= 2;
    q->head = 0;
    return 0;
}

/* Appends `t`. Threads: any. Returns 0, or -ENOMEM when the ring could
 * not grow (the token was not queued). */
int mt_queue_push(mt_queue *q, tml_waker t) {
    int err = 0;
    pthread_mutex_lock(&q->lock);
    if (q->len == q->cap)
        err = grow(q);
    if (!err) {
        q->buf[(q->head + q->len) % q->cap] = t;
        q->len++;
        mt_atomic_store(&q->size, q->len); /* relaxed: a hint; the lock orders the data */
    }
    pthread_mutex_unlock(&q->lock);
    return err;
}

/* Removes the oldest token into *out. Returns false when the queue looks
 * empty; an empty-looking queue is not locked, so a push racing with this
 * call may be missed until the next call. Threads: any. */
bool mt_queue_try_pop(mt_queue *q, tml_waker *out) {
    if (mt_atomic_load(&q->size) == 0) /* relaxed: a hint, see above */
        return false;
    bool found = false;
    pthread_mutex_lock(&q->lock);
    if (q->len > 0) {
        *out = q->buf[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        mt_atomic_store(&q->size, q->len); /* relaxed: see push */
        found = true;
    }
    pthread_mutex_unlock(&q->lock);
    return found;
}

/* Whether no token is queued, read under the lock, so that it is ordered
 * against every push (the parking protocol's re-check, mt_park.c).
 * Threads: any. */
bool mt_queue_is_empty(mt_queue *q) {
    pthread_mutex_lock(&q->lock);
    bool empty = q->len == 0;
    pthread_mutex_unlock(&q->lock);
    return empty;
}

/* Initialises an empty local queue. */
void mt_deque_init(mt_deque *d) {
    d->head = d->tail = 0;
}

/* Appends `t`; returns false (nothing queued) when the ring is full.
 * Threads: the owning worker only. */
bool mt_deque_push(mt_deque *d, tml_waker t) {
    if (d->tail - d->head == MT_DEQUE_CAP)
        return false;
    d->buf[d->tail++ % MT_DEQUE_CAP] = t;
    return true;
}

/* Removes the oldest token into *out; false when empty.
 * Threads: the owning worker only. */
bool mt_deque_pop(mt_deque *d, tml_waker *out) {
    if (d->head == d->tail)
        return false;
    *out = d->buf[d->head++ % MT_DEQUE_CAP];
    return true;
}
