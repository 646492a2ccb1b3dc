"""The READMEs document every role variable and the two entry points."""

import subprocess
import sys

import yaml
from conftest import ROLES, ROOT

README = (ROOT / "README.md").read_text()
ROLE_DIRS = sorted(p.parent.parent for p in ROLES.glob("*/meta/argument_specs.yml"))


def test_every_role_readme_is_current():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "role-docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_every_variable_is_in_its_role_readme():
    missing = []
    for role in ROLE_DIRS:
        text = (role / "README.md").read_text()
        spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
        missing += [name for name in spec["argument_specs"]["main"]["options"] if f"`{name}`" not in text]
    assert missing == [], f"run python3 scripts/role-docs.py: {missing}"


def test_the_readme_links_every_role():
    for role in ROLE_DIRS:
        assert f"(roles/{role.name}/README.md)" in README, role.name


def test_the_two_commands_and_ci_agree():
    assert "make sandbox" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
