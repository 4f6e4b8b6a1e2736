"""The model-agnostic GAN: phases and lazy regularization, losses, EMA, optimizers."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genforce_core.engine.optim import GANOptimWrapperConstructor, lazy_regularization_ratio
from genforce_core.models import GAN, GeneratorEMA, NonFiniteLossError, R1Penalty


class TinyG(nn.Module):
    def __init__(self, z_dim=4, c_dim=0):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.fc = nn.Linear(z_dim + c_dim, 3 * 4 * 4)
        self.register_buffer('w_avg', torch.zeros(3))

    def forward(self, z, c):
        self.w_avg.add_(1)  # a tracked buffer, like StyleGAN's w_avg
        return torch.tanh(self.fc(torch.cat([z, c], 1))).view(-1, 3, 4, 4)


class TinyD(nn.Module):
    def __init__(self, c_dim=0):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4 + c_dim, 1)

    def forward(self, img, c):
        return self.fc(torch.cat([img.flatten(1), c], 1))


def make_gan(**kwargs) -> GAN:
    torch.manual_seed(0)
    kwargs.setdefault('ema', dict(half_life_kimg=0.01, rampup=None))
    return GAN(generator=TinyG(), discriminator=TinyD(), **kwargs)


def optimizers(gan):
    cfg = dict(generator=dict(optimizer=dict(type='Adam', lr=0.01, betas=(0.0, 0.99))),
               discriminator=dict(optimizer=dict(type='Adam', lr=0.01, betas=(0.0, 0.99))))
    return GANOptimWrapperConstructor(cfg)(gan)


def batch(n=4):
    return dict(img=torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8),
                label=torch.zeros(n, 0))


def test_lazy_regularization_rescales_adam():
    assert lazy_regularization_ratio(None) == 1.0
    assert lazy_regularization_ratio(16) == 16 / 17
    gan = make_gan(d_reg=dict(type='R1Penalty', gamma=1.0, interval=16))
    optim = optimizers(gan)
    d = optim['discriminator'].optimizer.param_groups[0]
    g = optim['generator'].optimizer.param_groups[0]
    assert d['lr'] == pytest.approx(0.01 * 16 / 17)
    assert d['betas'] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert g['lr'] == 0.01 and g['betas'] == (0.0, 0.99)  # no G regularizer


def test_regularizers_run_as_separate_passes_at_their_interval():
    gan = make_gan(d_reg=dict(type='R1Penalty', gamma=1.0, interval=2))
    optim = optimizers(gan)
    logs = [gan.train_step(batch(), optim) for _ in range(4)]
    assert ['loss_r1' in log for log in logs] == [True, False, True, False]
    assert all({'loss_g', 'loss_d_real', 'loss_d_fake'} <= log.keys() for log in logs)
    assert int(gan.images_seen) == 16 and int(gan.num_steps) == 4
    assert logs[-1]['kimg'] == 0.016


def test_r1_matches_its_formula():
    gan = make_gan()
    real = torch.randn(5, 3, 4, 4)
    c = torch.zeros(5, 0)
    out = R1Penalty(gamma=3.0, interval=4)(gan, real, c)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(gan.discriminator(x, c).sum(), x)
    expected = grad.square().sum([1, 2, 3]).mean()
    assert torch.allclose(out['r1_penalty'], expected)
    assert torch.allclose(out['loss_r1'], expected * 3.0 / 2 * 4)


def test_ema_half_life_rampup_and_buffers():
    ema = GeneratorEMA(half_life_kimg=10, rampup=0.05)
    assert ema.beta(batch_size=32, images_seen=10**7) == pytest.approx(0.5 ** (32 / 10000))
    assert ema.beta(batch_size=32, images_seen=1000) == pytest.approx(0.5 ** (32 / 50))
    src, dst = TinyG(), TinyG()
    src.w_avg.fill_(7)
    old = [p.clone() for p in dst.parameters()]
    beta = ema.update(dst, src, batch_size=32, images_seen=1000)
    for p_new, p_old, p_src in zip(dst.parameters(), old, src.parameters()):
        assert torch.allclose(p_new, p_old * beta + p_src * (1 - beta))
    assert torch.equal(dst.w_avg, src.w_avg)  # buffers are copied, not averaged
    assert 0 < beta < 1


def test_ema_generator_tracks_training():
    gan = make_gan()
    optim = optimizers(gan)
    before = [p.clone() for p in gan.generator_ema.parameters()]
    gan.train_step(batch(), optim)
    moved = [not torch.equal(a, b) for a, b in zip(before, gan.generator_ema.parameters())]
    assert all(moved)
    assert torch.equal(gan.generator_ema.w_avg, gan.generator.w_avg)


def test_only_the_network_being_trained_changes_in_its_phase():
    gan = make_gan(ema=None)
    optim = optimizers(gan)
    d_before = [p.clone() for p in gan.discriminator.parameters()]
    gan._train_only(gan.generator)
    gan._run_phase(optim['generator'], gan.generator, 'Gmain',
                   lambda: gan._g_main_losses(4, torch.zeros(4, 0)))
    assert all(torch.equal(a, b) for a, b in zip(d_before, gan.discriminator.parameters()))
    assert all(p.grad is None for p in gan.discriminator.parameters())


def test_nonfinite_loss_names_the_phase_and_step():
    gan = make_gan()
    optim = optimizers(gan)
    with torch.no_grad():
        gan.generator.fc.weight.fill_(math.nan)
    with pytest.raises(NonFiniteLossError, match=r'phase Gmain at training step 0 \(loss_g=nan'):
        gan.train_step(batch(), optim)


def test_conditional_generation_uses_batch_labels():
    torch.manual_seed(0)
    gan = GAN(generator=TinyG(c_dim=3), discriminator=TinyD(c_dim=3), ema=None)
    optim = optimizers(gan)
    data = batch()
    data['label'] = torch.eye(3)[[0, 1, 2, 0]]
    log = gan.train_step(data, optim)
    assert math.isfinite(float(log['loss_g']))
    assert gan.synthesize(torch.randn(2, 4), torch.eye(3)[:2]).shape == (2, 3, 4, 4)


def test_channels_last_option():
    gan = GAN(generator=TinyG(), discriminator=nn.Conv2d(3, 1, 4), channels_last=True)
    assert gan.discriminator.weight.is_contiguous(memory_format=torch.channels_last)
    out = gan.data_preprocessor(batch(), True)
    assert out['img'].is_contiguous(memory_format=torch.channels_last)
    assert out['img'].min() >= -1 and out['img'].max() <= 1
