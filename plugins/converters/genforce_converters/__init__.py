"""genforce plugin for checkpoint converters (official NVIDIA and original-GenForce weights)."""

__version__ = '0.1.0'
