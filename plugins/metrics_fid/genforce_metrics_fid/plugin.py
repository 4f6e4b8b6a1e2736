"""Entry point of the ``metrics_fid`` genforce plugin (group ``genforce.plugins``).

Registers nothing yet: the package is a skeleton, and the FID metric modules land with the FID
metric issue. They will be imported by :func:`genforce_register_modules`, so that their classes
register into the core registries (``@METRICS.register_module()``) and are attributed to this
plugin.
"""
from __future__ import annotations

from types import SimpleNamespace

from genforce_core import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules(registries: SimpleNamespace) -> None:
    """Import the plugin's modules into the core registries (none exist yet)."""
