"""Small helpers the hooks share (plugins reach them through :mod:`genforce_core.api`)."""
from __future__ import annotations

import os

from torch import nn

from ..formatting import format_duration, format_kimg  # noqa: F401  (re-exported)


def unwrap_model(runner) -> nn.Module:
    """The GAN inside the runner (without a distributed wrapper)."""
    model = runner.model
    return model.module if hasattr(model, 'module') else model


def images_seen(runner) -> int:
    """Images trained on so far, over all processes (0 for a model without the buffer)."""
    buf = getattr(unwrap_model(runner), 'images_seen', None)
    return int(buf) if buf is not None else 0


def global_batch_size(runner) -> int:
    """Images per iteration over all processes."""
    loop = runner.train_loop
    size = getattr(loop, 'global_batch_size', None)
    if size is None:
        from mmengine.dist import get_world_size
        size = loop.dataloader.batch_size * get_world_size()
    return int(size)


def interval_images(interval_kimg: float) -> int:
    """An interval in kimg as a positive number of images."""
    images = int(round(interval_kimg * 1000))
    if images <= 0:
        raise ValueError(f'interval_kimg must be positive, got {interval_kimg}')
    return images


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
