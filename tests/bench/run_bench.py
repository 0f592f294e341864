#!/usr/bin/env python3
"""run_bench.py - the scheduler benchmarks, in the peers' format.

Builds each workload of tests/bench/ with `tml build` (-O2), runs it once
unrecorded and then --reps times with TML_WORKERS=--workers, and prints one
line per workload in the format of ../shared/peers/aggregate.awk:

  W1 spawn_many                tml    runs=5 ok=5/5 wall_ms=MED[MIN..MAX] rate_per_s=... cpu_ms=... maxrss_kb=... workers=2 n=...

wall_ms is measured by the program's root task around the workload (as the
peers do); cpu_ms (user + system) and maxrss_kb come from wait4() of the
whole process (the peers read getrusage at the end of the workload, so
ours include process start-up and exit, a fraction of a millisecond).
Workloads are defined in ../shared/peers/RESULTS.md. --raw FILE also
writes every RESULT line, for pooling with the peers' raw files.

It then measures runtime memory per pending task: M1 parks N tasks on a
channel and releases them; (peak RSS with N = 1,000,000) - (peak RSS with
N = 0), divided by N, less the task frame's size (`tml build
--frame-sizes`), is the runtime's own cost per parked task.

C1 times the compiler on a generated 10,000-line program (gen_big.py):
the front end (`tml emit-c`, lexing to C text) and the C compiler (the
rest of `tml build`), medians of --reps runs with [min..max].

W5-W7 are the sync and timer workloads, W9a/W9b the select! workloads, T1 timer lateness while CPU-bound
tasks keep both workers busy (ours, no peer); W6a also reports its peak RSS per
sleeping task ((N = 100,000) - (N = 1), / N: frame, task and timer
together). W8 builds the peers' echo-load client from ../shared/peers and
runs the TML echo server (W8_echo_server.tml) under it for --echo-secs at
each --echo-conns, adding the server's CPU time and peak RSS.

Figures only: nothing here passes or fails on time. Exits 1 only when a
workload did not build, crashed, or printed ok=0."""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# id, label, source, {old line: new line} applied to the source
WORKLOADS = [
    ('W1', 'W1 spawn_many', 'W1_spawn_many.tml', {}),
    ('W2', 'W2 yield_many', 'W2_yield_many.tml', {}),
    ('W3a', 'W3a ping_pong', 'W3_ping_pong.tml', {}),
    ('W3b', 'W3b ping_pong_1pair', 'W3_ping_pong.tml',
     {'let pairs: I64 = 1000': 'let pairs: I64 = 1',
      'let rounds: I64 = 1000': 'let rounds: I64 = 1000000'}),
    ('W4', 'W4 chained_spawn', 'W4_chained_spawn.tml', {}),
    ('W5', 'W5 channel', 'W5_channel.tml', {}),
    ('W6a', 'W6a timers_sleep', 'W6a_timers_sleep.tml', {}),
    ('W6b', 'W6b timers_cancel', 'W6b_timers_cancel.tml', {}),
    ('W6c', 'W6c timers_idle', 'W6c_timers_idle.tml', {}),
    ('W7', 'W7 mutex', 'W7_mutex.tml', {}),
    ('W9a', 'W9a select_two', 'W9a_select_two.tml', {}),
    ('W9b', 'W9b select_timeout', 'W9b_select_timeout.tml', {}),
    ('T1', 'T1 timers_under_load', 'T1_timers_under_load.tml', {}),
]
PEERS = os.path.join(HERE, '..', '..', '..', 'shared', 'peers')
WIDE = {'wall_ms', 'rate_per_s'}


def fmt(x):
    """Number formatting of aggregate.awk."""
    a = abs(x)
    if a >= 1000:
        return '%.0f' % x
    if a >= 100:
        return '%.1f' % x
    if a >= 10:
        return '%.2f' % x
    return '%.3f' % x


def source(name, subst, tmp, tag):
    with open(os.path.join(HERE, name)) as f:
        text = f.read()
    for old, new in subst.items():
        if old not in text:
            sys.exit('run_bench.py: %s has no line %r to substitute' % (name, old))
        text = text.replace(old, new)
    path = os.path.join(tmp, tag + '.tml')
    with open(path, 'w') as f:
        f.write(text)
    return path


def build(tml, src, exe):
    r = subprocess.run([tml, 'build', src, '-o', exe], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return False
    return True


# A process's peak RSS (ru_maxrss) counts the memory it had before exec:
# a child forked from this Python process starts at Python's ~16 MB. So
# each program runs under this small launcher, which forks and execs it
# and reports its rusage: the program's peak then starts from the
# launcher's ~1 MB, below any program's own.
LAUNCHER = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3)
        return 127;
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0)
        return 127;
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 127;
    fprintf(f, "%.1f %ld\n", (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
            (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3, ru.ru_maxrss);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
"""


def launcher(tmp):
    """The launcher's path, built on first use."""
    exe = os.path.join(tmp, 'launch')
    if not os.path.exists(exe):
        src = exe + '.c'
        with open(src, 'w') as f:
            f.write(LAUNCHER)
        subprocess.run(['cc', '-O2', '-o', exe, src], check=True)
    return exe


def run_once(exe, workers):
    """Runs exe; returns (stdout, exit status, cpu_ms, maxrss_kb)."""
    env = dict(os.environ, TML_WORKERS=str(workers))
    tmp = os.path.dirname(exe)
    stats = os.path.join(tmp, 'rusage')
    with tempfile.TemporaryFile() as out:
        rc = subprocess.run([launcher(tmp), stats, exe], stdout=out, stderr=subprocess.DEVNULL,
                            env=env).returncode
        out.seek(0)
        text = out.read().decode(errors='replace')
    with open(stats) as f:
        cpu_ms, maxrss = f.read().split()
    return text, rc, float(cpu_ms), int(maxrss)


def result_line(text, rc, cpu_ms, maxrss, workers):
    """The peers' RESULT line for one run, or None when the run failed."""
    m = re.search(r'^RESULT (.*)$', text, re.M)
    if rc != 0 or not m:
        return None
    kv = dict(item.split('=', 1) for item in m.group(1).split())
    wall_ms = int(kv.pop('wall_us')) / 1000
    ops = int(kv.pop('ops'))
    head = 'RESULT id=%s peer=tml workload=%s wall_ms=%.3f rate_per_s=%d cpu_ms=%.1f maxrss_kb=%d' % (
        kv.pop('id'), kv.pop('workload'), wall_ms, ops / (wall_ms / 1000) if wall_ms else 0,
        cpu_ms, maxrss)
    ok = kv.pop('ok')
    rest = ' '.join('%s=%s' % kv_ for kv_ in kv.items())
    return '%s ok=%s workers=%d %s' % (head, ok, workers, rest)


def aggregate(label, lines, runs):
    """One summary line, as aggregate.awk prints it."""
    if not lines:
        return '%-28s %-6s NO RESULT (failed or not run)' % (label, 'tml')
    order, vals, first = [], {}, {}
    oks = 0
    for line in lines:
        for item in line.split()[1:]:
            k, v = item.split('=', 1)
            if k not in first:
                order.append(k)
                first[k] = v
            if k == 'ok':
                oks += v == '1'
                continue
            vals.setdefault(k, []).append(v)
    out = '%-28s %-6s runs=%d ok=%d/%d' % (label, 'tml', runs, oks, runs)
    for k in order:
        if k in ('id', 'peer', 'workload', 'ok'):
            continue
        vs = vals[k]
        try:
            nums = sorted(float(v) for v in vs)
        except ValueError:
            out += ' %s=%s' % (k, first[k])
            continue
        if len(set(vs)) == 1:
            out += ' %s=%s' % (k, first[k])
            continue
        out += ' %s=%s' % (k, fmt(statistics.median(nums)))
        if k in WIDE:
            out += '[%s..%s]' % (fmt(nums[0]), fmt(nums[-1]))
    return out


def frame_size(tml, src, tmp, func):
    """Bytes of async func `func`'s frame (`tml build --frame-sizes`)."""
    r = subprocess.run([tml, 'build', src, '-o', os.path.join(tmp, 'sizes'), '--frame-sizes'],
                       capture_output=True, text=True, check=True)
    m = re.search(r'^\s+%s\s+(\d+)$' % re.escape(func), r.stdout, re.M)
    return int(m.group(1))


def memory_per_task(tml, tmp, workers):
    src = os.path.join(HERE, 'M1_parked_tasks.tml')
    peaks = {}
    for n in (0, 1000000):
        path = source('M1_parked_tasks.tml', {'let n: I64 = 1000000': 'let n: I64 = %d' % n},
                      tmp, 'm1_%d' % n)
        exe = os.path.join(tmp, 'm1_%d' % n)
        if not build(tml, path, exe):
            return None
        runs = [run_once(exe, workers) for _ in range(3)]
        if any(rc != 0 or 'ok=1' not in text for text, rc, _, _ in runs):
            return None
        peaks[n] = statistics.median(r[3] for r in runs)
    frame = frame_size(tml, src, tmp, 'parked')
    per_task = (peaks[1000000] - peaks[0]) * 1024 / 1000000
    return per_task, frame


def sleep_memory(tml, tmp, workers):
    """W6a's peak RSS per sleeping task: (N = 100,000) - (N = 1), / N."""
    peaks = {}
    for n in (1, 100000):
        path = source('W6a_timers_sleep.tml', {'let n: I64 = 100000': 'let n: I64 = %d' % n},
                      tmp, 'w6a_%d' % n)
        exe = os.path.join(tmp, 'w6a_%d' % n)
        if not build(tml, path, exe):
            return None
        runs = [run_once(exe, workers) for _ in range(3)]
        if any(rc != 0 for _, rc, _, _ in runs):
            return None
        peaks[n] = statistics.median(r[3] for r in runs)
    return (peaks[100000] - peaks[1]) * 1024 / (100000 - 1)


def proc_cpu_ms(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf('SC_CLK_TCK')


def proc_hwm_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        m = re.search(r'^VmHWM:\s+(\d+)', f.read(), re.M)
    return int(m.group(1)) if m else 0


def echo_run(exe, load, port, conns, secs, workers):
    """One W8 run: the server, then echo-load against it; the load's
    RESULT line with the server's CPU and peak RSS, or None."""
    env = dict(os.environ, TML_WORKERS=str(workers))
    server = subprocess.Popen([exe], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    why = None
    try:
        for _ in range(200):                    # until it listens (10 s at most)
            with socket.socket() as probe:
                if probe.connect_ex(('127.0.0.1', port)) == 0:
                    break
            time.sleep(0.05)
        else:
            why = 'the server did not listen on port %d within 10 s' % port
            return None
        cpu0 = proc_cpu_ms(server.pid)
        r = subprocess.run([load, '-a', '127.0.0.1', '-p', str(port), '-c', str(conns), '-d',
                            str(secs), '-l', 'tml'], capture_output=True, text=True,
                           timeout=secs + 90)
        cpu1, hwm = proc_cpu_ms(server.pid), proc_hwm_kb(server.pid)
    except (subprocess.TimeoutExpired, OSError) as e:
        why = 'echo-load: %s' % e
        return None
    finally:
        server.kill()
        err = server.communicate()[1].decode(errors='replace').strip()
        if why:  # a failed run says why, with the server's last words
            print('W8 c=%d run failed: %s%s' % (conns, why, '; server: ' + err[-500:] if err else ''),
                  file=sys.stderr, flush=True)
    m = re.search(r'^RESULT (.*)$', r.stdout, re.M)
    if not m:
        print('W8 c=%d run failed: echo-load printed no RESULT (status %d): %s'
              % (conns, r.returncode, r.stderr.strip()[-500:]), file=sys.stderr, flush=True)
        return None
    if ' ok=1' not in m.group(0):
        print('W8 c=%d run not ok: %s' % (conns, m.group(0)), file=sys.stderr, flush=True)
    return 'RESULT id=W8-c%d %s server_cpu_ms=%.0f server_maxrss_kb=%d workers=%d' % (
        conns, m.group(1), cpu1 - cpu0, hwm, workers)


def echo_bench(tml, tmp, args):
    """W8: the TML echo server under the peers' echo-load client."""
    load_src = os.path.join(PEERS, 'echo-load.c')
    if not os.path.exists(load_src):
        print('%-28s %-6s SKIPPED: %s not found' % ('W8 tcp_echo', 'tml', load_src))
        return True
    load = os.path.join(tmp, 'echo-load')
    subprocess.run(['gcc', '-O2', '-o', load, load_src], check=True)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ok = True
    # below Linux's ephemeral range (32768 up), where a port can still be
    # held by a connection of an earlier run, so the server's bind fails
    # (seen with ports picked from 20000-40000); 17500 + 699 * 20 + the
    # runs stays under 32768
    port = 17500 + os.getpid() % 700 * 20
    for conns in args.echo_conns:
        label = 'W8 tcp_echo c=%d' % conns
        if hard < conns + 64:
            print('%-28s %-6s SKIPPED: RLIMIT_NOFILE %d too low' % (label, 'tml', hard))
            continue
        lines = []
        for _ in range(args.echo_reps):
            port += 1
            src = source('W8_echo_server.tml', {'let port: I64 = 7878': 'let port: I64 = %d' % port,
                                                'let seconds: I64 = 130':
                                                'let seconds: I64 = %d' % (args.echo_secs + 120)},
                         tmp, 'w8')
            exe = os.path.join(tmp, 'w8')
            if not build(tml, src, exe):
                return False
            line = echo_run(exe, load, port, conns, args.echo_secs, args.workers)
            if line:
                lines.append(line)
        if args.raw:
            with open(args.raw, 'a') as f:
                f.write(''.join(l + '\n' for l in lines))
        summary = aggregate(label, lines, args.echo_reps)
        ok &= 'ok=%d/%d' % (args.echo_reps, args.echo_reps) in summary
        print(summary, flush=True)
    return ok


def timed(cmd, reps):
    """Wall times (ms) of running `cmd` `reps` times, output discarded."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)


def compile_speed(tml, tmp, reps):
    src = os.path.join(tmp, 'big.tml')
    with open(src, 'w') as f:
        subprocess.run([sys.executable, os.path.join(HERE, 'gen_big.py'), '10000'], stdout=f,
                       check=True)
    with open(src) as f:
        lines = sum(1 for _ in f)
    front = timed([tml, 'emit-c', src], reps)
    whole = timed([tml, 'build', src, '-o', os.path.join(tmp, 'big')], reps)
    cc = [w - statistics.median(front) for w in whole]
    return '%-28s %-6s front_end_ms=%s[%s..%s] cc_ms=%s[%s..%s] lines=%d' % (
        'C1 compile_10k_lines', 'tml', fmt(statistics.median(front)), fmt(front[0]),
        fmt(front[-1]), fmt(statistics.median(cc)), fmt(cc[0]), fmt(cc[-1]), lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tml', required=True)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--raw', help='append every RESULT line to this file')
    ap.add_argument('--echo-secs', type=int, default=10, help='W8 measuring time per run')
    ap.add_argument('--echo-reps', type=int, default=3, help='W8 runs per connection count')
    ap.add_argument('--echo-conns', type=int, nargs='*', default=[1000, 10000])
    ap.add_argument('only', nargs='*', help='workload ids to run (default: all)')
    args = ap.parse_args()
    tml = os.path.abspath(args.tml)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for wid, label, name, subst in WORKLOADS:
            if args.only and wid not in args.only:
                continue
            exe = os.path.join(tmp, wid)
            if not build(tml, source(name, subst, tmp, wid), exe):
                print('%-28s %-6s NO RESULT (did not build)' % (label, 'tml'))
                failed = True
                continue
            run_once(exe, args.workers)                       # warm-up, unrecorded
            lines = []
            for _ in range(args.reps):
                line = result_line(*run_once(exe, args.workers), args.workers)
                if line:
                    lines.append(line)
            if args.raw:
                with open(args.raw, 'a') as f:
                    f.write(''.join(l + '\n' for l in lines))
            summary = aggregate(label, lines, args.reps)
            failed |= len(lines) < args.reps or 'ok=%d/%d' % (args.reps, args.reps) not in summary
            print(summary, flush=True)
        if not args.only or 'W6a' in args.only:
            per = sleep_memory(tml, tmp, args.workers)
            print('%-28s %-6s %s' % ('W6a rss_per_sleeping_task', 'tml',
                                     'NO RESULT (failed)' if per is None else
                                     'bytes=%.0f n=100000 workers=%d' % (per, args.workers)))
            failed |= per is None
        if not args.only or 'W8' in args.only:
            failed |= not echo_bench(tml, tmp, args)
        if not args.only or 'C1' in args.only:
            print(compile_speed(tml, tmp, args.reps), flush=True)
        if not args.only or 'M1' in args.only:
            mem = memory_per_task(tml, tmp, args.workers)
            if mem is None:
                print('%-28s %-6s NO RESULT (failed)' % ('M1 parked_tasks', 'tml'))
                failed = True
            else:
                per_task, frame = mem
                print('%-28s %-6s bytes_per_parked_task=%.0f frame_bytes=%d runtime_bytes_per_task=%.0f'
                      ' n=1000000 workers=%d' % ('M1 parked_tasks', 'tml', per_task, frame,
                                                 per_task - frame, args.workers))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
