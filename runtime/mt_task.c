/* mt_task.c - task slabs, generation tokens, the task state machine, and
 * join handles.
 *
 * Slab. Each worker owns one slab; a task occupies one slot of the slab
 * of the worker that spawned it, and its token names (worker, slot,
 * generation). Slots (16 bytes) live in chunks that never move: chunk 0
 * holds 64 slots, chunk k > 0 holds 2^(5+k), so 19 chunks cover the 2^24
 * slots a token can name and the slab grows without copying or a big
 * up-front table. Chunk pointers are published once (release) and read
 * without a lock (acquire) by wakers.
 * Free slots, three ways (as mimalloc's and snmalloc's local/remote free
 * lists; Tokio's slab is per-page locked):
 *   1. `local_free`: a list only the owning worker's thread touches, so
 *      a spawn and a completion on the owner cost no atomic at all;
 *   2. `remote_free`: a Treiber stack that other threads push slots onto
 *      when a task of this slab completes elsewhere (one CAS). The word
 *      packs a tag with the head index: the tag grows on every change, so
 *      a pop by CAS (spawns from outside, step 3) cannot suffer ABA. The
 *      owner takes the whole stack with one CAS when its list runs dry;
 *   3. never-used slots, [fresh, ...), under `lock`, which also guards
 *      chunk growth: the owner takes them 64 at a time; a thread that is
 *      not a worker (a foreign spawn, rare) takes a remote slot or one
 *      fresh slot.
 * A free slot's `link` holds the next free slot; an in-use slot's holds
 * the task's block.
 * Sources: the geometric pages of Tokio's slab (tokio/src/util/slab.rs);
 * the state word with a notified bit, re-polled instead of polled twice,
 * from Tokio's task state (tokio/src/runtime/task/state.rs).
 *
 * State word. Each slot has one 64-bit atomic word: generation << 32 |
 * state bits (MT_TASK_*). The generation is bumped when the slot is freed,
 * so waking a finished task's token is a no-op even after the slot was
 * reused, and checking the generation and marking the task notified is a
 * single CAS. Transitions:
 *   spawn:        free (gen g, COMPLETE)  -> g | SCHEDULED    allocator
 *   wake:         g | IDLE                -> g | SCHEDULED    + queue push
 *                 g | RUNNING             -> g | RUNNING|NOTIFIED
 *                 g | SCHEDULED or NOTIFIED: unchanged, but still a CAS
 *   poll starts:  g | SCHEDULED           -> g | RUNNING      the poller
 *   poll Pending: g | RUNNING             -> g | IDLE
 *                 g | RUNNING|NOTIFIED    -> g | SCHEDULED    + re-queue
 *                 (also when the task woke itself: mt_worker.c)
 *   poll Ready:   g | RUNNING[|NOTIFIED]  -> g+1 | COMPLETE   slot freed
 * Invariants: a task is in at most one run queue, and only while it is
 * SCHEDULED; only the worker that popped it moves it out of SCHEDULED,
 * so a task is never polled on two workers at once. A wake whose
 * generation differs, or that finds the task COMPLETE, changes nothing;
 * never-used slots hold the slab's generation floor and COMPLETE, so a
 * bogus token is a no-op too.
 * Why a wake that changes nothing still does its CAS (an RMW), and why
 * "poll starts" is a CAS: a waker makes progress possible (stores a
 * condition), then wakes; a poller marks the task RUNNING, then reads the
 * condition. That is the store->load pattern; with both sides doing an
 * RMW on the state word, its modification order decides: either the
 * waker's RMW comes first and the poll's CAS reads-from it (acq_rel), so
 * the poll sees the condition, or the waker's RMW reads RUNNING and marks
 * the task NOTIFIED. A plain load in the waker could read a stale
 * SCHEDULED and lose the wake when the condition is not under a lock.
 *
 * Join block (struct tml_join). One heap allocation per task: the join
 * state followed by the frame copy. Reference counted: the task holds one
 * reference until it completes, each handle one. `flags` packs a spin
 * lock bit (guarding `waiters` and CLAIMED) with DONE and CLAIMED: a
 * pthread mutex would add 40 bytes to every task, and the lock is held
 * for a few instructions by at most the completer and the joiners.
 * Completion sets DONE, wakes every awaiting task and unparks a block_on
 * caller. The result stays in the frame at vt->result_offset until one
 * taker moves it out (CLAIMED); later takers get TML_JOIN_ALREADY_JOINED.
 * Whoever drops the last reference drops an unclaimed result
 * (vt->result_drop) and frees the block.
 * Rejected: a lock-free waiter stack (cannot unlink a cancelled waiter,
 * which the cancellation issue needs); a join block separate from the
 * frame (two allocations per spawn). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "mt_internal.h"

#define STATE_MASK 0xffffffffu
#define NO_SLOT MT_MAX_SLOTS
#define FRESH_BATCH 64 /* never-used slots the owner takes per lock */
#define SPINS_BEFORE_YIELD 64

enum { JOIN_LOCKED = 1, JOIN_DONE = 2, JOIN_CLAIMED = 4 };

static uint64_t word(uint32_t gen, uint32_t state) { return (uint64_t)gen << 32 | state; }
static uint32_t word_gen(uint64_t w) { return (uint32_t)(w >> 32); }
static uint32_t word_state(uint64_t w) { return (uint32_t)w & STATE_MASK; }

/* Chunk k's first slot and size. */
static uint32_t chunk_start(unsigned k) { return k == 0 ? 0 : 1u << (MT_SLAB_FIRST_SHIFT + k - 1); }
static uint32_t chunk_size(unsigned k) { return 1u << (MT_SLAB_FIRST_SHIFT + (k == 0 ? 0 : k - 1)); }

/* The chunk holding `slot`. */
static unsigned chunk_of(uint32_t slot) {
    if (slot < (1u << MT_SLAB_FIRST_SHIFT))
        return 0;
    unsigned top = 31u - (unsigned)__builtin_clz(slot); /* slot >= 64, so top >= 6 */
    return top - MT_SLAB_FIRST_SHIFT + 1;
}

/* Initialises an empty slab whose slots start at generation `gen_floor`
 * (mt_runtime.c passes the floor left by the slab that last used this
 * worker id). */
void mt_slab_init(mt_slab *s, uint32_t gen_floor) {
    for (unsigned k = 0; k < MT_SLAB_CHUNKS; k++)
        mt_atomic_store(&s->chunks[k], 0); /* relaxed, all: before the slab is shared */
    mt_atomic_store(&s->remote_free, NO_SLOT);
    pthread_mutex_init(&s->lock, NULL);
    s->local_free = NO_SLOT;
    s->fresh = 0;
    s->gen_floor = gen_floor;
}

/* Frees the slab. Returns the generation floor for the next slab with
 * this worker id: past every generation this slab handed out, so an old
 * token never matches a slot of the next runtime.
 * Threads: nobody else may use `s` (the registry entry is already gone). */
uint32_t mt_slab_fini(mt_slab *s) {
    uint32_t floor = s->gen_floor, ahead = 0;
    for (unsigned k = 0; k < MT_SLAB_CHUNKS; k++) {
        mt_slot *chunk = (mt_slot *)(uintptr_t)mt_atomic_load(&s->chunks[k]); /* relaxed: exclusive now */
        if (!chunk)
            break;
        for (uint32_t i = 0; i < chunk_size(k); i++) {
            uint32_t d = word_gen(mt_atomic_load(&chunk[i].word)) - floor; /* mod 2^32 */
            ahead = d > ahead ? d : ahead;
        }
        free(chunk);
    }
    pthread_mutex_destroy(&s->lock);
    return floor + ahead + 1;
}

/* Allocates chunk k (lock held) with every slot free at the floor. */
static int grow(mt_slab *s, unsigned k) {
    mt_slot *chunk = calloc(chunk_size(k), sizeof *chunk);
    if (!chunk)
        return -ENOMEM;
    for (uint32_t i = 0; i < chunk_size(k); i++)
        mt_atomic_store(&chunk[i].word, word(s->gen_floor, MT_TASK_COMPLETE)); /* published below */
    /* publishes the initialised slots; pairs with the acquire in mt_slab_slot */
    mt_atomic_store_release(&s->chunks[k], (uint64_t)(uintptr_t)chunk);
    return 0;
}

/* Hands out up to `max` never-used slots, linked through `link` and
 * ending in NO_SLOT, all inside one chunk. Returns the first, or NO_SLOT
 * with *err set (-ENOSPC: all 2^24 slots in use; -ENOMEM). */
static uint32_t take_fresh(mt_slab *s, uint32_t max, int *err) {
    uint32_t first = NO_SLOT;
    pthread_mutex_lock(&s->lock);
    uint32_t i = s->fresh;
    if (i == MT_MAX_SLOTS) {
        *err = -ENOSPC;
    } else if (i == chunk_start(chunk_of(i)) && (*err = grow(s, chunk_of(i))) < 0) {
        /* no chunk for slot i */
    } else {
        uint32_t end = chunk_start(chunk_of(i)) + chunk_size(chunk_of(i));
        uint32_t n = end - i < max ? end - i : max;
        for (uint32_t k = 0; k < n; k++) /* relaxed: nobody else sees them until we hand them out */
            mt_atomic_store(&mt_slab_slot(s, i + k)->link, k + 1 < n ? i + k + 1 : NO_SLOT);
        s->fresh = i + n;
        first = i;
    }
    pthread_mutex_unlock(&s->lock);
    return first;
}

/* Pops one slot off the remote stack, or NO_SLOT. Threads: any. */
static uint32_t pop_remote(mt_slab *s) {
    uint64_t old = mt_atomic_load_acquire(&s->remote_free); /* pairs with push_remote's CAS */
    for (;;) {
        uint32_t top = (uint32_t)old;
        if (top == NO_SLOT)
            return NO_SLOT;
        /* relaxed: written before the push's release CAS that we acquired;
         * a stale value only comes with a tag that makes our CAS fail */
        uint32_t next = (uint32_t)mt_atomic_load(&mt_slab_slot(s, top)->link);
        uint64_t seen = mt_atomic_cas(&s->remote_free, old, ((old >> 32) + 1) << 32 | next);
        if (seen == old)
            return top;
        old = seen;
    }
}

/* Takes the whole remote stack; returns its first slot or NO_SLOT. */
static uint32_t take_remote(mt_slab *s) {
    uint64_t old = mt_atomic_load_acquire(&s->remote_free); /* as in pop_remote */
    for (;;) {
        if ((uint32_t)old == NO_SLOT)
            return NO_SLOT;
        uint64_t seen = mt_atomic_cas(&s->remote_free, old, ((old >> 32) + 1) << 32 | NO_SLOT);
        if (seen == old)
            return (uint32_t)old;
        old = seen;
    }
}

/* Reserves a free slot; its word keeps saying "free" (COMPLETE) until
 * mt_slab_start, so wakers ignore it. *gen is the generation the task
 * will carry. `owner`: the caller is the slab's worker thread (the free
 * lists of the header, 1-3). Returns 0, -ENOSPC when all 2^24 slots are
 * in use, or -ENOMEM. */
int mt_slab_alloc(mt_slab *s, bool owner, uint32_t *slot, uint32_t *gen) {
    int err = 0;
    uint32_t i;
    if (!owner) {
        i = pop_remote(s);
        if (i == NO_SLOT)
            i = take_fresh(s, 1, &err);
    } else {
        if (s->local_free == NO_SLOT)
            s->local_free = take_remote(s);
        if (s->local_free == NO_SLOT)
            s->local_free = take_fresh(s, FRESH_BATCH, &err);
        i = s->local_free;
        if (i != NO_SLOT) /* relaxed: ours alone while on the local list */
            s->local_free = (uint32_t)mt_atomic_load(&mt_slab_slot(s, i)->link);
    }
    if (i == NO_SLOT)
        return err;
    uint64_t w = mt_atomic_load(&mt_slab_slot(s, i)->word); /* relaxed: the free list ordered the free */
    MT_ASSERT(word_state(w) == MT_TASK_COMPLETE);
    *slot = i;
    *gen = word_gen(w);
    return 0;
}

/* Puts `task` in the reserved `slot` and marks it SCHEDULED: the caller
 * must then queue the task exactly once. Threads: the reserver. */
void mt_slab_start(mt_slab *s, uint32_t slot, tml_join *task) {
    mt_slot *sl = mt_slab_slot(s, slot);
    uint64_t w = mt_atomic_load(&sl->word); /* relaxed: reserved, nobody else writes it */
    mt_atomic_store(&sl->link, (uint64_t)(uintptr_t)task); /* relaxed: published by the release below */
    /* wakers only CAS words holding their own generation, so a plain store
     * is safe; release orders `link` before any waker's successful CAS */
    mt_atomic_store_release(&sl->word, word(word_gen(w), MT_TASK_SCHEDULED));
}

/* The slot with index `slot`, or NULL when its chunk does not exist yet
 * (a bogus token). Threads: any; lock-free. */
mt_slot *mt_slab_slot(mt_slab *s, uint32_t slot) {
    MT_ASSERT(slot < MT_MAX_SLOTS);
    unsigned k = chunk_of(slot);
    /* pairs with the release in grow */
    mt_slot *chunk = (mt_slot *)(uintptr_t)mt_atomic_load_acquire(&s->chunks[k]);
    return chunk ? &chunk[slot - chunk_start(k)] : NULL;
}

/* Frees the slot of a task whose poll just returned Ready: bumps the
 * generation (every outstanding token goes stale at once) and links the
 * slot on the owner's list (`owner`: the caller is the slab's worker
 * thread) or the remote stack. Threads: the worker that ran the final
 * poll. */
void mt_slab_free(mt_slab *s, uint32_t slot, bool owner) {
    mt_slot *sl = mt_slab_slot(s, slot);
    uint64_t w = mt_atomic_load(&sl->word); /* relaxed: RUNNING, only we move it out */
    MT_ASSERT(word_state(w) & MT_TASK_RUNNING);
    /* plain store: a racing waker's CAS fails and re-reads a new generation;
     * release: our reads of the frame happen before the slot's reuse */
    mt_atomic_store_release(&sl->word, word(word_gen(w) + 1, MT_TASK_COMPLETE));
    if (owner) {
        mt_atomic_store(&sl->link, s->local_free); /* relaxed: owner-only list */
        s->local_free = slot;
        return;
    }
    uint64_t old = mt_atomic_load(&s->remote_free); /* relaxed: the CAS validates it */
    for (;;) {
        mt_atomic_store(&sl->link, (uint32_t)old); /* relaxed: published by the CAS (release) */
        uint64_t seen = mt_atomic_cas(&s->remote_free, old, ((old >> 32) + 1) << 32 | slot);
        if (seen == old)
            return;
        old = seen;
    }
}

/* Wake: if the slot still holds generation `gen`, applies the wake
 * transition of the header (always by CAS, see "Why a wake ... CAS").
 * Returns the task's block when the task went IDLE -> SCHEDULED: the
 * caller must queue it; NULL otherwise. Threads: any; lock-free. */
tml_join *mt_task_notify(mt_slot *s, uint32_t gen) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (;;) {
        uint32_t st = word_state(old);
        if (word_gen(old) != gen || (st & MT_TASK_COMPLETE))
            return NULL;
        uint32_t next = st == MT_TASK_IDLE ? MT_TASK_SCHEDULED
                        : st == MT_TASK_RUNNING ? st | MT_TASK_NOTIFIED : st;
        /* acq_rel: see the header; on IDLE -> SCHEDULED it also acquires
         * the slot's `link` and the last poll's writes */
        uint64_t seen = mt_atomic_cas(&s->word, old, word(gen, next));
        if (seen == old)
            return st == MT_TASK_IDLE ? (tml_join *)(uintptr_t)mt_atomic_load(&s->link) : NULL;
        old = seen;
    }
}

/* Poll starts: SCHEDULED -> RUNNING (a CAS: see the header).
 * Threads: the worker that dequeued the task. */
void mt_task_begin_poll(mt_slot *s) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the queue ordered us */
    for (;;) {
        MT_ASSERT(word_state(old) == MT_TASK_SCHEDULED);
        uint64_t seen = mt_atomic_cas(&s->word, old, word(word_gen(old), MT_TASK_RUNNING));
        if (seen == old) /* it fails only on a waker's same-value CAS */
            return;
        old = seen;
    }
}

/* Poll returned Pending: RUNNING -> IDLE, or -> SCHEDULED when a wake came
 * during the poll (NOTIFIED) or `self_woken` (the task woke itself, which
 * mt_worker.c records without touching the word); then returns true and
 * the caller must re-queue the task. Threads: the poller. */
bool mt_task_end_pending(mt_slot *s, bool self_woken) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (;;) {
        MT_ASSERT(word_state(old) & MT_TASK_RUNNING);
        bool again = self_woken || (word_state(old) & MT_TASK_NOTIFIED);
        /* release: this poll's frame writes happen before the next poll */
        uint64_t seen = mt_atomic_cas(&s->word, old, word(word_gen(old), again ? MT_TASK_SCHEDULED : MT_TASK_IDLE));
        if (seen == old)
            return again;
        old = seen;
    }
}

/* ------------------------------------------------------------ join */

/* Takes the block's spin lock (JOIN_LOCKED). Held for a few instructions,
 * so spin; yield the CPU if the holder was preempted. */
static void join_lock(tml_join *j) {
    uint64_t old = mt_atomic_load(&j->flags); /* relaxed: the CAS re-checks */
    for (unsigned spins = 0;; spins++) {
        if (!(old & JOIN_LOCKED)) {
            /* acquire: pairs with the release in join_unlock */
            uint64_t seen = mt_atomic_cas(&j->flags, old, old | JOIN_LOCKED);
            if (seen == old)
                return;
            old = seen;
            continue;
        }
        if (spins < SPINS_BEFORE_YIELD)
            mt_cpu_relax();
        else
            sched_yield();
        old = mt_atomic_load(&j->flags); /* relaxed: as above */
    }
}

/* Releases the lock, setting `add` flags (DONE, CLAIMED) with it. */
static void join_unlock(tml_join *j, uint64_t add) {
    uint64_t old = mt_atomic_load(&j->flags); /* relaxed: only we write it while locked */
    MT_ASSERT(old & JOIN_LOCKED);
    mt_atomic_store_release(&j->flags, (old | add) & ~(uint64_t)JOIN_LOCKED);
}

/* Allocates a task's block: join state plus a copy of `frame`
 * (vt->frame_size bytes). Two references: the task's and the caller's.
 * `blocker` (may be NULL) is unparked when the task completes. The caller
 * fills in `slot` and `token` before the task is scheduled.
 * Errors: panics when out of memory (tml_alloc). */
tml_join *mt_join_new(const tml_task_vt *vt, const void *frame, mt_parker *blocker) {
    MT_ASSERT(vt && vt->poll && frame);
    MT_ASSERT(vt->result_size == 0 || vt->result_offset + vt->result_size <= vt->frame_size);
    tml_join *j = tml_alloc(sizeof *j + vt->frame_size);
    mt_atomic_store(&j->refs, 2); /* relaxed, both: the block is not shared yet */
    mt_atomic_store(&j->flags, 0);
    j->waiters = (mt_waitlist){NULL, NULL};
    j->blocker = blocker;
    j->vt = vt;
    j->slot = NULL;
    j->token = 0;
    memcpy(j->frame, frame, vt->frame_size);
    return j;
}

/* The task returned Ready: publishes DONE, wakes every awaiting task and
 * the block_on caller, then drops the task's reference. Threads: the
 * worker that ran the final poll. */
void mt_join_complete(tml_join *j) {
    join_lock(j);
    /* release: the poll's writes (the result) happen before a reader's
     * acquire of DONE (mt_join_done); set before the unpark below, which
     * lets the block_on caller take the result */
    mt_atomic_store_release(&j->flags, JOIN_LOCKED | JOIN_DONE);
    mt_waitlist_wake_all(&j->waiters);
    if (j->blocker)
        mt_parker_unpark(j->blocker); /* last touch of the blocker: see mt_park.c */
    join_unlock(j, 0);
    tml_join_release(j);
}

/* Whether the task returned Ready. Threads: any. */
bool mt_join_done(tml_join *j) {
    return mt_atomic_load_acquire(&j->flags) & JOIN_DONE; /* pairs with join_unlock */
}

/* Moves the result out once. Lock held; the task is done. Returns the
 * TML_JOIN_* code and the flags to set at unlock. */
static int32_t take_locked(tml_join *j, void *out, uint64_t *add) {
    if (mt_atomic_load(&j->flags) & JOIN_CLAIMED) /* relaxed: set under the lock */
        return TML_JOIN_ALREADY_JOINED;
    *add = JOIN_CLAIMED;
    if (j->vt->result_size > 0 && out)
        memcpy(out, (char *)j->frame + j->vt->result_offset, j->vt->result_size);
    return TML_JOIN_OK;
}

/* Moves a finished task's result to `out` (may be NULL when result_size
 * is 0). Returns TML_JOIN_OK, or TML_JOIN_ALREADY_JOINED when it was
 * taken before. Threads: any. */
int32_t mt_join_take(tml_join *j, void *out) {
    MT_ASSERT(mt_join_done(j));
    uint64_t add = 0;
    join_lock(j);
    int32_t err = take_locked(j, out, &add);
    join_unlock(j, add);
    return err;
}

void tml_join_retain(tml_join *h) {
    MT_ASSERT(h);
    mt_atomic_fetch_add(&h->refs, 1); /* the caller already holds one: no ordering needed */
}

void tml_join_release(tml_join *h) {
    MT_ASSERT(h);
    /* acq_rel: every owner's use of the block happens before the free */
    uint64_t old = mt_atomic_fetch_add(&h->refs, (uint64_t)-1);
    MT_ASSERT(old > 0);
    if (old != 1)
        return;
    uint64_t flags = mt_atomic_load(&h->flags); /* relaxed: the RMW above ordered it */
    MT_ASSERT(flags & JOIN_DONE); /* the task's own reference was the last but one */
    if (!(flags & JOIN_CLAIMED) && h->vt->result_drop && h->vt->result_size > 0)
        h->vt->result_drop((char *)h->frame + h->vt->result_offset);
    tml_free(h);
}

bool tml_join_is_finished(tml_join *h) {
    MT_ASSERT(h);
    return mt_join_done(h);
}

void tml_join_init(tml_join_fut *f, tml_join *h, void *out) {
    MT_ASSERT(f && h);
    memset(f, 0, sizeof *f);
    f->h = h;
    f->out = out;
}

/* Ready once the task finished: moves the result (first taker) or reports
 * TML_JOIN_ALREADY_JOINED. Otherwise queues f->w on the block, once.
 * Spends one unit of the cooperative budget when Ready. */
tml_poll tml_join_poll(tml_join_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->h && cx);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    tml_join *j = f->h;
    bool ready = false;
    uint64_t add = 0;
    join_lock(j);
    if (mt_atomic_load(&j->flags) & JOIN_DONE) { /* relaxed: set under this lock */
        MT_ASSERT(!f->w.linked);                 /* completion unlinks every waiter */
        f->err = take_locked(j, f->out, &add);
        ready = true;
    } else if (!f->w.linked) {
        mt_waitlist_push(&j->waiters, &f->w, cx->waker);
    }
    join_unlock(j, add);
    return ready ? mt_budget_ready(cx) : TML_PENDING;
}

static tml_poll join_leaf(void *leaf, tml_cx *cx) { return tml_join_poll(leaf, cx); }

int32_t tml_join_blocking(tml_join *h, void *out) {
    tml_join_fut f;
    tml_join_init(&f, h, out);
    mt_block_on_leaf(join_leaf, &f);
    return f.err;
}
