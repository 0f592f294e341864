/* io_backend_test.c - the reactor's backend contract (io_reactor.h), on
 * whichever backend the target compiles (epoll on Linux, IOCP with AFD
 * polls on Windows, kqueue on macOS), through TCP sockets of the platform
 * layer only, so the same tests run under wine: a readable edge, and the
 * next one after an EAGAIN cleared it (where IOCP re-arms its poll);
 * writable at once and again after the send buffer drains; peer close
 * as READ_CLOSED and EOF; a refused connect as an error; a wake before
 * the poll and one from another thread; a timeout that never ends
 * early; deregistering a source whose polls are pending.
 * io_reactor_test.c covers the core (ticks, wakers, cancellation, churn)
 * with Linux's own tools. Waits are bounded (WAIT_MS); nothing sleeps. */
#include "io_reactor.h"
#include "rt_test.h"

#define MS INT64_C(1000000)

/* A connected TCP pair on the loopback: sv[0] accepted, sv[1] connected. */
static void tcp_pair(io_fd sv[2]) {
    tml_sockaddr any = {.family = TML_AF_IPV4, .ip = {127, 0, 0, 1}}, a, peer;
    io_fd l;
    int err;
    cr_assert_eq(pal_tcp_listen(&any, 4, &l), 0);
    cr_assert_eq(pal_socket_addr(l, false, &a), 0);
    cr_assert_eq(pal_tcp_connect_start(&a, &sv[1]), 0);
    while ((err = pal_tcp_accept(l, &sv[0], &peer)) == -EAGAIN || err == -EINTR)
        cr_assert_eq(pal_socket_wait(l, false), 0);
    cr_assert_eq(err, 0);
    while ((err = pal_tcp_connect_result(sv[1])) == -EAGAIN)
        cr_assert_eq(pal_socket_wait(sv[1], true), 0);
    cr_assert_eq(err, 0);
    pal_socket_close(l);
}

/* Polls `r` until `s` reports one of `want` for `interest`; returns the
 * bits and the tick (for io_source_clear_ready) in *tick. */
static unsigned poll_until(io_reactor *r, io_source *s, unsigned interest, unsigned want, uint32_t *tick) {
    int64_t deadline = tml_now_ns() + WAIT_MS * MS;
    unsigned bits;
    while (!((bits = io_source_poll_ready(s, interest, 0, tick)) & want)) {
        cr_assert_lt(tml_now_ns(), deadline, "no readiness %#x for %#x (have %#x)", want, interest, bits);
        cr_assert_geq(io_reactor_poll(r, 100 * MS), 0);
    }
    return bits;
}

/* A reactor, a TCP pair, and sv[0] registered as s. */
typedef struct fixture {
    io_reactor *r;
    io_fd sv[2];
    io_source *s;
} fixture;

static fixture setup(void) {
    fixture x;
    cr_assert_eq(io_reactor_new(&x.r), 0);
    tcp_pair(x.sv);
    cr_assert_eq(io_reactor_register(x.r, x.sv[0], &x.s), 0);
    return x;
}

/* Deregisters s, destroys the reactor, closes the sockets still open. */
static void teardown(fixture *x) {
    io_reactor_deregister(x->r, x->s);
    io_reactor_destroy(x->r);
    for (int i = 0; i < 2; i++)
        if (x->sv[i] != IO_FD_NONE)
            pal_socket_close(x->sv[i]);
}

/* RT-BACKEND-1: a readable edge, and after an EAGAIN cleared it, the next one */
Test(io_backend, readable_and_again_after_eagain, .timeout = 10) {
    fixture x = setup();
    io_reactor *r = x.r;
    io_source *s = x.s;
    io_fd *sv = x.sv;
    cr_assert_geq(io_reactor_poll(r, 0), 0);
    cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, NULL), 0, "readable with nothing sent");
    char c;
    uint32_t tick;
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(pal_send(sv[1], "x", 1), 1);
        cr_assert(poll_until(r, s, IO_READABLE, IO_READABLE, &tick) & IO_READABLE);
        cr_assert_eq(pal_recv(sv[0], &c, 1), 1);
        cr_assert_eq(pal_recv(sv[0], &c, 1), -EAGAIN);
        io_source_clear_ready(r, s, IO_READABLE, tick); /* where a one-shot backend re-arms */
        cr_assert_eq(io_source_poll_ready(s, IO_READABLE, 0, NULL), 0, "round %d", round);
    }
    teardown(&x);
}

/* RT-BACKEND-1: writable at once, and again once a full send buffer drains */
Test(io_backend, writable_again_after_the_send_buffer_drains, .timeout = 10) {
    fixture x = setup();
    io_reactor *r = x.r;
    io_source *s = x.s;
    io_fd *sv = x.sv;
    uint32_t tick;
    poll_until(r, s, IO_WRITABLE, IO_WRITABLE, &tick);
    static char buf[65536];
    int64_t sent = 0, n;
    while ((n = pal_send(sv[0], buf, sizeof buf)) > 0)
        sent += n;
    cr_assert_eq(n, -EAGAIN);
    io_source_clear_ready(r, s, IO_WRITABLE, tick);
    cr_assert_eq(io_source_poll_ready(s, IO_WRITABLE, 0, NULL), 0);
    for (int64_t got = 0; got < sent;) { /* the peer drains it all */
        if ((n = pal_recv(sv[1], buf, sizeof buf)) == -EAGAIN) {
            cr_assert_eq(pal_socket_wait(sv[1], false), 0);
            continue;
        }
        cr_assert_gt(n, 0);
        got += n;
    }
    poll_until(r, s, IO_WRITABLE, IO_WRITABLE, &tick);
    teardown(&x);
}

/* RT-BACKEND-1: a peer's close reads as READ_CLOSED, and the read as EOF */
Test(io_backend, peer_close_is_read_closed_and_eof, .timeout = 10) {
    fixture x = setup();
    io_reactor *r = x.r;
    io_source *s = x.s;
    io_fd *sv = x.sv;
    pal_socket_close(sv[1]);
    sv[1] = IO_FD_NONE;
    uint32_t tick;
    poll_until(r, s, IO_READABLE, IO_READ_CLOSED | IO_HUP, &tick);
    char c;
    cr_assert_eq(pal_recv(sv[0], &c, 1), 0);
    teardown(&x);
}

/* RT-BACKEND-1: a refused connect reports an error; the connect says which */
Test(io_backend, refused_connect_is_an_error, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    tml_sockaddr any = {.family = TML_AF_IPV4, .ip = {127, 0, 0, 1}}, a;
    io_fd l, c;
    cr_assert_eq(pal_tcp_listen(&any, 4, &l), 0);
    cr_assert_eq(pal_socket_addr(l, false, &a), 0);
    pal_socket_close(l); /* nobody listens on a's port now */
    int err = pal_tcp_connect_start(&a, &c);
    if (err == -ECONNREFUSED) { /* refused at once: nothing to wait for */
        io_reactor_destroy(r);
        return;
    }
    cr_assert_eq(err, 0);
    io_source *s;
    cr_assert_eq(io_reactor_register(r, c, &s), 0);
    uint32_t tick;
    while ((err = pal_tcp_connect_result(c)) == -EAGAIN) {
        poll_until(r, s, IO_WRITABLE, IO_WRITABLE | IO_ERROR | IO_HUP, &tick);
        io_source_clear_ready(r, s, IO_WRITABLE, tick);
    }
    cr_assert_eq(err, -ECONNREFUSED);
    io_reactor_deregister(r, s);
    io_reactor_destroy(r);
    pal_socket_close(c);
}

/* A thread blocked in io_reactor_poll(r, -1); `done` counts its return. */
typedef struct blocked {
    io_reactor *r;
    latch started, done;
    int result;
} blocked;

static void *blocked_main(void *arg) {
    blocked *b = arg;
    latch_add(&b->started, 1);
    b->result = io_reactor_poll(b->r, -1);
    latch_add(&b->done, 1);
    return NULL;
}

/* RT-BACKEND-1: a wake from another thread ends a blocked poll; one
 * before the poll makes it return at once */
Test(io_backend, a_wake_ends_a_blocked_poll_and_is_not_lost_before_one, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    io_reactor_wake(r); /* before: the poll must not block */
    cr_assert_eq(io_reactor_poll(r, -1), 0);
    blocked b = {.r = r};
    latch_init(&b.started);
    latch_init(&b.done);
    pthread_t t = foreign_thread(blocked_main, &b);
    cr_assert(latch_wait(&b.started, 1));
    io_reactor_wake(r); /* during, or before its poll starts: either way it returns */
    cr_assert(latch_wait(&b.done, 1), "the wake did not end the poll");
    pthread_join(t, NULL);
    cr_assert_eq(b.result, 0);
    io_reactor_destroy(r);
}

/* RT-BACKEND-1: a timed poll with nothing to report never ends early */
Test(io_backend, a_timeout_never_ends_early, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    for (int64_t ms = 1; ms <= 30; ms *= 5) {
        int64_t t0 = tml_now_ns();
        cr_assert_eq(io_reactor_poll(r, ms * MS), 0);
        cr_assert_geq(tml_now_ns() - t0, ms * MS, "a %lld ms poll ended early", (long long)ms);
    }
    io_reactor_destroy(r);
}

/* RT-BACKEND-1: deregistering a source with polls pending, then closing
 * its socket and destroying the reactor, leaves nothing behind (ASan) */
Test(io_backend, deregister_with_polls_pending, .timeout = 10) {
    io_reactor *r;
    cr_assert_eq(io_reactor_new(&r), 0);
    io_fd sv[2];
    tcp_pair(sv);
    io_source *s, *t;
    cr_assert_eq(io_reactor_register(r, sv[0], &s), 0);
    cr_assert_eq(io_reactor_register(r, sv[1], &t), 0);
    cr_assert_geq(io_reactor_poll(r, 0), 0); /* sv[0]'s read poll stays pending */
    io_reactor_deregister(r, s);
    pal_socket_close(sv[0]);
    cr_assert_geq(io_reactor_poll(r, 10 * MS), 0); /* takes the cancellation, if any */
    io_reactor_destroy(r); /* with t's polls still pending */
    pal_socket_close(sv[1]);
}
