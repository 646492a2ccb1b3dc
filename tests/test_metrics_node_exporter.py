"""peerquest_node_exporter's /etc/default/prometheus-node-exporter, rendered with Ansible's own templating.

The flags must say where the textfile collector reads, which units the systemd
collector exports (the regex node_exporter anchors as ^(?:...)$), which
collectors are off, and where it listens; with the defaults, with the
monitors' outputs wired in, and with every value changed. The exporter itself
parses the rendered flags on the host (the role's validate:), and below when
its binary is on this machine.
"""

import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from conftest import ROLES

ROLE = ROLES / "peerquest_node_exporter"
EXPORTER = shutil.which("prometheus-node-exporter")


def render(template, role=ROLE, **variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    values = {}
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        values.update(yaml.safe_load(defaults.read_text()))
    for extra in (ROLE / "vars" / "main.yml", ROLES / "peerquest_monitors" / "vars" / "main.yml"):
        values.update(yaml.safe_load(extra.read_text()))
    values.update(ansible_managed="Ansible managed", inventory_hostname="app1", **variables)
    values = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in values.items()}
    templar = Templar(loader=DataLoader(), variables=values)
    return templar.template(trust_as_template((role / "templates" / template).read_text()))


def args(**variables):
    """The ARGS words as systemd's $ARGS would split them."""
    text = render("prometheus-node-exporter.default.j2", **variables)
    lines = [line for line in text.splitlines() if line.startswith("ARGS=")]
    assert len(lines) == 1, text
    value = lines[0][len("ARGS=") :]
    assert value.startswith('"') and value.endswith('"') and '"' not in value[1:-1] and "\\" not in value
    return value[1:-1].split()


def flag(words, name):
    found = [w.split("=", 1)[1] for w in words if w.startswith(f"--{name}=")]
    assert len(found) == 1, (name, words)
    return found[0]


def included(words, unit):
    """Whether node_exporter's anchored unit-include regex takes unit."""
    return re.fullmatch(f"(?:{flag(words, 'collector.systemd.unit-include')})", unit) is not None


WIRED = {
    # What playbooks/vars/dependent.yml wires from peerquest_monitors' outputs.
    f"peerquest_node_exporter__dependent_{name}": f"{{{{ peerquest_monitors__node_exporter__dependent_{name} }}}}"
    for name in ("systemd_units", "textfile_group")
}


def test_defaults_alone():
    words = args()
    assert flag(words, "web.listen-address") == ":9100"
    assert flag(words, "collector.textfile.directory") == "/var/lib/prometheus/node-exporter"
    assert "--collector.systemd" in words
    assert included(words, "peerquest.service")
    for other in ("peerquestXservice", "peerquest.service.d", "xpeerquest.service", "ssh.service"):
        assert not included(words, other), other
    assert "--no-collector.zfs" in words and "--no-collector.cpu" not in words


def test_with_the_monitors_wired_in():
    words = args(**WIRED)
    for unit in ("peerquest.service", "cron.service", "peerquest-monitor-follow.service"):
        assert included(words, unit), unit
    assert not included(words, "anacron.service")


def test_every_value_changed():
    words = args(
        **WIRED,
        peerquest_app_service="questhub-web.service",
        peerquest_node_exporter_listen_address="10.0.0.5",
        peerquest_node_exporter_port=9111,
        peerquest_node_exporter_textfile_dir="/srv/metrics/textfile",
        peerquest_node_exporter_disabled_collectors=["arp"],
        peerquest_node_exporter_extra_args=["--collector.processes"],
    )
    assert flag(words, "web.listen-address") == "10.0.0.5:9111"
    assert flag(words, "collector.textfile.directory") == "/srv/metrics/textfile"
    assert included(words, "questhub-web.service") and not included(words, "peerquest.service")
    assert "--no-collector.arp" in words and "--no-collector.zfs" not in words
    assert words[-1] == "--collector.processes"


def test_collectors_switched_off():
    words = args(peerquest_node_exporter_textfile_dir="", peerquest_node_exporter_systemd_enabled=False)
    assert "--no-collector.textfile" in words
    assert not [w for w in words if w.startswith("--collector.systemd") or w.startswith("--collector.textfile")]


def test_the_monitors_are_told_the_directory_only_when_present():
    assert render_value("peerquest_node_exporter__monitors__dependent_textfile_dir") == (
        "/var/lib/prometheus/node-exporter"
    )
    assert render_value("peerquest_node_exporter__monitors__dependent_textfile_dir",
                        peerquest_node_exporter_state="absent") == ""  # fmt: skip


def render_value(name, **variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    values = {}
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        values.update(yaml.safe_load(defaults.read_text()))
    values.update(variables)
    values = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in values.items()}
    return Templar(loader=DataLoader(), variables=values).template(trust_as_template("{{ " + name + " }}"))


@pytest.mark.skipif(EXPORTER is None, reason="prometheus-node-exporter is not on this machine (the host tests run it)")
def test_the_exporter_parses_the_flags(tmp_path):
    path = tmp_path / "prometheus-node-exporter"
    path.write_text(render("prometheus-node-exporter.default.j2", **WIRED))
    check = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_peerquest_node_exporter_check"]
    argv = shlex.split(check.replace("/usr/bin/prometheus-node-exporter", EXPORTER).replace("%s", str(path)))
    assert subprocess.run(argv, capture_output=True, text=True, check=False).returncode == 0
