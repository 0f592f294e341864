/* io_reactor.h - the I/O reactor: edge-triggered readiness of registered
 * fds, one waker slot per direction, and wake-up of a blocked poller.
 *
 * Model: Tokio's ScheduledIo over mio (tokio/src/runtime/io/
 * scheduled_io.rs, registration.rs). Each fd is registered once, for both
 * directions, edge-triggered. A source keeps readiness bits and a tick
 * (bumped by every event); the reactor sets bits when an event arrives
 * and wakes the waker stored for that direction. A leaf future (net.c)
 * clears the bits only when its syscall says EAGAIN, and only if no event
 * arrived since it read the readiness, so no edge is ever lost:
 *
 *     for (;;) {
 *         uint32_t tick;
 *         unsigned r = io_source_poll_ready(s, IO_READABLE, cx->waker, &tick);
 *         if (r == 0)
 *             return TML_PENDING;            // waker stored; woken on an event
 *         if (r & IO_CANCELLED)
 *             return fail(-ECANCELED);       // runtime shutting down
 *         ssize_t n = read(fd, buf, len);    // HUP/ERROR: the syscall says why
 *         if (n >= 0 || errno != EAGAIN)
 *             return done(n);
 *         io_source_clear_ready(r, s, IO_READABLE, tick);
 *     }
 *
 * The interface carries no OS type: io_reactor.c holds everything that
 * does not depend on the OS (sources, readiness, wakers, cancellation,
 * wake-up coalescing) and calls a backend through the contract at the end
 * of this header. configure.py compiles one backend per target:
 * io_reactor_epoll.c (Linux), io_reactor_kqueue.c (macOS, the BSDs),
 * io_reactor_iocp.c (Windows).
 *
 * Threads: every function may be called from any thread, except
 * io_reactor_poll (one polling thread at a time: the runtime guarantees it,
 * debug builds assert it) and io_reactor_destroy (no other call may run or
 * follow). A source is used by at most one waiting future per direction at
 * a time (a reader and a writer may wait on it concurrently). */
#ifndef IO_REACTOR_H
#define IO_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "pal.h"
#include "tml/rt.h"

typedef struct io_reactor io_reactor;
typedef struct io_source io_source; /* one registered fd; 40 bytes */

/* Readiness bits. READABLE/WRITABLE are the two directions of interest;
 * the others are reported "ready" to the directions listed, so that the
 * operation runs its syscall and sees the condition (EOF, EPIPE, the
 * socket error) or returns a Cancelled error. Final (never cleared):
 * READ_CLOSED, HUP and CANCELLED. */
enum {
    IO_READABLE = 1u << 0,    /* data, a connection to accept, or EOF */
    IO_WRITABLE = 1u << 1,    /* send buffer space, or connect finished */
    IO_READ_CLOSED = 1u << 2, /* peer shut down its write side (EPOLLRDHUP); readers */
    IO_HUP = 1u << 3,         /* both directions closed (EPOLLHUP); both */
    IO_ERROR = 1u << 4,       /* a pending socket error (EPOLLERR); both */
    IO_CANCELLED = 1u << 5    /* io_reactor_cancel_all ran; both */
};

/* Creates a reactor (its OS poller and its wake-up fd) into *out, owned by
 * the caller. Returns 0, or -errno (-ENOMEM, -EMFILE, ...). */
int io_reactor_new(io_reactor **out);

/* Closes the reactor's own fds and frees it and every registration still
 * in it (the registered fds stay open: the caller owns them). Threads: no
 * thread may be in, or later call, any function on `r` or its sources. */
void io_reactor_destroy(io_reactor *r);

/* Registers `fd` for both directions, edge-triggered, and returns its
 * source in *out (owned by the reactor until io_reactor_deregister). The
 * fd must be non-blocking, and a connecting socket must be registered
 * after its connect() call (an unconnected socket reports HUP, which is
 * final). A source registered after io_reactor_cancel_all starts
 * cancelled. Threads: any. Returns 0, or -errno from the backend
 * (-EEXIST: fd already registered; -EBADF; -EPERM: a regular file) or
 * -ENOSPC past 2^24 live sources. */
int io_reactor_register(io_reactor *r, io_fd fd, io_source **out);

/* Removes `s` from the OS poller and releases it; the caller closes the
 * fd afterwards (closing it first is tolerated). Safe while another
 * thread is in io_reactor_poll: events carry a token (slot index and
 * generation), and an event for a released or reused slot is ignored.
 * Threads: any, once no future uses `s` any more (drop the leaves first). */
void io_reactor_deregister(io_reactor *r, io_source *s);

/* Readiness of `s` for `interest` (IO_READABLE, IO_WRITABLE, or both).
 * Returns the ready bits that apply to `interest` (the direction bits, and
 * READ_CLOSED / HUP / ERROR / CANCELLED as listed above); when there are
 * none, stores `waker` in the slot of each direction of `interest`
 * (replacing what was there) and returns 0: the next event for that
 * direction, or io_reactor_cancel_all, wakes it once and empties the slot.
 * *tick_out (may be NULL) receives the readiness tick to pass to
 * io_source_clear_ready. Race-free against a concurrent event: the waker is
 * stored under the source's lock, which the dispatch of an event takes
 * after setting the bits. The fast path (ready) is one atomic load.
 * Threads: any; at most one waiting future per direction. */
unsigned io_source_poll_ready(io_source *s, unsigned interest, tml_waker waker, uint32_t *tick_out);

/* Called by an operation whose syscall returned EAGAIN: clears the
 * direction bits of `interest` (and IO_ERROR; never the final bits), but
 * only if no event arrived since `tick` was read by io_source_poll_ready.
 * Otherwise it changes nothing and the next poll_ready reports the new
 * readiness, so an edge that came between the syscall and this call is
 * never lost. Threads: any; lock-free (one CAS). */
void io_source_clear_ready(io_reactor *r, io_source *s, unsigned interest, uint32_t tick);

/* Called by an operation that moved fewer bytes than it asked for: on a
 * stream socket a short read has drained the receive buffer and a short
 * write has filled the send buffer (epoll(7); Tokio's poll_read and
 * poll_write since 1.20), so the direction is not ready even though the
 * syscall succeeded. Clears the direction bits of `interest` as
 * io_source_clear_ready does, under the same tick rule, but keeps
 * IO_ERROR: a successful transfer does not show that no error is pending.
 * Saves the next operation a syscall that would only return EAGAIN.
 * Threads: any; lock-free (one CAS). */
void io_source_clear_drained(io_reactor *r, io_source *s, unsigned interest, uint32_t tick);

/* Marks `s` IO_HUP (final) and wakes its waiters, as the OS reports a
 * socket shut down: for a close the OS may not report (a listener; AFD
 * polls). Threads: any, while `s` is registered. */
void io_source_hang_up(io_source *s);

/* Empties the waker slot of each direction of `interest`, for a future
 * dropped while it waits; never wakes. Threads: any. */
void io_source_drop_waiter(io_source *s, unsigned interest);

/* Waits for events and dispatches them: sets the sources' readiness,
 * takes the wakers of the directions that became ready out of their slots
 * and wakes them (tml_wake, outside every reactor lock).
 * timeout_ns < 0: block until an event or io_reactor_wake; 0: do not
 * block; > 0: wait at most that many ns (never less: the backend rounds
 * up where its clock is coarser). An interrupted wait (EINTR) is resumed
 * for the time left. Returns the number of I/O events dispatched to live
 * registrations (0 on timeout or wake-up), or -errno.
 * Threads: one polling thread at a time (the runtime's parked worker). */
int io_reactor_poll(io_reactor *r, int64_t timeout_ns);

/* Makes the current io_reactor_poll return promptly, or the next one if
 * none is running (a wake is never lost). Coalesced: while one wake-up is
 * pending, further calls are one atomic RMW each, with no syscall.
 * Threads: any. */
void io_reactor_wake(io_reactor *r);

/* Shutdown (DESIGN.md section 6): marks every registered source, and every
 * source registered later, IO_CANCELLED, and wakes every stored waker.
 * From then on io_source_poll_ready reports IO_CANCELLED at once, so I/O
 * leaves return a Cancelled error. Idempotent. Threads: any. */
void io_reactor_cancel_all(io_reactor *r);

/* ------------------------------------------------------------------------
 * Backend contract: implemented once per OS; called only by io_reactor.c,
 * with the threading rules of the function above that calls it. Tokens
 * are 64-bit values the backend hands back with each event: index << 32 |
 * generation, where index is dense (below 2^24, reused after a del), so
 * a backend may keep per-registration state in an array by index.
 *
 * Edge-triggered OS pollers (epoll, kqueue EV_CLEAR) report each new
 * readiness by themselves. A one-shot poller (Windows' AFD poll) reports
 * a direction once and must be asked again: it defines
 * IO_BACKEND_REARMS 1, and io_reactor.c calls io_backend_rearm whenever
 * an operation found a direction not ready (io_source_clear_ready or
 * _drained took its bit: the EAGAIN of the loop above), as mio
 * re-registers on WouldBlock. */

typedef struct io_backend io_backend;

#define IO_WAKE_TOKEN UINT64_MAX /* never a source's token (io_reactor.c) */

/* Creates the OS poller and its wake-up source. Returns 0 or -errno. */
int io_backend_new(io_backend **out);
void io_backend_destroy(io_backend *b);

/* Starts reporting `fd` (both directions, edge-triggered, plus peer
 * shutdown) with `token`. Returns 0 or -errno. */
int io_backend_add(io_backend *b, io_fd fd, uint64_t token);

/* Stops reporting `fd`; errors (fd already closed) are ignored. After it
 * returns, only events the poller already took can still name the fd. */
void io_backend_del(io_backend *b, io_fd fd, uint64_t token);

/* Waits as io_reactor_poll says and calls io_reactor_dispatch(r, token,
 * bits) for each I/O event (bits: IO_* above). A wake-up is consumed
 * (drained) and reported through *woken, not dispatched. Returns the
 * number of dispatches that found a live source, or -errno. */
int io_backend_wait(io_backend *b, int64_t timeout_ns, io_reactor *r, bool *woken);

/* For a backend's wait loop: the deadline of a wait of `timeout_ns` (> 0)
 * starting now, saturated at INT64_MAX. */
static inline int64_t io_wait_deadline(int64_t timeout_ns) {
    int64_t now = tml_now_ns();
    return now > INT64_MAX - timeout_ns ? INT64_MAX : now + timeout_ns;
}

/* After the OS wait was interrupted (EINTR): whether to wait again, with
 * *timeout_ns set to what is left until `deadline` (io_wait_deadline; a
 * negative timeout, no limit, stays as it is). False for a poll (0) and
 * once the deadline passed. */
static inline bool io_wait_again(int64_t *timeout_ns, int64_t deadline) {
    if (*timeout_ns == 0)
        return false;
    return *timeout_ns < 0 || (*timeout_ns = deadline - tml_now_ns()) > 0;
}

/* Makes the current or next io_backend_wait return. Threads: any. */
void io_backend_wake(io_backend *b);

#ifdef _WIN32
#define IO_BACKEND_REARMS 1
#else
#define IO_BACKEND_REARMS 0
#endif

/* One-shot backends only: the directions `interest` of `fd` (token
 * `token`) were found not ready; report their next readiness. Errors
 * (the fd was closed) are ignored: the close reports itself. Threads: any. */
void io_backend_rearm(io_backend *b, io_fd fd, uint64_t token, unsigned interest);

/* Applies one event: if `token` still names a live registration, sets
 * `bits`, bumps the tick and wakes the ready directions' wakers. Returns
 * whether it did. Threads: the polling thread. */
bool io_reactor_dispatch(io_reactor *r, uint64_t token, unsigned bits);

#endif /* IO_REACTOR_H */
