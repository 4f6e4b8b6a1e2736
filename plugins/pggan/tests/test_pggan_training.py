"""PGGAN training: configs, the loss going down, and exact resume in the middle of a fade-in
through the real CLI with ProgressiveGrowingHook."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genforce_core.checkpoint import load_checkpoint
from genforce_core.config import load_config
from genforce_core.engine.optim import GANOptimWrapperConstructor
from genforce_core.hooks.progressive import set_lod
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS

REPO = Path(__file__).resolve().parents[3]
CONFIGS = ['pggan_celebahq1024', 'pggan_lsun_bedroom256']
TINY_NETS = dict(generator=dict(z_dim=32, img_resolution=16, fmap_base=128, fmap_max=32),
                 discriminator=dict(img_resolution=16, fmap_base=128, fmap_max=32,
                                    mbstd_group_size=2))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    from genforce_core.data.builtin import ensure_builtin_dataset

    return ensure_builtin_dataset(tmp_path_factory.mktemp('data'), resolution=16,
                                  num_images=64)


@pytest.mark.parametrize('name', CONFIGS)
def test_configs_have_the_paper_settings(name):
    load_plugins()
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    res = cfg.train_dataloader.dataset.resolution
    assert cfg.model.generator.img_resolution == res == cfg.model.discriminator.img_resolution
    hook = cfg.custom_hooks[0]
    assert hook.type == 'ProgressiveGrowingHook' and hook.start_resolution == 4
    assert hook.training_kimg == hook.transition_kimg == 800
    assert hook.batch_size == {256: 14, 512: 6, 1024: 3} and cfg.train_dataloader.batch_size == 16
    assert cfg.model.loss == dict(type='WGANGPLoss', gamma=10.0, target=1.0, drift=0.001)
    assert cfg.model.ema_beta == 0.999
    assert cfg.optim_wrapper.generator.optimizer.lr == 0.001


@pytest.mark.parametrize('name', CONFIGS)
def test_a_few_iterations_of_the_scaled_down_config_reduce_the_loss(name, dataset):
    """D's Wasserstein loss falls as it learns to tell the built-in shapes from fakes."""
    from genforce_core.data import ImageDataset

    load_plugins()
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    model_cfg = cfg.model.to_dict()
    for net, overrides in TINY_NETS.items():
        model_cfg[net].update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    optim = GANOptimWrapperConstructor(
        {k: v for k, v in cfg.optim_wrapper.items() if k != 'constructor'})(model)
    images = ImageDataset(path=str(dataset), resolution=16)
    batch = torch.stack([torch.as_tensor(images[i]['img']) for i in range(16)])
    set_lod(model, 1.0)  # 8x8, as after the first fade-in
    losses = []
    for step in range(40):
        log = model.train_step(dict(img=batch[(step % 2) * 8:][:8]), optim)
        losses.append(float(log['loss_d_wgan']) + float(log['loss_gp']))
    assert sum(losses[-10:]) / 10 < sum(losses[:5]) / 5 - 0.5, losses
    assert float(model.generator_ema.lod) == 1.0


def train(config: Path, work: Path, kimg: float, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, '-m', 'genforce_core.cli.main', 'train', str(config), '--work-dir',
         str(work), *extra, '--cfg-options', f'train_cfg.total_kimg={kimg}'],
        capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_resume_in_the_middle_of_a_fade_in_continues_exactly(tmp_path, dataset):
    # 4x4 for 16 images, then fade-ins and stabilisations of 16 images each; per-GPU batch 8
    # at 4x4, 6 at 8x8, 4 at 16x16. Half-run: 0 -> 8 -> 16 -> 24 -> 30 images; the resumed run
    # starts in the middle of the 8x8 fade-in (lod 1.125 at 30 images).
    config = tmp_path / 'pggan_tiny.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(REPO / 'configs' / 'pggan_celebahq1024.py')!r}]
        resolution = 16
        model = dict(generator={TINY_NETS['generator']!r},
                     discriminator={TINY_NETS['discriminator']!r})
        train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                                pin_memory=False, dataset=dict(path={str(dataset)!r},
                                                               resolution=16))
        custom_hooks = [
            dict(type='ProgressiveGrowingHook', start_resolution=4, training_kimg=0.016,
                 transition_kimg=0.016, batch_size={{8: 6, 16: 4}},
                 lr=dict(generator={{16: 0.002}})),
            dict(type='KimgCheckpointHook', interval_kimg=10, max_keep_ckpts=5)]
    '''))
    train(config, tmp_path / 'a', 0.1)
    train(config, tmp_path / 'b', 0.03)
    half = load_checkpoint(tmp_path / 'b' / 'iter_4.pth')['state_dict']
    assert int(half['images_seen']) == 30
    assert float(half['generator.lod']) == 1.5  # the last iteration started at 24 images
    log = train(config, tmp_path / 'b', 0.1, '--resume')
    assert 'per-GPU batch size 6' in log and 'per-GPU batch size 4' in log
    ckpts = sorted((tmp_path / 'a').glob('iter_*.pth'))
    assert len(ckpts) == 1
    a = load_checkpoint(ckpts[0])
    b = load_checkpoint(tmp_path / 'b' / ckpts[0].name)
    sa, sb = a['state_dict'], b['state_dict']
    assert int(sa['images_seen']) >= 100 and float(sa['generator.lod']) < 1
    assert float(sa['generator_ema.lod']) == float(sa['data_preprocessor.lod']) \
        == float(sa['discriminator.lod']) == float(sa['generator.lod'])
    assert sa.keys() == sb.keys()
    assert [k for k in sa if not torch.equal(sa[k], sb[k])] == []
    for name in ('generator', 'discriminator'):
        oa, ob = a['optimizer'][name], b['optimizer'][name]
        assert oa['param_groups'] == ob['param_groups']
        assert oa['state'].keys() == ob['state'].keys() and oa['state']
        assert all(torch.equal(torch.as_tensor(oa['state'][i][k]),
                               torch.as_tensor(ob['state'][i][k]))
                   for i in oa['state'] for k in oa['state'][i])
    assert a['optimizer']['generator']['param_groups'][0]['lr'] == pytest.approx(0.002)
    assert a['optimizer']['discriminator']['param_groups'][0]['lr'] == pytest.approx(0.001)


def test_generator_ema_is_a_per_step_average():
    load_plugins()
    model = MODELS.build(dict(type='PGGAN', generator=dict(type='PGGANGenerator',
                                                           **TINY_NETS['generator']),
                              discriminator=dict(type='PGGANDiscriminator',
                                                 **TINY_NETS['discriminator']),
                              ema_beta=0.5))
    before = [p.clone() for p in model.generator_ema.parameters()]
    for p in model.generator.parameters():
        p.data.add_(1.0)
    set_lod(model.generator, 0.75)
    assert model.ema.update(model.generator_ema, model.generator, 8, 8) == 0.5
    assert all(torch.allclose(e, b + 0.5) for e, b in zip(model.generator_ema.parameters(),
                                                          before))
    assert float(model.generator_ema.lod) == 0.75
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(dict(type='PGGAN', generator=model.generator,
                          discriminator=model.discriminator, ema=dict(half_life_kimg=1)))
