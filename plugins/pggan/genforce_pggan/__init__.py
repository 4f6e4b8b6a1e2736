"""genforce plugin for Progressive Growing of GANs (PGGAN, Karras et al. 2018)."""

__version__ = '0.1.0'
