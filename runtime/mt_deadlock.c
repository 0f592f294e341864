/* mt_deadlock.c - the deadlock report: when every task of the program
 * waits and nothing can ever wake one, print what Go prints, `fatal
 * error: all tasks are asleep - deadlock!`, with the number of tasks
 * waiting on each kind of thing, and exit with status 101 (spec/
 * runtime.md, RT-DEADLOCK-1).
 *
 * What can wake a waiting task (a "possible waker"):
 *   a. a thread that runs: a worker polling a task (or searching,
 *      spinning, blocked in a call the runtime does not see, such as a
 *      blocking sleep or TCP call), or a thread outside the runtime that
 *      runs the program's code (sync `main`);
 *   b. a timer in the wheel (sleep, timeout, recv_timeout, interval);
 *   c. a socket registered with the reactor (readiness may come);
 *   d. a thread the runtime cannot see at all (a C thread of the
 *      embedding program).
 * Nothing else: a waiting task is woken by a send, close, unlock,
 * release, notify, completion or abort, and each of those runs on a
 * thread (a). So the report fires only when no thread runs, no timer is
 * armed and no socket is registered, and only in a runtime that knows
 * every thread that may touch it (d): the process runtime of a TML
 * program (TML has no threads), whose main thread the generated code
 * counts (tml_main_watch_deadlocks: mt_deadlock_watch). Other runtimes,
 * and the process runtime of a C program with threads of its own, are
 * never watched.
 *
 * Counting threads (a). The runtime's activity word holds epoch << 32 |
 * WATCHED | the threads counted active: its workers, and the watching
 * thread. A counted thread is counted out only while it is parked on an
 * mt_parker whose `activity` is the word (mt_park.c): a worker with
 * nothing to run, or a thread in a blocking wait (`h.join()`, `rx.recv()`
 * without await, block_on: also the main thread in `async func main`,
 * which waits for main's task). Whoever unparks a parked thread counts it
 * back in before the unpark returns, while still active itself, and a
 * park that ends by itself (timeout, I/O) counts itself in before doing
 * anything else; every count-in also bumps the epoch. Hence the count is
 * 0 only while every counted thread is parked with no unpark under way.
 *
 * Protocol (the check costs nothing unless the count reaches 0: it runs
 * on the path of a thread about to park, after its idle RMW):
 *   1. the thread about to park counts itself out (mt_parker_idle); the
 *      one whose RMW leaves 0 active, with WATCHED set, goes on (word w);
 *   2. it reads the timer wheel under its lock: no timer (b);
 *   3. it reads the count of registered sockets: none (c);
 *   4. it reads the activity word again: still w. No thread became
 *      active between 1 and 4 (the epoch would differ), so the state it
 *      read in 2-3 is the one every thread left when it parked: a timer
 *      or socket change made after a wake-up is sequenced after that
 *      count-in's RMW, so reading the change makes the RMW happen before
 *      4, and 4 would see a new epoch;
 *   5. every live task that is not running is then waiting: it counts
 *      them by what their last Pending leaf waits on (tml_join.waits,
 *      written by the leaves: mt_task_waits), prints the report on
 *      stderr, flushes stdout and exits with status 101.
 * Run queues need no check: work is queued only by a running thread,
 * which then notifies a parked worker (mt_park.c N1-N3: counted in by
 * the unpark) or runs it itself. A task that a blocked worker polls is
 * RUNNING and is not counted: its blocking wait's own task is.
 * Rejected: checking from a watchdog thread on a timer (a hang is
 * reported late, and a long computation with idle workers looks alike);
 * per-kind counters of waiting leaves (two shared RMWs per wait on the
 * hot path); treating any registered socket as idle (a read that will be
 * answered would be reported: readiness is invisible until it comes). */
#include <stdio.h>
#include <unistd.h>

#include "mt_internal.h"

/* The runtime whose activity counts the calling thread besides its
 * workers: set on the watching thread by mt_deadlock_watch. */
static _Thread_local mt_runtime *watching;

/* Makes `rt` report deadlocks, counting the calling thread (the program's
 * main thread) as active until it parks in a blocking wait. Threads: the
 * thread that runs the program's `main`, once, before it spawns. */
void mt_deadlock_watch(mt_runtime *rt) {
    MT_ASSERT(rt && rt->threaded && !watching);
    watching = rt;
    mt_atomic_fetch_add(&rt->activity, MT_ACTIVITY_WATCHED + MT_ACTIVITY_ONE); /* RMW: as the idles' */
}

/* The activity word a parker of the calling thread counts in: rt's when
 * the thread is one of its workers or its watching thread, else NULL. */
mt_atomic *mt_deadlock_activity(mt_runtime *rt) {
    mt_worker *cur = mt_worker_current();
    return (cur && cur->rt == rt) || watching == rt ? &rt->activity : NULL;
}

static const char *const kind_names[MT_WAIT_KINDS] = {
    [MT_WAIT_OTHER] = "something else", [MT_WAIT_RECV] = "channel receive",
    [MT_WAIT_SEND] = "channel send",    [MT_WAIT_LOCK] = "lock",
    [MT_WAIT_ACQUIRE] = "acquire",      [MT_WAIT_NOTIFIED] = "notified",
    [MT_WAIT_JOIN] = "join",
};

/* Step 5: the report, then the exit. */
static _Noreturn void report(mt_runtime *rt) {
    uint64_t n[MT_WAIT_KINDS] = {0};
    for (unsigned k = 0; k < rt->nworkers; k++) /* no thread runs: step 1's RMW acquired their writes */
        mt_slab_count_waiting(&rt->workers[k].slab, n);
    fflush(stdout);
    pal_file_lock(stderr); /* held to the exit: no other line splits the report */
    fputs("fatal error: all tasks are asleep - deadlock!\n\n", stderr);
    for (unsigned kind = 0; kind < MT_WAIT_KINDS; kind++) {
        if (n[kind])
            fprintf(stderr, "%llu task%s waiting on %s\n", (unsigned long long)n[kind], n[kind] == 1 ? "" : "s",
                    kind_names[kind]);
    }
    fflush(stderr);
    pal_exit_now(101);
}

/* The calling thread is about to park on `p` (a parker of rt's, whose
 * `activity` mt_deadlock_activity gave): steps 1-5. Returns when a wake
 * is still possible (the caller then parks); otherwise reports the
 * deadlock and ends the process. Threads: the parking thread. */
void mt_deadlock_idle(mt_runtime *rt, mt_parker *p) {
    uint64_t w;
    if (!mt_parker_idle(p, &w) || mt_activity_active(w) != 0 || !(w & MT_ACTIVITY_WATCHED))
        return; /* 1 */
    if (!mt_timers_empty(&rt->timers) || mt_atomic_load_acquire(&rt->io_sources) != 0)
        return; /* 2, 3; acquire: pairs with net.c's RMWs */
    if (mt_atomic_load_acquire(&rt->activity) != w) /* 4 */
        return;
    report(rt);
}
