/* pal.h - the platform layer: the only place the runtime spells an OS call.
 *
 * Everything the runtime needs from the OS, in the runtime's own terms:
 * locks, condition variables with monotonic deadlines, once-init,
 * threads, the CPU count, the monotonic clock and sleeping until a
 * deadline, aligned allocation, the stack-overflow guard, stdio locking,
 * and TCP sockets on an `io_fd` with errors as negative errno values
 * (one set on every OS: pal_win32.c maps WSA codes into it). Two
 * implementations: POSIX (Linux, macOS, the BSDs; pal_posix.c) and Win32
 * (pal_win32.c); configure.py compiles the one the target needs. The
 * reactor backends (io_reactor_epoll.c, _kqueue.c, _iocp.c) are the other
 * files that talk to the OS; each is one backend's own business.
 *
 * Invariants:
 *   1. Deadlines are int64 ns on tml_now_ns's clock (monotonic);
 *      PAL_NO_DEADLINE waits forever. Errors are 0 or -errno.
 *   2. On POSIX the lock, condvar, clock and yield calls are static inline
 *      wrappers over pthread and clock_gettime, so Linux runs the same
 *      instructions as before the layer existed (checked with W1-W8).
 *   3. On Win32 this header never includes <windows.h>: the lock types
 *      are pointer-sized opaque words laid out as SRWLOCK,
 *      CONDITION_VARIABLE and INIT_ONCE (all-zero is the initial state),
 *      so runtime files compile without Windows' macros in scope.
 * Rejected: winpthreads on Windows (its condvars cannot wait on the
 * monotonic clock: a monotonic deadline expires at once); a function
 * call per lock on Linux (a pal.c behind every mutex: measurable in W7);
 * #ifdefs spread through the runtime files (how it was, before). */
#ifndef PAL_H
#define PAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tml/rt.h"

#define PAL_NO_DEADLINE INT64_MAX

#if defined(_WIN32)
#define PAL_WIN32 1
#include <errno.h>
/* POSIX codes the Windows C runtime lacks; values clear of its own. */
#ifndef ESHUTDOWN
#define ESHUTDOWN 200
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN 201
#endif
#else
#define PAL_POSIX 1
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#endif

/* ------------------------------------------------------------- locks */

#ifdef PAL_POSIX
typedef pthread_mutex_t pal_mutex;
typedef pthread_cond_t pal_cond;
typedef pthread_rwlock_t pal_rwlock;
typedef pthread_once_t pal_once;
#define PAL_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define PAL_RWLOCK_INIT PTHREAD_RWLOCK_INITIALIZER
#define PAL_ONCE_INIT PTHREAD_ONCE_INIT
#else
typedef struct pal_mutex { void *opaque; } pal_mutex;   /* SRWLOCK, exclusive */
typedef struct pal_cond { void *opaque; } pal_cond;     /* CONDITION_VARIABLE */
typedef struct pal_rwlock { void *opaque; } pal_rwlock; /* SRWLOCK */
typedef struct pal_once { void *opaque; } pal_once;     /* INIT_ONCE */
#define PAL_MUTEX_INIT {0}
#define PAL_RWLOCK_INIT {0}
#define PAL_ONCE_INIT {0}
#endif

/* Mutex: init never fails; lock/unlock from any thread, not recursive.
 * fini: no thread holds or waits for it. */
#ifdef PAL_POSIX
static inline void pal_mutex_init(pal_mutex *m) { pthread_mutex_init(m, NULL); }
static inline void pal_mutex_fini(pal_mutex *m) { pthread_mutex_destroy(m); }
static inline void pal_mutex_lock(pal_mutex *m) { pthread_mutex_lock(m); }
static inline void pal_mutex_unlock(pal_mutex *m) { pthread_mutex_unlock(m); }
#else
void pal_mutex_init(pal_mutex *m);
void pal_mutex_fini(pal_mutex *m);
void pal_mutex_lock(pal_mutex *m);
void pal_mutex_unlock(pal_mutex *m);
#endif

/* Reader-writer lock, statically initialised with PAL_RWLOCK_INIT.
 * Unlock with the call that matches the lock taken. Threads: any. */
#ifdef PAL_POSIX
static inline void pal_rwlock_rdlock(pal_rwlock *l) { pthread_rwlock_rdlock(l); }
static inline void pal_rwlock_rdunlock(pal_rwlock *l) { pthread_rwlock_unlock(l); }
static inline void pal_rwlock_wrlock(pal_rwlock *l) { pthread_rwlock_wrlock(l); }
static inline void pal_rwlock_wrunlock(pal_rwlock *l) { pthread_rwlock_unlock(l); }
#else
void pal_rwlock_rdlock(pal_rwlock *l);
void pal_rwlock_rdunlock(pal_rwlock *l);
void pal_rwlock_wrlock(pal_rwlock *l);
void pal_rwlock_wrunlock(pal_rwlock *l);
#endif

/* Condition variable whose timed waits use the monotonic clock.
 * init: 0 or -errno. wait_until: called with `m` held, returns with it
 * held; 0 when signalled (or spuriously: callers loop on their
 * predicate), -ETIMEDOUT once tml_now_ns() >= deadline_ns
 * (PAL_NO_DEADLINE: never). signal/broadcast: any thread, with or
 * without `m`. fini: no waiter left. */
int pal_cond_init(pal_cond *c);
int pal_cond_wait_until(pal_cond *c, pal_mutex *m, int64_t deadline_ns);
#ifdef PAL_POSIX
static inline void pal_cond_fini(pal_cond *c) { pthread_cond_destroy(c); }
static inline void pal_cond_signal(pal_cond *c) { pthread_cond_signal(c); }
static inline void pal_cond_broadcast(pal_cond *c) { pthread_cond_broadcast(c); }
#else
void pal_cond_fini(pal_cond *c);
void pal_cond_signal(pal_cond *c);
void pal_cond_broadcast(pal_cond *c);
#endif

/* Runs fn once per process for `once` (PAL_ONCE_INIT); concurrent
 * callers wait until it returned. Threads: any. */
#ifdef PAL_POSIX
static inline void pal_once_run(pal_once *once, void (*fn)(void)) { pthread_once(once, fn); }
#else
void pal_once_run(pal_once *once, void (*fn)(void));
#endif

/* ----------------------------------------------------------- threads */

#ifdef PAL_POSIX
typedef pthread_t pal_thread;
#else
typedef struct pal_thread { void *handle; } pal_thread; /* a thread HANDLE */
#endif

/* Starts fn(arg) on a new thread with the default stack, its handle in
 * *t (joined exactly once with pal_thread_join). `name` (at most 15
 * bytes) labels it for debuggers, best effort. Returns 0 or -errno
 * (-EAGAIN: out of threads). */
int pal_thread_start(pal_thread *t, void *(*fn)(void *), void *arg, const char *name);
/* Waits for `t` to return and releases it. */
void pal_thread_join(pal_thread t);

/* Asks the OS to end the calling thread's timed waits as close to their
 * deadline as it can (Linux: timer slack 1 ns instead of 50 us); a no-op
 * where there is no such knob. */
void pal_thread_precise_timers(void);

/* Gives the CPU to another ready thread, if any. */
#ifdef PAL_POSIX
static inline void pal_yield(void) { sched_yield(); }
#else
void pal_yield(void);
#endif

/* Online CPUs, at least 1. */
unsigned pal_cpu_count(void);

/* ------------------------------------------------------------- time */

/* Monotonic clock in ns (an arbitrary origin; never goes back). Threads: any. */
#ifdef PAL_POSIX
static inline int64_t pal_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#else
int64_t pal_now_ns(void);
#endif

/* Blocks the calling thread until pal_now_ns() >= deadline_ns; an
 * interrupted sleep resumes (absolute deadline: no drift). */
void pal_sleep_until(int64_t deadline_ns);

/* ----------------------------------------------------------- memory */

/* `size` bytes aligned to `align` (a power of two, a multiple of
 * sizeof(void *)), owned by the caller and freed with pal_aligned_free
 * (never free(): Windows keeps aligned blocks apart). NULL when out of
 * memory. */
void *pal_aligned_alloc(size_t align, size_t size);
void pal_aligned_free(void *p);

/* ------------------------------------------------- process and stdio */

/* Sets the process up as a TML program expects, once, before it prints:
 * Win32 writes stdout and stderr as bytes (no "\n" -> "\r\n", as Rust
 * and Go do) and ends on a crash without an error dialog or debugger;
 * nothing to do on POSIX. */
void pal_process_init(void);

/* Signals that end a program (spec/runtime.md RT-SIGNAL-1): from
 * pal_exit_signals_start until pal_exit_signals_stop, SIGTERM, SIGINT or
 * SIGHUP (Win32: the console's Ctrl-C, Ctrl-Break and close events, as
 * SIGINT, SIGTERM and SIGHUP) flush stdout and end the process with
 * status 128 + the signal's number, on a thread of its own, never in a
 * signal handler (fflush is not async-signal-safe, and a signal may
 * interrupt a thread inside println). POSIX: the signals are blocked in
 * the calling thread, so every thread created after start inherits the
 * mask, and one thread takes them with sigwait; stop restores the mask.
 * Threads: start on the main thread before it creates any other; stop
 * on the same thread. Errors: start returns 0 or a negative errno. */
int pal_exit_signals_start(void);
void pal_exit_signals_stop(void);

/* Writes `s` (its bytes, no newline added) to stderr with one unbuffered
 * write, usable where stdio is not (a fault handler). */
void pal_write_stderr(const char *s, size_t len);
/* Ends the process with `status` at once: no atexit handlers, no stdio
 * flush (the caller flushes what it wants first). */
_Noreturn void pal_exit_now(int status);
/* Text for the positive errno `err` in buf[len], returned. */
const char *pal_strerror(int err, char *buf, size_t len);

/* Locks `f` for a sequence of the _unlocked calls below. Threads: any. */
/* Where the C library has no unlocked form, the locked call nests in the
 * recursive stream lock (POSIX flockfile, msvcrt _lock_file). */
#ifdef PAL_POSIX
static inline void pal_file_lock(FILE *f) { flockfile(f); }
static inline void pal_file_unlock(FILE *f) { funlockfile(f); }
static inline void pal_putc_unlocked(int c, FILE *f) { putc_unlocked(c, f); }
#ifdef __GLIBC__
static inline void pal_fwrite_unlocked(const void *p, size_t n, FILE *f) { fwrite_unlocked(p, 1, n, f); }
#else
static inline void pal_fwrite_unlocked(const void *p, size_t n, FILE *f) { fwrite(p, 1, n, f); }
#endif
#else
static inline void pal_file_lock(FILE *f) { _lock_file(f); }
static inline void pal_file_unlock(FILE *f) { _unlock_file(f); }
static inline void pal_fwrite_unlocked(const void *p, size_t n, FILE *f) { fwrite(p, 1, n, f); }
static inline void pal_putc_unlocked(int c, FILE *f) { fputc(c, f); }
#endif

/* --------------------------------------------- stack-overflow guard */

/* Per-thread state of the guard (an alternate signal stack on POSIX; the
 * stack kept back by SetThreadStackGuarantee on Windows). */
typedef struct pal_stack_guard {
    void *mem; /* the alternate stack the overflow is reported on, or NULL */
} pal_stack_guard;

/* Installs the handler that calls on_overflow() when a guarded thread
 * runs off the end of its stack (POSIX: a SIGSEGV at most 1 MiB below
 * the thread's lowest stack address; Win32: a vectored handler for
 * EXCEPTION_STACK_OVERFLOW). on_overflow runs on the thread's alternate
 * stack and must not return. Any other fault keeps the handling it had
 * (POSIX: the previous handler runs it again). Best effort: when the OS
 * refuses, nothing is guarded. Threads: once per process, before any
 * pal_stack_guard_begin (the caller's pal_once). */
void pal_stack_guard_install(void (*on_overflow)(void));
/* Guards the calling thread, keeping its state in *g until
 * pal_stack_guard_end. Best effort: a thread whose stack bounds or
 * alternate stack are unavailable is left unguarded. Threads: each
 * thread for itself. */
void pal_stack_guard_begin(pal_stack_guard *g);
void pal_stack_guard_end(pal_stack_guard *g);

/* ---------------------------------------------------------- sockets */

#ifdef PAL_POSIX
typedef int io_fd;
#define IO_FD_NONE (-1)
#else
typedef uintptr_t io_fd; /* a SOCKET */
#define IO_FD_NONE (~(io_fd)0)
#endif

/* Every call below: non-blocking sockets, close-on-exec, no SIGPIPE; a
 * result >= 0, or -errno with the same codes on every OS: -EAGAIN (not
 * ready: wait for the direction's readiness), -EINTR (try again), and the
 * failures net.c maps to NetError kinds. Threads: any; the caller owns
 * the fds it gets and closes them with pal_socket_close. The first call
 * sets sockets up where the OS asks for it (Win32: WSAStartup). */

/* A listening TCP socket bound to `a` (SO_REUSEADDR, `backlog`) in *out. */
int pal_tcp_listen(const tml_sockaddr *a, int backlog, io_fd *out);
/* A TCP socket in *out whose connect to `a` started (or finished). */
int pal_tcp_connect_start(const tml_sockaddr *a, io_fd *out);
/* Whether the connect of `fd` finished: 0 connected, -EAGAIN in
 * progress (a spurious writable edge), or -errno of the failure. */
int pal_tcp_connect_result(io_fd fd);
/* Accepts one connection of listener `l` into *out, its peer in *peer
 * (family 0 when TML has no SocketAddr for it). -EINTR for a connection
 * that died in the queue (take the next one). */
int pal_tcp_accept(io_fd l, io_fd *out, tml_sockaddr *peer);
/* Moves at most `len` bytes; the count (0 from recv: end of stream). */
int64_t pal_recv(io_fd fd, void *buf, size_t len);
int64_t pal_send(io_fd fd, const void *buf, size_t len);
/* Shuts both directions down: every waiter on the socket sees an edge. */
void pal_socket_shutdown(io_fd fd);
/* Closes the socket; never fails in a way the caller can act on. */
void pal_socket_close(io_fd fd);
int pal_tcp_set_nodelay(io_fd fd, bool on);
/* The local (peer false) or peer address of `fd` into *out. */
int pal_socket_addr(io_fd fd, bool peer, tml_sockaddr *out);
/* Blocks until `fd` is readable (write false) or writable, or reports a
 * hang-up or error (so the next call sees it); Win32 also returns after
 * 100 ms (a listener's shutdown wakes nothing there), so callers loop.
 * 0 or -errno. */
int pal_socket_wait(io_fd fd, bool write);

/* Address text: parses "a.b.c.d" (v6 false) or an IPv6 literal into
 * ip[4 or 16]; true when valid. Formats ip into buf[len]. */
bool pal_ip_parse(bool v6, const char *text, uint8_t *ip);
void pal_ip_format(bool v6, const uint8_t *ip, char *buf, size_t len);
#define PAL_IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

#endif /* PAL_H */
