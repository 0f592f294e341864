/* pal_posix.c - the platform layer (pal.h) on POSIX: Linux, macOS and the
 * BSDs. The lock, condvar-signal, clock and yield calls are inline in
 * pal.h; this file holds the rest.
 *
 * Where the systems differ, Linux keeps the calls it used before the
 * layer (accept4, SOCK_NONBLOCK, MSG_NOSIGNAL, clock_nanosleep,
 * pthread_getattr_np, a condvar on CLOCK_MONOTONIC); macOS, which has
 * none of them, gets fcntl, SO_NOSIGPIPE, a relative sleep loop,
 * pthread_get_stackaddr_np and pthread_cond_timedwait_relative_np.
 *
 * Connect completion: SO_ERROR, then getpeername (Go's netFD.connect):
 * a pending error is the failure; no error and ENOTCONN is a spurious
 * writable edge (still in progress). Rejected: TCP_INFO's state (Linux
 * only; macOS spells it TCP_CONNECTION_INFO, Windows has neither).
 *
 * Stack-overflow guard (Rust's std::sys::unix::stack_overflow): every
 * guarded thread records its lowest stack address and gets an alternate
 * signal stack; the SIGSEGV handler (SA_ONSTACK) treats a fault within
 * OVERFLOW_REACH below that address (or a page above it: the bound the C
 * library reports for the main thread is approximate) as an overflow and
 * calls the runtime's report; any other fault restores the handler that
 * was there before (the default, a sanitizer's, Criterion's) and returns,
 * so the faulting instruction runs again under it. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "mt_atomic.h"
#include "pal.h"
#include "pal_sockaddr.h"

#define NS_PER_S 1000000000

/* ------------------------------------------------- condvars, threads */

static struct timespec timespec_of(int64_t ns) {
    return (struct timespec){(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};
}

int pal_cond_init(pal_cond *c) {
#ifdef __APPLE__
    return -pthread_cond_init(c, NULL); /* timed waits are relative there */
#else
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err)
        return -err;
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!err)
        err = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return -err;
#endif
}

int pal_cond_wait_until(pal_cond *c, pal_mutex *m, int64_t deadline_ns) {
    if (deadline_ns == PAL_NO_DEADLINE)
        return -pthread_cond_wait(c, m);
#ifdef __APPLE__
    int64_t left = deadline_ns - pal_now_ns();
    if (left <= 0)
        return -ETIMEDOUT;
    struct timespec ts = timespec_of(left);
    int err = pthread_cond_timedwait_relative_np(c, m, &ts);
    return err == ETIMEDOUT && pal_now_ns() < deadline_ns ? 0 : -err; /* never early */
#else
    struct timespec ts = timespec_of(deadline_ns);
    return -pthread_cond_timedwait(c, m, &ts);
#endif
}

int pal_thread_start(pal_thread *t, void *(*fn)(void *), void *arg, const char *name) {
    int err = pthread_create(t, NULL, fn, arg);
    if (err)
        return -err;
#if defined(__linux__)
    pthread_setname_np(*t, name); /* best effort: only for debuggers */
#else
    (void)name; /* macOS names only the calling thread */
#endif
    return 0;
}

void pal_thread_join(pal_thread t) {
    pthread_join(t, NULL);
}

void pal_thread_precise_timers(void) {
#ifdef __linux__
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
}

unsigned pal_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (unsigned)n;
}

void pal_sleep_until(int64_t deadline_ns) {
#ifdef __APPLE__
    int64_t left;
    while ((left = deadline_ns - pal_now_ns()) > 0) {
        struct timespec ts = timespec_of(left);
        nanosleep(&ts, NULL);
    }
#else
    struct timespec ts = timespec_of(deadline_ns);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
#endif
}

/* ------------------------------------------------- memory, process */

void *pal_aligned_alloc(size_t align, size_t size) {
    void *p;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

void pal_aligned_free(void *p) {
    free(p);
}

void pal_process_init(void) {
}

void pal_write_stderr(const char *s, size_t len) {
    ssize_t unused = write(STDERR_FILENO, s, len);
    (void)unused;
}

_Noreturn void pal_exit_now(int status) {
    _exit(status);
}

const char *pal_strerror(int err, char *buf, size_t len) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, buf, len);
#else
    if (strerror_r(err, buf, len) != 0)
        snprintf(buf, len, "error %d", err);
    return buf;
#endif
}

/* -------------------------------------------------- stack guard */

#define ALT_STACK_BYTES (64 * 1024)
#define OVERFLOW_REACH (1024 * 1024) /* a frame can skip the guard page by this much */
#define PAGE_SLACK 4096

static struct sigaction previous;
static void (*report_overflow)(void); /* written once, before any guarded thread */
static _Thread_local uintptr_t stack_lo; /* lowest address of this thread's stack; 0: unknown */

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (stack_lo && a < stack_lo + PAGE_SLACK && a + OVERFLOW_REACH >= stack_lo)
        report_overflow();
    sigaction(SIGSEGV, &previous, NULL); /* the fault repeats under it */
}

void pal_stack_guard_install(void (*on_overflow)(void)) {
    report_overflow = on_overflow;
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGSEGV, &sa, &previous); /* refused: the default handling stays */
}

/* The lowest address of the calling thread's stack into *lo. */
static bool stack_bottom(uintptr_t *lo) {
#ifdef __APPLE__
    pthread_t self = pthread_self(); /* stackaddr is the top: the stack grows down */
    *lo = (uintptr_t)pthread_get_stackaddr_np(self) - pthread_get_stacksize_np(self);
    return true;
#else
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return false;
    int err = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    *lo = (uintptr_t)addr;
    return err == 0;
#endif
}

void pal_stack_guard_begin(pal_stack_guard *g) {
    g->mem = NULL;
    uintptr_t lo;
    if (!stack_bottom(&lo))
        return;
    void *mem = mmap(NULL, ALT_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (mem == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = mem, .ss_size = ALT_STACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALT_STACK_BYTES);
        return;
    }
    g->mem = mem;
    stack_lo = lo;
}

void pal_stack_guard_end(pal_stack_guard *g) {
    if (!g->mem)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(g->mem, ALT_STACK_BYTES);
    g->mem = NULL;
    stack_lo = 0;
}

/* ----------------------------------------------------------- sockets */

static int fail(void) {
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* Makes `fd` non-blocking and close-on-exec, where socket() and accept()
 * cannot (macOS). Returns 0 or -errno, closing fd on failure. */
static int make_async(int fd) {
#if defined(SOCK_NONBLOCK)
    (void)fd;
    return 0;
#else
    int one = 1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return 0;
#endif
}

/* A new TCP socket for the family of *ss into *out; 0 or -errno. */
static int tcp_socket(const struct sockaddr_storage *ss, int *out) {
#if defined(SOCK_NONBLOCK)
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    int fd = socket(ss->ss_family, SOCK_STREAM, 0);
#endif
    if (fd < 0)
        return -errno;
    *out = fd;
    return make_async(fd);
}

int pal_tcp_listen(const tml_sockaddr *a, int backlog, io_fd *out) {
    struct sockaddr_storage ss;
    socklen_t len = (socklen_t)to_os(a, &ss);
    int fd = -1, err, one = 1;
    if (len == 0)
        return -EINVAL;
    if ((err = tcp_socket(&ss, &fd)) < 0)
        return err;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

int pal_tcp_connect_start(const tml_sockaddr *a, io_fd *out) {
    struct sockaddr_storage ss;
    socklen_t len = (socklen_t)to_os(a, &ss);
    int fd = -1, err;
    if (len == 0)
        return -EINVAL;
    if ((err = tcp_socket(&ss, &fd)) < 0)
        return err;
    /* EINTR: the connect goes on asynchronously, as EINPROGRESS */
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS && errno != EINTR) {
        err = -errno;
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

int pal_tcp_connect_result(io_fd fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return fail();
    if (err)
        return -err;
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        return 0;
    return errno == ENOTCONN ? -EAGAIN : -errno;
}

int pal_tcp_accept(io_fd l, io_fd *out, tml_sockaddr *peer) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
#if defined(SOCK_NONBLOCK)
    int fd = accept4(l, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(l, (struct sockaddr *)&ss, &len);
#endif
    if (fd >= 0) {
        int err = make_async(fd);
        if (err < 0)
            return err;
        from_os(&ss, peer);
        *out = fd;
        return 0;
    }
    switch (errno) {
    /* the connection died in the queue, or Linux passed on a network
     * error pending on it (accept(2), "Error handling"): take the next */
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
        return -EINTR;
    default:
        return fail();
    }
}

int64_t pal_recv(io_fd fd, void *buf, size_t len) {
    ssize_t n = recv(fd, buf, len, 0);
    return n < 0 ? fail() : n;
}

int64_t pal_send(io_fd fd, const void *buf, size_t len) {
#ifdef MSG_NOSIGNAL
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL); /* EPIPE, never SIGPIPE */
#else
    ssize_t n = send(fd, buf, len, 0); /* SO_NOSIGPIPE is set (make_async) */
#endif
    return n < 0 ? fail() : n;
}

void pal_socket_shutdown(io_fd fd) {
    (void)shutdown(fd, SHUT_RDWR); /* ENOTCONN: never connected or reset: no waiter to wake */
}

void pal_socket_close(io_fd fd) {
    close(fd); /* Linux frees the fd even when close reports EINTR */
}

int pal_tcp_set_nodelay(io_fd fd, bool on) {
    int v = on;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0 ? -errno : 0;
}

int pal_socket_addr(io_fd fd, bool peer, tml_sockaddr *out) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return -errno;
    from_os(&ss, out);
    return 0;
}

int pal_socket_wait(io_fd fd, bool write) {
    struct pollfd p = {.fd = fd, .events = write ? POLLOUT : POLLIN};
    return poll(&p, 1, -1) < 0 && errno != EINTR ? -errno : 0;
}

bool pal_ip_parse(bool v6, const char *text, uint8_t *ip) {
    return inet_pton(v6 ? AF_INET6 : AF_INET, text, ip) == 1;
}

void pal_ip_format(bool v6, const uint8_t *ip, char *buf, size_t len) {
    inet_ntop(v6 ? AF_INET6 : AF_INET, ip, buf, (socklen_t)len);
}

/* --------------------------------------------------- exit signals */

static sigset_t caught;       /* SIGTERM, SIGINT, SIGHUP */
static sigset_t saved;        /* the main thread's mask before step 1 */
static pthread_t thread;
static mt_atomic stopping;    /* step 3 has begun */

/* The signal thread: flushes stdout and exits on a signal, returns once
 * stopping. */
static void *signal_main(void *arg) {
    (void)arg;
    for (;;) {
        int sig;
        if (sigwait(&caught, &sig) != 0)
            continue;
        if (mt_atomic_load_acquire(&stopping)) /* pairs with the release in stop */
            return NULL;
        fflush(stdout);
        _exit(128 + sig);
    }
}

int pal_exit_signals_start(void) {
    sigemptyset(&caught);
    sigaddset(&caught, SIGTERM);
    sigaddset(&caught, SIGINT);
    sigaddset(&caught, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &caught, &saved);
    mt_atomic_store(&stopping, 0); /* relaxed: the thread starts after it */
    int err = pthread_create(&thread, NULL, signal_main, NULL);
    if (err)
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return -err;
}

void pal_exit_signals_stop(void) {
    mt_atomic_store_release(&stopping, 1); /* pairs with the acquire in signal_main */
    pthread_kill(thread, SIGHUP);
    pthread_join(thread, NULL);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}
