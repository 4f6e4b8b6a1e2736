"""Reference ops: upfirdn2d, bias_act, conv2d_gradfix, conv2d_resample (CPU)."""
from __future__ import annotations

import math
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genforce_stylegan2.ops import _dispatch, conv2d_gradfix
from genforce_stylegan2.ops import upfirdn2d as upfirdn2d_module
from genforce_stylegan2.ops.bias_act import activation_funcs, bias_act
from genforce_stylegan2.ops.conv2d_resample import conv2d_resample
from genforce_stylegan2.ops.upfirdn2d import (
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

# ---------------------------------------------------------------------------------------------
# upfirdn2d


def naive_upfirdn2d(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1):
    """Definition by loops: zero-insert, pad/crop, convolve with f, decimate."""
    x = x.detach().double().numpy()
    f = f.detach().double().numpy()
    if f.ndim == 1:
        f = np.outer(f, f)
    else:
        f = f * 1.0
    f = f * gain
    ux, uy = up
    dx, dy = down
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    u = np.zeros([n, c, h * uy, w * ux])
    u[:, :, ::uy, ::ux] = x
    # Pad with zeros everywhere a padding is positive, then crop the negative paddings.
    p = np.zeros([n, c, u.shape[2] + max(y0, 0) + max(y1, 0), u.shape[3] + max(x0, 0) +
                  max(x1, 0)])
    p[:, :, max(y0, 0):max(y0, 0) + u.shape[2], max(x0, 0):max(x0, 0) + u.shape[3]] = u
    p = p[:, :, max(-y0, 0):p.shape[2] - max(-y1, 0), max(-x0, 0):p.shape[3] - max(-x1, 0)]
    fh, fw = f.shape
    k = f if flip_filter else f[::-1, ::-1]  # correlation kernel
    oh, ow = p.shape[2] - fh + 1, p.shape[3] - fw + 1
    out = np.zeros([n, c, oh, ow])
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = (p[:, :, i:i + fh, j:j + fw] * k).sum(axis=(2, 3))
    return torch.from_numpy(out[:, :, ::dy, ::dx].copy())


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


CASES = [
    dict(up=1, down=1, padding=0),
    dict(up=2, down=1, padding=[2, 1, 2, 1]),
    dict(up=1, down=2, padding=[1, 1, 1, 1]),
    dict(up=2, down=2, padding=[1, 2, 0, 3]),
    dict(up=3, down=1, padding=[3, 3, 1, 2]),
    dict(up=[2, 1], down=[1, 2], padding=[2, 1, 0, 0]),
    dict(up=1, down=1, padding=[-1, 2, 3, -2]),
    dict(up=4, down=3, padding=[0, 1, 2, -1]),
]


@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize('kind', ['2d_asym', '1d_separable', '2d_from_1d'])
@pytest.mark.parametrize('flip_filter', [False, True])
@pytest.mark.parametrize('path', ['matmul', 'conv', 'channels_last'])
def test_upfirdn2d_matches_loops(case, kind, flip_filter, path, monkeypatch):
    # Separable filters on small images take banded matrix products, the rest a depthwise
    # convolution; MATMUL_MAX_SIZE = 0 forces the convolution. Channels-last images without
    # upsampling take one strided depthwise convolution (and stay channels-last).
    monkeypatch.setattr(upfirdn2d_module, 'MATMUL_MAX_SIZE', 0 if path == 'conv' else 256)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 10, 9)
    if path == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    if kind == '2d_asym':
        f = setup_filter(torch.rand(3, 4) + 0.1)
    elif kind == '1d_separable':
        f = setup_filter([1, 2, 5, 3, 1, 4, 2, 1])  # 8 taps: stays 1-D
        assert f.ndim == 1
    else:
        f = setup_filter([1, 3, 3, 1])
        assert f.shape == (4, 4)
    up, down, padding = case['up'], case['down'], case['padding']
    pad = padding if isinstance(padding, list) else [padding] * 4
    got = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=1.7)
    want = naive_upfirdn2d(x, f, _pair(up), _pair(down), pad, flip_filter, gain=1.7)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    if path == 'channels_last' and _pair(up) == (1, 1):
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_upfirdn2d_without_filter_is_resampling_only():
    x = torch.randn(1, 2, 4, 4)
    y = upfirdn2d(x, None, up=2)
    assert y.shape == (1, 2, 8, 8)
    torch.testing.assert_close(y[:, :, ::2, ::2], x)
    assert y[:, :, 1::2].abs().max() == 0


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    torch.testing.assert_close(f, torch.outer(torch.tensor([1., 3, 3, 1]),
                                              torch.tensor([1., 3, 3, 1])) / 64)
    assert setup_filter([1, 3, 3, 1], separable=True).shape == (4,)
    torch.testing.assert_close(setup_filter([1, 2], gain=4).sum(), torch.tensor(4.0))
    torch.testing.assert_close(setup_filter([[1., 2], [3, 4]], normalize=False, flip_filter=True),
                               torch.tensor([[4., 3], [2, 1]]))
    assert setup_filter(None).shape == (1, 1)


@pytest.mark.parametrize('taps', [[1, 3, 3, 1], [1, 2, 1], [1, 1], [1, 3, 5, 7, 7, 5, 3, 1]])
def test_resampling_keeps_a_constant_image_constant(taps):
    f = setup_filter(taps)
    x = torch.full([1, 2, 16, 16], 0.75)
    up = upsample2d(x, f)
    assert up.shape == (1, 2, 32, 32)
    b = len(taps)  # away from the zero-padded border
    torch.testing.assert_close(up[:, :, b:-b, b:-b], torch.full_like(up[:, :, b:-b, b:-b], 0.75))
    down = downsample2d(x, f)
    assert down.shape == (1, 2, 8, 8)
    torch.testing.assert_close(down[:, :, 2:-2, 2:-2], torch.full([1, 2, 4, 4], 0.75))
    same = filter2d(x, f)
    assert same.shape == x.shape
    torch.testing.assert_close(same[:, :, b:-b, b:-b], torch.full_like(same[:, :, b:-b, b:-b],
                                                                        0.75))


@pytest.mark.parametrize('path', ['matmul', 'conv', 'channels_last'])
def test_upfirdn2d_derivatives(path, monkeypatch):
    monkeypatch.setattr(upfirdn2d_module, 'MATMUL_MAX_SIZE', 0 if path == 'conv' else 256)
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64)
    if path == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    f = setup_filter([1, 3, 3, 1])

    def fn(x):
        return upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 1, 2], gain=4, impl='ref')

    # the filter is float32 by contract; the op casts it to the input's dtype
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    assert torch.autograd.gradcheck(lambda x: downsample2d(x, f), (x,))
    assert torch.autograd.gradgradcheck(lambda x: downsample2d(x, f), (x,))


# ---------------------------------------------------------------------------------------------
# bias_act

TORCH_ACTS = {
    'linear': lambda x: x,
    'relu': torch.relu,
    'lrelu': lambda x: F.leaky_relu(x, 0.2),
    'tanh': torch.tanh,
    'sigmoid': torch.sigmoid,
    'elu': F.elu,
    'selu': F.selu,
    'softplus': F.softplus,
    'swish': lambda x: x * torch.sigmoid(x),
}
DEFAULT_GAINS = {'linear': 1, 'relu': math.sqrt(2), 'lrelu': math.sqrt(2), 'tanh': 1,
                 'sigmoid': 1, 'elu': 1, 'selu': 1, 'softplus': 1, 'swish': math.sqrt(2)}


def test_activation_table_defaults():
    assert set(activation_funcs) == set(TORCH_ACTS)
    for name, spec in activation_funcs.items():
        assert spec.def_gain == pytest.approx(DEFAULT_GAINS[name]), name
        assert spec.def_alpha == (0.2 if name == 'lrelu' else 0)


@pytest.mark.parametrize('act', sorted(TORCH_ACTS))
@pytest.mark.parametrize('gain,clamp', [(None, None), (0.5, None), (None, 0.7), (2.0, 1.0)])
def test_bias_act_matches_torch(act, gain, clamp):
    torch.manual_seed(1)
    x = torch.randn(3, 5, 4, 2) * 2
    b = torch.randn(5)
    got = bias_act(x, b, dim=1, act=act, gain=gain, clamp=clamp)
    want = TORCH_ACTS[act](x + b.reshape(1, -1, 1, 1)) * (
        DEFAULT_GAINS[act] if gain is None else gain)
    if clamp is not None:
        want = want.clamp(-clamp, clamp)
    torch.testing.assert_close(got, want)


def test_bias_act_dim_alpha_and_errors():
    x = torch.randn(4, 6)
    b = torch.randn(6)
    torch.testing.assert_close(bias_act(x, b, dim=1, act='lrelu', alpha=0.1, gain=1),
                               F.leaky_relu(x + b, 0.1))
    torch.testing.assert_close(bias_act(x.t(), b, dim=0), (x + b).t())
    torch.testing.assert_close(bias_act(x), x)
    with pytest.raises(ValueError, match='unknown activation'):
        bias_act(x, act='gelu')
    with pytest.raises(ValueError, match='does not match'):
        bias_act(x, torch.zeros(5))


@pytest.mark.parametrize('act', sorted(TORCH_ACTS))
def test_bias_act_derivatives(act):
    torch.manual_seed(2)
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def fn(x, b):
        return bias_act(x, b, dim=1, act=act, gain=1.3, clamp=1.5, impl='ref')

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


# ---------------------------------------------------------------------------------------------
# conv2d_gradfix


@pytest.mark.parametrize('transpose', [False, True])
def test_conv2d_gradfix_double_backward(transpose):
    torch.manual_seed(3)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def fn(x, w, b):
        if transpose:
            return conv2d_gradfix.conv_transpose2d(x, w, b, stride=2, padding=1, groups=2)
        return conv2d_gradfix.conv2d(x, w, b, stride=2, padding=1, groups=2)

    want = (F.conv_transpose2d(x, w, b, stride=2, padding=1, groups=2) if transpose else
            F.conv2d(x, w, b, stride=2, padding=1, groups=2))
    torch.testing.assert_close(fn(x, w, b), want)
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def test_no_weight_gradients_skips_weight_grads_only_inside():
    torch.manual_seed(4)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    y = conv2d_gradfix.conv2d(x, w, padding=1)
    with conv2d_gradfix.no_weight_gradients():
        gx, gw = torch.autograd.grad(y.square().sum(), [x, w], allow_unused=True,
                                     create_graph=True)
    assert gw is None and gx is not None
    # Second order still reaches the weight: d/dw of ||dy/dx||^2.
    gx.square().sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    # Outside the context weight gradients are back.
    _, gw = torch.autograd.grad(conv2d_gradfix.conv2d(x, w).sum(), [x, w])
    torch.testing.assert_close(gw, torch.autograd.grad(F.conv2d(x, w).sum(), [w])[0])
    assert not conv2d_gradfix.weight_gradients_disabled
    with conv2d_gradfix.no_weight_gradients(disable=False):
        assert not conv2d_gradfix.weight_gradients_disabled


def test_weights_that_are_activations_keep_their_gradients():
    s = torch.randn(3, requires_grad=True)
    x = torch.randn(1, 3, 5, 5)
    w0 = torch.randn(2, 3, 3, 3)
    with conv2d_gradfix.weights_are_activations():
        y = conv2d_gradfix.conv2d(x, w0 * s.reshape(1, -1, 1, 1))
    with conv2d_gradfix.no_weight_gradients():
        gs, = torch.autograd.grad(y.sum(), [s])
    want, = torch.autograd.grad(F.conv2d(x, w0 * s.reshape(1, -1, 1, 1)).sum(), [s])
    torch.testing.assert_close(gs, want)


# ---------------------------------------------------------------------------------------------
# conv2d_resample


def generic_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight):
    """Literal definition: upsample with f, convolve, downsample with f."""
    fw, fh = (f.shape[-1], f.shape[0]) if f is not None else (1, 1)
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x


@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('flip_weight', [True, False])
def test_conv2d_resample_fast_paths_match_definition(k, up, down, groups, flip_weight):
    torch.manual_seed(5)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, k, k, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1])
    got = conv2d_resample(x, w, f=f, up=up, down=down, padding=k // 2, groups=groups,
                          flip_weight=flip_weight)
    want = generic_conv2d_resample(x, w, f, up, down, k // 2, groups, flip_weight)
    assert got.shape == want.shape == (2, 6, 8 * up // down, 8 * up // down)
    torch.testing.assert_close(got, want)


def test_conv2d_resample_second_order():
    torch.manual_seed(6)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1])
    for up, down in ((2, 1), (1, 2)):
        def fn(x, w, up=up, down=down):
            return conv2d_resample(x, w, f=f, up=up, down=down, padding=1)
        assert torch.autograd.gradgradcheck(fn, (x, w))


# ---------------------------------------------------------------------------------------------
# CUDA dispatch


@pytest.fixture
def fresh_dispatch(monkeypatch):
    monkeypatch.setattr(_dispatch, '_modules', {})
    monkeypatch.setattr(_dispatch, '_warned', set())
    return _dispatch


def test_dispatch_uses_an_available_kernel_module(fresh_dispatch, monkeypatch):
    name = 'genforce_stylegan2.ops.bias_act_cuda'
    fake = types.ModuleType(name)
    fake.is_available = lambda: True
    monkeypatch.setitem(sys.modules, name, fake)
    assert fresh_dispatch.cuda_module('bias_act') is fake
    assert fresh_dispatch.status('bias_act') == 'cuda'


def test_reference_ops_block_takes_the_reference_path(fresh_dispatch, monkeypatch):
    from genforce_core.api import reference_forced, reference_ops

    name = 'genforce_stylegan2.ops.bias_act_cuda'
    fake = types.ModuleType(name)
    fake.is_available = lambda: True
    monkeypatch.setitem(sys.modules, name, fake)
    with reference_ops():
        assert reference_forced()
        assert fresh_dispatch.cuda_module('bias_act') is None
        assert fresh_dispatch.status('bias_act') == 'reference'
        with reference_ops(False):  # an inner block lifts it
            assert fresh_dispatch.cuda_module('bias_act') is fake
    assert not reference_forced() and fresh_dispatch.cuda_module('bias_act') is fake


def test_dispatch_falls_back_when_unavailable(fresh_dispatch, monkeypatch):
    name = 'genforce_stylegan2.ops.upfirdn2d_cuda'
    fake = types.ModuleType(name)
    fake.is_available = lambda: False
    monkeypatch.setitem(sys.modules, name, fake)
    assert fresh_dispatch.cuda_module('upfirdn2d') is None
    assert fresh_dispatch.status('upfirdn2d') == 'reference'
    monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    fresh_dispatch._modules.clear()
    assert fresh_dispatch.cuda_module('upfirdn2d') is None


def test_reference_warning_is_issued_once(fresh_dispatch):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        fresh_dispatch.warn_reference('upfirdn2d')
        fresh_dispatch.warn_reference('upfirdn2d')
    assert len(caught) == 1 and 'reference' in str(caught[0].message)


def test_bad_impl_is_rejected():
    with pytest.raises(ValueError, match='impl'):
        bias_act(torch.zeros(1), impl='triton')
    with pytest.raises(ValueError, match='impl'):
        upfirdn2d(torch.zeros(1, 1, 2, 2), None, impl='triton')


def test_one_activation_table_feeds_both_paths_and_matches_the_kernel_enum():
    import re
    from pathlib import Path

    from genforce_stylegan2.ops import bias_act_cuda

    header = (Path(bias_act_cuda.__file__).parent / 'cuda' / 'bias_act.h').read_text()
    block = header[header.index('enum Act'):]
    block = block[:block.index('};')]
    enum = {name.lower(): int(value) for name, value in re.findall(r'k(\w+) = (\d+)', block)}
    assert {name: spec.cuda_id for name, spec in activation_funcs.items()} == enum
    assert bias_act_cuda.ACTIVATIONS == {
        name: (spec.cuda_id, spec.def_alpha, spec.def_gain, spec.piecewise_linear)
        for name, spec in activation_funcs.items()}
