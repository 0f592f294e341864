/* io_reactor_epoll.c - the Linux backend of the reactor (io_reactor.h,
 * "Backend contract"): one epoll instance, edge-triggered, plus an
 * eventfd that wakes a blocked epoll_wait.
 *
 * Registration: EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, once per fd for
 * both directions (mio's choice), with the source's token in data.u64.
 * The eventfd is level-triggered with IO_WAKE_TOKEN, so a wake written
 * before the poll starts keeps it from blocking until it is drained.
 *
 * Event mapping (as mio's is_read_closed/is_write_closed):
 *   EPOLLIN -> IO_READABLE; EPOLLOUT -> IO_WRITABLE;
 *   EPOLLRDHUP -> IO_READABLE | IO_READ_CLOSED (the read returns EOF);
 *   EPOLLHUP -> IO_HUP; EPOLLERR -> IO_ERROR.
 *
 * Timeouts: a positive timeout uses epoll_pwait2 (ns precision, Linux >=
 * 5.11), called through syscall(2) so that the build does not depend on
 * the C library knowing it. Where the kernel lacks it (ENOSYS; EPERM from
 * a seccomp filter that denies unknown system calls), the backend falls
 * back, for good, to epoll_wait with the timeout rounded UP to whole ms:
 * a poll never returns before its timeout. EINTR is retried with the time
 * left until the deadline. Rejected: a timerfd in the epoll set (two more
 * syscalls per timed poll). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io_reactor.h"
#include "mt_atomic.h"
#include "mt_chaos.h"

#define MAX_EVENTS 256 /* per epoll_wait; more stay queued for the next */

struct io_backend {
    int epfd;
    int evfd;
    mt_atomic no_pwait2; /* 1: the kernel refused epoll_pwait2 */
    struct epoll_event events[MAX_EVENTS]; /* the poller's only */
};

int io_backend_new(io_backend **out) {
    io_backend *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    int err;
    if ((b->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto fail_epoll;
    if ((b->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        goto fail_eventfd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = IO_WAKE_TOKEN};
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->evfd, &ev) < 0)
        goto fail_add;
    *out = b;
    return 0;
fail_add:      err = -errno; close(b->evfd); goto fail;
fail_eventfd:  err = -errno; close(b->epfd); goto fail;
fail_epoll:    err = -errno;
fail:          free(b); return err;
}

void io_backend_destroy(io_backend *b) {
    close(b->evfd);
    close(b->epfd);
    free(b);
}

int io_backend_add(io_backend *b, io_fd fd, uint64_t token) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = token};
    return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void io_backend_del(io_backend *b, io_fd fd, uint64_t token) {
    (void)token;
    struct epoll_event ev = {0}; /* kernels before 2.6.9 wanted non-NULL */
    (void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev); /* EBADF/ENOENT: fd closed first */
}

void io_backend_wake(io_backend *b) {
    uint64_t one = 1;
    /* EAGAIN only when the counter is about to overflow: already readable */
    while (write(b->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static unsigned bits_of(uint32_t events) {
    unsigned bits = 0;
    if (events & EPOLLIN)
        bits |= IO_READABLE;
    if (events & EPOLLOUT)
        bits |= IO_WRITABLE;
    if (events & EPOLLRDHUP)
        bits |= IO_READABLE | IO_READ_CLOSED;
    if (events & EPOLLHUP)
        bits |= IO_HUP;
    if (events & EPOLLERR)
        bits |= IO_ERROR;
    return bits;
}

/* One wait of at most `timeout_ns` (< 0: none). Returns epoll's count, or
 * -1 with errno set. */
static int wait_once(io_backend *b, int64_t timeout_ns) {
    if (timeout_ns != 0 && mt_chaos(MT_CHAOS_EINTR)) { /* only a wait that blocks is interrupted */
        errno = EINTR;
        return -1;
    }
#ifdef SYS_epoll_pwait2
    if (timeout_ns > 0 && !mt_atomic_load(&b->no_pwait2)) { /* relaxed: a sticky hint */
        struct { /* the kernel's __kernel_timespec: 64-bit fields everywhere */
            long long tv_sec, tv_nsec;
        } ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        long n = syscall(SYS_epoll_pwait2, b->epfd, b->events, MAX_EVENTS, &ts, NULL, (size_t)0);
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return (int)n;
        mt_atomic_store(&b->no_pwait2, 1); /* relaxed: any poller may re-learn it */
    }
#endif
    int ms = -1;
    if (timeout_ns >= 0) { /* round up: never wake before the timeout */
        int64_t up = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
        ms = up > INT_MAX ? INT_MAX : (int)up;
    }
    return epoll_wait(b->epfd, b->events, MAX_EVENTS, ms);
}

int io_backend_wait(io_backend *b, int64_t timeout_ns, io_reactor *r, bool *woken) {
    int64_t deadline = timeout_ns > 0 ? io_wait_deadline(timeout_ns) : 0;
    int n;
    while ((n = wait_once(b, timeout_ns)) < 0) {
        if (errno != EINTR)
            return -errno;
        if (!io_wait_again(&timeout_ns, deadline))
            return 0; /* a poll, or the deadline passed while interrupted */
    }
    int dispatched = 0;
    for (int i = 0; i < n; i++) {
        struct epoll_event *ev = &b->events[i];
        if (ev->data.u64 == IO_WAKE_TOKEN) {
            uint64_t count;
            /* W2 (io_reactor.c): one read takes the whole count */
            while (read(b->evfd, &count, sizeof count) < 0 && errno == EINTR)
                ;
            *woken = true;
        } else if (io_reactor_dispatch(r, ev->data.u64, bits_of(ev->events))) {
            dispatched++;
        }
    }
    return dispatched;
}

