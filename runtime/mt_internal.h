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
 *   live    a runtime's count of spawned tasks that have not completed.
 * Worker ids are unique among live runtimes (mt_runtime.c's registry), so
 * a token can always be routed to its slab, or found stale. */
#ifndef MT_INTERNAL_H
#define MT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_atomic.h"
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

typedef struct mt_runtime mt_runtime;
typedef struct mt_worker mt_worker;

static inline tml_waker mt_token(unsigned worker_id, uint32_t slot, uint32_t gen) {
    return (uint64_t)worker_id << 56 | (uint64_t)slot << 32 | gen;
}
static inline unsigned mt_token_worker(tml_waker t) { return (unsigned)(t >> 56); }
static inline uint32_t mt_token_slot(tml_waker t) { return (uint32_t)(t >> 32) & (MT_MAX_SLOTS - 1); }
static inline uint32_t mt_token_gen(tml_waker t) { return (uint32_t)t; }

/* ------------------------------------------------------------ mt_park.c */

/* A one-thread parking spot: park() sleeps until unpark() or a deadline.
 * The notification is sticky: an unpark before the park is not lost. */
typedef struct mt_parker {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool notified;       /* under lock */
} mt_parker;

int mt_parker_init(mt_parker *p);
void mt_parker_fini(mt_parker *p);
bool mt_parker_park(mt_parker *p, int64_t deadline_ns);
void mt_parker_unpark(mt_parker *p);

/* The parked workers of one runtime (see the protocol in mt_park.c). */
typedef struct mt_idle {
    pthread_mutex_t lock;
    unsigned *stack;   /* worker indices, most recently parked last; lock */
    unsigned len;      /* lock */
    mt_atomic parked;  /* mirrors len, for wakers that do not take the lock */
} mt_idle;

int mt_idle_init(mt_idle *idle, unsigned nworkers);
void mt_idle_fini(mt_idle *idle);
void mt_idle_announce(mt_idle *idle, unsigned index);
bool mt_idle_cancel(mt_idle *idle, unsigned index);
bool mt_idle_any(mt_idle *idle);
bool mt_idle_pop(mt_idle *idle, unsigned *index);

/* ----------------------------------------------------------- mt_queue.c */

/* The global (injector) queue: FIFO of tokens, any thread. */
typedef struct mt_queue {
    pthread_mutex_t lock;
    tml_waker *buf;   /* ring of cap tokens; lock */
    size_t cap, head, len;
    mt_atomic size;   /* == len, read without the lock */
} mt_queue;

int mt_queue_init(mt_queue *q, size_t initial_cap);
void mt_queue_fini(mt_queue *q);
int mt_queue_push(mt_queue *q, tml_waker t);
bool mt_queue_try_pop(mt_queue *q, tml_waker *out);
bool mt_queue_is_empty(mt_queue *q);

/* A worker's local run queue: a FIFO ring only its owner touches. */
#define MT_DEQUE_CAP 256u /* a power of two */
typedef struct mt_deque {
    uint32_t head, tail; /* free-running; tail - head <= MT_DEQUE_CAP */
    tml_waker buf[MT_DEQUE_CAP];
} mt_deque;

void mt_deque_init(mt_deque *d);
bool mt_deque_push(mt_deque *d, tml_waker t);
bool mt_deque_pop(mt_deque *d, tml_waker *out);

/* ------------------------------------------------------------ mt_task.c */

/* Task state bits, in the low 32 bits of a slot's word. 0 = idle: the
 * task returned Pending and waits for a wake. */
enum {
    MT_TASK_IDLE = 0,
    MT_TASK_SCHEDULED = 1u << 0, /* its token sits in exactly one run queue */
    MT_TASK_RUNNING = 1u << 1,   /* a worker is polling it */
    MT_TASK_NOTIFIED = 1u << 2,  /* woken while running: poll once more */
    MT_TASK_COMPLETE = 1u << 3   /* returned Ready (or slot free) */
};

typedef struct mt_slot {
    mt_atomic word;     /* generation << 32 | MT_TASK_* bits */
    tml_join *task;     /* the task's block while the slot is in use */
    uint32_t next_free; /* free-list link; slab lock */
} mt_slot;

#define MT_SLAB_FIRST_SHIFT 6 /* chunk 0 holds 64 slots; chunk k>0 2^(5+k) */
#define MT_SLAB_CHUNKS (MT_SLOT_BITS - MT_SLAB_FIRST_SHIFT + 1)

/* A worker's task slab: slots in chunks that never move. */
typedef struct mt_slab {
    mt_atomic chunks[MT_SLAB_CHUNKS]; /* mt_slot *, published once */
    pthread_mutex_t lock;             /* guards the fields below */
    uint32_t free_head;               /* MT_MAX_SLOTS: empty */
    uint32_t fresh;                   /* slots [0, fresh) were handed out */
    uint32_t gen_floor;               /* generation of never-used slots */
} mt_slab;

void mt_slab_init(mt_slab *s, uint32_t gen_floor);
uint32_t mt_slab_fini(mt_slab *s);
int mt_slab_alloc(mt_slab *s, uint32_t *slot, uint32_t *gen);
void mt_slab_start(mt_slab *s, uint32_t slot, tml_join *task);
mt_slot *mt_slab_slot(mt_slab *s, uint32_t slot);
void mt_slab_free(mt_slab *s, uint32_t slot);

bool mt_task_notify(mt_slot *s, uint32_t gen);
tml_join *mt_task_begin_poll(mt_slot *s);
bool mt_task_end_pending(mt_slot *s);

/* FIFO list of waiting leaves (async_sync.c), under its owner's lock. */
typedef struct mt_waitlist {
    tml_waiter *head, *tail;
} mt_waitlist;

/* A task's heap block; tml_join handles point at it. */
struct tml_join {
    mt_atomic refs;          /* the live task's + one per handle */
    mt_atomic done;          /* 1 once the task returned Ready */
    pthread_mutex_t lock;    /* guards waiters and claimed */
    mt_waitlist waiters;     /* tml_join_fut.w of awaiting tasks */
    bool claimed;            /* the result was moved out */
    mt_parker *blocker;      /* block_on caller to unpark at completion */
    const tml_task_vt *vt;
    max_align_t frame[];     /* vt->frame_size bytes */
};

tml_join *mt_join_new(const tml_task_vt *vt, const void *frame, mt_parker *blocker);
void mt_join_complete(tml_join *j);
int32_t mt_join_take(tml_join *j, void *out);

/* ----------------------------------------------------------- mt_timer.c */

typedef struct mt_timer {
    int64_t deadline_ns;
    tml_waker waker;
} mt_timer;

/* Pending timers of one runtime: a binary min-heap on deadline. */
typedef struct mt_timers {
    pthread_mutex_t lock;
    mt_timer *heap;     /* lock */
    size_t len, cap;    /* lock */
    int64_t armed_ns;   /* a parked worker wakes by then; lock */
    mt_atomic next_ns;  /* heap[0].deadline_ns or MT_NO_DEADLINE */
} mt_timers;

void mt_timers_init(mt_timers *t);
void mt_timers_fini(mt_timers *t);
int mt_timers_insert(mt_timers *t, int64_t deadline_ns, tml_waker waker, bool *unpark);
size_t mt_timers_expire(mt_timers *t, int64_t now_ns, tml_waker *out, size_t max);
int64_t mt_timers_next(const mt_timers *t);
int64_t mt_timers_arm(mt_timers *t);
void mt_timers_disarm(mt_timers *t, int64_t deadline_ns);

/* ---------------------------------------------------------- mt_worker.c */

struct mt_worker {
    _Alignas(64) mt_runtime *rt; /* own cache lines: no false sharing */
    unsigned index;              /* position in rt->workers */
    unsigned id;                 /* global worker id: the tokens' top byte */
    uint32_t tick;               /* loop iterations; paces fairness checks */
    pthread_t thread;
    mt_slab slab;
    mt_parker parker;
    mt_deque local;
};

int mt_worker_init(mt_worker *w, mt_runtime *rt, unsigned index, unsigned id, uint32_t gen_floor);
uint32_t mt_worker_fini(mt_worker *w);
int mt_worker_start(mt_worker *w);
void mt_worker_join(mt_worker *w);
mt_worker *mt_worker_current(void);
void mt_worker_push_local(mt_worker *w, tml_waker t);
void mt_worker_push_global(mt_runtime *rt, tml_waker t);
void mt_worker_unpark_one(mt_runtime *rt);
void mt_worker_offload(mt_worker *w);

/* --------------------------------------------------------- mt_runtime.c */

struct mt_runtime {
    mt_worker *workers;     /* nworkers, ids id_base .. id_base+nworkers-1 */
    unsigned nworkers;
    unsigned id_base;
    mt_queue global;
    mt_timers timers;
    mt_idle idle;
    mt_atomic live;         /* CLOSING bit | spawned tasks not complete */
    mt_atomic stopping;     /* 1: workers exit once idle */
    mt_atomic next_slab;    /* round robin for spawns from outside */
    pthread_mutex_t quiet_lock;
    pthread_cond_t quiet_cond; /* signalled when live drops to 0 */
};

/* C-level API (tests, and the process runtime behind tml_main_enter). */
int mt_runtime_new(unsigned workers, mt_runtime **out);
void mt_runtime_destroy(mt_runtime *rt);
int mt_runtime_spawn(mt_runtime *rt, const tml_task_vt *vt, const void *frame, tml_join **out);
int mt_runtime_block_on(mt_runtime *rt, const tml_task_vt *vt, const void *frame, void *out);

mt_runtime *mt_runtime_current(void);
mt_worker *mt_runtime_owner(mt_runtime *rt, tml_waker t);
void mt_runtime_task_done(mt_runtime *rt);
void mt_block_on_leaf(tml_poll (*poll)(void *leaf, tml_cx *cx), void *leaf);
_Noreturn void mt_panic_err(const char *what, int err);

/* --------------------------------------------------------- async_sync.c */

void mt_waitlist_push(mt_waitlist *l, tml_waiter *w, tml_waker waker);
tml_waiter *mt_waitlist_pop(mt_waitlist *l);
void mt_waitlist_wake_all(mt_waitlist *l);

#endif /* MT_INTERNAL_H */
