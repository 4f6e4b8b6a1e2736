"""ADA's differentiable augmentation pipeline and its building blocks."""
from .grid_sample import grid_sample, grid_sample_ref
from .pipe import MULTIPLIERS, PRESETS, STRENGTHS, AugmentPipe

__all__ = ['AugmentPipe', 'PRESETS', 'MULTIPLIERS', 'STRENGTHS', 'grid_sample',
           'grid_sample_ref']
