"""genforce plugin for StyleGAN3 (Karras et al. 2021), the alias-free generator.

Work in progress: see the package README for what exists and what is still missing.
"""

__version__ = '0.1.0'
