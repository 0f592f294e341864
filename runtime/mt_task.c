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
 * A free slot's `link` holds the generation of its next use and the next
 * free slot; an in-use slot's holds the task's block.
 * Sources: the geometric pages of Tokio's slab (tokio/src/util/slab.rs);
 * the state word with a notified bit, re-polled instead of polled twice,
 * from Tokio's task state (tokio/src/runtime/task/state.rs).
 *
 * State word. Each slot has one 64-bit atomic word: generation << 32 |
 * state bits (MT_TASK_*); its transitions for wake and poll are inline in
 * mt_internal.h (mt_task_notify, _begin_poll, _end_pending). The generation is bumped when the slot is freed,
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
 *   abort:        as a wake, adding ABORTED (tml_join_abort: any thread)
 *   poll starts:  g | SCHEDULED|ABORTED   -> g | RUNNING|ABORTED: not
 *                 polled; dropped and freed  -> g+1 | COMPLETE
 * An abort of a RUNNING task also sets NOTIFIED, so a Pending poll
 * re-queues it (SCHEDULED|ABORTED) and it is dropped at its next turn;
 * a poll that returns Ready completes it as usual (the abort came too
 * late). The first poll's start is a CAS for the same reason: an abort
 * can mark a task that was never polled (its handle carries the token).
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
 * reference until it completes, each handle one. One atomic word,
 * `state`, packs the references with a spin lock bit (guarding `waiters`
 * and CLAIMED), DONE, CLAIMED and WAITERS (the wait list is not empty): a
 * pthread mutex would add 40 bytes to every task, and the lock is held
 * for a few instructions by at most the completer and the joiners.
 * Completion sets DONE, wakes every awaiting task and unparks a block_on
 * caller. When nobody waits (no WAITERS, no lock holder, no block_on
 * caller) it sets DONE and drops the task's reference in one CAS: a
 * joiner's lock CAS on the same word comes either before (then the
 * completer sees LOCKED or WAITERS and takes the lock) or after (then the
 * joiner sees DONE). The result stays in the frame at vt->result_offset until one
 * taker moves it out (CLAIMED); later takers get TML_JOIN_ALREADY_JOINED.
 * Whoever drops the last reference drops an unclaimed result
 * (vt->result_drop) and frees the block.
 * Rejected: a lock-free waiter stack (cannot unlink a cancelled waiter,
 * which the cancellation issue needs); a join block separate from the
 * frame (two allocations per spawn).
 *
 * Block cache. Task blocks are malloc blocks in size classes of 16 bytes
 * that match malloc's own rounding (no memory is lost), up to about
 * MT_BLOCK_CLASSES * 16 bytes. A worker keeps the blocks freed on its
 * thread in per-class lists (owner only: no atomics) and spawns from
 * them; a list past CACHE_MAX moves a batch to its runtime's pool (one
 * mutex per batch), and an empty list takes a batch back, so a spawner on
 * one worker reuses what another worker's completions freed (Go's per-P
 * gFree lists and sched.gFree). A thread that is not a worker frees a
 * block to malloc: a handle released after its runtime is gone is fine.
 * Rejected: malloc/free per task (glibc's cross-thread frees, when one
 * worker spawns and another completes, cost more than the task itself);
 * carving blocks from big chunks (denser, but then a block could not
 * outlive its runtime). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "async_sync.h"

#define NO_SLOT MT_MAX_SLOTS
#define FRESH_BATCH 64 /* never-used slots the owner takes per lock */

_Static_assert(sizeof(mt_slot) == 16, "slots are 16 bytes: 16-aligned in calloc'ed chunks (MT_JOIN_FRESH)");
_Static_assert(offsetof(struct tml_join, frame) <= 64, "the per-task memory budget assumes a 64-byte header");

/* tml_join.state: references << JOIN_REF_SHIFT | flags */
enum {
    JOIN_LOCKED = 1, JOIN_DONE = 2, JOIN_CLAIMED = 4, JOIN_WAITERS = 8,
    JOIN_DROPPED = 16,  /* ended without a result: TML_JOIN_NO_RESULT */
    JOIN_CANCELLED = 32 /* aborted: TML_JOIN_CANCELLED */
};
#define JOIN_REF_SHIFT 8
#define JOIN_REF (UINT64_C(1) << JOIN_REF_SHIFT)


static uint32_t chunk_size(unsigned k) { return 1u << (MT_SLAB_FIRST_SHIFT + (k == 0 ? 0 : k - 1)); }

/* A slot known to exist: one this slab handed out. */
static mt_slot *slot_at(mt_slab *s, uint32_t slot) {
    unsigned k = mt_slab_chunk_of(slot);
    return mt_slab_chunk(s, k) + (slot - mt_slab_chunk_start(k));
}

/* The generation after `gen`, skipping 0: generation 0 is never handed
 * out, so no live task's token is 0 (worker 0, slot 0, generation 0),
 * the value the reactor and wait lists read as "no waiter". */
static uint32_t next_gen(uint32_t gen) {
    return gen + 1 == 0 ? 1 : gen + 1;
}

/* Initialises an empty slab whose slots start at generation `gen_floor`
 * (mt_runtime.c passes the floor left by the slab that last used this
 * worker id; 0 counts as 1, see next_gen). */
void mt_slab_init(mt_slab *s, uint32_t gen_floor) {
    for (unsigned k = 0; k < MT_SLAB_CHUNKS; k++)
        mt_atomic_store(&s->chunks[k], 0); /* relaxed, all: before the slab is shared */
    mt_atomic_store(&s->remote_free, NO_SLOT);
    pal_mutex_init(&s->lock);
    s->local_free = NO_SLOT;
    s->fresh = 0;
    s->gen_floor = gen_floor == 0 ? 1 : gen_floor;
}

/* The shutdown deadline passed with tasks of `s` still live: drops each
 * one's frame (vt->drop releases the values and futures it holds) and
 * completes it without a result (joiners get TML_JOIN_NO_RESULT), freeing
 * its slot. Returns how many it dropped. A drop may wake other tasks: they
 * only land in run queues, which are freed without running them.
 * Threads: the shutting-down thread, after every worker exited. */
size_t mt_slab_abandon(mt_slab *s) {
    size_t n = 0;
    for (unsigned k = 0; k < MT_SLAB_CHUNKS; k++) {
        mt_slot *chunk = mt_slab_chunk(s, k);
        if (!chunk)
            break;
        for (uint32_t i = 0; i < chunk_size(k); i++) {
            uint64_t word = mt_atomic_load(&chunk[i].word); /* relaxed: no worker runs */
            if (word & MT_TASK_COMPLETE)
                continue;
            tml_join *j = (tml_join *)(uintptr_t)mt_atomic_load(&chunk[i].link);
            /* as if it ran its last poll: nobody else touches it now */
            mt_atomic_store(&chunk[i].word, mt_task_word(mt_task_gen(word), MT_TASK_RUNNING));
            mt_slab_free(s, mt_slab_chunk_start(k) + i, mt_task_gen(word), true);
            mt_join_abandon(j, TML_JOIN_NO_RESULT);
            n++;
        }
    }
    return n;
}

/* Adds the tasks of `s` that wait (IDLE: neither queued nor running) to
 * n[], indexed by what they wait on (tml_join.waits, MT_WAIT_*).
 * Threads: one that no other thread of the runtime runs beside (the
 * deadlock report: mt_deadlock.c). */
void mt_slab_count_waiting(mt_slab *s, uint64_t n[]) {
    for (unsigned k = 0; k < MT_SLAB_CHUNKS; k++) {
        mt_slot *chunk = mt_slab_chunk(s, k);
        if (!chunk)
            break;
        for (uint32_t i = 0; i < chunk_size(k); i++) {
            /* relaxed, both: no other thread runs (the caller ordered their writes) */
            if (mt_task_state(mt_atomic_load(&chunk[i].word)) == MT_TASK_IDLE)
                n[((tml_join *)(uintptr_t)mt_atomic_load(&chunk[i].link))->waits]++;
        }
    }
}

/* Ends the live task (generation `gen`) in `slot` without a poll, while
 * workers of its runtime still exist: marks the slot complete at the next
 * generation, so every token goes stale and a racing wake's CAS fails,
 * but links it on no free list, so it is never reused and `link` keeps
 * the task block for a wake that queued it just before. The caller then
 * ends the task (mt_join_abandon). Threads: one that no worker polls
 * concurrently with (the task is neither running nor complete). */
void mt_slab_retire(mt_slab *s, uint32_t slot, uint32_t gen) {
    mt_slot *sl = slot_at(s, slot);
    /* acquire: pairs with the release of its last poll's end */
    uint64_t word = mt_atomic_load_acquire(&sl->word);
    MT_ASSERT(mt_task_gen(word) == gen && !(mt_task_state(word) & (MT_TASK_RUNNING | MT_TASK_COMPLETE)));
    mt_atomic_store_release(&sl->word, mt_task_word(next_gen(gen), MT_TASK_COMPLETE));
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
            uint32_t d = mt_task_gen(mt_atomic_load(&chunk[i].word)) - floor; /* mod 2^32 */
            ahead = d > ahead ? d : ahead;
        }
        free(chunk);
    }
    pal_mutex_fini(&s->lock);
    return next_gen(floor + ahead);
}

/* Allocates chunk k (lock held) with every slot free at the floor. */
static int grow(mt_slab *s, unsigned k) {
    mt_slot *chunk = calloc(chunk_size(k), sizeof *chunk);
    if (!chunk)
        return -ENOMEM;
    for (uint32_t i = 0; i < chunk_size(k); i++)
        mt_atomic_store(&chunk[i].word, mt_task_word(s->gen_floor, MT_TASK_COMPLETE)); /* published below */
    /* publishes the initialised slots; pairs with the acquire in mt_slab_chunk */
    mt_atomic_store_release(&s->chunks[k], (uint64_t)(uintptr_t)chunk);
    return 0;
}

/* A free slot's `link`: the generation its next task will carry, and the
 * next free slot (NO_SLOT ends a list). Carrying the generation here lets
 * spawn and completion write the state word without reading it first. */
static uint64_t free_link(uint32_t gen, uint32_t next) { return (uint64_t)gen << 32 | next; }
static uint32_t link_next(uint64_t link) { return (uint32_t)link; }
static uint32_t link_gen(uint64_t link) { return (uint32_t)(link >> 32); }

/* Hands out up to `max` never-used slots, linked through `link` and
 * ending in NO_SLOT, all inside one chunk. Returns the first, or NO_SLOT
 * with *err set (-ENOSPC: all 2^24 slots in use; -ENOMEM). */
static uint32_t take_fresh(mt_slab *s, uint32_t max, int *err) {
    uint32_t first = NO_SLOT;
    pal_mutex_lock(&s->lock);
    uint32_t i = s->fresh;
    if (i == MT_MAX_SLOTS) {
        *err = -ENOSPC;
    } else if (i == mt_slab_chunk_start(mt_slab_chunk_of(i)) && (*err = grow(s, mt_slab_chunk_of(i))) < 0) {
        /* no chunk for slot i */
    } else {
        uint32_t end = mt_slab_chunk_start(mt_slab_chunk_of(i)) + chunk_size(mt_slab_chunk_of(i));
        uint32_t n = end - i < max ? end - i : max;
        for (uint32_t k = 0; k < n; k++) /* relaxed: nobody else sees them until we hand them out */
            mt_atomic_store(&slot_at(s, i + k)->link, free_link(s->gen_floor, k + 1 < n ? i + k + 1 : NO_SLOT));
        s->fresh = i + n;
        first = i;
    }
    pal_mutex_unlock(&s->lock);
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
        uint32_t next = link_next(mt_atomic_load(&slot_at(s, top)->link));
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
    }
    if (i == NO_SLOT)
        return err;
    /* relaxed: ours alone now; the free list (lock, CAS or owner) ordered
     * the free before */
    uint64_t link = mt_atomic_load(&slot_at(s, i)->link);
    if (owner)
        s->local_free = link_next(link);
    MT_ASSERT(mt_atomic_load(&slot_at(s, i)->word) == mt_task_word(link_gen(link), MT_TASK_COMPLETE));
    *slot = i;
    *gen = link_gen(link);
    return 0;
}

/* Puts `task` in the reserved `slot` (whose generation mt_slab_alloc
 * returned as `gen`) and marks it SCHEDULED: the caller must then queue
 * the task exactly once. Threads: the reserver. */
void mt_slab_start(mt_slab *s, uint32_t slot, uint32_t gen, tml_join *task) {
    mt_slot *sl = slot_at(s, slot);
    mt_atomic_store(&sl->link, (uint64_t)(uintptr_t)task); /* relaxed: published by the release below */
    /* wakers only CAS words holding their own generation, so a plain store
     * is safe; release orders `link` before any waker's successful CAS */
    mt_atomic_store_release(&sl->word, mt_task_word(gen, MT_TASK_SCHEDULED));
}

/* Frees the slot of a task (generation `gen`) whose poll just returned
 * Ready: bumps the generation (every outstanding token goes stale at
 * once) and links the slot on the owner's list (`owner`: the caller is
 * the slab's worker thread) or the remote stack. Threads: the worker that
 * ran the final poll. */
void mt_slab_free(mt_slab *s, uint32_t slot, uint32_t gen, bool owner) {
    mt_slot *sl = slot_at(s, slot);
    MT_ASSERT(mt_atomic_load(&sl->word) >> 32 == gen && (mt_atomic_load(&sl->word) & MT_TASK_RUNNING));
    /* plain store: a racing waker's CAS fails and re-reads a new generation;
     * release: our reads of the frame happen before the slot's reuse */
    mt_atomic_store_release(&sl->word, mt_task_word(next_gen(gen), MT_TASK_COMPLETE));
    if (owner) {
        mt_atomic_store(&sl->link, free_link(next_gen(gen), s->local_free)); /* relaxed: owner-only list */
        s->local_free = slot;
        return;
    }
    uint64_t old = mt_atomic_load(&s->remote_free); /* relaxed: the CAS validates it */
    for (;;) {
        /* relaxed: published by the CAS (release) */
        mt_atomic_store(&sl->link, free_link(next_gen(gen), (uint32_t)old));
        uint64_t seen = mt_atomic_cas(&s->remote_free, old, ((old >> 32) + 1) << 32 | slot);
        if (seen == old)
            return;
        old = seen;
    }
}

/* ------------------------------------------------------ block cache */

#define CACHE_MAX 128        /* blocks per class in a worker's list */
#define BATCH (CACHE_MAX / 2) /* blocks moved to or from the pool at once */
#define POOL_MAX 64          /* batches per class in a runtime's pool */

/* Size classes follow malloc's usable sizes on 64-bit glibc, 16c + 24
 * (an 8-byte header, 16-byte chunks): rounding a block up to its class
 * costs no memory, and every block of a class is interchangeable. */
static size_t class_size(unsigned c) { return 16 * (size_t)c + 24; }

static unsigned block_class(size_t bytes) {
    return bytes <= 24 ? 0 : (unsigned)((bytes - 24 + 15) / 16);
}

static void **next_of(void *block) { return (void **)block; }
static void **next_batch_of(void *block) { return (void **)block + 1; }

/* Frees every block of a list. */
static void free_list(void *b) {
    while (b) {
        void *next = *next_of(b);
        free(b);
        b = next;
    }
}

void mt_block_pool_init(mt_block_pool *p) {
    pal_mutex_init(&p->lock);
    for (unsigned c = 0; c < MT_BLOCK_CLASSES; c++) {
        p->batches[c] = NULL;
        p->nbatches[c] = 0;
    }
}

/* Frees the pool's blocks. Threads: nobody else uses the pool any more. */
void mt_block_pool_fini(mt_block_pool *p) {
    for (unsigned c = 0; c < MT_BLOCK_CLASSES; c++) {
        for (void *b = p->batches[c], *next; b; b = next) {
            next = *next_batch_of(b);
            free_list(b);
        }
    }
    pal_mutex_fini(&p->lock);
}

/* Frees a worker's cached blocks (its thread has exited). */
void mt_block_cache_fini(mt_block_cache *k) {
    for (unsigned c = 0; c < MT_BLOCK_CLASSES; c++) {
        free_list(k->head[c]);
        k->head[c] = NULL;
        k->len[c] = 0;
    }
}

/* List c of w's cache is full: moves a batch of its blocks to the pool
 * (or frees them when the pool is full too). */
static void spill(mt_worker *w, unsigned c) {
    mt_block_cache *k = &w->blocks;
    void *batch = k->head[c], *last = batch;
    for (uint32_t i = 1; i < BATCH; i++)
        last = *next_of(last);
    k->head[c] = *next_of(last);
    k->len[c] -= BATCH;
    *next_of(last) = NULL;
    mt_block_pool *p = &w->rt->blocks;
    pal_mutex_lock(&p->lock);
    bool kept = p->nbatches[c] < POOL_MAX;
    if (kept) {
        *next_batch_of(batch) = p->batches[c];
        p->batches[c] = batch;
        p->nbatches[c]++;
    }
    pal_mutex_unlock(&p->lock);
    if (!kept)
        free_list(batch);
}

/* List c of w's cache is empty: takes a batch from the pool, if any. */
static void refill(mt_worker *w, unsigned c) {
    mt_block_pool *p = &w->rt->blocks;
    pal_mutex_lock(&p->lock);
    void *batch = p->batches[c];
    if (batch) {
        p->batches[c] = *next_batch_of(batch);
        p->nbatches[c]--;
    }
    pal_mutex_unlock(&p->lock);
    if (batch) {
        w->blocks.head[c] = batch;
        w->blocks.len[c] = BATCH;
    }
}

/* A block of at least `bytes` bytes: from w's cache when `w` (the calling
 * thread's worker, or NULL) has one of that class, else from malloc.
 * Errors: panics when out of memory (tml_alloc). */
static void *block_alloc(mt_worker *w, size_t bytes) {
    unsigned c = block_class(bytes);
    if (!w || c >= MT_BLOCK_CLASSES)
        return tml_alloc(bytes);
    mt_block_cache *k = &w->blocks;
    if (!k->head[c])
        refill(w, c);
    void *b = k->head[c];
    if (!b)
        return tml_alloc(class_size(c)); /* reusable by any block of its class */
    k->head[c] = *next_of(b);
    k->len[c]--;
    return b;
}

/* Frees a block of `bytes` bytes into the calling thread's worker cache,
 * or to malloc when the thread is no worker (a block outlives its
 * runtime when a handle is released late: it is plain malloc memory). */
static void block_free(void *b, size_t bytes) {
    mt_worker *w = mt_worker_current();
    unsigned c = block_class(bytes);
    if (!w || c >= MT_BLOCK_CLASSES) {
        tml_free(b);
        return;
    }
    mt_block_cache *k = &w->blocks;
    *next_of(b) = k->head[c];
    k->head[c] = b;
    if (++k->len[c] > CACHE_MAX)
        spill(w, c);
}

/* ------------------------------------------------------------ join */

/* Takes the block's spin lock (JOIN_LOCKED), held for a few instructions
 * (as mt_spin, but sharing its word with the flags and references). */
static void join_lock(tml_join *j) {
    uint64_t old = mt_atomic_load(&j->state); /* relaxed: the CAS re-checks */
    for (unsigned steps = 0;;) {
        if (!(old & JOIN_LOCKED)) {
            /* acquire: pairs with the release RMW in join_unlock */
            uint64_t seen = mt_atomic_cas(&j->state, old, old | JOIN_LOCKED);
            if (seen == old)
                return;
            old = seen;
            continue;
        }
        mt_spin_wait(&steps);
        old = mt_atomic_load(&j->state); /* relaxed: as above */
    }
}

/* Releases the lock, setting the flags `set` (clear now) and clearing the
 * flags and reference `clear` (set now) in the same RMW: references may
 * change meanwhile, so a plain store would lose them. Returns the new
 * state. */
static uint64_t join_unlock(tml_join *j, uint64_t set, uint64_t clear) {
    /* release: our writes under the lock happen before the next locker's */
    return mt_atomic_fetch_add(&j->state, set - clear - JOIN_LOCKED) + set - clear - JOIN_LOCKED;
}

/* Allocates a task's block: join state plus a copy of `frame`
 * (vt->frame_size bytes; NULL: left for the caller to fill), from w's
 * block cache (`w`: the calling thread's worker, or NULL). Two references: the task's and the caller's.
 * `blocker` (may be NULL) is unparked when the task completes. The caller
 * fills in `slot` and `token` before the task is scheduled.
 * Errors: panics when out of memory (tml_alloc). */
tml_join *mt_join_new(mt_worker *w, const tml_task_vt *vt, const void *frame, mt_parker *blocker) {
    MT_ASSERT(vt && vt->poll);
    MT_ASSERT(vt->result_size == 0 || vt->result_offset + vt->result_size <= vt->frame_size);
    tml_join *j = block_alloc(w, sizeof *j + vt->frame_size);
    mt_atomic_store(&j->state, 2 * JOIN_REF); /* relaxed: the block is not shared yet */
    j->waiters = (mt_waitlist){NULL, NULL};
    j->blocker = blocker;
    j->vt = vt;
    j->slot = 0;
    j->token = 0;
    j->waits = MT_WAIT_OTHER;
    if (frame) /* NULL: tml_spawn_frame's caller fills it in place */
        memcpy(j->frame, frame, vt->frame_size);
    return j;
}

/* Frees a block whose last reference is gone, dropping a result nobody
 * claimed. */
static void destroy(tml_join *j, uint64_t state) {
    MT_ASSERT(state & JOIN_DONE); /* the task's own reference goes last but one */
    if (!(state & (JOIN_CLAIMED | JOIN_DROPPED | JOIN_CANCELLED)) && j->vt->result_drop && j->vt->result_size > 0)
        j->vt->result_drop((char *)j->frame + j->vt->result_offset);
    block_free(j, sizeof *j + j->vt->frame_size);
}

/* The task returned Ready: publishes DONE, wakes every awaiting task and
 * the block_on caller, and drops the task's reference. With nobody
 * waiting (the usual case) that is one CAS. Threads: the worker that ran
 * the final poll. */
void mt_join_complete(tml_join *j) {
    uint64_t old = mt_atomic_load(&j->state); /* relaxed: the CAS re-checks */
    while (!j->blocker && !(old & (JOIN_LOCKED | JOIN_WAITERS))) {
        /* release: the poll's writes (the result) happen before a reader's
         * acquire of DONE; a joiner that locks after this sees DONE */
        uint64_t seen = mt_atomic_cas(&j->state, old, (old | JOIN_DONE) - JOIN_REF);
        if (seen == old) {
            if (((old | JOIN_DONE) - JOIN_REF) >> JOIN_REF_SHIFT == 0)
                destroy(j, old | JOIN_DONE);
            return;
        }
        old = seen;
    }
    join_lock(j);
    /* RMW, release: as above; set before the unpark below, which lets the
     * block_on caller take the result */
    uint64_t state = mt_atomic_fetch_add(&j->state, JOIN_DONE) | JOIN_DONE;
    mt_waitlist_wake_all(&j->waiters);
    if (j->blocker)
        mt_parker_unpark(j->blocker); /* last touch of the blocker: see mt_park.c */
    state = join_unlock(j, 0, (state & JOIN_WAITERS) + JOIN_REF);
    if (state >> JOIN_REF_SHIFT == 0)
        destroy(j, state);
}

/* Ends a task that will never be polled again (shutdown dropped it, or
 * it was aborted; its slot is free already): its frame's drop (vt->drop)
 * releases what it holds, and it completes without a result: joiners and
 * the block_on caller get `code`, TML_JOIN_NO_RESULT or
 * TML_JOIN_CANCELLED. Threads: the one that stopped its polls. */
void mt_join_abandon(tml_join *j, int32_t code) {
    MT_ASSERT(code == TML_JOIN_NO_RESULT || code == TML_JOIN_CANCELLED);
    if (j->vt->drop)
        j->vt->drop(j->frame);
    /* RMW: a joiner may hold the lock; DONE is not set yet */
    mt_atomic_fetch_add(&j->state, code == TML_JOIN_CANCELLED ? JOIN_CANCELLED : JOIN_DROPPED);
    mt_join_complete(j);
}

/* Whether the task returned Ready. Threads: any. */
bool mt_join_done(tml_join *j) {
    return mt_atomic_load_acquire(&j->state) & JOIN_DONE; /* pairs with the RMWs setting it */
}

/* Moves the result out once. Lock held; the task is done. Returns the
 * TML_JOIN_* code; adds the flags to set at unlock to *set. */
static int32_t take_locked(tml_join *j, void *out, uint64_t *set) {
    uint64_t state = mt_atomic_load(&j->state); /* relaxed: set under the lock, or before DONE */
    if (state & JOIN_CLAIMED)
        return TML_JOIN_ALREADY_JOINED;
    if (state & JOIN_DROPPED)
        return TML_JOIN_NO_RESULT;
    if (state & JOIN_CANCELLED)
        return TML_JOIN_CANCELLED;
    *set |= JOIN_CLAIMED;
    if (j->vt->result_size > 0 && out)
        memcpy(out, (char *)j->frame + j->vt->result_offset, j->vt->result_size);
    return TML_JOIN_OK;
}

/* Moves a finished task's result to `out` (may be NULL when result_size
 * is 0). Returns TML_JOIN_OK, TML_JOIN_ALREADY_JOINED when it was taken
 * before, or TML_JOIN_NO_RESULT when the task was dropped (`out`
 * untouched). Threads: any. */
int32_t mt_join_take(tml_join *j, void *out) {
    MT_ASSERT(mt_join_done(j));
    uint64_t set = 0;
    join_lock(j);
    int32_t err = take_locked(j, out, &set);
    join_unlock(j, set, 0);
    return err;
}

void tml_join_retain(tml_join *h) {
    MT_ASSERT(h);
    mt_atomic_fetch_add(&h->state, JOIN_REF); /* the caller holds one already: any order will do */
}

void tml_join_release(tml_join *h) {
    MT_ASSERT(h);
    /* acq_rel: every owner's use of the block happens before the free */
    uint64_t old = mt_atomic_fetch_add(&h->state, (uint64_t)-JOIN_REF);
    MT_ASSERT(old >> JOIN_REF_SHIFT > 0);
    if (old >> JOIN_REF_SHIFT == 1)
        destroy(h, old);
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
    uint64_t set = 0;
    join_lock(j);
    /* relaxed: DONE and WAITERS change under this lock only */
    uint64_t state = mt_atomic_load(&j->state);
    if (state & JOIN_DONE) {
        MT_ASSERT(!f->w.linked); /* completion unlinks every waiter */
        f->err = take_locked(j, f->out, &set);
        ready = true;
    } else if (!f->w.linked) {
        mt_waitlist_push(&j->waiters, &f->w, cx->waker);
        set = state & JOIN_WAITERS ? 0 : JOIN_WAITERS;
    }
    join_unlock(j, set, 0);
    return ready ? mt_budget_ready(cx) : mt_task_waits(cx, MT_WAIT_JOIN);
}

/* A dropped join leaf leaves the task's wait list; the result stays in
 * the task for another joiner (or is dropped with the last handle). */
void tml_join_drop(tml_join_fut *f) {
    MT_ASSERT(f && f->h);
    join_lock(f->h); /* completion unlinks under it: `linked` is read under it too */
    if (f->w.linked)
        mt_waitlist_remove(&f->h->waiters, &f->w);
    join_unlock(f->h, 0, 0);
}

static tml_poll join_leaf(void *leaf, tml_cx *cx) { return tml_join_poll(leaf, cx); }
static void join_leaf_drop(void *leaf) { tml_join_drop(leaf); }

/* A wait the shutdown deadline ended reports TML_JOIN_NO_RESULT. */
int32_t tml_join_blocking(tml_join *h, void *out) {
    tml_join_fut f;
    tml_join_init(&f, h, out);
    return mt_block_on_leaf(join_leaf, join_leaf_drop, &f) ? f.err : TML_JOIN_NO_RESULT;
}
