"""The augmentation pipeline: filters, grid sampling with 2nd-order gradients, identity at
p = 0, each transform's geometry / colour against its definition, and gradients through all."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genforce_stylegan2ada.augment import (
    MULTIPLIERS,
    PRESETS,
    AugmentPipe,
    grid_sample,
    grid_sample_ref,
)
from genforce_stylegan2ada.augment import matrices as M
from genforce_stylegan2ada.augment.filters import band_filters, symlet_lowpass


def smooth_images(n=4, c=3, size=32, seed=0):
    """Band-limited images in [-1, 1] (interpolation error stays small on them)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, size // 4, size // 4, generator=g) * 2 - 1
    return F.interpolate(x, size=size, mode='bicubic', align_corners=False).clamp(-1, 1)


def only(name, p=1.0, **kwargs):
    """A pipe with just one transform switched on."""
    return AugmentPipe(preset=None, p=p, **{name: 1}, **kwargs)


# -- filters ---------------------------------------------------------------------------------
@pytest.mark.parametrize('n', [2, 4, 6])
def test_symlet_is_an_orthogonal_wavelet_with_n_vanishing_moments(n):
    h = np.array(symlet_lowpass(n))
    assert len(h) == 2 * n and h.sum() == pytest.approx(math.sqrt(2))
    for shift in range(n):  # orthonormal to its even shifts
        assert np.dot(h[:len(h) - 2 * shift], h[2 * shift:]) == pytest.approx(
            1.0 if shift == 0 else 0.0, abs=1e-9)
    g = h[::-1] * (-1) ** np.arange(len(h))  # the matching high-pass
    k = np.arange(len(h))
    for m in range(n):
        assert np.sum(g * k ** m) == pytest.approx(0, abs=1e-6 * max(1, (2 * n) ** m))


def test_symlet_n2_is_daubechies_d4():
    # For two vanishing moments the wavelet is unique (up to reversal): D4, known in closed form.
    s3 = math.sqrt(3)
    d4 = np.array([1 + s3, 3 + s3, 3 - s3, 1 - s3]) / (4 * math.sqrt(2))
    h = np.array(symlet_lowpass(2))
    assert np.allclose(h, d4) or np.allclose(h, d4[::-1])


def test_band_filters_partition_the_spectrum():
    bands = band_filters(33)
    delta = np.zeros(33)
    delta[16] = 1
    assert np.allclose(bands.sum(0), delta)
    assert np.allclose(bands, bands[:, ::-1])  # zero phase
    freqs = np.array([0.0, 0.03, 0.2, 0.37, 0.75]) * np.pi
    response = np.abs(np.exp(-1j * np.outer(freqs, np.arange(33) - 16)) @ bands.T)
    assert response.argmax(axis=1).tolist() == [0, 0, 1, 2, 3]


@pytest.mark.parametrize('impl', ['conv', 'matmul'])
def test_fast_resampling_matches_upfirdn2d(impl):
    from genforce_stylegan2.ops import upfirdn2d
    from genforce_stylegan2ada.augment.resample import downsample2x, upsample2x

    f = torch.tensor(symlet_lowpass(6), dtype=torch.float32) / math.sqrt(2)
    x = torch.randn(2, 3, 10, 14)
    up = upsample2x(x, f, impl)
    assert torch.allclose(up, upfirdn2d.upsample2d(x, f, up=2, impl='ref'), atol=1e-5)
    down = downsample2x(up, f, impl)
    assert torch.allclose(down, upfirdn2d.downsample2d(up, f, down=2, flip_filter=True,
                                                       impl='ref'), atol=1e-5)
    # Orthogonal wavelet: down(up(x)) == x away from the zero-padded borders.
    assert torch.allclose(down[:, :, 4:-4, 4:-4], x[:, :, 4:-4, 4:-4], atol=1e-5)


# -- grid sampling ---------------------------------------------------------------------------
def test_grid_sample_matches_torch_and_the_reference():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    grid = torch.rand(2, 5, 6, 2, dtype=torch.float64) * 2.4 - 1.2  # some points outside
    expected = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    assert torch.allclose(grid_sample(x, grid), expected, atol=1e-12)
    assert torch.allclose(grid_sample_ref(x, grid), expected, atol=1e-12)


@pytest.mark.parametrize('impl', ['native', 'ref'])
def test_grid_sample_first_and_second_order_gradients(impl):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 4, 2, dtype=torch.float64) * 2 - 1
    fn = lambda t: grid_sample(t, grid, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    # Same first derivative as PyTorch's own.
    g = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    (ours,) = torch.autograd.grad(fn(x), x, g)
    (ref,) = torch.autograd.grad(F.grid_sample(x, grid, align_corners=False), x, g)
    assert torch.allclose(ours, ref)


def test_r1_style_double_backward_through_grid_sample_is_nonzero():
    # What R1 needs (and PyTorch <= 2.0's own grid_sample cannot give): a gradient of a
    # gradient w.r.t. the sampled images.
    # With y = A x: f = |A x|^2, g = 2 A^T A x, and d|g|^2/dx = 8 (A^T A)^2 x.
    torch.manual_seed(0)
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 3, 2, dtype=torch.float64) * 2 - 1
    (g,) = torch.autograd.grad(grid_sample(x, grid).square().sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.square().sum(), x)
    basis = torch.eye(16, dtype=torch.float64).reshape(16, 1, 4, 4)
    A = grid_sample_ref(basis, grid.expand(16, -1, -1, -1)).reshape(16, 9).T  # [9, 16]
    AtA = A.T @ A
    assert torch.allclose(gg.flatten(), 8 * AtA @ AtA @ x.detach().flatten())


# -- the pipeline ----------------------------------------------------------------------------
@pytest.mark.parametrize('preset', list(PRESETS))
def test_p_zero_is_the_identity(preset):
    x = smooth_images()
    assert torch.equal(AugmentPipe(preset, p=0.0)(x), x)


def test_presets_switch_on_the_documented_transforms():
    on = {name: {k for k, v in AugmentPipe(name).multipliers.items() if v} for name in PRESETS}
    assert on['blit'] == {'xflip', 'rotate90', 'xint'}
    assert on['geom'] == {'scale', 'rotate', 'aniso', 'xfrac'}
    assert on['color'] == {'brightness', 'contrast', 'lumaflip', 'hue', 'saturation'}
    assert on['bgc'] == on['blit'] | on['geom'] | on['color']
    assert on['bgcfnc'] == set(MULTIPLIERS)
    assert AugmentPipe('bgc', rotate=0).multipliers['rotate'] == 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='unknown augmentation preset'):
        AugmentPipe('bgx')
    with pytest.raises(ValueError, match=r"unknown AugmentPipe arguments \['rotation'\]"):
        AugmentPipe('bgc', rotation=1)
    with pytest.raises(ValueError, match='p must be in'):
        AugmentPipe('bgc', p=1.5)


def test_p_is_a_buffer_in_the_state_dict():
    pipe = AugmentPipe('bgc', p=0.25)
    assert list(pipe.state_dict()) == ['p']
    other = AugmentPipe('bgc')
    other.load_state_dict(pipe.state_dict())
    assert float(other.p) == 0.25


@pytest.mark.parametrize('name', MULTIPLIERS)
def test_each_transform_changes_images_and_keeps_them_sane(name):
    torch.manual_seed(1)
    x = smooth_images(n=8)
    y = only(name)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(y, x)
    # Bounds that follow from each definition for inputs in [-1, 1] (geometric filters
    # overshoot a little; a luma flip reaches 7/3, a hue rotation sqrt(3); the others depend
    # on their random strength).
    limit = {'lumaflip': 7 / 3, 'hue': 3 ** 0.5, 'brightness': 3, 'contrast': 6,
             'saturation': 8, 'imgfilter': 8, 'noise': 3}
    assert y.abs().max() <= limit.get(name, 1.2) + 1e-5


def test_blit_rotation_flip_and_translation_are_exact():
    x = smooth_images()
    n = x.shape[0]
    no = torch.zeros(n, dtype=torch.bool)
    zero = torch.zeros(n)
    for k in range(4):
        rot = torch.full((n,), k)
        assert torch.equal(AugmentPipe.blit(x, no, rot, zero, zero), torch.rot90(x, k, [2, 3]))
    assert torch.equal(AugmentPipe.blit(x, ~no, rot * 0, zero, zero), x.flip(3))
    y = AugmentPipe.blit(x, no, rot * 0, torch.full((n,), 3.0), torch.full((n,), -2.0))
    assert torch.equal(y[:, :, :-2, 3:], x[:, :, 2:, :-3])
    assert torch.equal(y[:, :, -2:, 3:], x[:, :, -3:-1, :-3].flip(2))  # reflected borders
    assert torch.equal(y[:, :, :-2, :3], x[:, :, 2:, 1:4].flip(3))


def test_geometric_path_identity_and_integer_shift_are_exact():
    pipe = AugmentPipe('bg', p=1.0)
    x = smooth_images()
    eye = torch.eye(3).repeat(4, 1, 1)
    assert torch.allclose(pipe.transform(x, eye), x, atol=1e-5)
    shift = M.translate2d(torch.full((4,), -2.0), torch.full((4,), 1.0))  # out(u) = in(u - 2)
    y = pipe.transform(x, shift)
    assert torch.allclose(y[:, :, 2:-2, 4:-2], x[:, :, 3:-1, 2:-4], atol=1e-5)


def test_geometric_rotation_matches_its_matrix():
    pipe = AugmentPipe('bg', p=1.0)
    x = smooth_images(size=32)
    quarter = M.rotate2d(torch.full((4,), math.pi / 2))  # out(u, v) = in(-v, u)
    y = pipe.transform(x, quarter)
    err = (y - torch.rot90(x, 1, [2, 3])).abs()
    assert err.mean() < 0.01 and err.max() < 0.05
    # Scaling by 2 about the centre: the middle of the output is the centre 16x16, enlarged.
    y = pipe.transform(x, M.scale2d(torch.full((4,), 0.5), torch.full((4,), 0.5)))
    expected = F.interpolate(x[:, :, 8:24, 8:24], scale_factor=2, mode='bicubic',
                             align_corners=False)
    assert (y - expected)[:, :, 4:-4, 4:-4].abs().mean() < 0.02


def test_colour_matrices_follow_their_definitions():
    n = 3
    x = smooth_images(n=n)
    ones = torch.ones(n)
    y = AugmentPipe.recolor(x, M.translate3d(0.1 * ones) @ M.scale3d(2 * ones))
    assert torch.allclose(y, 2 * x + 0.1, atol=1e-6)
    grey = x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(AugmentPipe.recolor(x, M.saturate(0 * ones)), grey, atol=1e-6)
    assert torch.allclose(AugmentPipe.recolor(x, M.luma_flip(ones)), x - 2 * grey, atol=1e-6)
    hue = M.rotate_around_luma(torch.full((n,), 2 * math.pi / 3))  # a third turn: RGB -> BRG
    assert torch.allclose(AugmentPipe.recolor(x, hue), x.roll(1, dims=1), atol=1e-5)


def test_band_filter_with_unit_gains_is_the_identity_and_low_band_blurs():
    x = smooth_images()
    assert torch.allclose(AugmentPipe.band_filter(x, torch.ones(4, 4)), x, atol=1e-5)
    noise = torch.randn(4, 3, 32, 32)
    low = AugmentPipe.band_filter(noise, torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1))
    high = AugmentPipe.band_filter(noise, torch.tensor([[0.0, 0, 0, 1]]).repeat(4, 1))
    assert low.std() < 0.3 * noise.std() < high.std()


def test_grey_images_and_odd_sizes_work():
    torch.manual_seed(0)
    y = AugmentPipe('bgcfnc', p=1.0, rotate90=0)(torch.rand(4, 1, 24, 40) * 2 - 1)
    assert y.shape == (4, 1, 24, 40) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match='rotate90 needs square images'):
        AugmentPipe('blit', p=1.0)(torch.rand(4, 1, 24, 40))


def test_only_a_fraction_p_of_the_images_change():
    torch.manual_seed(0)
    x = smooth_images(n=400, size=8)
    y = only('xfrac', p=0.3)(x)
    changed = (y - x).flatten(1).abs().amax(1) > 1e-4
    assert 0.2 < changed.float().mean() < 0.4


def test_gradients_and_second_order_gradients_flow_through_everything():
    torch.manual_seed(0)
    pipe = AugmentPipe('bgcfnc', p=1.0)
    x = smooth_images(n=4, size=16).double().requires_grad_(True)
    conv = torch.randn(1, 3, 3, 3, dtype=torch.float64)
    y = F.conv2d(torch.tanh(pipe(x)), conv)  # a tiny nonlinear "discriminator"
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    (gg,) = torch.autograd.grad(g.square().sum(), x)
    assert torch.isfinite(gg).all() and gg.abs().sum() > 0


@pytest.mark.parametrize('name', MULTIPLIERS)
def test_each_transform_has_exact_second_derivatives(name):
    # For fixed random choices f(x) = sum(w * tanh(aug(x))) is smooth in x: its analytic
    # Hessian-vector product must match central differences of its analytic gradient.
    pipe = only(name)
    x = smooth_images(n=2, c=3, size=16).double()
    w = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    v = torch.randn_like(x)

    def grad(t, create_graph=False):
        t = t.detach().requires_grad_(True)
        torch.manual_seed(3)  # the same augmentation in every evaluation
        (g,) = torch.autograd.grad((torch.tanh(pipe(t)) * w).sum(), t, create_graph=True)
        return (g, t) if create_graph else g.detach()

    g, t = grad(x, create_graph=True)
    (hvp,) = torch.autograd.grad((g * v).sum(), t)
    eps = 1e-5
    numeric = (grad(x + eps * v) - grad(x - eps * v)) / (2 * eps)
    assert hvp.abs().sum() > 0
    assert torch.allclose(hvp, numeric, atol=1e-6, rtol=1e-5)
