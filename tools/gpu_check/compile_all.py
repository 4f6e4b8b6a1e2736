"""GPU check step ``compile``: compile every plugin's CUDA ops, one ``tools/compile_ops.py``
process per op, all at once (each op is a small ninja build; in parallel they take about as
long as the slowest one). The builds land in ``$GENFORCE_OPS_CACHE`` with the arch list of the
visible GPU, where the later steps load them without compiling again.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPILE_OPS = REPO / 'tools' / 'compile_ops.py'


def list_ops() -> list[str]:
    """Extension names that ``compile_ops.py --list`` finds, once each (an op found both in the
    installed plugins and in plugins/ has the same sources, hence one build)."""
    proc = subprocess.run([sys.executable, str(COMPILE_OPS), '--list'], capture_output=True,
                          text=True, check=True)
    names = [line.split(':', 1)[0] for line in proc.stdout.splitlines() if ':' in line]
    return list(dict.fromkeys(names))


def compile_parallel(ops: list[str], arch: str, log_dir: Path) -> dict[str, dict]:
    """Compile each op in its own process; return ``{op: {ok, seconds, returncode}}``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    running = {}
    for op in ops:
        log = open(log_dir / f'{op}.log', 'w')  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, str(COMPILE_OPS), '--only', op, '--arch', arch],
                                stdout=log, stderr=subprocess.STDOUT)
        running[op] = (proc, log, time.monotonic())
    results = {}
    for op, (proc, log, start) in running.items():
        code = proc.wait()
        log.close()
        results[op] = dict(ok=code == 0, returncode=code,
                           seconds=round(time.monotonic() - start, 1))
        print(f'----- {op} (exit {code})', flush=True)
        print((log_dir / f'{op}.log').read_text(), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', required=True, help="TORCH_CUDA_ARCH_LIST, e.g. '9.0'")
    parser.add_argument('--json', type=Path, required=True)
    parser.add_argument('--rehearse', action='store_true', help='list the ops, compile none')
    args = parser.parse_args(argv)

    ops = list_ops()
    print(f'[compile] {len(ops)} op(s): {", ".join(ops)}; arch {args.arch}', flush=True)
    if args.rehearse:
        result = dict(arch=args.arch, ops={op: None for op in ops},
                      note=f'rehearsal: found {len(ops)} op(s), compiled none')
    else:
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix='gpu_check_compile_') as logs:
            built = compile_parallel(ops, args.arch, Path(logs))
        failed = [op for op, r in built.items() if not r['ok']]
        result = dict(arch=args.arch, ops=built, wall_s=round(time.monotonic() - start, 1),
                      note=f'failed: {", ".join(failed)}' if failed else '')
    args.json.write_text(json.dumps(result, indent=2))
    ok = bool(ops) and all(r is None or r['ok'] for r in result['ops'].values())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
