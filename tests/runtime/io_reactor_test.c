/* io_reactor_test.c - the reactor: a readable or writable edge wakes the
 * task waiting for it, and re-arms after EAGAIN; a clear with a stale tick
 * keeps the readiness; io_reactor_wake interrupts a blocked poll and is
 * not lost before one; timeouts never end early; EINTR is retried;
 * deregister races a concurrent poller safely, a late event for a released
 * slot is ignored, and no fd leaks; cancel_all wakes waiters with
 * IO_CANCELLED; HUP and socket errors read as ready.
 *
 * Wakers are real: tasks of the process runtime poll their sources with
 * cx->waker, and a plain thread runs io_reactor_poll in a loop on a
 * reactor of the test's own (as the runtime's driver does on its own). Tests that only check readiness drive
 * io_reactor_poll(r, 0) themselves. Waits are bounded (latch_wait, or
 * deadlines of WAIT_MS); nothing sleeps to synchronise. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io_reactor.h"
#include "rt_test.h"

#define MS INT64_C(1000000)

/* --------------------------------------------------------------- helpers */

/* A connected AF_UNIX stream pair; sv[0] is non-blocking, and sv[1] too
 * when `both`. */
static void socket_pair(int sv[2], bool both) {
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    for (int i = 0; i < (both ? 2 : 1); i++)
        cr_assert_eq(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
}

static int64_t elapsed_since(int64_t t0) { return tml_now_ns() - t0; }

/* Whether thread `tid` is blocked in an epoll wait right now: the number
 * in /proc/self/task/TID/syscall (or, where that file is unreadable, the
 * thread sleeping at all). */
static bool blocked_in_epoll(long tid) {
    char path[64], buf[128] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *f = fopen(path, "r");
    if (f) {
        bool got = fgets(buf, sizeof buf, f) != NULL;
        fclose(f);
        if (got) {
            long nr = strtol(buf, NULL, 10);
            return nr == SYS_epoll_pwait
#ifdef SYS_epoll_wait
                   || nr == SYS_epoll_wait
#endif
#ifdef SYS_epoll_pwait2
                   || nr == SYS_epoll_pwait2
#endif
                ;
        }
    }
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    if (!(f = fopen(path, "r")))
        return false;
    bool got = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    char *p = got ? strrchr(buf, ')') : NULL; /* "tid (comm) S ..." */
    return p && p[1] == ' ' && p[2] == 'S';
}

/* Waits (bounded) until thread `tid` blocks in epoll. */
static void wait_blocked_in_epoll(mt_atomic *tid) {
    int64_t deadline = tml_now_ns() + WAIT_MS * MS;
    while (mt_atomic_load_acquire(tid) == 0 || !blocked_in_epoll((long)mt_atomic_load_acquire(tid))) {
        cr_assert_lt(tml_now_ns(), deadline, "the poller never blocked in epoll");
        sched_yield();
    }
}

/* A plain thread that dispatches events until stopped, as the runtime's
 * driver does. */
typedef struct poller {
    io_reactor *r;
    pthread_t thread;
    mt_atomic stop;
    mt_atomic errors; /* negative returns of io_reactor_poll */
} poller;

static void *poller_main(void *arg) {
    poller *p = arg;
    while (!mt_atomic_load_acquire(&p->stop)) /* pairs with poller_stop's release */
        if (io_reactor_poll(p->r, -1) < 0)
            mt_atomic_fetch_add(&p->errors, 1);
    return NULL;
}

static void poller_start(poller *p, io_reactor *r) {
    *p = (poller){.r = r};
    p->thread = foreign_thread(poller_main, p);
}

static void poller_stop(poller *p) {
    mt_atomic_store_release(&p->stop, 1);
    io_reactor_wake(p->r);
    pthread_join(p->thread, NULL);
    cr_assert_eq(mt_atomic_load(&p->errors), 0);
}

/* What an I/O task ends with. */
typedef struct io_result {
    int64_t bytes;  /* moved */
    unsigned bits;  /* the last readiness poll_ready reported */
    int err;        /* errno of the last syscall; 0 on success or EOF */
} io_result;

/* async func reader(s, fd, want) / writer(s, fd, want): reads (writes)
 * until `want` bytes, EOF, an error or cancellation; each Pending counts in
 * `waits`. Written as net.c's leaves are: poll_ready, syscall, clear_ready
 * on EAGAIN with the tick. */
typedef struct reader_frame {
    uint32_t state;
    io_reactor *r;
    io_source *s;
    int fd;
    int64_t want;
    latch *waits;
    io_result res;
} reader_frame;

static tml_poll transfer_poll(reader_frame *f, tml_cx *cx, unsigned interest) {
    static const char zeros[16384]; /* what writers send */
    char in[4096];                  /* what readers read into */
    for (;;) {
        uint32_t tick;
        unsigned r = io_source_poll_ready(f->s, interest, cx->waker, &tick);
        if (r == 0) {
            latch_add(f->waits, 1);
            return TML_PENDING;
        }
        f->res.bits = r;
        if (r & IO_CANCELLED)
            return TML_READY;
        int64_t left = f->want - f->res.bytes;
        size_t len = left < (int64_t)sizeof zeros ? (size_t)left : sizeof zeros;
        ssize_t n = interest == IO_READABLE ? read(f->fd, in, sizeof in) : write(f->fd, zeros, len);
        if (n > 0 && (f->res.bytes += n) < f->want)
            continue;
        if (n >= 0)
            return TML_READY; /* enough, or EOF */
        if (errno != EAGAIN) {
            f->res.err = errno;
            return TML_READY;
        }
        io_source_clear_ready(f->r, f->s, interest, tick);
    }
}

static tml_poll reader_poll(void *frame, tml_cx *cx) { return transfer_poll(frame, cx, IO_READABLE); }
static tml_poll writer_poll(void *frame, tml_cx *cx) { return transfer_poll(frame, cx, IO_WRITABLE); }

static const tml_task_vt reader_vt = {.poll = reader_poll,
                                      .frame_size = sizeof(reader_frame),
                                      .result_offset = offsetof(reader_frame, res),
                                      .result_size = sizeof(io_result),
                                      .name = "reader"};

static const tml_task_vt writer_vt = {.poll = writer_poll,
                                      .frame_size = sizeof(reader_frame),
                                      .result_offset = offsetof(reader_frame, res),
                                      .result_size = sizeof(io_result),
                                      .name = "writer"};

static io_result join(tml_join *h) {
    io_result res;
    cr_assert_eq(tml_join_blocking(h, &res), TML_JOIN_OK);
    tml_join_release(h);
    return res;
}

/* ------------------------------------------------------------ readiness */

/* RT-REACTOR-1: a readiness edge wakes the task waiting on that direction, once per edge */
Test(io_reactor, readable_wakes_the_waiting_task_and_rearms_after_eagain, .timeout = 10) {
    SKIP_UNDER_CHAOS("it asserts one poll per edge, and chaos wakes tasks spuriously");
    enter_with_workers("2");
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    poller p;
    poller_start(&p, r);
    int sv[2];
    socket_pair(sv, true);
    io_source *s;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    latch waits;
    latch_init(&waits);
    tml_join *h = tml_spawn(&reader_vt, &(reader_frame){.r = r, .s = s, .fd = sv[0], .want = 3, .waits = &waits});
    for (int i = 1; i <= 3; i++) { /* each byte after the task went Pending: a new edge */
        cr_assert(latch_wait(&waits, i), "round %d: the task never waited", i);
        cr_assert_eq(write(sv[1], "x", 1), 1);
    }
    io_result res = join(h);
    cr_assert_eq(res.bytes, 3);
    cr_assert_eq(res.err, 0);
    cr_assert_eq(latch_count(&waits), 3); /* woken once per edge: no spurious poll */
    poller_stop(&p);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
    tml_main_exit(0);
}

Test(io_reactor, writable_wakes_the_writer_after_the_buffer_fills_and_drains, .timeout = 10) {
    enum { TOTAL = 4 << 20 }; /* many times the socket buffer */
    enter_with_workers("2");
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    poller p;
    poller_start(&p, r);
    int sv[2];
    socket_pair(sv, false); /* the test reads sv[1] blocking */
    io_source *s;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    latch waits;
    latch_init(&waits);
    tml_join *h = tml_spawn(&writer_vt, &(reader_frame){.r = r, .s = s, .fd = sv[0], .want = TOTAL, .waits = &waits});
    cr_assert(latch_wait(&waits, 1), "the writer never filled the buffer");
    static char buf[65536];
    int64_t got = 0;
    while (got < TOTAL) {
        ssize_t n = read(sv[1], buf, sizeof buf);
        cr_assert_gt(n, 0);
        got += n;
    }
    io_result res = join(h);
    cr_assert_eq(res.bytes, TOTAL);
    cr_assert_eq(res.err, 0);
    cr_assert_geq(latch_count(&waits), 1);
    poller_stop(&p);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
    tml_main_exit(0);
}

/* The race the tick exists for: the syscall saw EAGAIN, then an event
 * arrived, then the operation clears with the tick it read before. */
Test(io_reactor, clear_with_a_stale_tick_keeps_the_readiness, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    int sv[2];
    socket_pair(sv, true);
    io_source *s;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    char c;
    uint32_t t0, t1, t2;
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, &t0), 0); /* nothing yet */
    cr_assert_eq(write(sv[1], "a", 1), 1);
    cr_assert_geq(io_reactor_poll(r, 0), 1);
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, &t0), IO_READABLE);
    cr_assert_eq(read(sv[0], &c, 1), 1);
    cr_assert_eq(read(sv[0], &c, 1), -1); /* the operation's EAGAIN ... */
    cr_assert_eq(errno, EAGAIN);
    cr_assert_eq(write(sv[1], "b", 1), 1); /* ... an edge arrives ... */
    cr_assert_eq(io_reactor_poll(r, 0), 1);
    io_source_clear_ready(r, s, IO_READABLE, t0); /* ... then the clear: stale */
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, &t1), IO_READABLE, "the edge was lost");
    cr_assert_neq(t1, t0);
    cr_assert_eq(read(sv[0], &c, 1), 1);
    cr_assert_eq(c, 'b');
    cr_assert_eq(read(sv[0], &c, 1), -1);
    io_source_clear_ready(r, s, IO_READABLE, t1); /* current tick: clears */
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, &t2), 0);
    cr_assert_eq(t2, t1);
    cr_assert_eq(write(sv[1], "c", 1), 1); /* edge-triggered: re-armed */
    cr_assert_eq(io_reactor_poll(r, 0), 1);
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, NULL), IO_READABLE);
    /* a clear of one direction leaves the other */
    cr_assert_eq(io_source_poll_ready(s, IO_WRITABLE, 0, &t2), IO_WRITABLE);
    io_source_clear_ready(r, s, IO_READABLE, t2);
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE | IO_WRITABLE, 0, NULL), IO_WRITABLE);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
}

/* async func probe(): stores its waker for reading, optionally drops it,
 * then makes the source readable and dispatches the event itself (this
 * task is the only poller). tml_wake of the running task's own token only
 * sets its worker's self_woken, so whether the dispatch woke it can be
 * read right there, deterministically. */
typedef struct probe_frame {
    uint32_t state;
    io_reactor *r;
    io_source *s;
    int peer;
    bool drop;
    struct {
        int dispatched;
        bool stored, woken;
    } res;
} probe_frame;

static tml_poll probe_poll(void *frame, tml_cx *cx) {
    probe_frame *f = frame;
    f->res.stored = io_source_poll_ready(f->s, IO_READABLE, cx->waker, NULL) == 0;
    if (f->drop)
        io_source_drop_waiter(f->s, IO_READABLE);
    if (write(f->peer, "x", 1) != 1)
        return TML_READY;
    f->res.dispatched = io_reactor_poll(f->r, 0);
    f->res.woken = ((mt_worker *)cx->worker)->self_woken;
    return TML_READY;
}

static const tml_task_vt probe_vt = {.poll = probe_poll,
                                     .frame_size = sizeof(probe_frame),
                                     .result_offset = offsetof(probe_frame, res),
                                     .result_size = sizeof(((probe_frame *)0)->res),
                                     .name = "probe"};

Test(io_reactor, an_event_wakes_the_stored_waker_but_not_a_dropped_one, .timeout = 10) {
    enter_with_workers("1");
    for (int drop = 0; drop < 2; drop++) {
        io_reactor *r;
        cr_assert_eq(io_reactor_new(&r), 0);
        int sv[2];
        socket_pair(sv, true);
        io_source *s;
        cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
        probe_frame f = {.r = r, .s = s, .peer = sv[1], .drop = drop};
        tml_block_on(&probe_vt, &f, &f.res);
        cr_assert(f.res.stored);
        cr_assert_geq(f.res.dispatched, 1);
        cr_assert_eq(f.res.woken, !drop, "drop=%d", drop);
        io_reactor_deregister(r, s);
        io_reactor_destroy(r);
        close(sv[0]);
        close(sv[1]);
    }
    tml_main_exit(0);
}

/* --------------------------------------------------------------- wake-up */

typedef struct blocked_poll {
    io_reactor *r;
    int64_t timeout_ns;
    mt_atomic tid;
    int rc;
    int64_t elapsed_ns;
    latch done;
} blocked_poll;

static void *blocked_poll_main(void *arg) {
    blocked_poll *b = arg;
    mt_atomic_store_release(&b->tid, (uint64_t)syscall(SYS_gettid));
    int64_t t0 = tml_now_ns();
    b->rc = io_reactor_poll(b->r, b->timeout_ns);
    b->elapsed_ns = elapsed_since(t0);
    latch_add(&b->done, 1); /* publishes rc and elapsed_ns */
    return NULL;
}

static pthread_t start_blocked_poll(blocked_poll *b, io_reactor *r, int64_t timeout_ns) {
    *b = (blocked_poll){.r = r, .timeout_ns = timeout_ns};
    latch_init(&b->done);
    return foreign_thread(blocked_poll_main, b);
}

Test(io_reactor, wake_interrupts_a_poll_blocked_in_another_thread, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    for (int round = 0; round < 3; round++) { /* each wake-up re-arms */
        blocked_poll b;
        pthread_t t = start_blocked_poll(&b, r, -1);
        wait_blocked_in_epoll(&b.tid);
        int64_t t0 = tml_now_ns();
        io_reactor_wake(r);
        cr_assert(latch_wait(&b.done, 1), "round %d: the poll was not interrupted", round);
        cr_assert_lt(elapsed_since(t0), 1000 * MS);
        pthread_join(t, NULL);
        cr_assert_eq(b.rc, 0); /* no I/O event */
    }
    io_reactor_destroy(r);
}

Test(io_reactor, a_wake_before_the_poll_is_not_lost_and_is_drained, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    for (int i = 0; i < 3; i++) /* coalesced into one */
        io_reactor_wake(r);
    int64_t t0 = tml_now_ns();
    cr_assert_eq(io_reactor_poll(r, WAIT_MS * MS), 0);
    cr_assert_lt(elapsed_since(t0), 1000 * MS, "the wake was lost");
    t0 = tml_now_ns(); /* drained: the next poll waits its timeout */
    cr_assert_eq(io_reactor_poll(r, 20 * MS), 0);
    cr_assert_geq(elapsed_since(t0), 20 * MS);
    io_reactor_wake(r); /* and the next wake signals again */
    t0 = tml_now_ns();
    cr_assert_eq(io_reactor_poll(r, WAIT_MS * MS), 0);
    cr_assert_lt(elapsed_since(t0), 1000 * MS);
    io_reactor_destroy(r);
}

/* --------------------------------------------------------------- timeouts */

Test(io_reactor, timeout_never_ends_early_and_is_not_rounded_far_up, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    static const int64_t timeouts[] = {2 * MS, 1 * MS + 1, MS / 2};
    for (size_t k = 0; k < sizeof timeouts / sizeof *timeouts; k++) {
        int64_t best = INT64_MAX;
        for (int i = 0; i < 5; i++) {
            int64_t t0 = tml_now_ns();
            cr_assert_eq(io_reactor_poll(r, timeouts[k]), 0);
            int64_t e = elapsed_since(t0);
            cr_assert_geq(e, timeouts[k], "poll(%lld ns) returned after %lld ns",
                          (long long)timeouts[k], (long long)e);
            best = e < best ? e : best;
        }
        cr_assert_lt(best, 50 * MS); /* bounded, not exact: a loaded machine */
    }
    int64_t t0 = tml_now_ns();
    cr_assert_eq(io_reactor_poll(r, 0), 0); /* 0: does not block */
    cr_assert_lt(elapsed_since(t0), 50 * MS);
    io_reactor_destroy(r);
}

static mt_atomic signals_handled; /* lock-free: async-signal-safe */

static void on_signal(int sig) {
    (void)sig;
    mt_atomic_fetch_add(&signals_handled, 1);
}

Test(io_reactor, a_signal_interrupting_the_poll_is_retried, .timeout = 10) {
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    /* blocking without a timeout: EINTR must not end it; a wake does */
    blocked_poll b;
    pthread_t t = start_blocked_poll(&b, r, -1);
    wait_blocked_in_epoll(&b.tid);
    cr_assert_eq(pthread_kill(t, SIGUSR1), 0);
    int64_t deadline = tml_now_ns() + WAIT_MS * MS;
    while (mt_atomic_load_acquire(&signals_handled) == 0) { /* the handler ran, in the poller */
        cr_assert_lt(tml_now_ns(), deadline);
        sched_yield();
    }
    wait_blocked_in_epoll(&b.tid); /* back in epoll, not returned */
    cr_assert_eq(latch_count(&b.done), 0);
    io_reactor_wake(r);
    cr_assert(latch_wait(&b.done, 1));
    pthread_join(t, NULL);
    cr_assert_eq(b.rc, 0);
    /* with a timeout: resumed for the time left, never returned early */
    t = start_blocked_poll(&b, r, 200 * MS);
    wait_blocked_in_epoll(&b.tid);
    cr_assert_eq(pthread_kill(t, SIGUSR1), 0);
    cr_assert(latch_wait(&b.done, 1));
    pthread_join(t, NULL);
    cr_assert_eq(b.rc, 0);
    cr_assert_geq(b.elapsed_ns, 200 * MS);
    cr_assert_geq(mt_atomic_load(&signals_handled), 2);
    io_reactor_destroy(r);
}

/* ----------------------------------------------------- deregister, leaks */

typedef struct churn_arg {
    io_reactor *r;
    int rounds;
    mt_atomic *errors;
} churn_arg;

#define CHURN_PAIRS 16 /* per round: the poller's batches mix old and new sources */

/* Each round registers both ends of CHURN_PAIRS fresh pairs, makes every
 * `a` end readable (the poller dispatches those events concurrently),
 * checks that no `b` end (which never receives data) reads as readable and
 * no `a` end as closed, then deregisters them all, closing each `a` while
 * its `b` is still registered. Free slots are reused at once (LIFO), so a
 * late event of an old source would land on a new one if tokens did not
 * carry generations (probabilistic; the next test is deterministic). */
static void *churn_main(void *arg) {
    churn_arg *a = arg;
    for (int round = 0; round < a->rounds; round++) {
        int fd[CHURN_PAIRS][2];
        io_source *s[CHURN_PAIRS][2];
        int n = 0, bad = 0;
        for (; n < CHURN_PAIRS; n++) {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd[n]) < 0)
                break;
            if (io_reactor_register(a->r, fd[n][0], &s[n][0]) < 0) {
                bad++;
                close(fd[n][0]);
                close(fd[n][1]);
                break;
            }
            if (io_reactor_register(a->r, fd[n][1], &s[n][1]) < 0) {
                bad++;
                io_reactor_deregister(a->r, s[n][0]);
                close(fd[n][0]);
                close(fd[n][1]);
                break;
            }
        }
        bad += n < CHURN_PAIRS;
        for (int i = 0; i < n; i++)
            bad += write(fd[i][1], "x", 1) != 1;
        for (int k = 0; k < 2; k++) { /* before and after a pause */
            for (int i = 0; i < n; i++) {
                bad += io_source_poll_ready(s[i][1], IO_READABLE, 0, NULL) != 0;
                bad += (io_source_poll_ready(s[i][0], IO_READABLE, 0, NULL) & ~IO_READABLE) != 0;
            }
            sched_yield();
        }
        for (int i = 0; i < n; i++) { /* closing `a` sends `b` a HUP event, in flight as `b` goes */
            io_reactor_deregister(a->r, s[i][0]);
            close(fd[i][0]);
            io_reactor_deregister(a->r, s[i][1]);
            close(fd[i][1]);
        }
        if (bad)
            mt_atomic_fetch_add(a->errors, (uint64_t)bad);
    }
    return NULL;
}

/* Stalls the interrupted thread for ~20 us: signals sent to the poller
 * at random moments stall it between taking a batch of events from the
 * kernel and dispatching them, which is when deregistrations race it. */
static void on_stall(int sig) {
    (void)sig;
    int64_t until = tml_now_ns() + 20000;
    while (tml_now_ns() < until)
        mt_cpu_relax();
}

typedef struct staller {
    pthread_t target;
    mt_atomic stop;
} staller;

static void *staller_main(void *arg) {
    staller *st = arg;
    while (!mt_atomic_load_acquire(&st->stop)) {
        pthread_kill(st->target, SIGUSR2);
        for (int i = 0; i < 4; i++)
            sched_yield();
    }
    return NULL;
}

/* 10,000 registrations and deregistrations (TEST_SCALE fewer under TSan)
 * against a poller that dispatches their events at the same time, and is
 * stalled at random points by signals (which also makes its waits retry
 * EINTR under load). */
Test(io_reactor, deregister_races_a_concurrent_poller_without_leaks, .timeout = 10) {
    enum { THREADS = 2, REGISTRATIONS = 10000 / TEST_SCALE };
    struct sigaction sa = {.sa_handler = on_stall};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    int before = count_fds();
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    poller p;
    poller_start(&p, r);
    staller st = {.target = p.thread};
    pthread_t stall = foreign_thread(staller_main, &st);
    mt_atomic errors = {0};
    churn_arg a = {r, REGISTRATIONS / (THREADS * 2 * CHURN_PAIRS), &errors};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = foreign_thread(churn_main, &a);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    mt_atomic_store_release(&st.stop, 1);
    pthread_join(stall, NULL);
    poller_stop(&p);
    cr_assert_eq(mt_atomic_load(&errors), 0);
    cr_assert_eq(count_fds(), before + 2); /* the epoll fd and the eventfd */
    io_reactor_destroy(r);
    cr_assert_eq(count_fds(), before);
}

/* White-box: tokens are index << 32 | generation, and a never-used slot
 * starts at generation 1 (io_reactor.c). The test is the only poller, so
 * it may dispatch events by hand as the backend does. */
Test(io_reactor, a_late_event_for_a_released_slot_is_ignored, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    int sv[2];
    socket_pair(sv, true);
    io_source *s;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0); /* slot 0, generation 1 */
    uint64_t old = UINT64_C(0) << 32 | 1;
    cr_assert(io_reactor_dispatch(r, old, IO_WRITABLE));
    cr_assert_eq(io_source_poll_ready(s, IO_WRITABLE, 0, NULL), IO_WRITABLE);
    io_reactor_deregister(r, s);
    cr_assert_not(io_reactor_dispatch(r, old, IO_HUP)); /* released */
    io_source *s2;
    cr_assert_eq(io_reactor_register(r, sv[1], &s2), 0);
    cr_assert_eq(s2, s); /* the slot was reused, with generation 2 */
    cr_assert_not(io_reactor_dispatch(r, old, IO_READABLE | IO_HUP));
    cr_assert_eq(io_source_poll_ready(s2, IO_READABLE, 0, NULL), 0, "a late event leaked");
    cr_assert(io_reactor_dispatch(r, UINT64_C(0) << 32 | 2, IO_READABLE));
    cr_assert_eq(io_source_poll_ready(s2, IO_READABLE, 0, NULL), IO_READABLE);
    cr_assert_not(io_reactor_dispatch(r, UINT64_C(12345) << 32 | 1, IO_READABLE)); /* no such slot */
    io_reactor_deregister(r, s2);
    io_reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
}

Test(io_reactor, ten_thousand_sources_register_and_report_readiness, .timeout = 10) {
    enum { N = 10000 };
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < N + 64 && rl.rlim_max >= N + 64) {
        rl.rlim_cur = N + 64;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    int n = rl.rlim_cur < N + 64 ? (int)rl.rlim_cur - 64 : N;
    if (n < N)
        cr_log_warn("RLIMIT_NOFILE allows only %d sources", n);
    int before = count_fds();
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    int *fds = malloc(n * sizeof *fds);
    io_source **ss = malloc(n * sizeof *ss);
    cr_assert(fds && ss);
    for (int i = 0; i < n; i++) {
        cr_assert_geq(fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0);
        cr_assert_eq(io_reactor_register(r, fds[i], &ss[i]), 0);
    }
    int64_t deadline = tml_now_ns() + WAIT_MS * MS;
    for (int events = 0; events < n;) { /* every eventfd is writable */
        int k = io_reactor_poll(r, 0);
        cr_assert_geq(k, 0);
        events += k;
        cr_assert_lt(tml_now_ns(), deadline);
    }
    for (int i = 0; i < n; i++) {
        cr_assert_eq(io_source_poll_ready(ss[i], IO_WRITABLE, 0, NULL), IO_WRITABLE);
        io_reactor_deregister(r, ss[i]);
        close(fds[i]);
    }
    io_reactor_destroy(r);
    free(fds);
    free(ss);
    cr_assert_eq(count_fds(), before);
}

Test(io_reactor, register_reports_errors_and_leaves_no_slot_behind, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    int sv[2];
    socket_pair(sv, true);
    io_source *s, *dup;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    cr_assert_eq(io_reactor_register(r, sv[0], &dup), -EEXIST);
    int file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC); /* not pollable */
    cr_assert_geq(file, 0);
    cr_assert_eq(io_reactor_register(r, file, &dup), -EPERM);
    close(file);
    cr_assert_eq(io_reactor_register(r, 1 << 20, &dup), -EBADF);
    io_source *again;
    cr_assert_eq(io_reactor_register(r, sv[1], &again), 0); /* a failed slot is reused */
    cr_assert_neq(again, s);
    io_reactor_deregister(r, again);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
}

/* ---------------------------------------------------- closing, shutdown */

Test(io_reactor, cancel_all_wakes_waiters_and_reports_cancelled, .timeout = 10) {
    enter_with_workers("2");
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    int sv[2];
    socket_pair(sv, true);
    io_source *s;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    latch waits;
    latch_init(&waits);
    tml_join *h = tml_spawn(&reader_vt, &(reader_frame){.r = r, .s = s, .fd = sv[0], .want = 1, .waits = &waits});
    cr_assert(latch_wait(&waits, 1));
    io_reactor_cancel_all(r); /* no poller runs: cancel_all wakes by itself */
    io_result res = join(h);
    cr_assert(res.bits & IO_CANCELLED);
    cr_assert_eq(res.bytes, 0);
    /* every later poll, and every later registration, is cancelled */
    cr_assert(io_source_poll_ready(s, IO_WRITABLE, 0, NULL) & IO_CANCELLED);
    io_source *late;
    cr_assert_eq(io_reactor_register(r, sv[1], &late), 0);
    cr_assert_eq(io_source_poll_ready(late, IO_READABLE, 0, NULL), IO_CANCELLED);
    io_source_clear_ready(r, late, IO_READABLE, 0); /* final: never cleared */
    cr_assert_eq(io_source_poll_ready(late, IO_READABLE, 0, NULL), IO_CANCELLED);
    io_reactor_cancel_all(r); /* idempotent */
    io_reactor_deregister(r, late);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
    tml_main_exit(0);
}

Test(io_reactor, peer_close_wakes_the_reader_with_hup, .timeout = 10) {
    enter_with_workers("2");
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    poller p;
    poller_start(&p, r);
    int sv[2];
    socket_pair(sv, true);
    io_source *s;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    latch waits;
    latch_init(&waits);
    tml_join *h = tml_spawn(&reader_vt, &(reader_frame){.r = r, .s = s, .fd = sv[0], .want = 100, .waits = &waits});
    cr_assert(latch_wait(&waits, 1));
    close(sv[1]);
    io_result res = join(h);
    cr_assert_eq(res.bytes, 0); /* read saw EOF */
    cr_assert_eq(res.err, 0);
    cr_assert(res.bits & IO_HUP, "bits %#x", res.bits);
    cr_assert(res.bits & IO_READ_CLOSED, "bits %#x", res.bits);
    poller_stop(&p);
    /* HUP is reported to writers too, and is final */
    uint32_t tick;
    cr_assert(io_source_poll_ready(s, IO_WRITABLE, 0, &tick) & IO_HUP);
    io_source_clear_ready(r, s, IO_READABLE | IO_WRITABLE, tick);
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE | IO_WRITABLE, 0, NULL), IO_READ_CLOSED | IO_HUP);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    close(sv[0]);
    tml_main_exit(0);
}

/* Polls `r` (bounded) until poll_ready(s, interest) has any of `bits`. */
static unsigned poll_until(io_reactor *r, io_source *s, unsigned interest, unsigned bits) {
    int64_t deadline = tml_now_ns() + WAIT_MS * MS;
    unsigned got;
    while (!((got = io_source_poll_ready(s, interest, 0, NULL)) & bits)) {
        cr_assert_lt(tml_now_ns(), deadline, "still %#x", got);
        cr_assert_geq(io_reactor_poll(r, 100 * MS), 0);
    }
    return got;
}

Test(io_reactor, tcp_accept_readiness_and_reset_as_error, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(l, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    cr_assert_eq(bind(l, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(listen(l, 16), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&addr, &len), 0);
    io_source *ls;
    cr_assert_eq(io_reactor_register(r, l, &ls), 0);
    cr_assert_eq(io_source_poll_ready(ls, IO_READABLE, 0, NULL), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* blocking client */
    cr_assert_eq(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(poll_until(r, ls, IO_READABLE, IO_READABLE), IO_READABLE);
    int a = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    cr_assert_geq(a, 0);
    io_source *as;
    cr_assert_eq(io_reactor_register(r, a, &as), 0);
    cr_assert_eq(poll_until(r, as, IO_WRITABLE, IO_WRITABLE), IO_WRITABLE);
    struct linger lg = {1, 0}; /* close with RST */
    cr_assert_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(c);
    unsigned got = poll_until(r, as, IO_WRITABLE, IO_HUP | IO_ERROR);
    cr_assert(got & IO_HUP, "bits %#x", got);
    char buf[8];
    cr_assert_eq(read(a, buf, sizeof buf), -1); /* the syscall sees the error */
    cr_assert_eq(errno, ECONNRESET);
    io_reactor_deregister(r, as);
    io_reactor_deregister(r, ls);
    close(a);
    close(l);
    io_reactor_destroy(r);
}
