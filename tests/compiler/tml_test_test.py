#!/usr/bin/env python3
"""tml_test_test.py - `tml test` reports each @test and the summary.

Runs `tml test tests/compiler/test_mode` (a file that does not compile and
one with passing, failing, status-returning, async and hanging tests) with
a 2 s timeout and compares its stdout with the expected lines exactly
(a pipe, so the tests' stdout is fully buffered: the hanging test's line
shows that the timeout's SIGTERM flushed it); the exit status must be 1.
Closes with `N passed, N failed`.

Usage: tml_test_test.py --tml build/tml"""
# LANG-TEST-1: `tml test` runs each @test in source order, each in its own process, and sums up; a timed-out test's output is kept
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = 'tests/compiler/test_mode'
EXPECTED = '''FAILED {d}/broken_test.tml: does not compile
ok     {d}/math_test.tml::adds
FAILED {d}/math_test.tml::adds_wrong: {d}/math_test.tml:17:5: panic: assertion failed: left == right (left: 4, right: 5): two and two
ok     {d}/math_test.tml::doubles
FAILED {d}/math_test.tml::returns_status: exit status 1
printed before the hang
FAILED {d}/math_test.tml::hangs: timed out after 2000 ms
2 passed, 4 failed
'''.format(d=DIR)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tml', required=True)
    tml = os.path.abspath(ap.parse_args().tml)
    r = subprocess.run([tml, 'test', DIR], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, TML_TEST_TIMEOUT='2'), timeout=120)
    checks = [('stdout lists every test and the summary', r.stdout == EXPECTED),
              ('exit status is 1 when a test failed', r.returncode == 1),
              ('the compile error is printed', 'unknown name \'nope\'' in r.stderr)]
    failed = 0
    for what, ok in checks:
        print('%s %s' % ('ok  ' if ok else 'FAIL', what))
        failed += not ok
    if r.stdout != EXPECTED:
        print('--- expected\n%s--- got\n%s' % (EXPECTED, r.stdout))
    print('%d passed, %d failed' % (len(checks) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
