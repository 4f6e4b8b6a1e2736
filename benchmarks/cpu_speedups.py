"""What the two CPU speed-ups of the StyleGAN2 training iteration are worth, one at a time.

* layout: the StyleGAN2 blocks keep their activations channels-last on the CPU
  (``cpu_channels_last``, on by default) against NCHW;
* memory: ``genforce train`` on the CPU raises glibc's mmap/trim thresholds
  (``genforce_core.engine.cpu_memory.keep_freed_memory``) against glibc's defaults.

The layout is switched inside one process between interleaved rounds; the allocator cannot be
switched back once set, so each allocator setting runs in its own child process, alternating
``--repeats`` times. Every round times ``--iters`` full iterations of the config (synthetic
batches, reference ops, CPU). The table gives the median round per variant, as CPU time of the
process (what a busy shared machine distorts least; with several threads it also counts their
waiting) and wall time, img/s from wall time, and the speed-ups over NCHW with glibc's
defaults by either clock.

    python benchmarks/cpu_speedups.py [CONFIG] [--threads 1] [--batch 32] [--iters 12]
        [--rounds 4] [--repeats 3] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import build, machine_info, ops_implementation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / 'configs' / 'demo.py'
DEFAULT_OUT = Path(__file__).parent / 'results' / 'cpu_speedups.json'
LAYOUTS = ('nchw', 'channels_last')
MEMORY = ('glibc_default', 'keep_freed')


def time_layouts(config: str, batch: int, iters: int, rounds: int) -> dict[str, list]:
    """``{layout: [(cpu_s, wall_s) per iteration, one per round]}`` in this process."""
    from genforce_stylegan2.networks.layers import set_cpu_channels_last

    with ops_implementation('ref'):
        torch.manual_seed(0)
        model, optim, data, _ = build(config, batch, None, 'cpu')
        model.train()
        times: dict[str, list] = {layout: [] for layout in LAYOUTS}
        for _ in range(2):
            model.train_step(data, optim)
        for _ in range(rounds):
            for layout in LAYOUTS:
                set_cpu_channels_last(model, layout == 'channels_last')
                model.train_step(data, optim)  # the first step after a switch converts
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(iters):
                    model.train_step(data, optim)
                times[layout].append(((time.process_time() - cpu) / iters,
                                      (time.perf_counter() - wall) / iters))
    return times


def child(args) -> int:
    """One allocator setting: time both layouts, print JSON on stdout."""
    torch.set_num_threads(args.threads)
    if args.memory == 'keep_freed':
        from genforce_core.engine.cpu_memory import keep_freed_memory
        if not keep_freed_memory():
            print(json.dumps(None))
            return 0
    print(json.dumps(time_layouts(args.config, args.batch, args.iters, args.rounds)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=str(DEFAULT_CONFIG))
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--iters', type=int, default=12)
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3,
                        help='child processes per allocator setting, alternating')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    parser.add_argument('--memory', choices=MEMORY, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.memory:
        return child(args)

    rounds: dict[tuple[str, str], list] = {}
    for _ in range(args.repeats):
        for memory in MEMORY:
            out = subprocess.run(
                [sys.executable, __file__, args.config, '--memory', memory,
                 '--threads', str(args.threads), '--batch', str(args.batch),
                 '--iters', str(args.iters), '--rounds', str(args.rounds)],
                check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if result is None:
                print(f'skipped {memory}: the C library is not glibc')
                continue
            for layout, times in result.items():
                rounds.setdefault((memory, layout), []).extend(times)

    base = rounds[('glibc_default', 'nchw')]
    base_cpu = statistics.median(c for c, _ in base)
    base_wall = statistics.median(w for _, w in base)
    rows = []
    print(f'{"memory":<14} {"layout":<14} {"cpu ms/it":>10} {"wall ms/it":>11} {"img/s":>7} '
          f'{"speed-up cpu":>13} {"wall":>6}')
    for (memory, layout), times in rounds.items():
        cpu = statistics.median(c for c, _ in times)
        wall = statistics.median(w for _, w in times)
        rows.append(dict(memory=memory, layout=layout, cpu_ms_per_iter=cpu * 1000,
                         wall_ms_per_iter=wall * 1000, img_per_s=args.batch / wall,
                         speedup_cpu=base_cpu / cpu, speedup_wall=base_wall / wall,
                         rounds=len(times),
                         round_cpu_ms=[round(c * 1000, 1) for c, _ in times]))
        print(f'{memory:<14} {layout:<14} {cpu * 1000:>10.1f} {wall * 1000:>11.1f} '
              f'{args.batch / wall:>7.1f} {base_cpu / cpu:>12.2f}x {base_wall / wall:>5.2f}x')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    args.out.write_text(json.dumps(dict(
        machine=machine_info('cpu'), config=Path(args.config).name, batch=args.batch,
        iters=args.iters, rounds_per_process=args.rounds, repeats=args.repeats,
        results=rows), indent=2))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
