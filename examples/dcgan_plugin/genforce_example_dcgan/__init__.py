"""Example genforce plugin: DCGAN networks (Radford et al. 2016) for the core GAN engine."""
import os.path as osp

__version__ = '0.1.0'
CONFIG_DIR = osp.join(osp.dirname(__file__), 'configs')
