"""StyleGAN training: configs with the official settings, style mixing over the active
layers, R1 inside the discriminator's step, the loss going down on the built-in dataset, and an
end-to-end progressive run through the CLI resumed mid fade-in."""
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
CONFIGS = ['stylegan_ffhq1024', 'stylegan_ffhq256', 'stylegan_lsun_bedroom256']
TINY_NETS = dict(
    generator=dict(z_dim=16, w_dim=16, img_resolution=16,
                   mapping_kwargs=dict(num_layers=2, layer_features=16),
                   synthesis_kwargs=dict(fmap_base=64, fmap_max=16)),
    discriminator=dict(img_resolution=16, fmap_base=64, fmap_max=16, mbstd_group_size=2))


def tiny_model(name: str = 'stylegan_ffhq256', **overrides):
    load_plugins()
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    model_cfg = cfg.model.to_dict()
    for net, values in TINY_NETS.items():
        model_cfg[net].update(values)
    model_cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    optim = GANOptimWrapperConstructor(
        {k: v for k, v in cfg.optim_wrapper.items() if k != 'constructor'})(model)
    return model, optim


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    from genforce_core.data.builtin import ensure_builtin_dataset

    return ensure_builtin_dataset(tmp_path_factory.mktemp('data'), resolution=16,
                                  num_images=64)


@pytest.mark.parametrize('name', CONFIGS)
def test_configs_have_the_official_settings(name):
    load_plugins()
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    res = cfg.train_dataloader.dataset.resolution
    assert res == (1024 if '1024' in name else 256)
    model = MODELS.build(cfg.model)
    G, D = model.generator, model.discriminator
    assert G.img_resolution == D.img_resolution == res and G.num_ws == 2 * res.bit_length() - 4
    assert G.mapping.num_layers == 8 and G.mapping.truncation_cutoff == 8
    assert G.mapping.w_avg_beta == 0.995 and G.mapping.Dense0.lrmul == 0.01
    assert model.style_mixing_prob == 0.9 and model.r1.gamma == 10 and model.d_reg is None
    assert model.ema.half_life_kimg == 10 and model.ema.rampup is None
    assert cfg.train_cfg.total_kimg == 25000 and cfg.train_dataloader.batch_size == 4
    assert cfg.train_dataloader.dataset.xflip == ('lsun' not in name)
    hook = cfg.custom_hooks[0]
    assert hook.type == 'ProgressiveGrowingHook' and hook.start_resolution == 8
    assert hook.training_kimg == hook.transition_kimg == 600
    # Official 8-GPU global minibatch {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}, 32 above.
    assert {r: b * 8 for r, b in hook.batch_size.items()} == {4: 512, 8: 256, 16: 128, 32: 64,
                                                              64: 32}
    assert hook.lr.generator == hook.lr.discriminator == {128: 0.0015, 256: 0.002, 512: 0.003,
                                                          1024: 0.003}
    optim = GANOptimWrapperConstructor(
        {k: v for k, v in cfg.optim_wrapper.items() if k != 'constructor'})(model)
    assert optim['generator'].optimizer.param_groups[0]['lr'] == 0.001  # no lazy-reg rescale
    assert optim['discriminator'].optimizer.param_groups[0]['betas'] == (0.0, 0.99)


def test_style_mixing_stays_within_the_active_layers():
    model, _ = tiny_model(style_mixing_prob=1.0)
    G = model.generator
    z, c = torch.randn(4, 16), torch.zeros(4, 0)
    G.eval()
    plain = G.mapping(z, c)
    for lod, active in ((2, 2), (1, 4), (0.5, 6), (0, 6)):
        set_lod(model, lod)
        assert model.active_layers() == active
        for seed in range(5):
            torch.manual_seed(seed)
            mixed = model.mapping_with_mixing(z, c)
            same = [torch.equal(plain[:, i], mixed[:, i]) for i in range(G.num_ws)]
            cutoff = same.index(False) if False in same else G.num_ws
            assert 1 <= cutoff < active or active == 1
            assert all(same[:cutoff]) and not any(same[cutoff:])
    with pytest.raises(ValueError, match='interval=1'):
        tiny_model(r1=dict(type='R1Penalty', gamma=10, interval=16))


def test_r1_is_part_of_the_discriminator_step(dataset):
    model, optim = tiny_model()
    set_lod(model, 1.0)
    img = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    log = model.train_step(dict(img=img), optim)
    assert {'loss_g', 'loss_d_real', 'loss_d_fake', 'loss_r1'} <= set(log)
    # One Adam step per network per iteration: R1 did not take an extra step.
    assert all(int(s['step']) == 1 for s in optim['discriminator'].optimizer.state.values())
    assert float(model.generator_ema.synthesis.lod) == 1.0


@pytest.mark.parametrize('name', CONFIGS)
def test_a_few_iterations_of_the_scaled_down_config_reduce_the_loss(name, dataset):
    from genforce_core.data import ImageDataset

    model, optim = tiny_model(name)
    images = ImageDataset(path=str(dataset), resolution=16)
    batch = torch.stack([torch.as_tensor(images[i]['img']) for i in range(16)])
    set_lod(model, 1.0)
    losses = []
    for step in range(40):
        log = model.train_step(dict(img=batch[(step % 2) * 8:][:8]), optim)
        losses.append(float(log['loss_d_real']) + float(log['loss_d_fake']))
    # From log(4) = 1.39 at chance; R1 (gamma 10) keeps D from getting far in 40 steps.
    assert sum(losses[-10:]) / 10 < min(sum(losses[:3]) / 3 - 0.1, 1.25), losses


@pytest.mark.slow
def test_progressive_run_resumed_mid_fade_in_matches_and_loads(tmp_path, dataset):
    from genforce_core import load_generator

    config = tmp_path / 'stylegan_tiny.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(REPO / 'configs' / 'stylegan_ffhq256.py')!r}]
        resolution = 16
        model = dict(generator={TINY_NETS['generator']!r},
                     discriminator={TINY_NETS['discriminator']!r})
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                pin_memory=False, dataset=dict(path={str(dataset)!r},
                                                               resolution=16))
        custom_hooks = [
            dict(type='ProgressiveGrowingHook', start_resolution=8, training_kimg=0.008,
                 transition_kimg=0.016, batch_size={{8: 8}}, lr=dict(generator={{16: 0.002}})),
            dict(type='KimgCheckpointHook', interval_kimg=10, max_keep_ckpts=5)]
    '''))

    def train(work, kimg, *extra):
        proc = subprocess.run(
            [sys.executable, '-m', 'genforce_core.cli.main', 'train', str(config),
             '--work-dir', str(work), *extra, '--cfg-options', f'train_cfg.total_kimg={kimg}'],
            capture_output=True, text=True, timeout=600, env=dict(os.environ))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # 8x8 (batch 8) for 8 images, then 16x16 (batch 4) fades in over 16 images.
    train(tmp_path / 'a', 0.04)
    train(tmp_path / 'b', 0.016)  # stops at 16 images: lod 0.5, in the middle of the fade-in
    half = load_checkpoint(tmp_path / 'b' / 'iter_2.pth')['state_dict']
    assert int(half['images_seen']) == 16
    train(tmp_path / 'b', 0.04, '--resume')
    (ckpt,) = sorted((tmp_path / 'a').glob('iter_*.pth'))
    a = load_checkpoint(ckpt)['state_dict']
    b = load_checkpoint(tmp_path / 'b' / ckpt.name)['state_dict']
    assert int(a['images_seen']) == 40 and float(a['generator.synthesis.lod']) == 0
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    G = load_generator(ckpt)
    img = G(torch.randn(2, 16), None, truncation_psi=0.7, noise_mode='const')
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
