#!/usr/bin/env python3
"""gen_big.py - writes a large, valid TML program for compiler-speed runs.

    python3 tests/bench/gen_big.py [LINES] > big.tml     (default 10,000)

The program mixes what real code has: user structs, sync helpers with
loops and branches, string interpolation, async functions that await one
another, sleep and channels, and an async main that spawns and joins them.
Each group of about 40 lines is one unit; units call earlier units, so
name lookup and type checking work over the whole file. The program runs
and prints one checksum line (TML_WORKERS does not change it)."""
import sys


def unit(i):
    prev = i - 1
    call_prev = 'step%d(v)' % prev if i > 0 else 'v'
    await_prev = 'await work%d(n - 1)' % prev if i > 0 else 'n'
    return '''type Pair%(i)d {
    left: I64,
    right: I64,
}

func step%(i)d(x: I64) -> I64 {
    let v: I64 = x %% 1000 + %(i)d
    var acc: I64 = 0
    for k in 0 to 3 {
        if k %% 2 == 0 {
            acc += v * k
        } else {
            acc -= k
        }
    }
    let p: Pair%(i)d = Pair%(i)d { left: acc, right: %(call_prev)s }
    when p.left > p.right {
        true => p.left - p.right,
        false => p.right - p.left,
    }
}

func label%(i)d(x: I64) -> Str {
    let s: Str = "unit %(i)d sees {x}"
    if s.len() > 100 then "long" else s
}

async func work%(i)d(n: I64) -> I64 {
    if n <= 0 {
        return step%(i)d(n)
    }
    let below: I64 = %(await_prev)s
    let (tx, rx) = channel[I64](1)
    await tx.send(below + step%(i)d(n))
    when await rx.recv() {
        Ok(v) => v %% 100000,
        Err(_) => 0,
    }
}

''' % {'i': i, 'call_prev': call_prev, 'await_prev': await_prev}


def main():
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    out, count = [], 8                      # 8: the lines of main
    while count < lines or not out:
        out.append(unit(len(out)))
        count += out[-1].count('\n')
    last = len(out) - 1
    out.append('''async func main() {
    var total: I64 = 0
    let h: JoinHandle[I64] = spawn(work%(last)d(3))
    total += (await h).unwrap()
    total += step%(last)d(7)
    println("checksum {total} " + label0(1))
}
''' % {'last': last})
    sys.stdout.write(''.join(out))


if __name__ == '__main__':
    main()
