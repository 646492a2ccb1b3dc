"""peerquest_prometheus: prometheus.yml, the flags, the rules and their unit tests, rendered by Ansible.

The templates are rendered with Ansible's own templating (the template
module's code path) and the role's defaults and vars, with default and
non-default values and with two monitoring hosts. promtool itself runs on the
hosts (the role's validate: and `promtool test rules`), not here.
"""

import functools
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROLES

ROLE = "peerquest_prometheus"
SEVERITIES = ("CRITICAL", "WARNING", "INFO")
APP_HOSTS = [
    {"name": "app1", "public_url": "http://app1.test:8080"},
    {
        "name": "app2",
        "address": "10.1.2.3",
        "node_port": 9200,
        "mtail_port": 3999,
        "public_url": "https://pq.test/sub/",
    },
]


def _trust(value):
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trust(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trust(v) for v in value]
    return value


def role_values(role):
    values = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    internal = ROLES / role / "vars" / "main.yml"
    if internal.exists():
        values.update(yaml.safe_load(internal.read_text()))
    return values


def render(role, template, host="mon1", monitoring=("mon1",), hostvars=None, **variables):
    """A role template rendered by Ansible for `host`, the group peerquest_monitoring being `monitoring`."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import filter_loader
    from ansible.template import Templar, trust_as_template

    plugins = ROLES / role / "filter_plugins"
    if plugins.exists():
        filter_loader.add_directory(str(plugins))
    values = {
        "inventory_hostname": host,
        "groups": {"peerquest_monitoring": list(monitoring), "all": list(monitoring)},
        "hostvars": {name: {} for name in monitoring} | (hostvars or {}),
        "ansible_managed": "Ansible managed",
        "ansible_check_mode": False,
    }
    values.update(role_values(role))
    values.update(variables)
    templar = Templar(loader=DataLoader(), variables=_trust(values))
    return templar.template(trust_as_template((ROLES / role / "templates" / template).read_text()))


def evaluate(role, expression, **variables):
    """A role variable's value (a Jinja expression) as Ansible computes it."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import filter_loader
    from ansible.template import Templar, trust_as_template

    plugins = ROLES / role / "filter_plugins"
    if plugins.exists():
        filter_loader.add_directory(str(plugins))
    monitoring = variables.pop("monitoring", ("mon1",))
    values = {
        "inventory_hostname": variables.pop("host", "mon1"),
        "groups": {"peerquest_monitoring": list(monitoring)},
        "hostvars": {name: {} for name in monitoring} | variables.pop("hostvars", {}),
        "ansible_check_mode": False,
    }
    values.update(role_values(role))
    values.update(variables)
    return Templar(loader=DataLoader(), variables=_trust(values)).template(trust_as_template(expression))


def tasks(role, name):
    return yaml.safe_load((ROLES / role / "tasks" / f"{name}.yml").read_text())


def config(**variables):
    return yaml.safe_load(render(ROLE, "prometheus.yml.j2", **variables))


def jobs(cfg):
    return {job["job_name"]: job for job in cfg["scrape_configs"]}


def args(**variables):
    text = render(ROLE, "prometheus.default.j2", **variables)
    line = [x for x in text.splitlines() if x.startswith("ARGS=")]
    assert len(line) == 1, text
    return line[0][len('ARGS="') : -1].split()


def rules(**variables):
    return yaml.safe_load(render(ROLE, "peerquest.rules.yml.j2", **variables))


def alerts(**variables):
    return {r["alert"]: r for g in rules(**variables)["groups"] for r in g["rules"] if "alert" in r}


def recorded(**variables):
    return {r["record"]: r for g in rules(**variables)["groups"] for r in g["rules"] if "record" in r}


# ------------------------------------------------------------ prometheus.yml


def test_the_contract_s_jobs_and_nothing_else():
    assert set(jobs(config())) == {
        "node",
        "mtail",
        "peerquest_business",
        "blackbox_quick",
        "blackbox_health",
        "prometheus",
        "alertmanager",
        "blackbox",
    }


def test_app_host_jobs_label_instance_with_the_bare_host_name():
    cfg = jobs(config(peerquest_prometheus__dependent_targets=APP_HOSTS))
    assert cfg["node"]["static_configs"] == [
        {"targets": ["app1:9100"], "labels": {"instance": "app1"}},
        {"targets": ["10.1.2.3:9200"], "labels": {"instance": "app2"}},
    ]
    assert [c["targets"] for c in cfg["mtail"]["static_configs"]] == [["app1:3903"], ["10.1.2.3:3999"]]
    for job in ("node", "mtail", "peerquest_business", "blackbox_quick", "blackbox_health"):
        assert [c["labels"]["instance"] for c in cfg[job]["static_configs"]] == ["app1", "app2"], job


def test_business_metrics_use_the_public_url_and_the_token_file():
    cfg = jobs(
        config(
            peerquest_prometheus__dependent_targets=APP_HOSTS,
            peerquest_prometheus_health_token="tok-must-not-leak",
            peerquest_prometheus_credentials_file="/srv/creds/pq.token",
            peerquest_prometheus_metrics_path="status/metrics/",
        )
    )
    job = cfg["peerquest_business"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/srv/creds/pq.token"}
    first, second = job["static_configs"]
    assert first["targets"] == ["app1.test:8080"]
    assert first["labels"] == {"instance": "app1", "__scheme__": "http", "__metrics_path__": "/status/metrics/"}
    assert second["targets"] == ["pq.test"]
    assert second["labels"]["__scheme__"] == "https"
    assert second["labels"]["__metrics_path__"] == "/sub/status/metrics/"


def test_no_token_no_authorization():
    job = jobs(config(peerquest_prometheus__dependent_targets=APP_HOSTS, peerquest_prometheus_health_token=""))
    assert "authorization" not in job["peerquest_business"]


def test_the_token_never_lands_in_prometheus_yml():
    text = render(
        ROLE,
        "prometheus.yml.j2",
        peerquest_prometheus__dependent_targets=APP_HOSTS,
        peerquest_prometheus_health_token="tok-must-not-leak",
    )
    assert "tok-must-not-leak" not in text


@pytest.mark.parametrize(
    "job, module, path",
    [("blackbox_quick", "http_quick", "health/quick/"), ("blackbox_health", "http_health", "health/")],
)
def test_probes_go_through_the_blackbox_exporter(job, module, path):
    probe = jobs(config(peerquest_prometheus__dependent_targets=APP_HOSTS))[job]
    assert probe["metrics_path"] == "/probe"
    assert probe["params"] == {"module": [module]}
    assert [c["targets"] for c in probe["static_configs"]] == [
        [f"http://app1.test:8080/{path}"],
        [f"https://pq.test/sub/{path}"],
    ]
    assert probe["relabel_configs"] == [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"target_label": "__address__", "replacement": "127.0.0.1:9115"},
    ]


def test_the_dependent_blackbox_wins():
    exporter = {"address": "127.0.0.1:9999", "quick_module": "q", "health_module": "h"}
    cfg = jobs(
        config(peerquest_prometheus__dependent_targets=APP_HOSTS, peerquest_prometheus__dependent_blackbox=exporter)
    )
    assert cfg["blackbox_quick"]["params"] == {"module": ["q"]}
    assert cfg["blackbox_health"]["params"] == {"module": ["h"]}
    assert cfg["blackbox_quick"]["relabel_configs"][1]["replacement"] == "127.0.0.1:9999"
    assert cfg["blackbox"]["static_configs"] == [{"targets": ["127.0.0.1:9999"], "labels": {"instance": "mon1"}}]


def test_an_explicit_app_host_wins_over_the_dependent_one():
    explicit = [{"name": "app1", "address": "192.0.2.9", "public_url": "http://192.0.2.9"}]
    cfg = jobs(config(peerquest_prometheus__dependent_targets=APP_HOSTS, peerquest_prometheus_app_hosts=explicit))
    assert [c["targets"] for c in cfg["node"]["static_configs"]] == [["192.0.2.9:9100"], ["10.1.2.3:9200"]]


def test_two_monitoring_hosts_scrape_each_other_and_alert_both_alertmanagers():
    managers = [{"name": "mon1", "address": "mon1:9093"}, {"name": "mon2", "address": "10.9.9.2:9093"}]
    cfg = config(
        host="mon2",
        monitoring=("mon1", "mon2"),
        hostvars={"mon2": {"peerquest_prometheus_address": "10.9.9.2", "peerquest_prometheus_port": 9190}},
        peerquest_prometheus__dependent_alertmanagers=managers,
    )
    by_job = jobs(cfg)
    assert by_job["prometheus"]["static_configs"] == [
        {"targets": ["mon1:9090"], "labels": {"instance": "mon1"}},
        {"targets": ["10.9.9.2:9190"], "labels": {"instance": "mon2"}},
    ]
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["mon1:9093", "10.9.9.2:9093"]}]
    assert [c["labels"]["instance"] for c in by_job["alertmanager"]["static_configs"]] == ["mon1", "mon2"]
    # Both servers send the same labels: no per-host external label splits an alert in two.
    assert "external_labels" not in cfg["global"]


def test_alertmanagers_of_the_dependent_and_the_explicit_list_are_merged_once():
    managers = [{"name": "mon1", "address": "mon1:9093"}]
    cfg = config(
        peerquest_prometheus__dependent_alertmanagers=managers,
        peerquest_prometheus_alertmanagers=managers + [{"address": "am3:9093"}],
    )
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["mon1:9093", "am3:9093"]}]


def test_rule_files_and_intervals_follow_the_variables():
    cfg = config(
        peerquest_prometheus_rules_dir="/srv/rules",
        peerquest_prometheus_scrape_interval="30s",
        peerquest_prometheus_evaluation_interval="20s",
    )
    assert cfg["rule_files"] == ["/srv/rules/peerquest.rules.yml"]
    assert cfg["global"]["scrape_interval"] == "30s" and cfg["global"]["evaluation_interval"] == "20s"


# ------------------------------------------------------------------ flags


def test_flags_default():
    flags = args()
    assert flags == [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--web.listen-address=0.0.0.0:9090",
        "--web.external-url=http://mon1:9090",
        "--web.console.templates=/etc/prometheus/consoles",
        "--web.console.libraries=/etc/prometheus/console_libraries",
        "--storage.tsdb.path=/var/lib/prometheus/metrics2",
        "--storage.tsdb.retention.time=90d",
        "--storage.tsdb.retention.size=10GB",
    ]


def test_flags_follow_the_variables():
    flags = args(
        peerquest_prometheus_listen_address="127.0.0.1",
        peerquest_prometheus_port=9191,
        peerquest_prometheus_storage_path="/data/prom",
        peerquest_prometheus_retention_time="400d",
        peerquest_prometheus_retention_size="",
        peerquest_prometheus_enable_lifecycle=True,
        peerquest_prometheus_consoles_dir="/srv/consoles",
        peerquest_prometheus_console_libraries_dir="/srv/libs",
        peerquest_prometheus_extra_args=["--log.level=debug"],
    )
    assert "--web.listen-address=127.0.0.1:9191" in flags
    assert "--web.external-url=http://mon1:9191" in flags
    assert "--storage.tsdb.path=/data/prom" in flags
    assert "--storage.tsdb.retention.time=400d" in flags
    assert not [f for f in flags if f.startswith("--storage.tsdb.retention.size")]
    assert "--web.enable-lifecycle" in flags
    assert "--web.console.templates=/srv/consoles" in flags and "--web.console.libraries=/srv/libs" in flags
    assert flags[-1] == "--log.level=debug"
    assert "--web.enable-lifecycle" not in args()


# ------------------------------------------------------------------- rules

CONTRACT_RECORDS = {
    "peerquest:http_requests:rate5m",
    "peerquest:http_errors:ratio_rate5m",
    "peerquest:http_request_duration_seconds:p95_5m",
    "peerquest:http_request_duration_seconds:mean1h",
    "peerquest:log_error_lines:rate1h",
    "peerquest:approval_failure:ratio1h",
    "peerquest:assignment_failure:ratio1h",
    "peerquest:service_up:ratio1d",
    "peerquest:service_up:ratio30d",
    "peerquest:quests_created:rate1h",
}


def test_the_contract_s_recording_rules_exist():
    assert CONTRACT_RECORDS <= set(recorded())


def test_alerts_come_after_the_recordings_in_one_group():
    """Rules of one group run in order: an alert reads the recordings of the same evaluation."""
    groups = rules()["groups"]
    assert len(groups) == 1
    kinds = ["alert" if "alert" in r else "record" for r in groups[0]["rules"]]
    assert kinds == sorted(kinds, key=lambda k: k == "alert")


def test_every_alert_carries_severity_key_and_runbook():
    found = alerts(peerquest_prometheus_runbook_base_url="https://docs.test/runbook.html")
    assert len(found) >= 17
    for name, rule in found.items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["labels"]["key"], name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"] == f"https://docs.test/runbook.html#{name.lower()}"
    # instance comes from the series (kept by "by (instance)", here or in a recording rule, or the raw up) or the rule.
    for name, (text, _for) in _texts().items():
        assert "instance" in found[name]["labels"] or "by (instance" in text or text == "up == 0", name


def test_severities_follow_the_plan():
    found = alerts()
    critical = {
        "PeerQuestCriticalLogLine",
        "PeerQuestIntegrityIssues",
        "PeerQuestDatabaseDown",
        "PeerQuestDatabaseErrors",
        "PeerQuestServiceDown",
    }
    warning = {
        "PeerQuestApprovalFailureRate",
        "PeerQuestAssignmentFailureRate",
        "PeerQuestErrorRateAboveBaseline",
        "PeerQuestPerformanceDegraded",
        "PeerQuestUptimeLow",
    }
    assert {n for n, r in found.items() if r["labels"]["severity"] == "CRITICAL"} == critical
    assert warning <= {n for n, r in found.items() if r["labels"]["severity"] == "WARNING"}
    assert found["Watchdog"]["expr"] == "vector(1)"
    assert found["Watchdog"]["labels"]["instance"] == "mon1"


@functools.lru_cache(maxsize=1)
def _default_texts():
    return _texts()


def _texts(**variables):
    """Each alert's expr and for, with the recording rules it reads."""
    recs = recorded(**variables)
    out = {}
    for name, rule in alerts(**variables).items():
        used = [r["expr"] for rec, r in recs.items() if rec in rule["expr"]]
        out[name] = (" ".join([rule["expr"], *used]), rule["for"])
    return out


# (alert, variable, a site value, what the rule must then say: in its expression or as its for:)
THRESHOLDS = [
    ("PeerQuestCriticalLogLine", "peerquest_prometheus_critical_log_window", "7m", 'level="CRITICAL"}[7m]'),
    ("PeerQuestIntegrityIssues", "peerquest_prometheus_integrity_for", "3m", "for:3m"),
    ("PeerQuestDatabaseDown", "peerquest_prometheus_database_for", "4m", "for:4m"),
    ("PeerQuestDatabaseErrors", "peerquest_prometheus_database_for", "4m", "for:4m"),
    ("PeerQuestServiceDown", "peerquest_prometheus_service_down_for", "90s", "for:90s"),
    ("PeerQuestHealthCheckFailing", "peerquest_prometheus_health_check_for", "11m", "for:11m"),
    ("PeerQuestApprovalFailureRate", "peerquest_prometheus_approval_failure_percent", 7.5, "> 0.075"),
    ("PeerQuestApprovalFailureRate", "peerquest_prometheus_rate_min_events", 37, ">= 37"),
    ("PeerQuestApprovalFailureRate", "peerquest_prometheus_rate_window", "17m", '"approval_failed"}[17m]'),
    ("PeerQuestApprovalFailureRate", "peerquest_prometheus_rate_for", "6m", "for:6m"),
    ("PeerQuestAssignmentFailureRate", "peerquest_prometheus_assignment_failure_percent", 4, "> 0.04"),
    ("PeerQuestAssignmentFailureRate", "peerquest_prometheus_rate_window", "17m", '"assignment_failed"}[17m]'),
    ("PeerQuestErrorRateAboveBaseline", "peerquest_prometheus_error_increase_percent", 80, "> 1.8 *"),
    ("PeerQuestErrorRateAboveBaseline", "peerquest_prometheus_error_min_per_hour", 12, ">= 12"),
    ("PeerQuestErrorRateAboveBaseline", "peerquest_prometheus_baseline_window", "9d", "[9d] offset 1h"),
    ("PeerQuestErrorRateAboveBaseline", "peerquest_prometheus_baseline_offset", "2h", "[7d] offset 2h"),
    ("PeerQuestErrorRateAboveBaseline", "peerquest_prometheus_baseline_for", "25m", "for:25m"),
    ("PeerQuestPerformanceDegraded", "peerquest_prometheus_degradation_percent", 300, "> 3.0 *"),
    ("PeerQuestPerformanceDegraded", "peerquest_prometheus_degradation_min_requests", 55, ">= 55"),
    ("PeerQuestPerformanceDegraded", "peerquest_prometheus_baseline_window", "9d", "_sum[9d] offset 1h"),
    ("PeerQuestUptimeLow", "peerquest_prometheus_uptime_min_percent", 99.9, "< 0.9990"),
    ("PeerQuestUptimeLow", "peerquest_prometheus_uptime_window", "3d", '"blackbox_quick"}[3d]'),
    ("PeerQuestTargetDown", "peerquest_prometheus_target_down_for", "8m", "for:8m"),
    ("PeerQuestCronStopped", "peerquest_prometheus_cron_unit", "crond.service", 'name="crond.service",state="active"'),
    ("PeerQuestCronStopped", "peerquest_prometheus_unit_down_for", "3m", "for:3m"),
    ("PeerQuestFollowerStopped", "peerquest_prometheus_follower_unit", "pq-follow.service", 'name="pq-follow.service"'),
    ("PeerQuestFollowerStale", "peerquest_prometheus_follower_heartbeat_max_age", "4m", "> 240"),
    ("PeerQuestMonitorStale", "peerquest_prometheus_monitor_max_age_default", "5h", "> 18000"),
]


@pytest.mark.parametrize("alert, variable, value, expected", THRESHOLDS, ids=lambda x: str(x))
def test_every_threshold_is_a_rule_with_its_variable(alert, variable, value, expected):
    text, duration = _texts(**{variable: value})[alert]
    if expected.startswith("for:"):
        assert duration == expected[4:]
        assert _default_texts()[alert][1] != duration, "pick a value other than the default"
    else:
        squeezed = re.sub(r"\s+", " ", text)
        if expected.startswith("< 0."):
            number = float(re.search(r"< (0\.\d+)", squeezed).group(1))
            assert number == pytest.approx(float(expected[2:])), squeezed
        else:
            assert expected in squeezed, squeezed
        assert squeezed != re.sub(r"\s+", " ", _default_texts()[alert][0]), "the value changed nothing"


def test_the_plan_s_thresholds_are_the_defaults():
    defaults = role_values(ROLE)
    assert defaults["peerquest_prometheus_approval_failure_percent"] == 5
    assert defaults["peerquest_prometheus_assignment_failure_percent"] == 3
    assert defaults["peerquest_prometheus_error_increase_percent"] == 50
    assert defaults["peerquest_prometheus_degradation_percent"] == 200
    assert defaults["peerquest_prometheus_uptime_min_percent"] == 99.5


def test_monitor_max_ages_are_recorded_per_monitor():
    recs = [
        r
        for g in rules(peerquest_prometheus_monitor_max_age={"errors": "10m", "digest": "2d"})["groups"]
        for r in g["rules"]
        if r.get("record") == "peerquest:monitor_max_age_seconds"
    ]
    assert sorted((r["labels"]["monitor"], r["expr"]) for r in recs) == [
        ("digest", "vector(172800)"),
        ("errors", "vector(600)"),
    ]


# ------------------------------------------------------- rule unit tests


def _rule_tests(**variables):
    return [
        yaml.safe_load(render(ROLE, f"{n}.j2", **variables))
        for n in role_values(ROLE)["_peerquest_prometheus_rule_test_files"]
    ]


SHORT_SITE = {
    "peerquest_prometheus_rate_window": "10m",
    "peerquest_prometheus_baseline_window": "2h",
    "peerquest_prometheus_baseline_offset": "5m",
    "peerquest_prometheus_baseline_for": "2m",
    "peerquest_prometheus_uptime_window": "30m",
    "peerquest_prometheus_monitor_max_age_default": "40d",
    "peerquest_prometheus_monitor_max_age": {"errors": "7m"},
}


@pytest.mark.parametrize("site", [{}, SHORT_SITE], ids=["defaults", "short windows"])
def test_each_alert_has_a_unit_test_that_fires_and_resolves(site):
    names = set(alerts(**site))
    seen = {}
    for doc in _rule_tests(**site):
        assert doc["rule_files"] == ["peerquest.rules.yml"]
        for test in doc["tests"]:
            checks = test["alert_rule_test"]
            name = checks[0]["alertname"]
            seen.setdefault(name, []).append(checks)
            assert checks[0]["exp_alerts"], f"{name}: the first check must see it firing"
            if name != "Watchdog":
                assert len(checks) == 2 and checks[1]["exp_alerts"] == [], f"{name}: it must resolve"
    assert set(seen) == names


def test_unit_tests_expect_the_rules_annotations_and_labels():
    rendered = alerts()
    for doc in _rule_tests():
        for test in doc["tests"]:
            check = test["alert_rule_test"][0]
            rule = rendered[check["alertname"]]
            expected = check["exp_alerts"][0]
            assert expected["exp_annotations"] == rule["annotations"]
            assert {k: expected["exp_labels"][k] for k in rule["labels"]} == rule["labels"]
            assert "instance" in expected["exp_labels"]


def test_long_windows_are_tested_at_a_coarser_step():
    short, long_ = _rule_tests()
    assert short["evaluation_interval"] == "1m"
    assert {t["alert_rule_test"][0]["alertname"] for t in long_["tests"]} >= {"PeerQuestErrorRateAboveBaseline"}
    assert long_["evaluation_interval"] != "1m"


def test_an_alert_without_a_scenario_stops_the_run():
    plugin = _plugin()
    doc = rules()
    doc["groups"][0]["rules"].append({"alert": "Unheard", "expr": "vector(1)", "labels": {}, "annotations": {}})
    params = evaluate(ROLE, "{{ _peerquest_prometheus_rule_test_params }}")
    with pytest.raises(plugin.RuleTestError, match="without a unit test scenario: \\['Unheard'\\]"):
        plugin.rule_tests(params, doc)


def test_a_baseline_window_the_spike_would_fill_is_refused():
    plugin = _plugin()
    site = {"peerquest_prometheus_baseline_window": "2h", "peerquest_prometheus_baseline_offset": "0s"}
    params = evaluate(ROLE, "{{ _peerquest_prometheus_rule_test_params }}", **site)
    with pytest.raises(plugin.RuleTestError, match="peerquest_prometheus_baseline_window is too short"):
        plugin.rule_tests(params, rules(**site))


def _plugin():
    from conftest import load_module

    return load_module(ROLES / ROLE / "filter_plugins" / "peerquest_prometheus.py", "pq_prometheus_plugin")


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("0s", 0), ("2w", 1209600)]
)
def test_durations(text, seconds):
    assert _plugin().seconds(text) == seconds


@pytest.mark.parametrize("text", ["5", "5 m", "1.5h", "", "m5", True])
def test_durations_refused(text):
    assert _plugin().is_duration(text) is False


def test_compress_is_promtool_notation():
    assert _plugin().compress([0, 0, 0, 1, 2, 3, 3]) == "0+0x2 1+1x2 3"


# ------------------------------------------------- files and their modes


def test_the_token_file_is_0640_root_prometheus_and_hidden():
    task = next(
        t
        for t in tasks(ROLE, "configure")
        if t.get("ansible.builtin.copy", {}).get("dest", "").endswith("credentials_file }}")
    )
    copy = task["ansible.builtin.copy"]
    assert (copy["owner"], copy["group"], copy["mode"]) == ("root", "{{ _peerquest_prometheus_group }}", "0640")
    assert task["no_log"] is True
    assert role_values(ROLE)["_peerquest_prometheus_group"] == "prometheus"


def test_the_rules_are_tested_before_they_land():
    steps = [t["name"] for t in tasks(ROLE, "configure")]
    staged = steps.index("Stage the rules and their unit tests")
    tested = steps.index("Test the staged rules (promtool test rules)")
    landed = steps.index("Install the tested rules")
    config_ = steps.index("Write prometheus.yml")
    assert staged < tested < landed < config_
    by_name = {t["name"]: t for t in tasks(ROLE, "configure")}
    assert by_name["Install the tested rules"]["ansible.builtin.template"]["validate"] == "promtool check rules %s"
    assert by_name["Write prometheus.yml"]["ansible.builtin.template"]["validate"] == "promtool check config %s"
    assert by_name["Test the staged rules (promtool test rules)"]["changed_when"] is False


def test_templates_exist_for_every_staged_file():
    names = [
        role_values(ROLE)["_peerquest_prometheus_rules_file"],
        *role_values(ROLE)["_peerquest_prometheus_rule_test_files"],
    ]
    for name in names:
        assert (Path(ROLES / ROLE / "templates") / f"{name}.j2").exists(), name


def test_every_scheduled_monitor_has_its_own_max_age():
    """A job without an entry gets the 2 h default: a weekly job would be called stale all week."""
    jobs = yaml.safe_load((ROLES / "peerquest_monitors" / "defaults" / "main.yml").read_text())[
        "peerquest_monitors_jobs"
    ]
    ages = yaml.safe_load((ROLES / "peerquest_prometheus" / "defaults" / "main.yml").read_text())
    missing = sorted(set(jobs) - set(ages["peerquest_prometheus_monitor_max_age"]))
    assert not missing, f"peerquest_prometheus_monitor_max_age has no entry for {missing}"
