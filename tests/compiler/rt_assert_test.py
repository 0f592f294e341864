#!/usr/bin/env python3
"""rt_assert_test.py - generated C stops building when tml/rt.h changes
a constant the compiler relies on.

The compiler spells rt.h's enums by name where it can (TML_JOIN_*,
TML_ORDER_*) and, where its own tables encode their values (a zero
status is Ok; NetErrorKind's tags are TML_NET_* - 1; the JoinError
strings are indexed by TML_JOIN_*), emits _Static_assert lines
(builtins.c, bi_rt_asserts). This emits the C of a program using those
values and compiles it (-fsyntax-only) once against the real rt.h, which
must pass, then against copies of rt.h with one such constant changed,
each of which must fail on a static assertion.

Usage: rt_assert_test.py --tml build/tml [--cc cc]. Closes with
`N passed, N failed`."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

PROGRAM = '''func describe(e: JoinError) -> Str {
    when e {
        OsError(c) => "os error " + c.to_string(),
        AlreadyJoined => "already joined",
        _ => "other",
    }
}

func main() {
    println(describe(JoinError::Panicked))
    println(JoinError::NoResult == NoResult)
    let a = AtomicI64::new(1)
    println(a.fetch_add(2, Ordering::AcqRel))
    println(SocketAddr::parse("nonsense").is_err())
}
'''

# (what changes in rt.h, the regex it rewrites, the replacement)
MUTANTS = [
    ('NetErrorKind order', r'TML_NET_OTHER = 7', 'TML_NET_OTHER = 8'),
    ('TML_NET_* renumbered', r'TML_NET_CONNECTION_REFUSED = 1', 'TML_NET_CONNECTION_REFUSED = 9'),
    ('JoinError string order', r'TML_JOIN_PANICKED = 4', 'TML_JOIN_PANICKED = 5'),
    ('channel success not zero', r'TML_CHAN_OK = 0', 'TML_CHAN_OK = 5'),
]


def compile_c(cc, c_file, incs):
    args = [cc, '-std=c11', '-fsyntax-only', '-Wall', '-Wextra', '-Werror']
    args += ['-I' + i for i in incs] + [c_file]
    return subprocess.run(args, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tml', required=True)
    ap.add_argument('--cc', default=os.environ.get('CC', 'cc'))
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    include = os.path.join(root, 'runtime', 'include')
    with open(os.path.join(include, 'tml', 'rt.h')) as f:
        rt_h = f.read()
    passed = failed = 0

    def report(ok, name, detail=''):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print('%s %s%s' % ('ok  ' if ok else 'FAIL', name, detail))

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'p.tml')
        with open(src, 'w') as f:
            f.write(PROGRAM)
        out = subprocess.run([args.tml, 'emit-c', src], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit('rt_assert_test.py: tml emit-c failed:\n' + out.stderr)
        c_file = os.path.join(tmp, 'p.c')
        with open(c_file, 'w') as f:
            f.write(out.stdout)
        r = compile_c(args.cc, c_file, [include])
        report(r.returncode == 0, 'the real rt.h: the generated C builds', '\n' + r.stderr[-2000:]
               if r.returncode else '')
        for name, pattern, repl in MUTANTS:
            mutated, n = re.subn(pattern, repl, rt_h)
            if n != 1:
                report(False, name, ': rt.h has no %r to change' % pattern)
                continue
            inc = os.path.join(tmp, name.replace(' ', '_'))
            os.makedirs(os.path.join(inc, 'tml'))
            with open(os.path.join(inc, 'tml', 'rt.h'), 'w') as f:
                f.write(mutated)
            r = compile_c(args.cc, c_file, [inc, include])
            stopped = r.returncode != 0 and 'static' in r.stderr and 'assert' in r.stderr
            report(stopped, '%s: the build stops on a static assertion' % name,
                   '' if stopped else '\n' + r.stderr[-2000:])
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
