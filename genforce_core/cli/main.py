"""The ``genforce`` command line: core subcommands plus those that plugins add."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from genforce_core.errors import ConfigError, DatasetError, GenforceError, UsageError
from genforce_core.plugins import PluginError
from genforce_core.registry import RegistrationConflict, UnknownModuleError

USER_FACING_ERRORS = (GenforceError, PluginError, RegistrationConflict, UnknownModuleError,
                      FileNotFoundError)
# Mistakes in what the user gave us (arguments, config, data) exit with 2, like argparse's own
# usage errors; failures while running (a corrupt checkpoint, a plugin error) with 1.
USAGE_ERRORS = (UsageError, ConfigError, DatasetError, UnknownModuleError, FileNotFoundError)

# Each module exposes ``add_parser(subparsers)`` which adds one subcommand and sets
# ``func`` (called with the parsed namespace, returns an exit code or None).
CORE_COMMANDS = ('plugins', 'configs', 'train', 'test', 'prepare_dataset', 'synthesize',
                 'zoo', 'resave_checkpoint')


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
    """Run one ``genforce`` command; user-facing errors print one line (``--debug`` adds the
    traceback) and return 2 for bad input, 1 otherwise."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv
    if debug:
        argv = [a for a in argv if a != '--debug']
        os.environ['GENFORCE_VERBOSE'] = '1'
    command = 'genforce'
    try:
        parser = build_parser()  # loads the plugins: strict mode may fail here
        args = parser.parse_args(argv)
        if not getattr(args, 'func', None):
            parser.print_help()
            return 2
        command = f'genforce {args.command}'
        debug = debug or getattr(args, 'verbose', False) is True
        code = int(args.func(args) or 0)
        from genforce_core.engine.launch import finish_distributed
        finish_distributed()
        return code
    except USER_FACING_ERRORS as exc:  # the message says it all: no traceback
        if debug:
            traceback.print_exc()
        print(f'{command}: error: {exc}', file=sys.stderr)
        return 2 if isinstance(exc, USAGE_ERRORS) else 1


if __name__ == '__main__':
    sys.exit(main())
