"""End to end: `genforce train configs/stylegan2_ffhq256_encoder.py` (shrunk) trains the
encoder with the real runner and resumes exactly; `genforce invert` uses the result."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_core.checkpoint import load_checkpoint
from genforce_core.config import load_config
from genforce_core.data.builtin import ensure_builtin_dataset

REPO = Path(__file__).resolve().parents[3]


def genforce(*args):
    proc = subprocess.run([sys.executable, '-m', 'genforce_core.cli.main', *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize('name', ['stylegan2_ffhq256_encoder', 'stylegan_ffhq256_encoder'])
def test_encoder_configs_hold_the_genforce_defaults(name):
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    assert cfg.model.type == 'InDomainEncoder'
    assert (cfg.model.perceptual_weight, cfg.model.adv_weight, cfg.model.r1_gamma) == \
        (5e-5, 0.08, 10.0)
    assert cfg.optim_wrapper.encoder.optimizer == dict(type='Adam', lr=1e-4, betas=(0.9, 0.99))
    assert cfg.model.perceptual.last_layer == 'conv4_3'
    assert cfg.train_dataloader.dataset.resolution == 256


@pytest.mark.slow
def test_train_resume_and_invert(tmp_path, gan_checkpoint, vgg_weights, tiny):
    data = ensure_builtin_dataset(tmp_path, resolution=16, num_images=32)
    config = tmp_path / 'encoder_tiny.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(REPO / 'configs' / 'stylegan2_ffhq256_encoder.py')!r}]
        model = dict(gan_checkpoint={str(gan_checkpoint)!r}, encoder={tiny.encoder!r},
                     perceptual=dict(weights={str(vgg_weights)!r}))
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                pin_memory=False, dataset=dict(path={str(data)!r},
                                                               resolution=16))
        custom_hooks = [dict(type='ReconstructionGridHook', interval_kimg=0.012, num_samples=4),
                        dict(type='KimgCheckpointHook', interval_kimg=0.012, max_keep_ckpts=5)]
    '''))
    kimg = 'train_cfg.total_kimg={}'.format
    genforce('train', config, '--work-dir', tmp_path / 'a', '--cfg-options', kimg(0.024))
    genforce('train', config, '--work-dir', tmp_path / 'b', '--cfg-options', kimg(0.012))
    genforce('train', config, '--work-dir', tmp_path / 'b', '--resume', '--cfg-options',
             kimg(0.024))
    a = load_checkpoint(tmp_path / 'a' / 'iter_6.pth')['state_dict']
    b = load_checkpoint(tmp_path / 'b' / 'iter_6.pth')['state_dict']
    assert a.keys() == b.keys() and any(k.startswith('encoder.') for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert sorted(os.listdir(tmp_path / 'a' / 'samples'))[-1] == 'reconstructions000000_024.png'

    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(images / 'x.png')
    out = tmp_path / 'out'
    genforce('invert', gan_checkpoint, images, '--encoder', tmp_path / 'a' / 'iter_6.pth',
             '--steps', 10, '--w-plus', '--vgg', vgg_weights, '--out', out)
    ws = np.load(out / 'x_ws.npy')
    assert ws.shape == (6, 16) and np.isfinite(ws).all()  # num_ws, w_dim of the tiny G
    assert Image.open(out / 'x_pair.png').size == (48, 16)  # target | encoder | projection
    assert Image.open(out / 'x_rec.png').size == (16, 16)
    assert set(np.load(out / 'x_noise.npz').files)
