"""The StyleGAN3 training model's EMA rule: only the fakes of D's main step move the EMAs."""
from __future__ import annotations

import torch

from genforce_core.api import MODELS, load_plugins
from genforce_stylegan3 import plugin


def _model(style_mixing_prob: float = 0.0):
    load_plugins()
    torch.manual_seed(0)
    cfg = dict(plugin.genforce_test_models()[0]['model'], style_mixing_prob=style_mixing_prob)
    return MODELS.build(cfg)


def _emas(model):
    G = model.generator
    layers = [getattr(G.synthesis, name).magnitude_ema.clone() for name in G.synthesis.layer_names]
    return G.mapping.w_avg.clone(), torch.stack(layers)


def test_only_the_discriminator_main_step_updates_the_emas():
    model = _model().train()
    real = torch.randn(2, 3, 16, 16)
    c = torch.zeros(2, 0)
    w_avg, mags = _emas(model)
    with torch.no_grad():
        model.generate(model.sample_z(2), c)  # the generator's own passes: no update
    assert torch.equal(_emas(model)[0], w_avg) and torch.equal(_emas(model)[1], mags)
    model._d_main_losses(real, c)
    new_w_avg, new_mags = _emas(model)
    assert not torch.equal(new_w_avg, w_avg)
    assert (new_mags != mags).all()  # every layer, ToRGB included
    assert model._update_emas is False


def test_the_mixing_latent_does_not_move_w_avg():
    model = _model(style_mixing_prob=1.0).train()
    z = model.sample_z(3)
    c = torch.zeros(3, 0)
    expected = model.generator.mapping.w_avg.clone()
    with torch.no_grad():
        mean_w = model.generator.mapping(z, c, update_emas=False)[:, 0].mean(dim=0)
        expected = mean_w.lerp(expected, model.generator.mapping.w_avg_beta)
        model._update_emas = True
        torch.manual_seed(5)
        model.generate(z, c)
    model._update_emas = False
    assert torch.allclose(model.generator.mapping.w_avg, expected, atol=1e-6)
