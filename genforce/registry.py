"""Imported by mmengine for ``default_scope='genforce'``: registries plus installed plugins."""
from genforce_core.plugins import load_plugins
from genforce_core.registry import *  # noqa: F401,F403

load_plugins()
