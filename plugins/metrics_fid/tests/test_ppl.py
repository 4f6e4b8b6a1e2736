"""Perceptual path length on generators with known path lengths, and LPIPS against the lpips
package with its own linear layers (read by our safe loader)."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from genforce_metrics_fid import vgg16 as V
from genforce_metrics_fid.features import latent_generator
from genforce_metrics_fid.lpips import lpips_distance
from genforce_metrics_fid.ppl import (
    PPL_METRICS,
    PathSampler,
    PPLConfig,
    face_crop,
    perceptual_path_length,
    reject_outliers_mean,
    slerp,
    to_lpips_range,
)
from genforce_metrics_fid.pr_ppl import PPL
from genforce_metrics_fid.scores import MetricError

SCALE = 3 * 127.5 ** 2  # [-1, 1] → [0, 255], one grey channel repeated to three


def l2(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """A distance whose path length is computable: the squared pixel difference."""
    return (x0 - x1).square().sum(dim=(1, 2, 3))


class _Mapping(nn.Module):
    def __init__(self, matrix: torch.Tensor, num_ws: int):
        super().__init__()
        self.matrix, self.num_ws = nn.Parameter(matrix), num_ws

    def forward(self, z, c):
        return (z @ self.matrix.T)[:, None].repeat(1, self.num_ws, 1)


class _Synthesis(nn.Module):
    def __init__(self, matrix: torch.Tensor, resolution: int, noise: bool):
        super().__init__()
        self.matrix, self.resolution = nn.Parameter(matrix), resolution
        if noise:
            self.register_buffer('noise_const', torch.zeros(resolution, resolution,
                                                            dtype=matrix.dtype))

    def forward(self, ws, noise_mode='random'):
        assert noise_mode == 'const'
        img = (ws.flatten(1) @ self.matrix.T).view(-1, 1, self.resolution, self.resolution)
        return img + self.noise_const if hasattr(self, 'noise_const') else img


class LinearStyleGenerator(nn.Module):
    """``w = M z`` (one w per layer), ``img = A [w, w]`` (grey), float64; optional noise added
    to the image (the same for both ends of a path, so it cancels)."""

    def __init__(self, z_dim=4, num_ws=2, resolution=8, seed=0, noise=False, identity=False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.z_dim, self.w_dim, self.c_dim, self.img_resolution = z_dim, z_dim, 0, resolution
        pixels = resolution * resolution
        mapping = torch.eye(z_dim) if identity else torch.randn(z_dim, z_dim, generator=g)
        synthesis = torch.randn(pixels, num_ws * z_dim, generator=g) * 0.1
        if identity:  # img = w of the first layer, zero-padded
            synthesis = torch.zeros(pixels, num_ws * z_dim)
            synthesis[:z_dim, :z_dim] = torch.eye(z_dim)
        self.mapping = _Mapping(mapping.double(), num_ws)
        self.synthesis = _Synthesis(synthesis.double(), resolution, noise)


def draws(seed: int, b: int, n: int, z_dim: int):
    """The sampler's draws for batch ``b``: t, then z0 and z1."""
    rng = latent_generator(seed, b)
    t = torch.rand(n, generator=rng)
    z0, z1 = torch.randn(2 * n, z_dim, generator=rng).chunk(2)
    return t.double(), z0.double(), z1.double()


@torch.no_grad()
def linear_path_lengths(G: LinearStyleGenerator, seed: int, b: int, n: int) -> torch.Tensor:
    _, z0, z1 = draws(seed, b, n, G.z_dim)
    w0, w1 = G.mapping(z0, None), G.mapping(z1, None)
    return SCALE * ((w1 - w0).flatten(1) @ G.synthesis.matrix.T).square().sum(1)


@pytest.mark.parametrize('sampling', ['end', 'full'])
def test_linear_generator_in_w_has_the_closed_form_length(sampling):
    G = LinearStyleGenerator(noise=True)
    config = PPLConfig('w', sampling, crop=False, num_samples=250)
    sampler = PathSampler(G, config, l2, seed=7)
    expected = linear_path_lengths(G, 7, 3, 5)  # lerp: the same for every t
    torch.testing.assert_close(sampler(3, 5), expected, rtol=1e-7, atol=0)
    # The whole metric: per-sample values of every batch, outliers outside [p1, p99] dropped.
    values = torch.cat([linear_path_lengths(G, 7, b, min(2, 250 - 2 * b))
                        for b in range(125)]).numpy()
    assert perceptual_path_length(G, l2, config, batch_size=2, seed=7) == pytest.approx(
        reject_outliers_mean(values), rel=1e-7)
    # The noise buffers of the caller's generator were not touched.
    assert G.synthesis.noise_const.abs().sum() == 0


def test_z_paths_move_at_the_speed_of_the_angle():
    G = LinearStyleGenerator(identity=True)
    _, z0, z1 = draws(0, 0, 6, G.z_dim)
    angle = torch.acos((nn.functional.normalize(z0, dim=1)
                        * nn.functional.normalize(z1, dim=1)).sum(1))
    end = PathSampler(G, PPLConfig('z', 'end'), l2)(0, 6)
    torch.testing.assert_close(end, SCALE * angle ** 2, rtol=1e-6, atol=0)
    # Slerp has constant speed: a full path gives the same value at its random t.
    full = PathSampler(G, PPLConfig('z', 'full'), l2)(0, 6)
    torch.testing.assert_close(full, end, rtol=1e-6, atol=0)


def test_slerp_stays_on_the_sphere_between_its_ends():
    a, b = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    torch.testing.assert_close(slerp(a, b, torch.zeros(5, 1)), nn.functional.normalize(a))
    torch.testing.assert_close(slerp(a, b, torch.ones(5, 1)), nn.functional.normalize(b))
    half = slerp(a, b, torch.full((5, 1), 0.5))
    torch.testing.assert_close(half.norm(dim=1), torch.ones(5, dtype=torch.float64))
    mid = nn.functional.normalize(nn.functional.normalize(a) + nn.functional.normalize(b))
    torch.testing.assert_close(half, mid)


def test_constant_generator_has_zero_length():
    G = LinearStyleGenerator()
    with torch.no_grad():
        G.synthesis.matrix.zero_()
    for name in PPL_METRICS:
        config = PPLConfig(**dict(vars(PPL_METRICS[name]), num_samples=8))
        assert perceptual_path_length(G, l2, config) == 0.0


def test_crop_downsampling_and_scaling():
    img = torch.rand(2, 1, 512, 512) * 2 - 1
    out = to_lpips_range(img, 512, crop=True)
    region = img[:, :, 192:448, 128:384]  # rows 3/8..7/8, columns 2/8..6/8
    expected = (region.reshape(2, 1, 128, 2, 128, 2).mean(dim=(3, 5)) + 1) * 127.5
    assert out.shape == (2, 3, 128, 128)
    torch.testing.assert_close(out, expected.expand(-1, 3, -1, -1))
    small = torch.rand(1, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(to_lpips_range(small, 64, crop=False), (small + 1) * 127.5)
    with pytest.raises(MetricError, match='square'):
        face_crop(torch.zeros(1, 3, 8, 16))


def test_outlier_rejection_keeps_the_1st_to_99th_percentile():
    values = np.concatenate([np.arange(1, 199, dtype=float), [-1e9, 1e9]])
    # 200 values: the 1st percentile rounded down is 1, the 99th rounded up is 198.
    assert reject_outliers_mean(values) == pytest.approx(np.arange(1, 199).mean())


def test_w_metrics_need_a_style_based_generator():
    class Plain(nn.Module):
        z_dim, c_dim, img_resolution = 4, 0, 8

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 64)

        def forward(self, z, c):
            return self.lin(z).view(-1, 1, 8, 8)

    with pytest.raises(MetricError, match='PPL in w needs a style-based generator'):
        perceptual_path_length(Plain(), l2, PPLConfig('w', 'end', num_samples=2))
    value = perceptual_path_length(Plain(), l2, PPLConfig('z', 'end', num_samples=4))
    assert np.isfinite(value) and value > 0


def test_ppl_metric_with_lpips_on_a_stylegan2_generator():
    from genforce_stylegan2.networks.synthesis import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3,
                  mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=64, channel_max=8)).eval()
    vgg = V.random_vgg16(0, widths=(4, 4, 8, 8, 8), fc_dim=0, lpips=True)
    metric = PPL('ppl_wend', vgg16=vgg, num_samples=6, progress=False)
    result = metric.evaluate_model(G)
    config = PPLConfig(**dict(vars(PPL_METRICS['ppl_wend']), num_samples=6))
    expected = perceptual_path_length(G, functools.partial(lpips_distance, vgg), config)
    assert result == {'ppl_wend': expected} and expected > 0
    with pytest.raises(MetricError, match='unknown PPL metric'):
        PPL('ppl3_wend')


def test_missing_lpips_weights_name_the_file_the_source_and_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv('GENFORCE_CACHE_DIR', str(tmp_path))
    monkeypatch.delenv(V.ENV_LPIPS, raising=False)
    monkeypatch.setattr(V, 'lpips_candidates', lambda: [tmp_path / 'lpips' / 'vgg.pth'])
    with pytest.raises(V.VGG16WeightsError) as info:
        V.resolve_lpips(download=False)
    for part in (str(tmp_path / 'lpips' / 'vgg.pth'), V.LPIPS_URL, '--lpips PATH',
                 'lpips=PATH', '$GENFORCE_LPIPS_WEIGHTS', 'vgg16.pt'):
        assert part in str(info.value), part
    # A torchvision VGG16 file without the LPIPS layers cannot serve PPL.
    torch.save(V.random_vgg16(0, widths=(4, 4, 8, 8, 8), fc_dim=0).state_dict(),
               tmp_path / 'tv.pth')
    with pytest.raises(V.VGG16WeightsError, match='No LPIPS weights found'):
        V.load_vgg16(tmp_path / 'tv.pth', lpips=True, classifier=False, download=False)


@pytest.mark.slow
def test_lpips_equals_the_lpips_package_with_its_linear_layers(tmp_path):
    lpips = pytest.importorskip('lpips')
    # The package's vgg.pth, found in the installed package without importing it and read by
    # our restricted loader; convolutions random, in torchvision's file format.
    found = V.resolve_lpips(download=False)
    assert found.name == 'vgg.pth' and 'lpips' in found.parts
    ours = V.random_vgg16(5, fc_dim=0)
    torch.save(ours.state_dict(), tmp_path / V.TORCHVISION_FILE)
    net = V.load_vgg16(tmp_path / V.TORCHVISION_FILE, lpips=True, classifier=False,
                       download=False)
    with pytest.warns(UserWarning):  # torchvision's deprecated `pretrained` inside lpips
        reference = lpips.LPIPS(net='vgg', pnet_rand=True, verbose=False).eval()
    features = dict(ours.features.named_children())
    for part in (reference.net.slice1, reference.net.slice2, reference.net.slice3,
                 reference.net.slice4, reference.net.slice5):
        for name, module in part.named_children():
            if isinstance(module, nn.Conv2d):
                module.load_state_dict(features[name].state_dict())
    torch.manual_seed(0)
    x0, x1 = torch.rand(3, 3, 48, 40) * 255, torch.rand(3, 3, 48, 40) * 255
    x1[0] = x0[0]  # identical images: distance 0
    with torch.no_grad():
        expected = reference(x0 / 127.5 - 1, x1 / 127.5 - 1).flatten()
    got = lpips_distance(net, x0, x1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert got[0] == 0 and (got[1:] > 0).all()


@pytest.mark.parametrize('family', ['stylegan', 'pggan'])
def test_other_families_run_and_keep_their_noise(family):
    if family == 'stylegan':
        networks = pytest.importorskip('genforce_stylegan.networks')
        G = networks.StyleGANGenerator(z_dim=8, w_dim=8, img_resolution=32,
                                       mapping_kwargs=dict(num_layers=2),
                                       synthesis_kwargs=dict(fmap_base=64, fmap_max=8))
        configs = [PPL_METRICS['ppl_wend'], PPL_METRICS['ppl_zfull']]
    else:
        networks = pytest.importorskip('genforce_pggan.networks')
        G = networks.PGGANGenerator(z_dim=8, img_resolution=32, fmap_base=64, fmap_max=8)
        configs = [PPL_METRICS['ppl_zend']]
    from genforce_metrics_fid.ppl import noise_buffers
    G.eval()
    noise = [buf.clone() for buf in noise_buffers(G)]
    assert len(noise) == (8 if family == 'stylegan' else 0)  # synthesis.noise0 ... noise7
    for config in configs:
        config = PPLConfig(**dict(vars(config), num_samples=4))
        value = perceptual_path_length(G, l2, config)
        assert np.isfinite(value) and value > 0
        assert value == perceptual_path_length(G, l2, config)  # seeded: reproducible
    assert all(torch.equal(a, b) for a, b in zip(noise, noise_buffers(G)))
