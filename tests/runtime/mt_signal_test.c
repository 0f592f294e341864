/* mt_signal_test.c - mt_signal.c: a program killed by SIGTERM, SIGINT or
 * SIGHUP keeps its buffered stdout and exits with 128 + the signal. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt_test.h"

/* The program, in a child whose stdout is the pipe `out` (fully
 * buffered): enters the runtime, prints a line and sends itself `sig`
 * (process-directed, as kill(1) does), then waits to be ended. */
static _Noreturn void killed_program(int out, int sig) {
    dup2(out, STDOUT_FILENO);
    setvbuf(stdout, NULL, _IOFBF, 4096); /* as for any pipe: nothing goes out before a flush */
    tml_main_enter(0, NULL);
    static tml_str line = TML_STR_LIT("printed before the kill");
    tml_println(&line);
    kill(getpid(), sig);
    for (;;)
        pause(); /* the signal thread ends the process */
}

/* Runs killed_program(sig) in a child; returns its exit status (-1 when
 * it did not exit) and what it wrote in buf (NUL-terminated). */
static int run_killed(int sig, char *buf, size_t cap) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        killed_program(fds[1], sig);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got < cap - 1 && (n = read(fds[0], buf + got, cap - 1 - got)) > 0)
        got += (size_t)n; /* EOF: the child is gone */
    buf[got] = '\0';
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// RT-SIGNAL-1: SIGTERM, SIGINT and SIGHUP flush stdout and exit with 128 + the signal
Test(mt_signal, kill_keeps_buffered_output_and_exits_128_plus_signal, .timeout = 10) {
    int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        char buf[256];
        int status = run_killed(sigs[i], buf, sizeof buf);
        cr_assert_eq(status, 128 + sigs[i], "signal %d: status %d", sigs[i], status);
        cr_assert_str_eq(buf, "printed before the kill\n");
    }
}
