"""On the CPU, Conv2dLayer folds its activation gain into the weight and bias and its bias into
the convolution, and SynthesisLayer its gain into the demodulation, noise strength and bias:
the same outputs and gradients as bias_act after the convolution, up to float rounding, for
every resampling path, clamping, noise mode and gain."""
from __future__ import annotations

import pytest
import torch

from genforce_stylegan2.networks.layers import Conv2dLayer
from genforce_stylegan2.networks.synthesis import SynthesisLayer, modulated_conv2d
from genforce_stylegan2.ops.bias_act import bias_act
from genforce_stylegan2.ops.conv2d_resample import conv2d_resample


def unfolded(layer: Conv2dLayer, x: torch.Tensor, gain: float) -> torch.Tensor:
    """The layer as bias_act after a bias-free convolution (the CUDA path's formula)."""
    w = layer.weight * layer.weight_gain
    x = conv2d_resample(x, w, f=layer.resample_filter, up=layer.up, down=layer.down,
                        padding=layer.padding, flip_weight=(layer.up == 1))
    clamp = layer.conv_clamp * gain if layer.conv_clamp is not None else None
    return bias_act(x, layer.bias, act=layer.activation, gain=layer.act_gain * gain,
                    clamp=clamp)


@pytest.mark.parametrize('kernel, up, down, activation, bias, clamp, gain', [
    (3, 1, 1, 'lrelu', True, None, 1.0), (3, 1, 2, 'lrelu', True, None, 0.5 ** 0.5),
    (1, 1, 2, 'linear', False, None, 0.5 ** 0.5), (3, 2, 1, 'lrelu', True, 0.5, 1.0),
    (1, 2, 1, 'linear', True, None, 1.0), (1, 1, 1, 'relu', True, 0.3, 2.0),
    (3, 1, 1, 'tanh', True, None, 1.0)])
def test_folded_layer_matches_bias_act_after_the_convolution(kernel, up, down, activation,
                                                             bias, clamp, gain):
    torch.manual_seed(0)
    layer = Conv2dLayer(6, 5, kernel, bias=bias, activation=activation, up=up, down=down,
                        conv_clamp=clamp)
    if bias:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(3, 6, 8, 8, requires_grad=True)
    out = layer(x, gain=gain)
    ref = unfolded(layer, x, gain)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if clamp is not None:
        assert out.abs().max() <= clamp * gain + 1e-6 and ref.abs().max() > 0.9 * clamp * gain
    upstream = torch.randn_like(out)
    params = [x] + [p for p in layer.parameters()]
    got = torch.autograd.grad((out * upstream).sum(), params)
    want = torch.autograd.grad((ref * upstream).sum(), params)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


def test_folding_is_second_order_differentiable():
    """R1 differentiates the discriminator twice: the folded layer's double backward
    matches too."""
    torch.manual_seed(1)
    layer = Conv2dLayer(4, 4, 3, activation='lrelu', down=2)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    grads = []
    for fn in (lambda v: layer(v), lambda v: unfolded(layer, v, 1.0)):
        (gx,) = torch.autograd.grad(fn(x).square().sum(), x, create_graph=True)
        grads.append(torch.autograd.grad(gx.square().sum(), [layer.weight, layer.bias]))
    for g, r in zip(*grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('up, noise_mode, fused, gain', [
    (1, 'random', False, 1.0), (2, 'const', False, 0.5 ** 0.5), (1, 'none', True, 1.0),
    (2, 'random', True, 1.0)])
def test_synthesis_layer_folds_its_gain_the_same_way(up, noise_mode, fused, gain):
    torch.manual_seed(0)
    layer = SynthesisLayer(6, 5, w_dim=4, resolution=8 * up, up=up, conv_clamp=0.8)
    torch.nn.init.normal_(layer.bias)
    layer.noise_strength.data.fill_(0.7)
    x = torch.randn(3, 6, 8, 8, requires_grad=True)
    w = torch.randn(3, 4)
    torch.manual_seed(5)
    out = layer(x, w, noise_mode=noise_mode, fused_modconv=fused, gain=gain)
    # Unfolded: the noise and bias added before the gain, as bias_act on CUDA does.
    torch.manual_seed(5)
    styles = layer.affine(w)
    noise = None
    if noise_mode == 'random':
        noise = torch.randn([3, 1, 8 * up, 8 * up]) * layer.noise_strength
    if noise_mode == 'const':
        noise = layer.noise_const * layer.noise_strength
    y = modulated_conv2d(x, layer.weight, styles, noise=noise, up=up, padding=1,
                         resample_filter=layer.resample_filter, flip_weight=(up == 1),
                         fused_modconv=fused)
    ref = bias_act(y, layer.bias, act='lrelu', gain=layer.act_gain * gain, clamp=0.8 * gain)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(out)
    params = [x] + list(layer.parameters())
    got = torch.autograd.grad((out * upstream).sum(), params, allow_unused=True)
    want = torch.autograd.grad((ref * upstream).sum(), params, allow_unused=True)
    assert [g is None for g in got] == [r is None for r in want]  # strength without noise
    for g, r in zip(got, want):
        if r is not None:
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('demodulate', [True, False])
def test_modulated_conv2d_output_gain_scales_the_convolution_not_the_noise(demodulate):
    torch.manual_seed(0)
    x, weight, styles = torch.randn(2, 4, 6, 6), torch.randn(3, 4, 3, 3), torch.randn(2, 4)
    noise = torch.randn(2, 1, 6, 6)
    base = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate,
                            fused_modconv=False)
    scaled = modulated_conv2d(x, weight, styles, noise=noise, padding=1, demodulate=demodulate,
                              fused_modconv=False, output_gain=1.7)
    torch.testing.assert_close(scaled, base * 1.7 + noise, rtol=1e-5, atol=1e-5)
