/* rt_test.h - helpers shared by the runtime's Criterion tests.
 *
 * Tests never sleep to synchronise: they wait for an event with a bounded
 * timeout (latch_wait), and each Test has `.timeout = 10` on top. Frames
 * are written by hand exactly as generated code would write them: a
 * struct with a resume `state`, the locals live across awaits, the leaf
 * being awaited, and the result; a poll function; a tml_task_vt. */
#ifndef RT_TEST_H
#define RT_TEST_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mt_internal.h"

#define WAIT_MS 5000 /* bound on any single wait; well under .timeout */

#ifdef _WIN32 /* the C runtime has no setenv; every caller overwrites */
#define setenv(name, value, overwrite) _putenv_s((name), (value))
#endif

/* ThreadSanitizer makes every atomic access ~10x slower: stress tests
 * divide their counts by TEST_SCALE there (same paths, fewer rounds). */
#ifdef MT_THREAD_SANITIZER
#define TEST_SCALE 10
#else
#define TEST_SCALE 1
#endif

/* Skips the running test in a chaos run (a --chaos build with
 * TML_CHAOS_SEED set: runtime/mt_chaos.h) when what it asserts is the
 * absence of an event that chaos injects by design: a spurious wake, a
 * budget spent early, a task placed on another worker. */
#ifdef MT_CHAOS
#define SKIP_UNDER_CHAOS(why)                          \
    do {                                               \
        if (getenv("TML_CHAOS_SEED"))                  \
            cr_skip_test("under chaos: %s", why);      \
    } while (0)
#else
#define SKIP_UNDER_CHAOS(why) ((void)0)
#endif

/* A counter that threads bump and a test waits on. */
typedef struct latch {
    pal_mutex lock;
    pal_cond cond; /* monotonic deadlines */
    int64_t count;
} latch;

static inline void latch_init(latch *l) {
    cr_assert_eq(pal_cond_init(&l->cond), 0);
    pal_mutex_init(&l->lock);
    l->count = 0;
}

static inline void latch_add(latch *l, int64_t n) {
    pal_mutex_lock(&l->lock);
    l->count += n;
    pal_cond_broadcast(&l->cond);
    pal_mutex_unlock(&l->lock);
}

static inline int64_t latch_count(latch *l) {
    pal_mutex_lock(&l->lock);
    int64_t n = l->count;
    pal_mutex_unlock(&l->lock);
    return n;
}

/* Waits until the count reaches `target`; false after WAIT_MS. */
static inline bool latch_wait(latch *l, int64_t target) {
    int64_t deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    int err = 0;
    pal_mutex_lock(&l->lock);
    while (l->count < target && err == 0)
        err = pal_cond_wait_until(&l->cond, &l->lock, deadline);
    bool reached = l->count >= target;
    pal_mutex_unlock(&l->lock);
    return reached;
}

/* Whether a leaf that just returned Pending did so because the running
 * task's cooperative budget was spent (mt_worker.c), rather than to wait. */
static inline bool budget_spent(tml_cx *cx) {
    return ((mt_worker *)cx->worker)->budget == 0;
}

/* Starts the process runtime with `workers` workers, as generated main
 * does with TML_WORKERS set. */
static inline void enter_with_workers(const char *workers) {
    setenv("TML_WORKERS", workers, 1);
    tml_main_enter(0, NULL);
}

/* Runs `fn(arg)` on a new plain pthread (not a runtime worker). */
static inline pthread_t foreign_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/* The start of a task that waits for the test to open it:
 * `await g.recv()` into `v`. A test's frame embeds it first and calls
 * gate_wait from its poll function until it returns TML_READY. */
typedef struct gate {
    uint32_t state;
    tml_chan *g;
    int64_t v;
    tml_recv_fut aw;
} gate;

static inline tml_poll gate_wait(gate *f, tml_cx *cx) {
    if (f->state == 0) {
        tml_recv_init(&f->aw, f->g, &f->v);
        f->state = 1;
    }
    return tml_recv_poll(&f->aw, cx);
}

/* Open fds of this process (entries of /proc/self/fd, less the one the
 * listing itself holds). */
static inline int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* Joins a task whose result is Unit / I32 / I64, asserting it finished,
 * and releases the handle. */
static inline void join_unit(tml_join *h) {
    cr_assert_eq(tml_join_blocking(h, NULL), TML_JOIN_OK);
    tml_join_release(h);
}

static inline int32_t join_i32(tml_join *h) {
    int32_t v = -1;
    cr_assert_eq(tml_join_blocking(h, &v), TML_JOIN_OK);
    tml_join_release(h);
    return v;
}

static inline int64_t join_i64(tml_join *h) {
    int64_t v = -1;
    cr_assert_eq(tml_join_blocking(h, &v), TML_JOIN_OK);
    tml_join_release(h);
    return v;
}

/* A gate is a capacity-1 channel of I64 that tasks wait on (gate_wait)
 * until the test sends one value (open_gate). */
static inline tml_chan *new_gate(void) {
    return tml_chan_new(sizeof(int64_t), 1, NULL);
}

static inline void open_gate(tml_chan *g) {
    int64_t v = 1;
    cr_assert_eq(tml_chan_send_blocking(g, &v), TML_CHAN_OK);
}

/* Drops the test's sender and receiver references to `c`. */
static inline void release_both(tml_chan *c) {
    tml_sender_release(c);
    tml_receiver_release(c);
}

#endif /* RT_TEST_H */
