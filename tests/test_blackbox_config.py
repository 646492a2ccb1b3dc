"""peerquest_blackbox: blackbox.yml and the flags, rendered by Ansible, against what the health views answer.

The body expectations are checked against the JSON the health app's views
send (Django's JsonResponse: json.dumps with its default separators), so a
healthy answer passes and a degraded one does not. The exporter's own
--config.check runs on the hosts (the role's validate:).
"""

import json
import re

import pytest
import yaml
from conftest import ROLES
from test_prometheus_config import evaluate, render, role_values, tasks

ROLE = "peerquest_blackbox"
TOKEN = "health-token-must-not-leak"
VIEWS = (ROLES / "peerquest_health" / "files" / "peerquest_health" / "views.py").read_text()


def modules(**variables):
    return yaml.safe_load(render(ROLE, "blackbox.yml.j2", **variables))["modules"]


def args(**variables):
    text = render(ROLE, "prometheus-blackbox-exporter.default.j2", **variables)
    line = [x for x in text.splitlines() if x.startswith("ARGS=")]
    assert len(line) == 1, text
    return line[0][len('ARGS="') : -1].split()


def _body(data):
    """What Django's JsonResponse sends for data."""
    return json.dumps(data)


def _matches(module, body):
    return all(re.search(pattern, body) for pattern in module["http"]["fail_if_body_not_matches_regexp"])


def test_two_modules_get_200_only():
    found = modules()
    assert set(found) == {"http_quick", "http_health"}
    for module in found.values():
        assert module["prober"] == "http"
        assert module["timeout"] == "5s"
        assert module["http"]["method"] == "GET"
        assert module["http"]["valid_status_codes"] == [200]


def test_the_views_still_answer_what_the_modules_expect():
    # The statuses the regexps look for are the ones the views send.
    assert 'JsonResponse({"status": "OK"})' in VIEWS
    assert 'status = "healthy"' in VIEWS
    assert 'status=200 if status == "healthy" else 503' in VIEWS


@pytest.mark.parametrize(
    "module, body, healthy",
    [
        ("http_quick", {"status": "OK"}, True),
        ("http_quick", {"status": "ERROR"}, False),
        ("http_health", {"timestamp": "t", "status": "healthy", "host": "app1", "checks": {"database": "OK"}}, True),
        ("http_health", {"timestamp": "t", "status": "degraded", "host": "app1", "checks": {"database": "OK"}}, False),
        ("http_health", {"status": "unauthorized"}, False),
    ],
)
def test_body_expectations_match_the_views_json(module, body, healthy):
    found = modules()[module]
    assert _matches(found, _body(body)) is healthy


def test_the_token_goes_from_a_file_to_the_full_probe_only():
    found = modules(peerquest_blackbox_health_token=TOKEN, peerquest_blackbox_credentials_file="/srv/bb.token")
    assert found["http_health"]["http"]["authorization"] == {"type": "Bearer", "credentials_file": "/srv/bb.token"}
    assert "authorization" not in found["http_quick"]["http"]
    text = render(ROLE, "blackbox.yml.j2", peerquest_blackbox_health_token=TOKEN)
    assert TOKEN not in text
    assert "authorization" not in modules(peerquest_blackbox_health_token="")["http_health"]["http"]


def test_host_header_ca_timeout_and_names_follow_the_variables():
    found = modules(
        peerquest_blackbox_http_host="questhub.example.com",
        peerquest_blackbox_ca_file="/srv/ca.pem",
        peerquest_blackbox_timeout="9s",
        peerquest_blackbox_quick_module="q",
        peerquest_blackbox_health_module="h",
        peerquest_blackbox_preferred_ip_protocol="ip6",
    )
    assert set(found) == {"q", "h"}
    for module in found.values():
        assert module["timeout"] == "9s"
        assert module["http"]["headers"] == {"Host": "questhub.example.com"}
        assert module["http"]["tls_config"] == {"ca_file": "/srv/ca.pem"}
        assert module["http"]["preferred_ip_protocol"] == "ip6"
    default = modules()
    assert all("headers" not in m["http"] and "tls_config" not in m["http"] for m in default.values())


def test_no_yaml_anchors():
    text = render(
        ROLE, "blackbox.yml.j2", peerquest_blackbox_http_host="h.example.com", peerquest_blackbox_ca_file="/ca"
    )
    assert "&id" not in text and "*id" not in text


def test_flags_listen_on_loopback_by_default():
    assert args() == ["--config.file=/etc/prometheus/blackbox.yml", "--web.listen-address=127.0.0.1:9115"]
    flags = args(
        peerquest_blackbox_listen_address="10.0.0.5",
        peerquest_blackbox_port=9116,
        peerquest_blackbox_config_path="/srv/bb.yml",
        peerquest_blackbox_extra_args=["--log.level=debug"],
    )
    assert flags == ["--config.file=/srv/bb.yml", "--web.listen-address=10.0.0.5:9116", "--log.level=debug"]


@pytest.mark.parametrize(
    "listen, reach", [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("10.0.0.5", "10.0.0.5"), ("::", "[::1]")]
)
def test_published_exporter_is_reachable_from_the_same_host(listen, reach):
    published = evaluate(
        ROLE,
        "{{ peerquest_blackbox__prometheus__dependent_exporter }}",
        peerquest_blackbox_listen_address=listen,
        peerquest_blackbox_port=9117,
        peerquest_blackbox_quick_module="q",
    )
    assert published == {"address": f"{reach}:9117", "quick_module": "q", "health_module": "http_health"}


def test_the_token_file_is_0640_root_prometheus_and_hidden():
    task = next(t for t in tasks(ROLE, "configure") if t["name"] == "Write the token of the full health check")
    copy = task["ansible.builtin.copy"]
    assert (copy["owner"], copy["group"], copy["mode"]) == ("root", "{{ _peerquest_blackbox_group }}", "0640")
    assert task["no_log"] is True
    assert role_values(ROLE)["_peerquest_blackbox_group"] == "prometheus"
    config = next(t for t in tasks(ROLE, "configure") if t["name"] == "Write the probe modules")
    assert config["ansible.builtin.template"]["validate"] == (
        "prometheus-blackbox-exporter --config.check --config.file=%s"
    )
