"""Fixtures: the official StyleGAN2-ADA reference networks and vectors (config A).

The vectors are part of the checkout (``tests/testdata/stylegan2ada_official_A``, see its
README); ``$GENFORCE_TESTDATA`` overrides the folder. Without them the tests that need them fail.
"""
from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from genforce_core.testing import find_testdata

NAME = 'stylegan2ada_official_A'
FILES = ('meta.json', 'G.npz', 'D.npz', 'io.npz')
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope='session')
def official():
    """Official networks (our classes, official weights), their kwargs and the vectors."""
    data = find_testdata(NAME, REPO, FILES)
    from genforce_stylegan2.networks import Discriminator, Generator
    from genforce_stylegan2.weights import load_official_npz

    meta = json.loads((data / 'meta.json').read_text())
    G = Generator(**meta['G_init_kwargs'])
    G.load_state_dict(load_official_npz(data / 'G.npz'))
    D = Discriminator(**meta['D_init_kwargs'])
    D.load_state_dict(load_official_npz(data / 'D.npz'))
    io = {k: torch.from_numpy(v) for k, v in np.load(data / 'io.npz').items()}
    return types.SimpleNamespace(G=G.eval(), D=D.eval(), g_kwargs=meta['G_init_kwargs'],
                                 d_kwargs=meta['D_init_kwargs'], io=io)


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.detach().double() - b.detach().double()).abs().max().item()


@pytest.fixture
def check_official_outputs():
    """Assert that a loaded generator (and discriminator) reproduce the official vectors."""
    def check(official, G, D=None, atol=1e-4):
        io = official.io
        G.eval()  # training mode would move w_avg
        if D is not None:
            D.eval()
        with torch.no_grad():
            errs = {
                'img': max_err(G(io['z'], io['c'], noise_mode='const'), io['img']),
                'img_psi0.7': max_err(G(io['z'], io['c'], truncation_psi=0.7,
                                        noise_mode='const'), io['img_psi0.7']),
                'img_noise_none': max_err(G.synthesis(io['ws'], noise_mode='none'),
                                          io['img_noise_none']),
                'ws': max_err(G.mapping(io['z'], io['c']), io['ws']),
            }
            if D is not None:
                errs['d_logits'] = max_err(D(io['img'], io['c']), io['d_logits'])
        assert all(err <= atol for err in errs.values()), errs
        return errs
    return check
