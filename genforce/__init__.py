"""Scope package of the ``genforce`` registries.

mmengine imports ``<default_scope>.registry`` before it builds anything from a config; with
``default_scope='genforce'`` that import lands in :mod:`genforce.registry`, which loads the
installed plugins. User code imports :mod:`genforce_core`.
"""
