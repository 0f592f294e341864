/* mt_task.c - task slabs, generation tokens, the task state machine, and
 * join handles.
 *
 * Slab. Each worker owns one slab; a task occupies one slot of the slab
 * of the worker that spawned it, and its token names (worker, slot,
 * generation). Slots live in chunks that never move: chunk 0 holds 64
 * slots, chunk k > 0 holds 2^(5+k), so 19 chunks cover the 2^24 slots a
 * token can name and the slab grows without copying or a big up-front
 * table. Chunk pointers are published once (release) and read without a
 * lock (acquire) by wakers; the free list and growth are under the slab
 * mutex (any worker frees a slot when the task it polled completes).
 * Sources: the geometric pages of Tokio's slab (tokio/src/util/slab.rs);
 * the state word with a notified bit, re-polled instead of polled twice,
 * from Tokio's task state (tokio/src/runtime/task/state.rs).
 *
 * State word. Each slot has one 64-bit atomic word: generation << 32 |
 * state bits (MT_TASK_*). The generation is bumped when the slot is freed,
 * so waking a finished task's token is a no-op even after the slot was
 * reused, and checking the generation and marking the task notified is a
 * single CAS. Transitions (everything else leaves the word unchanged):
 *   spawn:        free (gen g, COMPLETE)  -> g | SCHEDULED    allocator
 *   wake:         g | IDLE                -> g | SCHEDULED    + queue push
 *                 g | RUNNING             -> g | RUNNING|NOTIFIED
 *   poll starts:  g | SCHEDULED           -> g | RUNNING      the poller
 *   poll Pending: g | RUNNING             -> g | IDLE
 *                 g | RUNNING|NOTIFIED    -> g | SCHEDULED    + re-queue
 *   poll Ready:   g | RUNNING[|NOTIFIED]  -> g+1 | COMPLETE   slot freed
 * Invariants: a token is in at most one run queue, and only while its
 * task is SCHEDULED; only the worker that popped it moves the task out of
 * SCHEDULED, so a task is never polled on two workers at once. A wake
 * whose generation differs, or that finds the task already SCHEDULED,
 * NOTIFIED or COMPLETE, changes nothing. Never-used slots hold the slab's
 * generation floor and COMPLETE, so a bogus token is a no-op too.
 *
 * Join block (struct tml_join). One heap allocation per task: the join
 * state followed by the frame copy. Reference counted: the task holds one
 * reference until it completes, each handle one. Completion sets `done`,
 * wakes every awaiting task (their tml_join_fut.w nodes, under the block's
 * mutex) and unparks a block_on caller. The result stays in the frame at
 * vt->result_offset until one taker moves it out (`claimed`); later takers
 * get TML_JOIN_ALREADY_JOINED. Whoever drops the last reference drops an
 * unclaimed result (vt->result_drop) and frees the block.
 * Rejected: a lock-free waiter stack (cannot unlink a cancelled waiter,
 * which the cancellation issue needs); a join block separate from the
 * frame (two allocations per spawn). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_internal.h"

#define STATE_MASK 0xffffffffu
#define NO_SLOT MT_MAX_SLOTS

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
        mt_atomic_store(&s->chunks[k], 0); /* before the slab is shared */
    pthread_mutex_init(&s->lock, NULL);
    s->free_head = NO_SLOT;
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

/* Reserves a free slot; its word keeps saying "free" (COMPLETE) until
 * mt_slab_start, so wakers ignore it. *gen is the generation the task
 * will carry. Threads: any. Returns 0, -ENOSPC when all 2^24 slots are
 * in use, or -ENOMEM. */
int mt_slab_alloc(mt_slab *s, uint32_t *slot, uint32_t *gen) {
    int err = 0;
    uint32_t i = 0;
    pthread_mutex_lock(&s->lock);
    if (s->free_head != NO_SLOT) {
        i = s->free_head;
        s->free_head = mt_slab_slot(s, i)->next_free;
    } else if (s->fresh == MT_MAX_SLOTS) {
        err = -ENOSPC;
    } else {
        i = s->fresh;
        if (i == chunk_start(chunk_of(i)))
            err = grow(s, chunk_of(i));
        if (!err)
            s->fresh++;
    }
    pthread_mutex_unlock(&s->lock);
    if (err)
        return err;
    uint64_t w = mt_atomic_load(&mt_slab_slot(s, i)->word); /* relaxed: the lock ordered the free */
    MT_ASSERT(word_state(w) == MT_TASK_COMPLETE);
    *slot = i;
    *gen = word_gen(w);
    return 0;
}

/* Puts `task` in the reserved `slot` and marks it SCHEDULED: the caller
 * must then queue its token exactly once. Threads: the reserver. */
void mt_slab_start(mt_slab *s, uint32_t slot, tml_join *task) {
    mt_slot *sl = mt_slab_slot(s, slot);
    uint64_t w = mt_atomic_load(&sl->word); /* relaxed: reserved, nobody else writes it */
    sl->task = task;
    /* wakers only CAS words holding their own generation, so a plain store
     * is safe; release orders `task` before the token can be seen */
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
 * slot on the free list. Threads: the worker that ran the final poll. */
void mt_slab_free(mt_slab *s, uint32_t slot) {
    mt_slot *sl = mt_slab_slot(s, slot);
    uint64_t w = mt_atomic_load(&sl->word); /* relaxed: RUNNING, only we move it out */
    MT_ASSERT(word_state(w) & MT_TASK_RUNNING);
    /* plain store: a racing waker's CAS fails and re-reads a new generation;
     * release: our reads of the frame happen before the slot's reuse */
    mt_atomic_store_release(&sl->word, word(word_gen(w) + 1, MT_TASK_COMPLETE));
    pthread_mutex_lock(&s->lock);
    sl->next_free = s->free_head;
    s->free_head = slot;
    pthread_mutex_unlock(&s->lock);
}

/* Wake: if the slot still holds generation `gen` and its task is idle,
 * marks it SCHEDULED and returns true: the caller must queue the token.
 * Marks a running task NOTIFIED (returns false: the poller re-queues it).
 * Anything else is a no-op. Threads: any; one CAS, no lock. */
bool mt_task_notify(mt_slot *s, uint32_t gen) {
    uint64_t old = mt_atomic_load_acquire(&s->word); /* pairs with the release stores above */
    for (;;) {
        uint32_t st = word_state(old);
        if (word_gen(old) != gen || (st & (MT_TASK_SCHEDULED | MT_TASK_NOTIFIED | MT_TASK_COMPLETE)))
            return false;
        uint32_t next = st == MT_TASK_RUNNING ? st | MT_TASK_NOTIFIED : MT_TASK_SCHEDULED;
        /* acq_rel: the poll that made the task idle happens before its
         * next poll, through this CAS and the queue */
        uint64_t seen = mt_atomic_cas(&s->word, old, word(gen, next));
        if (seen == old)
            return next == MT_TASK_SCHEDULED;
        old = seen;
    }
}

/* Poll starts: SCHEDULED -> RUNNING. Returns the task's block.
 * Threads: the worker that popped the token. */
tml_join *mt_task_begin_poll(mt_slot *s) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the queue pop ordered us */
    MT_ASSERT(word_state(old) == MT_TASK_SCHEDULED);
    /* wakers never change a SCHEDULED word, so this CAS cannot fail */
    uint64_t seen = mt_atomic_cas(&s->word, old, word(word_gen(old), MT_TASK_RUNNING));
    MT_ASSERT(seen == old);
    return s->task;
}

/* Poll returned Pending: RUNNING -> IDLE, or, when a wake came during the
 * poll, RUNNING|NOTIFIED -> SCHEDULED and returns true: the caller must
 * re-queue the token. Threads: the poller. */
bool mt_task_end_pending(mt_slot *s) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (;;) {
        MT_ASSERT(word_state(old) & MT_TASK_RUNNING);
        bool notified = word_state(old) & MT_TASK_NOTIFIED;
        /* release: this poll's frame writes before the next poll */
        uint64_t seen = mt_atomic_cas(&s->word, old,
                                      word(word_gen(old), notified ? MT_TASK_SCHEDULED : MT_TASK_IDLE));
        if (seen == old)
            return notified;
        old = seen;
    }
}

/* Allocates a task's block: join state plus a copy of `frame`
 * (vt->frame_size bytes). Two references: the task's and the caller's.
 * `blocker` (may be NULL) is unparked when the task completes.
 * Errors: panics when out of memory (tml_alloc). */
tml_join *mt_join_new(const tml_task_vt *vt, const void *frame, mt_parker *blocker) {
    MT_ASSERT(vt && vt->poll && frame);
    MT_ASSERT(vt->result_size == 0 || vt->result_offset + vt->result_size <= vt->frame_size);
    tml_join *j = tml_alloc(sizeof *j + vt->frame_size);
    mt_atomic_store(&j->refs, 2); /* relaxed, both: the block is not shared yet */
    mt_atomic_store(&j->done, 0);
    pthread_mutex_init(&j->lock, NULL);
    j->waiters = (mt_waitlist){NULL, NULL};
    j->claimed = false;
    j->blocker = blocker;
    j->vt = vt;
    memcpy(j->frame, frame, vt->frame_size);
    return j;
}

/* The task returned Ready: publishes `done`, wakes every awaiting task and
 * the block_on caller, then drops the task's reference. Threads: the
 * worker that ran the final poll. */
void mt_join_complete(tml_join *j) {
    pthread_mutex_lock(&j->lock);
    mt_atomic_store_release(&j->done, 1); /* pairs with tml_join_is_finished */
    mt_waitlist_wake_all(&j->waiters);
    if (j->blocker)
        mt_parker_unpark(j->blocker); /* last touch of the blocker: see mt_park.c */
    pthread_mutex_unlock(&j->lock);
    tml_join_release(j);
}

/* Moves the result out once. Lock held; the task is done. */
static int32_t take_locked(tml_join *j, void *out) {
    if (j->claimed)
        return TML_JOIN_ALREADY_JOINED;
    j->claimed = true;
    if (j->vt->result_size > 0 && out)
        memcpy(out, (char *)j->frame + j->vt->result_offset, j->vt->result_size);
    return TML_JOIN_OK;
}

/* Moves a finished task's result to `out` (may be NULL when result_size
 * is 0). Returns TML_JOIN_OK, or TML_JOIN_ALREADY_JOINED when it was
 * taken before. Threads: any. */
int32_t mt_join_take(tml_join *j, void *out) {
    MT_ASSERT(mt_atomic_load_acquire(&j->done));
    pthread_mutex_lock(&j->lock);
    int32_t err = take_locked(j, out);
    pthread_mutex_unlock(&j->lock);
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
    MT_ASSERT(mt_atomic_load(&h->done)); /* the task's own reference was the last but one */
    if (!h->claimed && h->vt->result_drop && h->vt->result_size > 0)
        h->vt->result_drop((char *)h->frame + h->vt->result_offset);
    pthread_mutex_destroy(&h->lock);
    tml_free(h);
}

bool tml_join_is_finished(tml_join *h) {
    MT_ASSERT(h);
    return mt_atomic_load_acquire(&h->done) != 0; /* pairs with mt_join_complete */
}

void tml_join_init(tml_join_fut *f, tml_join *h, void *out) {
    MT_ASSERT(f && h);
    memset(f, 0, sizeof *f);
    f->h = h;
    f->out = out;
}

/* Ready once the task finished: moves the result (first taker) or reports
 * TML_JOIN_ALREADY_JOINED. Otherwise queues f->w on the block, once. */
tml_poll tml_join_poll(tml_join_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->h && cx);
    tml_join *j = f->h;
    bool ready = false;
    pthread_mutex_lock(&j->lock);
    if (mt_atomic_load(&j->done)) { /* relaxed: set under this lock */
        MT_ASSERT(!f->w.linked);    /* completion unlinks every waiter */
        f->err = take_locked(j, f->out);
        ready = true;
    } else if (!f->w.linked) {
        mt_waitlist_push(&j->waiters, &f->w, cx->waker);
    }
    pthread_mutex_unlock(&j->lock);
    return ready ? TML_READY : TML_PENDING;
}

static tml_poll join_leaf(void *leaf, tml_cx *cx) { return tml_join_poll(leaf, cx); }

int32_t tml_join_blocking(tml_join *h, void *out) {
    tml_join_fut f;
    tml_join_init(&f, h, out);
    mt_block_on_leaf(join_leaf, &f);
    return f.err;
}
