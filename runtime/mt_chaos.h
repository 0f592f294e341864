/* mt_chaos.h - fault injection for the chaos build (./configure.py --chaos).
 *
 * A chaos build (-DMT_CHAOS) compiles injection points into the runtime:
 * each asks mt_chaos(point) whether to take an unusual but legal path
 * here, a path the runtime must survive in production even though the
 * usual tests never drive it (a task polled with nothing ready, a budget
 * spent at an awkward await, a timer expired late, a worker stalled or
 * robbed, an interrupted system call). In any other build mt_chaos() is
 * the constant false and every point compiles away: zero cost.
 *
 * Chaos is on only when TML_CHAOS_SEED=N (a decimal 64-bit number) is set
 * in the environment; every decision then comes from a per-thread
 * pseudo-random stream seeded from N and the order in which threads first
 * asked (splitmix64 seeding a xorshift64* stream: Vigna, "An experimental
 * exploration of Marsaglia's xorshift generators", 2016). A run is
 * reproducible as far as one thread's decisions go; the interleaving of
 * threads is still the OS's (this is injection, not a deterministic
 * simulator), so a seed that fails once fails often, not always.
 *
 * Invariant every point keeps: an injection only takes a path the
 * runtime can take without chaos (a Pending poll may be repeated, a
 * budget may run out at any leaf, a timer may fire any time after its
 * deadline, a thread may stall anywhere, a syscall may be interrupted),
 * so whatever fails under chaos is a real bug, never a chaos artefact.
 * Injections that could lose a wake-up are confined to where the real
 * system cannot lose one (EAGAIN only before a socket is registered with
 * the reactor: registration reports a ready socket at once). */
#ifndef MT_CHAOS_H
#define MT_CHAOS_H

#include <stdbool.h>
#include <stdint.h>

/* The injection points. Rates (per 1024 asks) are in mt_chaos.c. */
typedef enum mt_chaos_point {
    MT_CHAOS_SPURIOUS_WAKE, /* a task that returned Pending is woken anyway (run_task) */
    MT_CHAOS_BUDGET,        /* a leaf finds its task's budget spent (mt_budget_poll) */
    MT_CHAOS_TIMER_DELAY,   /* an expiry pass runs some ticks late (mt_timers_expire) */
    MT_CHAOS_STEAL,         /* a worker steals before its own queue (next_task) */
    MT_CHAOS_PARK,          /* a worker with work hands it off and parks (worker_main) */
    MT_CHAOS_UNPARK_DELAY,  /* a thread stalls before an unpark (mt_parker_unpark) */
    MT_CHAOS_EINTR,         /* a reactor wait or socket call is interrupted */
    MT_CHAOS_EAGAIN,        /* an unregistered socket's call would block */
    MT_CHAOS_NPOINTS
} mt_chaos_point;

#ifdef MT_CHAOS
/* Whether to inject at `point` now: true at the point's rate while
 * TML_CHAOS_SEED is set, always false otherwise. Threads: any (each
 * thread draws from its own stream; no locks). */
bool mt_chaos(mt_chaos_point point);

/* A number in [0, n) from the calling thread's stream; n > 0. For the
 * size of an injection (how many ticks, how long a stall). */
uint64_t mt_chaos_below(uint64_t n);

/* Stalls the calling thread for 1 to `max_us` microseconds (a thread the
 * OS preempted). */
void mt_chaos_stall(uint64_t max_us);
#else
static inline bool mt_chaos(mt_chaos_point point) {
    (void)point;
    return false;
}
static inline uint64_t mt_chaos_below(uint64_t n) {
    (void)n;
    return 0;
}
static inline void mt_chaos_stall(uint64_t max_us) {
    (void)max_us;
}
#endif

#endif /* MT_CHAOS_H */
