"""The built-in demo: train a small StyleGAN2, say where things are.

Run through ``bash tools/demo.sh`` (which installs everything first). It trains
``configs/demo.py`` on the GPU when there is one, else on the CPU. Extra arguments are passed
to ``genforce train`` (e.g. ``--cfg-options train_cfg.total_kimg=4``); ``--work-dir D``
replaces ``work_dirs/demo``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


# The bar the demo is tuned to reach (README, "The demo"): share of samples the shapes classifier
# recognises confidently, and share of the 96 shape/colour/ground combinations among them.
BAR = {'shapes_recognised': 0.8, 'shapes_coverage': 0.9}


def final_quality(work_dir: str) -> dict[str, float] | None:
    """The last ShapesQuality evaluation logged by the run in ``work_dir`` (None: none)."""
    last = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'shapes_recognised' in record:
                    last = record
    return last


def quality_line(scores: dict[str, float]) -> str:
    recognised, coverage = scores['shapes_recognised'], scores['shapes_coverage']
    verdict = ('reaches' if all(scores[k] >= v for k, v in BAR.items()) else 'is below')
    return (f'{recognised:.1%} recognised, {coverage:.1%} of the 96 combinations covered, '
            f'FD {scores["shapes_fd"]:.1f}; {verdict} the bar of '
            f'{BAR["shapes_recognised"]:.0%} / {BAR["shapes_coverage"]:.0%}')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/demo')
    args, train_args = parser.parse_known_args(argv)
    work_dir = osp.abspath(args.work_dir) if args.work_dir else osp.join('work_dirs', 'demo')
    os.chdir(REPO)
    from genforce_core.cli.main import main as genforce
    from genforce_core.data.builtin import resolve_builtin_path

    resolve_builtin_path('builtin:shapes32')  # configs/demo.py's dataset, written once
    if '--resume' not in train_args and osp.isdir(work_dir):
        shutil.rmtree(work_dir)  # a fresh demo each time unless asked to resume
    config = osp.join('configs', 'demo.py')
    print(f'Training {config} into {work_dir}')
    start = time.time()
    code = genforce(['train', config, '--work-dir', work_dir, *train_args])
    if code != 0:
        return code
    grids = sorted(glob.glob(osp.join(work_dir, 'samples', 'fakes*.png')))
    events = glob.glob(osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents*'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'\nDemo finished in {time.time() - start:.0f} s.')
    print(f'  sample grids : {osp.join(work_dir, "samples")}/ (latest: {grids[-1]}, '
          f'real images: {osp.join(work_dir, "samples", "reals.png")})')
    print(f'  TensorBoard  : .venv/bin/tensorboard --logdir {work_dir} '
          f'({len(events)} event file(s))')
    print(f'  checkpoint   : {checkpoint}')
    scores = final_quality(work_dir)
    if scores is not None:
        print(f'  quality      : {quality_line(scores)}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
