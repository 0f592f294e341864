/* mt_runtime.c - the runtime object: creation (N workers, or current-
 * thread), shutdown and destruction, the worker-id registry, spawn,
 * block_on and wake routing. (The process runtime behind tml_main_enter
 * / tml_main_exit, its environment and metrics: mt_main.c.)
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
 * Wake routing (tml_wake; tml_join_abort too, which adds the ABORTED bit
 * and never takes the first shortcut). The running task waking itself
 * (yield, budget) only sets its worker's `self_woken` (plain store).
 * Otherwise mt_task_signal's CAS decides whether the task must be queued (idle ->
 * scheduled: exactly once); then:
 *   - on a worker of the token's runtime (no registry lookup: the runtime
 *     lives while its workers run): that worker's LIFO slot, whichever
 *     slab the task lives in (mt_worker_schedule): no lock, no syscall;
 *   - on any other thread: registry read lock, global queue, N1-N3.
 *
 * Spawn. A worker spawns into its own slab and its LIFO slot; any other
 * thread into a round-robin slab and the global queue, notifying. A
 * blocking wait inside a task (block_on from a worker) uses the global
 * queue too: its caller blocks next, after handing over its local queue.
 *
 * Current-thread runtime (mt_runtime_new_current_thread): one worker
 * record, no thread. block_on drives the loop on the calling thread
 * (mt_worker_step, parking in mt_queue_pop: mt_worker_wait) until its
 * task completes; spawns from other threads queue up and run while some
 * block_on (or shutdown) drives. Drivers take turns (`drive_lock`).
 *
 * Quiescence (no task live). Every worker counts the tasks it spawned and
 * those it completed (its own cache line, plain stores, completed with
 * release); spawns from outside count in `foreign` (an RMW, rare). A
 * checker reads all `completed` (acquire), then `foreign` and all
 * `spawned`: a task counted as completed had its spawn counted before,
 * so equal sums mean no task was live at the first read, and none can be
 * spawned afterwards (no live task remains to spawn one, and shutdown
 * refuses spawns from outside). No shared counter is touched per task:
 * one written by every spawn and completion would bounce between cores.
 * Who checks: the thread shutting down, then every worker that parks
 * after it (P1 reports CLOSED: mt_park.c); the last task's completer
 * always parks afterwards, so one of them sees zero. Ordering: the
 * shutdown's close and every P1 are RMWs on the idle word, so either a
 * worker's P1 comes after the close (and it checks), or the close
 * reads-from a chain through that P1 and the shutdown's own check sees
 * the worker's counts.
 *
 * Shutdown (mt_runtime_shutdown; destroy starts with it), in order:
 *   1. set the CLOSING bit of `foreign`: spawns from threads outside the
 *      runtime fail from now on (the spawner's CAS and this RMW are
 *      ordered by that word's one modification order);
 *   2. close the idle word (mt_idle_close) and wait for quiescence; a
 *      current-thread runtime drives its loop until then instead;
 *   3. set `stopping`, unpark every worker, join the threads;
 * and destroy goes on with
 *   4. clear the registry entries (write lock), free slabs, queue, timers.
 * Step 2 also cancels every I/O wait (io_reactor_cancel_all: reads,
 * writes, accepts and connects end with TML_NET_CANCELLED, and later ones
 * too) and waits at most `shutdown_timeout_ns` (DESIGN.md section 6;
 * TML_SHUTDOWN_TIMEOUT_MS for the process runtime). The deadline is
 * computed saturating (mt_deadline_after): a timeout too long to reach
 * means no deadline, never one wrapped into the past (a timed wait then
 * failed at once with EINVAL, and the wait loop spun holding its lock).
 * A current-thread runtime's driver sleeps until its next timer
 * (mt_worker_wait), so shutdown arms a timer at the deadline whose wake
 * goes to no task. Past the deadline, step 3 stops the workers at their
 * next fairness tick (stopping = 2; blocked workers: "Blocking waits"),
 * and
 * 3b. drops every task still live (mt_slab_abandon: the frame's drop
 *     releases what it holds, joiners get TML_JOIN_NO_RESULT) and counts
 *     them on stderr.
 * A task stuck in one endless poll (a loop with no await), or in a wait
 * that does not go through block_on (a blocking sleep or TCP call), cannot
 * be stopped: joining its worker waits for it, as in Tokio.
 * Rejected: one atomic count of live tasks (the previous version: two
 * RMWs per task on one line that all workers write).
 *
 * Blocking waits (mt_runtime_block_on on a threaded runtime: `h.join()`,
 * `rx.recv()`, `m.lock()`... without await, in a task or on any other
 * thread). The caller parks; its task (for a leaf, mt_block_on_leaf's
 * frame, polling a leaf on the caller's stack) runs on the workers and
 * unparks it on completion. A worker parked so is still inside a poll.
 * From its spawn until it wakes, the caller's record (block_wait, on its
 * stack) sits in the process-wide list `waits`. Past the deadline nothing
 * would wake it, and joining its worker would hang, so step 3 goes:
 *   a. set stopping = 2 under waits_lock: a blocking wait that would
 *      start after this fails at once with -ECANCELED instead;
 *   b. unpark the workers; join, one at a time, every worker not parked
 *      in a blocking wait (each stops at its next fairness tick), until,
 *      under waits_lock, only blocked workers are left. Now no thread
 *      polls a task of the runtime: a blocked worker leaves its park only
 *      when its task completes, which takes a poll;
 *   c. still under waits_lock, drop the unfinished task of each of the
 *      runtime's waits (cancel_wait: its slot is marked free, and
 *      mt_join_abandon runs its frame's drop, which takes the leaf off
 *      every wait list, and completes it), which unparks the caller.
 *      block_on reads TML_JOIN_NO_RESULT and returns -ECANCELED; each
 *      blocking form turns that into its operation's error for a source
 *      that is gone, or panics where it has none (rt.h). A blocked worker
 *      returns to the poll that blocked, then exits without taking
 *      another task: the queues may still hold the dropped tasks, so
 *      block_on sets its tick to the fairness check, which sees
 *      stopping = 2 (mt_worker.c, step 1);
 *   d. join the workers left; then 3b.
 * The ended waits are not counted among the dropped tasks: they are the
 * runtime's helpers, and the task that blocked goes on.
 * Rejected: detaching the blocked threads, as Tokio's shutdown_timeout
 * leaks its blocking threads: their stacks hold leaves linked into wait
 * lists, and a worker that is never joined keeps the whole runtime, so
 * destroy could free nothing; dropping the waits' tasks before the other
 * workers stopped (one may be polling the very task). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_internal.h"

#define GLOBAL_QUEUE_CAP 4096                 /* ring cells; spills beyond */
#define CLOSING (UINT64_C(1) << 63)            /* in rt->foreign, above the count */

static pal_rwlock registry_lock = PAL_RWLOCK_INIT;
static mt_worker *registry[MT_MAX_WORKERS]; /* by worker id; registry_lock */
static uint32_t gen_floors[MT_MAX_WORKERS]; /* by worker id; write lock */

/* A thread parked in mt_runtime_block_on of a threaded runtime ("Blocking
 * waits"): on its stack, in `waits` from the spawn of its task until it
 * wakes. Process-wide rather than per runtime, so that a caller waking
 * after its runtime was destroyed touches no memory of it. */
typedef struct block_wait {
    struct block_wait *prev, *next; /* waits_lock */
    mt_runtime *rt;
    tml_join *task;     /* the task it waits for; one handle reference */
    mt_worker *worker;  /* the worker of rt it blocks, or NULL */
} block_wait;

static pal_mutex waits_lock = PAL_MUTEX_INIT;
static block_wait *waits; /* every runtime's; waits_lock */

/* Panics with "what: reason" for a negative errno `err` from the runtime
 * (used where an ABI function has no way to return the error). */
_Noreturn void mt_panic_err(const char *what, int err) {
    char buf[96], msg[224];
    const char *why;
    switch (err) {
    case -ESHUTDOWN: why = "the runtime is shutting down"; break;
    case -EDEADLK: why = "a blocking wait inside a task needs TML_WORKERS >= 2"; break;
    case -ECANCELED: why = "the shutdown deadline ended the wait"; break;
    case -ENOSPC: why = "too many live tasks on one worker"; break;
    default: why = pal_strerror(-err, buf, sizeof buf); break;
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
    pal_rwlock_wrlock(&registry_lock);
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
    pal_rwlock_wrunlock(&registry_lock);
    return err;
}

/* Returns rt's ids and frees its workers (their threads have exited). */
static void unregister_workers(mt_runtime *rt) {
    pal_rwlock_wrlock(&registry_lock);
    for (unsigned k = 0; k < rt->nworkers; k++) {
        registry[rt->id_base + k] = NULL;
        gen_floors[rt->id_base + k] = mt_worker_fini(&rt->workers[k]);
    }
    pal_rwlock_wrunlock(&registry_lock);
}

/* ------------------------------------------------------ create, destroy */

/* Allocates the worker array, global queue, idle set, timers, block pool. */
static int init_core(mt_runtime *rt) {
    int err = -ENOMEM;
    rt->workers = pal_aligned_alloc(_Alignof(mt_worker), rt->nworkers * sizeof *rt->workers);
    if (!rt->workers)
        goto fail_workers;
    memset(rt->workers, 0, rt->nworkers * sizeof *rt->workers);
    if ((err = mt_queue_init(&rt->global, GLOBAL_QUEUE_CAP)) < 0)
        goto fail_queue;
    if ((err = mt_idle_init(&rt->idle, rt->nworkers)) < 0)
        goto fail_idle;
    if ((err = io_reactor_new(&rt->reactor)) < 0)
        goto fail_reactor;
    mt_timers_init(&rt->timers);
    mt_block_pool_init(&rt->blocks);
    pal_mutex_init(&rt->quiet_lock);
    if ((err = pal_cond_init(&rt->quiet_cond)) < 0) /* timed by shutdown */
        goto fail_cond;
    pal_mutex_init(&rt->drive_lock);
    return 0;
fail_cond:
    pal_mutex_fini(&rt->quiet_lock);
    mt_block_pool_fini(&rt->blocks);
    mt_timers_fini(&rt->timers);
    io_reactor_destroy(rt->reactor);
fail_reactor:
    mt_idle_fini(&rt->idle);
fail_idle:
    mt_queue_fini(&rt->global);
fail_queue:
    pal_aligned_free(rt->workers);
fail_workers:
    return err;
}

static void fini_core(mt_runtime *rt) {
    pal_mutex_fini(&rt->drive_lock);
    pal_cond_fini(&rt->quiet_cond);
    pal_mutex_fini(&rt->quiet_lock);
    mt_block_pool_fini(&rt->blocks);
    mt_timers_fini(&rt->timers);
    io_reactor_destroy(rt->reactor);
    mt_idle_fini(&rt->idle);
    mt_queue_fini(&rt->global);
    pal_aligned_free(rt->workers);
}

/* Shutdown step 3 for the first `n` workers, whose threads run: each
 * exits once it runs out of work. */
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

/* Creates a runtime of `workers` workers; with `threaded` false, one
 * worker record and no thread. */
static int create(unsigned workers, bool threaded, mt_runtime **out) {
    int err;
    mt_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->nworkers = workers;
    rt->threaded = threaded;
    rt->shutdown_timeout_ns = MT_SHUTDOWN_TIMEOUT_NS;
    mt_atomic_store(&rt->activity, workers); /* relaxed: before the threads; each worker is active */
    if ((err = init_core(rt)) < 0)
        goto fail_core;
    if ((err = register_workers(rt)) < 0)
        goto fail_register;
    if (threaded && (err = start_workers(rt)) < 0)
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

/* Creates a runtime with `workers` (1..MT_MAX_WORKERS) worker threads,
 * running until mt_runtime_destroy. Returns 0 and the runtime in *out,
 * -EINVAL for a bad count, -EAGAIN when fewer than `workers` worker ids
 * are free (MT_MAX_WORKERS among all live runtimes), or -errno from
 * memory or thread creation. Threads: any. */
int mt_runtime_new(unsigned workers, mt_runtime **out) {
    if (workers == 0 || workers > MT_MAX_WORKERS)
        return -EINVAL;
    return create(workers, true, out);
}

/* Creates a current-thread runtime: no worker thread; its tasks run on
 * the thread inside mt_runtime_block_on (or mt_runtime_shutdown), one
 * such driver at a time. Returns 0 and *out, -EAGAIN when no worker id is
 * free, or -errno. Threads: any. */
int mt_runtime_new_current_thread(mt_runtime **out) {
    return create(1, false, out);
}

/* Shutdown step 2's check: true when no task is live (see "Quiescence").
 * Threads: any. */
bool mt_runtime_quiet(mt_runtime *rt) {
    uint64_t completed = 0, spawned = 0;
    for (unsigned k = 0; k < rt->nworkers; k++) /* pairs with run_task's release */
        completed += mt_atomic_load_acquire(&rt->workers[k].stats.completed);
    /* relaxed, all: ordered after the acquires above; see "Quiescence" */
    spawned = mt_atomic_load(&rt->foreign) & ~CLOSING;
    for (unsigned k = 0; k < rt->nworkers; k++)
        spawned += mt_atomic_load(&rt->workers[k].stats.spawned);
    MT_ASSERT(spawned >= completed);
    return spawned == completed;
}

/* Wakes the thread waiting for quiescence if no task is live. Called by
 * workers that park while the runtime closes. Threads: any. */
void mt_runtime_check_quiet(mt_runtime *rt) {
    pal_mutex_lock(&rt->quiet_lock); /* a waiter between check and wait holds it */
    if (mt_runtime_quiet(rt))
        pal_cond_broadcast(&rt->quiet_cond);
    pal_mutex_unlock(&rt->quiet_lock);
}

/* Runs rt's loop on the calling thread (a current-thread runtime's
 * driver) until `done(arg)` holds. `done` is asked again between a step
 * that found nothing to run and the wait: the step may have fired the
 * timer that makes it true (drive_quiet's alarm, whose wake runs
 * nothing), and the wait after it would have no deadline left. drive_lock
 * held. */
static void drive(mt_runtime *rt, bool (*done)(void *), void *arg) {
    mt_worker *w = &rt->workers[0];
    mt_worker_set_current(w);
    while (!done(arg)) {
        if (!mt_worker_step(w) && !done(arg))
            mt_worker_wait(w);
    }
    mt_worker_set_current(NULL);
}

static bool done_pred(void *j) { return mt_join_done(j); }

/* How long mt_runtime_shutdown waits for unfinished tasks before it
 * drops them (ns, >= 0; default MT_SHUTDOWN_TIMEOUT_NS; a value too long
 * to reach means no limit). Threads: before shutdown starts. */
void mt_runtime_set_shutdown_timeout(mt_runtime *rt, int64_t ns) {
    MT_ASSERT(rt && ns >= 0);
    rt->shutdown_timeout_ns = ns;
}

/* Step 2 for a threaded runtime: waits until no task is live or the
 * clock passes `deadline` (MT_NO_DEADLINE: no limit). Returns whether no
 * task is live. */
static bool wait_quiet(mt_runtime *rt, int64_t deadline) {
    int err = 0;
    pal_mutex_lock(&rt->quiet_lock);
    while (!mt_runtime_quiet(rt) && err != -ETIMEDOUT) {
        err = pal_cond_wait_until(&rt->quiet_cond, &rt->quiet_lock, deadline);
        MT_ASSERT(err == 0 || err == -ETIMEDOUT); /* EINVAL: a bad deadline, a busy loop */
    }
    bool quiet = mt_runtime_quiet(rt);
    pal_mutex_unlock(&rt->quiet_lock);
    return quiet;
}

/* drive()'s stop condition in a current-thread runtime's shutdown. */
typedef struct quiet_until {
    mt_runtime *rt;
    int64_t deadline;
} quiet_until;

static bool quiet_or_late(void *arg) {
    quiet_until *u = arg;
    return mt_runtime_quiet(u->rt) || tml_now_ns() >= u->deadline;
}

/* Step 2 for a current-thread runtime: drives its loop on this thread
 * until no task is live or the clock passes `deadline`. The driver
 * sleeps until its next timer or a task from another thread
 * (mt_worker_wait), so a timer armed at the deadline ends its last
 * sleep; the wake it fires names generation 0 of slot 0, which no task
 * ever holds (mt_task.c never hands out generation 0). Returns whether no
 * task is live. drive_lock held. */
static bool drive_quiet(mt_runtime *rt, int64_t deadline) {
    tml_timer_node alarm = {.where = -1};
    mt_timers_insert(&rt->timers, &alarm, deadline, mt_token(rt->workers[0].id, 0, 0)); /* we are the driver */
    drive(rt, quiet_or_late, &(quiet_until){rt, deadline});
    mt_timers_cancel(&rt->timers, &alarm); /* a no-op once it fired */
    return mt_runtime_quiet(rt);
}

/* Whether `w` is parked in a blocking wait. waits_lock held. */
static bool blocked(const mt_worker *w) {
    for (const block_wait *b = waits; b; b = b->next) {
        if (b->worker == w)
            return true;
    }
    return false;
}

/* Step c of "Blocking waits": drops b's task unless it completed, which
 * unparks b's thread. Threads: the shutting-down thread, waits_lock held,
 * no thread polling a task of `rt`. */
static void cancel_wait(mt_runtime *rt, block_wait *b) {
    tml_join *j = b->task;
    if (mt_join_done(j))
        return; /* its thread takes the result */
    /* no worker pops a queue any more (step b), so a wake that queued it
     * just before never runs it */
    mt_slab_retire(&mt_runtime_owner(rt, j->token)->slab, mt_token_slot(j->token), mt_token_gen(j->token));
    mt_join_abandon(j, TML_JOIN_NO_RESULT);
}

/* Step 3 past the deadline: steps a-d of "Blocking waits". */
static void stop_late(mt_runtime *rt) {
    bool joined[MT_MAX_WORKERS] = {false};
    pal_mutex_lock(&waits_lock); /* a */
    mt_atomic_store_release(&rt->stopping, 2); /* pairs with the acquire in park */
    pal_mutex_unlock(&waits_lock);
    for (unsigned k = 0; k < rt->nworkers; k++) /* b */
        mt_parker_unpark(&rt->workers[k].parker);
    for (;;) {
        pal_mutex_lock(&waits_lock);
        unsigned k = 0;
        while (k < rt->nworkers && (joined[k] || blocked(&rt->workers[k])))
            k++;
        if (k == rt->nworkers)
            break; /* waits_lock held: every worker left is blocked */
        pal_mutex_unlock(&waits_lock);
        mt_worker_join(&rt->workers[k]);
        joined[k] = true;
    }
    for (block_wait *b = waits; b; b = b->next) { /* c */
        if (b->rt == rt)
            cancel_wait(rt, b);
    }
    pal_mutex_unlock(&waits_lock);
    for (unsigned k = 0; k < rt->nworkers; k++) { /* d */
        if (!joined[k])
            mt_worker_join(&rt->workers[k]);
    }
}

/* Step 3b: drops the tasks still live and reports how many. Threads: the
 * shutting-down thread, with no worker running (or the drive lock). */
static void drop_unfinished(mt_runtime *rt) {
    size_t dropped = 0;
    for (unsigned k = 0; k < rt->nworkers; k++)
        dropped += mt_slab_abandon(&rt->workers[k].slab);
    if (dropped)
        fprintf(stderr, "tml: shutdown: dropped %zu task%s still unfinished after %lld ms\n", dropped,
                dropped == 1 ? "" : "s", (long long)(rt->shutdown_timeout_ns / 1000000));
}

/* Shuts `rt` down (steps 1-3 of the module header): waits for every
 * spawned task to complete, at most until the deadline, then stops and
 * joins the workers (a current-thread runtime: drives its loop on this
 * thread meanwhile) and drops the tasks still unfinished; blocking waits
 * on `rt` end with -ECANCELED ("Blocking waits"). Idempotent.
 * Threads: any thread but rt's workers (and its driver); no spawn from
 * outside may race with it except as step 1 describes. */
void mt_runtime_shutdown(mt_runtime *rt) {
    MT_ASSERT(rt);
    mt_worker *cur = mt_worker_current();
    MT_ASSERT(!cur || cur->rt != rt);
    if (rt->stopped)
        return;
    mt_atomic_fetch_add(&rt->foreign, CLOSING); /* step 1: the bit was clear */
    mt_idle_close(&rt->idle);                    /* step 2 */
    io_reactor_cancel_all(rt->reactor); /* I/O waits end with Cancelled */
    int64_t deadline = mt_deadline_after(tml_now_ns(), rt->shutdown_timeout_ns);
    if (rt->threaded) {
        if (wait_quiet(rt, deadline)) {
            stop_workers(rt, rt->nworkers); /* step 3 */
        } else {
            stop_late(rt);
            drop_unfinished(rt);
        }
    } else {
        pal_mutex_lock(&rt->drive_lock);
        if (!drive_quiet(rt, deadline))
            drop_unfinished(rt);
        pal_mutex_unlock(&rt->drive_lock);
    }
    rt->stopped = true;
}

/* Shuts `rt` down if that was not done yet, then frees it (step 4).
 * Afterwards a wake of any of its tokens is a no-op. Threads: as
 * mt_runtime_shutdown. */
void mt_runtime_destroy(mt_runtime *rt) {
    mt_runtime_shutdown(rt);
    unregister_workers(rt);
    fini_core(rt);
    free(rt);
}

/* ---------------------------------------------------------------- spawn */

/* Counts a spawn from outside the runtime, unless it is closing (step 1).
 * Returns 0 or -ESHUTDOWN. */
static int count_foreign(mt_runtime *rt) {
    uint64_t old = mt_atomic_load(&rt->foreign); /* relaxed: the CAS re-checks */
    for (;;) {
        if (old & CLOSING)
            return -ESHUTDOWN;
        uint64_t seen = mt_atomic_cas(&rt->foreign, old, old + 1); /* ordered with step 1 */
        if (seen == old)
            return 0;
        old = seen;
    }
}

/* The first half of a spawn: a task of `rt` with a copy of `frame` (or,
 * with `frame` NULL, an uninitialised frame for the caller to fill),
 * holding its slot but not yet runnable. `blocker` (NULL unless
 * block_on) is unparked at completion. Returns 0 and the task with two
 * references (its own and the handle's), -ESHUTDOWN when a spawn from
 * outside meets CLOSING, or -ENOSPC / -ENOMEM when no slot can be had.
 * Threads: any; spawn_start follows on the same thread. */
static int spawn_alloc(mt_runtime *rt, const tml_task_vt *vt, const void *frame,
                       mt_parker *blocker, tml_join **out) {
    mt_worker *cur = mt_worker_current();
    bool inside = cur && cur->rt == rt;
    int err;
    if (!inside && (err = count_foreign(rt)) < 0)
        return err;
    /* any slab will do from outside; relaxed-safe round robin */
    mt_worker *owner = inside ? cur : &rt->workers[mt_atomic_fetch_add(&rt->next_slab, 1) % rt->nworkers];
    uint32_t slot, gen;
    if ((err = mt_slab_alloc(&owner->slab, inside, &slot, &gen)) < 0) {
        if (!inside) { /* undo the count; a shutdown may be waiting on it */
            mt_atomic_fetch_add(&rt->foreign, (uint64_t)-1);
            mt_runtime_check_quiet(rt);
        }
        return err;
    }
    tml_join *j = mt_join_new(cur, vt, frame, blocker);
    j->slot = (uintptr_t)mt_slab_slot(&owner->slab, slot) | MT_JOIN_FRESH;
    j->token = mt_token(owner->id, slot, gen);
    *out = j;
    return 0;
}

/* The second half: publishes the task in its slot and queues it: on the
 * calling worker when it is one of `rt`'s (and no block_on waits), else
 * on the global queue. */
static void spawn_start(mt_runtime *rt, tml_join *j) {
    mt_worker *cur = mt_worker_current();
    bool inside = cur && cur->rt == rt;
    mt_worker *owner = mt_runtime_owner(rt, j->token);
    mt_slab_start(&owner->slab, mt_token_slot(j->token), mt_token_gen(j->token), j);
    if (inside) /* relaxed: only cur writes it; ordered before the queue push */
        mt_atomic_store(&cur->stats.spawned, mt_atomic_load(&cur->stats.spawned) + 1);
    if (inside && !j->blocker)
        mt_worker_schedule(cur, j);
    else
        mt_worker_push_global(rt, j);
}

/* Spawns a copy of `frame` as a task of `rt`: spawn_alloc, then
 * spawn_start. Returns what spawn_alloc does. */
static int spawn(mt_runtime *rt, const tml_task_vt *vt, const void *frame, mt_parker *blocker,
                 tml_join **out) {
    int err = spawn_alloc(rt, vt, frame, blocker, out);
    if (err == 0)
        spawn_start(rt, *out);
    return err;
}

/* Spawns a copy of `frame` (vt->frame_size bytes) on `rt`. Returns 0 and
 * in *out a join handle with one reference the caller owns, or -errno as
 * spawn() says. Threads: any. */
int mt_runtime_spawn(mt_runtime *rt, const tml_task_vt *vt, const void *frame, tml_join **out) {
    MT_ASSERT(rt && vt && frame && out);
    return spawn(rt, vt, frame, NULL, out);
}

/* block_on for a current-thread runtime: drives its loop on this thread
 * until the task completes. */
static int block_on_here(mt_runtime *rt, const tml_task_vt *vt, const void *frame, void *out) {
    if (mt_worker_current())
        return -EDEADLK; /* inside a task: its own worker would stop */
    if (mt_atomic_load(&rt->foreign) & CLOSING) /* relaxed: the caller ordered shutdown */
        return -ESHUTDOWN;
    tml_join *j;
    pal_mutex_lock(&rt->drive_lock);
    mt_worker_set_current(&rt->workers[0]); /* the task is spawned from inside */
    int err = spawn(rt, vt, frame, NULL, &j);
    if (err == 0)
        drive(rt, done_pred, j);
    mt_worker_set_current(NULL);
    pal_mutex_unlock(&rt->drive_lock);
    if (err == 0) {
        mt_join_take(j, out);
        tml_join_release(j);
    }
    return err;
}

/* Spawns b's task, to unpark `parker` at completion, and puts `b` in
 * `waits`; -ECANCELED past the deadline (step a), else as spawn(). */
static int wait_begin(block_wait *b, const tml_task_vt *vt, const void *frame, mt_parker *parker) {
    int err = -ECANCELED;
    pal_mutex_lock(&waits_lock);
    /* relaxed: stopping = 2 is stored under waits_lock */
    if (mt_atomic_load(&b->rt->stopping) != 2 && (err = spawn(b->rt, vt, frame, parker, &b->task)) == 0) {
        b->prev = NULL;
        b->next = waits;
        if (waits)
            waits->prev = b;
        waits = b;
    }
    pal_mutex_unlock(&waits_lock);
    return err;
}

/* Takes `b` out of `waits` once its task completed, and its result to
 * `out`. Returns 0, or -ECANCELED when the deadline dropped the task
 * (step c); then a blocked worker stops at its next task search. */
static int wait_end(block_wait *b, void *out) {
    pal_mutex_lock(&waits_lock);
    if (b->prev)
        b->prev->next = b->next;
    else
        waits = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pal_mutex_unlock(&waits_lock);
    int32_t got = mt_join_take(b->task, out);
    tml_join_release(b->task);
    if (got != TML_JOIN_NO_RESULT)
        return 0;
    if (b->worker) /* plain: its own field; next_task reads stopping = 2 at once */
        b->worker->tick = 1;
    return -ECANCELED;
}

/* Runs a copy of `frame` as a task of `rt` and blocks the calling thread
 * until it completes, then moves its result to `out` (NULL allowed when
 * result_size is 0). A current-thread runtime runs it (and its other
 * tasks) on this thread. Returns 0; -EDEADLK on a worker of a one-worker
 * `rt`, or inside any task for a current-thread `rt`; -ESHUTDOWN;
 * -ECANCELED when the shutdown deadline passed before the task completed
 * (it was dropped: its frame's drop ran; `out` untouched) or before the
 * wait began (on a worker of `rt`); or -errno as spawn() says.
 * Threads: any. */
int mt_runtime_block_on(mt_runtime *rt, const tml_task_vt *vt, const void *frame, void *out) {
    MT_ASSERT(rt && vt && frame);
    if (!rt->threaded)
        return block_on_here(rt, vt, frame, out);
    mt_worker *cur = mt_worker_current();
    bool inside = cur && cur->rt == rt;
    if (inside && rt->nworkers == 1)
        return -EDEADLK;
    mt_parker parker;
    block_wait b = {.rt = rt, .worker = inside ? cur : NULL};
    int err = mt_parker_init(&parker);
    if (err)
        return err;
    parker.activity = mt_deadlock_activity(rt);
    if ((err = wait_begin(&b, vt, frame, &parker)) == 0) {
        if (inside)
            mt_worker_offload(cur);
        mt_deadlock_idle(rt, &parker); /* the last thread to park checks for a deadlock */
        /* only completion unparks it: the task's, or its drop's (step c) */
        bool notified = mt_parker_park(&parker, MT_NO_DEADLINE);
        MT_ASSERT(notified);
        err = wait_end(&b, out);
    }
    mt_parker_fini(&parker);
    return err;
}

/* A frame that polls one leaf future living on a blocked caller's stack. */
typedef struct leaf_frame {
    tml_poll (*poll)(void *leaf, tml_cx *cx);
    void (*drop)(void *leaf);
    void *leaf;
} leaf_frame;

static tml_poll leaf_frame_poll(void *frame, tml_cx *cx) {
    leaf_frame *f = frame;
    return f->poll(f->leaf, cx);
}

static void leaf_frame_drop(void *frame) {
    leaf_frame *f = frame;
    f->drop(f->leaf);
}

static const tml_task_vt leaf_vt = {leaf_frame_poll, sizeof(leaf_frame), 0, 0, NULL, "blocking wait",
                                    leaf_frame_drop};

/* Blocks the calling thread until poll(leaf) returns Ready, polling it as
 * a task of the current runtime. The leaf stays on the caller's stack,
 * which outlives the task: a task the shutdown deadline drops runs
 * drop(leaf) first, which must take the leaf off every wait list (as the
 * leaf's own drop does). Returns true once the leaf is Ready; false when
 * the deadline ended the wait (drop(leaf) ran), or passed before it began
 * on a worker (the leaf was never polled). Errors: panics as tml_block_on
 * otherwise. */
bool mt_block_on_leaf(tml_poll (*poll)(void *leaf, tml_cx *cx), void (*drop)(void *leaf), void *leaf) {
    MT_ASSERT(poll && drop && leaf);
    leaf_frame frame = {poll, drop, leaf};
    int err = mt_runtime_block_on(mt_runtime_current(), &leaf_vt, &frame, NULL);
    if (err && err != -ECANCELED)
        mt_panic_err("block_on", err);
    return err == 0;
}

/* ------------------------------------------------------------------ ABI */

/* Schedules t's task on `rt` (t belongs to it), adding the state bits
 * `add` (mt_task_signal); `cur` is the calling worker of `rt`, or NULL on
 * any other thread. */
static void wake_in(mt_runtime *rt, tml_waker t, mt_worker *cur, uint32_t add) {
    mt_worker *owner = mt_runtime_owner(rt, t);
    mt_slot *slot = mt_slab_slot(&owner->slab, mt_token_slot(t));
    tml_join *task = slot ? mt_task_signal(slot, mt_token_gen(t), add) : NULL;
    if (!task)
        return;
    if (cur)
        mt_worker_schedule_woken(cur, task);
    else
        mt_worker_push_global(rt, task);
}

/* A wake (add 0) or an abort (MT_TASK_ABORTED) of t's task, routed as
 * "Wake routing" says. Inlined into each caller, `add` a constant. */
static inline __attribute__((always_inline)) void signal_task(tml_waker t, uint32_t add) {
    mt_worker *cur = mt_worker_current();
    if (cur && owns(cur->rt, t)) {
        if (!add && cur->running && cur->running->token == t) {
            cur->self_woken = true; /* re-queued when its poll returns */
            return;
        }
        wake_in(cur->rt, t, cur, add);
        return;
    }
    pal_rwlock_rdlock(&registry_lock);
    mt_worker *owner = registry[mt_token_worker(t)];
    if (owner)
        wake_in(owner->rt, t, NULL, add);
    pal_rwlock_rdunlock(&registry_lock);
}

void tml_wake(tml_waker t) {
    signal_task(t, 0);
}

/* Marks h's task ABORTED and wakes it: the worker that next takes it
 * drops it instead of polling it (mt_worker.c, run_task). A finished
 * task's token is stale: nothing happens. */
void tml_join_abort(tml_join *h) {
    MT_ASSERT(h);
    signal_task(h->token, MT_TASK_ABORTED); /* token: immutable since the spawn */
}

/* Runs fn(rt, arg) with the runtime that token `t` belongs to, from any
 * thread, holding the registry's read lock so that the runtime cannot be
 * destroyed meanwhile; does nothing when that runtime is gone. fn must
 * not take the registry's write lock (create or destroy a runtime). */
void mt_runtime_visit(tml_waker t, void (*fn)(mt_runtime *rt, void *arg), void *arg) {
    mt_worker *cur = mt_worker_current();
    if (cur && owns(cur->rt, t)) {
        fn(cur->rt, arg);
        return;
    }
    pal_rwlock_rdlock(&registry_lock);
    mt_worker *owner = registry[mt_token_worker(t)];
    if (owner)
        fn(owner->rt, arg);
    pal_rwlock_rdunlock(&registry_lock);
}

tml_join *tml_spawn(const tml_task_vt *vt, const void *frame) {
    tml_join *j;
    int err = mt_runtime_spawn(mt_runtime_current(), vt, frame, &j);
    if (err)
        mt_panic_err("spawn", err);
    return j;
}

void *tml_spawn_frame(const tml_task_vt *vt) {
    MT_ASSERT(vt);
    tml_join *j;
    int err = spawn_alloc(mt_runtime_current(), vt, NULL, NULL, &j);
    if (err)
        mt_panic_err("spawn", err);
    return j->frame;
}

tml_join *tml_spawn_start(void *frame) {
    MT_ASSERT(frame);
    tml_join *j = (tml_join *)((char *)frame - offsetof(struct tml_join, frame));
    spawn_start(mt_runtime_current(), j);
    return j;
}

void tml_block_on(const tml_task_vt *vt, const void *frame, void *out) {
    int err = mt_runtime_block_on(mt_runtime_current(), vt, frame, out);
    if (err)
        mt_panic_err("block_on", err);
}

