"""The rsyslog snippets of peerquest_logship and peerquest_logstore, rendered and checked by the real rsyslogd.

Each snippet must pass `rsyslogd -N1 -f` (what the roles' validate: runs before
a snippet lands), and say what the forwarding promises: TLS with the
receiver's name checked, a disk-assisted queue that survives a restart and
retries forever; a receiver that takes TLS only, from certificates its CA
signed, into one directory per sender with the modes asked for. The retention
rule must pass `logrotate -d`.
"""

import os
import re
import shutil
import subprocess

import jinja2
import pytest
import yaml
from conftest import ROLES

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


def _env(role):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLES / role / "templates")), trim_blocks=True)
    env.filters["basename"] = os.path.basename
    env.filters["splitext"] = os.path.splitext
    return env


def _defaults(role):
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a certificate signed by it, as the vault would hold them."""
    if not shutil.which("openssl"):
        pytest.fail("openssl is missing: run scripts/bootstrap.sh")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            *ec,
            "-keyout",
            d / "ca.key",
            "-out",
            d / "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=ca",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "req", *ec, "-keyout", d / "key.pem", "-out", d / "req.csr", "-subj", "/CN=logs.example.com"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            d / "req.csr",
            "-CA",
            d / "ca.pem",
            "-CAkey",
            d / "ca.key",
            "-CAcreateserial",
            "-out",
            d / "cert.pem",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    return d


def _check(path):
    if not os.path.exists(RSYSLOGD):
        pytest.fail("rsyslogd is missing: run scripts/bootstrap.sh (it installs rsyslog)")
    return subprocess.run([RSYSLOGD, "-N1", "-f", str(path)], capture_output=True, text=True, check=False)


def render_logship(tmp_path, pki, **overrides):
    values = _defaults("peerquest_logship")
    values.update(
        ansible_managed="managed",
        peerquest_logship_files=["/var/log/peerquest/django.log", "/var/log/peerquest/errors.log"],
        peerquest_logship_extra_files=["/srv/app/extra.log"],
        peerquest_logship_target="logs.example.com",
        peerquest_logship_target_name="logs.example.com",
        peerquest_logship_work_dir=str(tmp_path),
        peerquest_logship_queue_dir=str(tmp_path / "queue"),
        _peerquest_logship_connect_to="logs.example.com",
        _peerquest_logship_ca_file=str(pki / "ca.pem"),
        _peerquest_logship_cert_file=str(pki / "cert.pem"),
        _peerquest_logship_key_file=str(pki / "key.pem"),
    )
    values.update(overrides)
    text = _env("peerquest_logship").get_template("peerquest-logship.conf.j2").render(values)
    path = tmp_path / "logship.conf"
    path.write_text(text)
    return path, text


def render_logstore(tmp_path, pki, **overrides):
    values = _defaults("peerquest_logstore")
    values.update(
        ansible_managed="managed",
        peerquest_logstore_dir=str(tmp_path / "remote"),
        _peerquest_logstore_ca_file=str(pki / "ca.pem"),
        _peerquest_logstore_cert_file=str(pki / "cert.pem"),
        _peerquest_logstore_key_file=str(pki / "key.pem"),
    )
    values.update(overrides)
    env = _env("peerquest_logstore")
    text = env.get_template("peerquest-logstore.conf.j2").render(values)
    path = tmp_path / "logstore.conf"
    path.write_text(text)
    rotate = tmp_path / "logstore.logrotate"
    rotate.write_text(env.get_template("peerquest-logstore.logrotate.j2").render(values))
    return path, text, rotate


def _param(text, name):
    found = re.findall(rf'\b{re.escape(name)}="([^"]*)"', text, flags=re.I)
    assert found, f"{name} not in the snippet"
    return found


def test_the_forwarding_snippet_passes_rsyslogd(tmp_path, pki):
    path, _ = render_logship(tmp_path, pki)
    result = _check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_forwarding_snippet_is_refused(tmp_path, pki):
    """The validate: step can fail: an unknown queue type stops rsyslogd -N1."""
    path, text = render_logship(tmp_path, pki)
    path.write_text(text.replace('queue.type="LinkedList"', 'queue.type="Nowhere"'))
    assert _check(path).returncode != 0


def test_every_file_is_read_into_the_forwarding_ruleset(tmp_path, pki):
    _, text = render_logship(tmp_path, pki)
    assert _param(text, "File") == [
        "/var/log/peerquest/django.log",
        "/var/log/peerquest/errors.log",
        "/srv/app/extra.log",
    ]
    assert _param(text, "Tag") == ["peerquest-django:", "peerquest-errors:", "peerquest-extra:"]
    assert set(_param(text, "ruleset")) == {"peerquest_logship"}


def test_forwarding_is_tls_with_the_receiver_s_name_checked(tmp_path, pki):
    _, text = render_logship(
        tmp_path, pki, peerquest_logship_target_name="logs.example.com", _peerquest_logship_connect_to="10.1.2.3"
    )
    assert _param(text, "target") == ["10.1.2.3"]
    assert _param(text, "StreamDriver") == ["gtls"]
    assert _param(text, "StreamDriverMode") == ["1"]
    assert _param(text, "StreamDriverAuthMode") == ["x509/name"]
    assert _param(text, "StreamDriverPermittedPeers") == ["logs.example.com"]
    assert _param(text, "StreamDriver.CAFile") == [str(pki / "ca.pem")]


def test_the_queue_is_disk_assisted_saved_on_shutdown_and_retried_forever(tmp_path, pki):
    _, text = render_logship(
        tmp_path, pki, peerquest_logship_queue_max_disk_space="2g", peerquest_logship_queue_size=50
    )
    assert _param(text, "queue.type") == ["LinkedList"]
    assert _param(text, "queue.filename") == ["peerquest_logship"]
    assert _param(text, "queue.spoolDirectory") == [str(tmp_path / "queue")]
    assert _param(text, "queue.maxDiskSpace") == ["2g"]
    assert _param(text, "queue.size") == ["50"]
    assert _param(text, "queue.saveOnShutdown") == ["on"]
    assert _param(text, "action.resumeRetryCount") == ["-1"]
    # One worker: the lines leave in the order they came.
    assert _param(text, "queue.workerThreads") == ["1"]
    # One long-lived connection (a connection per line lost lines after an outage).
    assert _param(text, "RebindInterval") == ["0"]


def test_the_receiver_snippet_passes_rsyslogd(tmp_path, pki):
    path, _, _ = render_logstore(tmp_path, pki)
    result = _check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_receiver_with_permitted_peers_passes_rsyslogd(tmp_path, pki):
    path, text, _ = render_logstore(
        tmp_path, pki, peerquest_logstore_permitted_peers=["app1.example.com", "app2.example.com"]
    )
    result = _check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _param(text, "StreamDriver.AuthMode") == ["x509/name"]
    assert 'PermittedPeer=["app1.example.com", "app2.example.com"]' in text


def test_the_receiver_takes_tls_from_signed_clients_into_per_host_files(tmp_path, pki):
    _, text, _ = render_logstore(tmp_path, pki, peerquest_logstore_dir_mode="0700", peerquest_logstore_file_mode="0600")
    assert _param(text, "StreamDriver.Name") == ["gtls"]
    assert _param(text, "StreamDriver.Mode") == ["1"]
    assert _param(text, "StreamDriver.AuthMode") == ["x509/certvalid"]
    assert _param(text, "port") == ["6514"]
    assert f"{tmp_path / 'remote'}/%hostname:::secpath-replace%/" in text
    assert _param(text, "dirCreateMode") == ["0700"]
    assert _param(text, "fileCreateMode") == ["0600"]


def test_the_retention_rule_passes_logrotate(tmp_path, pki):
    if not os.path.exists(LOGROTATE):
        pytest.fail("logrotate is missing: run scripts/bootstrap.sh")
    _, _, rotate = render_logstore(tmp_path, pki, peerquest_logstore_retention_days=30)
    (tmp_path / "remote" / "app1").mkdir(parents=True)
    (tmp_path / "remote" / "app1" / "peerquest-django.log").write_text("line\n")
    result = subprocess.run([LOGROTATE, "-d", str(rotate)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rotate 30" in rotate.read_text() and "maxage 30" in rotate.read_text()
