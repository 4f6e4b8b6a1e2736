"""The ``genforce`` command line: core subcommands plus those that plugins add."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genforce_core.errors import GenforceError
from genforce_core.plugins import PluginError
from genforce_core.registry import RegistrationConflict, UnknownModuleError

USER_FACING_ERRORS = (GenforceError, PluginError, RegistrationConflict, UnknownModuleError,
                      FileNotFoundError)

# Each module exposes ``add_parser(subparsers)`` which adds one subcommand and sets
# ``func`` (called with the parsed namespace, returns an exit code or None).
CORE_COMMANDS = ('plugins', 'train', 'test', 'prepare_dataset', 'synthesize', 'zoo',
                 'resave_checkpoint')


def build_parser() -> argparse.ArgumentParser:
    from genforce_core import __version__
    from genforce_core.plugins import load_plugins

    parser = argparse.ArgumentParser(
        prog='genforce', description='Train, evaluate, convert and sample GANs.')
    parser.add_argument('--version', action='version', version=f'genforce-core {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in CORE_COMMANDS:
        importlib.import_module(f'genforce_core.cli.{name}').add_parser(subparsers)
    load_plugins().add_cli_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    command = 'genforce'
    try:
        parser = build_parser()  # loads the plugins: strict mode may fail here
        args = parser.parse_args(argv)
        if not getattr(args, 'func', None):
            parser.print_help()
            return 2
        command = f'genforce {args.command}'
        return int(args.func(args) or 0)
    except USER_FACING_ERRORS as exc:  # the message says it all: no traceback
        print(f'{command}: error: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
