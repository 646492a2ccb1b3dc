"""peerquest_mtail's program and settings, rendered with Ansible's own templating, run on real log lines.

The lines come from the real thing: the LOGGING peerquest_logging builds (text
and JSON formats, written into a scratch log directory) and peerquest_health's
RequestMetricsMiddleware. The program is rendered with the dependent inputs
wired as playbooks/vars/dependent.yml wires them (peerquest_logging's files,
the monitors' rate strings and log) and then run over those files by a small
interpreter of the few mtail constructs it uses (a file condition, a regex
condition, a counter increment or a histogram observation), with Python's re
standing in for RE2. Where the real mtail is on PATH, `mtail --compile_only`
and `mtail --one_shot` must agree; the roles compile the program with it on
the host before it lands, and the host tests scrape it.
"""

import logging
import logging.config
import math
import re
import shutil
import subprocess
import sys
import types

import pytest
import yaml
from conftest import ROLES, load_module

ROLE = ROLES / "peerquest_mtail"
MTAIL = shutil.which("mtail")
LOGGING_ROLE = ROLES / "peerquest_logging"
LOGGING_PLUGIN = load_module(LOGGING_ROLE / "filter_plugins" / "peerquest_logging.py", "pq_logging_plugin_mtail")
LOGGING_DEFAULTS = yaml.safe_load((LOGGING_ROLE / "defaults" / "main.yml").read_text())
MONITORS_DEFAULTS = yaml.safe_load((ROLES / "peerquest_monitors" / "defaults" / "main.yml").read_text())
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


def render(template, **variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    values = {}
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        values.update(yaml.safe_load(defaults.read_text()))
    values.update(yaml.safe_load((ROLE / "vars" / "main.yml").read_text()))
    values.update(ansible_managed="Ansible managed", inventory_hostname="app1", **variables)
    values = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in values.items()}
    return Templar(loader=DataLoader(), variables=values).template(
        trust_as_template((ROLE / "templates" / template).read_text())
    )


def logging_config(log_dir, log_format):
    d = LOGGING_DEFAULTS
    return LOGGING_PLUGIN.logging_config(
        d["peerquest_logging_formatters"],
        d["peerquest_logging_handlers"],
        d["peerquest_logging_loggers"],
        d["peerquest_logging_root"],
        str(log_dir),
        "0640",
        d["peerquest_logging_mask_keys"],
        False,
        d["peerquest_logging_critical_handler"],
        log_format,
    )


def wired(log_dir, log_format="text", rates=None):
    """The dependent inputs as playbooks/vars/dependent.yml wires them from the providers' defaults."""
    return {
        "peerquest_mtail__dependent_log_files": LOGGING_PLUGIN.logging_files(logging_config(log_dir, log_format)),
        "peerquest_mtail__dependent_rates": [
            {key: rate[key] for key in ("name", "success", "failure")}
            for rate in (MONITORS_DEFAULTS["peerquest_monitors_rates"] if rates is None else rates)
        ],
        "peerquest_mtail__dependent_events_log": f"{log_dir}/django.log",
    }


# ------------------------------------------------------------- real lines


def request(view_name=None, url_name=None, route=None, method="GET", matched=True):
    match = types.SimpleNamespace(view_name=view_name, url_name=url_name, route=route) if matched else None
    return types.SimpleNamespace(method=method, resolver_match=match)


REQUESTS = [
    # (request, status, seconds the view takes)
    (request("quests:detail", "detail", "quests/<int:pk>/"), 200, 0.0),
    (request("quests:detail", "detail", "quests/<int:pk>/"), 503, 0.03),
    (request(None, None, "api/<slug:key>/", method="POST"), 302, 0.0),
    (request(matched=False, method="BREW"), 404, 0.0),
]


@pytest.fixture(params=["text", "json"])
def logs(request, tmp_path, monkeypatch):
    """A scratch log directory written through the real LOGGING and middleware, in either format."""
    sys.path.insert(0, str(ROLES / "peerquest_logging" / "files"))
    monkeypatch.syspath_prepend(str(ROLES / "peerquest_health" / "files"))
    from peerquest_health import middleware

    log_dir = tmp_path / "log"
    log_dir.mkdir()
    logging.config.dictConfig(logging_config(log_dir, request.param))
    try:
        now = [100.0]
        monkeypatch.setattr(middleware.time, "monotonic", lambda: now[0])
        for req, status, seconds in REQUESTS:

            def view(_request, status=status, seconds=seconds):
                now[0] += seconds
                return types.SimpleNamespace(status_code=status)

            middleware.RequestMetricsMiddleware(view)(req)
        logging.getLogger("applications").info("Application approved 3")
        logging.getLogger("applications").info("Application approved 4")
        logging.getLogger("applications").warning("Application approval failed for 7")
        logging.getLogger("quests").info("Quest assigned 9")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("django").exception("Internal Server Error: /quests/")
        logging.getLogger("django").critical("database gone")
        logging.getLogger("audit").info("user_login_failed for bob")
    finally:
        logging.shutdown()
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        sys.path.remove(str(ROLES / "peerquest_logging" / "files"))
    return log_dir, request.param


EXPECTED = {
    ("peerquest_http_requests_total", (("method", "GET"), ("status_class", "2xx"), ("view", "quests:detail"))): 1,
    ("peerquest_http_requests_total", (("method", "GET"), ("status_class", "5xx"), ("view", "quests:detail"))): 1,
    ("peerquest_http_requests_total", (("method", "POST"), ("status_class", "3xx"), ("view", "api/<slug:key>/"))): 1,
    ("peerquest_http_requests_total", (("method", "OTHER"), ("status_class", "4xx"), ("view", "unmatched"))): 1,
    # Each record once, in the file of its own level; the traceback's lines and the request lines do not count.
    ("peerquest_log_lines_total", (("level", "INFO"),)): 4,
    ("peerquest_log_lines_total", (("level", "WARNING"),)): 1,
    ("peerquest_log_lines_total", (("level", "ERROR"),)): 1,
    ("peerquest_log_lines_total", (("level", "CRITICAL"),)): 1,
    ("peerquest_log_events_total", (("event", "approval_succeeded"),)): 2,
    ("peerquest_log_events_total", (("event", "approval_failed"),)): 1,
    ("peerquest_log_events_total", (("event", "assignment_succeeded"),)): 1,
}


# ------------------------------------------- the program's few constructs

FILE_BLOCK = re.compile(r"^getfilename\(\) =~ /(.+)/ \{$")
LINE_BLOCK = re.compile(r"^  /(.+)/ \{$")
INCREMENT = re.compile(r"^    (\w+)((?:\[[^\]]+\])+)\+\+$")
OBSERVE = re.compile(r"^    (\w+)((?:\[[^\]]+\])+) = \$(\w+)$")
DECLARE = re.compile(r"^(counter|histogram) (\w+) by ([\w, ]+?)(?: buckets (.+))?$")


def _label(expression, match):
    value = ""
    for part in (p.strip() for p in expression.split("+")):
        value += match.group(part[1:]) if part.startswith("$") else part.strip('"')
    return value


def interpret(program, files):
    """{(name, labels): value} after feeding every line of files (in order) through program."""
    declared, blocks = {}, []
    for line in program.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line.strip() == "}":
            continue
        if m := DECLARE.match(line):
            buckets = [float(b) for b in m.group(4).split(",")] if m.group(4) else None
            declared[m.group(2)] = ([k.strip() for k in m.group(3).split(",")], buckets)
        elif m := FILE_BLOCK.match(line):
            blocks.append((re.compile(m.group(1)), []))
        elif m := LINE_BLOCK.match(line):
            blocks[-1][1].append((re.compile(m.group(1)), []))
        elif m := INCREMENT.match(line) or OBSERVE.match(line):
            blocks[-1][1][-1][1].append(m)
        else:
            raise AssertionError(f"a construct this interpreter does not know: {line!r}")
    values = {}
    for path in files:
        for text in path.read_text().splitlines():
            for file_re, conditions in blocks:
                if not file_re.search(str(path)):
                    continue
                for line_re, actions in conditions:
                    match = line_re.search(text)
                    if not match:
                        continue
                    for action in actions:
                        name = action.group(1)
                        keys, buckets = declared[name]
                        labels = re.findall(r"\[([^\]]+)\]", action.group(2))
                        key = tuple(sorted(zip(keys, (_label(x, match) for x in labels), strict=True)))
                        if action.re is INCREMENT:
                            values[(name, key)] = values.get((name, key), 0) + 1
                        else:
                            seconds = float(match.group(action.group(3)))
                            for bound in [*buckets, math.inf]:
                                le = "+Inf" if bound == math.inf else f"{bound:g}"
                                bucket = (name + "_bucket", tuple(sorted((*key, ("le", le)))))
                                values[bucket] = values.get(bucket, 0) + (seconds <= bound)
                            for suffix, add in (("_sum", seconds), ("_count", 1)):
                                values[(name + suffix, key)] = values.get((name + suffix, key), 0) + add
    return values


# ------------------------------------------------------------------ tests


def test_the_program_counts_real_lines_in_either_format(logs):
    log_dir, _ = logs
    program = render("peerquest.mtail.j2", **wired(log_dir))
    values = interpret(program, sorted(log_dir.iterdir()))
    counters = {k: v for k, v in values.items() if not k[0].startswith("peerquest_http_request_duration_seconds")}
    assert counters == EXPECTED
    detail = (("method", "GET"), ("view", "quests:detail"))
    assert values[("peerquest_http_request_duration_seconds_count", detail)] == 2
    assert values[("peerquest_http_request_duration_seconds_sum", detail)] == pytest.approx(0.03, abs=1e-5)
    assert values[("peerquest_http_request_duration_seconds_bucket", (("le", "0.025"), *detail))] == 1
    assert values[("peerquest_http_request_duration_seconds_bucket", (("le", "0.05"), *detail))] == 2
    assert values[("peerquest_http_request_duration_seconds_bucket", (("le", "+Inf"), *detail))] == 2


def test_declarations_are_the_contract_s_names():
    program = render("peerquest.mtail.j2", **wired("/var/log/peerquest"))
    declared = [line for line in program.splitlines() if DECLARE.match(line)]
    assert declared == [
        "counter peerquest_http_requests_total by view, method, status_class",
        "histogram peerquest_http_request_duration_seconds by view, method buckets "
        + ", ".join(f"{b:g}" for b in BUCKETS),
        "counter peerquest_log_lines_total by level",
        "counter peerquest_log_events_total by event",
    ]


def test_non_default_values(tmp_path):
    rates = [{"name": "signup", "success": "User (re)joined: a/b", "failure": "Sign-up failed [x]?"}]
    program = render(
        "peerquest.mtail.j2",
        **wired(tmp_path, rates=rates),
        peerquest_mtail_duration_buckets=[0.1, 1.5],
    )
    assert "buckets 0.1, 1.5" in program
    # Literal strings, escaped for RE2 (every ASCII punctuation character, "/" included).
    assert r"/User \(re\)joined\: a\/b/ {" in program and r"/Sign\-up failed \[x\]\?/ {" in program
    events = tmp_path / "django.log"
    events.write_text("INFO x User (re)joined: a/b\nINFO x Sign-up failed [x]?\nINFO x User rejoined: a/b\n")
    values = interpret(program, [events])
    assert values[("peerquest_log_events_total", (("event", "signup_succeeded"),))] == 1
    assert values[("peerquest_log_events_total", (("event", "signup_failed"),))] == 1


def test_without_inputs_the_program_declares_only(tmp_path):
    program = render("peerquest.mtail.j2")
    assert "getfilename()" not in program and "counter peerquest_log_lines_total by level" in program
    settings = render("mtail.default.j2")
    assert 'LOGS=""' in settings


def test_settings_name_every_file_once_and_the_program_dir(tmp_path):
    settings = render("mtail.default.j2", **wired(tmp_path), peerquest_mtail_port=3999,
                      peerquest_mtail_listen_address="10.0.0.5", peerquest_mtail_progs_dir="/srv/mtail")  # fmt: skip
    values = dict(line.split("=", 1) for line in settings.splitlines() if line and not line.startswith("#"))
    logs = values["LOGS"].strip('"').split(",")
    assert sorted(logs) == sorted({f["path"] for f in wired(tmp_path)["peerquest_mtail__dependent_log_files"]})
    assert f"{tmp_path}/requests.log" in logs and len(logs) == len(set(logs))
    assert values["PORT"] == '"3999"' and values["HOST"] == '"10.0.0.5"'
    assert values["EXTRA_ARGS"] == '"--progs /srv/mtail --emit_prog_label=false"'


# ------------------------------------------------------------- real mtail


def _compile(tmp_path, program):
    progs = tmp_path / "progs"
    progs.mkdir(exist_ok=True)
    (progs / "peerquest.mtail").write_text(program)
    return progs


@pytest.mark.skipif(MTAIL is None, reason="mtail is not on this machine (the role compiles it on the host)")
def test_real_mtail_compiles_it_and_agrees(logs, tmp_path):
    log_dir, _ = logs
    progs = _compile(tmp_path, render("peerquest.mtail.j2", **wired(log_dir)))
    check = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_peerquest_mtail_check"]
    argv = ["/bin/sh", "-c", check.split("'")[1].replace("/usr/bin/mtail", MTAIL), "sh", str(progs / "peerquest.mtail")]
    assert subprocess.run(argv, capture_output=True, text=True, check=False).returncode == 0
    files = sorted(log_dir.iterdir())
    result = subprocess.run(
        [MTAIL, "--one_shot", "--one_shot_format=prometheus", "--emit_prog_label=false", "--logtostderr",
         "--progs", str(progs), "--logs", ",".join(map(str, files))],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    real = {}
    for line in result.stdout.splitlines():
        if m := re.match(r"^(\w+)\{(.*)\} (\S+)$", line):
            labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2))))
            real[(m.group(1), labels)] = float(m.group(3))
    expected = interpret(render("peerquest.mtail.j2", **wired(log_dir)), files)
    assert {k: v for k, v in real.items() if v} == {k: pytest.approx(v) for k, v in expected.items() if v}


@pytest.mark.skipif(MTAIL is None, reason="mtail is not on this machine (the role compiles it on the host)")
def test_real_mtail_refuses_a_broken_program(tmp_path):
    progs = _compile(tmp_path, 'counter x by y\n/unclosed( {\n  x["a"]++\n}\n')
    check = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_peerquest_mtail_check"]
    argv = ["/bin/sh", "-c", check.split("'")[1].replace("/usr/bin/mtail", MTAIL), "sh", str(progs / "peerquest.mtail")]
    assert subprocess.run(argv, capture_output=True, text=True, check=False).returncode != 0
