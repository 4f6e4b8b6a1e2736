"""Does our StyleGAN2 learn as fast as NVIDIA's official one? Train both on the built-in shapes.

Each side trains from its own initialisation (seeded) for ``--kimg`` thousand images with the
architecture and training settings of our config (default the demo), as
``official_compare.py`` builds them: our ``model.train_step`` and the official StyleGAN2-ADA
networks and loss driven by the loop written there. Both see the same batches of the built-in
``shapes32`` set in the same order (reshuffled every epoch from ``--data-seed``). Every
``--eval-kimg`` the EMA generator is judged by ``ShapesQuality`` (1000 images: recognised share,
coverage of the 96 combinations, Fréchet distance in the classifier's features), the metrics the
demo logs. The table shows both sides per seed; the JSON keeps every value and the wall time.

The official code is not shipped: point ``--official-dir`` at your clone of
NVlabs/stylegan2-ada-pytorch. Runs are independent jobs (side x seed) run ``--jobs`` at a time,
one torch thread each.

    python benchmarks/official_learning.py --official-dir ~/src/stylegan2-ada-pytorch \
        [--kimg 40] [--eval-kimg 10] [--seeds 0 1] [--batch 16] [--jobs 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_compare import (  # noqa: E402  (the sibling benchmark)
    DEFAULT_CONFIG,
    OfficialIteration,
    OurIteration,
    UsageProblem,
    import_official,
    official_settings,
    run_command,
    write_report,
)
from train_speed import machine_info  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / 'results' / 'official_learning.json'
SIDES = ('ours', 'official')


def batches(num_images: int, batch: int, seed: int):
    """Endless dataset indices in batches, a fresh permutation every epoch."""
    rng = np.random.default_rng(seed)
    pending: list[int] = []
    while True:
        while len(pending) < batch:
            pending += rng.permutation(num_images).tolist()
        yield pending[:batch]
        pending = pending[batch:]


def train(job: dict) -> dict:
    """One side, one seed: train and evaluate; returns the run's record."""
    from genforce_core.api import reference_ops
    from genforce_core.data.builtin import resolve_builtin_path
    from genforce_core.data.datasets import ImageDataset
    from genforce_metrics_fid.shapes_quality import evaluate_shapes

    torch.set_num_threads(1)
    torch.manual_seed(job['seed'])
    c_dim = job['settings']['G_kwargs']['c_dim']  # conditional: on the built-in labels
    dataset = ImageDataset(resolve_builtin_path('builtin:shapes32'), resolution=32,
                           use_labels=c_dim > 0)
    with reference_ops(True):
        if job['side'] == 'ours':
            ours = OurIteration(job['config'], job['batch'])
            model = ours.model

            def step(img: torch.Tensor, label: torch.Tensor) -> None:
                model.train_step(dict(img=img, label=label), ours.optim)
            generator = model.generator_ema
        else:
            official = OfficialIteration(*import_official(Path(job['official_dir'])),
                                         job['settings'], job['batch'])
            step = official.step
            generator = official.G_ema
        evals, seen, trained_s, tick = [], 0, 0.0, time.perf_counter()
        order = batches(len(dataset), job['batch'], job['data_seed'])
        next_eval = job['eval_kimg'] * 1000
        while seen < job['kimg'] * 1000:
            items = [dataset[i] for i in next(order)]
            step(torch.stack([item['img'] for item in items]),
                 torch.stack([item['label'] for item in items]))
            seen += job['batch']
            if seen >= next_eval or seen >= job['kimg'] * 1000:
                trained_s += time.perf_counter() - tick  # evaluations are not counted
                quality = evaluate_shapes(lambda z, c: generator(z, c, noise_mode='random'),
                                          generator.z_dim, c_dim, progress=False)
                evals.append(dict(kimg=seen / 1000, train_s=trained_s, **quality))
                print(f"{job['side']:>8} seed {job['seed']}: {seen / 1000:5.1f} kimg "
                      f"{quality['shapes_recognised']:.3f} / {quality['shapes_coverage']:.3f} / "
                      f"{quality['shapes_fd']:.0f}", flush=True)
                next_eval += job['eval_kimg'] * 1000
                tick = time.perf_counter()
    return dict(side=job['side'], seed=job['seed'], evals=evals)


def print_table(runs: list[dict]) -> None:
    print('\nrecognised / coverage / FD of 1000 EMA samples')
    kimgs = [e['kimg'] for e in runs[0]['evals']]
    print(f'{"run":<16}' + ''.join(f'{k:>20g}' for k in kimgs) + '   (kimg)')
    for run in runs:
        cells = ''.join(f"{e['shapes_recognised']:>8.3f}/{e['shapes_coverage']:.3f}/"
                        f"{e['shapes_fd']:<4.0f}" for e in run['evals'])
        print(f"{run['side'] + ' seed ' + str(run['seed']):<16}{cells}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--official-dir', type=Path, required=True,
                        help='your clone of NVlabs/stylegan2-ada-pytorch (not shipped here)')
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--kimg', type=float, default=40)
    parser.add_argument('--eval-kimg', type=float, default=10)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--jobs', type=int, default=2, help='runs at a time (one thread each)')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    parser.add_argument('--note', default=None, help='free text stored in the JSON')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    for name in ('kimg', 'eval_kimg', 'batch', 'jobs'):
        if getattr(args, name) <= 0:
            raise UsageProblem(f'--{name.replace("_", "-")} must be positive, '
                               f'got {getattr(args, name)}')
    import_official(args.official_dir)  # a bad clone fails here, before any training
    from genforce_core.config import load_config
    settings = official_settings(load_config(args.config))
    if settings['resolution'] != 32:
        raise UsageProblem(f'{args.config}: the shapes metrics judge 32x32 images, the config '
                           f'trains {settings["resolution"]}x{settings["resolution"]}')
    jobs = [dict(side=side, seed=seed, config=args.config, settings=settings,
                 official_dir=str(args.official_dir), batch=args.batch, kimg=args.kimg,
                 eval_kimg=args.eval_kimg, data_seed=args.data_seed)
            for seed in args.seeds for side in SIDES]
    with multiprocessing.get_context('spawn').Pool(args.jobs) as pool:
        runs = pool.map(train, jobs, chunksize=1)
    print_table(runs)
    report = dict(machine=machine_info('cpu'), note=args.note, config=Path(args.config).name,
                  batch=args.batch, kimg=args.kimg, data_seed=args.data_seed,
                  settings=settings, runs=runs)
    write_report(args.out, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command('official_learning', run, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
