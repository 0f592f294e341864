#!/usr/bin/env python3
"""run_chaos.py - the test suite under fault injection (runtime/mt_chaos.h).

    python3 tests/chaos/run_chaos.py --builddir build-chaos [FILTER ...] [--seeds 1 2 3]

Needs a build configured with `./configure.py --chaos`. For each seed it
runs, with TML_CHAOS_SEED set to it, every Criterion binary of the build
(the runtime's unit and stress tests) and the conformance programs
(tests/spec/run_spec.py, FILTERs passed on; in a sanitizer build with
--sanitizer, so it skips what that sanitizer cannot run), then prints

    seed S: N passed, N failed

counting each Criterion test and each spec program once, followed by one
line per failure with the command that reruns it under the same seed.
Closes with the totals over all seeds, `N passed, N failed`, and exits 1
if anything failed (or nothing ran).
"""

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTHESIS = re.compile(r'Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)')
SPEC_SUMMARY = re.compile(r'^(\d+) passed, (\d+) failed$', re.M)
SPEC_FAIL = re.compile(r'^FAIL (\S+?):', re.M)


def unit_round(binary, env):
    """Runs one Criterion binary; returns (passed, failed, failing test names)."""
    p = subprocess.run([binary], env=env, cwd=ROOT, capture_output=True, text=True,
                       errors='replace')
    out = p.stdout + p.stderr
    m = SYNTHESIS.search(out)
    if not m:  # the binary died before its summary: count it as one failure
        return 0, 1, ['(no summary, exit %d)' % p.returncode]
    tested, passing, failing, crashing = map(int, m.groups())
    names = sorted({n for n in re.findall(r'\[FAIL\] (\S+::\S+?):', out)})
    failed = failing + crashing
    if failed == 0 and p.returncode != 0:
        return passing, 1, ['(exit %d)' % p.returncode]
    return passing, failed, names or ['(%d failing)' % failed]


def spec_round(tml, spec_args, env):
    """Runs the conformance programs; returns (passed, failed, failing names)."""
    cmd = [sys.executable, os.path.join(ROOT, 'tests', 'spec', 'run_spec.py'), '--tml', tml] + spec_args
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, errors='replace')
    m = None
    for m in SPEC_SUMMARY.finditer(p.stdout):
        pass
    if not m:
        return 0, 1, ['(run_spec.py printed no summary)']
    failing = SPEC_FAIL.findall(p.stdout)
    for line in p.stdout.splitlines():
        if line.startswith('FAIL'):
            print('    ' + line)
    return int(m.group(1)), int(m.group(2)), failing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--builddir', required=True, help='a build configured with --chaos')
    ap.add_argument('--seeds', nargs='+', type=int, default=[1, 2, 3])
    ap.add_argument('filters', nargs='*', help='spec program name filters (as run_spec.py)')
    args = ap.parse_args()
    bdir = os.path.join(ROOT, args.builddir)
    tml = os.path.join(bdir, 'tml')
    with open(os.path.join(bdir, 'build.ninja')) as f:
        ninja = f.read()
    if '-DMT_CHAOS' not in ninja:
        sys.exit('run_chaos.py: %s is not a chaos build (./configure.py --chaos)' % args.builddir)
    # a sanitizer build skips what the spec runner skips under it
    san = re.search(r'-fsanitize=(\w+)', ninja)
    spec_args = ['--sanitizer', san.group(1)] if san else []
    units = sorted(b for b in glob.glob(os.path.join(bdir, 'tests', '*_test')) if os.access(b, os.X_OK))
    total_pass = total_fail = 0
    for seed in args.seeds:
        env = dict(os.environ, TML_CHAOS_SEED=str(seed))
        passed = failed = 0
        reruns = []
        for b in units:
            p, f, names = unit_round(b, env)
            passed, failed = passed + p, failed + f
            rel = os.path.relpath(b, ROOT)
            reruns += ['TML_CHAOS_SEED=%d %s%s' % (seed, rel, ' --filter %s' % shlex.quote(n.replace('::', '/'))
                                                   if '::' in n else '  # ' + n) for n in names if f]
        p, f, names = spec_round(tml, spec_args + args.filters, env)
        passed, failed = passed + p, failed + f
        reruns += ['TML_CHAOS_SEED=%d python3 tests/spec/run_spec.py --tml %s %s' % (
            seed, os.path.relpath(tml, ROOT), n) for n in names]
        print('seed %d: %d passed, %d failed' % (seed, passed, failed), flush=True)
        for r in reruns:
            print('  rerun: ' + r)
        total_pass, total_fail = total_pass + passed, total_fail + failed
    print('%d passed, %d failed' % (total_pass, total_fail))
    sys.exit(1 if total_fail or not total_pass else 0)


if __name__ == '__main__':
    main()
