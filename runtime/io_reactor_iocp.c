/* io_reactor_iocp.c - the Windows backend of the reactor (io_reactor.h,
 * "Backend contract"): an I/O completion port that delivers readiness
 * through AFD poll requests, the mechanism mio and wepoll use, plus
 * PostQueuedCompletionStatus to wake a blocked wait.
 *
 * Choice: readiness, not completion. Overlapped WSARecv/WSASend (libuv's
 * model) would hand a leaf's buffer to the kernel until the completion
 * arrives, so a leaf dropped by a timeout or a cancelled task would have
 * to cancel the I/O and wait for its completion before its frame may be
 * freed, and net.c would need a second design for Windows. AFD readiness
 * keeps net.c's loop (check readiness, run the non-blocking call, clear
 * on EAGAIN) as it is on epoll and kqueue; the kernel owns only this
 * file's poll records.
 *
 * How: one handle to the AFD driver (\Device\Afd\Tml), associated with
 * the port. Each registration owns a record with one poll request per
 * direction (read: RECEIVE | ACCEPT | DISCONNECT | ABORT | LOCAL_CLOSE |
 * CONNECT_FAIL; write: SEND | ABORT | LOCAL_CLOSE | CONNECT_FAIL), issued
 * with IOCTL_AFD_POLL on the socket's base handle; the request's
 * completion arrives on the port with the request as its OVERLAPPED. An
 * AFD poll is one-shot: IO_BACKEND_REARMS, and io_backend_rearm issues a
 * direction's request again when an operation found it not ready (mio
 * re-registers on WouldBlock the same way). A poll is level-triggered at
 * submission, so readiness that came before the re-arm completes it at
 * once: no edge is lost.
 *
 * Event mapping (as epoll's, io_reactor_epoll.c):
 *   RECEIVE, ACCEPT -> IO_READABLE; SEND -> IO_WRITABLE;
 *   DISCONNECT -> IO_READABLE | IO_READ_CLOSED;
 *   ABORT (reset), LOCAL_CLOSE -> IO_HUP (both directions, final);
 *   CONNECT_FAIL -> IO_ERROR | IO_HUP (the connect's op reads SO_ERROR).
 *
 * Invariants (all under `lock`):
 *   1. A record is in by_index[token index] from add to del; del takes it
 *      out, marks it dead and cancels its pending requests.
 *   2. A request is `pending` from its submission until the poller takes
 *      its completion; the kernel owns its memory meanwhile, so a dead
 *      record is freed only when no request of it is pending.
 *   3. The poller dispatches a completion's token outside the lock; a
 *      token of a deregistered source is stale by its generation
 *      (io_reactor.c, invariant 1), so a late completion does no harm.
 * Destroy closes the AFD handle (the kernel cancels every request) and
 * takes the cancellations off the port before freeing the records.
 * Rejected: one request per socket for both directions (changing its
 * mask means cancelling it and waiting for the cancellation); a
 * WSAEventSelect per socket (64 handles per wait). */
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>

#include <errno.h>
#include <stdlib.h>

#include "io_reactor.h"

#define MAX_EVENTS 256 /* per GetQueuedCompletionStatusEx */
#define WAKE_KEY 1     /* the wake packet's completion key; the AFD handle's is 0 */

#define IOCTL_AFD_POLL 0x00012024
#define AFD_POLL_RECEIVE 0x0001
#define AFD_POLL_SEND 0x0004
#define AFD_POLL_DISCONNECT 0x0008
#define AFD_POLL_ABORT 0x0010
#define AFD_POLL_LOCAL_CLOSE 0x0020
#define AFD_POLL_ACCEPT 0x0080
#define AFD_POLL_CONNECT_FAIL 0x0100
#define POLL_BOTH (AFD_POLL_ABORT | AFD_POLL_LOCAL_CLOSE | AFD_POLL_CONNECT_FAIL)
#define POLL_READ (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT | AFD_POLL_DISCONNECT | POLL_BOTH)
#define POLL_WRITE (AFD_POLL_SEND | POLL_BOTH)

#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120L)
#endif
#ifndef STATUS_PENDING
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#endif

NTSTATUS NTAPI NtCancelIoFileEx(HANDLE file, IO_STATUS_BLOCK *request, IO_STATUS_BLOCK *status);

typedef struct afd_poll_info {
    LARGE_INTEGER timeout;
    ULONG handles;   /* 1 */
    ULONG exclusive; /* 0 */
    struct {
        HANDLE socket;
        ULONG events;
        NTSTATUS status;
    } handle[1];
} afd_poll_info;

typedef struct reg reg;

/* One direction's poll request; its iosb is the completion's OVERLAPPED. */
typedef struct afd_poll {
    IO_STATUS_BLOCK iosb; /* first: the OVERLAPPED pointer is the request */
    afd_poll_info info;
    reg *owner;
    ULONG mask;   /* POLL_READ or POLL_WRITE */
    bool pending; /* invariant 2 */
} afd_poll;

struct reg {
    afd_poll dir[2]; /* [0] read, [1] write */
    HANDLE base;     /* the socket's base handle */
    uint64_t token;
    bool dead;       /* invariant 1 */
};

struct io_backend {
    HANDLE port;
    HANDLE afd;
    pal_mutex lock;    /* guards the fields below and every reg */
    reg **by_index;    /* token index -> live record */
    uint32_t cap;      /* entries of by_index */
    uint32_t pending;  /* requests the kernel holds */
    OVERLAPPED_ENTRY events[MAX_EVENTS]; /* the poller's only */
};

static int errno_of_status(NTSTATUS st) {
    DWORD e = RtlNtStatusToDosError(st);
    return e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_NO_SYSTEM_RESOURCES ? ENOMEM : EIO;
}

int io_backend_new(io_backend **out) {
    io_backend *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    static const WCHAR name[] = L"\\Device\\Afd\\Tml";
    UNICODE_STRING path = {sizeof name - sizeof name[0], sizeof name, (WCHAR *)name};
    OBJECT_ATTRIBUTES attrs = {.Length = sizeof attrs, .ObjectName = &path};
    IO_STATUS_BLOCK iosb;
    NTSTATUS st;
    int err = -EMFILE;
    if (!(b->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0)))
        goto fail_port;
    st = NtCreateFile(&b->afd, SYNCHRONIZE, &attrs, &iosb, NULL, 0, FILE_SHARE_READ | FILE_SHARE_WRITE,
                      FILE_OPEN, 0, NULL, 0);
    if (st != 0) {
        err = -errno_of_status(st);
        goto fail_afd;
    }
    if (!CreateIoCompletionPort(b->afd, b->port, 0, 0) ||
        !SetFileCompletionNotificationModes(b->afd, FILE_SKIP_SET_EVENT_ON_HANDLE))
        goto fail_assoc;
    pal_mutex_init(&b->lock);
    *out = b;
    return 0;
fail_assoc: CloseHandle(b->afd);
fail_afd:   CloseHandle(b->port);
fail_port:  free(b);
    return err;
}

/* Takes a completion off the port's batch: the request is no longer the
 * kernel's. Returns its record's token and bits to dispatch, or false
 * (dead record, freed here when it was its last request; a cancellation).
 * Lock held. */
static bool complete(io_backend *b, afd_poll *p, uint64_t *token, unsigned *bits) {
    reg *g = p->owner;
    p->pending = false;
    b->pending--;
    if (g->dead) {
        if (!g->dir[0].pending && !g->dir[1].pending)
            free(g);
        return false;
    }
    if (p->iosb.Status == STATUS_CANCELLED)
        return false;
    ULONG ev = p->iosb.Status == 0 ? p->info.handle[0].events : AFD_POLL_ABORT;
    unsigned r = 0;
    if (ev & (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT))
        r |= IO_READABLE;
    if (ev & AFD_POLL_SEND)
        r |= IO_WRITABLE;
    if (ev & AFD_POLL_DISCONNECT)
        r |= IO_READABLE | IO_READ_CLOSED;
    if (ev & (AFD_POLL_ABORT | AFD_POLL_LOCAL_CLOSE))
        r |= IO_HUP;
    if (ev & AFD_POLL_CONNECT_FAIL)
        r |= IO_ERROR | IO_HUP;
    *token = g->token;
    *bits = r;
    return r != 0;
}

void io_backend_destroy(io_backend *b) {
    CloseHandle(b->afd); /* cancels every request; their completions follow */
    pal_mutex_lock(&b->lock);
    for (int tries = 0; b->pending > 0 && tries < 100; tries++) {
        ULONG n = 0;
        if (!GetQueuedCompletionStatusEx(b->port, b->events, MAX_EVENTS, &n, 10, FALSE))
            continue;
        for (ULONG i = 0; i < n; i++) {
            uint64_t token;
            unsigned bits;
            if (b->events[i].lpCompletionKey != WAKE_KEY)
                complete(b, (afd_poll *)b->events[i].lpOverlapped, &token, &bits);
        }
    }
    for (uint32_t i = 0; i < b->cap; i++)
        free(b->by_index[i]); /* live records: no request of theirs is left */
    pal_mutex_unlock(&b->lock);
    pal_mutex_fini(&b->lock);
    free(b->by_index);
    CloseHandle(b->port);
    free(b);
}

/* Issues p's request (not pending). Lock held. Returns 0 or -errno. */
static int submit(io_backend *b, afd_poll *p) {
    p->info = (afd_poll_info){.timeout = {.QuadPart = INT64_MAX}, .handles = 1, .exclusive = 0};
    p->info.handle[0].socket = p->owner->base;
    p->info.handle[0].events = p->mask;
    p->iosb.Status = STATUS_PENDING;
    NTSTATUS st = NtDeviceIoControlFile(b->afd, NULL, NULL, &p->iosb, &p->iosb, IOCTL_AFD_POLL, &p->info,
                                        sizeof p->info, &p->info, sizeof p->info);
    if (st != 0 && st != STATUS_PENDING)
        return -errno_of_status(st);
    p->pending = true; /* done or pending, its completion is queued */
    b->pending++;
    return 0;
}

/* The live record of `token`, or NULL. Lock held. */
static reg *find(io_backend *b, uint64_t token) {
    uint32_t i = (uint32_t)(token >> 32);
    return i < b->cap && b->by_index[i] && b->by_index[i]->token == token ? b->by_index[i] : NULL;
}

int io_backend_add(io_backend *b, io_fd fd, uint64_t token) {
    HANDLE base;
    DWORD bytes;
    if (WSAIoctl(fd, SIO_BASE_HANDLE, NULL, 0, &base, sizeof base, &bytes, NULL, NULL) != 0)
        return WSAGetLastError() == WSAENOTSOCK ? -EBADF : -EPERM;
    reg *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    *g = (reg){.base = base, .token = token};
    g->dir[0] = (afd_poll){.owner = g, .mask = POLL_READ};
    g->dir[1] = (afd_poll){.owner = g, .mask = POLL_WRITE};
    uint32_t i = (uint32_t)(token >> 32);
    int err = 0;
    pal_mutex_lock(&b->lock);
    if (i >= b->cap) {
        uint32_t cap = b->cap ? b->cap : 64;
        while (cap <= i)
            cap *= 2;
        reg **grown = realloc(b->by_index, cap * sizeof *grown);
        if (!grown) {
            err = -ENOMEM;
            goto out;
        }
        memset(grown + b->cap, 0, (cap - b->cap) * sizeof *grown);
        b->by_index = grown;
        b->cap = cap;
    }
    if ((err = submit(b, &g->dir[0])) < 0)
        goto out;
    if ((err = submit(b, &g->dir[1])) < 0) {
        g->dead = true; /* the read request's completion frees it */
        NtCancelIoFileEx(b->afd, &g->dir[0].iosb, &(IO_STATUS_BLOCK){0});
        g = NULL;
        goto out;
    }
    b->by_index[i] = g;
    g = NULL;
out:
    pal_mutex_unlock(&b->lock);
    free(g);
    return err;
}

void io_backend_del(io_backend *b, io_fd fd, uint64_t token) {
    (void)fd;
    pal_mutex_lock(&b->lock);
    reg *g = find(b, token);
    if (g) {
        b->by_index[token >> 32] = NULL;
        g->dead = true;
        for (int d = 0; d < 2; d++)
            if (g->dir[d].pending)
                NtCancelIoFileEx(b->afd, &g->dir[d].iosb, &(IO_STATUS_BLOCK){0});
        if (!g->dir[0].pending && !g->dir[1].pending)
            free(g);
    }
    pal_mutex_unlock(&b->lock);
}

void io_backend_rearm(io_backend *b, io_fd fd, uint64_t token, unsigned interest) {
    (void)fd;
    pal_mutex_lock(&b->lock);
    reg *g = find(b, token);
    for (int d = 0; g && d < 2; d++)
        if ((interest & (d == 0 ? IO_READABLE : IO_WRITABLE)) && !g->dir[d].pending)
            (void)submit(b, &g->dir[d]); /* fails only for a closed socket: its close reports itself */
    pal_mutex_unlock(&b->lock);
}

void io_backend_wake(io_backend *b) {
    PostQueuedCompletionStatus(b->port, 0, WAKE_KEY, NULL);
}

int io_backend_wait(io_backend *b, int64_t timeout_ns, io_reactor *r, bool *woken) {
    DWORD ms = INFINITE;
    if (timeout_ns >= 0) { /* round up: never wake before the timeout */
        int64_t up = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
        ms = up >= INFINITE ? INFINITE - 1 : (DWORD)up;
    }
    int64_t deadline = timeout_ns > 0 ? io_wait_deadline(timeout_ns) : 0;
    ULONG n = 0;
    for (;;) {
        if (GetQueuedCompletionStatusEx(b->port, b->events, MAX_EVENTS, &n, ms, FALSE))
            break;
        if (GetLastError() != WAIT_TIMEOUT)
            return -EIO;
        /* the port's clock is coarser than ours: never report early */
        int64_t left = timeout_ns > 0 ? deadline - tml_now_ns() : 0;
        if (left <= 0)
            return 0;
        ms = (DWORD)(left / 1000000 + 1);
    }
    int dispatched = 0;
    for (ULONG i = 0; i < n; i++) {
        OVERLAPPED_ENTRY *e = &b->events[i];
        if (e->lpCompletionKey == WAKE_KEY) {
            *woken = true; /* W2 (io_reactor.c): the packet is the signal, taken */
            continue;
        }
        uint64_t token;
        unsigned bits;
        pal_mutex_lock(&b->lock);
        bool live = complete(b, (afd_poll *)e->lpOverlapped, &token, &bits);
        pal_mutex_unlock(&b->lock);
        if (live && io_reactor_dispatch(r, token, bits)) /* invariant 3: outside the lock */
            dispatched++;
    }
    return dispatched;
}
