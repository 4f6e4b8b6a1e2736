"""Equivariance metrics (eqt50k_int, eqt50k_frac, eqr50k) on generators whose equivariance is
known, on the tiny StyleGAN3-T model, and through `genforce metrics`."""
from __future__ import annotations

import contextlib
import json
import math

import pytest
import torch
from torch import nn

from genforce_metrics_fid.equivariance import EQ, equivariance_psnr, parse_eq_name
from genforce_metrics_fid.resampling import (
    integer_shift,
    masked_squared_error,
    psnr,
    rotation_matrix,
    translation_matrix,
    warp,
)
from genforce_metrics_fid.scores import MetricError
from genforce_metrics_fid.testing import TinyGenerator


def pixel_coordinates(resolution: int) -> torch.Tensor:
    """``[R, R, 3]`` homogeneous pixel centres: centre 0, one unit = the image width."""
    c = (torch.arange(resolution, dtype=torch.float64) + 0.5 - resolution / 2) / resolution
    gy, gx = torch.meshgrid(c, c, indexing='ij')
    return torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)


class FourierInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('transform', torch.eye(3))


class FourierSynthesis(nn.Module):
    """Sums of sinusoids with fixed frequencies (``max_freq`` cycles per pixel at most) and
    phases from w, evaluated at ``transform @ [x, y, 1]``: a continuous picture that moves
    exactly as the transform says (``follow=False``: the transform is ignored; ``radial``:
    concentric rings about the centre instead)."""

    def __init__(self, resolution: int, max_freq: float, follow: bool, radial: bool,
                 w_dim: int, waves: int = 12):
        super().__init__()
        self.input = FourierInput()
        self.resolution, self.follow, self.radial = resolution, follow, radial
        rng = torch.Generator().manual_seed(3)
        angle = torch.rand(3, waves, generator=rng) * 2 * math.pi
        radius = (0.3 + 0.7 * torch.rand(3, waves, generator=rng)) * max_freq * resolution
        self.register_buffer('freqs', torch.stack([radius * angle.cos(),
                                                   radius * angle.sin()], dim=-1).double())
        self.to_phase = nn.Linear(w_dim, 3 * waves)

    def forward(self, ws: torch.Tensor, noise_mode: str = 'const') -> torch.Tensor:
        p = pixel_coordinates(self.resolution).to(ws.device)
        if self.follow:
            p = p @ self.input.transform.double().t()
        phases = self.to_phase(ws[:, 0]).double().view(len(ws), 3, -1)
        if self.radial:
            r = p[..., :2].norm(dim=-1)  # [H, W]
            x = torch.einsum('hw,ck->chwk', r, self.freqs.norm(dim=-1))
        else:
            x = torch.einsum('hwj,ckj->chwk', p[..., :2], self.freqs)
        img = torch.sin(2 * math.pi * (x[None] + phases[:, :, None, None, :])).mean(dim=-1)
        return img.float()


class Mapping(nn.Module):
    def __init__(self, z_dim: int, w_dim: int):
        super().__init__()
        self.fc = nn.Linear(z_dim, w_dim)

    def forward(self, z, c):
        return self.fc(z)[:, None].repeat(1, 2, 1)


class FourierToy(nn.Module):
    """StyleGAN3's layout (mapping, synthesis, synthesis.input.transform) around
    :class:`FourierSynthesis`, with ``image_transform`` (the core's contract) written out."""

    def __init__(self, resolution: int = 32, max_freq: float = 0.3, follow: bool = True,
                 radial: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.z_dim, self.c_dim, self.w_dim, self.img_resolution = 4, 0, 8, resolution
        self.mapping = Mapping(self.z_dim, self.w_dim)
        self.synthesis = FourierSynthesis(resolution, max_freq, follow, radial, self.w_dim)

    def forward(self, z, c):
        return self.synthesis(self.mapping(z, c))

    @contextlib.contextmanager
    def image_transform(self, translate=(0.0, 0.0), rotate=0.0):
        """Image turned ``rotate`` degrees counter-clockwise as displayed (y down), then moved
        by ``translate``: output point p shows the input at ``rot(+rotate) (p - t)``."""
        a = math.radians(rotate)
        motion = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0],
                               [0, 0, 1]], dtype=torch.float64) @ torch.tensor(
            [[1, 0, -translate[0]], [0, 1, -translate[1]], [0, 0, 1]], dtype=torch.float64)
        buffer = self.synthesis.input.transform
        stored = buffer.clone()
        buffer.copy_(stored.double() @ motion)
        try:
            yield
        finally:
            buffer.copy_(stored)


def eq(name: str, generator: nn.Module, num_samples: int = 8, batch_size: int = 2) -> float:
    return EQ(name, num_samples=num_samples, batch_size=batch_size,
              progress=False).evaluate_model(generator)[name]


# -- names --------------------------------------------------------------------------------
def test_names_give_kind_and_count():
    assert parse_eq_name('eqt50k_int').kind == 'int'
    assert parse_eq_name('eqt50k_frac').num_samples == 50000
    assert parse_eq_name('eqr50k').kind == 'rot'
    assert parse_eq_name('eqt500_frac').num_samples == 500
    for bad in ('eqt50k', 'eqr50k_int', 'eqx50k', 'eqt0_int', 'eqt50k_full', 'fid50k'):
        with pytest.raises(MetricError, match='unknown equivariance metric'):
            parse_eq_name(bad)


# -- the resampler ------------------------------------------------------------------------
def test_integer_shift_moves_content_and_masks_the_uncovered_edge():
    img = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    out, mask = integer_shift(img, 2, -1)
    assert torch.equal(out[..., 0:4, 2:6], img[..., 1:5, 0:4])
    assert mask.sum() == 4 * 4 and mask[0:4, 2:6].all()
    assert not integer_shift(img, 6, 0)[1].any()


def test_warp_reproduces_a_continuous_picture_moved_by_the_transform():
    toy = FourierToy(resolution=48, max_freq=0.15)
    ws = toy.mapping(torch.randn(2, 4), None)
    orig = toy.synthesis(ws)
    for m in (torch.eye(3, dtype=torch.float64), translation_matrix(0.03, -0.07),
              rotation_matrix(2.0)):
        toy.synthesis.input.transform.copy_(m)
        moved = toy.synthesis(ws)
        ref, mask = warp(orig, m)
        assert 0.2 < mask.float().mean() < 0.8  # the border and the rotated corners are out
        assert psnr(*(v.sum().item() for v in masked_squared_error(ref, moved, mask))) > 45
    # A mask of the input: what only an invalid pixel reaches is invalid too.
    valid = torch.ones(48, 48, dtype=torch.bool)
    valid[:, :24] = False
    _, mask = warp(orig, torch.eye(3, dtype=torch.float64), valid)
    assert not mask[:, :24].any() and mask[8:40, 32:40].all()


# -- the metrics on generators of known equivariance --------------------------------------
def test_eqt_int_is_near_exact_for_a_translation_equivariant_generator():
    assert eq('eqt50k_int', FourierToy()) > 80  # float32 rounding only
    assert eq('eqt50k_int', FourierToy(follow=False)) < 30


def test_eqt_frac_and_eqr_are_high_for_an_equivariant_generator():
    toy = FourierToy(max_freq=0.15)
    assert eq('eqt50k_frac', toy) > 45
    assert eq('eqr50k', toy) > 45
    ignoring = FourierToy(max_freq=0.15, follow=False)
    assert eq('eqt50k_frac', ignoring) < 30
    assert eq('eqr50k', ignoring) < 30


def test_eqr_is_high_for_rings_about_the_centre_even_without_the_transform():
    # Rotation about the image centre leaves concentric rings as they were.
    assert eq('eqr50k', FourierToy(max_freq=0.15, follow=False, radial=True)) > 45


def test_same_seed_same_value_and_the_generator_is_left_as_it_was():
    toy = FourierToy(max_freq=0.15, follow=False)
    before = {k: v.clone() for k, v in toy.state_dict().items()}
    first = eq('eqt50k_frac', toy)
    assert eq('eqt50k_frac', toy) == first
    assert all(torch.equal(before[k], v) for k, v in toy.state_dict().items())
    assert EQ('eqt50k_frac', num_samples=8, batch_size=2, seed=1,
              progress=False).evaluate_model(toy)['eqt50k_frac'] != first


def test_a_generator_without_input_transform_is_refused():
    with pytest.raises(MetricError, match=r'eqr50k needs a generator that can translate and '
                                          r'rotate its images.*TinyGenerator has none'):
        EQ('eqr50k', num_samples=2, progress=False).evaluate_model(TinyGenerator())
    with pytest.raises(MetricError, match='num_samples=0'):
        EQ('eqr50k', num_samples=0)
    with pytest.raises(MetricError, match='no pixel has a valid correspondence'):
        equivariance_psnr(FourierToy(resolution=8), parse_eq_name('eqr2'))


# -- the tiny StyleGAN3-T model -----------------------------------------------------------
def tiny_stylegan3(name: str):
    """The StyleGAN3 plugin's tiny test model ``name`` (a training model, 16x16)."""
    from genforce_core.api import MODELS
    from genforce_core.testing import model_cases

    case = next(c for c in model_cases('stylegan3') if c.name == name)
    torch.manual_seed(0)
    return MODELS.build(dict(case.model)), case


@pytest.fixture(scope='module')
def stylegan3_t():
    pytest.importorskip('genforce_stylegan3')
    return tiny_stylegan3('stylegan3t_tiny')


def test_tiny_stylegan3_t_gives_finite_values(stylegan3_t):
    model = stylegan3_t[0]
    values = {name: eq(name, model, num_samples=4, batch_size=4)
              for name in ('eqt50k_int', 'eqt50k_frac', 'eqr50k')}
    assert all(math.isfinite(v) and v > 0 for v in values.values()), values
    assert torch.equal(model.generator.synthesis.input.transform, torch.eye(3))
    # As in the paper, only the R config (radial 1x1 filters) is rotation-equivariant; with
    # the reference moved the wrong way, both are far lower (about 25 dB).
    rotating = eq('eqr50k', tiny_stylegan3('stylegan3r_tiny')[0], num_samples=4, batch_size=4)
    assert rotating > values['eqr50k'] + 20 and rotating > 60, (rotating, values)


def test_metrics_command_computes_them_for_a_stylegan3_checkpoint(stylegan3_t, tmp_path,
                                                                  capsys):
    from mmengine.config import Config

    from genforce_core.api import save_checkpoint
    from genforce_core.cli.main import main
    from genforce_core.stored_config import config_to_data

    model, case = stylegan3_t
    path = tmp_path / 'snapshot.pth'
    save_checkpoint({'meta': {'cfg': config_to_data(Config(dict(model=dict(case.model))))},
                     'state_dict': model.state_dict()}, path)
    assert main(['metrics', str(path), '--metrics', 'eqt50k_int,eqr50k', '--num', '2',
                 '--no-progress']) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line['metric'] for line in lines] == ['eqt50k_int', 'eqr50k']
    assert all(math.isfinite(line['results'][line['metric']]) for line in lines)
    assert lines[0]['num_override'] == 2


def test_registered_for_the_generative_loops(stylegan3_t):
    """`genforce test` / KimgEvalHook: the loop builds EQ from METRICS and calls it."""
    from types import SimpleNamespace

    from genforce_core.api import METRICS
    from genforce_metrics_fid.loops import run_generative_evaluation

    metrics = [METRICS.build(dict(type='EQ', name=name, num_samples=2, progress=False))
               for name in ('eqt50k_frac', 'eqr50k')]
    hooks = []
    runner = SimpleNamespace(model=stylegan3_t[0],
                             call_hook=lambda name, **kw: hooks.append((name, kw)),
                             logger=SimpleNamespace(info=lambda msg: None))
    loop = SimpleNamespace(runner=runner, evaluator=SimpleNamespace(metrics=metrics),
                           dataloader=SimpleNamespace(dataset=None))
    results = run_generative_evaluation(loop, 'test_step', 'test')
    assert set(results) == {'eqt50k_frac', 'eqr50k'}
    assert ('after_test_epoch', {'metrics': results}) in hooks
