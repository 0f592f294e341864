/* pal_win32.c - the platform layer (pal.h) on Windows (Vista and later;
 * tested under wine, cross-built with mingw-w64).
 *
 * Locks are SRWLOCKs and condition variables CONDITION_VARIABLEs, never
 * winpthreads: its condvars cannot wait on the monotonic clock (a
 * monotonic deadline expires at once). A timed wait converts the
 * deadline to whole ms rounded up (never early; Windows' waits are in
 * ms) and reports a timeout only once tml_now_ns() reached the deadline,
 * so a wait that the OS ended a little early is a spurious wake-up.
 * The clock is QueryPerformanceCounter; a worker asks for the 1 ms system
 * timer (timeBeginPeriod), the counterpart of Linux's timer slack.
 *
 * Threads: _beginthreadex (the C runtime's per-thread state is set up,
 * unlike CreateThread) through a trampoline that owns {fn, arg}.
 *
 * Stack-overflow guard: a vectored exception handler (first in line)
 * sees EXCEPTION_STACK_OVERFLOW on a guarded thread. It runs on what is
 * left of the overflowing stack (SetThreadStackGuarantee asks for
 * GUARANTEE bytes; wine keeps about a page whatever it is told), too
 * little to print, so it only points the thread's context at a
 * trampoline on the thread's alternate stack (ALT_STACK_BYTES, allocated
 * by pal_stack_guard_begin) and resumes there, where the runtime's report
 * runs; every other exception goes on to the next handler.
 *
 * Sockets: winsock2, started once (WSAStartup) before the first socket
 * call; sockets are non-blocking (FIONBIO) and not inheritable. WSA error
 * codes are mapped to the POSIX errno values net.c reads (errno_of), so
 * net.c is the same on every OS. Connect completion: SO_ERROR, then
 * getpeername (WSAENOTCONN: still in progress), as on POSIX. */
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <mmsystem.h>

#include <fcntl.h>
#include <io.h>
#include <malloc.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pal.h"
#include "pal_sockaddr.h"

_Static_assert(sizeof(pal_mutex) == sizeof(SRWLOCK), "pal_mutex is an SRWLOCK");
_Static_assert(sizeof(pal_rwlock) == sizeof(SRWLOCK), "pal_rwlock is an SRWLOCK");
_Static_assert(sizeof(pal_cond) == sizeof(CONDITION_VARIABLE), "pal_cond is a CONDITION_VARIABLE");
_Static_assert(sizeof(pal_once) == sizeof(INIT_ONCE), "pal_once is an INIT_ONCE");

#define GUARANTEE (64 * 1024)       /* stack kept for the overflow handler */
#define ALT_STACK_BYTES (64 * 1024) /* where the report runs */

/* ------------------------------------------------------------- locks */

void pal_mutex_init(pal_mutex *m) { InitializeSRWLock((SRWLOCK *)m); }
void pal_mutex_fini(pal_mutex *m) { (void)m; /* an SRWLOCK holds no resource */ }
void pal_mutex_lock(pal_mutex *m) { AcquireSRWLockExclusive((SRWLOCK *)m); }
void pal_mutex_unlock(pal_mutex *m) { ReleaseSRWLockExclusive((SRWLOCK *)m); }

void pal_rwlock_rdlock(pal_rwlock *l) { AcquireSRWLockShared((SRWLOCK *)l); }
void pal_rwlock_rdunlock(pal_rwlock *l) { ReleaseSRWLockShared((SRWLOCK *)l); }
void pal_rwlock_wrlock(pal_rwlock *l) { AcquireSRWLockExclusive((SRWLOCK *)l); }
void pal_rwlock_wrunlock(pal_rwlock *l) { ReleaseSRWLockExclusive((SRWLOCK *)l); }

int pal_cond_init(pal_cond *c) {
    InitializeConditionVariable((CONDITION_VARIABLE *)c);
    return 0;
}

void pal_cond_fini(pal_cond *c) { (void)c; /* holds no resource */ }
void pal_cond_signal(pal_cond *c) { WakeConditionVariable((CONDITION_VARIABLE *)c); }
void pal_cond_broadcast(pal_cond *c) { WakeAllConditionVariable((CONDITION_VARIABLE *)c); }

int pal_cond_wait_until(pal_cond *c, pal_mutex *m, int64_t deadline_ns) {
    DWORD ms = INFINITE;
    if (deadline_ns != PAL_NO_DEADLINE) {
        int64_t left = deadline_ns - pal_now_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        int64_t up = left / 1000000 + (left % 1000000 != 0); /* round up: never early */
        ms = up >= INFINITE ? INFINITE - 1 : (DWORD)up;
    }
    if (SleepConditionVariableSRW((CONDITION_VARIABLE *)c, (SRWLOCK *)m, ms, 0))
        return 0;
    if (GetLastError() != ERROR_TIMEOUT)
        return -EINVAL;
    return pal_now_ns() >= deadline_ns ? -ETIMEDOUT : 0;
}

static BOOL CALLBACK once_trampoline(INIT_ONCE *once, void *fn, void **ctx) {
    (void)once, (void)ctx;
    ((void (*)(void))fn)();
    return TRUE;
}

void pal_once_run(pal_once *once, void (*fn)(void)) {
    InitOnceExecuteOnce((INIT_ONCE *)once, once_trampoline, (void *)fn, NULL);
}

/* ----------------------------------------------------------- threads */

typedef struct start {
    void *(*fn)(void *);
    void *arg;
} start;

static unsigned __stdcall thread_trampoline(void *p) {
    start s = *(start *)p;
    free(p);
    s.fn(s.arg);
    return 0;
}

/* Labels thread `h` for debuggers, where the system has
 * SetThreadDescription (Windows 10 1607 and later). Best effort. */
static void name_thread(HANDLE h, const char *name) {
    typedef HRESULT(WINAPI * describe_fn)(HANDLE, const wchar_t *);
    FARPROC p = GetProcAddress(GetModuleHandleA("kernel32.dll"), "SetThreadDescription");
    if (!p)
        return;
    wchar_t wide[32];
    size_t i = 0;
    for (; name[i] && i < 31; i++)
        wide[i] = (wchar_t)(unsigned char)name[i];
    wide[i] = 0;
    ((describe_fn)(void (*)(void))p)(h, wide);
}

int pal_thread_start(pal_thread *t, void *(*fn)(void *), void *arg, const char *name) {
    start *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    *s = (start){fn, arg};
    uintptr_t h = _beginthreadex(NULL, 0, thread_trampoline, s, 0, NULL);
    if (h == 0) {
        free(s);
        return -EAGAIN;
    }
    t->handle = (void *)h;
    name_thread((HANDLE)h, name);
    return 0;
}

void pal_thread_join(pal_thread t) {
    WaitForSingleObject(t.handle, INFINITE);
    CloseHandle(t.handle);
}

void pal_thread_precise_timers(void) {
    timeBeginPeriod(1); /* the system timer at 1 ms, not 15.6: process-wide, counted per call */
}

void pal_yield(void) {
    SwitchToThread();
}

unsigned pal_cpu_count(void) {
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n < 1 ? 1 : (unsigned)n;
}

/* ------------------------------------------------------------- time */

int64_t pal_now_ns(void) {
    static int64_t freq; /* a race writes the same value */
    LARGE_INTEGER c;
    if (freq == 0) {
        LARGE_INTEGER f;
        QueryPerformanceFrequency(&f);
        freq = f.QuadPart;
    }
    QueryPerformanceCounter(&c);
    int64_t n = c.QuadPart;
    return n / freq * 1000000000 + n % freq * 1000000000 / freq;
}

void pal_sleep_until(int64_t deadline_ns) {
    int64_t left;
    while ((left = deadline_ns - pal_now_ns()) > 0) {
        int64_t up = left / 1000000 + (left % 1000000 != 0);
        Sleep(up >= INFINITE ? INFINITE - 1 : (DWORD)up);
    }
}

/* ------------------------------------------------- memory, process */

void *pal_aligned_alloc(size_t align, size_t size) {
    return _aligned_malloc(size ? size : 1, align);
}

void pal_aligned_free(void *p) {
    _aligned_free(p);
}

void pal_process_init(void) {
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
}

void pal_write_stderr(const char *s, size_t len) {
    (void)_write(2, s, (unsigned)len);
}

_Noreturn void pal_exit_now(int status) {
    _exit(status);
}

const char *pal_strerror(int err, char *buf, size_t len) {
    if (strerror_s(buf, len, err) != 0)
        snprintf(buf, len, "error %d", err);
    return buf;
}

/* -------------------------------------------------- stack guard */

static void (*report_overflow)(void); /* written once, before any guarded thread */
static _Thread_local char *alt_stack; /* the guarded thread's, or NULL */

static void on_alt_stack(void) {
    report_overflow(); /* does not return */
}

static LONG CALLBACK on_exception(EXCEPTION_POINTERS *e) {
    if (!alt_stack || e->ExceptionRecord->ExceptionCode != EXCEPTION_STACK_OVERFLOW)
        return EXCEPTION_CONTINUE_SEARCH;
#if defined(__x86_64__)
    uintptr_t top = ((uintptr_t)alt_stack + ALT_STACK_BYTES) & ~(uintptr_t)15;
    e->ContextRecord->Rsp = top - 8; /* as right after a call */
    e->ContextRecord->Rip = (uintptr_t)on_alt_stack;
    return EXCEPTION_CONTINUE_EXECUTION;
#else
    on_alt_stack();
#endif
}

void pal_stack_guard_install(void (*on_overflow)(void)) {
    report_overflow = on_overflow;
    AddVectoredExceptionHandler(1, on_exception);
}

void pal_stack_guard_begin(pal_stack_guard *g) {
    ULONG size = GUARANTEE;
    g->mem = NULL;
    if (!SetThreadStackGuarantee(&size) || !(g->mem = malloc(ALT_STACK_BYTES)))
        return;
    alt_stack = g->mem;
}

void pal_stack_guard_end(pal_stack_guard *g) {
    alt_stack = NULL;
    free(g->mem);
    g->mem = NULL;
}

/* ----------------------------------------------------------- sockets */

static pal_once wsa_once = PAL_ONCE_INIT;

static void wsa_start(void) {
    WSADATA d;
    WSAStartup(MAKEWORD(2, 2), &d);
}

/* Starts winsock once per process, before the first socket call. */
static void need_wsa(void) {
    pal_once_run(&wsa_once, wsa_start);
}

/* The POSIX errno of a winsock error. */
static int errno_of(int wsa) {
    switch (wsa) {
    case WSAEWOULDBLOCK: case WSAEINPROGRESS: case WSAEALREADY: return EAGAIN;
    case WSAEINTR: return EINTR;
    case WSAECONNREFUSED: return ECONNREFUSED;
    case WSAECONNRESET: case WSAECONNABORTED: case WSAENETRESET: return ECONNRESET;
    case WSAESHUTDOWN: return EPIPE;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEINVAL: case WSAEFAULT: return EINVAL;
    case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAENOTCONN: return ENOTCONN;
    case WSAENOTSOCK: return EBADF;
    case WSAEMFILE: return EMFILE;
    case WSAENOBUFS: return ENOMEM;
    default: return EIO;
    }
}

static int fail(void) {
    return -errno_of(WSAGetLastError());
}

/* Makes `s` non-blocking and not inheritable; closes it on failure. */
static int make_async(SOCKET s) {
    u_long one = 1;
    if (ioctlsocket(s, FIONBIO, &one) != 0 || !SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0)) {
        int err = fail();
        closesocket(s);
        return err;
    }
    return 0;
}

static int tcp_socket(const struct sockaddr_storage *ss, io_fd *out) {
    need_wsa();
    SOCKET s = WSASocketW(ss->ss_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (s == INVALID_SOCKET)
        return fail();
    *out = s;
    return make_async(s);
}

int pal_tcp_listen(const tml_sockaddr *a, int backlog, io_fd *out) {
    struct sockaddr_storage ss;
    int len = to_os(a, &ss), err;
    BOOL one = TRUE;
    io_fd s = IO_FD_NONE;
    if (len == 0)
        return -EINVAL;
    if ((err = tcp_socket(&ss, &s)) < 0)
        return err;
    /* SO_REUSEADDR on Windows lets another socket steal the port: the
     * exclusive form is what POSIX's reuse-after-TIME_WAIT means here */
    if (setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof one) != 0 ||
        bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, backlog) != 0) {
        err = fail();
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

int pal_tcp_connect_start(const tml_sockaddr *a, io_fd *out) {
    struct sockaddr_storage ss;
    int len = to_os(a, &ss), err;
    io_fd s = IO_FD_NONE;
    if (len == 0)
        return -EINVAL;
    if ((err = tcp_socket(&ss, &s)) < 0)
        return err;
    if (connect(s, (struct sockaddr *)&ss, len) != 0 && (err = fail()) != -EAGAIN) {
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

int pal_tcp_connect_result(io_fd fd) {
    int err = 0, len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0)
        return fail();
    if (err)
        return -errno_of(err);
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        return 0;
    err = fail();
    return err == -ENOTCONN ? -EAGAIN : err;
}

int pal_tcp_accept(io_fd l, io_fd *out, tml_sockaddr *peer) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    SOCKET s = accept(l, (struct sockaddr *)&ss, &len);
    if (s == INVALID_SOCKET) {
        int err = fail();
        return err == -ECONNRESET ? -EINTR : err; /* died in the queue: take the next */
    }
    int err = make_async(s);
    if (err < 0)
        return err;
    from_os(&ss, peer);
    *out = s;
    return 0;
}

int64_t pal_recv(io_fd fd, void *buf, size_t len) {
    int n = recv(fd, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
    return n < 0 ? fail() : n;
}

int64_t pal_send(io_fd fd, const void *buf, size_t len) {
    int n = send(fd, buf, len > INT_MAX ? INT_MAX : (int)len, 0); /* no SIGPIPE on Windows */
    return n < 0 ? fail() : n;
}

void pal_socket_shutdown(io_fd fd) {
    (void)shutdown(fd, SD_BOTH);
}

void pal_socket_close(io_fd fd) {
    closesocket(fd);
}

int pal_tcp_set_nodelay(io_fd fd, bool on) {
    BOOL v = on;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&v, sizeof v) != 0 ? fail() : 0;
}

int pal_socket_addr(io_fd fd, bool peer, tml_sockaddr *out) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (rc != 0)
        return fail();
    from_os(&ss, out);
    return 0;
}

/* A shutdown from another thread does not wake WSAPoll on a listening
 * socket (Windows has no shutdown for listeners), so the wait ends every
 * WAIT_SLICE_MS and the caller (net.c's blocking forms, on plain threads)
 * re-checks its `closed` flag: a close that races a blocking accept costs
 * that much latency, and an idle blocked thread ten wake-ups a second.
 * Rejected: an event per handle signalled by close (WSAEventSelect:
 * state in every handle for the blocking forms alone). */
#define WAIT_SLICE_MS 100

int pal_socket_wait(io_fd fd, bool write) {
    WSAPOLLFD p = {.fd = fd, .events = write ? POLLOUT : POLLIN};
    return WSAPoll(&p, 1, WAIT_SLICE_MS) < 0 ? fail() : 0;
}

bool pal_ip_parse(bool v6, const char *text, uint8_t *ip) {
    need_wsa();
    return inet_pton(v6 ? AF_INET6 : AF_INET, text, ip) == 1;
}

void pal_ip_format(bool v6, const uint8_t *ip, char *buf, size_t len) {
    need_wsa();
    inet_ntop(v6 ? AF_INET6 : AF_INET, ip, buf, len);
}

/* --------------------------------------------------- exit signals */

/* Win32 calls a console control handler on a thread of its own, so it
 * may flush; it ends the process as a POSIX signal would. */
static BOOL WINAPI exit_on_control(DWORD event) {
    int sig = event == CTRL_C_EVENT ? 2 : event == CTRL_BREAK_EVENT ? 15 : 1;
    fflush(stdout);
    ExitProcess((UINT)(128 + sig));
    return TRUE;
}

int pal_exit_signals_start(void) {
    return SetConsoleCtrlHandler(exit_on_control, TRUE) ? 0 : -EINVAL;
}

void pal_exit_signals_stop(void) {
    SetConsoleCtrlHandler(exit_on_control, FALSE);
}
