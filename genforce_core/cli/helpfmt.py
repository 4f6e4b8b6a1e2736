"""The help format of every ``genforce`` subcommand.

Descriptions that are module docstrings keep their line breaks (one-line descriptions are
wrapped), and their reStructuredText literals (````x````) are shown as ```x```. An option's
default is appended to its help unless the help already says what the default is, or there is
nothing to show (a flag, ``None``, no help at all).
"""
from __future__ import annotations

import argparse


def plain(text: str) -> str:
    """``text`` without reStructuredText's double backticks."""
    return text.replace('``', '`')


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Raw descriptions without RST markup; defaults shown where the help leaves them out."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if '\n' not in text.strip():  # a one-line description: wrap it
            return argparse.HelpFormatter._fill_text(self, plain(text), width, indent)
        return super()._fill_text(plain(text), width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain(action.help or '')
        default = action.default
        if (not text or not action.option_strings or 'default' in text.lower()
                or default is None or default is False or default == argparse.SUPPRESS):
            return text
        return f'{text} (default: %(default)s)'


def add_command(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """``subparsers.add_parser`` with the genforce help format and without abbreviated
    options (``--trunc`` must never be read as a prefix of another option)."""
    kwargs.setdefault('formatter_class', HelpFormatter)
    kwargs.setdefault('allow_abbrev', False)
    return subparsers.add_parser(name, **kwargs)
