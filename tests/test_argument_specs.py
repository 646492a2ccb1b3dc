"""meta/argument_specs.yml must mirror defaults/main.yml in every role, in one style, with every shape declared."""

import re

import pytest
import yaml
from conftest import ROLES
from peerquest_ops.core import constants

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


def _options(spec, where=""):
    """Every option and sub-option: (dotted name, option)."""
    for var, option in spec.items():
        yield where + var, option
        yield from _options(option.get("options") or {}, f"{where}{var}.")


def test_every_main_entry_is_described():
    for path in ROLE_DIRS:
        main = _load(path / "meta" / "argument_specs.yml")["argument_specs"]["main"]
        assert main.get("short_description"), f"{path.name}: main has no short_description"
        description = main.get("description")
        assert isinstance(description, list) and all(description), f"{path.name}: main needs a description list"


def test_specs_are_described_and_typed(role):
    name, _, spec = role
    for var, option in _options(spec):
        assert option.get("type"), f"{name}: {var} has no type"
        assert option.get("description"), f"{name}: {var} has no description"
        assert isinstance(option["description"], str), f"{name}: {var}: write the description as one (>-) text"
        if option["type"] == "list":
            assert option.get("elements"), f"{name}: list {var} has no elements type"


def test_list_of_dict_options_declare_their_elements(role):
    """validate_argument_spec checks each element's keys only when the spec names them."""
    name, _, spec = role
    for var, option in _options(spec):
        if option["type"] == "list" and option.get("elements") == "dict":
            assert option.get("options"), f"{name}: {var} is a list of dicts without element options"


# A name ending like this holds a filesystem path (lists of them: *_files, *_dirs, *_paths of path).
PATH_NAME = re.compile(r"_(path|dir|file|log|program|python)$")
PATHS_NAME = re.compile(r"_(paths|dirs|files|logs|programs)$")


def test_path_options_have_type_path(role):
    name, _, spec = role
    for var, option in _options(spec):
        if PATH_NAME.search(var):
            assert option["type"] == "path", f"{name}: {var} names a path but has type {option['type']}"
        elif PATHS_NAME.search(var) and option["type"] == "list" and option.get("elements") != "dict":
            assert option.get("elements") == "path", f"{name}: {var} lists paths but its elements are not path"


def test_path_name_rule_sees_the_paths():
    """The rule above is not vacuous: it finds the paths the roles are known to have."""
    names = {
        var
        for path in ROLE_DIRS
        for var, _ in _options(_load(path / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"])
    }
    for var in (
        "peerquest_app_python",
        "peerquest_logrotate_config_path",
        "peerquest_alerting_log_dir",
        "peerquest_alerting_smtp_ca_file",
        "peerquest_monitors_critical_log",
    ):
        assert var in names and PATH_NAME.search(var), var


def test_severities_and_channels_are_the_package_s(role):
    """Choices the spec spells out are the values peerquest-alert and peerquest-monitor accept."""
    name, _, spec = role
    for var, option in _options(spec):
        if var.endswith(".severity"):
            assert tuple(option["choices"]) == constants.SEVERITIES, f"{name}: {var}"
        if var.endswith(("_routes", "_email_recipients")):
            assert tuple(option["options"]) == constants.SEVERITIES, f"{name}: {var}"
        if var.endswith("_selftest_channels") or re.search(r"_routes\.[A-Z]+$", var):
            assert tuple(option["choices"]) == constants.CHANNELS, f"{name}: {var}"


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
