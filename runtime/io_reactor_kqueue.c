/* io_reactor_kqueue.c - the macOS / BSD backend of the reactor
 * (io_reactor.h, "Backend contract"): one kqueue, edge-triggered through
 * EV_CLEAR, plus an EVFILT_USER event that wakes a blocked kevent.
 *
 * Registration: two filters per fd, EVFILT_READ and EVFILT_WRITE, each
 * EV_ADD | EV_CLEAR (edge-triggered: an event is reported once per
 * change, as epoll's EPOLLET), with the source's token in udata (mio's
 * choice on these systems). Adding a registered fd again modifies it
 * rather than failing, so -EEXIST is epoll's alone.
 *
 * Wake-up: EVFILT_USER ident 0, added with EV_CLEAR; io_backend_wake
 * triggers it (NOTE_TRIGGER), and taking the event resets it (W2 of
 * io_reactor.c: the drain is the retrieval itself). A trigger before the
 * wait keeps the wait from blocking.
 *
 * Event mapping (as mio's kqueue selector):
 *   EVFILT_READ -> IO_READABLE, with EV_EOF also IO_READ_CLOSED;
 *   EVFILT_WRITE -> IO_WRITABLE, with EV_EOF IO_HUP (both sides gone);
 *   EV_EOF with a socket error in fflags, or EV_ERROR -> IO_ERROR.
 *
 * Timeouts: kevent takes a timespec (ns); EINTR is retried with the time
 * left until the deadline, as the epoll backend does.
 *
 * Compiled for macOS with the zig toolchain (configure.py --target=
 * aarch64-macos / x86_64-macos); nothing on the project's machines runs
 * it (spec/runtime.md, RT-BACKEND-1: compiled, not run here). */
#include <errno.h>
#include <stdlib.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "io_reactor.h"

#define MAX_EVENTS 256 /* per kevent; more stay queued for the next */
#define WAKE_IDENT 0

struct io_backend {
    int kq;
    struct kevent events[MAX_EVENTS]; /* the poller's only */
};

int io_backend_new(io_backend **out) {
    io_backend *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    int err;
    if ((b->kq = kqueue()) < 0) {
        err = -errno;
        free(b);
        return err;
    }
    struct kevent ev;
    EV_SET(&ev, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(b->kq, &ev, 1, NULL, 0, NULL) < 0) {
        err = -errno;
        close(b->kq);
        free(b);
        return err;
    }
    *out = b;
    return 0;
}

void io_backend_destroy(io_backend *b) {
    close(b->kq);
    free(b);
}

/* Applies `flags` to both filters of `fd`. Returns 0 or -errno. */
static int change(io_backend *b, io_fd fd, unsigned short flags, uint64_t token) {
    struct kevent ev[2];
    EV_SET(&ev[0], fd, EVFILT_READ, flags, 0, 0, (void *)(uintptr_t)token);
    EV_SET(&ev[1], fd, EVFILT_WRITE, flags, 0, 0, (void *)(uintptr_t)token);
    return kevent(b->kq, ev, 2, NULL, 0, NULL) < 0 ? -errno : 0;
}

int io_backend_add(io_backend *b, io_fd fd, uint64_t token) {
    return change(b, fd, EV_ADD | EV_CLEAR, token);
}

void io_backend_del(io_backend *b, io_fd fd, uint64_t token) {
    (void)change(b, fd, EV_DELETE, token); /* ENOENT/EBADF: fd closed first */
}

void io_backend_rearm(io_backend *b, io_fd fd, uint64_t token, unsigned interest) {
    (void)b, (void)fd, (void)token, (void)interest; /* EV_CLEAR reports every change */
}

void io_backend_wake(io_backend *b) {
    struct kevent ev;
    EV_SET(&ev, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    while (kevent(b->kq, &ev, 1, NULL, 0, NULL) < 0 && errno == EINTR)
        ;
}

static unsigned bits_of(const struct kevent *ev) {
    unsigned bits = 0;
    if (ev->filter == EVFILT_READ)
        bits |= IO_READABLE | (ev->flags & EV_EOF ? IO_READ_CLOSED : 0);
    if (ev->filter == EVFILT_WRITE)
        bits |= IO_WRITABLE | (ev->flags & EV_EOF ? IO_HUP : 0);
    if ((ev->flags & EV_ERROR) || ((ev->flags & EV_EOF) && ev->fflags != 0))
        bits |= IO_ERROR;
    return bits;
}

int io_backend_wait(io_backend *b, int64_t timeout_ns, io_reactor *r, bool *woken) {
    int64_t deadline = timeout_ns > 0 ? io_wait_deadline(timeout_ns) : 0;
    int n;
    for (;;) {
        struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
        if ((n = kevent(b->kq, NULL, 0, b->events, MAX_EVENTS, timeout_ns < 0 ? NULL : &ts)) >= 0)
            break;
        if (errno != EINTR)
            return -errno;
        if (!io_wait_again(&timeout_ns, deadline))
            return 0; /* a poll, or the deadline passed while interrupted */
    }
    int dispatched = 0;
    for (int i = 0; i < n; i++) {
        struct kevent *ev = &b->events[i];
        if (ev->filter == EVFILT_USER)
            *woken = true;
        else if (io_reactor_dispatch(r, (uint64_t)(uintptr_t)ev->udata, bits_of(ev)))
            dispatched++;
    }
    return dispatched;
}
