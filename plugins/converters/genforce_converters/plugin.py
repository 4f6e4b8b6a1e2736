"""Entry point of the ``converters`` genforce plugin (group ``genforce.plugins``).

* :func:`genforce_register_modules` imports :mod:`.converters`, which registers the converters
  (``stylegan2ada_pth``, ``stylegan2_tf``, ``stylegan2ada_tf``, ``stylegan2_rosinality``,
  ``genforce_v1``), :mod:`.tf_legacy` (``stylegan_tf``, ``pggan_tf``) and
  :mod:`.stylegan3_pth` (``stylegan3_pth``) in the core ``CONVERTERS`` registry;
* :func:`genforce_model_zoo` contributes the published official StyleGAN, StyleGAN2,
  StyleGAN2-ADA and StyleGAN3 models (:mod:`.zoo_entries`);
* :func:`genforce_add_cli_commands` adds ``genforce convert``.
"""
from __future__ import annotations

from typing import Any

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the converters; their ``@CONVERTERS.register_module()`` lands in the core."""
    from . import converters, stylegan3_pth, tf_legacy  # noqa: F401


@hookimpl
def genforce_model_zoo() -> list[dict[str, Any]]:
    """The official StyleGAN / StyleGAN2 / StyleGAN2-ADA / StyleGAN3 releases."""
    from .zoo_entries import ENTRIES

    return [dict(entry) for entry in ENTRIES]


@hookimpl
def genforce_add_cli_commands(subparsers) -> None:
    """``genforce convert FORMAT --source_model_path PATH ...``."""
    from .cli import add_parser

    add_parser(subparsers)
