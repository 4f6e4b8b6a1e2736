"""Entry point of the ``stylegan2ada`` genforce plugin (group ``genforce.plugins``).

Registers nothing yet: the package is a skeleton, and the StyleGAN2-ADA modules land with the
StyleGAN2-ADA issue. They will be imported by :func:`genforce_register_modules`, so that their
classes register into the core registries (``@MODELS.register_module()``) and are attributed to
this plugin.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from genforce_core import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules(registries: SimpleNamespace) -> None:
    """Import the plugin's modules into the core registries (none exist yet)."""


@hookimpl
def genforce_model_zoo() -> list[dict[str, Any]]:
    """Model-zoo entries for the official StyleGAN2-ADA weights: none until the networks land."""
    return []


@hookimpl
def genforce_op_status() -> dict[str, str]:
    """Status of the plugin's custom ops: none exist yet, so nothing to report."""
    return {}
