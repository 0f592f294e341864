/* mt_internal.h - runtime-private types shared by the mt_ files.
 *
 * One section per module, in dependency order. Public ABI types come from
 * tml/rt.h; nothing here is visible to generated code. Tests include this
 * header to drive modules directly (tests/runtime/<module>_test.c).
 *
 * Vocabulary and invariants used across files:
 *   token   a tml_waker: worker id (8 bits) | slot (24 bits) |
 *           generation (32 bits), most significant first. The worker id
 *           names the slab that holds the task (the worker that spawned
 *           it), not the worker that runs it: any worker may poll any task.
 *   slot    one entry of a worker's slab. Its state word holds the slot's
 *           generation and the task's state bits, so "check generation and
 *           mark notified" is a single CAS (mt_task_notify).
 *   task    slot + one heap block (struct tml_join): join state and frame.
 *           Run queues carry task block pointers, never tokens: a queued
 *           task is SCHEDULED, so its block cannot be freed under the queue.
 *   live    a runtime's spawned tasks that have not completed; counted by
 *           monotonic per-worker counters (mt_runtime.c, "Quiescence").
 * Worker ids are unique among live runtimes (mt_runtime.c's registry), so
 * a token can always be routed to its slab, or found stale. */
#ifndef MT_INTERNAL_H
#define MT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io_reactor.h"
#include "mt_atomic.h"
#include "pal.h"
#include "mt_chaos.h"
#include "timer_wheel.h"
#include "tml/rt.h"

/* Checks a precondition or invariant; a failure is a runtime bug (or a
 * broken ABI contract) and panics with the expression and location.
 * With NDEBUG the expression is not evaluated, but still counts as a use. */
#ifdef NDEBUG
#define MT_ASSERT(c) ((void)sizeof(!(c)))
#else
#define MT_ASSERT(c) \
    ((c) ? (void)0 : tml_panic_at(__FILE__, __LINE__, 0, "runtime assertion failed: " #c))
#endif

#define MT_WORKER_BITS 8
#define MT_SLOT_BITS 24
#define MT_MAX_WORKERS (1u << MT_WORKER_BITS)
#define MT_MAX_SLOTS (1u << MT_SLOT_BITS)
#define MT_NO_DEADLINE INT64_MAX /* "wait without a timeout" */
#define MT_SHUTDOWN_TIMEOUT_NS (INT64_C(5000) * 1000000) /* DESIGN.md section 6 */
#define MT_CACHE_LINE 64         /* per-thread hot fields are padded to it */

typedef struct mt_runtime mt_runtime;
typedef struct mt_worker mt_worker;

static inline tml_waker mt_token(unsigned worker_id, uint32_t slot, uint32_t gen) {
    return (uint64_t)worker_id << 56 | (uint64_t)slot << 32 | gen;
}
static inline unsigned mt_token_worker(tml_waker t) { return (unsigned)(t >> 56); }
static inline uint32_t mt_token_slot(tml_waker t) { return (uint32_t)(t >> 32) & (MT_MAX_SLOTS - 1); }
static inline uint32_t mt_token_gen(tml_waker t) { return (uint32_t)t; }

/* ------------------------------------------------------------ mt_park.c */

/* A one-thread parking spot: park() sleeps until unpark() or a deadline,
 * on a condition variable or, for the driver, in the I/O reactor.
 * The notification is sticky: an unpark before the park is not lost. */
typedef struct mt_parker {
    pal_mutex lock;
    pal_cond cond;     /* CLOCK_MONOTONIC */
    bool notified;           /* under lock */
    bool idle;               /* counted out of *activity until woken; lock */
    io_reactor *blocked_in;  /* the reactor it is parked in, or NULL; lock */
    mt_atomic *activity;     /* its runtime's activity word, or NULL (mt_deadlock.c) */
} mt_parker;

/* A runtime's activity word (mt_deadlock.c): epoch << 32 | WATCHED |
 * the threads counted active. Waking a counted thread adds
 * MT_ACTIVITY_WAKE: one more active, and a new epoch. */
#define MT_ACTIVITY_ONE UINT64_C(1)
#define MT_ACTIVITY_WATCHED (UINT64_C(1) << 31)
#define MT_ACTIVITY_WAKE ((UINT64_C(1) << 32) + MT_ACTIVITY_ONE)
static inline uint32_t mt_activity_active(uint64_t word) { return (uint32_t)word & 0x7fffffffu; }

int mt_parker_init(mt_parker *p);
void mt_parker_fini(mt_parker *p);
bool mt_parker_park(mt_parker *p, int64_t deadline_ns);
bool mt_parker_park_in(mt_parker *p, io_reactor *r, int64_t deadline_ns);
void mt_parker_unpark(mt_parker *p);
bool mt_parker_idle(mt_parker *p, uint64_t *word);

/* The searching and parked workers of one runtime (protocol in mt_park.c). */
typedef struct mt_idle {
    _Alignas(MT_CACHE_LINE) mt_atomic state; /* CLOSED | unparked << 32 | searching */
    unsigned nworkers;
    pal_mutex lock;
    unsigned *sleepers; /* parked worker indices, most recent last; lock */
    unsigned nsleepers; /* lock */
} mt_idle;

/* What mt_idle_park tells the parking worker. */
enum {
    MT_IDLE_RECHECK = 1, /* no searcher is left: re-check every queue */
    MT_IDLE_CLOSED = 2   /* the runtime is shutting down: check quiescence */
};

int mt_idle_init(mt_idle *idle, unsigned nworkers);
void mt_idle_fini(mt_idle *idle);
bool mt_idle_try_search(mt_idle *idle);
bool mt_idle_stop_search(mt_idle *idle);
unsigned mt_idle_park(mt_idle *idle, unsigned index, bool searching);
bool mt_idle_unparked(mt_idle *idle, unsigned index);
bool mt_idle_notify(mt_idle *idle, unsigned *index);
void mt_idle_close(mt_idle *idle);

/* Fields of mt_idle.state. */
static inline unsigned mt_idle_n_searching(uint64_t state) { return (uint32_t)state; }
static inline unsigned mt_idle_n_unparked(uint64_t state) { return (uint32_t)(state >> 32) & 0x7fffffffu; }

/* Whether N1 (mt_park.c) would go on: no searcher and some worker
 * parked. A hint, for callers that need no guarantee and want to skip
 * N1's RMW in the common case. Threads: any. */
static inline bool mt_idle_may_notify(mt_idle *idle) {
    uint64_t s = mt_atomic_load(&idle->state); /* relaxed: a hint */
    return mt_idle_n_searching(s) == 0 && mt_idle_n_unparked(s) < idle->nworkers;
}

/* ----------------------------------------------------------- mt_queue.c */

/* One cell of the global ring (Vyukov's bounded MPMC queue). */
typedef struct mt_queue_cell {
    mt_atomic seq;  /* position it is ready for; see mt_queue.c */
    tml_join *task; /* ordered by seq's release/acquire */
} mt_queue_cell;

/* The global (injector) queue: a lock-free ring, spilling to a mutex
 * protected overflow list when full. Any thread pushes and pops. */
typedef struct mt_queue {
    _Alignas(MT_CACHE_LINE) mt_atomic head; /* next position to pop */
    _Alignas(MT_CACHE_LINE) mt_atomic tail; /* next position to push */
    _Alignas(MT_CACHE_LINE) mt_queue_cell *cells;
    uint64_t mask;        /* capacity - 1 */
    mt_atomic spilled;    /* == over_len, readable without the lock */
    _Alignas(MT_CACHE_LINE) mt_atomic waiters; /* threads blocked in mt_queue_pop: every push RMWs it */
    pal_mutex lock; /* the overflow list; the waiters' condvar */
    pal_cond nonempty; /* CLOCK_MONOTONIC */
    tml_join **over;      /* overflow FIFO ring of over_cap; lock */
    size_t over_cap, over_head, over_len; /* lock */
} mt_queue;

int mt_queue_init(mt_queue *q, size_t capacity);
void mt_queue_fini(mt_queue *q);
bool mt_queue_try_push(mt_queue *q, tml_join *t);
int mt_queue_push(mt_queue *q, tml_join *t);
int mt_queue_push_batch(mt_queue *q, tml_join *const *ts, size_t n);
bool mt_queue_try_pop(mt_queue *q, tml_join **out);
size_t mt_queue_steal(mt_queue *q, tml_join **out, size_t max);
bool mt_queue_pop(mt_queue *q, tml_join **out, int64_t deadline_ns);
bool mt_queue_is_empty(mt_queue *q);

/* ----------------------------------------------------------- mt_deque.c */

/* A worker's local run queue: the owner pushes at the tail and pops at
 * the head; thieves take half from the head (mt_deque.c). */
#ifndef MT_DEQUE_CAP
/* A power of two; tests may shrink it with -D. 1024 rather than Tokio's
 * 256: with 1,000 runnable tasks (W2, W3a) a 256 ring sends most of them
 * through the shared global queue, and measured side by side 1024 ran W2
 * 1.4-1.9x and W3a 1.1-1.2x faster (tests/bench/RESULTS.md); it costs 8 KiB
 * per worker. */
#define MT_DEQUE_CAP 1024u
#endif
typedef struct mt_deque {
    _Alignas(MT_CACHE_LINE) mt_atomic head; /* steal << 32 | real */
    mt_atomic tail;                         /* written by the owner only */
    tml_join *buf[MT_DEQUE_CAP];
} mt_deque;

void mt_deque_init(mt_deque *d);
void mt_deque_push_batch(mt_deque *d, tml_join *const *ts, uint32_t n);
uint32_t mt_deque_take_half(mt_deque *d, tml_join **out);
uint32_t mt_deque_steal(mt_deque *src, mt_deque *dst, tml_join **out);

/* The owner's hot paths, inline (every poll uses them); their protocol
 * and orderings are documented in mt_deque.c. */
static inline uint64_t mt_deque_head(uint32_t steal, uint32_t real) { return (uint64_t)steal << 32 | real; }
static inline uint32_t mt_deque_steal_of(uint64_t head) { return (uint32_t)(head >> 32); }
static inline uint32_t mt_deque_real_of(uint64_t head) { return (uint32_t)head; }

/* The owner's view of its own tail: only it writes `tail`. */
static inline uint32_t mt_deque_own_tail(const mt_deque *d) {
    return (uint32_t)mt_atomic_load(&d->tail); /* relaxed: our own writes */
}

/* Appends `t` at the tail. Returns false (nothing queued) when the ring
 * is full. Threads: the owner only; no RMW. */
static inline bool mt_deque_push(mt_deque *d, tml_join *t) {
    uint32_t tail = mt_deque_own_tail(d);
    /* acquire: pairs with a thief's step 5, after which its slots are free */
    uint64_t head = mt_atomic_load_acquire(&d->head);
    if (tail - mt_deque_steal_of(head) >= MT_DEQUE_CAP)
        return false;
    d->buf[tail & (MT_DEQUE_CAP - 1)] = t;
    mt_atomic_store_release(&d->tail, tail + 1); /* publishes the cell; pairs with steal's acquire */
    return true;
}

/* Removes the oldest task into *out; false when empty.
 * Threads: the owner only. One CAS (thieves contend on head). */
static inline bool mt_deque_pop(mt_deque *d, tml_join **out) {
    uint64_t head = mt_atomic_load_acquire(&d->head); /* as in push */
    for (;;) {
        uint32_t steal = mt_deque_steal_of(head), real = mt_deque_real_of(head);
        if (real == mt_deque_own_tail(d))
            return false;
        uint64_t next = steal == real ? mt_deque_head(real + 1, real + 1) : mt_deque_head(steal, real + 1);
        uint64_t seen = mt_atomic_cas(&d->head, head, next);
        if (seen == head) {
            *out = d->buf[real & (MT_DEQUE_CAP - 1)]; /* ours now; we wrote it */
            /* the next task's block is likely cold (queued a while ago):
             * start loading it while this one runs. Only a hint: the cell
             * may be stale, and a prefetch never faults */
            __builtin_prefetch(d->buf[(real + 1) & (MT_DEQUE_CAP - 1)]);
            return true;
        }
        head = seen;
    }
}

/* Tasks queued (not counting a batch being stolen). Exact for the owner;
 * from other threads an estimate, except in the parking re-check, where
 * an RMW orders it after the pushes it must see (mt_park.c).
 * Threads: any. */
static inline uint32_t mt_deque_len(const mt_deque *d) {
    /* acquire, both: pair with the owner's release of tail and the CASes */
    uint32_t real = mt_deque_real_of(mt_atomic_load_acquire(&d->head));
    return (uint32_t)mt_atomic_load_acquire(&d->tail) - real;
}

/* Cells free for the owner's pushes: a batch a thief has claimed but not
 * finished copying still occupies its cells, so an "empty" queue can
 * have as little as half a ring of room. Threads: the owner. */
static inline uint32_t mt_deque_room(const mt_deque *d) {
    uint32_t steal = mt_deque_steal_of(mt_atomic_load_acquire(&d->head));
    return MT_DEQUE_CAP - (mt_deque_own_tail(d) - steal);
}

/* ------------------------------------------------------------ mt_task.c */

/* Task state bits, in the low 32 bits of a slot's word. 0 = idle: the
 * task returned Pending and waits for a wake. */
enum {
    MT_TASK_IDLE = 0,
    MT_TASK_SCHEDULED = 1u << 0, /* it sits in exactly one run queue */
    MT_TASK_RUNNING = 1u << 1,   /* a worker is polling it */
    MT_TASK_NOTIFIED = 1u << 2,  /* woken while running: poll once more */
    MT_TASK_COMPLETE = 1u << 3,  /* returned Ready (or slot free) */
    MT_TASK_ABORTED = 1u << 4    /* h.abort(): dropped instead of its next poll */
};

typedef struct mt_slot {
    mt_atomic word; /* generation << 32 | MT_TASK_* bits */
    mt_atomic link; /* in use: the task's block; free: next free slot */
} mt_slot;

#define MT_SLAB_FIRST_SHIFT 6 /* chunk 0 holds 64 slots; chunk k>0 2^(5+k) */
#define MT_SLAB_CHUNKS (MT_SLOT_BITS - MT_SLAB_FIRST_SHIFT + 1)

/* A worker's task slab: slots in chunks that never move (mt_task.c). */
typedef struct mt_slab {
    mt_atomic chunks[MT_SLAB_CHUNKS]; /* mt_slot *, published once */
    uint32_t local_free;              /* owner's free list; owner only */
    _Alignas(MT_CACHE_LINE) mt_atomic remote_free; /* tag << 32 | head */
    pal_mutex lock;             /* guards the fields below */
    uint32_t fresh;                   /* slots [0, fresh) were handed out */
    uint32_t gen_floor;               /* generation of never-used slots */
} mt_slab;

void mt_slab_init(mt_slab *s, uint32_t gen_floor);
uint32_t mt_slab_fini(mt_slab *s);
int mt_slab_alloc(mt_slab *s, bool owner, uint32_t *slot, uint32_t *gen);
void mt_slab_start(mt_slab *s, uint32_t slot, uint32_t gen, tml_join *task);
void mt_slab_free(mt_slab *s, uint32_t slot, uint32_t gen, bool owner);
size_t mt_slab_abandon(mt_slab *s);
void mt_slab_count_waiting(mt_slab *s, uint64_t n[]);
void mt_slab_retire(mt_slab *s, uint32_t slot, uint32_t gen);

/* The hot paths of every wake and poll, inline; the state machine and its
 * orderings are documented in mt_task.c. */
static inline uint64_t mt_task_word(uint32_t gen, uint32_t state) { return (uint64_t)gen << 32 | state; }
static inline uint32_t mt_task_gen(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint32_t mt_task_state(uint64_t w) { return (uint32_t)w; }

/* Chunk k's first slot, and the chunk holding `slot` (mt_task.c). */
static inline uint32_t mt_slab_chunk_start(unsigned k) {
    return k == 0 ? 0 : 1u << (MT_SLAB_FIRST_SHIFT + k - 1);
}
static inline unsigned mt_slab_chunk_of(uint32_t slot) {
    if (slot < (1u << MT_SLAB_FIRST_SHIFT))
        return 0;
    return 31u - (unsigned)__builtin_clz(slot) - MT_SLAB_FIRST_SHIFT + 1; /* slot >= 64: top bit >= 6 */
}

/* Chunk k, or NULL before it was grown. Threads: any; lock-free. */
static inline mt_slot *mt_slab_chunk(mt_slab *s, unsigned k) {
    /* pairs with the release in mt_task.c's grow */
    return (mt_slot *)(uintptr_t)mt_atomic_load_acquire(&s->chunks[k]);
}

/* The slot with index `slot`, or NULL when its chunk does not exist yet
 * (a bogus token). Threads: any; lock-free. */
static inline mt_slot *mt_slab_slot(mt_slab *s, uint32_t slot) {
    MT_ASSERT(slot < MT_MAX_SLOTS);
    unsigned k = mt_slab_chunk_of(slot);
    mt_slot *chunk = mt_slab_chunk(s, k);
    return chunk ? chunk + (slot - mt_slab_chunk_start(k)) : NULL;
}

/* Wake: if the slot still holds generation `gen`, applies the wake
 * transition (always by CAS: mt_task.c, "Why a wake ... CAS"), adding
 * the state bits `add` (0, or MT_TASK_ABORTED for an abort). Returns
 * the task's block when the task went IDLE -> SCHEDULED: the caller must
 * queue it; NULL otherwise. Threads: any; lock-free. */
static inline tml_join *mt_task_signal(mt_slot *s, uint32_t gen, uint32_t add) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (;;) {
        uint32_t st = mt_task_state(old);
        if (mt_task_gen(old) != gen || (st & MT_TASK_COMPLETE))
            return NULL;
        uint32_t next = (st == MT_TASK_IDLE ? MT_TASK_SCHEDULED
                         : st == MT_TASK_RUNNING ? st | MT_TASK_NOTIFIED : st) | add;
        /* acq_rel: see mt_task.c; on IDLE -> SCHEDULED it also acquires
         * the slot's `link` and the last poll's writes */
        uint64_t seen = mt_atomic_cas(&s->word, old, mt_task_word(gen, next));
        if (seen == old)
            return st == MT_TASK_IDLE ? (tml_join *)(uintptr_t)mt_atomic_load(&s->link) : NULL;
        old = seen;
    }
}

/* The wake transition without abort: mt_task_signal(s, gen, 0). */
static inline tml_join *mt_task_notify(mt_slot *s, uint32_t gen) {
    return mt_task_signal(s, gen, 0);
}

/* Poll starts: SCHEDULED -> RUNNING (a CAS: see mt_task.c), keeping
 * ABORTED, from the word `old` the caller expects. Returns whether the
 * task was aborted: the caller then drops it instead of polling it.
 * Threads: the worker that dequeued the task. */
static inline bool mt_task_start_poll(mt_slot *s, uint64_t old) {
    for (;;) {
        MT_ASSERT((mt_task_state(old) & ~MT_TASK_ABORTED) == MT_TASK_SCHEDULED);
        uint32_t aborted = mt_task_state(old) & MT_TASK_ABORTED;
        uint64_t seen = mt_atomic_cas(&s->word, old, mt_task_word(mt_task_gen(old), MT_TASK_RUNNING | aborted));
        if (seen == old) /* it fails only on a waker's same-value CAS, or an abort */
            return aborted;
        old = seen;
    }
}

/* A task's first poll starts: expects SCHEDULED without reading the word
 * first (often cold: written by the spawner's core). A CAS, not a plain
 * store: an abort (tml_join_abort) may have marked the task before it.
 * Returns as mt_task_start_poll. Threads: the poller. */
static inline bool mt_task_first_poll(mt_slot *s, uint32_t gen) {
    return mt_task_start_poll(s, mt_task_word(gen, MT_TASK_SCHEDULED));
}

/* A later poll starts (see mt_task_start_poll). */
static inline bool mt_task_begin_poll(mt_slot *s) {
    return mt_task_start_poll(s, mt_atomic_load(&s->word)); /* relaxed: the queue ordered us; the CAS re-checks */
}

/* Poll returned Pending: RUNNING -> IDLE, or -> SCHEDULED when a wake came
 * during the poll (NOTIFIED) or `self_woken` (the task woke itself, which
 * mt_worker.c records without touching the word); then returns true and
 * the caller must re-queue the task. Threads: the poller. */
static inline bool mt_task_end_pending(mt_slot *s, bool self_woken) {
    uint64_t old = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (;;) {
        MT_ASSERT(mt_task_state(old) & MT_TASK_RUNNING);
        bool again = self_woken || (mt_task_state(old) & MT_TASK_NOTIFIED); /* an abort notifies too */
        uint32_t next = again ? MT_TASK_SCHEDULED | (mt_task_state(old) & MT_TASK_ABORTED) : MT_TASK_IDLE;
        /* release: this poll's frame writes happen before the next poll */
        uint64_t seen = mt_atomic_cas(&s->word, old, mt_task_word(mt_task_gen(old), next));
        if (seen == old)
            return again;
        old = seen;
    }
}

/* FIFO list of waiting leaves (async_sync.c), under its owner's lock. */
typedef struct mt_waitlist {
    tml_waiter *head, *tail;
} mt_waitlist;

/* A task's heap block; tml_join handles point at it. 60 bytes (64 with
 * the frame's alignment) before the frame: with the slot (16) and
 * malloc's header (8), a pending task costs 88 bytes beyond its frame,
 * under the 128 budget (97 measured for 1M parked tasks, RSS delta). */
struct tml_join {
    mt_atomic state;       /* references (the task's + one per handle) | flags (mt_task.c) */
    mt_waitlist waiters;   /* tml_join_fut.w of awaiting tasks; locked */
    mt_parker *blocker;    /* block_on caller to unpark at completion */
    const tml_task_vt *vt;
    uintptr_t slot;        /* its mt_slot *, | MT_JOIN_FRESH until polled */
    tml_waker token;       /* the task's waker */
    uint32_t waits;        /* MT_WAIT_* of its last waiting leaf; its pollers only */
    max_align_t frame[];   /* vt->frame_size bytes */
};

/* What a task's last Pending leaf waits on (tml_join.waits), for the
 * deadlock report (mt_deadlock.c); MT_WAIT_OTHER until one says. */
enum {
    MT_WAIT_OTHER, MT_WAIT_RECV, MT_WAIT_SEND, MT_WAIT_LOCK, MT_WAIT_ACQUIRE, MT_WAIT_NOTIFIED,
    MT_WAIT_JOIN, MT_WAIT_KINDS
};

/* Freed task blocks kept for reuse, per 16-byte size class (mt_task.c,
 * "Block cache"): a worker's own lists, and its runtime's shared pool. */
#define MT_BLOCK_CLASSES 32 /* blocks up to 520 bytes are cached */
typedef struct mt_block_cache {
    void *head[MT_BLOCK_CLASSES]; /* lists linked through each block's first word */
    uint32_t len[MT_BLOCK_CLASSES];
} mt_block_cache;

typedef struct mt_block_pool {
    pal_mutex lock;            /* guards the fields below */
    void *batches[MT_BLOCK_CLASSES]; /* batches linked through their second word */
    uint32_t nbatches[MT_BLOCK_CLASSES];
} mt_block_pool;

void mt_block_pool_init(mt_block_pool *p);
void mt_block_pool_fini(mt_block_pool *p);
void mt_block_cache_fini(mt_block_cache *k);

#define MT_JOIN_FRESH ((uintptr_t)1) /* tml_join.slot: never polled (slots are 16-aligned) */

tml_join *mt_join_new(mt_worker *w, const tml_task_vt *vt, const void *frame, mt_parker *blocker);
void mt_join_complete(tml_join *j);
void mt_join_abandon(tml_join *j, int32_t code);
int32_t mt_join_take(tml_join *j, void *out);
bool mt_join_done(tml_join *j);

/* ----------------------------------------------------------- mt_timer.c */

#define MT_NOT_ARMED INT64_MIN /* mt_timers.armed_ns: no driver blocked */

/* Pending timers of one runtime: a timing wheel under a spin lock. */
typedef struct mt_timers {
    mt_spin lock;
    int64_t armed_ns;   /* the blocked driver wakes by then; lock */
    mt_atomic next_ns;  /* <= every pending deadline; MT_NO_DEADLINE: none */
    timer_wheel wheel;  /* lock */
} mt_timers;

void mt_timers_init(mt_timers *t);
void mt_timers_fini(mt_timers *t);
bool mt_timers_insert(mt_timers *t, tml_timer_node *node, int64_t deadline_ns, tml_waker waker);
void mt_timers_cancel(mt_timers *t, tml_timer_node *node);
size_t mt_timers_expire(mt_timers *t, int64_t now_ns, tml_waker *out, size_t max);
int64_t mt_timers_next(const mt_timers *t);
int64_t mt_timers_arm(mt_timers *t);
void mt_timers_disarm(mt_timers *t);
bool mt_timers_empty(mt_timers *t);

/* ---------------------------------------------------------- mt_worker.c */

#define MT_BUDGET 128 /* leaf completions per poll (rt.h, as Tokio's) */

/* Per-worker counters: written by the owning worker only (relaxed
 * read-modify-store, no RMW), read by anyone (a snapshot). */
typedef struct mt_stats {
    mt_atomic polls, steals, stolen, parks, global_pops, overflows;
    mt_atomic spawned;   /* tasks this worker spawned */
    mt_atomic completed; /* tasks whose last poll ran here */
} mt_stats;

/* Most tasks a poll's wakes hold back from thieves (mt_worker.c,
 * "Scheduling"): enough for a consumer and a few producers, few enough
 * that a wake-up storm (notify_all, close) reaches other workers at once. */
#define MT_HELD_MAX 8

/* Longest a running worker leaves the reactor unpolled while tasks wait
 * in the global queue, ns (mt_worker.c, step 1 of next_task): Go's sysmon
 * polls the network after 10 ms without a poll. */
#define MT_IO_STARVE_NS 10000000

/* How long after it last had nothing to run a worker keeps the I/O it
 * finds to itself, ns (mt_worker.c, "Readiness stays where it was
 * polled"). */
#define MT_IO_FRESH_NS 10000000

struct mt_worker {
    /* owner-only hot state, on its own cache lines */
    _Alignas(MT_CACHE_LINE) mt_runtime *rt;
    tml_join *lifo;      /* the LIFO slot: runs next; never stolen */
    tml_join *running;   /* the task being polled, or NULL */
    tml_join *held[MT_HELD_MAX]; /* out of the LIFO slot during this poll, oldest first */
    uint32_t nheld;      /* entries of held; 0 outside a poll */
    unsigned index;      /* position in rt->workers */
    unsigned id;         /* global worker id: the tokens' top byte */
    uint32_t tick;       /* polls until the next fairness check */
    uint32_t lifo_runs;  /* consecutive polls out of the LIFO slot */
    uint32_t rng;        /* xorshift32 state: victim choice */
    int32_t budget;      /* leaf completions left in this poll */
    int64_t io_polled_ns; /* when this worker last polled the reactor (tml_now_ns) */
    int64_t idle_ns;     /* when this worker last had nothing to run: it left a park,
                            or a search round found nothing (tml_now_ns) */
    bool searching;      /* counted in rt->idle as searching */
    bool self_woken;     /* the running task woke itself */
    bool io_quiet;       /* a reactor poll is waking tasks here while fresh */
    bool found_io;       /* search found its task through this worker's reactor poll or timers */
    bool help_deferred;  /* a notification was held back while fresh: retried after */
    mt_stats stats;
    mt_block_cache blocks; /* freed task blocks for this worker's spawns */
    pal_thread thread;
    _Alignas(MT_CACHE_LINE) mt_parker parker; /* touched by unparkers */
    _Alignas(MT_CACHE_LINE) mt_slab slab;
    mt_deque local; /* aligned: touched by thieves */
};

int mt_worker_init(mt_worker *w, mt_runtime *rt, unsigned index, unsigned id, uint32_t gen_floor);
uint32_t mt_worker_fini(mt_worker *w);
int mt_worker_start(mt_worker *w);
void mt_worker_join(mt_worker *w);
void mt_worker_set_current(mt_worker *w);
void mt_worker_push_back(mt_worker *w, tml_join *t);
void mt_worker_flush_held(mt_worker *w);
void mt_worker_push_global(mt_runtime *rt, tml_join *t);
void mt_worker_notify(mt_runtime *rt);
void mt_worker_offload(mt_worker *w);
bool mt_worker_step(mt_worker *w);
void mt_worker_wait(mt_worker *w);
void mt_worker_wake_driver(mt_runtime *rt);

/* The worker running on the calling thread (mt_worker.c), or NULL. */
extern _Thread_local mt_worker *mt_current_worker;

static inline mt_worker *mt_worker_current(void) {
    return mt_current_worker;
}

/* Schedules `t` (a task of w's runtime that just became SCHEDULED) to run
 * next on w: the LIFO slot; the task it displaces goes to the back of
 * the local queue (mt_worker.c, "Scheduling"). Threads: w's own only;
 * plain stores. */
static inline void mt_worker_schedule(mt_worker *w, tml_join *t) {
    MT_ASSERT(mt_current_worker == w);
    tml_join *prev = w->lifo;
    w->lifo = t;
    if (prev)
        mt_worker_push_back(w, prev);
}

/* Schedules `t`, just woken by the calling thread, on w. Outside a poll
 * (timers, I/O) as mt_worker_schedule. During a poll, the task the LIFO
 * slot gives up is held until the poll ends (mt_worker_flush_held), where
 * mt_worker_schedule would queue it for thieves at once (mt_worker.c,
 * "Scheduling"). Threads: w's own only; plain stores. */
static inline void mt_worker_schedule_woken(mt_worker *w, tml_join *t) {
    MT_ASSERT(mt_current_worker == w);
    if (!w->running) {
        mt_worker_schedule(w, t);
        return;
    }
    tml_join *prev = w->lifo;
    w->lifo = t;
    if (!prev)
        return;
    w->held[w->nheld++] = prev;
    if (w->nheld == MT_HELD_MAX)
        mt_worker_flush_held(w);
}

/* Wakes the task a leaf is polled for, from inside its poll: cx belongs
 * to the task running on cx->worker, so this is the plain store that
 * tml_wake would end in (re-queued at the back when the poll returns). */
static inline void mt_worker_self_wake(tml_cx *cx) {
    mt_worker *w = cx->worker;
    MT_ASSERT(w == mt_current_worker && w->running && w->running->token == cx->waker);
    w->self_woken = true;
}

/* Ends a leaf's poll that waits on `kind` (MT_WAIT_*): records it on
 * the running task for the deadlock report (mt_deadlock.c), one plain
 * store to the task's block, which its poll has in cache. Returns
 * TML_PENDING. Threads: the poller. */
static inline tml_poll mt_task_waits(tml_cx *cx, uint32_t kind) {
    mt_worker *w = cx->worker;
    MT_ASSERT(w == mt_current_worker && w->running && kind < MT_WAIT_KINDS);
    w->running->waits = kind;
    return TML_PENDING;
}

/* Called by a leaf before it may complete. Returns true while the running
 * task has budget left; else the task is woken (re-queued behind the
 * others) and the leaf must return Pending untouched (mt_worker.c). */
static inline bool mt_budget_poll(tml_cx *cx) {
    MT_ASSERT(cx && cx->worker);
    mt_worker *w = cx->worker;
    if (w->budget > 0 && mt_chaos(MT_CHAOS_BUDGET))
        w->budget = 0; /* chaos: the budget runs out at this leaf */
    if (w->budget > 0)
        return true;
    mt_worker_self_wake(cx);
    return false;
}

/* Ends a leaf's Ready: spends one unit of the running task's budget. */
static inline tml_poll mt_budget_ready(tml_cx *cx) {
    mt_worker *w = cx->worker;
    if (w->budget > 0)
        w->budget--;
    return TML_READY;
}

/* --------------------------------------------------------- mt_runtime.c */

struct mt_runtime {
    mt_worker *workers;     /* nworkers, ids id_base .. id_base+nworkers-1 */
    unsigned nworkers;
    unsigned id_base;
    bool threaded;          /* false: current-thread runtime, no threads */
    bool stopped;           /* mt_runtime_shutdown ran */
    mt_queue global;
    mt_timers timers;
    io_reactor *reactor;    /* polled by the driver (mt_worker.c) */
    mt_idle idle;
    mt_block_pool blocks;   /* task blocks the workers' caches share */
    _Alignas(MT_CACHE_LINE) mt_atomic foreign; /* CLOSING | spawns from outside */
    mt_atomic stopping;     /* 1: workers exit once idle; 2: at once */
    int64_t shutdown_timeout_ns; /* how long shutdown waits for tasks */
    mt_atomic driver;       /* 1: a worker holds the driver (mt_worker.c) */
    mt_atomic io_sources;   /* registered fds: the driver polls I/O */
    _Alignas(MT_CACHE_LINE) mt_atomic activity; /* epoch | WATCHED | active threads (mt_deadlock.c) */
    mt_atomic next_slab;    /* round robin for spawns from outside */
    pal_mutex quiet_lock; /* shutdown waits for quiescence under it */
    pal_cond quiet_cond;  /* signalled when no task is live */
    pal_mutex drive_lock; /* current-thread: one driver at a time */
};

/* `timeout_ns` (>= 0) after `now_ns` (a tml_now_ns reading), saturating
 * at MT_NO_DEADLINE: a timeout too long to reach never wraps into the
 * past. */
static inline int64_t mt_deadline_after(int64_t now_ns, int64_t timeout_ns) {
    MT_ASSERT(now_ns >= 0 && timeout_ns >= 0);
    return timeout_ns >= MT_NO_DEADLINE - now_ns ? MT_NO_DEADLINE : now_ns + timeout_ns;
}

/* C-level API (tests, and the process runtime behind tml_main_enter). */
int mt_runtime_new(unsigned workers, mt_runtime **out);
int mt_runtime_new_current_thread(mt_runtime **out);
void mt_runtime_shutdown(mt_runtime *rt);
void mt_runtime_set_shutdown_timeout(mt_runtime *rt, int64_t ns);
void mt_runtime_destroy(mt_runtime *rt);
int mt_runtime_spawn(mt_runtime *rt, const tml_task_vt *vt, const void *frame, tml_join **out);
int mt_runtime_block_on(mt_runtime *rt, const tml_task_vt *vt, const void *frame, void *out);

mt_runtime *mt_runtime_current(void);
mt_worker *mt_runtime_owner(mt_runtime *rt, tml_waker t);
bool mt_runtime_quiet(mt_runtime *rt);
void mt_runtime_check_quiet(mt_runtime *rt);
bool mt_block_on_leaf(tml_poll (*poll)(void *leaf, tml_cx *cx), void (*drop)(void *leaf), void *leaf);
void mt_runtime_visit(tml_waker t, void (*fn)(mt_runtime *rt, void *arg), void *arg);
_Noreturn void mt_panic_err(const char *what, int err);

/* -------------------------------------------------------- mt_deadlock.c */

void mt_deadlock_watch(mt_runtime *rt);
mt_atomic *mt_deadlock_activity(mt_runtime *rt);
void mt_deadlock_idle(mt_runtime *rt, mt_parker *p);


/* ----------------------------------------------------------- mt_stack.c */

void mt_stack_thread_begin(pal_stack_guard *g);
void mt_stack_thread_end(pal_stack_guard *g);

/* --------------------------------------------------------- async_sync.c */

void mt_waitlist_push(mt_waitlist *l, tml_waiter *w, tml_waker waker);
tml_waiter *mt_waitlist_pop(mt_waitlist *l);
void mt_waitlist_wake_all(mt_waitlist *l);

#endif /* MT_INTERNAL_H */
