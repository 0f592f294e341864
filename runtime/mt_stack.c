/* mt_stack.c - a stack overflow ends the process with a panic message
 * instead of a bare "Segmentation fault".
 *
 * Deep recursion (a sync function, or an async one: its frames are boxed
 * on the heap, but each level of the await chain is one nested poll on
 * the C stack) runs off the end of the thread's stack into the guard
 * page, and the kernel sends SIGSEGV. The handler cannot run on the
 * exhausted stack, so every thread that runs TML code (the workers, and
 * the main thread from tml_main_enter) gets an alternate signal stack
 * (sigaltstack). The handler, installed once per process with SA_ONSTACK:
 *   - a fault address within OVERFLOW_REACH below the lowest address of
 *     the faulting thread's stack (or a page above it: the bound the C
 *     library reports for the main thread is approximate) is a stack
 *     overflow: it writes "panic: stack overflow ..." to stderr with
 *     write(2), flushes stdout as a panic does (std_io.c), and leaves
 *     with _exit(101);
 *   - any other fault is not ours: it restores the handler that was
 *     there before (the default, a sanitizer's, Criterion's) and returns,
 *     so the faulting instruction runs again and that handler sees it.
 * Flushing stdio inside a signal handler is not async-signal-safe; it is
 * a best effort after the message is out, on a process about to exit
 * (Rust's runtime prints a similar message and does not flush).
 * Sources: Rust's std::sys::unix::stack_overflow (alternate stack, guard
 * page test); Go reports the same condition as "goroutine stack exceeds". */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sys/mman.h>

#include "mt_internal.h"

#define ALT_STACK_BYTES (64 * 1024)
#define OVERFLOW_REACH (1024 * 1024) /* a frame can skip the guard page by this much */
#define PAGE_SLACK 4096

static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static _Thread_local uintptr_t stack_lo; /* lowest address of this thread's stack; 0: unknown */

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (stack_lo && a < stack_lo + PAGE_SLACK && a + OVERFLOW_REACH >= stack_lo) {
        static const char msg[] = "panic: stack overflow: a recursion went deeper than the thread's stack\n";
        ssize_t unused = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)unused;
        fflush(stdout);
        _exit(101);
    }
    sigaction(SIGSEGV, &previous, NULL); /* the fault repeats under it */
}

static void install(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous) != 0)
        mt_panic_err("installing the stack overflow handler", -errno);
}

/* Prepares the calling thread: records its stack's bounds, gives it an
 * alternate signal stack (kept in *alt until mt_stack_thread_end) and
 * installs the process's SIGSEGV handler on first use. Best effort: a
 * thread whose bounds or alternate stack are not available keeps the
 * plain SIGSEGV. Threads: each thread for itself, before it runs tasks. */
void mt_stack_thread_begin(mt_alt_stack *alt) {
    pthread_once(&installed, install);
    alt->mem = NULL;
    pthread_attr_t attr;
    void *lo;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    int err = pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
    if (err)
        return;
    void *mem = mmap(NULL, ALT_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = mem, .ss_size = ALT_STACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALT_STACK_BYTES);
        return;
    }
    alt->mem = mem;
    stack_lo = (uintptr_t)lo;
}

/* Undoes mt_stack_thread_begin for the calling thread (before it exits,
 * or before the main thread leaves the runtime). */
void mt_stack_thread_end(mt_alt_stack *alt) {
    if (!alt->mem)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(alt->mem, ALT_STACK_BYTES);
    alt->mem = NULL;
    stack_lo = 0;
}
