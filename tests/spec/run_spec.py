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
listed as `skip NAME: reason` and not run. FILE.skip-OS (e.g.
FILE.skip-windows) does the same for `--target-os OS`, which a cross
build's runner gets (its programs run under wine: `tml run` starts them).

FILE.env, when present, holds KEY=VALUE lines added to the environment of
`tml run` (and so of the program), e.g. TML_WORKERS=1. The generated C is
compiled with -Wall -Wextra -Werror (unless TML_CFLAGS is set), so a
warning in generated code fails its program.

Each program is named `<ID>_<name>.tml` and its first line is a comment
naming the spec IDs it covers (`// RT-SPAWN-1: ...`); the ID in the file name
must be among them and every ID must exist in spec/*.md. A full run (no
FILTER) also fails each ID in spec/*.md that no test covers, except those
marked "not implemented yet". An ID is covered by

  a program  here whose first line names it (above);
  a Criterion test  in tests/runtime/*.c, `Test(suite, name, ...) { body }`,
             that names it and whose body itself (not a helper it calls;
             comments and string literals aside) calls a cr_assert* or
             cr_expect* macro, and that is not `.disabled = true`. A test
             names the IDs (C names cannot hold one) that start, followed by
             a colon, one of these:
               - a comment directly above `Test` (only whitespace and other
                 comments between them, and no blank line), or any
                 line of it: `/* RT-STEAL-1: ... */`, `// RT-A-1, RT-B-2: ...`,
                 ` * RT-STEAL-1: ...` inside a longer comment;
               - a comment inside its body, the same way;
               - its `.description = "RT-STEAL-1: ..."` string.
             An ID comment anywhere else (above a helper, say) covers
             nothing; a failing ID lists such near misses;
  a checker script  in tests/compiler/*.py with a `# LANG-TEST-1: ...`
             comment.

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


ID_LIST = r'(%s(?:\s*,\s*%s)*)\s*:' % (ID_RE.pattern, ID_RE.pattern)
COMMENT_IDS = re.compile(r'^\s*(?://+|/\*+|\*+)?\s*' + ID_LIST)
ASSERTION = re.compile(r'\b(?:cr_assert|cr_expect)\w*\s*\(')


def c_lex(text):
    """Returns (code, comments): `code` is the C source `text` with every
    comment and the contents of every string and character literal blanked
    (newlines kept, so offsets still match), `comments` a list of (start,
    end) offsets."""
    code, comments = list(text), []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i) or text.startswith('/*', i):
            if text[i + 1] == '/':
                end = text.find('\n', i)
                end = n if end < 0 else end
            else:
                end = text.find('*/', i + 2)
                end = n if end < 0 else end + 2
            comments.append((i, end))
            lo, hi, i = i, end, end
        elif c in '"\'':
            k = i + 1
            while k < n and text[k] not in (c, '\n'):
                k += 2 if text[k] == '\\' else 1
            lo, hi, i = i + 1, min(k, n), k + 1
        else:
            i += 1
            continue
        for k in range(lo, hi):
            if code[k] != '\n':
                code[k] = ' '
    return ''.join(code), comments


def closing(code, i):
    """The offset just past the bracket that closes the one at code[i]."""
    close, depth = {'(': ')', '{': '}'}[code[i]], 0
    for k in range(i, len(code)):
        depth += (code[k] == code[i]) - (code[k] == close)
        if depth == 0:
            return k + 1
    return len(code)


def comment_ids(text):
    """IDs that start the comment `text`, or one of its lines: `/* ID: ...`,
    `// ID, ID: ...`, ` * ID: ...`."""
    ids = []
    for line in text.split('\n'):
        m = COMMENT_IDS.match(line)
        if m:
            ids += ID_RE.findall(m.group(1))
    return ids


def criterion_tests(text):
    """The Criterion tests in C source `text`: a list of (line, suite::name,
    IDs it names, whether its body asserts, whether it is disabled)."""
    code, comments = c_lex(text)
    ending = {end: start for start, end in comments}
    tests = []
    for m in re.finditer(r'\bTest\s*\(', code):
        head_end = closing(code, m.end() - 1)
        brace = head_end + len(code[head_end:]) - len(code[head_end:].lstrip())
        if not code.startswith('{', brace):
            continue                      # not a definition
        body_end = closing(code, brace)
        head = code[m.end():head_end - 1]
        name = '::'.join(a.strip() for a in head.split(',')[:2])
        named = []
        pos = m.start()                   # the comments directly above, upward
        while True:
            k = len(text[:pos].rstrip())
            if k not in ending or text[k:pos].count('\n') > 1:
                break
            pos = ending[k]
            named += comment_ids(text[pos:k])
        for start, end in comments:      # the comments inside its body
            if brace < start < body_end:
                named += comment_ids(text[start:end])
        desc = re.search(r'\.description\s*=\s*"', code[m.end():head_end])
        if desc:
            ids = re.match(ID_LIST, text[m.end() + desc.end():head_end])
            named += ID_RE.findall(ids.group(1)) if ids else []
        asserts = bool(ASSERTION.search(code[brace:body_end]))
        disabled = bool(re.search(r'\.disabled\s*=\s*(?:true|1)\b', head))
        tests.append((text.count('\n', 0, m.start()) + 1, name, named, asserts, disabled))
    return tests


def unit_test_ids():
    """Returns (covered, hints): the IDs named by an asserting Criterion test
    in tests/runtime/*.c (the rule at the top of this file) or by a checker
    script in tests/compiler/*.py (`# LANG-TEST-1: ...`), and, for other IDs
    that those files mention in an ID comment, where and why it did not
    count."""
    covered, hints = set(), {}
    unit = os.path.join(ROOT, 'tests', 'runtime')
    for name in sorted(os.listdir(unit)) if os.path.isdir(unit) else []:
        if not name.endswith('.c'):
            continue
        text = read(os.path.join(unit, name)) or ''
        rel = 'tests/runtime/' + name
        attached = set()
        for line, test, ids, asserts, disabled in criterion_tests(text):
            attached.update(ids)
            for i in ids:
                if asserts and not disabled:
                    covered.add(i)
                else:
                    hints.setdefault(i, []).append('%s:%d: Test %s %s' % (
                        rel, line, test, 'is disabled' if disabled else 'has no cr_assert/cr_expect'))
        for start, end in c_lex(text)[1]:
            for i in comment_ids(text[start:end]):
                if i not in attached:
                    hints.setdefault(i, []).append('%s:%d: a comment that names no Test' % (
                        rel, text.count('\n', 0, start) + 1))
    hashed = re.compile(r'^\s*#\s*' + ID_LIST, re.M)
    tools = os.path.join(ROOT, 'tests', 'compiler')
    for name in sorted(os.listdir(tools)) if os.path.isdir(tools) else []:
        if name.endswith('.py'):
            for m in hashed.finditer(read(os.path.join(tools, name)) or ''):
                covered.update(ID_RE.findall(m.group(1)))
    return covered, hints


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
    ap.add_argument('--target-os', help='the OS tml builds for (a cross build): skips FILE.skip-OS')
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
    skip_tag = args.sanitizer or args.target_os
    if skip_tag:
        kept = []
        for p in programs:
            reason = read(p[:-len('.tml')] + '.skip-' + skip_tag)
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
        covered, hints = unit_test_ids()
        for f in os.listdir(SPEC_DIR):
            if f.endswith('.tml'):
                covered.update(named_ids(read(os.path.join(SPEC_DIR, f))))
        for spec_id, implemented in sorted(known_ids.items()):
            if implemented and spec_id not in covered:
                failed += 1
                print('FAIL %s: no tests/spec program or asserting tests/runtime Test names this'
                      ' spec ID' % spec_id)
                for hint in hints.get(spec_id, []):
                    print('    named at ' + hint)

    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == '__main__':
    sys.exit(main())
