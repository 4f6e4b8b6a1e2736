"""StyleGAN2 training pieces: style mixing, path-length penalty, lazy phases, configs,
and an end-to-end run through the CLI with resume and load_generator."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genforce_core.config import load_config
from genforce_core.engine.optim import GANOptimWrapperConstructor
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS

REPO = Path(__file__).resolve().parents[3]
TINY_G = dict(type='StyleGAN2Generator', z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
              img_channels=3, mapping_kwargs=dict(num_layers=2),
              synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
TINY_D = dict(type='StyleGAN2Discriminator', c_dim=0, img_resolution=16, img_channels=3,
              channel_base=256, channel_max=16, num_fp16_res=0,
              epilogue_kwargs=dict(mbstd_group_size=2))


def tiny_model(**kwargs):
    load_plugins()
    torch.manual_seed(0)
    cfg = dict(type='StyleGAN2', generator=TINY_G, discriminator=TINY_D,
               d_reg=dict(type='R1Penalty', gamma=1, interval=2),
               g_reg=dict(type='PathLengthPenalty', interval=2), ema=dict(half_life_kimg=0.01))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_style_mixing_swaps_the_layers_after_a_cutoff():
    model = tiny_model(style_mixing_prob=1.0)
    G = model.generator
    z, c = torch.randn(4, 16), torch.zeros(4, 0)
    G.eval()
    plain = G.mapping(z, c)
    torch.manual_seed(1)
    mixed = model.mapping_with_mixing(z, c)
    same = [torch.equal(plain[:, i], mixed[:, i]) for i in range(G.num_ws)]
    cutoff = same.index(False)
    assert cutoff >= 1 and not any(same[cutoff:]) and all(same[:cutoff])
    assert torch.equal(tiny_model(style_mixing_prob=0).mapping_with_mixing(z, c),
                       tiny_model(style_mixing_prob=0).generator.eval().mapping(z, c))


@pytest.mark.parametrize('c_dim, group, batch', [(0, 2, 8), (3, 4, 8), (0, 4, 4)])
def test_fakes_and_reals_in_one_discriminator_call_score_as_two_calls(c_dim, group, batch):
    model = tiny_model(discriminator=dict(TINY_D, c_dim=c_dim,
                                          epilogue_kwargs=dict(mbstd_group_size=group)))
    fake, real = torch.randn(batch, 3, 16, 16), torch.randn(batch, 3, 16, 16)
    fake_c = torch.eye(max(c_dim, 1))[torch.randint(max(c_dim, 1), (batch,))][:, :c_dim]
    real_c = torch.eye(max(c_dim, 1))[torch.randint(max(c_dim, 1), (batch,))][:, :c_dim]
    calls = []
    model.discriminator.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    paired = model.discriminate_pair(fake, fake_c, real, real_c)
    separate = model.discriminate(fake, fake_c), model.discriminate(real, real_c)
    assert calls == [2 * batch, batch, batch]
    for one_call, own_call in zip(paired, separate):
        torch.testing.assert_close(one_call, own_call, rtol=1e-5, atol=1e-6)
    # The same gradients for the discriminator (a mixed-up group would change them).
    grads = []
    for fake_logits, real_logits in (paired, separate):
        model.discriminator.zero_grad()
        (fake_logits.square().sum() + real_logits.sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.discriminator.parameters()
                                if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_one_discriminator_call_falls_back_to_two_when_groups_would_mix():
    model = tiny_model(discriminator=dict(TINY_D, epilogue_kwargs=dict(mbstd_group_size=None)))
    calls = []
    model.discriminator.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    model.discriminate_pair(torch.randn(4, 3, 16, 16), torch.zeros(4, 0),
                            torch.randn(4, 3, 16, 16), torch.zeros(4, 0))
    assert calls == [4, 4]  # a group of the whole batch: fakes and reals must stay apart


def test_phases_and_path_length_mean_in_the_state():
    model = tiny_model()
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0, 0.99))),
        discriminator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0, 0.99)))))(model)
    assert optim['generator'].optimizer.param_groups[0]['lr'] == pytest.approx(0.002 * 2 / 3)
    data = dict(img=torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
                label=torch.zeros(4, 0))
    logs = [model.train_step(data, optim) for _ in range(3)]
    assert ['loss_pl' in log for log in logs] == [True, False, True]
    assert ['loss_r1' in log for log in logs] == [True, False, True]
    assert float(model.g_reg.pl_mean) > 0
    assert 'g_reg.pl_mean' in model.state_dict()
    assert all(torch.isfinite(torch.as_tensor(v)).all() for log in logs for v in log.values())


@pytest.mark.parametrize('name', ['stylegan2_ffhq', 'stylegan2_ffhq1024', 'stylegan2_ffhq256',
                                  'stylegan2_lsun_church256', 'stylegan2_cifar10',
                                  'demo'])
def test_configs_build_with_the_official_settings(name):
    load_plugins()
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    res = cfg.train_dataloader.dataset.resolution
    model = MODELS.build(cfg.model)
    assert model.generator.img_resolution == res
    optim = GANOptimWrapperConstructor(
        {k: v for k, v in cfg.optim_wrapper.items() if k != 'constructor'})(model)
    lr = cfg.optim_wrapper.generator.optimizer.lr
    g_ratio = 4 / 5  # official G_reg_interval is 4 even where path length is disabled (cifar)
    assert optim['generator'].optimizer.param_groups[0]['lr'] == pytest.approx(lr * g_ratio)
    assert optim['discriminator'].optimizer.param_groups[0]['lr'] == pytest.approx(lr * 16 / 17)
    if name == 'stylegan2_cifar10':
        assert model.generator.c_dim == 10 and model.style_mixing_prob == 0
        assert model.g_reg is None and model.d_reg.gamma == 0.01


@pytest.mark.slow
def test_train_resume_and_load_generator(tmp_path):
    from genforce_core import load_generator
    from genforce_core.data.builtin import ensure_builtin_dataset

    data = ensure_builtin_dataset(tmp_path, resolution=16, num_images=32)
    config = tmp_path / 'sg2_tiny.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(REPO / 'configs' / 'stylegan2_ffhq256.py')!r}]
        model = dict(generator={TINY_G!r}, discriminator={TINY_D!r},
                     d_reg=dict(interval=2), g_reg=dict(interval=2))
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                pin_memory=False, dataset=dict(path={str(data)!r}, resolution=16))
        custom_hooks = [dict(type='KimgCheckpointHook', interval_kimg=0.012, max_keep_ckpts=5)]
    '''))

    def train(work, kimg, *extra):
        proc = subprocess.run(
            [sys.executable, '-m', 'genforce_core.cli.main', 'train', str(config),
             '--work-dir', str(work), *extra, '--cfg-options', f'train_cfg.total_kimg={kimg}'],
            capture_output=True, text=True, timeout=600, env=dict(os.environ))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    train(tmp_path / 'a', 0.024)
    train(tmp_path / 'b', 0.012)
    train(tmp_path / 'b', 0.024, '--resume')
    from genforce_core.checkpoint import load_checkpoint
    a = load_checkpoint(tmp_path / 'a' / 'iter_6.pth')['state_dict']
    b = load_checkpoint(tmp_path / 'b' / 'iter_6.pth')['state_dict']
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]

    G = load_generator(tmp_path / 'a' / 'iter_6.pth')
    assert not G.training and G.img_resolution == 16
    img = G(torch.randn(2, 16), None, noise_mode='const')
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
