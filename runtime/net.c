/* net.c - TcpListener / TcpStream on the reactor: the tml_tcp handle,
 * SocketAddr, the accept / connect / read / write / write_all leaves and
 * their blocking forms (contracts in tml/rt.h, section "TCP").
 *
 * A handle (struct tml_tcp) is a reference count, a non-blocking
 * close-on-exec socket, a `closed` flag, and `src`: its registration in
 * one runtime's reactor, made lazily.
 *
 * Registration (attach), at the first wait of any leaf on the handle:
 *   1. CAS src 0 -> REGISTERING; only the winner registers. A leaf that
 *      finds REGISTERING (a reader and a writer waiting for the first time
 *      at once) wakes its own task and returns Pending: it retries after
 *      the work queued on its worker, by when the winner is done.
 *   2. the winner registers the fd (edge-triggered, both directions),
 *      counts it in rt->io_sources (so running workers poll the reactor
 *      at their fairness ticks), stores `rt`, then publishes the source
 *      with a CAS (a release and more: see "Close"); everyone reads `rt`
 *      after an acquire load.
 * Registering at the first EAGAIN rather than at creation saves the
 * registration of sockets that never wait (a short request answered at
 * once) and binds the source to the runtime that actually polls it. No
 * edge is lost by registering late: every backend reports an fd that is
 * already ready as soon as it is added (epoll and kqueue report the
 * current state; an AFD poll is level-triggered when it is issued). Rejected: a mutex per handle for step 1 (40 bytes
 * per connection for a race that needs two first waits at once).
 *
 * Readiness (drive), Tokio's loop over ScheduledIo (io_reactor.h):
 *   1. closed handle -> error; with a source, poll_ready for the leaf's
 *      direction: nothing ready -> the waker is stored, Pending;
 *      IO_CANCELLED -> TML_NET_CANCELLED;
 *   2. run the system call; EINTR -> again; done or an error -> Ready;
 *   3. EAGAIN -> clear the direction's readiness, but only if no event
 *      came since step 1's tick, and go to 1 (without a source yet:
 *      attach, then 1);
 *   4. a transfer that moved fewer bytes than asked (a short recv drained
 *      the socket, a short send filled it) also clears the direction
 *      (io_source_clear_drained, same tick rule), so the next operation
 *      waits for an event instead of spending a syscall on EAGAIN: an
 *      echo round trip costs a recv and a send, not recv, send, recv
 *      (Tokio does the same since 1.20).
 * A socket is registered at its first EAGAIN, so until then the syscall
 * is tried without a readiness check: a read of data already there costs
 * one recv.
 *
 * Close: sets `closed` (a CAS), shuts the socket down (both directions)
 * and hangs its source up (io_source_hang_up: IO_HUP, final), which wakes
 * every waiter, whose next poll sees `closed`. Not every OS reports the
 * shutdown as an edge (a listener; Windows' AFD poll), so the reactor is
 * told directly. A leaf that registers the socket meanwhile publishes its
 * source with a CAS too, then re-checks `closed`: of the two RMWs, the
 * later one's thread sees the other's write (no store-buffer race), so
 * either close finds the source or the leaf finds `closed`. The fd is
 * closed (and deregistered) only by the last release, so no thread that
 * holds the handle can see its number reused.
 *
 * Drop: a leaf that stored its waker (phase WAITING) empties its
 * direction's slot; connect also releases its half-made socket. One slot
 * per direction means a second concurrent waiter on the same direction
 * replaces the first's waker (rt.h: last waiter wins).
 *
 * Blocking forms: the same system calls, waiting with pal_socket_wait
 * (poll(2) on POSIX) on the socket; they never touch the reactor, so they work on any thread,
 * with or without a runtime. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_internal.h"

#define BACKLOG 4096
#define REGISTERING UINT64_C(1) /* tml_tcp.src while a leaf registers it */
#define ERR_CLOSED (-ESHUTDOWN) /* the handle was closed: TML_NET_OTHER */

struct tml_tcp {
    mt_atomic rc;     /* references */
    mt_atomic src;    /* io_source *, REGISTERING, or 0 */
    mt_atomic closed; /* 1 once tml_tcp_close ran */
    mt_runtime *rt;   /* src's runtime; written before src is published */
    io_fd fd;
};

/* A leaf's phase. */
enum { IDLE = 0, WAITING = 1, DONE = 2 };

/* ------------------------------------------------------------ errors */

/* The TML_NET_* kind of a positive errno. */
static int32_t kind_of(int err) {
    switch (err) {
    case 0: return TML_NET_OK;
    case ECONNREFUSED: return TML_NET_CONNECTION_REFUSED;
    case ECONNRESET:
    case EPIPE: return TML_NET_CONNECTION_RESET;
    case EADDRINUSE: return TML_NET_ADDR_IN_USE;
    case EINVAL:
    case EAFNOSUPPORT: return TML_NET_INVALID_INPUT;
    case ETIMEDOUT: return TML_NET_TIMED_OUT;
    case ECANCELED: return TML_NET_CANCELLED;
    default: return TML_NET_OTHER;
    }
}

/* The status of a result: a count (>= 0) is OK, -errno its kind. */
static int32_t status_of(int64_t res) {
    return res >= 0 ? TML_NET_OK : kind_of((int)-res);
}

const char *tml_net_error_message(int32_t code) {
    switch (code) {
    case TML_NET_OK: return "ok";
    case TML_NET_CONNECTION_REFUSED: return "connection refused";
    case TML_NET_CONNECTION_RESET: return "connection reset";
    case TML_NET_ADDR_IN_USE: return "address in use";
    case TML_NET_INVALID_INPUT: return "invalid input";
    case TML_NET_TIMED_OUT: return "timed out";
    case TML_NET_CANCELLED: return "cancelled";
    case TML_NET_OTHER: return "other error";
    default: return "unknown error";
    }
}

/* Panics on a NULL argument: an ABI misuse, never an OS condition. */
static void need(const void *p, const char *what) {
    if (!p) {
        char msg[96];
        snprintf(msg, sizeof msg, "TCP: %s is NULL", what);
        tml_panic_at(NULL, 0, 0, msg);
    }
}

/* ------------------------------------------------------------ SocketAddr */

/* Parses a decimal number of 1..10 digits spanning [s, end) into *out. */
static bool parse_digits(const char *s, const char *end, uint32_t max, uint32_t *out) {
    if (s == end || end - s > 10)
        return false;
    uint64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* "[v6%zone]" of length n at t (brackets included) into r. */
static bool parse_v6(const char *t, size_t n, tml_sockaddr *r) {
    char host[PAL_IP_TEXT_MAX];
    const char *in = t + 1, *end = t + n - 1, *pct = memchr(in, '%', (size_t)(end - in));
    const char *host_end = pct ? pct : end;
    if ((size_t)(host_end - in) >= sizeof host)
        return false;
    memcpy(host, in, (size_t)(host_end - in));
    host[host_end - in] = '\0';
    if (!pal_ip_parse(true, host, r->ip))
        return false;
    r->family = TML_AF_IPV6;
    return !pct || parse_digits(pct + 1, end, UINT32_MAX, &r->scope_id);
}

int32_t tml_sockaddr_parse(const tml_str *text, tml_sockaddr *out) {
    need(text, "address text");
    need(out, "address output");
    const char *t = text->ptr;
    size_t n = (size_t)text->len;
    const char *colon = NULL;
    for (size_t i = n; i > 0 && !colon; i--)
        colon = t[i - 1] == ':' ? t + i - 1 : NULL;
    if (!colon || memchr(t, '\0', n))
        return TML_NET_INVALID_INPUT;
    tml_sockaddr r = {0};
    uint32_t port;
    if (!parse_digits(colon + 1, t + n, 65535, &port))
        return TML_NET_INVALID_INPUT;
    r.port = (uint16_t)port;
    size_t hn = (size_t)(colon - t);
    if (hn >= 2 && t[0] == '[' && t[hn - 1] == ']') {
        if (!parse_v6(t, hn, &r))
            return TML_NET_INVALID_INPUT;
    } else {
        char host[16]; /* INET_ADDRSTRLEN */
        if (hn >= sizeof host)
            return TML_NET_INVALID_INPUT;
        memcpy(host, t, hn);
        host[hn] = '\0';
        if (!pal_ip_parse(false, host, r.ip))
            return TML_NET_INVALID_INPUT;
        r.family = TML_AF_IPV4;
    }
    *out = r;
    return TML_NET_OK;
}

tml_str *tml_sockaddr_to_string(const tml_sockaddr *a) {
    need(a, "address");
    char host[PAL_IP_TEXT_MAX], text[PAL_IP_TEXT_MAX + 24];
    int n;
    if (a->family == TML_AF_IPV4) {
        pal_ip_format(false, a->ip, host, sizeof host);
        n = snprintf(text, sizeof text, "%s:%u", host, (unsigned)a->port);
    } else if (a->family == TML_AF_IPV6) {
        pal_ip_format(true, a->ip, host, sizeof host);
        if (a->scope_id)
            n = snprintf(text, sizeof text, "[%s%%%u]:%u", host, (unsigned)a->scope_id, (unsigned)a->port);
        else
            n = snprintf(text, sizeof text, "[%s]:%u", host, (unsigned)a->port);
    } else {
        n = snprintf(text, sizeof text, "<invalid address>");
    }
    return tml_str_new(text, n);
}

/* ---------------------------------------------------------------- handle */

static tml_tcp *tcp_new(io_fd fd) {
    tml_tcp *s = tml_alloc(sizeof *s);
    /* relaxed: the handle is published to other threads by whatever
     * hands it over (a channel, spawn), which orders these stores */
    mt_atomic_store(&s->rc, 1);
    mt_atomic_store(&s->src, 0);
    mt_atomic_store(&s->closed, 0);
    s->rt = NULL;
    s->fd = fd;
    return s;
}

void tml_tcp_retain(tml_tcp *s) {
    need(s, "TCP handle");
    mt_atomic_fetch_add(&s->rc, 1); /* a new owner of a live handle */
}

void tml_tcp_release(tml_tcp *s) {
    need(s, "TCP handle");
    /* full barrier: the last owner sees every other owner's use done */
    if (mt_atomic_fetch_add(&s->rc, (uint64_t)-1) != 1)
        return;
    uint64_t v = mt_atomic_load_acquire(&s->src); /* pairs with attach's release */
    MT_ASSERT(v != REGISTERING); /* a registering leaf's caller holds a reference */
    if (v) {
        io_reactor_deregister(s->rt->reactor, (io_source *)(uintptr_t)v);
        mt_atomic_fetch_add(&s->rt->io_sources, (uint64_t)-1);
    }
    pal_socket_close(s->fd);
    tml_free(s);
}

static bool is_closed(tml_tcp *s) {
    /* acquire: pairs with close's CAS; a hint, the kernel orders the rest */
    return mt_atomic_load_acquire(&s->closed) != 0;
}

/* The published source of `s`, or NULL (none yet, or being registered). */
static io_source *source(tml_tcp *s) {
    uint64_t v = mt_atomic_load_acquire(&s->src); /* pairs with attach's release */
    return v == REGISTERING ? NULL : (io_source *)(uintptr_t)v;
}

/* Steps 1-2 of "Registration": the source of `s` in the runtime polling
 * cx, registering it on first use. Returns 0 with *out set, or 0 with
 * *out NULL while another leaf registers it (the caller yields), or
 * -errno from the reactor. Panics when `s` belongs to another runtime. */
static int attach(tml_tcp *s, tml_cx *cx, io_source **out) {
    mt_runtime *rt = ((mt_worker *)cx->worker)->rt;
    /* acquire: pairs with the release below, making s->rt visible */
    uint64_t v = mt_atomic_load_acquire(&s->src);
    if (v == 0 && (v = mt_atomic_cas(&s->src, 0, REGISTERING)) == 0) {
        io_source *src;
        int err = io_reactor_register(rt->reactor, s->fd, &src);
        if (err < 0) {
            mt_atomic_store_release(&s->src, 0); /* a later wait tries again */
            return err;
        }
        mt_atomic_fetch_add(&rt->io_sources, 1); /* the driver polls I/O from now on */
        s->rt = rt;
        v = (uintptr_t)src;
        /* publishes s->rt; pairs with the acquires; an RMW: see "Close" */
        mt_atomic_cas(&s->src, REGISTERING, v);
    }
    if (v == REGISTERING) {
        *out = NULL;
        return 0;
    }
    if (s->rt != rt)
        tml_panic_at(NULL, 0, 0, "TCP: a socket was used from two runtimes");
    *out = (io_source *)(uintptr_t)v;
    return 0;
}

void tml_tcp_close(tml_tcp *s) {
    need(s, "TCP handle");
    /* the CAS makes it idempotent; pairs with is_closed's acquire */
    if (mt_atomic_cas(&s->closed, 0, 1) == 0) {
        pal_socket_shutdown(s->fd);
        io_source *src = source(s); /* after the CAS: see "Close" */
        if (src)
            io_source_hang_up(src);
    }
}

int32_t tml_tcp_set_nodelay(tml_tcp *s, bool on) {
    need(s, "TCP handle");
    if (is_closed(s))
        return TML_NET_OTHER;
    return kind_of(-pal_tcp_set_nodelay(s->fd, on));
}

/* local_addr (peer false) or peer_addr of `s` into *out. */
static int32_t addr_of(tml_tcp *s, tml_sockaddr *out, bool peer) {
    need(s, "TCP handle");
    need(out, "address output");
    if (is_closed(s))
        return TML_NET_OTHER;
    int err = pal_socket_addr(s->fd, peer, out);
    if (err < 0)
        return kind_of(-err);
    return out->family ? TML_NET_OK : TML_NET_OTHER;
}

int32_t tml_tcp_local_addr(tml_tcp *s, tml_sockaddr *out) { return addr_of(s, out, false); }
int32_t tml_tcp_peer_addr(tml_tcp *s, tml_sockaddr *out) { return addr_of(s, out, true); }

int32_t tml_tcp_bind(const tml_sockaddr *a, tml_tcp **out) {
    need(a, "address");
    need(out, "listener output");
    io_fd fd;
    int err = pal_tcp_listen(a, BACKLOG, &fd);
    if (err < 0)
        return kind_of(-err);
    *out = tcp_new(fd);
    return TML_NET_OK;
}

/* ------------------------------------------------------- system calls */

/* One try of a leaf's system call on `fd`: a count >= 0, or -errno
 * (-EAGAIN: not ready; -EINTR: try again). */
typedef int64_t (*io_op)(io_fd fd, void *arg);

/* Runs op(fd, arg) once, or (chaos build) fails it as the kernel could:
 * -EINTR anywhere, -EAGAIN only while `may_block_spuriously`, i.e. while
 * nothing but a readiness check follows that can see the socket ready
 * (before its reactor registration, which reports a ready socket at
 * once, and in the blocking forms, whose poll(2) does). */
static int64_t try_op(io_op op, io_fd fd, void *arg, bool may_block_spuriously) {
    if (mt_chaos(MT_CHAOS_EINTR))
        return -EINTR;
    if (may_block_spuriously && mt_chaos(MT_CHAOS_EAGAIN))
        return -EAGAIN;
    return op(fd, arg);
}

static int64_t op_recv(io_fd fd, void *arg) {
    tml_buffer *b = arg;
    int64_t n = pal_recv(fd, b->bytes + b->len, (size_t)(b->cap - b->len));
    if (n > 0)
        b->len += n;
    return n;
}

typedef struct span {
    const uint8_t *p;
    size_t len;
} span;

static int64_t op_send(io_fd fd, void *arg) {
    span *sp = arg;
    return pal_send(fd, sp->p, sp->len); /* EPIPE, never SIGPIPE */
}

typedef struct accepted {
    io_fd fd;
    tml_sockaddr peer; /* family 0: TML has no SocketAddr for it */
} accepted;

static int64_t op_accept(io_fd fd, void *arg) {
    accepted *a = arg;
    return pal_tcp_accept(fd, &a->fd, &a->peer); /* -EINTR: died in the queue, take the next */
}

/* Whether a non-blocking connect finished: 0 connected, -EAGAIN still in
 * progress (a spurious writable edge), or -errno of the failure. */
static int64_t op_connected(io_fd fd, void *arg) {
    (void)arg;
    return pal_tcp_connect_result(fd);
}

/* Creates a socket for `a` and starts connecting. Returns 0 with the
 * handle in *out (connected or in progress), or -errno. */
static int start_connect(const tml_sockaddr *a, tml_tcp **out) {
    io_fd fd;
    int err = pal_tcp_connect_start(a, &fd);
    if (err < 0)
        return err;
    *out = tcp_new(fd);
    return 0;
}

/* ------------------------------------------------------------ leaves */

/* "Readiness" steps 1-4: runs op(fd, arg) until it completes or must
 * wait for `interest`. `want`: the bytes op asks to move (0: not a
 * transfer). Returns true with its result in *res (-ECANCELED: runtime
 * shutdown; ERR_CLOSED: closed handle), or false for Pending (the waker
 * is stored and *phase is WAITING, or the task woke itself to retry
 * while another leaf registers the socket). */
static bool drive(tml_tcp *s, tml_cx *cx, unsigned interest, int32_t *phase, io_op op, void *arg,
                  int64_t want, int64_t *res) {
    io_source *src = source(s);
    for (;;) {
        uint32_t tick = 0;
        if (is_closed(s)) {
            *res = ERR_CLOSED;
            return true;
        }
        if (src) {
            unsigned ready = io_source_poll_ready(src, interest, cx->waker, &tick);
            if (ready == 0) {
                *phase = WAITING;
                return false;
            }
            if (ready & IO_CANCELLED) {
                *res = -ECANCELED;
                return true;
            }
        }
        int64_t n = try_op(op, s->fd, arg, src == NULL);
        if (n == -EINTR)
            continue;
        if (n != -EAGAIN) {
            if (src && n > 0 && n < want) /* step 4 */
                io_source_clear_drained(s->rt->reactor, src, interest, tick);
            *res = n;
            return true;
        }
        if (src) {
            io_source_clear_ready(s->rt->reactor, src, interest, tick);
            continue;
        }
        int err = attach(s, cx, &src);
        if (err < 0) {
            *res = err;
            return true;
        }
        if (!src) {
            mt_worker_self_wake(cx);
            return false;
        }
    }
}

/* Ends a leaf: its status from `res`, phase DONE, one unit of budget. */
static tml_poll done(int32_t *status, int32_t *phase, int64_t res, tml_cx *cx) {
    *status = status_of(res);
    *phase = DONE;
    return mt_budget_ready(cx);
}

/* Drop of a leaf on `s` waiting for `interest`: empties its waker slot. */
static void drop_wait(tml_tcp *s, unsigned interest, int32_t *phase) {
    if (*phase == WAITING) {
        io_source *src = source(s);
        if (src)
            io_source_drop_waiter(src, interest);
    }
    *phase = DONE;
}

/* Checks a poll's arguments (ABI misuse panics). */
static void poll_check(const void *f, const int32_t *phase, tml_cx *cx) {
    need(f, "leaf");
    need(cx, "poll context");
    MT_ASSERT(cx->worker && *phase != DONE); /* never polled after Ready or drop */
}

void tml_accept_init(tml_accept_fut *f, tml_tcp *listener) {
    need(f, "leaf");
    need(listener, "listener");
    *f = (tml_accept_fut){.listener = listener, .status = TML_NET_OK, .phase = IDLE};
}

tml_poll tml_accept_poll(tml_accept_fut *f, tml_cx *cx) {
    poll_check(f, &f->phase, cx);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    accepted a;
    int64_t res;
    if (!drive(f->listener, cx, IO_READABLE, &f->phase, op_accept, &a, 0, &res))
        return TML_PENDING;
    if (res >= 0) {
        f->stream = tcp_new(a.fd);
        f->peer = a.peer;
    }
    return done(&f->status, &f->phase, res, cx);
}

void tml_accept_drop(tml_accept_fut *f) {
    need(f, "leaf");
    if (f->phase != DONE)
        drop_wait(f->listener, IO_READABLE, &f->phase);
}

void tml_connect_init(tml_connect_fut *f, const tml_sockaddr *addr) {
    need(f, "leaf");
    need(addr, "address");
    *f = (tml_connect_fut){.addr = *addr, .status = TML_NET_OK, .phase = IDLE};
}

tml_poll tml_connect_poll(tml_connect_fut *f, tml_cx *cx) {
    poll_check(f, &f->phase, cx);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    int64_t res;
    if (!f->stream && (res = start_connect(&f->addr, &f->stream)) < 0)
        return done(&f->status, &f->phase, res, cx);
    if (!drive(f->stream, cx, IO_WRITABLE, &f->phase, op_connected, NULL, 0, &res))
        return TML_PENDING;
    if (res < 0) {
        tml_tcp_release(f->stream);
        f->stream = NULL;
    }
    return done(&f->status, &f->phase, res, cx);
}

void tml_connect_drop(tml_connect_fut *f) {
    need(f, "leaf");
    if (f->phase == DONE)
        return;
    if (f->stream) {
        drop_wait(f->stream, IO_WRITABLE, &f->phase);
        tml_tcp_release(f->stream); /* closes the half-made socket */
        f->stream = NULL;
    }
    f->phase = DONE;
}

void tml_read_init(tml_read_fut *f, tml_tcp *s, tml_buffer *buf) {
    need(f, "leaf");
    need(s, "stream");
    need(buf, "buffer");
    *f = (tml_read_fut){.s = s, .buf = buf, .status = TML_NET_OK, .phase = IDLE};
}

tml_poll tml_read_poll(tml_read_fut *f, tml_cx *cx) {
    poll_check(f, &f->phase, cx);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    int64_t res = 0;
    if (f->buf->len < f->buf->cap &&
        !drive(f->s, cx, IO_READABLE, &f->phase, op_recv, f->buf, f->buf->cap - f->buf->len, &res))
        return TML_PENDING;
    f->n = res > 0 ? res : 0;
    return done(&f->status, &f->phase, res, cx);
}

void tml_read_drop(tml_read_fut *f) {
    need(f, "leaf");
    if (f->phase != DONE)
        drop_wait(f->s, IO_READABLE, &f->phase);
}

void tml_write_init(tml_write_fut *f, tml_tcp *s, tml_buffer *buf) {
    need(f, "leaf");
    need(s, "stream");
    need(buf, "buffer");
    *f = (tml_write_fut){.s = s, .buf = buf, .status = TML_NET_OK, .phase = IDLE};
}

tml_poll tml_write_poll(tml_write_fut *f, tml_cx *cx) {
    poll_check(f, &f->phase, cx);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    int64_t res = 0;
    span sp = {f->buf->bytes, (size_t)f->buf->len};
    if (sp.len > 0 && !drive(f->s, cx, IO_WRITABLE, &f->phase, op_send, &sp, (int64_t)sp.len, &res))
        return TML_PENDING;
    f->n = res > 0 ? res : 0;
    return done(&f->status, &f->phase, res, cx);
}

void tml_write_drop(tml_write_fut *f) {
    need(f, "leaf");
    if (f->phase != DONE)
        drop_wait(f->s, IO_WRITABLE, &f->phase);
}

void tml_write_all_init(tml_write_all_fut *f, tml_tcp *s, tml_buffer *buf) {
    need(f, "leaf");
    need(s, "stream");
    need(buf, "buffer");
    *f = (tml_write_all_fut){.s = s, .buf = buf, .status = TML_NET_OK, .phase = IDLE};
}

tml_poll tml_write_all_poll(tml_write_all_fut *f, tml_cx *cx) {
    poll_check(f, &f->phase, cx);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    int64_t res = 0;
    while (f->n < f->buf->len) {
        span sp = {f->buf->bytes + f->n, (size_t)(f->buf->len - f->n)};
        if (!drive(f->s, cx, IO_WRITABLE, &f->phase, op_send, &sp, (int64_t)sp.len, &res))
            return TML_PENDING;
        if (res < 0)
            break;
        f->n += res;
    }
    return done(&f->status, &f->phase, res, cx);
}

void tml_write_all_drop(tml_write_all_fut *f) {
    need(f, "leaf");
    if (f->phase != DONE)
        drop_wait(f->s, IO_WRITABLE, &f->phase);
}

/* -------------------------------------------------------- blocking forms */

/* drive's blocking twin: runs op(fd, arg), waiting with pal_socket_wait
 * for the direction (`write`) on EAGAIN. Returns the op's result, or
 * ERR_CLOSED. */
static int64_t block(tml_tcp *s, bool write, io_op op, void *arg) {
    for (;;) {
        if (is_closed(s))
            return ERR_CLOSED;
        int64_t n = try_op(op, s->fd, arg, true);
        if (n == -EINTR)
            continue;
        if (n != -EAGAIN)
            return n;
        /* a close from another thread shuts the socket down: a hang-up */
        int err = pal_socket_wait(s->fd, write);
        if (err < 0)
            return err;
    }
}

int32_t tml_tcp_accept_blocking(tml_tcp *l, tml_tcp **out, tml_sockaddr *peer) {
    need(l, "listener");
    need(out, "stream output");
    accepted a;
    int64_t res = block(l, false, op_accept, &a);
    if (res < 0)
        return status_of(res);
    *out = tcp_new(a.fd);
    if (peer)
        *peer = a.peer;
    return TML_NET_OK;
}

int32_t tml_tcp_connect_blocking(const tml_sockaddr *addr, tml_tcp **out) {
    need(addr, "address");
    need(out, "stream output");
    tml_tcp *s;
    int64_t res = start_connect(addr, &s);
    if (res < 0)
        return status_of(res);
    if ((res = block(s, true, op_connected, NULL)) < 0) {
        tml_tcp_release(s);
        return status_of(res);
    }
    *out = s;
    return TML_NET_OK;
}

int32_t tml_tcp_read_blocking(tml_tcp *s, tml_buffer *buf, int64_t *n) {
    need(s, "stream");
    need(buf, "buffer");
    need(n, "count output");
    int64_t res = buf->len < buf->cap ? block(s, false, op_recv, buf) : 0;
    *n = res > 0 ? res : 0;
    return status_of(res);
}

int32_t tml_tcp_write_blocking(tml_tcp *s, tml_buffer *buf, int64_t *n) {
    need(s, "stream");
    need(buf, "buffer");
    need(n, "count output");
    span sp = {buf->bytes, (size_t)buf->len};
    int64_t res = sp.len > 0 ? block(s, true, op_send, &sp) : 0;
    *n = res > 0 ? res : 0;
    return status_of(res);
}

int32_t tml_tcp_write_all_blocking(tml_tcp *s, tml_buffer *buf) {
    need(s, "stream");
    need(buf, "buffer");
    for (int64_t sent = 0; sent < buf->len;) {
        span sp = {buf->bytes + sent, (size_t)(buf->len - sent)};
        int64_t res = block(s, true, op_send, &sp);
        if (res < 0)
            return status_of(res);
        sent += res;
    }
    return TML_NET_OK;
}
