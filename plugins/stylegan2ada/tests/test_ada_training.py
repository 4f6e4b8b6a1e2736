"""End to end through the CLI: a tiny StyleGAN2-ADA run on the built-in dataset, resumed in the
middle of an adjustment interval, continues exactly (same p, same weights); a transfer run
starts from its checkpoint with FreezeD, set by --cfg-options."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genforce_core.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[3]
TINY_G = dict(type='StyleGAN2Generator', z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
              img_channels=3, mapping_kwargs=dict(num_layers=2),
              synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
TINY_D = dict(type='StyleGAN2Discriminator', c_dim=0, img_resolution=16, img_channels=3,
              channel_base=256, channel_max=16, num_fp16_res=0,
              epilogue_kwargs=dict(mbstd_group_size=2))


@pytest.fixture
def config(tmp_path):
    from genforce_core.data.builtin import ensure_builtin_dataset

    data = ensure_builtin_dataset(tmp_path, resolution=16, num_images=32)
    path = tmp_path / 'ada_tiny.py'
    # p starts at 0.3 and moves by 4 * 2 / 100 = 0.08 every 2 iterations (either way).
    path.write_text(textwrap.dedent(f'''
        _base_ = [{str(REPO / 'configs' / 'stylegan2ada_afhqcat512.py')!r}]
        model = dict(generator={TINY_G!r}, discriminator={TINY_D!r},
                     d_reg=dict(interval=2), g_reg=dict(interval=2),
                     augment=dict(p=0.3), ada_interval=2, ada_kimg=0.1)
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                pin_memory=False, dataset=dict(path={str(data)!r}, resolution=16))
        default_hooks = dict(logger=dict(interval=1))
        custom_hooks = [dict(type='KimgCheckpointHook', interval_kimg=0.012, max_keep_ckpts=5)]
    '''))
    return path


def train(config, work, kimg, *extra):
    proc = subprocess.run(
        [sys.executable, '-m', 'genforce_core.cli.main', 'train', str(config),
         '--work-dir', str(work), *extra, '--cfg-options', f'train_cfg.total_kimg={kimg}'],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_resume_keeps_p_and_transfer_with_freeze_d(config, tmp_path):
    out = train(config, tmp_path / 'a', 0.024)
    assert 'ada_p: ' in out and 'ada_rt: ' in out
    train(config, tmp_path / 'b', 0.012)
    train(config, tmp_path / 'b', 0.024, '--resume')
    a = load_checkpoint(tmp_path / 'a' / 'iter_6.pth')['state_dict']
    b = load_checkpoint(tmp_path / 'b' / 'iter_6.pth')['state_dict']
    mid = load_checkpoint(tmp_path / 'b' / 'iter_3.pth')['state_dict']
    assert int(mid['ada_stats'][1]) == 4  # saved in the middle of an interval
    # Three adjustments of +-0.08 from 0.3.
    moved = abs(float(a['augment_pipe.p']) - 0.3) / 0.08
    assert moved == pytest.approx(round(moved), abs=1e-4) and round(moved) in (1, 3)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]

    # Transfer: start from run a's networks, first two D layers frozen, via --cfg-options.
    source = tmp_path / 'a' / 'iter_6.pth'
    out = train(config, tmp_path / 'c', 0.012, '--cfg-options',
                f'model.init_from.checkpoint={source}', 'model.freeze_d=2')
    assert 'init_from: loaded generator, discriminator, generator_ema' in out
    c = load_checkpoint(tmp_path / 'c' / 'iter_3.pth')['state_dict']
    for key in ('discriminator.b16.fromrgb.weight', 'discriminator.b16.conv0.weight'):
        assert torch.equal(c[key], a[key]), key
    assert not torch.equal(c['discriminator.b16.conv1.weight'],
                           a['discriminator.b16.conv1.weight'])
    # Counters start fresh: p from the config's 0.3 (one adjustment in 3 iterations).
    assert int(c['images_seen']) == 12
    assert abs(float(c['augment_pipe.p']) - 0.3) == pytest.approx(0.08, abs=1e-6)
