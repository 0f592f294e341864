/* timer_wheel_test.c - the timing wheel against a brute-force model, with
 * a synthetic clock (no sleeps): exact firing (never early, never missed),
 * tick order, cascades through every level and the top level's ring,
 * O(1) cancel without allocation, overdue inserts, next_deadline progress.
 *
 * Random tests print their seed on failure; TIMER_WHEEL_SEED=<n> in the
 * environment replays one. Deadlines and steps are log-uniform (a random
 * number of random low bits), so every level gets its share, from
 * nanoseconds to years, including beyond the wheel's 52-day range. */
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "rt_test.h"
#include "timer_wheel.h"

#define TICK TIMER_WHEEL_TICK_NS
#define RANGE_NS ((int64_t)TIMER_WHEEL_RANGE_TICKS * TICK) /* 2^52 ns */
#define NO_WHERE (-1)

/* ------------------------------------------------------------ helpers */

static uint64_t seed_or(uint64_t fallback) {
    const char *s = getenv("TIMER_WHEEL_SEED");
    return s ? strtoull(s, NULL, 0) : fallback;
}

/* splitmix64 (Steele, Lea & Flood 2014): tiny, good enough for tests. */
static uint64_t next_rand(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *state, uint64_t n) { return next_rand(state) % n; }

/* A random value of 0..max_bits random low bits: log-uniform magnitude. */
static int64_t log_uniform(uint64_t *rng, unsigned max_bits) {
    unsigned bits = (unsigned)below(rng, max_bits + 1);
    return bits ? (int64_t)(next_rand(rng) & ((UINT64_C(1) << bits) - 1)) : 0;
}

/* A deadline relative to `now`: mostly ahead by 0..2^60 ns (beyond the
 * range from 2^52), sometimes overdue, exactly now, or on a tick edge. */
static int64_t random_deadline(uint64_t *rng, int64_t origin, int64_t now) {
    switch (below(rng, 16)) {
    case 0:
        return now - log_uniform(rng, 44); /* overdue, maybe before origin */
    case 1:
        return now;
    case 2: { /* the first or last ns of a tick ahead */
        int64_t tick = (now - origin) / TICK + 1 + log_uniform(rng, 40);
        return origin + tick * TICK - (int64_t)below(rng, 2);
    }
    default:
        return now + log_uniform(rng, 60);
    }
}

static uint64_t tick_of(int64_t origin, int64_t ns) {
    return ns <= origin ? 0 : ((uint64_t)ns - (uint64_t)origin) >> TIMER_WHEEL_TICK_SHIFT;
}

static int level_of(const tml_timer_node *t) { return t->where / TIMER_WHEEL_SLOTS; }

static tml_timer_node fresh_node(void) { return (tml_timer_node){.where = NO_WHERE}; }

/* Polls at `now` until fewer than `max` come back (all that is due);
 * returns how many wakers it stored in out[]. */
static size_t drain(timer_wheel *w, int64_t now, tml_waker *out, size_t max) {
    size_t n = 0, got;
    do {
        got = timer_wheel_poll(w, now, out + n, max);
        cr_assert_leq(got, max);
        n += got;
    } while (got == max);
    return n;
}

/* ------------------------------------------------------- model test */

enum { IDLE, PENDING }; /* a model node's state; IDLE: where == -1 */

typedef struct model_node {
    tml_timer_node node;
    int state;
    uint64_t due_tick; /* max(deadline's tick, wheel's tick at insert) */
    int level;         /* where it was placed at insert */
    bool beyond;       /* further than the wheel's range at insert */
} model_node;

/* What the model test saw happen, to prove every path was taken. */
typedef struct coverage {
    uint64_t placed[TIMER_WHEEL_LEVELS];   /* inserts per level */
    uint64_t cascaded[TIMER_WHEEL_LEVELS]; /* fired after insert at level >= 1 */
    uint64_t beyond_fired, overdue_fired, cancels, stale_cancels;
    uint64_t split_polls, backward_polls;
} coverage;

typedef struct model {
    timer_wheel w;
    model_node *nodes;
    size_t n_nodes;
    int64_t origin, now; /* now: the latest poll time (what the wheel uses) */
    size_t pending;
    tml_waker *out;
    uint64_t seed;
    coverage cov;
} model;

static void model_insert(model *m, model_node *x, int64_t deadline) {
    uint64_t now_tick = tick_of(m->origin, m->now);
    uint64_t tick = tick_of(m->origin, deadline);
    timer_wheel_insert(&m->w, &x->node, deadline, (tml_waker)(x - m->nodes));
    cr_assert(x->node.where >= 0 && x->node.where < TIMER_WHEEL_LEVELS * TIMER_WHEEL_SLOTS,
              "seed %" PRIu64, m->seed);
    x->state = PENDING;
    x->due_tick = tick > now_tick ? tick : now_tick;
    x->level = level_of(&x->node);
    x->beyond = tick > now_tick && ((tick ^ now_tick) >> 36) != 0;
    m->cov.placed[x->level]++;
    m->pending++;
}

static void model_cancel(model *m, model_node *x) {
    bool was = x->state == PENDING;
    cr_assert_eq(timer_wheel_cancel(&m->w, &x->node), was, "seed %" PRIu64, m->seed);
    cr_assert_eq(x->node.where, NO_WHERE, "seed %" PRIu64, m->seed);
    if (was) {
        x->state = IDLE;
        m->pending--;
        m->cov.cancels++;
    } else {
        m->cov.stale_cancels++;
    }
}

/* Polls the wheel at `now` in batches of `max` and checks the result
 * against the model: exactly the pending nodes with deadline <= the
 * wheel's time fire, in non-decreasing due tick. */
static void model_poll(model *m, int64_t now, size_t max) {
    if (now > m->now)
        m->now = now;
    else if (now < m->now)
        m->cov.backward_polls++;
    size_t n = drain(&m->w, now, m->out, max);
    if (n > max)
        m->cov.split_polls++;
    uint64_t last_tick = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(m->out[i], m->n_nodes, "seed %" PRIu64, m->seed);
        model_node *x = &m->nodes[m->out[i]];
        cr_assert_eq(x->state, PENDING, "seed %" PRIu64 ": fired twice or cancelled", m->seed);
        cr_assert_leq(x->node.deadline_ns, m->now, "seed %" PRIu64 ": fired early", m->seed);
        cr_assert_eq(x->node.where, NO_WHERE, "seed %" PRIu64, m->seed);
        cr_assert_geq(x->due_tick, last_tick, "seed %" PRIu64 ": out of tick order", m->seed);
        last_tick = x->due_tick;
        x->state = IDLE;
        m->pending--;
        if (x->level > 0)
            m->cov.cascaded[x->level]++;
        m->cov.beyond_fired += x->beyond;
        m->cov.overdue_fired += x->due_tick > tick_of(m->origin, x->node.deadline_ns);
    }
    int64_t earliest = INT64_MAX;
    for (size_t i = 0; i < m->n_nodes; i++) {
        model_node *x = &m->nodes[i];
        if (x->state != PENDING)
            continue;
        cr_assert_gt(x->node.deadline_ns, m->now, "seed %" PRIu64 ": node %zu missed", m->seed, i);
        cr_assert_geq(x->node.where, 0, "seed %" PRIu64, m->seed);
        if (x->node.deadline_ns < earliest)
            earliest = x->node.deadline_ns;
    }
    cr_assert_eq(timer_wheel_len(&m->w), m->pending, "seed %" PRIu64, m->seed);
    int64_t next = timer_wheel_next_deadline(&m->w);
    cr_assert_leq(next, earliest, "seed %" PRIu64, m->seed);
    if (m->pending == 0)
        cr_assert_eq(next, INT64_MAX, "seed %" PRIu64, m->seed);
    if (earliest < INT64_MAX) /* else it may be INT64_MAX, the deadline */
        cr_assert_lt(next, INT64_MAX, "seed %" PRIu64, m->seed);
}

/* One random step: insert, cancel, advance and poll, or poll in place. */
static void model_step(model *m, uint64_t *rng) {
    model_node *x = &m->nodes[below(rng, m->n_nodes)];
    uint64_t op = below(rng, 100);
    if (op < 45) {
        if (x->state == PENDING)
            model_cancel(m, x);
        else
            model_insert(m, x, below(rng, 500) ? random_deadline(rng, m->origin, m->now)
                                               : INT64_MAX);
    } else if (op < 60) {
        model_cancel(m, x); /* pending or not */
    } else if (op < 90) {
        /* mostly up to 2^48 ns (3 days); rarely up to 2^55 (1 year) */
        int64_t step = log_uniform(rng, below(rng, 200) ? 48 : 55);
        if (m->now < INT64_C(1) << 62)
            m->now += step;
        model_poll(m, m->now, below(rng, 4) ? 1 + below(rng, 8) : 1024);
    } else {
        model_poll(m, m->now - (below(rng, 2) ? log_uniform(rng, 40) : 0), 1 + below(rng, 4));
    }
}

/* RT-WHEEL-1: the wheel fires exactly the due timers, in tick order, across every level and cascade */
Test(timer_wheel, matches_a_brute_force_model, .timeout = 10) {
    enum { NODES = 1024, OPS = 100000 / TEST_SCALE };
    static model_node nodes[NODES];
    static tml_waker out[NODES + 1024];
    uint64_t seed = seed_or(UINT64_C(0x7a11e1));
    uint64_t rng = seed;
    model m = {.nodes = nodes, .n_nodes = NODES, .out = out, .seed = seed};
    m.origin = m.now = (int64_t)below(&rng, INT64_C(1) << 41) - (INT64_C(1) << 40);
    for (size_t i = 0; i < NODES; i++)
        nodes[i] = (model_node){.node = fresh_node(), .state = IDLE};
    timer_wheel_init(&m.w, m.origin);
    for (int i = 0; i < OPS; i++)
        model_step(&m, &rng);
    model_poll(&m, INT64_MAX - 1, 1024); /* everything but INT64_MAX deadlines */

    for (int l = 0; l < TIMER_WHEEL_LEVELS; l++) {
        cr_assert_gt(m.cov.placed[l], 0, "seed %" PRIu64 ": nothing placed at level %d", seed, l);
        if (l > 0)
            cr_assert_gt(m.cov.cascaded[l], 0, "seed %" PRIu64 ": no cascade from %d", seed, l);
    }
    cr_assert_gt(m.cov.beyond_fired, 0, "seed %" PRIu64 ": the top level's ring never fired", seed);
    cr_assert_gt(m.cov.overdue_fired, 0, "seed %" PRIu64, seed);
    cr_assert_gt(m.cov.cancels, 0, "seed %" PRIu64, seed);
    cr_assert_gt(m.cov.stale_cancels, 0, "seed %" PRIu64, seed);
    cr_assert_gt(m.cov.split_polls, 0, "seed %" PRIu64, seed);
    cr_assert_gt(m.cov.backward_polls, 0, "seed %" PRIu64, seed);
    timer_wheel_fini(&m.w);
}

/* --------------------------------------------------- cancel, no alloc */

Test(timer_wheel, million_inserts_and_cancels_allocate_nothing, .timeout = 10) {
    enum { BATCH = 1000, ROUNDS = 1000 / TEST_SCALE };
    static tml_timer_node nodes[BATCH];
    uint64_t seed = seed_or(2), rng = seed;
    int64_t now = 0;
    timer_wheel w;
    timer_wheel_init(&w, now);
    for (size_t i = 0; i < BATCH; i++)
        nodes[i] = fresh_node();
#ifdef __GLIBC__ /* the allocator's own count; elsewhere the cancels alone are checked */
    struct mallinfo2 before = mallinfo2();
#endif
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < BATCH; i++) /* deadlines over every level */
            timer_wheel_insert(&w, &nodes[i], now + 1 + log_uniform(&rng, 58), i);
        cr_assert_eq(timer_wheel_len(&w), BATCH);
        for (size_t k = 0; k < BATCH; k++) { /* in a scattered order */
            size_t i = (k * 7919) % BATCH;
            cr_assert(timer_wheel_cancel(&w, &nodes[i]), "seed %" PRIu64, seed);
        }
        cr_assert_eq(timer_wheel_len(&w), 0);
        cr_assert_eq(timer_wheel_next_deadline(&w), INT64_MAX, "seed %" PRIu64, seed);
        now += log_uniform(&rng, 40);
        cr_assert_eq(timer_wheel_poll(&w, now, NULL, 0), 0);
    }
#ifdef __GLIBC__
    struct mallinfo2 after = mallinfo2();
    cr_assert_eq(after.uordblks, before.uordblks); /* and timer_wheel.c never calls malloc */
#endif
    for (size_t i = 0; i < BATCH; i++)
        cr_assert_not(timer_wheel_cancel(&w, &nodes[i]));
    timer_wheel_fini(&w);
}

/* ------------------------------------------------------- never early */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Test(timer_wheel, never_fires_a_nanosecond_early, .timeout = 10) {
    enum { N = 3000 / TEST_SCALE };
    static tml_timer_node nodes[N];
    static int64_t sorted[N];
    static tml_waker out[N];
    uint64_t seed = seed_or(3), rng = seed;
    int64_t origin = 12345;
    timer_wheel w;
    timer_wheel_init(&w, origin);
    for (size_t i = 0; i < N; i++) {
        nodes[i] = fresh_node();
        sorted[i] = random_deadline(&rng, origin, origin) + 1;
        if (sorted[i] <= origin)
            sorted[i] = origin + 1 + (int64_t)i;
        timer_wheel_insert(&w, &nodes[i], sorted[i], i);
    }
    qsort(sorted, N, sizeof *sorted, cmp_i64);
    size_t fired = 0;
    for (size_t i = 0; i < N; i++) {
        int64_t d = sorted[i];
        if (i > 0 && d == sorted[i - 1])
            continue;
        cr_assert_leq(timer_wheel_next_deadline(&w), d, "seed %" PRIu64, seed);
        cr_assert_eq(drain(&w, d - 1, out, N), 0, "seed %" PRIu64 ": early at %" PRId64, seed, d);
        size_t n = drain(&w, d, out, N);
        cr_assert_gt(n, 0, "seed %" PRIu64 ": late at %" PRId64, seed, d);
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(nodes[out[k]].deadline_ns, d, "seed %" PRIu64, seed);
        fired += n;
    }
    cr_assert_eq(fired, N);
    cr_assert_eq(timer_wheel_len(&w), 0);

    /* one far jump straight to deadline - 1: cascades through every level */
    for (int i = 0; i < N; i++) {
        tml_timer_node t = fresh_node();
        int64_t now = (int64_t)below(&rng, INT64_C(1) << 50);
        timer_wheel_init(&w, now);
        int64_t d = now + 1 + log_uniform(&rng, 60);
        timer_wheel_insert(&w, &t, d, 7);
        cr_assert_eq(timer_wheel_poll(&w, d - 1, out, 4), 0, "seed %" PRIu64 ": early", seed);
        cr_assert_eq(t.where >= 0, true);
        cr_assert_leq(timer_wheel_next_deadline(&w), d);
        cr_assert_eq(timer_wheel_poll(&w, d, out, 4), 1, "seed %" PRIu64 ": late", seed);
        cr_assert_eq(out[0], 7);
        cr_assert_eq(t.where, NO_WHERE);
    }
}

/* ------------------------------------------ overdue, cancel, re-insert */

Test(timer_wheel, overdue_insert_fires_at_the_next_poll, .timeout = 10) {
    timer_wheel w;
    tml_waker out[8];
    tml_timer_node a = fresh_node(), b = fresh_node(), c = fresh_node(), d = fresh_node();
    timer_wheel_init(&w, 1000);
    cr_assert_eq(timer_wheel_poll(&w, 1000 + 5 * TICK + 17, out, 8), 0);
    timer_wheel_insert(&w, &a, 10, 1);                   /* before the origin */
    timer_wheel_insert(&w, &b, 1000 + 2 * TICK, 2);      /* a processed tick */
    timer_wheel_insert(&w, &c, 1000 + 5 * TICK + 17, 3); /* exactly now */
    timer_wheel_insert(&w, &d, 1000 + 5 * TICK + 18, 4); /* 1 ns ahead */
    cr_assert_eq(timer_wheel_len(&w), 4);
    cr_assert_leq(timer_wheel_next_deadline(&w), 10);
    /* a poll from the past still counts as the wheel's time */
    size_t n = timer_wheel_poll(&w, 0, out, 8);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[0] + out[1] + out[2], 6);
    cr_assert_eq(timer_wheel_next_deadline(&w), 1000 + 5 * TICK + 18); /* exact */
    cr_assert_eq(timer_wheel_poll(&w, 1000 + 5 * TICK + 18, out, 8), 1);
    cr_assert_eq(out[0], 4);
    cr_assert_eq(timer_wheel_next_deadline(&w), INT64_MAX);
    timer_wheel_fini(&w);
}

Test(timer_wheel, cancel_only_what_is_pending_and_reinsert, .timeout = 10) {
    timer_wheel w;
    tml_waker out[4];
    tml_timer_node t = fresh_node(), never = fresh_node();
    timer_wheel_init(&w, 0);
    cr_assert_not(timer_wheel_cancel(&w, &never)); /* never inserted */
    timer_wheel_insert(&w, &t, 3 * TICK, 9);
    cr_assert_eq(timer_wheel_poll(&w, 3 * TICK, out, 4), 1);
    cr_assert_not(timer_wheel_cancel(&w, &t)); /* already fired */
    timer_wheel_insert(&w, &t, 100 * TICK, 10); /* re-insert a fired node */
    cr_assert(timer_wheel_cancel(&w, &t));
    cr_assert_not(timer_wheel_cancel(&w, &t)); /* already cancelled */
    cr_assert_eq(timer_wheel_poll(&w, 200 * TICK, out, 4), 0);
    timer_wheel_insert(&w, &t, 300 * TICK, 11); /* re-insert a cancelled node */
    cr_assert_eq(timer_wheel_len(&w), 1);
    cr_assert_eq(timer_wheel_poll(&w, 300 * TICK - 1, out, 4), 0);
    cr_assert_eq(timer_wheel_poll(&w, 300 * TICK, out, 4), 1);
    cr_assert_eq(out[0], 11);
    cr_assert_eq(timer_wheel_len(&w), 0);
    timer_wheel_fini(&w);
}

Test(timer_wheel, a_full_batch_leaves_the_rest_for_the_next_poll, .timeout = 10) {
    enum { N = 200 };
    static tml_timer_node nodes[N];
    tml_waker out[3];
    timer_wheel w;
    timer_wheel_init(&w, 0);
    for (int i = 0; i < N; i++) { /* ticks 199..0, some spread over levels */
        nodes[i] = fresh_node();
        int64_t d = (N - 1 - i) * TICK * (i % 3 ? 1 : 64) + i;
        timer_wheel_insert(&w, &nodes[i], d, (tml_waker)i);
    }
    tml_timer_node late = fresh_node(), overdue = fresh_node();
    uint64_t last = 0;
    size_t fired = 0, n;
    int64_t now = 250 * TICK * 64;
    bool inserted = false, overdue_fired = false;
    while ((n = timer_wheel_poll(&w, now, out, 3)) > 0) {
        cr_assert_leq(n, 3);
        for (size_t k = 0; k < n; k++) {
            if (out[k] == 1001) { /* due at the tick it was inserted in */
                overdue_fired = true;
                continue;
            }
            cr_assert_lt(out[k], N);
            uint64_t tick = (uint64_t)(nodes[out[k]].deadline_ns / TICK);
            cr_assert_geq(tick, last);
            last = tick;
            fired++;
        }
        if (!inserted) { /* between the batches of one poll */
            timer_wheel_insert(&w, &late, now + 1, 1000);
            timer_wheel_insert(&w, &overdue, 0, 1001);
            inserted = true;
        }
    }
    cr_assert_eq(fired, N);
    cr_assert(overdue_fired);
    cr_assert_eq(overdue.where, NO_WHERE);
    cr_assert_eq(timer_wheel_len(&w), 1);
    cr_assert_eq(timer_wheel_next_deadline(&w), now + 1);
    cr_assert_eq(timer_wheel_poll(&w, now + 1, out, 3), 1);
    cr_assert_eq(out[0], 1000);
}

Test(timer_wheel, extreme_deadlines_and_origins, .timeout = 10) {
    timer_wheel w;
    tml_waker out[4];
    tml_timer_node lo = fresh_node(), hi = fresh_node(), mid = fresh_node();
    timer_wheel_init(&w, -(INT64_C(1) << 62));
    timer_wheel_insert(&w, &hi, INT64_MAX, 1);
    timer_wheel_insert(&w, &lo, INT64_MIN, 2);
    timer_wheel_insert(&w, &mid, INT64_C(1) << 61, 3);
    cr_assert_eq(level_of(&hi), TIMER_WHEEL_LEVELS - 1); /* clamped to the top */
    cr_assert_eq(timer_wheel_poll(&w, INT64_MIN, out, 4), 1);
    cr_assert_eq(out[0], 2);
    cr_assert_leq(timer_wheel_next_deadline(&w), INT64_C(1) << 61);
    cr_assert_eq(timer_wheel_poll(&w, (INT64_C(1) << 61) - 1, out, 4), 0);
    cr_assert_eq(timer_wheel_poll(&w, INT64_C(1) << 61, out, 4), 1);
    cr_assert_eq(timer_wheel_poll(&w, INT64_MAX - 1, out, 4), 0);
    cr_assert_leq(timer_wheel_next_deadline(&w), INT64_MAX);
    cr_assert_eq(timer_wheel_poll(&w, INT64_MAX, out, 4), 1);
    cr_assert_eq(out[0], 1);
    cr_assert_eq(timer_wheel_next_deadline(&w), INT64_MAX);
}

/* ----------------------------------------------------- next_deadline */

Test(timer_wheel, polling_at_next_deadline_makes_progress, .timeout = 10) {
    enum { ROUNDS = 300 / TEST_SCALE, MAX_N = 200 };
    static tml_timer_node nodes[MAX_N];
    static tml_waker out[MAX_N];
    uint64_t seed = seed_or(5), rng = seed;
    uint64_t exact = 0;
    for (int r = 0; r < ROUNDS; r++) {
        timer_wheel w;
        int64_t origin = (int64_t)below(&rng, INT64_C(1) << 50), now = origin;
        size_t n = 1 + below(&rng, MAX_N);
        timer_wheel_init(&w, origin);
        for (size_t i = 0; i < n; i++) {
            nodes[i] = fresh_node();
            timer_wheel_insert(&w, &nodes[i], random_deadline(&rng, origin, now), i);
        }
        size_t fired = 0, steps = 0;
        int64_t next = timer_wheel_next_deadline(&w);
        while (next != INT64_MAX) {
            int64_t earliest = INT64_MAX;
            for (size_t i = 0; i < n; i++)
                if (nodes[i].where >= 0 && nodes[i].deadline_ns < earliest)
                    earliest = nodes[i].deadline_ns;
            cr_assert_leq(next, earliest, "seed %" PRIu64, seed);
            /* exact when the earliest is due within the current 64 ticks */
            if (tick_of(origin, earliest) >> 6 == tick_of(origin, now) >> 6) {
                cr_assert_eq(next, earliest, "seed %" PRIu64, seed);
                exact++;
            }
            if (next > now)
                now = next;
            size_t got = drain(&w, now, out, MAX_N);
            for (size_t k = 0; k < got; k++)
                cr_assert_leq(nodes[out[k]].deadline_ns, now, "seed %" PRIu64, seed);
            fired += got;
            int64_t after = timer_wheel_next_deadline(&w);
            cr_assert(got > 0 || after > next, "seed %" PRIu64 ": no progress at %" PRId64, seed,
                      next);
            next = after;
            /* each timer: a step per level, plus one per rotation of the
             * top level (2^52 ns) beyond the range */
            cr_assert_lt(++steps, n * (TIMER_WHEEL_LEVELS + 1 + 256), "seed %" PRIu64, seed);
        }
        cr_assert_eq(fired, n, "seed %" PRIu64, seed);
        cr_assert_eq(timer_wheel_len(&w), 0);
    }
    cr_assert_gt(exact, 0);
}
