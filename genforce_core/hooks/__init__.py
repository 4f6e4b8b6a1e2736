"""Training hooks of the core: sample grids, progress in kimg, kimg-based checkpoints,
progressive growing.

Importing this package registers them in :data:`genforce_core.registry.HOOKS`.
"""
from ._common import (
    global_batch_size,
    images_seen,
    interval_images,
    unwrap_model,
    write_text_atomic,
)
from .checkpoint import KimgCheckpointHook
from .grid import make_grid, save_grid
from .progress import GANProgressHook
from .progressive import LODSchedule, ProgressiveGrowingHook
from .samples import SampleGridHook

__all__ = ['SampleGridHook', 'GANProgressHook', 'KimgCheckpointHook', 'make_grid', 'save_grid',
           'ProgressiveGrowingHook', 'LODSchedule', 'unwrap_model', 'images_seen',
           'global_batch_size', 'interval_images', 'write_text_atomic']
