/* rt_child.h - running a test program in a child process (POSIX: fork),
 * for the tests of what ends a process: a signal, the deadlock report.
 * configure.py builds those tests for the POSIX targets only. */
#ifndef RT_CHILD_H
#define RT_CHILD_H

#include <sys/wait.h>

#include "rt_test.h"

/* Runs `program(arg)`, which must end its process, in a child whose
 * descriptor `fd` (stdout or stderr) is a pipe; reads what the child
 * writes there until EOF into buf (NUL-terminated, at most cap - 1
 * bytes). Returns the child's exit status, or -1 when it did not exit. */
static inline int run_child(int fd, void (*program)(int arg), int arg, char *buf, size_t cap) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], fd);
        close(fds[0]);
        close(fds[1]);
        program(arg);
        _exit(127); /* not reached */
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

#endif /* RT_CHILD_H */
