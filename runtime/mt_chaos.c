/* mt_chaos.c - the chaos build's decisions (contract: mt_chaos.h).
 *
 * Each thread seeds its own xorshift64* stream the first time it asks:
 * from splitmix64(seed + k), where k counts the threads that asked before
 * it, so the worker threads of a run, started in order, get the same
 * streams every run with the same seed. The seed is read once per
 * process. Compiled only with -DMT_CHAOS; empty otherwise. */
#ifdef MT_CHAOS
#include "mt_chaos.h"

#include <errno.h>
#include <stdlib.h>

#include "mt_atomic.h"
#include "pal.h"

/* Injections per 1024 asks, by point. Chosen so that every point fires
 * thousands of times in the suite while programs still finish: a delayed
 * timer expiry is common (a quarter of the passes), a worker parking with
 * work is rare (each costs a hand-off through the global queue). */
static const uint16_t rate[MT_CHAOS_NPOINTS] = {
    [MT_CHAOS_SPURIOUS_WAKE] = 64,
    [MT_CHAOS_BUDGET] = 32,
    [MT_CHAOS_TIMER_DELAY] = 256,
    [MT_CHAOS_STEAL] = 32,
    [MT_CHAOS_PARK] = 4,
    [MT_CHAOS_UNPARK_DELAY] = 128,
    [MT_CHAOS_EINTR] = 64,
    [MT_CHAOS_EAGAIN] = 128,
};

static pal_once once = PAL_ONCE_INIT;
static bool enabled;
static uint64_t seed;
static mt_atomic threads_seen; /* threads that seeded a stream so far */

static _Thread_local uint64_t state; /* 0: this thread has not asked yet */

static void read_seed(void) {
    const char *s = getenv("TML_CHAOS_SEED");
    if (!s || !*s)
        return;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) /* a typo must not silently turn chaos off */
        abort();
    seed = v;
    enabled = true;
}

/* splitmix64 (Steele, Lea, Flood 2014): spreads consecutive inputs. */
static uint64_t splitmix64(uint64_t x) {
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* The next number of this thread's stream (xorshift64*). */
static uint64_t next(void) {
    if (state == 0) {
        uint64_t k = mt_atomic_fetch_add(&threads_seen, 1);
        state = splitmix64(seed + k) | 1; /* xorshift's state is never 0 */
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * UINT64_C(0x2545F4914F6CDD1D);
}

bool mt_chaos(mt_chaos_point point) {
    pal_once_run(&once, read_seed);
    if (!enabled)
        return false;
    return (next() >> 54) < rate[point]; /* the top 10 bits: 0..1023 */
}

uint64_t mt_chaos_below(uint64_t n) {
    return next() % n;
}

void mt_chaos_stall(uint64_t max_us) {
    uint64_t us = 1 + mt_chaos_below(max_us);
    pal_sleep_until(pal_now_ns() + (int64_t)us * 1000);
}
#else
typedef int mt_chaos_unused; /* ISO C wants a declaration in every file */
#endif
