"""The example plugin's models pass the core's model contract suite (genforce_core.testing).

Runs where the plugin is installed (``pip install -e examples/dcgan_plugin``); the genforce
repository's own test session, where it is not, runs this file in a fresh interpreter with
the plugin installed (test_contract_installed.py).
"""
from genforce_core.testing import contract_tests, skip_unless_installed

skip_unless_installed('genforce-plugin-example-dcgan')
TestModelContract = contract_tests('example_dcgan')
