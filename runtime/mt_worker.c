/* mt_worker.c - workers: the run loop, running one task, scheduling (LIFO
 * slot, local queue, global queue), stealing, parking, and the
 * cooperative budget.
 *
 * Finding the next task (next_task), in order:
 *   1. every MT_FAIR_TICKS polls: take one task from the global queue
 *      first, so tasks queued from outside (and overflow) are not starved
 *      by a worker whose own queues never empty (Go's 61); poll the I/O
 *      reactor without blocking (while fds are registered and no other
 *      worker drives it), but while the global queue holds tasks only
 *      once MT_IO_STARVE_NS have passed since this worker last polled it;
 *      then fire due timers. The wakes of a poll join the back of the
 *      local queue, so polling at every tick let I/O overtake a global
 *      backlog for ever: with 10,000 echo connections (W8) the p99
 *      latency was 261 ms with 2 workers and 1.6 s with one, and is 194
 *      and 199 ms with the rule (libuv 197 ms in the same minutes);
 *   2. the LIFO slot, at most MAX_LIFO_RUNS polls in a row while other
 *      tasks wait in the local queue: then its task goes to the back of
 *      the queue, so two tasks waking each other cannot starve the rest;
 *   3. the local queue (FIFO);
 *   4. local work exhausted: fire due timers (their wakes refill 2-3),
 *      then a batch from the global queue (half of it, at most half a ring);
 *   5. search (mt_park.c S1-S3): SEARCH_ROUNDS rounds of stealing half of
 *      a random victim's queue (xorshift) and polling the global queue,
 *      the I/O reactor (without blocking, when no other worker drives it)
 *      and timers, with exponential backoff (spinning) between rounds;
 *   6. nothing: park (mt_park.c P1-P4), or exit once `stopping`. A
 *      parking worker that takes the driver (drive()) blocks in the I/O
 *      reactor until I/O, the next timer deadline or an unpark; the
 *      others park on their condition variable.
 *
 * Scheduling on the worker's own thread (wake, spawn, re-queue): no lock,
 * no syscall, plain stores; a local queue push is one release store.
 *   - A woken or spawned task goes to the LIFO slot; the task it displaces
 *     goes to the back of the local queue. As Go's runnext (spawns and
 *     wakes) and Tokio 1.24's LIFO slot (spawns and wakes): the woken task
 *     runs next, while what its waker wrote is still in cache, so a
 *     channel ping-pong or a chain of spawns stays on one core with no
 *     queue traffic. The LIFO slot is never stolen.
 *   - A task that a running task wakes (a channel hand-off, an unlock)
 *     and that the LIFO slot then gives up is held back from the local
 *     queue until the waker's poll ends (at most MT_HELD_MAX of them), so
 *     thieves cannot take it while its waker runs. Without this, in W5 (4
 *     producers, 1 consumer) the idle worker stole every producer the
 *     consumer woke, both workers fought over the channel for each
 *     message, and the producers moved between workers about 95,000
 *     times per run; held, 3,300 steals, and W5's median fell from 117 to
 *     49 ms (7 runs each, alternating; W1-W4, W6b and W7 unchanged). Go
 *     has the same aim with its runnext slot, which thieves leave alone
 *     for a few microseconds. Held tasks enter the back of the queue in
 *     the order they left the LIFO slot. A poll that runs long without
 *     awaiting delays them as it delays its LIFO slot's task. Spawns are
 *     not held: they are new work for other workers.
 *   - A task re-queued after its poll (it yielded, spent its budget, or
 *     was woken while running) goes to the back of the local queue: rt.h
 *     promises it runs after the work queued before it.
 *   - A full local queue moves its older half plus the new task to the
 *     global queue in one batch, then notifies (N1-N3).
 *   - A push that leaves at least two tasks waiting here (LIFO slot plus
 *     queue) notifies a parked worker if none searches, checked first with
 *     a plain load (mt_idle_may_notify), so a busy runtime pays nothing.
 *     One waiting task is not worth a wake-up (~400 spins): this worker
 *     runs it next. The hint has no ordering and may miss a worker that is
 *     parking at that instant; nothing is lost, the work is this worker's
 *     own, and the parking worker's re-check (P2) or the next push helps.
 *     Moving the LIFO slot's task to the queue (step 2) does not notify:
 *     it adds no work.
 * From any other thread: the global queue, then N1-N3 (mt_worker_notify).
 *
 * Readiness stays where it was polled. A worker that had nothing to run
 * less than MT_IO_FRESH_NS ago (it left a park, or a search round found
 * nothing: `idle_ns`) is "fresh": it keeps up with its work. While fresh,
 * the tasks its reactor polls wake do not notify, and neither does S3
 * when its search found its task through its own reactor poll or timer
 * check (and the global queue is empty); the notification is recorded (`help_deferred`)
 * and retried after each poll once the worker is no longer fresh, if two
 * or more tasks still wait here (one clock read per poll, only while one
 * is pending; cleared when the worker runs out of work). Without this, a
 * burst of readiness woke the parked worker to steal half of it, and on
 * this 2-core machine the two workers then ran beside the W8 load
 * generator: three threads on two cores, the generator preempted, p99
 * up by ~20% (tests/bench/RESULTS.md, 2026-11-24: W8 at 1,000
 * connections, 8 runs each, alternating: p99 27.0 against 32.6 ms,
 * 80.3k against 76.0k round trips/s; libuv 22.9 ms, 80.6k). A long burst
 * of CPU-heavy requests still gets help after MT_IO_FRESH_NS (an echo
 * doing ~100 us per message: 14.6k against 14.5k round trips/s). Spawns
 * and wakes by running tasks notify as before: their parallelism is the
 * program's (a fork-join of spawned tasks is unchanged). Rejected: the
 * same without the time limit (the CPU-heavy echo fell to 9.6k round
 * trips/s); a parked worker blocking in the reactor only while no other
 * worker runs (no gain on top; timers and I/O would wait for a long poll).
 *
 * Running a task: SCHEDULED -> RUNNING (a CAS; on the first poll one
 * that expects SCHEDULED without reading the word first,
 * mt_task_first_poll), poll with cx = {token, worker} and a full budget;
 * a task marked ABORTED (tml_join_abort) is not polled: its slot is
 * freed and its frame dropped here, and joiners get TML_JOIN_CANCELLED.
 * Pending: RUNNING -> IDLE, or back to the local queue if a wake arrived
 * during the poll or the task woke itself (`self_woken`, set by tml_wake
 * or mt_worker_self_wake with a plain store: a yield costs no extra CAS).
 * Ready: free the slot (every token goes stale), complete the join block
 * (wake joiners, unpark a block_on caller), then count the completion
 * (release: mt_runtime.c, "Quiescence").
 * Parking (step 6) first counts the worker out of the runtime's activity
 * (mt_deadlock.c): the last thread of a watched runtime to park checks
 * for a deadlock there, off every hot path.
 *
 * Cooperative budget (rt.h): MT_BUDGET leaf completions per poll. A leaf
 * calls mt_budget_poll first; with nothing left the task wakes itself and
 * the leaf returns Pending, so the task is re-queued behind the others.
 * A leaf ends a Ready with mt_budget_ready, which spends one unit.
 *
 * `mt_current_worker` (thread-local) is the worker running on this thread
 * (for a current-thread runtime, while its driver runs), NULL elsewhere.
 * Sources: Go's schedule()/findRunnable() (runtime/proc.go), Tokio 1.24's
 * multi_thread/worker.rs. Rejected: spawns at the back of the queue, as
 * the issue suggested (measured with C versions of the W-benchmarks at 2
 * workers: W3a 45% slower, W1 10% slower, W4 the same); owner-LIFO
 * popping (see mt_deque.c); a notification for every push (a futex wake
 * per message in a ping-pong); unbounded LIFO runs (starvation); parking
 * without spinning first (DESIGN.md 4b: a park/unpark costs the waker a
 * syscall and the sleeper tens of microseconds). */
#include <sched.h>
#include <stdio.h>


#include "mt_internal.h"

#define MT_FAIR_TICKS 61  /* as Go's scheduler: prime, so it drifts over patterns */
#define MAX_LIFO_RUNS 3   /* as Tokio's MAX_LIFO_POLLS_PER_TICK */
#define SEARCH_ROUNDS 6
#define BACKOFF_FIRST 32  /* pauses after the first failed round; doubles */
#define TIMER_BATCH 64
#define TIMER_SPIN_NS 100000 /* see drive() */

_Thread_local mt_worker *mt_current_worker;

/* Adds n to one of w's counters. relaxed: only the owner writes them;
 * readers want a snapshot. No RMW: a plain load and store. */
static void count(mt_atomic *c, uint64_t n) {
    mt_atomic_store(c, mt_atomic_load(c) + n);
}

/* Initialises worker `index` of `rt` with global id `id`; its slab's
 * generations start at `gen_floor`. Returns 0 or -errno. */
int mt_worker_init(mt_worker *w, mt_runtime *rt, unsigned index, unsigned id, uint32_t gen_floor) {
    MT_ASSERT(index < rt->nworkers && id < MT_MAX_WORKERS);
    int err = mt_parker_init(&w->parker);
    if (err)
        return err;
    w->parker.activity = &rt->activity; /* a worker counts as active (mt_deadlock.c) */
    w->rt = rt;
    w->lifo = w->running = NULL;
    w->nheld = 0;
    w->index = index;
    w->id = id;
    w->tick = MT_FAIR_TICKS;
    w->io_polled_ns = w->idle_ns = 0;
    w->io_quiet = w->found_io = w->help_deferred = false;
    w->lifo_runs = 0;
    w->rng = 0x9e3779b9u * (index + 1) | 1; /* xorshift needs a non-zero seed */
    w->budget = MT_BUDGET;
    w->searching = w->self_woken = false;
    mt_atomic *stats[] = {&w->stats.polls, &w->stats.steals, &w->stats.stolen, &w->stats.parks,
                          &w->stats.global_pops, &w->stats.overflows, &w->stats.spawned,
                          &w->stats.completed};
    for (size_t i = 0; i < sizeof stats / sizeof *stats; i++)
        mt_atomic_store(stats[i], 0); /* relaxed: before the worker is shared */
    w->blocks = (mt_block_cache){{NULL}, {0}};
    mt_slab_init(&w->slab, gen_floor);
    mt_deque_init(&w->local);
    return 0;
}

/* Frees the worker's block cache, parker and slab (its thread has
 * exited). Returns the slab's generation floor for the next user of this
 * id. */
uint32_t mt_worker_fini(mt_worker *w) {
    mt_block_cache_fini(&w->blocks);
    mt_parker_fini(&w->parker);
    return mt_slab_fini(&w->slab);
}

/* Makes `w` (NULL: none) the calling thread's worker: a current-thread
 * runtime's driver calls it around driving. */
void mt_worker_set_current(mt_worker *w) {
    mt_current_worker = w;
}

/* N1-N3 of mt_park.c: unparks one parked worker of `rt` if none searches.
 * Call after publishing work. Threads: any. */
void mt_worker_notify(mt_runtime *rt) {
    unsigned i;
    if (mt_idle_notify(&rt->idle, &i))
        mt_parker_unpark(&rt->workers[i].parker);
}

/* Queues `t` (a SCHEDULED task of `rt`) on the global queue and notifies.
 * Threads: any. Errors: panics when out of memory. */
void mt_worker_push_global(mt_runtime *rt, tml_join *t) {
    int err = mt_queue_push(&rt->global, t);
    if (err)
        mt_panic_err("scheduling a task", err);
    mt_worker_notify(rt);
}

/* w's local queue is full: moves its older half plus `t` to the global
 * queue in one batch. */
static void overflow(mt_worker *w, tml_join *t) {
    tml_join *batch[MT_DEQUE_CAP / 2 + 1];
    uint32_t n = mt_deque_take_half(&w->local, batch);
    if (n == 0) { /* a thief is at work: room now, or soon */
        if (!mt_deque_push(&w->local, t))
            mt_worker_push_global(w->rt, t);
        return;
    }
    batch[n++] = t;
    int err = mt_queue_push_batch(&w->rt->global, batch, n);
    if (err)
        mt_panic_err("scheduling a task", err);
    count(&w->stats.overflows, 1);
    mt_worker_notify(w->rt);
}

/* Appends `t` to the back of w's local queue, or overflows (which
 * notifies). Returns whether it went to the local queue. */
static bool enqueue(mt_worker *w, tml_join *t) {
    if (mt_deque_push(&w->local, t))
        return true;
    overflow(w, t);
    return false;
}

/* Whether two or more tasks wait here and a parked worker could take
 * some (a plain load first; see "Scheduling"). */
static bool help_wanted(mt_worker *w) {
    return (w->lifo != NULL) + mt_deque_len(&w->local) >= 2 && mt_idle_may_notify(&w->rt->idle);
}

/* Appends `t` to the back of w's local queue; notifies when two or more
 * tasks now wait here (see "Scheduling"), unless a fresh reactor poll is
 * waking them ("Readiness stays where it was polled"). Threads: w's own. */
void mt_worker_push_back(mt_worker *w, tml_join *t) {
    if (!enqueue(w, t) || !help_wanted(w))
        return;
    if (w->io_quiet)
        w->help_deferred = true;
    else
        mt_worker_notify(w->rt);
}

/* Whether w had nothing to run less than MT_IO_FRESH_NS ago. */
static bool fresh(const mt_worker *w) {
    return tml_now_ns() - w->idle_ns < MT_IO_FRESH_NS;
}

/* After a poll, with a notification held back: asks for help once w is
 * no longer fresh, if tasks still wait here. */
static void retry_help(mt_worker *w) {
    if (fresh(w))
        return;
    w->help_deferred = false;
    if (help_wanted(w))
        mt_worker_notify(w->rt);
}

/* Queues the tasks held during a poll, oldest first, at its end or when
 * MT_HELD_MAX are held (or before w blocks its thread). Threads: w's own. */
void mt_worker_flush_held(mt_worker *w) {
    uint32_t n = w->nheld;
    w->nheld = 0;
    for (uint32_t i = 0; i < n; i++)
        mt_worker_push_back(w, w->held[i]);
}

/* Moves w's LIFO slot and local queue to the global queue (w is about to
 * block its thread, so other workers must run them). Threads: w's own. */
void mt_worker_offload(mt_worker *w) {
    MT_ASSERT(mt_current_worker == w);
    tml_join *batch[MT_DEQUE_CAP + 1];
    uint32_t n = 0;
    mt_worker_flush_held(w);
    if (w->lifo)
        batch[n++] = w->lifo;
    w->lifo = NULL;
    while (mt_deque_pop(&w->local, &batch[n]))
        n++;
    if (n == 0)
        return;
    int err = mt_queue_push_batch(&w->rt->global, batch, n);
    if (err)
        mt_panic_err("scheduling a task", err);
    mt_worker_notify(w->rt);
}

/* Wakes the tasks of every due timer (into w's LIFO slot and queue). */
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

/* The driver: the reactor and the timers' wake-up, held by one worker at
 * a time (Tokio's driver, behind its park). A parking worker that gets
 * it blocks in the reactor until I/O, its timer deadline or an unpark;
 * the others park on their condition variable. A running worker takes it
 * for a non-blocking look at each fairness tick while fds are
 * registered, so I/O is not starved while every worker is busy. */
static bool driver_try_acquire(mt_runtime *rt) {
    /* acquire: the previous holder's reactor and timer work is visible */
    return mt_atomic_load(&rt->driver) == 0 && mt_atomic_cas(&rt->driver, 0, 1) == 0;
}

static void driver_release(mt_runtime *rt) {
    mt_atomic_store_release(&rt->driver, 0);
}

/* Interrupts the driver's blocking reactor poll (a timer was armed
 * before its deadline). Threads: any. */
void mt_worker_wake_driver(mt_runtime *rt) {
    io_reactor_wake(rt->reactor);
}

/* Polls the reactor without blocking when fds are registered and no
 * other worker drives. */
static void poll_io(mt_worker *w) {
    mt_runtime *rt = w->rt;
    if (mt_atomic_load(&rt->io_sources) == 0 || !driver_try_acquire(rt))
        return;
    int64_t now = tml_now_ns(); /* one clock read: freshness and io_polled_ns */
    w->io_quiet = now - w->idle_ns < MT_IO_FRESH_NS;
    int n = io_reactor_poll(rt->reactor, 0);
    w->io_quiet = false;
    driver_release(rt);
    w->io_polled_ns = now;
    if (n < 0)
        mt_panic_err("polling for I/O", n);
}

/* P3 as the driver: blocks in the reactor with the next timer deadline
 * as timeout, then fires the due timers. Waking a blocked thread takes
 * 35-43 us on this kind of machine (DESIGN.md section 4b), and a timed
 * epoll wait returned ~70 us late in W6c, so the driver asks to wake
 * TIMER_SPIN_NS early and spins the rest of the way: timers fire within
 * microseconds of their deadline (W6c p50 lateness 1 us against 18 us
 * with a 50 us spin), for at most that much CPU per timed wake-up. A
 * notification that arrives while it spins waits for the spin to end
 * (sticky, so not lost). */
static void drive(mt_worker *w) {
    mt_runtime *rt = w->rt;
    int64_t deadline = mt_timers_arm(&rt->timers);
    int64_t early = deadline == MT_NO_DEADLINE ? deadline : deadline - TIMER_SPIN_NS;
    w->io_quiet = true; /* it is unparking: fresh */
    bool notified = mt_parker_park_in(&w->parker, rt->reactor, early);
    w->io_quiet = false;
    w->io_polled_ns = tml_now_ns();
    if (!notified && deadline != MT_NO_DEADLINE && tml_now_ns() >= early) {
        while (tml_now_ns() < deadline) /* woken by the timeout, not I/O */
            mt_cpu_relax();
    }
    mt_timers_disarm(&rt->timers);
    fire_timers(w);
    driver_release(rt);
}

/* Steps 2-3: the LIFO slot (bounded), else the local queue. */
static tml_join *local_task(mt_worker *w) {
    tml_join *t = w->lifo;
    if (t) {
        w->lifo = NULL;
        if (w->lifo_runs < MAX_LIFO_RUNS || mt_deque_len(&w->local) == 0) {
            w->lifo_runs++;
            return t;
        }
        enqueue(w, t); /* others wait: its turn comes after theirs (no notification: no new work) */
    }
    if (!mt_deque_pop(&w->local, &t))
        return NULL;
    w->lifo_runs = 0;
    return t;
}

/* Step 4's batch: up to half the global queue; runs the first, queues
 * the rest locally. The local queue is empty, but a thief that stalls
 * mid-steal still holds up to half its cells (mt_deque_room), so the
 * batch is cut to the room left. */
static tml_join *global_batch(mt_worker *w) {
    tml_join *batch[MT_DEQUE_CAP / 2];
    uint32_t room = mt_deque_room(&w->local);
    size_t n = mt_queue_steal(&w->rt->global, batch, room < MT_DEQUE_CAP / 2 ? room + 1 : MT_DEQUE_CAP / 2);
    if (n == 0)
        return NULL;
    mt_deque_push_batch(&w->local, batch + 1, (uint32_t)n - 1);
    count(&w->stats.global_pops, n);
    w->lifo_runs = 0;
    return batch[0];
}

static uint32_t xorshift(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Tries every other worker once, from a random one: steals half of the
 * first non-empty local queue. */
static tml_join *steal_round(mt_worker *w) {
    unsigned n = w->rt->nworkers, start = xorshift(&w->rng) % n;
    for (unsigned i = 0; i < n; i++) {
        mt_worker *victim = &w->rt->workers[(start + i) % n];
        tml_join *t;
        uint32_t k = victim == w ? 0 : mt_deque_steal(&victim->local, &w->local, &t);
        if (k > 0) {
            count(&w->stats.steals, 1);
            count(&w->stats.stolen, k);
            w->lifo_runs = 0;
            return t;
        }
    }
    return NULL;
}

/* Step 5 (S1-S2): searches while allowed; returns a task, or NULL when
 * the worker should park (still counted as searching if it was). */
static tml_join *search(mt_worker *w) {
    w->help_deferred = false; /* nothing waits here any more */
    if (!w->searching && !mt_idle_try_search(&w->rt->idle))
        return NULL;
    w->searching = true;
    unsigned spins = BACKOFF_FIRST;
    for (unsigned round = 0; round < SEARCH_ROUNDS; round++, spins *= 2) {
        tml_join *t = steal_round(w);
        if (!t)
            t = global_batch(w);
        if (!t) {
            poll_io(w); /* as Go's findrunnable: ready I/O is work too */
            fire_timers(w);
            t = local_task(w);
            w->found_io = t != NULL;
        }
        if (t)
            return t;
        w->idle_ns = tml_now_ns(); /* idle: fresh from here */
        for (unsigned i = 0; i < spins; i++)
            mt_cpu_relax();
    }
    return NULL;
}

/* Steps 1-5: the next task to run, or NULL. */
static tml_join *next_task(mt_worker *w) {
    tml_join *t;
    if (--w->tick == 0) {
        w->tick = MT_FAIR_TICKS;
        if (mt_atomic_load(&w->rt->stopping) == 2)
            return NULL; /* shutdown gave up waiting: park() exits */
        bool backlog = mt_queue_try_pop(&w->rt->global, &t);
        if (!backlog || tml_now_ns() - w->io_polled_ns >= MT_IO_STARVE_NS)
            poll_io(w);
        fire_timers(w);
        if (backlog) {
            count(&w->stats.global_pops, 1);
            w->lifo_runs = 0;
            return t;
        }
    }
    if (mt_chaos(MT_CHAOS_STEAL) && w->rt->threaded && (t = steal_round(w)))
        return t;
    if ((t = local_task(w)))
        return t;
    fire_timers(w);
    if ((t = local_task(w)) || (t = global_batch(w)))
        return t;
    return w->rt->threaded ? search(w) : NULL;
}

/* Frees the slot of `t` (every token goes stale): its last poll
 * returned Ready, or it was aborted. */
static void free_slot(mt_worker *w, tml_join *t) {
    mt_worker *owner = mt_runtime_owner(w->rt, t->token);
    mt_slab_free(&owner->slab, mt_token_slot(t->token), mt_token_gen(t->token), owner == w);
}

/* Counts a completion; release: the task's effects and its spawn count
 * happen before a quiescence check that reads this (mt_runtime_quiet). */
static void count_completed(mt_worker *w) {
    mt_atomic_store_release(&w->stats.completed, mt_atomic_load(&w->stats.completed) + 1);
}

/* Polls task `t` once, and completes it if it is Ready; an aborted task
 * is dropped instead (tml_join_abort). */
static void run_task(mt_worker *w, tml_join *t) {
    mt_slot *slot = (mt_slot *)(t->slot & ~MT_JOIN_FRESH);
    bool aborted;
    if (t->slot & MT_JOIN_FRESH) {
        t->slot = (uintptr_t)slot; /* plain: only pollers read it, in turn */
        aborted = mt_task_first_poll(slot, mt_token_gen(t->token));
    } else {
        aborted = mt_task_begin_poll(slot);
    }
    if (aborted) {
        free_slot(w, t);
        mt_join_abandon(t, TML_JOIN_CANCELLED); /* its drop runs here, on its worker */
        count_completed(w);
        return;
    }
    w->running = t;
    w->self_woken = false;
    w->budget = MT_BUDGET;
    count(&w->stats.polls, 1);
    tml_cx cx = {t->token, w};
    tml_poll r = t->vt->poll(t->frame, &cx);
    w->running = NULL;
    if (w->nheld)
        mt_worker_flush_held(w);
    if (r == TML_PENDING) {
        if (mt_task_end_pending(slot, w->self_woken))
            mt_worker_push_back(w, t);
        else if (mt_chaos(MT_CHAOS_SPURIOUS_WAKE))
            tml_wake(t->token); /* polled again with nothing ready */
        return;
    }
    free_slot(w, t);
    mt_join_complete(t);
    count_completed(w);
}

/* Finds and runs one task. Returns false when there was none: the caller
 * parks (or waits). Threads: w's own. */
bool mt_worker_step(mt_worker *w) {
    tml_join *t = next_task(w);
    if (!t)
        return false;
    if (w->searching) { /* S3 */
        bool io = w->found_io;
        w->searching = w->found_io = false;
        if (mt_idle_stop_search(&w->rt->idle)) {
            if (io && mt_queue_is_empty(&w->rt->global) && fresh(w))
                w->help_deferred = true; /* its own readiness: see "Readiness stays ..." */
            else
                mt_worker_notify(w->rt);
        }
    }
    run_task(w, t);
    if (w->help_deferred)
        retry_help(w);
    return true;
}

/* Whether any queue holds a task (P2's re-check). */
static bool work_pending(mt_runtime *rt) {
    if (!mt_queue_is_empty(&rt->global))
        return true;
    for (unsigned k = 0; k < rt->nworkers; k++) {
        if (mt_deque_len(&rt->workers[k].local) > 0)
            return true;
    }
    return false;
}

/* Step 6: parks following P1-P4 of mt_park.c. Returns false when the
 * worker must exit. Threads: w's own, with empty LIFO slot and queue. */
static bool park(mt_worker *w) {
    mt_runtime *rt = w->rt;
    if (mt_atomic_load_acquire(&rt->stopping)) /* pairs with stop_workers */
        return false;
    unsigned how = mt_idle_park(&rt->idle, w->index, w->searching); /* P1 */
    w->searching = false;
    if ((how & MT_IDLE_RECHECK) && work_pending(rt)) /* P2 */
        mt_worker_notify(rt);
    if (how & MT_IDLE_CLOSED)
        mt_runtime_check_quiet(rt);
    count(&w->stats.parks, 1);
    mt_deadlock_idle(rt, &w->parker); /* the last thread to park checks for a deadlock */
    if (driver_try_acquire(rt)) /* P3 */
        drive(w);
    else
        mt_parker_park(&w->parker, MT_NO_DEADLINE);
    w->searching = mt_idle_unparked(&rt->idle, w->index); /* P4 */
    w->idle_ns = tml_now_ns();
    return true;
}

/* A current-thread runtime's park: blocks in the global queue until a
 * task arrives from another thread or the next timer is due. (No other
 * worker exists to notify it, so it needs no idle protocol.)
 * Threads: the driver. */
void mt_worker_wait(mt_worker *w) {
    mt_runtime *rt = w->rt;
    MT_ASSERT(mt_current_worker == w && !rt->threaded);
    int64_t deadline = mt_timers_arm(&rt->timers);
    tml_join *t;
    count(&w->stats.parks, 1);
    if (mt_queue_pop(&rt->global, &t, deadline)) {
        count(&w->stats.global_pops, 1);
        mt_worker_schedule(w, t);
    }
    mt_timers_disarm(&rt->timers);
}

static void *worker_main(void *arg) {
    mt_worker *w = arg;
    pal_stack_guard guard;
    mt_stack_thread_begin(&guard); /* a stack overflow in a task is reported */
    mt_current_worker = w;
    /* Linux lets a timed wait end up to 50 us late by default ("timer
     * slack"); timers here promise better, so ask for 1 ns */
    pal_thread_precise_timers();
    while (mt_worker_step(w) || park(w)) {
        if (mt_chaos(MT_CHAOS_PARK) && !mt_atomic_load_acquire(&w->rt->stopping)) {
            mt_worker_offload(w); /* others must run them meanwhile */
            if (!park(w))
                break;
        }
    }
    mt_current_worker = NULL;
    mt_stack_thread_end(&guard);
    return NULL;
}

/* Starts w's thread. Returns 0 or -errno from pal_thread_start. */
int mt_worker_start(mt_worker *w) {
    char name[16];
    snprintf(name, sizeof name, "tml-worker-%u", w->id);
    return pal_thread_start(&w->thread, worker_main, w, name);
}

/* Waits for w's thread to exit (after the runtime set `stopping` and
 * unparked it). */
void mt_worker_join(mt_worker *w) {
    pal_thread_join(w->thread);
}

/* ------------------------------------------------------ budget, yield */

void tml_yield_init(tml_yield_fut *f) {
    MT_ASSERT(f);
    f->yielded = 0;
    f->reserved = 0;
}

/* First poll: wakes the task (re-queued at the back of the local queue,
 * never through the LIFO slot) and returns Pending; then Ready. */
tml_poll tml_yield_poll(tml_yield_fut *f, tml_cx *cx) {
    MT_ASSERT(f && cx);
    if (!f->yielded) {
        f->yielded = 1;
        mt_worker_self_wake(cx);
        return TML_PENDING;
    }
    return mt_budget_poll(cx) ? mt_budget_ready(cx) : TML_PENDING;
}

void tml_yield_blocking(void) {
    pal_yield();
}
