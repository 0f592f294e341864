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

Figures only: nothing here passes or fails on time. Exits 1 only when a
workload did not build, crashed, or printed ok=0."""
import argparse
import os
import re
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
]
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


def run_once(exe, workers):
    """Runs exe; returns (stdout, exit status, cpu_ms, maxrss_kb)."""
    env = dict(os.environ, TML_WORKERS=str(workers))
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([exe], stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors='replace')
    return text, p.returncode, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss


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
