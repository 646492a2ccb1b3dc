"""meta/argument_specs.yml must mirror defaults/main.yml in every role."""

import pytest
import yaml
from conftest import ROLES

ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "defaults" / "main.yml").exists())


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.fixture(params=ROLE_DIRS, ids=lambda p: p.name)
def role(request):
    path = request.param
    spec = _load(path / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    return path.name, _load(path / "defaults" / "main.yml"), spec


def test_every_role_has_specs():
    names = {p.name for p in ROLE_DIRS}
    assert {"peerquest_app", "peerquest_logdir", "peerquest_logging", "peerquest_logrotate"} <= names
    for path in ROLES.iterdir():
        assert (path / "meta" / "argument_specs.yml").exists(), f"{path.name} has no argument_specs.yml"


def test_same_variables(role):
    name, defaults, spec = role
    assert set(defaults) == set(spec), (
        f"{name}: only in defaults: {sorted(set(defaults) - set(spec))}; "
        f"only in argument_specs: {sorted(set(spec) - set(defaults))}"
    )


def test_same_defaults(role):
    name, defaults, spec = role
    for var, value in defaults.items():
        assert spec[var].get("default") == value, f"{name}: {var} default differs between defaults and specs"


def test_specs_are_described_and_typed(role):
    name, _, spec = role
    for var, option in spec.items():
        assert option.get("type"), f"{name}: {var} has no type"
        assert option.get("description"), f"{name}: {var} has no description"
        if option["type"] == "list":
            assert option.get("elements"), f"{name}: list {var} has no elements type"


def test_variables_carry_the_role_prefix(role):
    name, defaults, _ = role
    for var in defaults:
        assert var.startswith(f"{name}_"), f"{name}: public variable {var} lacks the role prefix"
    internal = ROLES / name / "vars" / "main.yml"
    if internal.exists():
        for var in _load(internal):
            assert var.startswith(f"_{name}_"), f"{name}: internal variable {var} lacks the _{name}_ prefix"


def test_secrets_are_no_log(role):
    name, _, spec = role
    for var, option in spec.items():
        if any(word in var for word in ("password", "token", "secret", "webhook_url")):
            assert option.get("no_log") is True, f"{name}: {var} holds a secret but is not no_log"
