"""Every role states what it takes from the others and what it gives them.

Each roles/<role>/README.md has a "## Contract" section (hand-written, above
the generated block). This test reads each role's defaults, vars, tasks,
templates and handlers and fails when the role

- reads another role's variable (peerquest_<other>_..., any peerquest_app_*
  fact excepted: peerquest_app is the base every role may read) that its
  Contract does not name;
- notifies a handler topic another role provides that its Contract does not
  name;
- declares a dependent input (<role>__dependent_*) or output
  (<role>__<consumer>__dependent_*), or provides a handler topic another role
  notifies, without naming it in its Contract;
- publishes with set_fact a variable another role reads (a value another role
  needs is a dependent output, derived in the provider's defaults and wired in
  playbooks/vars/dependent.yml).

It also checks that wiring: each variable it sets is a consumer's declared
dependent input, and each provider variable it reads exists.

`python tests/test_role_contracts.py` prints what each role consumes and
provides, as found in the code.
"""

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"
WIRING = ROOT / "playbooks" / "vars" / "dependent.yml"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks" / "main.yml").exists())
BASE_ROLE = "peerquest_app"

# A variable-like name that is not the tail of an internal _peerquest_... name.
NAME = re.compile(r"(?<![A-Za-z0-9_])peerquest_[a-z0-9_]+")
GROUP_REF = re.compile(r"groups\[['\"][^'\"]+['\"]\]")
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
SET_FACT = ("ansible.builtin.set_fact", "set_fact")
CONTRACT = re.compile(r"^## Contract\s*$(.*?)(?=^## |^<!-- BEGIN generated|\Z)", re.M | re.S)


def owner(name):
    """The role a variable name belongs to (the longest role prefix), or None."""
    roles = [role for role in ROLE_NAMES if name.startswith(role + "_")]
    return max(roles, key=len) if roles else None


def _strings(node):
    """Every key and string value of a YAML document: comments are not references."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _nodes(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)


def _yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _sources(role):
    """(file, YAML document or None, text to scan) for each file the contract covers."""
    base = ROLES / role
    for sub in ("defaults", "vars", "tasks", "handlers"):
        for path in sorted((base / sub).glob("*.yml")):
            doc = _yaml(path)
            yield path, doc, "\n".join(_strings(doc))
    for path in sorted((base / "templates").glob("*")):
        # Only what Jinja evaluates; a name in the rendered file's prose is no reference.
        yield path, None, "\n".join(JINJA.findall(path.read_text(encoding="utf-8")))


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def scan(role):
    """What a role's code references, notifies, listens to and publishes with set_fact."""
    found = {"refs": {}, "notifies": {}, "topics": set(), "set_facts": {}}
    for path, doc, text in _sources(role):
        rel = str(path.relative_to(ROOT))
        for name in NAME.findall(text):
            found["refs"].setdefault(name, set()).add(rel)
        for node in _nodes(doc):
            for topic in _as_list(node.get("notify")):
                found["notifies"].setdefault(topic, set()).add(rel)
            for key in SET_FACT:
                if isinstance(node.get(key), dict):
                    for var in node[key]:
                        if var != "cacheable":
                            found["set_facts"].setdefault(var, set()).add(rel)
        if path.parent.name == "handlers":
            for handler in doc or []:
                found["topics"].update(_as_list(handler.get("listen")))
                found["topics"].add(handler.get("name"))
    return found


SCANS = {role: scan(role) for role in ROLE_NAMES}
TOPIC_OWNER = {topic: role for role, found in SCANS.items() for topic in found["topics"]}


def consumed_variables(role):
    """Other roles' variables this role reads, peerquest_app's facts excepted."""
    return {name: files for name, files in SCANS[role]["refs"].items() if owner(name) not in (None, role, BASE_ROLE)}


def notified_topics(role):
    """Handler topics of other roles this role notifies."""
    return {
        topic: files for topic, files in SCANS[role]["notifies"].items() if TOPIC_OWNER.get(topic) not in (None, role)
    }


def dependent_variables(role):
    defaults = ROLES / role / "defaults" / "main.yml"
    names = _yaml(defaults) or {} if defaults.exists() else {}
    return sorted(name for name in names if "__dependent_" in name)


def provided_topics(role):
    """Handler topics of this role that other roles notify."""
    return sorted(
        topic
        for topic in SCANS[role]["topics"]
        if any(topic in SCANS[other]["notifies"] for other in ROLE_NAMES if other != role)
    )


def contract(role):
    readme = ROLES / role / "README.md"
    match = CONTRACT.search(readme.read_text(encoding="utf-8")) if readme.exists() else None
    return match.group(1) if match else None


def _named(text, name):
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])", text) is not None


@pytest.fixture(params=ROLE_NAMES)
def role(request):
    return request.param


def test_the_scan_sees_the_known_cross_role_references():
    # The scanner itself must work: these are facts of the code base, so a
    # scanner that finds nothing fails here rather than passing everything.
    assert "peerquest_logdir_path" in consumed_variables("peerquest_monitors")
    assert "peerquest_alerting_command_path" in consumed_variables("peerquest_monitors")
    assert "peerquest app reload" in notified_topics("peerquest_logging")
    assert TOPIC_OWNER["peerquest app reload"] == "peerquest_app"
    assert "peerquest_logrotate__dependent_files" in dependent_variables("peerquest_logrotate")
    assert "peerquest_logging__logrotate__dependent_files" in dependent_variables("peerquest_logging")


def test_every_role_has_a_contract_section(role):
    assert contract(role) is not None, f"{role}: README.md has no '## Contract' section above the generated block"


def test_every_variable_read_from_another_role_is_in_the_contract(role):
    text = contract(role) or ""
    missing = {
        name: sorted(files) for name, files in sorted(consumed_variables(role).items()) if not _named(text, name)
    }
    assert not missing, f"{role} reads other roles' variables its README Contract does not list: " + "; ".join(
        f"{name} (in {', '.join(files)})" for name, files in missing.items()
    )


def test_every_handler_topic_of_another_role_it_notifies_is_in_the_contract(role):
    text = contract(role) or ""
    missing = {topic: sorted(files) for topic, files in sorted(notified_topics(role).items()) if topic not in text}
    assert not missing, (
        f"{role} notifies handler topics of other roles its README Contract does not list: "
        + "; ".join(f"{topic!r} of {TOPIC_OWNER[topic]} (in {', '.join(files)})" for topic, files in missing.items())
    )


def test_dependent_inputs_outputs_and_provided_topics_are_in_the_contract(role):
    text = contract(role) or ""
    missing = [name for name in dependent_variables(role) if not _named(text, name)]
    missing += [repr(topic) for topic in provided_topics(role) if topic not in text]
    assert not missing, f"{role}: its README Contract does not list what it provides or takes in: {missing}"


def test_no_role_publishes_with_set_fact_what_another_role_reads(role):
    published = SCANS[role]["set_facts"]
    offenders = []
    for var, files in sorted(published.items()):
        readers = sorted(other for other in ROLE_NAMES if other != role and var in SCANS[other]["refs"])
        if readers:
            offenders.append(f"{var} (set in {', '.join(sorted(files))}; read by {', '.join(readers)})")
    assert not offenders, (
        f"{role} publishes with set_fact what other roles read; make it a dependent output in its defaults "
        f"and wire it in {WIRING.relative_to(ROOT)}: " + "; ".join(offenders)
    )


def test_the_wiring_connects_declared_inputs_to_existing_outputs():
    wiring = _yaml(WIRING)
    declared = {name for role in ROLE_NAMES for name in dependent_variables(role)}
    for name, value in wiring.items():
        consumer = owner(name)
        assert consumer and name.startswith(consumer + "__dependent_"), (
            f"{WIRING.name}: {name} is not a role's dependent input (<role>__dependent_*)"
        )
        assert name in declared, f"{WIRING.name}: {consumer} does not declare {name} in its defaults"
        # An inventory group's name (groups['peerquest_app']) is not a variable.
        for used in NAME.findall(GROUP_REF.sub("", str(value))):
            assert used in declared, f"{WIRING.name}: {name} reads {used}, which no role's defaults provide"
            assert "__" + consumer.removeprefix("peerquest_") + "__dependent_" in used, (
                f"{WIRING.name}: {name} reads {used}, an output meant for another consumer"
            )


def main():
    for role in ROLE_NAMES:
        print(f"{role}:")
        print("  consumes:", ", ".join(sorted(consumed_variables(role))) or "-")
        print("  notifies:", ", ".join(sorted(notified_topics(role))) or "-")
        print("  dependent:", ", ".join(dependent_variables(role)) or "-")
        print("  provides topics:", ", ".join(provided_topics(role)) or "-")
        print("  set_fact:", ", ".join(sorted(SCANS[role]["set_facts"])) or "-")


if __name__ == "__main__":
    sys.exit(main())
