"""Errors whose message says what went wrong and how to fix it.

The CLI prints a :class:`GenforceError` without a traceback; library users catch it.
"""


class GenforceError(Exception):
    """Base class of genforce's user-facing errors."""


class ConfigError(GenforceError):
    """A config file is missing, fails to parse, or holds a bad value."""


class DatasetError(GenforceError):
    """A dataset is empty, corrupt or does not match the config (names the file or entry)."""


class CheckpointError(GenforceError):
    """A checkpoint is unsafe, corrupt, or does not fit the model (names keys/shapes)."""


class UsageError(GenforceError):
    """A command-line argument or config value is invalid (the CLI exits with code 2)."""
