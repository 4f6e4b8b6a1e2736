"""Entry point of the ``inversion`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`.encoder` (``ResNetStyleEncoder``),
:mod:`.model` (``InDomainEncoder``, the encoder training model) and :mod:`.hooks`
(``ReconstructionGridHook``); :func:`genforce_add_cli_commands` adds ``genforce invert``.
"""
from __future__ import annotations

import argparse

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import encoder, hooks, model  # noqa: F401


@hookimpl
def genforce_add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """``genforce invert``."""
    from .cli import add_parser

    add_parser(subparsers)


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]
