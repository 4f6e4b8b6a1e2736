"""The pggan plugin's models pass the core's model contract suite (genforce_core.testing)."""
from genforce_core.testing import contract_tests, skip_unless_installed

skip_unless_installed('genforce-plugin-pggan')
TestModelContract = contract_tests('pggan')
