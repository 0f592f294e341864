/* mt_main_test.c - mt_main.c, the process runtime: a program killed by
 * SIGTERM, SIGINT or SIGHUP keeps its buffered stdout and exits with
 * 128 + the signal (pal_exit_signals_start). */
#include <signal.h>
#include <stdio.h>

#include "rt_child.h"

/* The program, in a child whose stdout is a pipe (fully buffered):
 * enters the runtime, prints a line and sends itself `sig`
 * (process-directed, as kill(1) does), then waits to be ended. */
static void killed_program(int sig) {
    setvbuf(stdout, NULL, _IOFBF, 4096); /* as for any pipe: nothing goes out before a flush */
    tml_main_enter(0, NULL);
    static tml_str line = TML_STR_LIT("printed before the kill");
    tml_println(&line);
    kill(getpid(), sig);
    for (;;)
        pause(); /* the signal thread ends the process */
}

// RT-SIGNAL-1: SIGTERM, SIGINT and SIGHUP flush stdout and exit with 128 + the signal
Test(mt_main, kill_keeps_buffered_output_and_exits_128_plus_signal, .timeout = 10) {
    int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        char buf[256];
        int status = run_child(STDOUT_FILENO, killed_program, sigs[i], buf, sizeof buf);
        cr_assert_eq(status, 128 + sigs[i], "signal %d: status %d", sigs[i], status);
        cr_assert_str_eq(buf, "printed before the kill\n");
    }
}
