/* mt_signal.c - a program killed by SIGTERM, SIGINT or SIGHUP keeps what
 * it printed: stdout is fully buffered when it is not a terminal (a pipe,
 * a file, `tml test`), so without a flush the output of a program killed
 * for a hang is lost (spec/runtime.md, RT-SIGNAL-1).
 *
 * Protocol, for the process runtime (tml_main_enter .. tml_main_exit):
 *   1. mt_signal_start, on the main thread before the workers exist,
 *      blocks the three signals in the calling thread, so every thread
 *      the runtime creates afterwards inherits the mask, and starts one
 *      thread that takes them with sigwait;
 *   2. on a signal that thread flushes stdout (a normal thread: stdio's
 *      locks make the flush safe while workers print) and ends the
 *      process with _exit(128 + signal), the status a shell shows for a
 *      process the signal killed;
 *   3. mt_signal_stop, in tml_main_exit after the runtime is gone, marks
 *      the thread stopping, sends it SIGHUP, joins it and restores the
 *      calling thread's mask (a signal still pending then is delivered
 *      with its default action: the output was flushed just before).
 * Rejected: a handler (sigaction) that flushes: fflush is not
 * async-signal-safe, and the signal may interrupt a thread inside
 * println, holding the stream half-written; re-raising the signal with
 * its default action after the flush (the issue asks for the exit
 * status); a graceful shutdown on SIGTERM (a hung program would not
 * finish it). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "mt_internal.h"

static sigset_t caught;       /* SIGTERM, SIGINT, SIGHUP */
static sigset_t saved;        /* the main thread's mask before step 1 */
static pthread_t thread;
static mt_atomic stopping;    /* step 3 has begun */

/* Step 2. */
static void *signal_main(void *arg) {
    (void)arg;
    for (;;) {
        int sig;
        if (sigwait(&caught, &sig) != 0)
            continue;
        if (mt_atomic_load_acquire(&stopping)) /* pairs with step 3's release */
            return NULL;
        fflush(stdout);
        _exit(128 + sig);
    }
}

/* Step 1. Errors: panics when the thread cannot start. Threads: the
 * main thread, before it creates any other, once per mt_signal_stop. */
void mt_signal_start(void) {
    sigemptyset(&caught);
    sigaddset(&caught, SIGTERM);
    sigaddset(&caught, SIGINT);
    sigaddset(&caught, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &caught, &saved);
    mt_atomic_store(&stopping, 0); /* relaxed: the thread starts after it */
    int err = pthread_create(&thread, NULL, signal_main, NULL);
    if (err) {
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        mt_panic_err("starting the signal thread", -err);
    }
}

/* Step 3. Threads: the thread that called mt_signal_start. */
void mt_signal_stop(void) {
    mt_atomic_store_release(&stopping, 1); /* pairs with the acquire in signal_main */
    pthread_kill(thread, SIGHUP);
    pthread_join(thread, NULL);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}
