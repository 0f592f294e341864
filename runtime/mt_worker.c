/* mt_worker.c - worker threads: the run loop, running one task, and the
 * two ways to schedule a token.
 *
 * Each worker is an OS thread running worker_main(). Finding work:
 *   1. every MT_FAIR_TICKS iterations: fire due timers, then try the
 *      global queue first, so tokens queued from outside (and overflow)
 *      are not starved by a worker that keeps its local queue busy;
 *   2. the local queue (FIFO);
 *   3. the local queue is empty: fire due timers (their wakes may refill
 *      it), the local queue again, then the global queue;
 *   4. nothing: park (mt_park.c protocol), or exit once `stopping`.
 * Stealing from other workers' local queues comes with the scheduler
 * issue, between steps 3 and 4. Source: Go's schedule() (runtime/proc.go:
 * the global queue every 61 ticks), Tokio's worker run loop.
 *
 * Running a task: SCHEDULED -> RUNNING, poll the frame with cx = {token,
 * worker}. Pending: RUNNING -> IDLE, or back to this worker's local queue
 * if a wake arrived during the poll (polled once more, never on two
 * workers at once: mt_task.c). Ready: free the slot (all tokens go
 * stale), complete the join block (wake joiners, unpark a block_on
 * caller), then decrement the runtime's live count, last: that count
 * reaching zero lets mt_runtime_destroy proceed, and the runtime stays
 * alive until this thread is joined anyway.
 *
 * Scheduling a token:
 *   - mt_worker_push_local: the worker's own thread; no lock, no atomic,
 *     no syscall. A full ring overflows to the global queue.
 *   - mt_worker_push_global: any thread; queue push, then unpark one
 *     parked worker if any (steps a-c of the parking protocol).
 * `current` (thread-local) is the worker running on this thread, NULL on
 * every other thread; wake routing and spawn use it (mt_runtime.c). */
#include <stdio.h>

#include "mt_internal.h"

#define MT_FAIR_TICKS 61 /* as Go's scheduler: prime, so it drifts over patterns */
#define TIMER_BATCH 64

static _Thread_local mt_worker *current;

/* Initialises worker `index` of `rt` with global id `id`; its slab's
 * generations start at `gen_floor`. Returns 0 or -errno. */
int mt_worker_init(mt_worker *w, mt_runtime *rt, unsigned index, unsigned id, uint32_t gen_floor) {
    MT_ASSERT(index < rt->nworkers && id < MT_MAX_WORKERS);
    int err = mt_parker_init(&w->parker);
    if (err)
        return err;
    w->rt = rt;
    w->index = index;
    w->id = id;
    w->tick = 0;
    mt_slab_init(&w->slab, gen_floor);
    mt_deque_init(&w->local);
    return 0;
}

/* Frees the worker's parker and slab (its thread has exited). Returns the
 * slab's generation floor for the next user of this id. */
uint32_t mt_worker_fini(mt_worker *w) {
    mt_parker_fini(&w->parker);
    return mt_slab_fini(&w->slab);
}

/* The worker running on the calling thread, or NULL. Threads: any. */
mt_worker *mt_worker_current(void) {
    return current;
}

/* Unparks one parked worker of `rt`, if any (steps b-c of the parking
 * protocol). Call after publishing work. Threads: any. */
void mt_worker_unpark_one(mt_runtime *rt) {
    unsigned i;
    if (mt_idle_any(&rt->idle) && mt_idle_pop(&rt->idle, &i))
        mt_parker_unpark(&rt->workers[i].parker);
}

/* Queues `t` (a SCHEDULED task of `rt`) on the global queue and unparks
 * a worker. Threads: any. Errors: panics when out of memory. */
void mt_worker_push_global(mt_runtime *rt, tml_waker t) {
    int err = mt_queue_push(&rt->global, t);
    if (err)
        mt_panic_err("scheduling a task", err);
    mt_worker_unpark_one(rt);
}

/* Queues `t` (a SCHEDULED task of w's runtime) on w's local queue.
 * Threads: w's own thread only. */
void mt_worker_push_local(mt_worker *w, tml_waker t) {
    MT_ASSERT(current == w);
    if (!mt_deque_push(&w->local, t))
        mt_worker_push_global(w->rt, t);
}

/* Moves every token of w's local queue to the global queue (w is about to
 * block its thread, so other workers must run them). Threads: w's own. */
void mt_worker_offload(mt_worker *w) {
    MT_ASSERT(current == w);
    tml_waker t;
    while (mt_deque_pop(&w->local, &t))
        mt_worker_push_global(w->rt, t);
}

/* Wakes the tasks of every due timer. */
static void fire_timers(mt_worker *w) {
    mt_timers *timers = &w->rt->timers;
    if (mt_timers_next(timers) == MT_NO_DEADLINE)
        return; /* nothing pending: spare the clock read */
    tml_waker due[TIMER_BATCH];
    size_t n;
    do {
        n = mt_timers_expire(timers, tml_now_ns(), due, TIMER_BATCH);
        for (size_t i = 0; i < n; i++)
            tml_wake(due[i]);
    } while (n == TIMER_BATCH);
}

/* Steps 1-3 of the module header: the next token to run, if any. */
static bool next_task(mt_worker *w, tml_waker *t) {
    mt_queue *global = &w->rt->global;
    if (++w->tick % MT_FAIR_TICKS == 0) {
        fire_timers(w);
        if (mt_queue_try_pop(global, t))
            return true;
    }
    if (mt_deque_pop(&w->local, t))
        return true;
    fire_timers(w);
    return mt_deque_pop(&w->local, t) || mt_queue_try_pop(global, t);
}

/* Polls the task of token `t` once, and completes it if it is Ready. */
static void run_task(mt_worker *w, tml_waker t) {
    mt_runtime *rt = w->rt;
    mt_slab *slab = &mt_runtime_owner(rt, t)->slab;
    mt_slot *slot = mt_slab_slot(slab, mt_token_slot(t));
    MT_ASSERT(slot); /* queued tokens are never stale */
    tml_join *task = mt_task_begin_poll(slot);
    tml_cx cx = {t, w};
    if (task->vt->poll(task->frame, &cx) == TML_PENDING) {
        if (mt_task_end_pending(slot))
            mt_worker_push_local(w, t);
        return;
    }
    mt_slab_free(slab, mt_token_slot(t));
    mt_join_complete(task);
    mt_runtime_task_done(rt);
}

/* Step 4: parks until there may be work, following the protocol in
 * mt_park.c. Returns false when the worker must exit. */
static bool park(mt_worker *w) {
    mt_runtime *rt = w->rt;
    mt_idle_announce(&rt->idle, w->index); /* 2 */
    bool stopping = mt_atomic_load_acquire(&rt->stopping); /* pairs with stop_workers */
    if (stopping || !mt_queue_is_empty(&rt->global)) { /* 3: locked re-check */
        mt_idle_cancel(&rt->idle, w->index);
        return !stopping;
    }
    int64_t deadline = mt_timers_arm(&rt->timers); /* 4 */
    mt_parker_park(&w->parker, deadline);
    mt_timers_disarm(&rt->timers, deadline); /* 5 */
    mt_idle_cancel(&rt->idle, w->index);
    return true;
}

static void *worker_main(void *arg) {
    mt_worker *w = arg;
    tml_waker t;
    current = w;
    for (;;) {
        if (next_task(w, &t))
            run_task(w, t);
        else if (!park(w))
            break;
    }
    current = NULL;
    return NULL;
}

/* Starts w's thread. Returns 0 or -errno from pthread_create. */
int mt_worker_start(mt_worker *w) {
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    if (err)
        return -err;
    char name[16];
    snprintf(name, sizeof name, "tml-worker-%u", w->id);
    pthread_setname_np(w->thread, name); /* best effort: only for debuggers */
    return 0;
}

/* Waits for w's thread to exit (after the runtime set `stopping` and
 * unparked it). */
void mt_worker_join(mt_worker *w) {
    pthread_join(w->thread, NULL);
}
