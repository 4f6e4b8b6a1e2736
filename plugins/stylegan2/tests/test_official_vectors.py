"""Faithfulness: official StyleGAN2-ADA weights give the official outputs (CPU, float32).

Reference vectors: ``tests/testdata/stylegan2ada_official_A`` of the checkout (see its README);
``$GENFORCE_TESTDATA`` overrides the folder. Without them every test here fails.

Every vector must agree to 1e-4 absolute, and, for the tiny R1 vectors, to 1e-3 of their
largest magnitude as well.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genforce_core.testing import find_testdata
from genforce_stylegan2.losses import path_lengths
from genforce_stylegan2.networks import Discriminator, Generator
from genforce_stylegan2.ops import conv2d_gradfix
from genforce_stylegan2.weights import load_official_npz

NAME = 'stylegan2ada_official_A'
FILES = ('meta.json', 'G.npz', 'D.npz', 'io.npz')
REPO = Path(__file__).resolve().parents[3]

ATOL = 1e-4
RTOL_OF_SCALE = 1e-3


def _assert_matches(actual: torch.Tensor, expected: torch.Tensor, name: str) -> float:
    assert actual.shape == expected.shape, f'{name}: {actual.shape} != {expected.shape}'
    err = (actual.detach().double() - expected.double()).abs().max().item()
    scale = expected.abs().max().item()
    assert err <= ATOL, f'{name}: max abs error {err:.3g} > {ATOL}'
    assert err <= RTOL_OF_SCALE * scale, (
        f'{name}: max abs error {err:.3g} is more than {RTOL_OF_SCALE} of the scale {scale:.3g}')
    return err


@pytest.fixture(scope='module')
def data_dir():
    return find_testdata(NAME, REPO, FILES)  # missing reference data fails every test


@pytest.fixture(scope='module')
def official(data_dir):
    torch.manual_seed(0)
    meta = json.loads((data_dir / 'meta.json').read_text())
    G = Generator(**meta['G_init_kwargs'])
    D = Discriminator(**meta['D_init_kwargs'])
    G.load_state_dict(load_official_npz(data_dir / 'G.npz'), strict=True)
    D.load_state_dict(load_official_npz(data_dir / 'D.npz'), strict=True)
    assert G.mapping.w_avg_beta == meta['w_avg_beta']
    io = {key: torch.from_numpy(value) for key, value in np.load(data_dir / 'io.npz').items()}
    return G.eval().requires_grad_(False), D.eval().requires_grad_(False), io


def test_official_state_dicts_load_by_plain_torch(data_dir):
    """The documented one-liner works: every official key, no conversion, strict."""
    meta = json.loads((data_dir / 'meta.json').read_text())
    for cls, kwargs, file in ((Generator, meta['G_init_kwargs'], 'G.npz'),
                              (Discriminator, meta['D_init_kwargs'], 'D.npz')):
        net = cls(**kwargs)
        state = {k: torch.from_numpy(v) for k, v in np.load(data_dir / file).items()}
        net.load_state_dict(state, strict=True)
        assert set(net.state_dict()) == set(state)


def test_mapping(official):
    G, _, io = official
    _assert_matches(G.mapping(io['z'], io['c'], truncation_psi=1), io['ws'], 'ws')
    _assert_matches(G.mapping(io['z'], io['c'], truncation_psi=0.7, truncation_cutoff=None),
                    io['ws_psi0.7'], 'ws_psi0.7')


@pytest.mark.parametrize('ws_key,img_key,noise_mode', [
    ('ws', 'img', 'const'),
    ('ws_psi0.7', 'img_psi0.7', 'const'),
    ('ws', 'img_noise_none', 'none'),
])
@pytest.mark.parametrize('fused_modconv', [True, False])
def test_synthesis(official, ws_key, img_key, noise_mode, fused_modconv):
    G, _, io = official
    img = G.synthesis(io[ws_key], noise_mode=noise_mode, fused_modconv=fused_modconv)
    _assert_matches(img, io[img_key], img_key)


def test_generator_end_to_end(official):
    G, _, io = official
    _assert_matches(G(io['z'], io['c'], noise_mode='const'), io['img'], 'G(z, c)')


def test_discriminator_logits(official):
    _, D, io = official
    _assert_matches(D(io['img'], io['c']), io['d_logits'], 'd_logits')


@pytest.mark.parametrize('skip_weight_grads', [True, False])
def test_r1_penalty_and_its_gradient(official, skip_weight_grads):
    _, D, io = official
    D = D.requires_grad_(True)
    try:
        real = io['img'].clone().requires_grad_(True)
        with conv2d_gradfix.no_weight_gradients(skip_weight_grads):
            grad, = torch.autograd.grad(D(real, io['c']).sum(), [real], create_graph=True)
        penalty = grad.square().sum(dim=[1, 2, 3])
        _assert_matches(penalty, io['r1_penalty'], 'r1_penalty')
        grad2, = torch.autograd.grad(penalty.sum(), [real])
        _assert_matches(grad2, io['r1_grad_wrt_real'], 'r1_grad_wrt_real')
    finally:
        D.requires_grad_(False)


@pytest.mark.parametrize('fused_modconv', [True, False])
def test_path_length(official, fused_modconv):
    G, _, io = official
    ws = io['ws'].clone().requires_grad_(True)
    lengths, _ = path_lengths(G.synthesis, ws, io['pl_noise'], noise_mode='const',
                              fused_modconv=fused_modconv)
    _assert_matches(lengths, io['pl_lengths'], 'pl_lengths')


@pytest.mark.parametrize('style', ['train_mode', 'update_emas'])
def test_w_avg_update(official, style):
    G, _, io = official
    mapping = G.mapping
    saved = mapping.w_avg.clone()
    try:
        if style == 'train_mode':  # StyleGAN2-ADA (2020): training-mode calls update w_avg
            mapping.train()
            mapping(io['z'], io['c'])
            mapping(io['z'], io['c'], skip_w_avg_update=True)  # ... unless told not to
            mapping(io['z'], io['c'], update_emas=False)
        else:  # StyleGAN3-era API: an explicit flag, in any mode
            mapping.eval()
            mapping(io['z'], io['c'])  # eval mode: no update
            mapping(io['z'], io['c'], update_emas=True)
        _assert_matches(mapping.w_avg, io['w_avg_after_update'], 'w_avg_after_update')
    finally:
        mapping.eval()
        mapping.w_avg.copy_(saved)
