"""StyleGAN3 trains with the StyleGAN2 discriminator: the StyleGAN2 plugin's
``StyleGAN2Discriminator`` with the official StyleGAN3-repository weights reproduces its logits,
R1 penalty and the R1 penalty's gradient (second order) on the reference images."""
from __future__ import annotations

import pytest
import torch

from genforce_stylegan2.networks import Discriminator
from genforce_stylegan2.weights import load_official_npz


@pytest.fixture(scope='module')
def discriminator(reference):
    torch.manual_seed(0)
    D = Discriminator(**reference.meta()['D_init_kwargs']).eval()
    D.load_state_dict(load_official_npz(reference.data_dir() / 'D.npz'), strict=True)
    return D


def _within(got, expected, rtol_of_max, name):
    diff = (got - expected).abs().max().item()
    bound = rtol_of_max * expected.abs().max().item()
    assert got.shape == expected.shape and diff <= bound, f'{name}: {diff:.3g} > {bound:.3g}'


@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_logits_r1_and_its_gradient(reference, discriminator, cfg):
    io = {k: torch.from_numpy(v) for k, v in reference.arrays(cfg, 'io').items()}
    real = io['img'].clone().requires_grad_(True)
    c = torch.zeros(real.shape[0], 0)
    logits = discriminator(real, c)
    _within(logits.detach(), io['d_logits'], 1e-4, 'd_logits')
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    penalty = grad.square().sum(dim=[1, 2, 3])
    _within(penalty.detach(), io['r1_penalty'], 1e-4, 'r1_penalty')
    (grad2,) = torch.autograd.grad(penalty.sum(), real)
    expected = io['r1_grad_wrt_real']
    rel_l2 = ((grad2 - expected).norm() / expected.norm()).item()
    assert rel_l2 <= 1e-3, f'r1_grad_wrt_real: relative L2 {rel_l2:.3g}'
