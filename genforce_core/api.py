"""Python API for inference: load the generator of any checkpoint that genforce trained."""
from __future__ import annotations

import os

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .config import load_config
from .errors import CheckpointError
from .plugins import load_plugins
from .registry import MODELS, explaining_misses
from .stored_config import check_registered_types, config_from_checkpoint


def load_generator(path_or_name: str | os.PathLike, device: str | torch.device = 'cpu',
                   config: str | os.PathLike | None = None) -> nn.Module:
    """The EMA generator of a genforce checkpoint, in eval mode on ``device``.

    The model is rebuilt from the config stored in the checkpoint (plain data, never run; only
    registered types are built) or from the config file ``config``, so it works
    for every registered family: ``G = load_generator('work_dirs/x/iter_1000.pth');
    img = G(z, c)``. Model-zoo names are resolved by installed plugins that contribute zoo
    entries (``genforce zoo list``); a name that no plugin knows is an error.
    """
    path = os.fspath(path_or_name)
    if not os.path.isfile(path):
        zoo = {e['name']: e for e in load_plugins().model_zoo()}
        if path not in zoo:
            raise CheckpointError(f'{path} is neither a checkpoint file nor a model-zoo name '
                                  f'(known names: {", ".join(sorted(zoo)) or "none"})')
        raise CheckpointError(f'{path} is a model-zoo entry; download it first with '
                              f'`genforce zoo download {path}` and pass the file')
    checkpoint = load_checkpoint(path)
    if config is not None:
        cfg = load_config(os.fspath(config))
    else:
        cfg = config_from_checkpoint(checkpoint, path)
        check_registered_types(cfg.get('model'), path)
    if 'state_dict' not in checkpoint:
        raise CheckpointError(f'{path} has no state_dict')
    load_plugins()
    with explaining_misses():
        model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(checkpoint['state_dict'], strict=False)
    if missing or unexpected:
        raise CheckpointError(f'{path} does not fit its model: missing {missing[:10]}, '
                              f'unexpected {unexpected[:10]}')
    generator = getattr(model, 'inference_generator', model)
    return generator.eval().requires_grad_(False).to(device)
