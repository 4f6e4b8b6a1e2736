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
    with pytest.raises(ValueError, match='num_fp16_res must be >= 0, got -1'):
        Generator(**TINY, num_fp16_res=-1)


def _layers(G):
    return [getattr(G.synthesis, name) for name in G.synthesis.layer_names]


@pytest.mark.parametrize('num_fp16_res', [0, 1, 2, 4])
def test_float16_layers_follow_the_official_rule(num_fp16_res):
    """A layer computes in float16 when its output sampling rate times 2 ** num_fp16_res
    exceeds the resolution: the top sampling rates, ToRGB included."""
    G = _generator(num_fp16_res=num_fp16_res)
    flags = [layer.use_fp16 for layer in _layers(G)]
    rates = [layer.spec.out_sampling_rate for layer in _layers(G)]
    assert flags == [rate * 2 ** num_fp16_res > 16 for rate in rates]
    assert any(flags) is (num_fp16_res > 0) and (not flags[-1]) is (num_fp16_res == 0)
    assert all(layer.conv_clamp == 256 for layer in _layers(G))  # ToRGB clamps too


def test_float16_layers_run_in_float32_on_a_cpu():
    G = _generator(num_fp16_res=4)
    z = torch.randn(2, 8)
    with torch.no_grad():
        img = G(z)
        assert img.dtype == torch.float32 and torch.equal(img, G(z, force_fp32=True))


def _record_dtypes(G):
    dtypes = []
    for layer in _layers(G):
        layer.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    return dtypes


def test_mixed_precision_matches_float32(monkeypatch):
    """The float16 path itself (forced on the CPU): float16 layers hand float16 on, the image
    is float32 and within float16 rounding of the float32 one, gradients too; force_fp32
    turns it off."""
    from genforce_stylegan3.networks import generator

    monkeypatch.setattr(generator, 'half_precision_on', lambda device: True)
    G = _generator(num_fp16_res=1, img_resolution=32, channel_base=512, channel_max=32)
    dtypes = _record_dtypes(G)
    ws = G.mapping(torch.randn(4, 8), None).detach().requires_grad_(True)
    img = G.synthesis(ws)
    assert img.dtype == torch.float32
    expected = [torch.float16 if layer.use_fp16 else torch.float32 for layer in _layers(G)]
    assert dtypes == expected and torch.float16 in expected and torch.float32 in expected
    ws32 = ws.detach().clone().requires_grad_(True)
    img32 = G.synthesis(ws32, force_fp32=True)
    assert dtypes[len(expected):] == [torch.float32] * len(expected)
    scale = img32.abs().max()
    assert (img - img32).abs().max() < 2e-2 * scale
    assert not torch.allclose(img, img32, rtol=0, atol=1e-6)  # float16 did run
    grad, grad32 = (torch.autograd.grad(i.square().sum(), w)[0] for i, w in ((img, ws),
                                                                           (img32, ws32)))
    assert torch.isfinite(grad).all()
    assert (grad - grad32).norm() < 5e-2 * grad32.norm()


def test_float16_modulated_convolution_does_not_overflow():
    """Large positive inputs over a wide fan-in: the float32 sums would exceed float16's
    65504 unless the weights are normalized first; the result matches float32."""
    from genforce_stylegan3.networks.generator import modulated_conv2d

    torch.manual_seed(0)
    x = torch.full([2, 512, 6, 6], 100.0)
    weight = torch.rand(8, 512, 3, 3) + 0.5
    styles = torch.rand(2, 512) + 0.5
    gain = torch.tensor(1.0)
    out32 = modulated_conv2d(x, weight, styles, padding=2, demodulate=True, input_gain=gain)
    out16 = modulated_conv2d(x.half(), weight, styles, padding=2, demodulate=True,
                             input_gain=gain)
    assert out32.abs().max() > 1000 and out16.dtype == torch.float16
    assert torch.isfinite(out16).all()
    torch.testing.assert_close(out16.float(), out32, rtol=1e-2, atol=1e-2 * out32.abs().max())
