"""RNG states saved with a checkpoint come back exactly, also when the checkpoint was loaded
onto a GPU (mmengine's resume maps every tensor to the current device)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from genforce_core.engine.training_state import rng_state, set_rng_state

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason='needs a CUDA device')


def draws() -> list:
    values = [random.random(), float(np.random.rand()), torch.rand(3).tolist()]
    if CUDA:
        values.append(torch.rand(3, device='cuda').tolist())
    return values


def test_rng_states_come_back():
    torch.manual_seed(0)
    state = rng_state()
    first = draws()
    draws()
    set_rng_state(state)
    assert draws() == first


@needs_cuda
def test_rng_states_loaded_onto_the_gpu_come_back():
    torch.cuda.init()
    state = rng_state()
    first = draws()
    state['torch'] = state['torch'].cuda()
    state['cuda'] = [s.cuda() for s in state['cuda']]
    set_rng_state(state)
    assert draws() == first
