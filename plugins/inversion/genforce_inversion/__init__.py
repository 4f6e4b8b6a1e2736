"""genforce plugin for GAN inversion: an In-Domain GAN Inversion encoder trained on the core
engine, and StyleGAN2-style projection by optimisation (``genforce invert``)."""

__version__ = '0.1.0'
