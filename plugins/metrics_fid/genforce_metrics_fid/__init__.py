"""genforce plugin for Frechet Inception Distance (and related) metrics."""

__version__ = '0.1.0'
