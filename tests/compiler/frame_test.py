#!/usr/bin/env python3
"""frame_test.py - frames store only the values live across an await.

Builds two versions of an async function with 20 I64 locals and one
await (`tml build --frame-sizes`): in `dead` only one local is used after
the await; in `live` all 20 are. The dead version's frame must be smaller
by at least the 19 locals that are not live (19 x 8 bytes), and a task
that awaits a non-recursive callee must embed it (no boxing: the caller's
frame is at least as large as the callee's). Frame sizes are layout facts,
not timings, so this is a pass/fail test.

Usage: frame_test.py --tml build/tml. Closes with `N passed, N failed`."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

LOCALS = 20


def program(all_live):
    lets = ['    let a1: I64 = x + 1']
    lets += ['    let a%d: I64 = a%d * 3 + %d' % (i, i - 1, i) for i in range(2, LOCALS + 1)]
    after = ' + '.join('a%d' % i for i in range(1, LOCALS + 1)) if all_live else 'a%d' % LOCALS
    return '\n'.join([
        'async func tick() -> I64 {',
        '    1',
        '}',
        '',
        'async func many(x: I64) -> I64 {',
        *lets,
        '    let w: I64 = await tick()',
        '    %s + w' % after,
        '}',
        '',
        'async func main() {',
        '    println(await many(1))',
        '}',
        '',
    ])


def frame_sizes(tml, text, tmp, name):
    src = os.path.join(tmp, name + '.tml')
    with open(src, 'w') as f:
        f.write(text)
    out = subprocess.run([tml, 'build', src, '-o', os.path.join(tmp, name), '--frame-sizes'],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit('frame_test.py: tml build failed:\n' + out.stderr)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r'^\s+(\w+)\s+(\d+)$', out.stdout, re.M)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tml', required=True)
    tml = os.path.abspath(ap.parse_args().tml)
    with tempfile.TemporaryDirectory() as tmp:
        dead = frame_sizes(tml, program(False), tmp, 'dead')
        live = frame_sizes(tml, program(True), tmp, 'live')
    checks = [
        ('only live locals are stored (many: %d bytes with 1 of %d locals live, %d with all)'
         % (dead['many'], LOCALS, live['many']),
         live['many'] - dead['many'] >= (LOCALS - 1) * 8),
        ('an awaited non-recursive callee is inline (main %d >= many %d)'
         % (dead['main'], dead['many']), dead['main'] >= dead['many']),
    ]
    failed = 0
    for what, ok in checks:
        print('%s %s' % ('ok  ' if ok else 'FAIL', what))
        failed += not ok
    print('%d passed, %d failed' % (len(checks) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
