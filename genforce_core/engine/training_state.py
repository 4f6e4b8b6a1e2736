"""The parts of a run's state that mmengine does not checkpoint: RNG states per rank and the
data sampler's position. Together with weights, optimizers and the iteration they make a
resumed run continue exactly where it stopped."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size

META_KEY = 'genforce'


def rng_state() -> dict[str, Any]:
    """This process's RNG states (python, numpy, torch CPU and CUDA)."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    # RNG states are CPU byte tensors, but a resume on a GPU loads the checkpoint onto it
    # (mmengine's map_location 'default'), and torch only takes them back from the CPU.
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def _as_python_state(state):
    # A safe load returns lists where random.getstate() had tuples.
    version, internal, gauss = state
    return int(version), tuple(int(x) for x in internal), gauss


def gather_training_state(samples_consumed: int) -> dict[str, Any]:
    """Collect every rank's RNG state and sampler position (call on all ranks)."""
    local = dict(rng=rng_state(), samples_consumed=samples_consumed)
    states = all_gather_object(local) if get_world_size() > 1 else [local]
    return dict(ranks=states)


def local_training_state(meta: dict[str, Any]) -> dict[str, Any] | None:
    """This rank's share of a checkpoint's training state, or None if it has none (a
    checkpoint from another tool, or from a run with a different number of ranks)."""
    saved = (meta or {}).get(META_KEY)
    if not saved:
        return None
    ranks = saved.get('ranks', [])
    if len(ranks) != get_world_size():
        return None
    return ranks[get_rank()]
