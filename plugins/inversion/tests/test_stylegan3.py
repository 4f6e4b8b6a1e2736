"""Inversion of StyleGAN3 generators (no noise inputs, Fourier input): projection in W and W+
recovers images the generator made, and `genforce invert` runs on a StyleGAN3 checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from genforce_core.checkpoint import save_checkpoint
from genforce_core.cli.main import main
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS
from genforce_core.stored_config import config_to_data
from genforce_inversion.projector import noise_buffers, project


def tiny_stylegan3(kernel: int) -> dict:
    """A 16x16 StyleGAN3 generator: T with ``kernel=3``, R (radial filters) with 1."""
    return dict(type='StyleGAN3Generator', z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
                img_channels=3, mapping_kwargs=dict(num_layers=2), channel_base=128,
                channel_max=8, num_layers=4, num_critical=1, margin_size=2,
                conv_kernel=kernel, use_radial_filters=kernel == 1)


@pytest.fixture(scope='module')
def stylegan3_installed():
    pytest.importorskip('genforce_stylegan3')
    load_plugins()


def build(kernel: int) -> torch.nn.Module:
    torch.manual_seed(0)
    G = MODELS.build(tiny_stylegan3(kernel)).eval()
    with torch.no_grad():  # a non-trivial w_avg, as a trained generator has
        G.mapping.w_avg.copy_(G.mapping(torch.randn(256, 16), None)[:, 0].mean(0))
    return G


@pytest.mark.parametrize('kernel,w_plus', [(3, False), (1, True)], ids=['T-w', 'R-w+'])
def test_projection_recovers_a_stylegan3_image(stylegan3_installed, kernel, w_plus):
    G = build(kernel)
    assert noise_buffers(G) == {}  # StyleGAN3 has no noise inputs: only codes are optimised
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(5)), None)
        target = G.synthesis(ws)
    state = {k: v.clone() for k, v in G.state_dict().items()}
    result = project(G, target, None, num_steps=40, w_plus=w_plus, w_avg_samples=500)
    assert result.ws.shape == (2, G.num_ws, G.w_dim) and result.noise == {}
    end = float((result.images - target).square().mean())
    assert end * 5 <= result.mse[0], (result.mse[0], end)
    with torch.no_grad():  # the codes reproduce the reconstruction
        torch.testing.assert_close(G.synthesis(result.ws), result.images)
    if not w_plus:
        assert torch.equal(result.ws, result.ws[:, :1].expand_as(result.ws))
    # Projection changes no weight nor buffer (w_avg, magnitude EMAs, input transform).
    assert all(torch.equal(v, state[k]) for k, v in G.state_dict().items())


def test_invert_command_on_a_stylegan3_checkpoint(stylegan3_installed, vgg_weights, tmp_path):
    model_cfg = dict(type='GAN', generator=tiny_stylegan3(3), discriminator=None, ema=None)
    model = MODELS.build(model_cfg)
    checkpoint = save_checkpoint(
        dict(meta=dict(cfg=config_to_data(Config(dict(model=model_cfg)))),
             state_dict=model.state_dict()), tmp_path / 'sg3.pth')
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / 'x.png')
    out = tmp_path / 'out'
    assert main(['invert', str(checkpoint), str(tmp_path / 'x.png'), '--steps', '3',
                 '--w-plus', '--vgg', str(vgg_weights), '--device', 'cpu',
                 '--out', str(out)]) == 0
    ws = np.load(out / 'x_ws.npy')
    assert ws.shape == (6, 16) and np.isfinite(ws).all()  # num_ws = num_layers + 2
    assert not (out / 'x_noise.npz').exists()  # nothing to write: no noise maps
    assert Image.open(out / 'x_pair.png').size == (32, 16)  # target | projection
    assert Image.open(out / 'x_rec.png').size == (16, 16)
