"""End-to-end training of the example plugin's DCGAN through the real CLI and launchers:
exact resume, 2-process torchrun and slurm launches on CPU (gloo), and the safety nets."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genforce_core.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]

DIGEST_HOOK = '''
import hashlib
import os

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from genforce_core.registry import HOOKS


@HOOKS.register_module()
class WeightDigestHook(Hook):
    """Writes a digest of this rank's weights (all of them, EMA included) after training."""

    def after_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        path = os.path.join(runner.work_dir, f'rank{get_rank()}.sha256')
        with open(path, 'w') as f:
            f.write(digest.hexdigest() + ' ' + str(int(model.images_seen)))


@HOOKS.register_module()
class PoisonWeightsHook(Hook):
    """Simulates a diverged run: the generator's weights turn NaN at iteration ``at``."""

    def __init__(self, at=-1):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            model = getattr(runner.model, 'module', runner.model)
            with torch.no_grad():
                for p in model.generator.parameters():
                    p.fill_(float('nan'))
'''


@pytest.fixture
def config(tmp_path, example_config) -> Path:
    """The example config with iteration-based checkpoints and the digest hook."""
    (tmp_path / 'digest_hook.py').write_text(DIGEST_HOOK)
    path = tmp_path / 'dcgan_test.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = [{str(example_config)!r}]
        custom_imports = dict(imports=['digest_hook'], allow_failed_imports=False)
        custom_hooks = [dict(type='WeightDigestHook'), dict(type='PoisonWeightsHook')]
        default_hooks = dict(checkpoint=dict(_delete_=True, type='CheckpointHook', interval=4,
                                             by_epoch=False, max_keep_ckpts=10))
    '''))
    return path


def train(genforce, config, work_dir, tiny, kimg, *extra, site=None, check=True):
    return genforce(['train', str(config), '--work-dir', str(work_dir), *extra,
                     '--cfg-options', *tiny, f'train_cfg.total_kimg={kimg}'],
                    pythonpath=[site, config.parent], check=check)


def state(path: Path) -> dict:
    ckpt = load_checkpoint(path)
    return dict(model=ckpt['state_dict'], optim=ckpt['optimizer'], iter=ckpt['meta']['iter'])


def assert_same(a, b, where='checkpoint'):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f'{where}.{k}')
    elif torch.is_tensor(a):
        assert torch.equal(a, b), f'{where} differs'
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a} != {b}'


@pytest.mark.slow
def test_resume_continues_exactly(genforce, config, tmp_path, tiny_dcgan, example_plugin_site):
    # 8 iterations of batch 4 = 0.032 kimg straight, versus 4 + resume + 4.
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    train(genforce, config, straight, tiny_dcgan, 0.032, site=example_plugin_site)
    train(genforce, config, split, tiny_dcgan, 0.016, site=example_plugin_site)
    # A later save that was killed half-way must not be picked up: a torn checkpoint, its
    # temporary file, and a last_checkpoint pointer to it.
    (split / 'iter_6.pth').write_bytes(b'PK\x03\x04 torn')
    (split / '.iter_6.pth.partial').write_bytes(b'junk')
    (split / 'last_checkpoint').write_text(str(split / 'iter_6.pth'))
    proc = train(genforce, config, split, tiny_dcgan, 0.032, '--resume',
                 site=example_plugin_site)
    assert 'iter_4.pth' in proc.stdout + proc.stderr
    assert not (split / '.iter_6.pth.partial').exists()

    a, b = state(straight / 'iter_8.pth'), state(split / 'iter_8.pth')
    assert a['iter'] == b['iter'] == 8
    assert int(a['model']['images_seen']) == 32
    assert_same(a, b)
    # The EMA generator is part of the state and has moved away from its initial copy.
    assert any(k.startswith('generator_ema.') for k in a['model'])


def test_resume_from_a_different_model_names_the_mismatch(genforce, config, tmp_path,
                                                          tiny_dcgan, example_plugin_site):
    work = tmp_path / 'run'
    train(genforce, config, work, tiny_dcgan, 0.016, site=example_plugin_site)
    other = [o for o in tiny_dcgan if 'discriminator.base_channels' not in o]
    proc = train(genforce, config, work, other + ['model.discriminator.base_channels=16'],
                 0.032, '--resume', str(work / 'iter_4.pth'), site=example_plugin_site,
                 check=False)
    assert proc.returncode == 1
    assert 'does not fit the model' in proc.stderr
    assert 'discriminator.' in proc.stderr and 'shape' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_nonfinite_loss_stops_and_keeps_the_last_checkpoint(genforce, config, tmp_path,
                                                            tiny_dcgan, example_plugin_site):
    work = tmp_path / 'run'
    train(genforce, config, work, tiny_dcgan, 0.016, site=example_plugin_site)
    before = (work / 'iter_4.pth').read_bytes()
    proc = train(genforce, config, work, tiny_dcgan + ['custom_hooks.1.at=5'], 0.064,
                 '--resume', site=example_plugin_site, check=False)
    assert proc.returncode == 1
    assert 'non-finite loss in phase Gmain at training step 5 (loss_g=nan)' in proc.stderr
    assert f'last complete checkpoint: {work / "iter_4.pth"}' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert (work / 'iter_4.pth').read_bytes() == before
    assert not (work / 'iter_8.pth').exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launcher_env(site: Path, config: Path) -> dict:
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1')
    env['MASTER_PORT'] = env['PORT']
    env['PYTHONPATH'] = os.pathsep.join([str(site), str(config.parent),
                                         env.get('PYTHONPATH', '')])
    return env


def assert_ranks_agree(work: Path, ranks: int, images: int) -> None:
    digests = [(work / f'rank{r}.sha256').read_text().split() for r in range(ranks)]
    assert len({d[0] for d in digests}) == 1, digests
    assert all(int(d[1]) == images for d in digests), digests


@pytest.mark.slow
def test_dist_train_two_cpu_processes(config, tmp_path, tiny_dcgan, example_plugin_site):
    work = tmp_path / 'dist'
    proc = subprocess.run(
        ['bash', str(REPO / 'tools' / 'dist_train.sh'), str(config), '2', '--work-dir',
         str(work), '--cfg-options', *tiny_dcgan, 'train_cfg.total_kimg=0.032'],
        env=launcher_env(example_plugin_site, config), capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Global batch 2 x 4 = 8 images per iteration: 0.032 kimg is 4 iterations.
    assert_ranks_agree(work, 2, 32)
    assert (work / 'iter_4.pth').exists() and not (work / 'iter_8.pth').exists()


FAKE_SRUN = f'''#!{sys.executable}
"""Starts --ntasks copies of the command at once, with the variables srun sets."""
import os, subprocess, sys
args = sys.argv[1:]
options = {{}}
while args[0].startswith('-'):
    if args[0] == '-p':
        options['-p'] = args[1]
        args = args[2:]
        continue
    key, _, value = args.pop(0).partition('=')
    options[key] = value
ntasks = int(options['--ntasks'])
procs = [subprocess.Popen(args, env=dict(os.environ, SLURM_PROCID=str(rank),
                                         SLURM_NTASKS=str(ntasks), SLURM_LOCALID=str(rank),
                                         SLURM_NODELIST='localhost'))
         for rank in range(ntasks)]
sys.exit(max(p.wait() for p in procs))
'''


@pytest.mark.slow
def test_slurm_train_rendezvous_under_fake_srun(config, tmp_path, tiny_dcgan,
                                                example_plugin_site):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'srun').chmod(0o755)
    env = launcher_env(example_plugin_site, config)
    env.update(PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}', GPUS='2', GPUS_PER_NODE='2',
               CPUS_PER_TASK='1')
    work = tmp_path / 'slurm'
    proc = subprocess.run(
        ['bash', str(REPO / 'tools' / 'slurm_train.sh'), 'cpu', 'gf-test', str(config),
         str(work), '--cfg-options', *tiny_dcgan, 'train_cfg.total_kimg=0.032'],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_ranks_agree(work, 2, 32)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only message')
def test_amp_without_a_gpu_is_a_clear_error(genforce, example_config, example_plugin_site,
                                            tmp_path):
    proc = genforce(['train', str(example_config), '--amp', '--work-dir', str(tmp_path)],
                    pythonpath=[example_plugin_site], check=False)
    assert proc.returncode == 2
    assert '--amp (automatic mixed precision) needs a CUDA GPU' in proc.stderr
