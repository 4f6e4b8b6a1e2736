"""Small helpers the hooks share."""
from __future__ import annotations

import math
import os

from torch import nn


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


def format_kimg(kimg: float) -> str:
    """``50.0`` for long runs, three decimals below one kimg."""
    return f'{kimg:.1f}' if kimg >= 1 or kimg == 0 else f'{kimg:.3f}'


def format_duration(seconds: float) -> str:
    """``1d 02:03:04`` (days only when there are any)."""
    if not math.isfinite(seconds):
        return '?'
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f'{hours:02d}:{minutes:02d}:{secs:02d}'
    return f'{days}d {clock}' if days else clock


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
