"""Behaviour of the StyleGAN3 networks on tiny random instances (no reference data)."""
from __future__ import annotations

import pytest
import torch

from genforce_stylegan3.networks import Generator

TINY = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
            channel_base=128, channel_max=8, num_layers=4, num_critical=1, margin_size=2)


def _generator(**overrides):
    torch.manual_seed(0)
    return Generator(**{**TINY, **overrides}).eval()


@pytest.mark.parametrize('radial', [False, True])
def test_shapes_and_determinism(radial):
    G = _generator(conv_kernel=1 if radial else 3, use_radial_filters=radial)
    z = torch.randn(2, 8)
    with torch.no_grad():
        img = G(z)
        assert img.shape == (2, 3, 16, 16)
        assert torch.equal(G(z), img)
        # Independent of the rest of the batch (up to the summation order of the convolution).
        assert torch.allclose(G(z[:1]), img[:1], rtol=0, atol=1e-6)
    assert G.num_ws == 6 and G.mapping(z, None).shape == (2, 6, 8)


def test_input_transform_translates_the_features():
    # Moving the input by a whole pixel (1 / sampling_rate) shifts the Fourier features by one
    # pixel: the transform maps output coordinates to input coordinates, x -> x + t.
    G = _generator()
    inp = G.synthesis.input
    w = torch.randn(1, 8)
    with torch.no_grad():
        base = inp(w)
        inp.transform[0, 2] = 1 / inp.sampling_rate
        moved = inp(w)
    assert torch.allclose(moved[..., :-1], base[..., 1:], atol=1e-5)
    assert not torch.allclose(moved, base, atol=1e-3)


def test_update_emas_moves_only_when_asked():
    G = _generator().train()
    z = torch.randn(4, 8)
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    with torch.no_grad():
        G(z)
        assert layer.magnitude_ema.item() == 1 and G.mapping.w_avg.abs().sum() == 0
        G(z, update_emas=True)
    assert layer.magnitude_ema.item() != 1 and G.mapping.w_avg.abs().sum() > 0


def test_bad_inputs_are_refused():
    G = _generator()
    with pytest.raises(ValueError, match=r'ws must have shape \[N, 6, 8\]'):
        G.synthesis(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match='num_fp16_res'):
        Generator(**TINY, num_fp16_res=4)
