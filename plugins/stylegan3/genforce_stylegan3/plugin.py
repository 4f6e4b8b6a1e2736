"""Entry point of the ``stylegan3`` genforce plugin (group ``genforce.plugins``).

Work in progress: the plugin registers nothing yet. Its filter design and the ``filtered_lrelu``
reference op are usable from Python; the generator is registered in ``MODELS`` once it
reproduces the official reference vectors.
"""
from __future__ import annotations

GENFORCE_PLUGIN_API = '1.0'
