"""Fixtures of the inversion tests: a tiny random StyleGAN2, a GAN checkpoint of it, and a
VGG16 weights file with random values in torchvision's layout."""
from __future__ import annotations

import pytest
import torch
from mmengine.config import Config

from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS
from genforce_core.stored_config import config_to_data


def tiny_networks(res: int = 16) -> tuple[dict, dict]:
    G = dict(type='StyleGAN2Generator', z_dim=16, c_dim=0, w_dim=16, img_resolution=res,
             img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
    D = dict(type='StyleGAN2Discriminator', c_dim=0, img_resolution=res, img_channels=3,
             channel_base=256, channel_max=16, num_fp16_res=0,
             epilogue_kwargs=dict(mbstd_group_size=2))
    return G, D


TINY_ENCODER = dict(type='ResNetStyleEncoder', base_channels=16, max_channels=32,
                    fpn_channels=32, blocks_per_stage=1)


@pytest.fixture(scope='session')
def stylegan2_installed():
    pytest.importorskip('genforce_stylegan2')
    load_plugins()


@pytest.fixture
def tiny_generator(stylegan2_installed):
    def build(res: int = 16, seed: int = 0):
        torch.manual_seed(seed)
        return MODELS.build(tiny_networks(res)[0]).eval()
    return build


@pytest.fixture(scope='session')
def vgg_weights(tmp_path_factory):
    """A torchvision-style VGG16 state dict (all 13 convs + a classifier) with random values."""
    from genforce_inversion.perceptual import VGG16Features

    torch.manual_seed(0)
    state = VGG16Features(last_layer='conv5_3', pretrained=False).state_dict()
    state['classifier.0.weight'] = torch.randn(8, 8)  # ignored, as torchvision's classifier
    path = tmp_path_factory.mktemp('vgg') / 'vgg16-397923af.pth'
    torch.save(state, path)
    return path


@pytest.fixture(scope='session')
def gan_checkpoint(tmp_path_factory, stylegan2_installed):
    """A genforce checkpoint of a tiny random StyleGAN2 at 16x16 (config in meta.cfg)."""
    G, D = tiny_networks(16)
    cfg = dict(type='StyleGAN2', generator=G, discriminator=D,
               d_reg=dict(type='R1Penalty', gamma=1, interval=2),
               g_reg=dict(type='PathLengthPenalty', interval=2), ema=dict(half_life_kimg=0.01))
    torch.manual_seed(3)
    model = MODELS.build(cfg)
    with torch.no_grad():  # give w_avg a non-trivial value, as a trained generator has
        model.generator_ema.mapping.w_avg.copy_(
            model.generator_ema.mapping(torch.randn(256, 16), None)[:, 0].mean(0))
    path = tmp_path_factory.mktemp('gan') / 'tiny_stylegan2.pth'
    torch.save(dict(meta=dict(cfg=config_to_data(Config(dict(model=cfg)))),
                    state_dict=model.state_dict()), path)
    return path


@pytest.fixture
def tiny(stylegan2_installed):
    """Configs of the tiny networks: ``tiny.networks(res) -> (G, D)``, ``tiny.encoder``."""
    from types import SimpleNamespace

    return SimpleNamespace(networks=tiny_networks, encoder=dict(TINY_ENCODER))
