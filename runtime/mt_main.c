/* mt_main.c - the process runtime: the one runtime a TML program runs on,
 * created by tml_main_enter from the environment (TML_WORKERS,
 * TML_SHUTDOWN_TIMEOUT_MS) and shut down and destroyed by tml_main_exit
 * (TML_STATS=1 prints the workers' counters first), keeping the output of
 * a program killed by a signal (pal_exit_signals_start), with the deadlock
 * report when the program asks for it (tml_main_watch_deadlocks,
 * mt_deadlock.c); the calling thread's runtime (mt_runtime_current);
 * per-worker metrics.
 * Invariant: process_rt is set before the program starts other threads
 * and cleared after every worker was joined, so threads that read it
 * (foreign spawns and wakes) never race its writes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_internal.h"

/* Set by tml_main_enter before the program starts other threads; read by
 * threads that are not workers (workers use their own runtime). */
static mt_runtime *process_rt;
static pal_stack_guard main_alt; /* the main thread's, while process_rt lives */

/* The runtime of the calling thread: its worker's, else the process
 * runtime. Errors: panics when there is none. */
mt_runtime *mt_runtime_current(void) {
    mt_worker *cur = mt_worker_current();
    mt_runtime *rt = cur ? cur->rt : process_rt;
    if (!rt)
        tml_panic_at(NULL, 0, 0, "no TML runtime: tml_main_enter was not called");
    return rt;
}

/* Copies w's counters into *m. */
static void read_metrics(mt_worker *w, tml_worker_metrics *m) {
    /* relaxed, all: a snapshot (rt.h) */
    m->polls = mt_atomic_load(&w->stats.polls);
    m->steals = mt_atomic_load(&w->stats.steals);
    m->stolen = mt_atomic_load(&w->stats.stolen);
    m->parks = mt_atomic_load(&w->stats.parks);
    m->global_pops = mt_atomic_load(&w->stats.global_pops);
    m->overflows = mt_atomic_load(&w->stats.overflows);
}

int tml_runtime_metrics(tml_worker_metrics *out, int max) {
    MT_ASSERT(max <= 0 || out);
    mt_runtime *rt = process_rt;
    if (!rt)
        return 0;
    for (int k = 0; k < max && (unsigned)k < rt->nworkers; k++)
        read_metrics(&rt->workers[k], &out[k]);
    return (int)rt->nworkers;
}

/* TML_STATS=1: one line per worker, and the totals, on stderr. */
static void print_stats(mt_runtime *rt) {
    tml_worker_metrics m, sum = {0};
    fprintf(stderr, "tml stats: %u worker%s\n%-8s %12s %10s %10s %10s %12s %10s\n", rt->nworkers,
            rt->nworkers == 1 ? "" : "s", "worker", "polls", "steals", "stolen", "parks", "global_pops",
            "overflows");
    for (unsigned k = 0; k < rt->nworkers; k++) {
        read_metrics(&rt->workers[k], &m);
        fprintf(stderr, "%-8u %12llu %10llu %10llu %10llu %12llu %10llu\n", k, (unsigned long long)m.polls,
                (unsigned long long)m.steals, (unsigned long long)m.stolen, (unsigned long long)m.parks,
                (unsigned long long)m.global_pops, (unsigned long long)m.overflows);
        sum.polls += m.polls;
        sum.steals += m.steals;
        sum.stolen += m.stolen;
        sum.parks += m.parks;
        sum.global_pops += m.global_pops;
        sum.overflows += m.overflows;
    }
    fprintf(stderr, "%-8s %12llu %10llu %10llu %10llu %12llu %10llu\n", "total", (unsigned long long)sum.polls,
            (unsigned long long)sum.steals, (unsigned long long)sum.stolen, (unsigned long long)sum.parks,
            (unsigned long long)sum.global_pops, (unsigned long long)sum.overflows);
}

uint32_t tml_available_parallelism(void) {
    return pal_cpu_count();
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
        n = (long)tml_available_parallelism();
    }
    return n > (long)MT_MAX_WORKERS ? MT_MAX_WORKERS : (unsigned)n;
}

/* TML_SHUTDOWN_TIMEOUT_MS (ms, >= 0), else 5 s. Errors: panics on a
 * value that is not a non-negative integer. */
static int64_t shutdown_timeout_from_env(void) {
    const char *s = getenv("TML_SHUTDOWN_TIMEOUT_MS");
    if (!s)
        return MT_SHUTDOWN_TIMEOUT_NS;
    char *end;
    errno = 0;
    long long ms = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno || ms < 0 || ms > INT64_MAX / 1000000)
        tml_panic_at(NULL, 0, 0, "TML_SHUTDOWN_TIMEOUT_MS must be a non-negative integer");
    return (int64_t)ms * 1000000;
}

void tml_main_enter(int argc, char **argv) {
    (void)argc; /* reserved for runtime flags */
    (void)argv;
    MT_ASSERT(!process_rt);
    pal_process_init();
    int err = pal_exit_signals_start(); /* before the workers: they inherit its mask */
    if (err < 0)
        mt_panic_err("starting the signal thread", err);
    mt_stack_thread_begin(&main_alt); /* sync main's recursion too */
    int64_t timeout_ns = shutdown_timeout_from_env();
    err = mt_runtime_new(workers_from_env(), &process_rt);
    if (err)
        mt_panic_err("cannot start the runtime", err);
    mt_runtime_set_shutdown_timeout(process_rt, timeout_ns);
}

void tml_main_watch_deadlocks(void) {
    MT_ASSERT(process_rt);
    mt_deadlock_watch(process_rt);
}

int tml_main_exit(int status) {
    MT_ASSERT(process_rt);
    mt_runtime_shutdown(process_rt);
    const char *stats = getenv("TML_STATS");
    if (stats && strcmp(stats, "1") == 0)
        print_stats(process_rt);
    mt_runtime_destroy(process_rt);
    process_rt = NULL;
    mt_stack_thread_end(&main_alt);
    fflush(stdout);
    pal_exit_signals_stop();
    return status;
}
