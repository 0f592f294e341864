/* mt_deque.c - a worker's local run queue: one owner, many thieves.
 *
 * Algorithm: Tokio's local queue (tokio/src/runtime/scheduler/
 * multi_thread/queue.rs), a bounded single-producer ring in the line of
 * Chase & Lev ("Dynamic circular work-stealing deque", SPAA 2005) with the
 * C11 orderings worked out by Lê, Pop, Cohen and Zappa Nardelli ("Correct
 * and efficient work-stealing for weak memory models", PPoPP 2013), but
 * FIFO for the owner and with thieves taking half in one batch
 * (Blumofe & Leiserson's randomized work stealing, JACM 1999, steals one).
 *
 * Layout: buf[MT_DEQUE_CAP] (a power of two); `tail` (written by the owner
 * only) and `head`, which packs two free-running uint32 indices,
 * steal << 32 | real. Position i lives in buf[i % CAP]. The queued tasks
 * are positions [real, tail); [steal, real) is a batch a thief has
 * claimed and is still copying out (steal == real: no steal in progress).
 * Invariants: tail - steal <= CAP (the owner never overwrites a position
 * a thief may still read); real - steal <= CAP / 2; only the owner moves
 * tail; head changes only by CAS.
 * Protocols (push, pop and len are inline in mt_internal.h):
 *   push (owner): read head (acquire), and if tail - steal < CAP write
 *     buf[tail] and publish tail + 1 (release; pairs with thieves'
 *     acquire of tail). Full: the caller moves half out (take_half).
 *   pop (owner): CAS head real -> real + 1 (and steal with it when no
 *     steal is in progress), then read buf[real]: FIFO, so a task that
 *     yields runs after everything queued before it; the LIFO slot
 *     (mt_worker.c) gives the cache locality of LIFO order where it pays.
 *   steal (thief, into its own empty-ish queue dst):
 *     1. read head; if steal != real another thief is busy: give up;
 *     2. read tail (acquire), n = ceil((tail - real) / 2);
 *     3. CAS head (steal, real) -> (steal, real + n): the batch is ours,
 *        and the owner cannot reuse its positions while steal lags;
 *     4. copy the n tasks into dst's ring (plain: see 3);
 *     5. CAS head (steal, r) -> (r, r) with the current real r (the owner
 *        may have popped meanwhile): release, so our reads of step 4
 *        happen before the owner's next writes to those positions;
 *     6. publish dst's tail (release) for all but the last task, which
 *        the thief runs at once.
 * The ring cells are plain memory: every read of a cell is ordered after
 * its write by tail's release/acquire, and every overwrite after the
 * previous read by head's CAS (step 5) and the owner's acquire of head.
 * Indices are 32 bits: an ABA on head would need 2^32 pops while a thief
 * sleeps between steps 1 and 3.
 * Rejected: owner-LIFO Chase-Lev (a yielding task pushed at the owner's
 * end would run again at once, starving the rest, which rt.h's yield and
 * budget contracts forbid); stealing one task at a time (a victim with a
 * long queue gets hit by every idle worker in turn); a mutex per queue. */
#include "mt_internal.h"

_Static_assert((MT_DEQUE_CAP & (MT_DEQUE_CAP - 1)) == 0 && MT_DEQUE_CAP >= 2,
               "MT_DEQUE_CAP must be a power of two, at least 2");

#define MASK (MT_DEQUE_CAP - 1)

/* Initialises an empty queue. Threads: before it is shared. */
void mt_deque_init(mt_deque *d) {
    mt_atomic_store(&d->head, 0); /* relaxed, both: not shared yet */
    mt_atomic_store(&d->tail, 0);
}

/* Appends ts[0..n) in order. Threads: the owner only. The caller knows
 * there is room: tail - steal + n <= CAP. */
void mt_deque_push_batch(mt_deque *d, tml_join *const *ts, uint32_t n) {
    uint32_t tail = mt_deque_own_tail(d);
    MT_ASSERT(tail - mt_deque_steal_of(mt_atomic_load_acquire(&d->head)) + n <= MT_DEQUE_CAP);
    for (uint32_t i = 0; i < n; i++)
        d->buf[(tail + i) & MASK] = ts[i];
    mt_atomic_store_release(&d->tail, tail + n); /* as in push */
}

/* The ring is full: takes its older half (CAP / 2 tasks) out into out[]
 * for the caller to move to the global queue. Returns how many, or 0
 * when a thief is busy or took tasks meanwhile: then there is, or soon
 * will be, room. Threads: the owner only. */
uint32_t mt_deque_take_half(mt_deque *d, tml_join **out) {
    uint32_t tail = mt_deque_own_tail(d);
    uint64_t head = mt_atomic_load_acquire(&d->head); /* as in push */
    uint32_t real = mt_deque_real_of(head), n = MT_DEQUE_CAP / 2;
    if (mt_deque_steal_of(head) != real || tail - real < MT_DEQUE_CAP)
        return 0;
    /* claims [real, real + n) as a steal would, in one step */
    if (mt_atomic_cas(&d->head, head, mt_deque_head(real + n, real + n)) != head)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        out[i] = d->buf[(real + i) & MASK];
    return n;
}

/* Steals about half of src's tasks (rounded up) into dst, following
 * steps 1-6 of the header. Returns how many were taken: the last one in
 * *out (not queued in dst), the others appended to dst; 0 when src is
 * empty, another thief is busy on it, or dst has no room for half a ring.
 * Threads: the owner of dst; src's owner and other thieves concurrently. */
uint32_t mt_deque_steal(mt_deque *src, mt_deque *dst, tml_join **out) {
    MT_ASSERT(src != dst);
    uint32_t dst_tail = mt_deque_own_tail(dst);
    if (dst_tail - mt_deque_steal_of(mt_atomic_load_acquire(&dst->head)) > MT_DEQUE_CAP / 2)
        return 0;
    uint64_t prev = mt_atomic_load_acquire(&src->head); /* 1; pairs with the CASes on head */
    uint64_t next;
    uint32_t n;
    for (;;) {
        uint32_t real = mt_deque_real_of(prev);
        if (mt_deque_steal_of(prev) != real)
            return 0;
        /* 2; acquire: pairs with the owner's publication of the cells */
        n = (uint32_t)mt_atomic_load_acquire(&src->tail) - real;
        n -= n / 2;
        if (n == 0)
            return 0;
        next = mt_deque_head(real, real + n);
        uint64_t seen = mt_atomic_cas(&src->head, prev, next); /* 3 */
        if (seen == prev)
            break;
        prev = seen;
    }
    uint32_t first = mt_deque_real_of(prev);
    for (uint32_t i = 0; i < n; i++) /* 4 */
        dst->buf[(dst_tail + i) & MASK] = src->buf[(first + i) & MASK];
    for (;;) { /* 5: release our claim, keeping the owner's pops */
        uint64_t seen = mt_atomic_cas(&src->head, next, mt_deque_head(mt_deque_real_of(next), mt_deque_real_of(next)));
        if (seen == next)
            break;
        MT_ASSERT(mt_deque_steal_of(seen) == first); /* only the owner's pops moved it */
        next = seen;
    }
    *out = dst->buf[(dst_tail + n - 1) & MASK];
    if (n > 1)
        mt_atomic_store_release(&dst->tail, dst_tail + n - 1); /* 6; as in push */
    return n;
}
