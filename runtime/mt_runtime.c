/* mt_runtime.c - the runtime object: creation and destruction, the
 * worker-id registry, spawn, block_on, wake routing, and the process
 * runtime behind tml_main_enter / tml_main_exit.
 *
 * Registry. A token carries an 8-bit worker id, not a runtime pointer, so
 * ids come from one process-wide table of MT_MAX_WORKERS entries: a
 * runtime takes a contiguous range of free ids when created and returns
 * it when destroyed. A thread that is not a worker of the token's runtime
 * finds the token's slab only through this table, under its read lock;
 * destroy takes the write lock to clear its entries before freeing the
 * slabs, so a racing wake either runs against live memory or finds no
 * entry. Each entry also keeps a generation floor: a new slab for that id
 * starts past every generation the previous one issued (mt_slab_fini), so
 * an old token never matches a slot of a later runtime. Hence a wake
 * after destroy is a no-op whether or not its id was reused.
 *
 * Wake routing (tml_wake). mt_task_notify's CAS decides whether the task
 * must be queued (idle -> scheduled: exactly once); then:
 *   - on a worker of the token's runtime (no registry lookup: the runtime
 *     lives while its workers run): the worker's own local queue if the
 *     task lives in its slab or no worker is parked: no lock, no syscall.
 *     Otherwise the global queue plus one unpark, so an idle worker gets
 *     the task (there is no stealing yet to rebalance later);
 *   - on any other thread: registry read lock, global queue, unpark one.
 *
 * Spawn. A worker spawns into its own slab and local queue; any other
 * thread into a round-robin slab and the global queue, unparking a
 * worker. block_on always uses the global queue: its caller blocks next.
 *
 * Blocking. mt_runtime_block_on spawns the task with a parker on the
 * caller's stack as the join block's blocker, and parks until completion
 * unparks it. Every blocking form (join, channel send and recv) goes
 * through it with mt_block_on_leaf: a two-word frame that polls a leaf
 * living on the blocked caller's stack. On a worker thread it first hands
 * the worker's local queue to the global queue so other workers run those
 * tasks; with a single worker nobody could, so it fails with -EDEADLK.
 *
 * Shutdown (mt_runtime_destroy), in order:
 *   1. set the CLOSING bit of `live`: spawns from threads outside the
 *      runtime fail from now on. The bit shares its word with the count,
 *      so a spawner's increment and destroy's setting of the bit are
 *      ordered by that word's one modification order: the spawner either
 *      sees the bit (and is refused) or was counted (and is waited for);
 *   2. wait until `live` is 0: every task has completed, including tasks
 *      that tasks spawned meanwhile (allowed: they come from inside);
 *   3. set `stopping`, unpark every worker, join the threads;
 *   4. clear the registry entries (write lock), free slabs, queue, timers.
 * A task that never completes makes step 2 wait forever: the shutdown
 * issue adds the deadline that drops stragglers (DESIGN.md section 6). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_internal.h"

#define GLOBAL_QUEUE_FIRST_CAP 256
#define CLOSING (UINT64_C(1) << 63) /* in rt->live, above the count */

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static mt_worker *registry[MT_MAX_WORKERS]; /* by worker id; registry_lock */
static uint32_t gen_floors[MT_MAX_WORKERS]; /* by worker id; write lock */

/* Set by tml_main_enter before the program starts other threads; read by
 * threads that are not workers (workers use their own runtime). */
static mt_runtime *process_rt;

/* Panics with "what: reason" for a negative errno `err` from the runtime
 * (used where an ABI function has no way to return the error). */
_Noreturn void mt_panic_err(const char *what, int err) {
    char buf[96], msg[224];
    const char *why;
    switch (err) {
    case -ESHUTDOWN: why = "the runtime is shutting down"; break;
    case -EDEADLK: why = "a blocking wait inside a task needs TML_WORKERS >= 2"; break;
    case -ENOSPC: why = "too many live tasks on one worker"; break;
    default: why = strerror_r(-err, buf, sizeof buf); break;
    }
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    tml_panic_at(NULL, 0, 0, msg);
}

/* ------------------------------------------------------------- registry */

static bool owns(const mt_runtime *rt, tml_waker t) {
    return mt_token_worker(t) - rt->id_base < rt->nworkers; /* unsigned wrap */
}

/* The worker whose slab holds t's task; t belongs to `rt`. */
mt_worker *mt_runtime_owner(mt_runtime *rt, tml_waker t) {
    MT_ASSERT(owns(rt, t));
    return &rt->workers[mt_token_worker(t) - rt->id_base];
}

/* First of `n` consecutive free ids, or -EAGAIN. Write lock held. */
static int free_ids(unsigned n) {
    unsigned run = 0;
    for (unsigned id = 0; id < MT_MAX_WORKERS; id++) {
        run = registry[id] ? 0 : run + 1;
        if (run == n)
            return (int)(id + 1 - n);
    }
    return -EAGAIN;
}

/* Takes ids for rt's workers and initialises them. Returns 0 or -errno. */
static int register_workers(mt_runtime *rt) {
    int err = 0;
    pthread_rwlock_wrlock(&registry_lock);
    int base = free_ids(rt->nworkers);
    if (base < 0) {
        err = base;
        goto out;
    }
    rt->id_base = (unsigned)base;
    for (unsigned k = 0; k < rt->nworkers; k++) {
        unsigned id = rt->id_base + k;
        /* a first use starts at 1, so a zeroed token is always stale */
        uint32_t floor = gen_floors[id] ? gen_floors[id] : 1;
        if ((err = mt_worker_init(&rt->workers[k], rt, k, id, floor)) < 0) {
            while (k-- > 0)
                gen_floors[rt->id_base + k] = mt_worker_fini(&rt->workers[k]);
            goto out;
        }
    }
    for (unsigned k = 0; k < rt->nworkers; k++)
        registry[rt->id_base + k] = &rt->workers[k];
out:
    pthread_rwlock_unlock(&registry_lock);
    return err;
}

/* Returns rt's ids and frees its workers (their threads have exited). */
static void unregister_workers(mt_runtime *rt) {
    pthread_rwlock_wrlock(&registry_lock);
    for (unsigned k = 0; k < rt->nworkers; k++) {
        registry[rt->id_base + k] = NULL;
        gen_floors[rt->id_base + k] = mt_worker_fini(&rt->workers[k]);
    }
    pthread_rwlock_unlock(&registry_lock);
}

/* ------------------------------------------------------ create, destroy */

/* Allocates the worker array, global queue, idle set, timers. */
static int init_core(mt_runtime *rt) {
    int err = -ENOMEM;
    rt->workers = aligned_alloc(_Alignof(mt_worker), rt->nworkers * sizeof *rt->workers);
    if (!rt->workers)
        goto fail_workers;
    memset(rt->workers, 0, rt->nworkers * sizeof *rt->workers);
    if ((err = mt_queue_init(&rt->global, GLOBAL_QUEUE_FIRST_CAP)) < 0)
        goto fail_queue;
    if ((err = mt_idle_init(&rt->idle, rt->nworkers)) < 0)
        goto fail_idle;
    mt_timers_init(&rt->timers);
    pthread_mutex_init(&rt->quiet_lock, NULL);
    pthread_cond_init(&rt->quiet_cond, NULL);
    return 0;
fail_idle:
    mt_queue_fini(&rt->global);
fail_queue:
    free(rt->workers);
fail_workers:
    return err;
}

static void fini_core(mt_runtime *rt) {
    pthread_cond_destroy(&rt->quiet_cond);
    pthread_mutex_destroy(&rt->quiet_lock);
    mt_timers_fini(&rt->timers);
    mt_idle_fini(&rt->idle);
    mt_queue_fini(&rt->global);
    free(rt->workers);
}

/* Shutdown step 3 for the first `n` workers, whose threads run. */
static void stop_workers(mt_runtime *rt, unsigned n) {
    mt_atomic_store_release(&rt->stopping, 1); /* pairs with the acquire in park */
    for (unsigned k = 0; k < n; k++)
        mt_parker_unpark(&rt->workers[k].parker);
    for (unsigned k = 0; k < n; k++)
        mt_worker_join(&rt->workers[k]);
}

static int start_workers(mt_runtime *rt) {
    for (unsigned k = 0; k < rt->nworkers; k++) {
        int err = mt_worker_start(&rt->workers[k]);
        if (err) {
            stop_workers(rt, k);
            return err;
        }
    }
    return 0;
}

/* Creates a runtime with `workers` (1..MT_MAX_WORKERS) worker threads,
 * running until mt_runtime_destroy. Returns 0 and the runtime in *out,
 * -EINVAL for a bad count, -EAGAIN when fewer than `workers` worker ids
 * are free (MT_MAX_WORKERS among all live runtimes), or -errno from
 * memory or thread creation. Threads: any. */
int mt_runtime_new(unsigned workers, mt_runtime **out) {
    if (workers == 0 || workers > MT_MAX_WORKERS)
        return -EINVAL;
    int err;
    mt_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->nworkers = workers;
    if ((err = init_core(rt)) < 0)
        goto fail_core;
    if ((err = register_workers(rt)) < 0)
        goto fail_register;
    if ((err = start_workers(rt)) < 0)
        goto fail_start;
    *out = rt;
    return 0;
fail_start:
    unregister_workers(rt);
fail_register:
    fini_core(rt);
fail_core:
    free(rt);
    return err;
}

/* Waits until no task is live (shutdown step 2). */
static void wait_quiet(mt_runtime *rt) {
    pthread_mutex_lock(&rt->quiet_lock);
    while ((mt_atomic_load_acquire(&rt->live) & ~CLOSING) != 0) /* pairs with task_done */
        pthread_cond_wait(&rt->quiet_cond, &rt->quiet_lock);
    pthread_mutex_unlock(&rt->quiet_lock);
}

/* A task completed (or a spawn was refused): drops the live count and
 * wakes wait_quiet when it reaches zero. Threads: any. */
void mt_runtime_task_done(mt_runtime *rt) {
    /* acq_rel: the task's effects happen before destroy goes on */
    if ((mt_atomic_fetch_add(&rt->live, (uint64_t)-1) & ~CLOSING) != 1)
        return;
    pthread_mutex_lock(&rt->quiet_lock); /* a waiter between check and wait holds it */
    pthread_cond_broadcast(&rt->quiet_cond);
    pthread_mutex_unlock(&rt->quiet_lock);
}

/* Shuts `rt` down (steps 1-4 of the module header) and frees it: waits
 * for every spawned task to complete, stops and joins the workers.
 * Afterwards a wake of any of its tokens is a no-op. Threads: any thread
 * but rt's workers; no spawn from outside may race with it except as
 * step 1 describes. */
void mt_runtime_destroy(mt_runtime *rt) {
    MT_ASSERT(rt);
    mt_worker *cur = mt_worker_current();
    MT_ASSERT(!cur || cur->rt != rt);
    mt_atomic_fetch_add(&rt->live, CLOSING); /* step 1: the bit was clear */
    wait_quiet(rt);
    stop_workers(rt, rt->nworkers);
    unregister_workers(rt);
    fini_core(rt);
    free(rt);
}

/* ---------------------------------------------------------------- spawn */

/* Spawns a copy of `frame` as a task of `rt`; `blocker` (NULL unless
 * block_on) is unparked at completion. Returns 0 and a handle holding one
 * reference, -ESHUTDOWN when a spawn from outside meets CLOSING, or
 * -ENOSPC / -ENOMEM when no slot can be had. */
static int spawn(mt_runtime *rt, const tml_task_vt *vt, const void *frame, mt_parker *blocker,
                 tml_join **out) {
    mt_worker *cur = mt_worker_current();
    bool inside = cur && cur->rt == rt;
    uint64_t live = mt_atomic_fetch_add(&rt->live, 1); /* shutdown step 1 */
    if (!inside && (live & CLOSING)) {
        mt_runtime_task_done(rt);
        return -ESHUTDOWN;
    }
    /* any slab will do from outside; relaxed-safe round robin */
    mt_worker *owner = inside ? cur : &rt->workers[mt_atomic_fetch_add(&rt->next_slab, 1) % rt->nworkers];
    uint32_t slot, gen;
    int err = mt_slab_alloc(&owner->slab, &slot, &gen);
    if (err) {
        mt_runtime_task_done(rt);
        return err;
    }
    tml_join *j = mt_join_new(vt, frame, blocker);
    mt_slab_start(&owner->slab, slot, j);
    tml_waker t = mt_token(owner->id, slot, gen);
    if (inside && !blocker)
        mt_worker_push_local(cur, t);
    else
        mt_worker_push_global(rt, t);
    *out = j;
    return 0;
}

/* Spawns a copy of `frame` (vt->frame_size bytes) on `rt`. Returns 0 and
 * in *out a join handle with one reference the caller owns, or -errno as
 * spawn() says. Threads: any. */
int mt_runtime_spawn(mt_runtime *rt, const tml_task_vt *vt, const void *frame, tml_join **out) {
    MT_ASSERT(rt && vt && frame && out);
    return spawn(rt, vt, frame, NULL, out);
}

/* Runs a copy of `frame` as a task of `rt` and blocks the calling thread
 * until it completes, then moves its result to `out` (NULL allowed when
 * result_size is 0). Returns 0, -EDEADLK on a worker of a one-worker
 * `rt`, or -errno as spawn() says. Threads: any. */
int mt_runtime_block_on(mt_runtime *rt, const tml_task_vt *vt, const void *frame, void *out) {
    MT_ASSERT(rt && vt && frame);
    mt_worker *cur = mt_worker_current();
    bool inside = cur && cur->rt == rt;
    if (inside && rt->nworkers == 1)
        return -EDEADLK;
    mt_parker parker;
    tml_join *j;
    int err = mt_parker_init(&parker);
    if (err)
        return err;
    if ((err = spawn(rt, vt, frame, &parker, &j)) == 0) {
        if (inside)
            mt_worker_offload(cur);
        bool notified = mt_parker_park(&parker, MT_NO_DEADLINE); /* only completion unparks it */
        MT_ASSERT(notified);
        mt_join_take(j, out);
        tml_join_release(j);
    }
    mt_parker_fini(&parker);
    return err;
}

/* The runtime of the calling thread: its worker's, else the process
 * runtime. Errors: panics when there is none. */
mt_runtime *mt_runtime_current(void) {
    mt_worker *cur = mt_worker_current();
    mt_runtime *rt = cur ? cur->rt : process_rt;
    if (!rt)
        tml_panic_at(NULL, 0, 0, "no TML runtime: tml_main_enter was not called");
    return rt;
}

/* A frame that polls one leaf future living on a blocked caller's stack. */
typedef struct leaf_frame {
    tml_poll (*poll)(void *leaf, tml_cx *cx);
    void *leaf;
} leaf_frame;

static tml_poll leaf_frame_poll(void *frame, tml_cx *cx) {
    leaf_frame *f = frame;
    return f->poll(f->leaf, cx);
}

static const tml_task_vt leaf_vt = {leaf_frame_poll, sizeof(leaf_frame), 0, 0, NULL, "blocking wait"};

/* Blocks the calling thread until poll(leaf) returns Ready, polling it as
 * a task of the current runtime. The leaf stays on the caller's stack,
 * which outlives the task. Errors: panics as tml_block_on. */
void mt_block_on_leaf(tml_poll (*poll)(void *leaf, tml_cx *cx), void *leaf) {
    leaf_frame frame = {poll, leaf};
    tml_block_on(&leaf_vt, &frame, NULL);
}

/* ------------------------------------------------------------------ ABI */

/* Schedules t's task on `rt` (t belongs to it); `cur` is the calling
 * worker of `rt`, or NULL on any other thread. */
static void wake_in(mt_runtime *rt, tml_waker t, mt_worker *cur) {
    mt_worker *owner = mt_runtime_owner(rt, t);
    mt_slot *slot = mt_slab_slot(&owner->slab, mt_token_slot(t));
    if (!slot || !mt_task_notify(slot, mt_token_gen(t)))
        return;
    if (cur && (cur == owner || !mt_idle_any(&rt->idle)))
        mt_worker_push_local(cur, t);
    else
        mt_worker_push_global(rt, t);
}

void tml_wake(tml_waker t) {
    mt_worker *cur = mt_worker_current();
    if (cur && owns(cur->rt, t)) {
        wake_in(cur->rt, t, cur);
        return;
    }
    pthread_rwlock_rdlock(&registry_lock);
    mt_worker *owner = registry[mt_token_worker(t)];
    if (owner)
        wake_in(owner->rt, t, NULL);
    pthread_rwlock_unlock(&registry_lock);
}

tml_join *tml_spawn(const tml_task_vt *vt, const void *frame) {
    tml_join *j;
    int err = mt_runtime_spawn(mt_runtime_current(), vt, frame, &j);
    if (err)
        mt_panic_err("spawn", err);
    return j;
}

void tml_block_on(const tml_task_vt *vt, const void *frame, void *out) {
    int err = mt_runtime_block_on(mt_runtime_current(), vt, frame, out);
    if (err)
        mt_panic_err("block_on", err);
}

/* TML_WORKERS, else the online cores; clamped to MT_MAX_WORKERS (token
 * worker ids are 8 bits). Errors: panics on a value that is not a
 * positive integer. */
static unsigned workers_from_env(void) {
    const char *s = getenv("TML_WORKERS");
    long n;
    if (s) {
        char *end;
        errno = 0;
        n = strtol(s, &end, 10);
        if (end == s || *end != '\0' || errno || n <= 0)
            tml_panic_at(NULL, 0, 0, "TML_WORKERS must be a positive integer");
    } else {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
            n = 1;
    }
    return n > (long)MT_MAX_WORKERS ? MT_MAX_WORKERS : (unsigned)n;
}

void tml_main_enter(int argc, char **argv) {
    (void)argc; /* reserved for runtime flags */
    (void)argv;
    MT_ASSERT(!process_rt);
    int err = mt_runtime_new(workers_from_env(), &process_rt);
    if (err)
        mt_panic_err("cannot start the runtime", err);
}

int tml_main_exit(int status) {
    MT_ASSERT(process_rt);
    mt_runtime_destroy(process_rt);
    process_rt = NULL;
    fflush(stdout);
    return status;
}
