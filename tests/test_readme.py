"""The README documents every role variable and the two entry points."""

import yaml
from conftest import ROLES, ROOT

README = (ROOT / "README.md").read_text()


def test_every_variable_is_in_the_readme():
    missing = []
    for spec in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        for name in yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"]:
            if f"`{name}`" not in README:
                missing.append(name)
    assert missing == [], f"run scripts/variables-table.py and update README.md: {missing}"


def test_the_two_commands_and_ci_agree():
    assert "make sandbox" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
