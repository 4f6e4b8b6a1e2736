"""The stylegan2 plugin's models pass the core's model contract suite (genforce_core.testing)."""
from genforce_core.testing import contract_tests, skip_unless_installed

skip_unless_installed('genforce-plugin-stylegan2')
TestModelContract = contract_tests('stylegan2')
