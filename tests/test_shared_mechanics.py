"""Family mechanics written once in the core: style mixing, the progressive-growing layers, the
lazy-regularization ratio that optimizers and progressive growing share, the D main phase's
extension point and the grid layout that sample grids and ``genforce synthesize`` share."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genforce_core.api import (
    GAN,
    make_grid,
    minibatch_stddev,
    mix_styles,
    split_lod,
)
from genforce_core.engine.optim import GANOptimWrapperConstructor, regularization_ratio


class CountingMapping:
    """``mapping(z, c)`` returning ``ws`` whose every layer holds ``z[:, 0]``."""

    def __init__(self, num_ws: int):
        self.num_ws = num_ws
        self.calls: list[dict] = []

    def __call__(self, z, c, **kwargs):
        self.calls.append(kwargs)
        return z[:, :1, None].expand(-1, self.num_ws, 4).clone()


def test_mix_styles_without_mixing_is_the_mapping():
    mapping = CountingMapping(6)
    z = torch.randn(3, 8)
    assert torch.equal(mix_styles(mapping, z, None, prob=0), mapping(z, None))


def test_mix_styles_takes_the_layers_after_the_cutoff_from_a_second_latent():
    mapping = CountingMapping(6)
    z = torch.randn(3, 8)
    torch.manual_seed(1)
    ws = mix_styles(mapping, z, None, prob=1)
    assert mapping.calls == [{}, {'skip_w_avg_update': True}]
    torch.manual_seed(1)
    cutoff = int(torch.randint(1, 6, []))  # the official draw order: cutoff first
    assert torch.equal(ws[:, :cutoff], mapping(z, None)[:, :cutoff])
    assert not torch.equal(ws[:, cutoff:], mapping(z, None)[:, cutoff:])
    # A growing network mixes only the layers in use; one layer leaves nothing to mix.
    assert torch.equal(mix_styles(mapping, z, None, prob=1, num_layers=1), mapping(z, None))


def test_minibatch_stddev_matches_its_definition():
    x = torch.randn(8, 6, 3, 3)
    out = minibatch_stddev(x, group_size=4, num_features=2)
    assert out.shape == (8, 8, 3, 3) and torch.equal(out[:, :6], x)
    groups = x.reshape(4, 2, 2, 3, 3, 3)  # sample i is in group i % 2
    std = groups.var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=[2, 3, 4])  # [2, 2]
    for i in range(8):
        assert torch.allclose(out[i, 6:, 0, 0], std[i % 2], atol=1e-6)
    with pytest.raises(ValueError, match='not divisible'):
        minibatch_stddev(torch.randn(6, 4, 2, 2), group_size=4)


def test_split_lod_clamps_and_splits():
    assert split_lod(2.25, 3) == (2, 0.25)
    assert split_lod(-1, 3) == (0, 0.0) and split_lod(7.5, 3) == (3, 0.0)


class TinyModel(nn.Module):
    def __init__(self, interval):
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Linear(2, 1)
        self.g_reg = type('Reg', (), {'interval': interval})()


def test_the_ratio_progressive_growing_uses_is_the_one_the_optimizer_got():
    adam = dict(type='Adam', lr=0.01, betas=(0.0, 0.99))
    model = TinyModel(interval=4)
    cfg = dict(generator=dict(optimizer=adam), discriminator=dict(optimizer=adam))
    wrappers = GANOptimWrapperConstructor(cfg)(model)
    assert regularization_ratio(wrappers['generator'], model, 'generator') == 0.8
    assert wrappers['generator'].optimizer.param_groups[0]['lr'] == pytest.approx(0.008)
    # reg_interval=None in the optimizer config switches the rescaling off: the learning
    # rates that progressive growing sets must not bring it back.
    cfg['generator']['reg_interval'] = None
    wrappers = GANOptimWrapperConstructor(cfg)(model)
    assert regularization_ratio(wrappers['generator'], model, 'generator') == 1.0
    assert wrappers['generator'].optimizer.param_groups[0]['lr'] == pytest.approx(0.01)
    assert regularization_ratio(object(), model, 'generator') == 0.8  # another constructor


class TinyG(nn.Module):
    z_dim, c_dim = 4, 0

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 3 * 4 * 4)

    def forward(self, z, c=None, **kwargs):
        return self.net(z).reshape(-1, 3, 4, 4)


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3 * 4 * 4, 1)

    def forward(self, img, c=None):
        return self.net(img.flatten(1))


def test_extra_d_losses_join_the_main_phase():
    class Extra(GAN):
        def extra_d_losses(self, real_img, real_c, fake_img, real_logits):
            assert not fake_img.requires_grad
            return {'loss_extra': real_logits.mean() * 0, 'extra_stat': 1.0}

    model = Extra(generator=TinyG(), discriminator=TinyD())
    losses = model._d_main_losses(torch.randn(2, 3, 4, 4), torch.zeros(2, 0))
    keys = list(losses)
    assert 'loss_extra' in keys and losses['extra_stat'] == 1.0
    assert keys.index('loss_extra') < keys.index('score_real')


def test_synthesize_grid_has_the_sample_grid_layout(tmp_path):
    from PIL import Image

    from genforce_core.cli.synthesize import save_images

    images = torch.randint(0, 255, (5, 4, 6, 3), dtype=torch.uint8)  # NHWC
    save_images(images, list(range(5)), tmp_path, grid=True)
    grid = np.asarray(Image.open(tmp_path / 'grid.png'))
    assert np.array_equal(grid, make_grid(images.permute(0, 3, 1, 2)))
    grey = images[..., :1]
    save_images(grey, list(range(5)), tmp_path / 'grey', grid=True)
    grid = np.asarray(Image.open(tmp_path / 'grey' / 'grid.png'))
    assert grid.shape == (8, 18)  # 5 images as 2 rows x 3 columns, kept grey
    assert np.array_equal(grid, make_grid(grey.permute(0, 3, 1, 2))[..., 0])
