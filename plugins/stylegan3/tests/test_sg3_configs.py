"""The packaged StyleGAN3 configs: every one loads and passes the training checks with the
official hyperparameters, and the tiny shapes32 one trains."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genforce_core.config import load_config, packaged_configs
from genforce_core.validate import validate_config

REPO = Path(__file__).resolve().parents[3]
PLUGIN_CONFIGS = Path(__file__).resolve().parents[1] / 'genforce_stylegan3' / 'configs'
# name: (model type, G channel base, G channel max, conv kernel, R1 gamma, blur sigma,
#        total kimg), as in NVIDIA's docs/configs.md and train.py (MetFaces-U: fine-tuning,
#        where train.py turns the blur off)
EXPECTED = {
    'stylegan3t_ffhq1024': ('StyleGAN3', 32768, 512, 3, 32.8, 0, 25000),
    'stylegan3r_ffhq1024': ('StyleGAN3', 65536, 1024, 1, 32.8, 10, 25000),
    'stylegan3t_afhqv2512': ('StyleGAN3ADA', 32768, 512, 3, 8.2, 0, 25000),
    'stylegan3r_afhqv2512': ('StyleGAN3ADA', 65536, 1024, 1, 16.4, 10, 25000),
    'stylegan3t_metfacesu1024': ('StyleGAN3ADA', 32768, 512, 3, 6.6, 0, 5000),
    'stylegan3r_metfacesu1024': ('StyleGAN3ADA', 65536, 1024, 1, 6.6, 0, 5000),
    'stylegan3t_cifar10': ('StyleGAN3', 16384, 512, 3, 0.01, 0, 100000),
    'stylegan3t_shapes32': ('StyleGAN3', 1024, 32, 3, 2, 0, 60),
}


def test_the_plugin_ships_exactly_these_configs_each_linked_from_the_repository():
    shipped = {c.name: c for c in packaged_configs() if c.name.startswith('stylegan3')}
    assert set(shipped) == set(EXPECTED)
    for name, entry in shipped.items():
        assert entry.path.resolve().parent == PLUGIN_CONFIGS.resolve()
        assert (REPO / 'configs' / f'{name}.py').resolve() == entry.path.resolve()


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_every_config_validates_with_the_official_settings(name):
    cfg = load_config(name, {'train_dataloader.dataset.path': 'builtin:shapes32'})
    validate_config(cfg, name, train=True)
    model, G = cfg.model, cfg.model.generator
    kind, base, cmax, kernel, gamma, sigma, kimg = EXPECTED[name]
    assert (model.type, G.channel_base, G.channel_max, G.conv_kernel) == (kind, base, cmax,
                                                                          kernel)
    assert G.use_radial_filters is (kernel == 1)
    assert (model.d_reg.gamma, model.blur_init_sigma, cfg.train_cfg.total_kimg) == (
        gamma, sigma, kimg)
    assert G.mapping_kwargs.num_layers == 2
    assert model.g_reg is None and model.style_mixing_prob == 0
    if name.endswith(('1024', '512')):  # the official runs: batch 32 on 8 GPUs
        assert cfg.train_dataloader.batch_size == 4
        opt = cfg.optim_wrapper
        assert (opt.generator.optimizer.lr, opt.discriminator.optimizer.lr) == (0.0025, 0.002)
        assert model.ema.half_life_kimg == 10 and model.blur_fade_kimg == 200
        assert G.magnitude_ema_beta == pytest.approx(0.5 ** (32 / 20000))
        assert model.discriminator.channel_base == 32768
        assert model.discriminator.channel_max == 512
        assert G.num_fp16_res == model.discriminator.num_fp16_res == 4
        assert G.conv_clamp == model.discriminator.conv_clamp == 256
        fine_tuning = 'metfacesu' in name  # train.py --resume: faster ADA, no EMA ramp-up
        assert model.ema.rampup == (None if fine_tuning else 0.05)
        if model.type == 'StyleGAN3ADA':
            assert model.ada_kimg == (100 if fine_tuning else 500)


@pytest.mark.parametrize('name', sorted(n for n in EXPECTED if n.endswith(('1024', '512'))))
def test_the_official_configs_build_the_official_adam_settings(name):
    """G has no regularization phase in the official StyleGAN3 runs (G_reg_interval None):
    its Adam takes lr 0.0025 and betas (0, 0.99) as given; D's are rescaled for R1 every 16
    steps (lr 0.002 * 16/17, beta2 0.99 ** (16/17))."""
    from genforce_core.engine.optim import GANOptimWrapperConstructor

    cfg = load_config(name)
    wrapper_cfg = cfg.optim_wrapper.to_dict()
    assert wrapper_cfg.pop('constructor') == 'GANOptimWrapperConstructor'
    optim = GANOptimWrapperConstructor(wrapper_cfg)(_tiny_model(cfg))
    g = optim['generator'].optimizer.param_groups[0]
    d = optim['discriminator'].optimizer.param_groups[0]
    assert (g['lr'], tuple(g['betas'])) == (0.0025, (0.0, 0.99))
    assert d['lr'] == pytest.approx(0.002 * 16 / 17)
    assert d['betas'][1] == pytest.approx(0.99 ** (16 / 17))


def _tiny_model(cfg):
    """The config's model with tiny networks (everything else as configured)."""
    from genforce_core.api import MODELS, load_plugins
    from genforce_stylegan3 import plugin

    load_plugins()
    tiny = plugin.genforce_test_models()[1]['model']
    model_cfg = cfg.model.to_dict()
    model_cfg['generator'] = tiny['generator']  # replace, not merge
    model_cfg['discriminator'] = tiny['discriminator']
    return MODELS.build(model_cfg)


@pytest.mark.slow
def test_the_shapes32_config_trains_a_few_iterations(tmp_path):
    from genforce_core.data.builtin import ensure_builtin_dataset

    data = ensure_builtin_dataset(tmp_path, resolution=32, num_images=32)
    options = [f'train_dataloader.dataset.path={data}', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False', 'train_cfg.total_kimg=0.024',
               'default_hooks.logger.interval=1']
    proc = subprocess.run(
        [sys.executable, '-m', 'genforce_core.cli.main', 'train', 'stylegan3t_shapes32',
         '--work-dir', str(tmp_path / 'work'), '--cfg-options', *options],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'loss_d_real' in out and 'kimg' in out
    assert list((tmp_path / 'work').rglob('*.pth')), 'no checkpoint written'


@pytest.mark.parametrize('name', ['stylegan3r_afhqv2512', 'stylegan3t_metfacesu1024'])
def test_the_ada_configs_build_and_train_one_step(name):
    """The configs' model arguments (ADA, transfer, blur) build, with tiny networks."""
    import torch

    cfg = load_config(name)
    torch.manual_seed(0)
    model = _tiny_model(cfg).train()
    assert type(model).__name__ == 'StyleGAN3ADA'
    assert model.ada_kimg == cfg.model.ada_kimg
    assert model.blur_sigma == cfg.model.blur_init_sigma
    real, c = torch.randn(4, 3, 16, 16), torch.zeros(4, 0)
    losses = model._d_main_losses(real, c)
    losses.update(model.d_reg(model, real, c))
    assert all(torch.isfinite(v).all() for k, v in losses.items() if k.startswith('loss'))
    assert int(model.ada_stats[1]) == 4  # the real logits' signs were collected for ADA


def _train(config: Path, work: Path, kimg: float, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, '-m', 'genforce_core.cli.main', 'train', str(config),
         '--work-dir', str(work), *extra, '--cfg-options', f'train_cfg.total_kimg={kimg}'],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


def _same(a, b, where: str = 'state') -> None:
    import torch

    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f'{where}.{key}')
    elif torch.is_tensor(a):
        assert torch.equal(a, b), f'{where} differs'
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a} != {b}'


@pytest.mark.slow
def test_training_with_the_input_blur_resumes_exactly(tmp_path):
    """4 iterations of batch 8 while the blur fades (sigma 4 -> 4/3), straight versus 2 +
    resume + 2: the same weights, optimizer states and counters."""
    from genforce_core.checkpoint import load_checkpoint
    from genforce_core.data.builtin import ensure_builtin_dataset

    data = ensure_builtin_dataset(tmp_path, resolution=32, num_images=32)
    config = tmp_path / 'sg3_blur_resume.py'
    config.write_text(
        f'_base_ = [{str(PLUGIN_CONFIGS / "stylegan3t_shapes32.py")!r}]\n'
        'model = dict(blur_init_sigma=4.0, blur_fade_kimg=0.048,\n'
        '             generator=dict(channel_base=256, channel_max=8, num_layers=4))\n'
        'train_dataloader = dict(num_workers=0, persistent_workers=False, pin_memory=False,\n'
        f'                        dataset=dict(path={str(data)!r}))\n'
        "default_hooks = dict(checkpoint=dict(_delete_=True, type='CheckpointHook', interval=2,\n"
        '                                     by_epoch=False, max_keep_ckpts=10))\n'
        'custom_hooks = []\n')
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    _train(config, straight, 0.032)
    _train(config, split, 0.016)
    out = _train(config, split, 0.032, '--resume')
    assert 'iter_2.pth' in out
    a, b = (load_checkpoint(path / 'iter_4.pth') for path in (straight, split))
    assert int(a['state_dict']['images_seen']) == 32
    _same(a['state_dict'], b['state_dict'], 'state_dict')
    _same(a['optimizer'], b['optimizer'], 'optimizer')
