#!/usr/bin/env python3
"""mutate_test.py - bad input never crashes tml nor yields C that cc rejects.

Takes every program under tests/spec/ and examples/, damages copies of it
with a fixed pseudo-random seed (delete, duplicate or replace a few byte
runs, swap lines), and runs `tml emit-c` on each mutant. Each must either
 - exit 1 with a diagnostic whose first line is `FILE:LINE:COL: error: ...`
   followed by the offending source line and a caret (after any warnings,
   laid out the same way with `warning:`), or
 - exit 0 with C that `$CC -fsyntax-only` accepts.
A crash, a hang (timeout), any other status, or rejected C fails the run.
Deterministic: the same seed gives the same mutants, so a failure can be
reproduced with --seed and --keep. The inputs in tests/compiler/crashers/
(from fuzzing runs; each once crashed tml) are checked first, as they are.

Usage: mutate_test.py --tml build/tml [--count N] [--seed S] [--keep DIR]
Prints one line per failure and closes with `N passed, N failed`; exits 1
on any failure."""
import argparse
import concurrent.futures
import glob
import os
import random
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOISE = b'(){}[]<>=+-*/"\'\n.,:;@0123456789abcxyz_ '
DIAG = re.compile(r'^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: .+\n.*\n *\t* *\^')
# A warning the same way, with its optional hint: skipped before the error.
WARNING = re.compile(r'[^:\n]+:\d+:\d+: warning: .+\n.*\n[ \t]*\^\n(?:hint: .*\n)?')


def mutate(rng, src):
    b = bytearray(src)
    if rng.randrange(4) == 3:
        lines = b.split(b'\n')
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return bytes(b'\n'.join(lines))
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        n = rng.randint(1, 12)
        kind = rng.randrange(3)
        if kind == 0:
            del b[i:i + n]
        elif kind == 1:
            k = rng.randrange(len(b))
            b[i:i] = b[k:k + n]
        else:
            b[i] = rng.choice(NOISE)
    return bytes(b)


def check(tml, cc, path):
    """Returns None when the mutant at `path` is handled well, else why not."""
    try:
        r = subprocess.run([tml, 'emit-c', path], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return 'tml hung (30 s)'
    err = r.stderr.decode(errors='replace')
    if r.returncode == 1:
        while (w := WARNING.match(err)):
            err = err[w.end():]
        m = DIAG.match(err)
        if not m or m.group('file') != path:
            return 'exit 1 without a well-formed diagnostic: %r' % err[:300]
        return None
    if r.returncode != 0:
        return 'tml exited with %d: %s' % (r.returncode, err[-300:])
    cfile = path[:-4] + '.c'
    with open(cfile, 'wb') as f:
        f.write(r.stdout)
    c = subprocess.run([cc, '-std=c11', '-D_GNU_SOURCE', '-fsyntax-only',
                        '-I' + os.path.join(os.path.dirname(tml), 'include'), cfile],
                       capture_output=True)
    if c.returncode != 0:
        return 'cc rejected the generated C: %s' % c.stderr.decode(errors='replace')[:300]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tml', required=True)
    ap.add_argument('--count', type=int, default=400)
    ap.add_argument('--seed', type=int, default=2026)
    ap.add_argument('--keep', help='directory to keep failing mutants in')
    args = ap.parse_args()
    tml = os.path.abspath(args.tml)
    cc = os.environ.get('CC') or 'cc'
    sources = sorted(glob.glob(os.path.join(ROOT, 'tests/spec/*.tml')) +
                     glob.glob(os.path.join(ROOT, 'examples/*.tml')))
    if not sources:
        print('no programs to mutate\n0 passed, 1 failed')
        return 1
    rng = random.Random(args.seed)
    failed = 0
    crashers = sorted(glob.glob(os.path.join(ROOT, 'tests/compiler/crashers/*.tml')))
    with tempfile.TemporaryDirectory() as tmp:
        jobs = {}
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            for i, origin in enumerate(crashers):
                path = os.path.join(tmp, 'crasher%03d.tml' % i)
                with open(origin, 'rb') as src, open(path, 'wb') as dst:
                    dst.write(src.read())
                jobs[pool.submit(check, tml, cc, path)] = (path, origin)
            for i in range(args.count):
                origin = rng.choice(sources)
                with open(origin, 'rb') as f:
                    mutant = mutate(rng, f.read())
                path = os.path.join(tmp, 'm%04d.tml' % i)
                with open(path, 'wb') as f:
                    f.write(mutant)
                jobs[pool.submit(check, tml, cc, path)] = (path, origin)
            for fut in concurrent.futures.as_completed(jobs):
                why = fut.result()
                if why is None:
                    continue
                failed += 1
                path, origin = jobs[fut]
                print('FAIL %s (from %s): %s' % (os.path.basename(path),
                                                 os.path.relpath(origin, ROOT), why))
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    with open(path, 'rb') as src, \
                            open(os.path.join(args.keep, os.path.basename(path)), 'wb') as dst:
                        dst.write(src.read())
    print('%d passed, %d failed' % (args.count + len(crashers) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
