"""peerquest_alertmanager: alertmanager.yml and the flags, rendered by Ansible, and what the role publishes.

Receivers, routes, grouping and inhibition come from the channels
peerquest_alerting publishes; each channel is checked on and off, the
two-monitoring-host cluster, and that secrets only land in the 0640 file.
amtool itself runs on the hosts (the role's validate:).
"""

import pytest
import yaml
from test_prometheus_config import evaluate, render, role_values, tasks

ROLE = "peerquest_alertmanager"
SEVERITIES = ("CRITICAL", "WARNING", "INFO")
PASSWORD = "smtp-password-must-not-leak"
TOKEN = "hook-token-must-not-leak"
SLACK = "https://hooks.slack.test/services/secret-must-not-leak"
DISCORD = "https://discord.test/api/webhooks/1/secret-must-not-leak"
HOOK = "https://hook.test/dead-man-must-not-leak"
GO_SEVERITY = "{{ .CommonLabels.severity }}"


def channels(**changes):
    """The channels as peerquest_alerting publishes them, every one on, with changes."""
    found = {
        "email": {
            "enabled": True,
            "from": "alerts@pq.test",
            "smtp_host": "smtp.pq.test",
            "smtp_port": 587,
            "starttls": True,
            "ssl": False,
            "user": "alerts",
            "password": PASSWORD,
            "ca_file": "",
            "recipients": {"CRITICAL": ["oncall@pq.test", "lead@pq.test"], "WARNING": ["team@pq.test"], "INFO": []},
        },
        "slack": {"enabled": True, "url": SLACK},
        "discord": {"enabled": True, "url": DISCORD},
        "webhook": {"enabled": True, "url": HOOK, "token": TOKEN},
        "routes": {
            "CRITICAL": ["email", "slack", "discord", "webhook"],
            "WARNING": ["email", "slack"],
            "INFO": ["discord"],
        },
        "subject": "[{severity}] PeerQuest Alert",
        "http_ca_file": "",
        "smtp_ca_file": "",
        "allow_insecure_transport": False,
    }
    for key, value in changes.items():
        found[key] = dict(found[key], **value) if isinstance(value, dict) and key != "routes" else value
    return found


def config(chans=None, **variables):
    if chans is not None:
        variables["peerquest_alertmanager__dependent_channels"] = chans
    return yaml.safe_load(render(ROLE, "alertmanager.yml.j2", **variables))


def receivers(cfg):
    return {r["name"]: r for r in cfg["receivers"]}


def kinds(receiver):
    return sorted(k for k in receiver if k.endswith("_configs"))


def args(**variables):
    text = render(ROLE, "prometheus-alertmanager.default.j2", **variables)
    line = [x for x in text.splitlines() if x.startswith("ARGS=")]
    assert len(line) == 1, text
    return line[0][len('ARGS="') : -1].split()


# ------------------------------------------------------------- routing


def test_routes_by_severity_grouped_per_incident():
    cfg = config(channels())
    route = cfg["route"]
    assert route["group_by"] == ["key", "instance"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    assert route["receiver"] == "peerquest-critical"
    by_severity = {r["matchers"][0]: r["receiver"] for r in route["routes"][1:]}
    assert by_severity == {f'severity="{s}"': f"peerquest-{s.lower()}" for s in SEVERITIES}


def test_grouping_and_timing_follow_the_variables():
    route = config(
        channels(),
        peerquest_alertmanager_group_by=["key"],
        peerquest_alertmanager_group_wait="10s",
        peerquest_alertmanager_group_interval="2m",
        peerquest_alertmanager_repeat_interval="12h",
        peerquest_alertmanager_default_severity="WARNING",
        peerquest_alertmanager_resolve_timeout="9m",
    )
    assert route["route"]["group_by"] == ["key"]
    assert (route["route"]["group_wait"], route["route"]["group_interval"], route["route"]["repeat_interval"]) == (
        "10s",
        "2m",
        "12h",
    )
    assert route["route"]["receiver"] == "peerquest-warning"
    assert route["global"]["resolve_timeout"] == "9m"


def test_each_severity_gets_the_channels_its_route_names():
    rec = receivers(config(channels()))
    assert kinds(rec["peerquest-critical"]) == ["discord_configs", "email_configs", "slack_configs", "webhook_configs"]
    assert kinds(rec["peerquest-warning"]) == ["email_configs", "slack_configs"]
    assert kinds(rec["peerquest-info"]) == ["discord_configs"]


@pytest.mark.parametrize("channel", ["email", "slack", "discord", "webhook"])
def test_a_channel_that_is_off_is_nowhere(channel):
    on = receivers(config(channels()))
    off = receivers(config(channels(**{channel: {"enabled": False}})))
    assert f"{channel}_configs" in on["peerquest-critical"]
    for receiver in off.values():
        assert f"{channel}_configs" not in receiver, receiver["name"]


def test_no_channels_no_configs():
    rec = receivers(config())
    assert set(rec) == {"peerquest-critical", "peerquest-warning", "peerquest-info", "peerquest-watchdog"}
    assert all(kinds(r) == [] for r in rec.values())


def test_email():
    rec = receivers(config(channels()))
    email = rec["peerquest-critical"]["email_configs"][0]
    assert email["to"] == "oncall@pq.test, lead@pq.test"
    assert email["from"] == "alerts@pq.test"
    assert email["smarthost"] == "smtp.pq.test:587"
    assert email["require_tls"] is True
    assert (email["auth_username"], email["auth_password"]) == ("alerts", PASSWORD)
    assert email["headers"]["Subject"] == f"[{GO_SEVERITY}] PeerQuest Alert"
    assert email["send_resolved"] is True
    assert "tls_config" not in email
    assert rec["peerquest-warning"]["email_configs"][0]["to"] == "team@pq.test"


def test_email_tls_login_and_subject_follow_the_channel():
    chans = channels(
        email={"starttls": False, "user": "", "ca_file": "/srv/ca.pem"},
        subject="PeerQuest [{severity}]",
    )
    email = receivers(config(chans))["peerquest-critical"]["email_configs"][0]
    assert email["require_tls"] is False
    assert "auth_username" not in email and "auth_password" not in email
    assert email["tls_config"] == {"ca_file": "/srv/ca.pem"}
    assert email["headers"]["Subject"] == f"PeerQuest [{GO_SEVERITY}]"
    implicit = receivers(config(channels(email={"ssl": True, "smtp_port": 465})))["peerquest-critical"]
    assert implicit["email_configs"][0]["smarthost"] == "smtp.pq.test:465"
    assert implicit["email_configs"][0]["require_tls"] is False
    fallback = receivers(config(channels(smtp_ca_file="/srv/smtp-ca.pem")))["peerquest-critical"]
    assert fallback["email_configs"][0]["tls_config"] == {"ca_file": "/srv/smtp-ca.pem"}


def test_a_severity_without_recipients_gets_no_email():
    chans = channels(routes={"CRITICAL": ["email"], "WARNING": ["email"], "INFO": ["email"]})
    rec = receivers(config(chans))
    assert "email_configs" in rec["peerquest-warning"]
    assert "email_configs" not in rec["peerquest-info"]


def test_webhooks_slack_and_discord():
    critical = receivers(config(channels(http_ca_file="/srv/http-ca.pem")))["peerquest-critical"]
    assert critical["slack_configs"][0]["api_url"] == SLACK
    assert critical["discord_configs"][0]["webhook_url"] == DISCORD
    hook = critical["webhook_configs"][0]
    assert hook["url"] == HOOK
    assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials": TOKEN}
    for configs in ("slack_configs", "discord_configs", "webhook_configs"):
        assert critical[configs][0]["http_config"]["tls_config"] == {"ca_file": "/srv/http-ca.pem"}, configs
    tokenless = receivers(config(channels(webhook={"token": ""})))["peerquest-critical"]["webhook_configs"][0]
    assert "http_config" not in tokenless


def test_the_watchdog_goes_to_the_generic_webhook_only():
    cfg = config(channels(), peerquest_alertmanager_watchdog_repeat_interval="2m")
    first = cfg["route"]["routes"][0]
    assert first["matchers"] == ['alertname="Watchdog"']
    assert first["receiver"] == "peerquest-watchdog"
    assert first["repeat_interval"] == "2m"
    assert "continue" not in first  # nothing else gets it
    watchdog = receivers(cfg)["peerquest-watchdog"]
    assert kinds(watchdog) == ["webhook_configs"]
    assert watchdog["webhook_configs"][0]["url"] == HOOK
    assert kinds(receivers(config(channels(webhook={"enabled": False})))["peerquest-watchdog"]) == []


def test_inhibition():
    rules = config(channels(), peerquest_alertmanager_service_down_alert="AppDown")["inhibit_rules"]
    assert {
        "source_matchers": ['severity="CRITICAL"'],
        "target_matchers": ['severity=~"WARNING|INFO"'],
        "equal": ["key", "instance"],
    } in rules
    assert {
        "source_matchers": ['alertname="AppDown"'],
        "target_matchers": ['alertname!~"AppDown|Watchdog"'],
        "equal": ["instance"],
    } in rules


def test_an_alert_peerquest_alert_posted_holds_back_the_rule_alert_for_the_same_thing():
    rules = config(channels())["inhibit_rules"]
    assert {
        "source_matchers": ['job="peerquest-alert"', 'key=~"follow:.*"'],
        "target_matchers": ['alertname=~"PeerQuestCriticalLogLine"'],
        "equal": ["instance"],
    } in rules
    assert {
        "source_matchers": ['job="peerquest-alert"', 'key=~"database:.*"'],
        "target_matchers": ['alertname=~"PeerQuestDatabaseDown|PeerQuestDatabaseErrors"'],
        "equal": ["instance"],
    } in rules
    only = config(
        channels(),
        peerquest_alertmanager_direct_alert_job="pq-alert",
        peerquest_alertmanager_direct_alert_inhibits=[{"source_key": "x:.*", "alerts": ["A", "B"]}],
    )["inhibit_rules"]
    assert len(only) == 3
    assert only[2]["source_matchers"] == ['job="pq-alert"', 'key=~"x:.*"']
    assert only[2]["target_matchers"] == ['alertname=~"A|B"']


def test_the_message_template_is_used():
    cfg = config(channels(), peerquest_alertmanager_templates_dir="/srv/am-templates")
    assert cfg["templates"] == ["/srv/am-templates/peerquest.tmpl"]
    template = (role_dir() / "files" / "peerquest.tmpl").read_text()
    critical = receivers(cfg)["peerquest-critical"]
    for name in ("peerquest.title", "peerquest.text", "peerquest.html"):
        assert f'{{{{ define "{name}" }}}}' in template
    assert critical["slack_configs"][0]["title"] == '{{ template "peerquest.title" . }}'
    assert "runbook_url" in template and ".Labels.instance" in template


def role_dir():
    from conftest import ROLES

    return ROLES / ROLE


# ------------------------------------------------------------- flags, cluster


def test_one_monitoring_host_no_cluster():
    flags = args()
    assert "--cluster.listen-address=" in flags
    assert not [f for f in flags if f.startswith("--cluster.peer")]
    assert flags[:5] == [
        "--config.file=/etc/prometheus/alertmanager.yml",
        "--storage.path=/var/lib/prometheus/alertmanager",
        "--data.retention=120h",
        "--web.listen-address=0.0.0.0:9093",
        "--web.external-url=http://mon1:9093",
    ]


def test_two_monitoring_hosts_peer_with_each_other():
    # A peer's address and ports are read from its inventory values (hostvars); a value it does not set
    # is taken to be the same as this host's.
    hostvars = {"mon2": {"peerquest_alertmanager_address": "10.9.9.2", "peerquest_alertmanager_cluster_port": 9194}}
    on_mon1 = args(host="mon1", monitoring=("mon1", "mon2"), hostvars=hostvars)
    assert "--cluster.listen-address=0.0.0.0:9094" in on_mon1
    assert [f for f in on_mon1 if f.startswith("--cluster.peer")] == ["--cluster.peer=10.9.9.2:9194"]
    on_mon2 = args(
        host="mon2",
        monitoring=("mon1", "mon2"),
        hostvars=hostvars,
        peerquest_alertmanager_address="10.9.9.2",
        peerquest_alertmanager_cluster_advertise_address="10.9.9.2",
    )
    assert [f for f in on_mon2 if f.startswith("--cluster.peer")] == ["--cluster.peer=mon1:9094"]
    assert "--cluster.listen-address=0.0.0.0:9094" in on_mon2
    assert "--cluster.advertise-address=10.9.9.2:9094" in on_mon2


def test_flags_follow_the_variables():
    flags = args(
        peerquest_alertmanager_listen_address="127.0.0.1",
        peerquest_alertmanager_port=9193,
        peerquest_alertmanager_storage_path="/data/am",
        peerquest_alertmanager_data_retention="240h",
        peerquest_alertmanager_extra_args=["--log.level=debug"],
    )
    assert "--web.listen-address=127.0.0.1:9193" in flags
    assert "--web.external-url=http://mon1:9193" in flags
    assert "--storage.path=/data/am" in flags and "--data.retention=240h" in flags
    assert flags[-1] == "--log.level=debug"


# ------------------------------------------------------------- published


def test_published_urls_and_targets_name_every_monitoring_host():
    hostvars = {"mon2": {"peerquest_alertmanager_address": "10.9.9.2", "peerquest_alertmanager_port": 9193}}
    urls = evaluate(
        ROLE,
        "{{ peerquest_alertmanager__alerting__dependent_urls }}",
        monitoring=("mon1", "mon2"),
        hostvars=hostvars,
        host="app1",
    )
    assert urls == ["http://mon1:9093", "http://10.9.9.2:9193"]
    targets = evaluate(
        ROLE,
        "{{ peerquest_alertmanager__prometheus__dependent_alertmanagers }}",
        monitoring=("mon1", "mon2"),
        hostvars=hostvars,
    )
    assert targets == [{"name": "mon1", "address": "mon1:9093"}, {"name": "mon2", "address": "10.9.9.2:9193"}]
    own_url = {"mon1": {"peerquest_alertmanager_external_url": "https://am.pq.test"}}
    assert evaluate(ROLE, "{{ peerquest_alertmanager__alerting__dependent_urls }}", hostvars=own_url) == [
        "https://am.pq.test"
    ]
    assert evaluate(ROLE, "{{ peerquest_alertmanager__alerting__dependent_urls }}", monitoring=()) == []


def test_publish_entry_point_exists():
    assert tasks(ROLE, "publish") == [{"name": "Publish the Alertmanager URLs", "ansible.builtin.meta": "noop"}]


# ------------------------------------------------------------- secrets


def test_secrets_only_in_the_0640_file_written_without_showing_them():
    block = next(t for t in tasks(ROLE, "configure") if t["name"] == "Write alertmanager.yml")
    task = block["block"][0]
    template = task["ansible.builtin.template"]
    # amtool's refusal is reported by peerquest_app's refused.yml, the channels' secrets masked.
    [rescue] = block["rescue"]
    assert rescue["ansible.builtin.include_role"]["tasks_from"] == "refused.yml"
    assert len(rescue["vars"]["peerquest_app__refused_secrets"]) == 5
    assert (template["owner"], template["group"], template["mode"]) == (
        "root",
        "{{ _peerquest_alertmanager_group }}",
        "0640",
    )
    assert template["validate"] == "amtool check-config %s"
    assert task["no_log"] is True
    text = render(ROLE, "alertmanager.yml.j2", peerquest_alertmanager__dependent_channels=channels())
    assert PASSWORD in text and TOKEN in text  # they are needed there ...
    flags = render(ROLE, "prometheus-alertmanager.default.j2", peerquest_alertmanager__dependent_channels=channels())
    assert "must-not-leak" not in flags  # ... and nowhere else (the flags file is 0644)
    world_readable = [
        t
        for t in tasks(ROLE, "configure")
        for module in t.values()
        if isinstance(module, dict) and module.get("mode") == "0644"
    ]
    assert {t["name"] for t in world_readable} == {"Install the message templates", "Write the service's flags"}


def test_the_channels_input_is_declared_secret():
    from conftest import ROLES

    spec = yaml.safe_load((ROLES / ROLE / "meta" / "argument_specs.yml").read_text())
    option = spec["argument_specs"]["main"]["options"]["peerquest_alertmanager__dependent_channels"]
    assert option["no_log"] is True
    assert role_values(ROLE)["peerquest_alertmanager__dependent_channels"] == {}
