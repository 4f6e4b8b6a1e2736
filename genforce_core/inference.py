"""Loading trained generators for inference (re-exported by :mod:`genforce_core.api`)."""
from __future__ import annotations

import os

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .config import load_config
from .errors import CheckpointError, UsageError
from .plugins import load_plugins
from .registry import MODELS, explaining_misses
from .stored_config import check_registered_types, config_from_checkpoint


class DeviceError(UsageError):
    """A device string that is not a device, or names one this machine does not have."""


def available_devices() -> list[str]:
    """The devices torch can use here: ``cpu``, then ``cuda:N``, ``mps``, ``xpu:N``."""
    devices = ['cpu']
    if torch.cuda.is_available():
        devices += [f'cuda:{i}' for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, 'mps', None)
    if mps is not None and mps.is_available():
        devices.append('mps')
    xpu = getattr(torch, 'xpu', None)
    if xpu is not None and xpu.is_available():
        devices += [f'xpu:{i}' for i in range(xpu.device_count())]
    return devices


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it, else a :class:`DeviceError`
    naming the devices it does have (checked before anything is loaded)."""
    available = available_devices()
    here = f'this machine has {", ".join(available)}'
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f'{device!r} is not a torch device name (e.g. cpu, cuda, cuda:1, '
                          f'mps); {here}') from None
    if dev.type == 'cpu':
        return dev
    of_type = [d for d in available if d.split(':')[0] == dev.type]
    if not of_type:
        raise DeviceError(f'device {str(device)!r} is not available: torch sees no '
                          f'{dev.type.upper()} device; {here}')
    if dev.index is not None and dev.index >= max(len(of_type), 1):
        raise DeviceError(f'device {str(device)!r} is not available: only {len(of_type)} '
                          f'{dev.type.upper()} device(s); {here}')
    return dev


def load_generator(path_or_name: str | os.PathLike, device: str | torch.device = 'cpu',
                   config: str | os.PathLike | None = None) -> nn.Module:
    """The EMA generator of a genforce checkpoint, in eval mode on ``device``.

    The model is rebuilt from the config stored in the checkpoint (plain data, never run; only
    registered types are built) or from the config file ``config``, so it works
    for every registered family: ``G = load_generator('work_dirs/x/iter_1000.pth');
    img = G(z, c)``. Model-zoo names are resolved by installed plugins that contribute zoo
    entries (``genforce zoo list``); a name that no plugin knows is an error. A ``device``
    this machine does not have is a :class:`DeviceError` before anything is loaded.
    """
    device = check_device(device)
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
