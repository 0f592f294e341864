#!/usr/bin/env python3
"""run_spec.py - the conformance runner for tests/spec/.

    python3 tests/spec/run_spec.py [--tml build/tml] [-j N] [FILTER ...]

Runs every tests/spec/*.tml (sorted; with FILTERs, only the names that
contain one of them) as `tml run FILE`, each in a fresh temporary directory
(its cwd and TMPDIR) with a timeout (60 s, or $TML_SPEC_TIMEOUT seconds),
os.cpu_count() programs at a time, and checks:

  stdout     equals FILE.out exactly, when FILE.out exists;
  stderr     equals FILE.err exactly, when FILE.err exists, after the absolute
             path of FILE is replaced by its path from the repo root (so a
             diagnostic reads `tests/spec/NAME.tml:LINE:COL: error: ...`);
  exit code  equals the integer in FILE.code; without FILE.code it must be
             1 when FILE.err exists, else 0.

FILE.skip-SANITIZER (e.g. FILE.skip-thread), when present, holds the reason
the program cannot run under that sanitizer; with `--sanitizer SANITIZER`
(configure.py passes it to a sanitizer build's runner) the program is
listed as `skip NAME: reason` and not run.

FILE.env, when present, holds KEY=VALUE lines added to the environment of
`tml run` (and so of the program), e.g. TML_WORKERS=1. The generated C is
compiled with -Wall -Wextra -Werror (unless TML_CFLAGS is set), so a
warning in generated code fails its program.

Each program is named `<ID>_<name>.tml` and its first line is a comment
naming the spec IDs it covers (`// RT-SPAWN-1: ...`); the ID in the file name
must be among them and every ID must exist in spec/*.md. A full run (no
FILTER) also fails each ID in spec/*.md that no test names, except those
marked "not implemented yet"; besides the programs, a Criterion test in
tests/runtime/ names IDs with a comment that starts with them and a colon,
`/* RT-STEAL-1: ... */`, and a checker script in tests/compiler/ with a
`# LANG-TEST-1: ...` comment.

Prints `ok   NAME` or `FAIL NAME: why` (plus a short diff) per program and
closes with `N passed, N failed`. Exits 1 if anything failed or nothing ran.
"""

import argparse
import concurrent.futures
import difflib
import os
import re
import signal
import subprocess
import sys
import tempfile

SPEC_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SPEC_DIR))
ID_RE = re.compile(r'\b[A-Z]+(?:-[A-Z0-9]+)*-[0-9]+\b')
DIFF_LINES = 20


def read(path):
    """Returns the file's text, or None when it does not exist."""
    try:
        with open(path, encoding='utf-8', errors='surrogateescape', newline='') as f:
            return f.read()
    except FileNotFoundError:
        return None


def spec_ids():
    """IDs defined in spec/*.md (`- **ID** ...` bullets) -> implemented?"""
    ids = {}
    spec = os.path.join(ROOT, 'spec')
    for name in sorted(os.listdir(spec)) if os.path.isdir(spec) else []:
        if not name.endswith('.md'):
            continue
        for line in (read(os.path.join(spec, name)) or '').splitlines():
            m = re.match(r'\s*[-*]\s+\*\*(' + ID_RE.pattern + r')\*\*', line)
            if m:
                ids[m.group(1)] = 'not implemented yet' not in line
    return ids


def named_ids(source):
    """IDs named by the first line, `// ID[, ID...]: description`."""
    first = source.split('\n', 1)[0]
    if not first.startswith('//'):
        return []
    return ID_RE.findall(first[2:].split(':', 1)[0])


def unit_test_ids():
    """IDs named by Criterion tests (in tests/runtime/*.c, a comment whose
    text starts with IDs and a colon, `/* RT-STEAL-1: ... */`) and by the
    checker scripts in tests/compiler/*.py (`# LANG-TEST-1: ...`)."""
    ids = set()
    unit = os.path.join(ROOT, 'tests', 'runtime')
    comment = re.compile(r'(?://|/\*|^\s*\*)\s*((?:%s)(?:\s*,\s*(?:%s))*)\s*:'
                         % (ID_RE.pattern, ID_RE.pattern), re.M)
    for name in sorted(os.listdir(unit)) if os.path.isdir(unit) else []:
        if name.endswith('.c'):
            for m in comment.finditer(read(os.path.join(unit, name)) or ''):
                ids.update(ID_RE.findall(m.group(1)))
    hashed = re.compile(r'^\s*#\s*((?:%s)(?:\s*,\s*(?:%s))*)\s*:' % (ID_RE.pattern, ID_RE.pattern),
                        re.M)
    tools = os.path.join(ROOT, 'tests', 'compiler')
    for name in sorted(os.listdir(tools)) if os.path.isdir(tools) else []:
        if name.endswith('.py'):
            for m in hashed.finditer(read(os.path.join(tools, name)) or ''):
                ids.update(ID_RE.findall(m.group(1)))
    return ids


def diff(label, expected, actual):
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                      'expected ' + label, 'actual ' + label, lineterm='', n=2))
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + ['... (%d more diff lines)' % (len(lines) - DIFF_LINES)]
    return ['    ' + l for l in lines]


def tail(label, text, n=10):
    lines = text.splitlines()
    return ['    %s: %s' % (label, l) for l in lines[-n:]]


# The generated C must compile without a warning: each program is built
# with these flags unless TML_CFLAGS says otherwise.
WARNING_FREE = '-O1 -Wall -Wextra -Werror'


def load_env(path):
    env = {}
    for line in (read(path) or '').splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            key, _, value = line.partition('=')
            env[key.strip()] = value.strip()
    return env


def check(tml, path, known_ids, timeout):
    """Runs one program. Returns (ok, why, detail lines)."""
    name = os.path.basename(path)[:-len('.tml')]
    rel = os.path.relpath(path, ROOT).replace(os.sep, '/')
    base = path[:-len('.tml')]
    source = read(path)
    ids = named_ids(source)
    file_id = name.split('_', 1)[0]
    if file_id not in ids:
        return False, 'first line must be `// %s: ...` naming the spec ID' % file_id, []
    unknown = [i for i in ids if known_ids and i not in known_ids]
    if unknown:
        return False, 'names IDs missing from spec/*.md: ' + ', '.join(unknown), []

    want_out, want_err = read(base + '.out'), read(base + '.err')
    code_text = read(base + '.code')
    want_code = int(code_text.strip()) if code_text is not None else (1 if want_err is not None else 0)

    with tempfile.TemporaryDirectory(prefix='tml-spec-') as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        env.setdefault('TML_CFLAGS', WARNING_FREE)
        env.update(load_env(base + '.env'))
        proc = subprocess.Popen([tml, 'run', path], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # tml and the program it started
            out, err = proc.communicate()
            return False, 'timed out after %g s' % timeout, tail('stdout', out.decode(
                'utf-8', 'replace')) + tail('stderr', err.decode('utf-8', 'replace'))
    out = out.decode('utf-8', 'surrogateescape')
    err = err.decode('utf-8', 'surrogateescape')
    for p in {path, os.path.realpath(path)}:
        err = err.replace(p, rel)

    why, detail = [], []
    if want_out is not None and out != want_out:
        why.append('stdout differs')
        detail += diff('stdout', want_out, out)
    if want_err is not None and err != want_err:
        why.append('stderr differs')
        detail += diff('stderr', want_err, err)
    if proc.returncode != want_code:
        got = ('killed by signal %d' % -proc.returncode if proc.returncode < 0
               else 'exit code %d' % proc.returncode)
        why.append('%s, expected %d' % (got, want_code))
    if why and want_err is None and err:
        detail += tail('stderr', err)
    return not why, '; '.join(why), detail


def main():
    ap = argparse.ArgumentParser(description='Run the tests/spec conformance programs.')
    ap.add_argument('--tml', default=os.path.join(ROOT, 'build', 'tml'),
                    help='the tml compiler (default: build/tml)')
    ap.add_argument('-j', '--jobs', type=int, default=os.cpu_count() or 1)
    ap.add_argument('--sanitizer', help='the sanitizer tml was built with: skips FILE.skip-SANITIZER')
    ap.add_argument('filters', nargs='*', help='run only programs whose name contains one')
    args = ap.parse_args()
    timeout = float(os.environ.get('TML_SPEC_TIMEOUT') or 60)
    tml = os.path.abspath(args.tml)

    programs = sorted(os.path.join(SPEC_DIR, f) for f in os.listdir(SPEC_DIR)
                      if f.endswith('.tml'))
    if args.filters:
        programs = [p for p in programs
                    if any(f in os.path.basename(p) for f in args.filters)]
    known_ids = spec_ids()
    passed = failed = 0
    if args.sanitizer:
        kept = []
        for p in programs:
            reason = read(p[:-len('.tml')] + '.skip-' + args.sanitizer)
            if reason is None:
                kept.append(p)
            else:
                print('skip %s: %s' % (os.path.basename(p)[:-len('.tml')], reason.strip()))
        programs = kept

    if not programs:
        print('no spec programs found' + (' matching ' + ' '.join(args.filters)
                                          if args.filters else ''))
    elif not os.access(tml, os.X_OK):
        print('FAIL cannot run tml: %s is not an executable (build it with ninja)' % tml)
        failed = len(programs)
        programs = []

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = pool.map(lambda p: check(tml, p, known_ids, timeout), programs)
        for path, (ok, why, detail) in zip(programs, results):
            name = os.path.basename(path)[:-len('.tml')]
            if ok:
                passed += 1
                print('ok   ' + name, flush=True)
            else:
                failed += 1
                print('\n'.join(['FAIL %s: %s' % (name, why)] + detail), flush=True)

    if not args.filters:
        covered = unit_test_ids()
        for f in os.listdir(SPEC_DIR):
            if f.endswith('.tml'):
                covered.update(named_ids(read(os.path.join(SPEC_DIR, f))))
        for spec_id, implemented in sorted(known_ids.items()):
            if implemented and spec_id not in covered:
                failed += 1
                print('FAIL %s: no tests/spec program or tests/runtime test names this spec ID'
                      % spec_id)

    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == '__main__':
    sys.exit(main())
