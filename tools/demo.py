"""The built-in demo: write the shapes dataset, train a small GAN, say where things are.

Run through ``bash tools/demo.sh`` (which installs everything first). On a GPU it trains a
small StyleGAN2 (``configs/demo_stylegan2.py``); on CPU the example DCGAN
(``configs/demo.py``), which shows coloured shapes within minutes on 2 cores. Extra
arguments are passed to ``genforce train`` (e.g. ``--cfg-options train_cfg.total_kimg=4``).
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import shutil
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
WORK_DIR = osp.join('work_dirs', 'demo')


def main(argv: list[str]) -> int:
    os.chdir(REPO)
    from genforce_core.cli.main import main as genforce
    from genforce_core.data.builtin import ensure_builtin_dataset

    ensure_builtin_dataset(osp.join('data', 'builtin'), resolution=32, num_images=4000)
    if '--resume' not in argv and osp.isdir(WORK_DIR):
        shutil.rmtree(WORK_DIR)  # a fresh demo each time unless asked to resume
    import torch

    config = 'demo_stylegan2.py' if torch.cuda.is_available() else 'demo.py'
    print(f'Training configs/{config} into {WORK_DIR}')
    start = time.time()
    code = genforce(['train', osp.join('configs', config), '--work-dir', WORK_DIR, *argv])
    if code != 0:
        return code
    grids = sorted(glob.glob(osp.join(WORK_DIR, 'samples', 'fakes*.png')))
    events = glob.glob(osp.join(WORK_DIR, '*', 'vis_data', 'events.out.tfevents*'))
    with open(osp.join(WORK_DIR, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'\nDemo finished in {time.time() - start:.0f} s.')
    print(f'  sample grids : {osp.join(WORK_DIR, "samples")}/ (latest: {grids[-1]}, '
          f'real images: {osp.join(WORK_DIR, "samples", "reals.png")})')
    print(f'  TensorBoard  : .venv/bin/tensorboard --logdir {WORK_DIR} '
          f'({len(events)} event file(s))')
    print(f'  checkpoint   : {checkpoint}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
