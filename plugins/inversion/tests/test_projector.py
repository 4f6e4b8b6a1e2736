"""Projection by optimisation recovers codes of images the generator made itself."""
from __future__ import annotations

import math

import pytest
import torch

from genforce_inversion.perceptual import VGG16Features
from genforce_inversion.projector import (
    learning_rate,
    noise_buffers,
    noise_regularization,
    override_buffers,
    project,
)


@pytest.mark.parametrize('w_plus', [False, True])
def test_projection_recovers_a_generated_image(tiny_generator, vgg_weights, w_plus):
    G = tiny_generator(32)
    with torch.no_grad():
        w = G.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(5)), None)
        target = G.synthesis(w, noise_mode='const')
    result = project(G, target, VGG16Features(weights=vgg_weights), num_steps=100,
                     w_plus=w_plus, w_avg_samples=1000)
    assert result.ws.shape == (2, G.num_ws, G.w_dim)
    start, end = result.mse[0], float((result.images - target).square().mean())
    assert end * 10 <= start, (start, end)
    with torch.no_grad(), override_buffers(G.synthesis, result.noise):  # codes reproduce it
        again = G.synthesis(result.ws, noise_mode='const')
    torch.testing.assert_close(again, result.images)
    if not w_plus:  # one w for all layers
        assert torch.equal(result.ws, result.ws[:, :1].expand_as(result.ws))
    assert set(result.noise) == set(noise_buffers(G))


def test_projection_starts_from_given_codes(tiny_generator):
    G = tiny_generator(16)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, 16), None)
        target = G.synthesis(ws, noise_mode='const')
    result = project(G, target, None, num_steps=2, w_plus=True, initial_ws=ws,
                     optimize_noise=False, initial_noise_factor=0, w_avg_samples=100)
    assert result.mse[0] < 1e-10  # the first step renders the given codes
    assert result.noise == {}


def test_noise_regularization_penalises_correlated_noise():
    torch.manual_seed(0)
    white = torch.randn(1, 1, 32, 32)
    smooth = torch.nn.functional.interpolate(torch.randn(1, 1, 4, 4), size=32, mode='bilinear')
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert float(noise_regularization([white])) < 0.01
    assert float(noise_regularization([smooth])) > 1.0
    assert noise_regularization([white, smooth]).shape == (1,)


def test_learning_rate_ramps():
    lr = [learning_rate(s, 1000, 0.1, 0.05, 0.25) for s in range(1000)]
    assert lr[0] == 0 and lr[25] == pytest.approx(0.05)
    assert lr[50] == lr[500] == 0.1
    assert lr[875] == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.5 * math.pi)))
    assert lr[999] < 1e-4


def test_override_buffers_restores_the_originals(tiny_generator):
    G = tiny_generator(16)
    name, original = next(iter(noise_buffers(G).items()))
    with override_buffers(G.synthesis, {name: torch.zeros(2, 1, *original.shape)}):
        assert dict(G.synthesis.named_buffers())[name].shape[0] == 2
    assert dict(G.synthesis.named_buffers())[name] is original


def test_bad_target_shape(tiny_generator):
    with pytest.raises(ValueError, match='16, 16'):
        project(tiny_generator(16), torch.zeros(1, 3, 8, 8), None, num_steps=1)
