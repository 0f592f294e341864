/* mt_stack.c - a stack overflow ends the process with a panic message
 * instead of a bare "Segmentation fault".
 *
 * Deep recursion (a sync function, or an async one: its frames are boxed
 * on the heap, but each level of the await chain is one nested poll on
 * the C stack) runs off the end of the thread's stack into the guard
 * page. The handler cannot run on the exhausted stack, so every thread
 * that runs TML code (the workers, and the main thread from
 * tml_main_enter) is guarded by the platform layer (pal.h,
 * pal_stack_guard_begin: an alternate signal stack and a SIGSEGV handler
 * on POSIX, a vectored exception handler and SetThreadStackGuarantee on
 * Windows), which calls report() below on an overflow and leaves every
 * other fault to the handling it had.
 *
 * report() writes "panic: stack overflow ..." to stderr with one
 * unbuffered write, flushes stdout as a panic does (std_io.c), and leaves
 * with status 101 at once. Flushing stdio there is not async-signal-safe;
 * it is a best effort after the message is out, on a process about to
 * exit (Rust's runtime prints a similar message and does not flush).
 * Sources: Rust's std::sys::unix::stack_overflow (alternate stack, guard
 * page test); Go reports the same condition as "goroutine stack exceeds". */
#include <stdio.h>

#include "mt_internal.h"

static void report(void) {
    static const char msg[] = "panic: stack overflow: a recursion went deeper than the thread's stack\n";
    pal_write_stderr(msg, sizeof msg - 1);
    fflush(stdout);
    pal_exit_now(101);
}

static pal_once installed = PAL_ONCE_INIT;

static void install(void) {
    pal_stack_guard_install(report);
}

/* Guards the calling thread (state in *g until mt_stack_thread_end),
 * installing the process's handler on first use. Best effort: a thread
 * the layer cannot guard keeps the plain fault. Threads: each thread for
 * itself, before it runs tasks. */
void mt_stack_thread_begin(pal_stack_guard *g) {
    pal_once_run(&installed, install);
    pal_stack_guard_begin(g);
}

/* Undoes mt_stack_thread_begin for the calling thread (before it exits,
 * or before the main thread leaves the runtime). */
void mt_stack_thread_end(pal_stack_guard *g) {
    pal_stack_guard_end(g);
}
