"""The blur of the discriminator's inputs at the start of StyleGAN3 training."""
from __future__ import annotations

import math

import pytest
import torch

from genforce_core.api import MODELS, load_plugins
from genforce_stylegan3 import plugin
from genforce_stylegan3.blur import blur_images, blur_sigma, gaussian_kernel


def test_the_kernel_halves_at_sigma_and_has_floor_3_sigma_taps_per_side():
    for sigma, radius in ((1.0, 3), (0.4, 1), (10.0, 30), (2.5, 7)):
        f = gaussian_kernel(sigma)
        assert f.shape == (2 * radius + 1,)
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        expected = 0.5 ** (x / sigma) ** 2
        assert torch.allclose(f.double(), expected / expected.sum(), atol=1e-7)
    f = gaussian_kernel(1.0)
    assert math.isclose(float(f[4] / f[3]), 0.5, rel_tol=1e-6)  # half at x = sigma = 1
    img = torch.randn(1, 1, 8, 8)
    assert blur_images(img, 0.3) is img  # one tap: no blur
    with pytest.raises(ValueError, match='sigma'):
        gaussian_kernel(0.0)


def test_sigma_fades_linearly_with_the_images_seen():
    assert blur_sigma(0, 10, 200) == 10
    assert blur_sigma(50_000, 10, 200) == pytest.approx(7.5)
    assert blur_sigma(100_000, 10, 200) == pytest.approx(5)
    assert blur_sigma(200_000, 10, 200) == 0
    assert blur_sigma(10**9, 10, 200) == 0
    assert blur_sigma(0, 10, 0) == 0  # no fade period: no blur
    assert blur_sigma(0, 0, 200) == 0


def test_the_blur_is_the_separable_gaussian_and_sigma_0_changes_nothing():
    img = torch.randn(2, 3, 16, 16)
    assert blur_images(img, 0.0) is img
    impulse = torch.zeros(1, 1, 15, 15)
    impulse[0, 0, 7, 7] = 1
    f = gaussian_kernel(1.4)  # radius 4
    out = blur_images(impulse, 1.4, impl='ref')
    assert out.shape == impulse.shape
    r = f.numel() // 2
    assert torch.allclose(out[0, 0, 7 - r:8 + r, 7 - r:8 + r], torch.outer(f, f), atol=1e-7)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-6)
    const = blur_images(torch.ones(1, 1, 20, 20), 1.0, impl='ref')  # zero padding at borders
    assert torch.allclose(const[0, 0, 5:15, 5:15], torch.ones(10, 10), atol=1e-6)
    assert float(const[0, 0, 0, 0]) < 0.9


def _models(**blur):
    load_plugins()
    cfg = plugin.genforce_test_models()[1]['model']  # stylegan3r_tiny
    torch.manual_seed(0)
    plain = MODELS.build(dict(cfg))
    blurred = MODELS.build(dict(cfg, **blur))
    blurred.load_state_dict(plain.state_dict())
    return plain.train(), blurred.train()


def _d_losses(model, real, c):
    torch.manual_seed(3)
    losses = model._d_main_losses(real, c)
    torch.manual_seed(3)
    losses.update(model.d_reg(model, real, c))
    return losses


def test_the_training_model_blurs_what_d_sees_and_stops_after_the_fade():
    plain, blurred = _models(blur_init_sigma=2.0, blur_fade_kimg=0.1)
    torch.manual_seed(1)
    real, c = torch.randn(2, 3, 16, 16), torch.zeros(2, 0)
    base = _d_losses(plain, real, c)
    on = _d_losses(blurred, real, c)
    assert blurred.blur_sigma == 2.0
    for key in ('loss_d_real', 'loss_d_fake', 'loss_r1', 'r1_penalty'):
        assert not torch.allclose(base[key], on[key]), key
    torch.manual_seed(3)
    g_plain = plain._g_main_losses(2, c)
    torch.manual_seed(3)
    g_on = blurred._g_main_losses(2, c)
    assert not torch.allclose(sum(g_plain.values()), sum(g_on.values()))

    plain.images_seen.fill_(100)  # past the fade (0.1 kimg): identical to no blur
    blurred.images_seen.fill_(100)
    assert blurred.blur_sigma == 0
    after, after_on = _d_losses(plain, real, c), _d_losses(blurred, real, c)
    for key in after:
        assert torch.equal(after[key], after_on[key]), key


def test_resume_blurs_exactly_as_the_uninterrupted_run():
    _, model = _models(blur_init_sigma=10.0, blur_fade_kimg=200)
    model.images_seen.fill_(30_000)
    assert model.blur_sigma == pytest.approx(8.5)
    _, resumed = _models(blur_init_sigma=10.0, blur_fade_kimg=200)
    resumed.load_state_dict(model.state_dict())  # what a checkpoint carries
    assert resumed.blur_sigma == model.blur_sigma
    img, c = torch.randn(2, 3, 16, 16), torch.zeros(2, 0)
    with torch.no_grad():
        assert torch.equal(resumed.discriminate(img, c), model.discriminate(img, c))


def test_bad_blur_settings_are_refused():
    load_plugins()
    cfg = plugin.genforce_test_models()[0]['model']
    with pytest.raises(ValueError, match='blur_init_sigma'):
        MODELS.build(dict(cfg, blur_init_sigma=-1.0))


def test_with_ada_the_images_are_blurred_then_augmented():
    load_plugins()
    cfg = dict(plugin.genforce_test_models()[0]['model'], type='StyleGAN3ADA',
               blur_init_sigma=1.5, augment=dict(type='AugmentPipe', preset='bgc', p=0.0))
    model = MODELS.build(cfg)
    seen = []
    model.augment_pipe.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    img, c = torch.randn(2, 3, 16, 16), torch.zeros(2, 0)
    with torch.no_grad():
        model.discriminate(img, c)
    assert torch.equal(seen[0], blur_images(img, 1.5))
