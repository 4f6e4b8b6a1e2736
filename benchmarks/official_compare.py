"""Our StyleGAN2 training iteration side by side with NVIDIA's official StyleGAN2-ADA one.

The official code (https://github.com/NVlabs/stylegan2-ada-pytorch) is under NVIDIA's
non-commercial licence and is not shipped: point ``--official-dir`` at your own clone. This
script only imports its ``training.networks`` and ``training.loss`` modules; the loop that drives
them follows the phases of its ``training_loop.py`` (written here, not copied):

* per iteration: reals ``uint8 -> float / 127.5 - 1``, fresh latents for every phase;
* phases ``Gmain``, ``Greg`` (every G interval; with path length off it computes nothing but
  still runs its optimizer step, as official), ``Dmain``, ``Dreg`` (R1 every D interval, loss
  gain = interval); each: ``zero_grad``, ``requires_grad_(True)``, ``accumulate_gradients``,
  ``requires_grad_(False)``, ``nan_to_num`` of the gradients, Adam step (lr and betas rescaled
  for lazy regularization);
* the G_ema update (half-life with ramp-up, buffers copied).

Both sides get the same architecture, read from our config (default the demo): z/w dims,
mapping layers, channel base/max, resolution, fp16 layers, conv clamp, G/D architecture,
minibatch-std group, R1 gamma and intervals, style mixing, path length (must be off), Adam
settings and EMA. The parameter counts of G and D are checked to match before timing.

Timing: after warm-up, interleaved rounds (official round, our round, ...) of ``--iters``
iterations each (a multiple of the lazy-regularization cycle, so both sides run the same share
of R1 passes), synthetic uint8 batches (no data loading), CPU, torch's default thread count
unless ``--threads``. The median round gives img/s per side and the ratio ours/official. On a
machine that other jobs keep busy, use ``--threads 1``: with two threads every OpenMP barrier
waits for a preempted thread, and rounds then vary tenfold.

    python benchmarks/official_compare.py --official-dir ~/src/stylegan2-ada-pytorch \
        [--batch 8 16] [--iters 16] [--rounds 3] [--out FILE] [--profile]

``--profile`` then times where our iteration spends its time per phase part (forward,
backward, optimizer step, zero_grad, EMA, the rest of ``train_step``) and lists the top
operators of both sides (torch.profiler, self CPU time) and our top Python functions (cProfile).
"""
from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import math
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import build, machine_info  # noqa: E402  (the sibling benchmark)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / 'configs' / 'demo.py'
DEFAULT_OUT = Path(__file__).parent / 'results' / 'official_compare.json'
OFFICIAL_FILES = ('training/networks.py', 'training/loss.py', 'torch_utils/misc.py',
                  'dnnlib/__init__.py')


class UsageProblem(Exception):
    """Bad command-line input: one line, exit 2."""


# -- the official side ---------------------------------------------------------------------
def import_official(official_dir: Path) -> tuple[ModuleType, ModuleType, ModuleType]:
    """``(networks, loss, misc)`` modules of the official checkout at ``official_dir``."""
    if not official_dir.is_dir():
        raise UsageProblem(f'--official-dir {official_dir}: no such directory')
    missing = [f for f in OFFICIAL_FILES if not (official_dir / f).is_file()]
    if missing:
        raise UsageProblem(f'--official-dir {official_dir}: not a stylegan2-ada-pytorch '
                           f'checkout (missing {", ".join(missing)})')
    sys.path.insert(0, str(official_dir.resolve()))
    try:
        import training.loss as loss_module
        import training.networks as networks
        from torch_utils import misc
        from torch_utils.ops import conv2d_gradfix
    except Exception as err:  # any import failure of foreign code is a usage problem here
        raise UsageProblem(f'--official-dir {official_dir}: cannot import its training '
                           f'code ({type(err).__name__}: {err})') from err
    conv2d_gradfix.enabled = True  # as training_loop.py sets it (no effect on CPU tensors)
    return networks, loss_module, misc


def official_settings(cfg) -> dict:
    """The official constructor and loop arguments equivalent to our config ``cfg``."""
    model, gen, disc = cfg.model, cfg.model.generator, cfg.model.discriminator
    if model.get('g_reg') is not None:
        raise UsageProblem(f'{cfg.filename}: path length regularization is on (model.g_reg); '
                           'this comparison covers configs without it')
    c_dim = gen.get('c_dim', 0)
    if disc.get('c_dim', 0) != c_dim:
        raise UsageProblem(f'{cfg.filename}: the generator has c_dim {c_dim}, the '
                           f'discriminator {disc.get("c_dim", 0)}')
    syn = dict(gen.get('synthesis_kwargs', {}))
    res = gen.img_resolution
    g_opt, d_opt = cfg.optim_wrapper.generator, cfg.optim_wrapper.discriminator
    d_reg = model.d_reg
    return dict(
        G_kwargs=dict(z_dim=gen.z_dim, c_dim=c_dim, w_dim=gen.w_dim, img_resolution=res,
                      img_channels=gen.get('img_channels', 3),
                      mapping_kwargs=dict(num_layers=gen.mapping_kwargs.num_layers),
                      synthesis_kwargs=dict(channel_base=syn['channel_base'],
                                            channel_max=syn['channel_max'],
                                            num_fp16_res=syn['num_fp16_res'],
                                            conv_clamp=syn['conv_clamp'],
                                            architecture=syn.get('architecture', 'skip'))),
        D_kwargs=dict(c_dim=c_dim, img_resolution=res, img_channels=disc.get('img_channels', 3),
                      architecture=disc.get('architecture', 'resnet'),
                      channel_base=disc.channel_base, channel_max=disc.channel_max,
                      num_fp16_res=disc.num_fp16_res, conv_clamp=disc.conv_clamp,
                      mapping_kwargs=dict(disc.get('mapping_kwargs', {})),
                      epilogue_kwargs=dict(
                          mbstd_group_size=disc.get('epilogue_kwargs', {}).get(
                              'mbstd_group_size', 4))),
        loss_kwargs=dict(r1_gamma=d_reg.gamma, style_mixing_prob=model.style_mixing_prob,
                         pl_weight=0),
        # Official train.py always uses G_reg_interval 4 (its Adam keeps the rescaling even
        # with path length off); ours states it as reg_interval in the optimizer config.
        G_reg_interval=g_opt.get('reg_interval', 4),
        D_reg_interval=d_reg.get('interval', 16),
        G_opt=_adam_kwargs(g_opt.optimizer), D_opt=_adam_kwargs(d_opt.optimizer),
        ema_kimg=model.ema.half_life_kimg, ema_rampup=model.ema.get('rampup'),
        resolution=res)


def _adam_kwargs(opt) -> dict:
    if opt.get('type', 'Adam') != 'Adam':
        raise UsageProblem(f'optimizer {opt.get("type")!r}: only Adam is compared')
    return dict(lr=opt.lr, betas=tuple(opt.get('betas', (0.0, 0.99))), eps=opt.get('eps', 1e-8))


class OfficialIteration:
    """One training iteration of the official loop on the official networks and loss."""

    def __init__(self, networks: ModuleType, loss_module: ModuleType, misc: ModuleType,
                 settings: dict, batch: int):
        self.misc = misc
        self.batch = batch
        self.G = networks.Generator(**settings['G_kwargs']).train().requires_grad_(False)
        self.D = networks.Discriminator(**settings['D_kwargs']).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = loss_module.StyleGAN2Loss(device=torch.device('cpu'),
                                              G_mapping=self.G.mapping,
                                              G_synthesis=self.G.synthesis, D=self.D,
                                              **settings['loss_kwargs'])
        self.phases: list[tuple[str, torch.nn.Module, torch.optim.Optimizer, int]] = []
        for name, module, opt_kwargs, interval in (
                ('G', self.G, settings['G_opt'], settings['G_reg_interval']),
                ('D', self.D, settings['D_opt'], settings['D_reg_interval'])):
            ratio = interval / (interval + 1)  # lazy regularization
            opt = torch.optim.Adam(module.parameters(), lr=opt_kwargs['lr'] * ratio,
                                   betas=[b ** ratio for b in opt_kwargs['betas']],
                                   eps=opt_kwargs['eps'])
            self.phases += [(name + 'main', module, opt, 1), (name + 'reg', module, opt, interval)]
        self.ema_kimg, self.ema_rampup = settings['ema_kimg'], settings['ema_rampup']
        self.cur_nimg = 0
        self.batch_idx = 0

    def step(self, real_uint8: torch.Tensor, real_c: torch.Tensor | None = None) -> None:
        """One iteration on a batch of images (uint8) and their labels (``[N, c_dim]``; none
        for an unconditional model). Each phase's generated images get the batch's labels shuffled,
        as ours do: like the official loop, labels from the data's distribution."""
        real = real_uint8.to(torch.float32) / 127.5 - 1
        if real_c is None:
            real_c = torch.zeros([self.batch, self.G.c_dim])
        gen_z = torch.randn([len(self.phases) * self.batch, self.G.z_dim]).split(self.batch)
        gen_c = [real_c[torch.randperm(self.batch)] if self.G.c_dim else real_c
                 for _ in self.phases]
        for (name, module, opt, interval), z, c in zip(self.phases, gen_z, gen_c):
            if self.batch_idx % interval != 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=name, real_img=real, real_c=real_c, gen_z=z,
                                           gen_c=c, sync=True, gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    self.misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5,
                                         out=param.grad)
            opt.step()
        self._update_ema()
        self.cur_nimg += self.batch
        self.batch_idx += 1

    def _update_ema(self) -> None:
        half_life = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            half_life = min(half_life, self.cur_nimg * self.ema_rampup)
        beta = 0.5 ** (self.batch / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)


# -- our side ------------------------------------------------------------------------------
class OurIteration:
    """One ``model.train_step`` of our config (built as benchmarks/train_speed.py does)."""

    def __init__(self, config: str, batch: int):
        self.model, self.optim, self.data, self.resolution = build(config, batch, None, 'cpu')
        self.model.train()

    def step(self) -> None:
        self.model.train_step(self.data, self.optim)


# -- checks and timing ---------------------------------------------------------------------
def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_same_architecture(ours: OurIteration, official: OfficialIteration) -> dict:
    """Parameter counts of G and D on both sides; a mismatch stops the comparison."""
    counts = dict(ours_G=count(ours.model.generator), official_G=count(official.G),
                  ours_D=count(ours.model.discriminator), official_D=count(official.D))
    print(f'parameters: G ours {counts["ours_G"]:,} official {counts["official_G"]:,}; '
          f'D ours {counts["ours_D"]:,} official {counts["official_D"]:,}')
    if counts['ours_G'] != counts['official_G'] or counts['ours_D'] != counts['official_D']:
        raise SystemExit('official_compare: the two sides do not build the same architecture '
                         f'(parameter counts {counts}); refusing to compare their speed')
    return counts


def time_rounds(steps: dict[str, Callable[[], None]], iters: int, rounds: int) -> dict:
    """Seconds per iteration of every round, the sides interleaved in each round."""
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(iters):
                step()
            seconds[name].append((time.perf_counter() - start) / iters)
    return seconds


def compare(config: str, settings: dict, official_modules, batch: int, iters: int,
            rounds: int, warmup: int) -> tuple[dict, OurIteration, OfficialIteration]:
    torch.manual_seed(0)
    official = OfficialIteration(*official_modules, settings, batch)
    ours = OurIteration(config, batch)
    counts = check_same_architecture(ours, official)
    real, real_c = ours.data['img'], ours.data['label']
    steps = {'official': lambda: official.step(real, real_c), 'ours': ours.step}
    for _ in range(warmup):
        for step in steps.values():
            step()
    seconds = time_rounds(steps, iters, rounds)
    sec = {name: statistics.median(values) for name, values in seconds.items()}
    paired = [o / u for o, u in zip(seconds['official'], seconds['ours'])]
    row = dict(batch=batch, resolution=settings['resolution'], iters=iters, rounds=rounds,
               warmup=warmup, parameters=counts,
               official_img_per_s=batch / sec['official'], ours_img_per_s=batch / sec['ours'],
               ratio=sec['official'] / sec['ours'], ratio_per_round=paired,
               official_round_sec_per_iter=seconds['official'],
               ours_round_sec_per_iter=seconds['ours'])
    return row, ours, official


def print_table(rows: list[dict]) -> None:
    print(f'{"batch":>5} {"res":>4} {"official img/s":>15} {"ours img/s":>11} '
          f'{"ours/official":>14} {"per round":>22}')
    for r in rows:
        rounds = ' '.join(f'{x:.2f}' for x in r['ratio_per_round'])
        print(f'{r["batch"]:>5} {r["resolution"]:>4} {r["official_img_per_s"]:>15.1f} '
              f'{r["ours_img_per_s"]:>11.1f} {r["ratio"]:>13.2f}x {rounds:>22}')


# -- profile -------------------------------------------------------------------------------
class PhaseTimer:
    """Wall time of the parts of our ``train_step``, by wrapping (on these instances only)
    the model's phase runner, the optimizer wrappers, the EMA and the preprocessor."""

    def __init__(self, ours: OurIteration):
        self.totals: dict[str, float] = {}
        self.phase = 'other'
        model = ours.model
        self._wrap(model, 'data_preprocessor', 'preprocess')
        run_phase = model._run_phase

        def timed_run_phase(optim, module, phase, compute):
            self.phase = phase
            try:
                return run_phase(optim, module, phase, self._timed(compute, 'forward+loss'))
            finally:
                self.phase = 'other'
        model._run_phase = timed_run_phase
        for name in ('generator', 'discriminator'):
            wrapper = ours.optim[name]
            for method in ('backward', 'step', 'zero_grad'):
                self._wrap(wrapper, method, method)
        if model.ema is not None:
            self._wrap(model.ema, 'update', 'ema')

    def _timed(self, fn, part: str):
        def run(*args, **kwargs):
            key = f'{self.phase}/{part}' if self.phase != 'other' else part
            with torch.autograd.profiler.record_function(key):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.totals[key] = self.totals.get(key, 0.0) + time.perf_counter() - start
        return run

    def _wrap(self, obj: Any, attr: str, part: str) -> None:
        object.__setattr__(obj, attr, self._timed(getattr(obj, attr), part))


def profile(ours: OurIteration, official: OfficialIteration, iters: int, top: int) -> dict:
    """Where the time goes: our parts of train_step (wall time), the top operators of both
    sides (torch.profiler, self CPU time) and our top Python functions (cProfile)."""
    real, real_c = ours.data['img'], ours.data['label']
    timer = PhaseTimer(ours)
    start = time.perf_counter()
    for _ in range(iters):
        ours.step()
    total = time.perf_counter() - start
    parts = dict(sorted(timer.totals.items(), key=lambda kv: -kv[1]))
    nested = sum(v for k, v in parts.items() if '/' in k or k in ('preprocess', 'ema'))
    parts['rest of train_step (engine, requires_grad, isfinite, logs)'] = total - nested
    print(f'\nour iteration, {iters} iterations, {total / iters * 1000:.1f} ms/iter; '
          'share of wall time per part:')
    for key, value in parts.items():
        print(f'  {key:<62} {value / iters * 1000:8.2f} ms {value / total * 100:6.1f} %')
    result = dict(iters=iters, ours_ms_per_iter=total / iters * 1000,
                  ours_parts_ms_per_iter={k: v / iters * 1000 for k, v in parts.items()})
    for name, step in (('ours', ours.step), ('official', lambda: official.step(real, real_c))):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                step()
        events = list(prof.key_averages())
        # Self time of everything profiled ~ the wall time; aten:: entries are the operators,
        # the rest is Python, the autograd engine and record_function ranges.
        self_total = sum(e.self_cpu_time_total for e in events)
        aten = [e for e in events if e.key.startswith('aten::')]
        aten_share = sum(e.self_cpu_time_total for e in aten) / self_total * 100
        ranked = sorted(aten, key=lambda e: -e.self_cpu_time_total)[:top]
        print(f'\n{name}: top {top} operators by self CPU time (profiled '
              f'{self_total / iters / 1000:.1f} ms/iter; aten ops {aten_share:.1f} %, '
              f'{sum(e.count for e in aten) / iters:.0f} op calls/iter)')
        ops = []
        for e in ranked:
            share = e.self_cpu_time_total / self_total * 100
            print(f'  {e.key:<44} {e.count / iters:7.1f} calls/iter '
                  f'{e.self_cpu_time_total / iters / 1000:8.2f} ms {share:6.1f} %')
            ops.append(dict(op=e.key, calls_per_iter=e.count / iters,
                            self_ms_per_iter=e.self_cpu_time_total / iters / 1000,
                            share_pct=share))
        result[f'{name}_top_ops'] = ops
        result[f'{name}_aten_share_pct'] = aten_share
        result[f'{name}_profiled_ms_per_iter'] = self_total / iters / 1000
        result[f'{name}_aten_calls_per_iter'] = sum(e.count for e in aten) / iters
    result['ours_top_python'] = _cprofile(ours.step, iters, top)
    return result


def _cprofile(step: Callable[[], None], iters: int, top: int) -> list[dict]:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iters):
        step()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # by own (tot) time
    print(f'\nours: top {top} Python functions by own time (cProfile, '
          f'{total / iters * 1000:.1f} ms/iter under the profiler)')
    out = []
    for (file, line, func), (_cc, calls, tottime, _cum, _callers) in rows:
        where = f'{Path(file).name}:{line}({func})'
        print(f'  {where:<60} {calls / iters:8.1f} calls/iter {tottime / iters * 1000:7.2f} ms '
              f'{tottime / total * 100:5.1f} %')
        out.append(dict(function=where, calls_per_iter=calls / iters,
                        own_ms_per_iter=tottime / iters * 1000,
                        share_pct=tottime / total * 100))
    return out


# -- command line --------------------------------------------------------------------------
def lazy_cycle(settings: dict) -> int:
    return math.lcm(int(settings['G_reg_interval']), int(settings['D_reg_interval']))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--official-dir', type=Path, required=True,
                        help='your clone of NVlabs/stylegan2-ada-pytorch (not shipped here)')
    parser.add_argument('--config', default=str(DEFAULT_CONFIG),
                        help='our config whose architecture both sides build (default: demo)')
    parser.add_argument('--batch', type=int, nargs='+', default=[8])
    parser.add_argument('--iters', type=int, default=16,
                        help='iterations per round, a multiple of the lazy-regularization '
                             'cycle (16 for the demo)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None,
                        help="torch threads (default: torch's default)")
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    parser.add_argument('--profile', action='store_true',
                        help='afterwards, profile both iterations at the last batch size')
    parser.add_argument('--profile-iters', type=int, default=16)
    parser.add_argument('--top', type=int, default=25, help='rows of the profile tables')
    parser.add_argument('--note', default=None,
                        help='free text stored in the JSON (e.g. how busy the machine was)')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    for name in ('iters', 'rounds', 'profile_iters', 'top'):
        if getattr(args, name) < 1:
            raise UsageProblem(f'--{name.replace("_", "-")} must be at least 1, '
                               f'got {getattr(args, name)}')
    if any(b < 1 for b in args.batch):
        raise UsageProblem(f'--batch sizes must be positive, got {args.batch}')
    if args.warmup < 0:
        raise UsageProblem(f'--warmup must be >= 0, got {args.warmup}')
    official_modules = import_official(args.official_dir)
    from genforce_core.api import reference_ops
    from genforce_core.config import load_config

    settings = official_settings(load_config(args.config))
    cycle = lazy_cycle(settings)
    if args.iters % cycle:
        raise UsageProblem(f'--iters {args.iters}: must be a multiple of {cycle} (the '
                           'lazy-regularization cycle), so both sides time the same R1 share')
    group = settings['D_kwargs']['epilogue_kwargs']['mbstd_group_size']
    if any(b % min(group, b) for b in args.batch):
        raise UsageProblem(f'--batch {args.batch}: every batch size must be divisible by the '
                           f'minibatch-std group size {group}')
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = []
    with reference_ops(True):  # on CPU both sides run their pure-PyTorch op paths
        for batch in args.batch:
            row, ours, official = compare(args.config, settings, official_modules, batch,
                                          args.iters, args.rounds, args.warmup)
            rows.append(row)
        print_table(rows)
        profile_result = (profile(ours, official, args.profile_iters, args.top)
                          if args.profile else None)
    report = dict(machine=machine_info('cpu'), note=args.note, config=Path(args.config).name,
                  settings={k: v for k, v in settings.items()}, results=rows)
    if profile_result is not None:
        report['profile'] = dict(batch=args.batch[-1], **profile_result)
    write_report(args.out, report)
    return 0


def write_report(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f'wrote {out}')


def run_command(name: str, run_args: Callable[[argparse.Namespace], int],
                args: argparse.Namespace) -> int:
    """``run_args(args)``; a :class:`UsageProblem` becomes one line on stderr and exit 2."""
    try:
        return run_args(args)
    except UsageProblem as err:
        print(f'{name}: {err}', file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_command('official_compare', run, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
