"""Files a role ships must not hard-code a value that a role variable controls.

A site changes paths, URLs, ports, accounts, units and settings modules through
the roles' variables. A program under roles/*/files or a template under
roles/*/templates that spells one of those defaults out (in code, a fallback, a
docstring or a comment) keeps the default where the site changed it, or tells
an operator something that is not true on their hosts.

How it works (the defaults are read when the tests run, never frozen here):

- Every roles/*/defaults/main.yml is loaded and walked (dicts and lists). A
  string leaf is kept when it is literal (no Jinja) and of a kind a site
  changes:
  * absolute path (starts with "/");
  * http(s) URL: the whole URL, its "host:port" and its ":port";
  * account, group or unit name: the variable's name ends in _user, _group,
    _service or _readers (list elements), or the value ends in ".service";
    names every system has (root, nobody, nogroup, adm) are skipped;
  * Python dotted module name (lower case, e.g. "peerquest_site.settings")
    under a key ending in "module" or ending in ".settings". Capitalised
    "app_label.Model" labels (peerquest_health_models) and relative file names
    ("django.log") are data, not site values, and are not collected.
  A default made only of "{{ other_var }}" placeholders and text is resolved
  against the literal defaults (e.g. "{{ peerquest_app_ops_config_dir }}/x.json"
  becomes "/etc/peerquest-ops/x.json") so a hit names the most specific
  variable; any other Jinja default is skipped. Booleans, numbers and other
  strings are skipped.
- Every text file under roles/*/files and roles/*/templates is searched line by
  line, Jinja included (a literal inside "{{ x | default('/srv/app') }}" is a
  hard-coded default too), with boundaries so that a longer token does not
  count:
  * a path or URL must not touch a path character before it, nor be followed
    by [\\w-] or by "." plus a word character ("/var/log/peerquest" matches
    "/var/log/peerquest/django.log" and "... /var/log/peerquest." but not
    "/var/log/peerquest-monitoring" or "/etc/logrotate.d/peerquest.conf");
  * a name or module must not touch [\\w./@-] on either side (a final "." that
    ends a sentence is allowed): "peerquest" does not match
    "peerquest_logging", "peerquest-alert", "/srv/peerquest" or
    "peerquest.service";
  * "host:port" must not touch [\\w.] before or a digit after; ":port" must not
    be followed by a digit.
  Where hits overlap on a line only the longest is reported.
"""

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROLES, ROOT

JINJA = re.compile(r"\{\{|\{%")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
URL = re.compile(r"^https?://([^/?#\s]+)")
MODULE = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+$")
NAME_SUFFIXES = ("_user", "_group", "_service")
LIST_NAME_SUFFIXES = ("_readers",)
UNIVERSAL_NAMES = {"root", "nobody", "nogroup", "adm"}

# Boundaries per kind: (not allowed before, not allowed after).
PATH_BOUNDS = (r"(?<![\w./@-])", r"(?![\w-]|\.\w)")
# "peerquest:" starting a Prometheus recording rule (peerquest:http_requests:rate5m) is not the account.
NAME_BOUNDS = (r"(?<![\w./@-])", r"(?![\w/@-]|\.[\w-]|:\w+:)")
HOSTPORT_BOUNDS = (r"(?<![\w.])", r"(?!\d)")
PORT_BOUNDS = (r"", r"(?!\d)")


def _load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def load_defaults(roles_dir=ROLES):
    """{role name: {variable: default}} read from roles/*/defaults/main.yml now."""
    return {path.parent.parent.name: _load_yaml(path) for path in sorted(Path(roles_dir).glob("*/defaults/main.yml"))}


def _leaves(value, key, in_list=False):
    """Yield (nearest key, in a list?, string) for every string under value."""
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            yield from _leaves(sub_value, str(sub_key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key, in_list=True)
    elif isinstance(value, str):
        yield key, in_list, value


def _classify(var, key, in_list, value):
    """[(kind, token)] a literal default string contributes; [] when none."""
    value = value.strip()
    if not value or JINJA.search(value) or "{#" in value:
        return []
    url = URL.match(value)
    if url:
        tokens = [("path", value.rstrip("/") or value)]
        netloc = url.group(1).rsplit("@", 1)[-1]
        port = re.search(r":(\d+)$", netloc)
        if port:
            tokens += [("hostport", netloc), ("port", ":" + port.group(1))]
        return tokens
    if value.startswith("/") and len(value) > 1:
        return [("path", value.rstrip("/"))]
    is_name = (
        (not in_list and var.endswith(NAME_SUFFIXES))
        or (in_list and var.endswith(LIST_NAME_SUFFIXES))
        or value.endswith(".service")
    )
    if is_name and value not in UNIVERSAL_NAMES and not re.search(r"\s", value):
        return [("name", value)]
    if MODULE.match(value) and (key.lower().endswith("module") or value.endswith(".settings")):
        return [("name", value)]
    return []


def _resolve(value, literals):
    """Substitute "{{ var }}" placeholders with literal string defaults; None if not possible."""
    if not isinstance(value, str) or not PLACEHOLDER.search(value):
        return None

    def repl(match):
        found = literals.get(match.group(1))
        if not isinstance(found, str) or JINJA.search(found):
            raise KeyError(match.group(1))
        return found

    try:
        resolved = PLACEHOLDER.sub(repl, value)
    except KeyError:
        return None
    return None if JINJA.search(resolved) else resolved


def collect_values(defaults_by_role):
    """{(kind, token): [(variable, role), ...]} of every checked default value.

    Variables whose literal default is the token come first, then variables
    whose default resolves to it.
    """
    literals = {var: value for defaults in defaults_by_role.values() for var, value in defaults.items()}
    literal_owners, resolved_owners = {}, {}
    for role, defaults in defaults_by_role.items():
        for var, value in defaults.items():
            resolved = _resolve(value, literals)
            source, owners = (resolved, resolved_owners) if resolved is not None else (value, literal_owners)
            for key, in_list, leaf in _leaves(source, var):
                for token in _classify(var, key, in_list, leaf):
                    owners.setdefault(token, [])
                    if (var, role) not in owners[token]:
                        owners[token].append((var, role))
    values = dict(literal_owners)
    for token, owners in resolved_owners.items():
        values[token] = values.get(token, []) + [o for o in owners if o not in values.get(token, [])]
    return values


def _pattern(kind, token):
    before, after = {"path": PATH_BOUNDS, "name": NAME_BOUNDS, "hostport": HOSTPORT_BOUNDS, "port": PORT_BOUNDS}[kind]
    return re.compile(before + re.escape(token) + after)


def compile_values(values):
    return [(_pattern(kind, token), token, owners) for (kind, token), owners in values.items()]


def find_hits(text, compiled):
    """[(line number, token, owners)] of hard-coded defaults in text, longest hit per overlap."""
    hits = []
    for lineno, line in enumerate(text.splitlines(), 1):
        spans = []
        for pattern, token, owners in compiled:
            for match in pattern.finditer(line):
                spans.append((match.start(), match.end(), token, owners))
        for start, end, token, owners in spans:
            covered = any(
                s <= start and end <= e and (e - s) > (end - start) for s, e, _t, _o in spans if (s, e) != (start, end)
            )
            if not covered:
                hits.append((lineno, token, owners))
    return hits


def _owners_text(owners):
    return ", ".join(f"{var} (roles/{role})" for var, role in owners)


def role_files(roles_dir=ROLES):
    """Every text file under roles/*/files and roles/*/templates."""
    found = []
    for sub in ("files", "templates"):
        for path in sorted(Path(roles_dir).glob(f"*/{sub}/**/*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
                continue
            data = path.read_bytes()
            if b"\0" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            found.append(path)
    return sorted(found)


ROLE_FILES = role_files()


@pytest.fixture(scope="module")
def compiled_values():
    values = collect_values(load_defaults())
    assert any(kind == "path" for kind, _token in values), "no path defaults found: the collector is broken"
    return compile_values(values)


@pytest.mark.parametrize("path", ROLE_FILES, ids=lambda p: str(p.relative_to(ROLES)))
def test_no_hardcoded_defaults(path, compiled_values):
    rel = path.relative_to(ROOT)
    hits = find_hits(path.read_text(encoding="utf-8"), compiled_values)
    lines = [
        f"{rel}:{lineno}: {token!r} is the default of {_owners_text(owners)}; take it from the variable"
        for lineno, token, owners in hits
    ]
    assert not lines, f"{len(lines)} hard-coded default(s):\n" + "\n".join(lines)


def test_role_files_found():
    assert ROLE_FILES, "no files under roles/*/files or roles/*/templates"
    assert all(p.relative_to(ROLES).parts[1] in {"files", "templates"} for p in ROLE_FILES)


SYNTHETIC_DEFAULTS = {
    "role_a": {
        "a_log_dir": "/var/log/app",
        "a_config_path": "{{ a_config_dir }}/a.json",
        "a_user": "appuser",
        "a_service": "app.service",
        "a_readers": ["reader-one"],
        "a_local_url": "http://127.0.0.1:8000",
        "a_env": {"DJANGO_SETTINGS_MODULE": "app_site.settings"},
        "a_models": {"quests": "quests.Quest"},
        "a_filename": "django.log",
        "a_enabled": True,
        "a_port": 587,
        "a_group": "root",
        "a_jinja": "{{ groups['x'] | first }}",
    },
    "role_b": {"a_config_dir": "/etc/app-ops"},
}


def _synthetic_hits(text):
    return [
        (lineno, token)
        for lineno, token, _owners in find_hits(text, compile_values(collect_values(SYNTHETIC_DEFAULTS)))
    ]


def test_collector_keeps_site_values_only():
    values = collect_values(SYNTHETIC_DEFAULTS)
    assert set(values) == {
        ("path", "/var/log/app"),
        ("path", "/etc/app-ops"),
        ("path", "/etc/app-ops/a.json"),
        ("name", "appuser"),
        ("name", "app.service"),
        ("name", "reader-one"),
        ("path", "http://127.0.0.1:8000"),
        ("hostport", "127.0.0.1:8000"),
        ("port", ":8000"),
        ("name", "app_site.settings"),
    }
    assert values[("path", "/etc/app-ops/a.json")] == [("a_config_path", "role_a")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("LOG = '/var/log/app/django.log'", [(1, "/var/log/app")]),
        ("# default: /etc/app-ops.", [(1, "/etc/app-ops")]),
        ('"""Reads /etc/app-ops/a.json."""', [(1, "/etc/app-ops/a.json")]),
        ("x\nUser=appuser\n", [(2, "appuser")]),
        ("systemctl reload app.service", [(1, "app.service")]),
        ("url = 'http://127.0.0.1:8000/health/'", [(1, "http://127.0.0.1:8000")]),
        ("connect(('127.0.0.1:8000'))", [(1, "127.0.0.1:8000")]),
        ("host = 'localhost:8000'", [(1, ":8000")]),
        ("os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'app_site.settings')", [(1, "app_site.settings")]),
        ("{{ a_log_dir | default('/var/log/app') }}", [(1, "/var/log/app")]),
    ],
)
def test_detector_reports_hardcoded_values(text, expected):
    assert _synthetic_hits(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/var/log/app-monitoring/monitoring.log",
        "/var/log/apps",
        "/var/log/app.d/x",
        "/srv/var/log/app",
        "/etc/app-ops-extra",
        "import appuser_lib; appuser-alert; /home/appuser; appuser@example.com; appuser.conf",
        "app.service.d/override.conf",
        "http://127.0.0.1:80001/",
        "quests.Quest django.log root",
        "{{ a_log_dir }}/django.log",
    ],
)
def test_detector_ignores_longer_lookalikes(text):
    assert _synthetic_hits(text) == []


def test_detector_reads_live_defaults(compiled_values):
    log_dir = load_defaults()["peerquest_logdir"]["peerquest_logdir_path"]
    if not isinstance(log_dir, str) or not log_dir.startswith("/"):
        pytest.skip("peerquest_logdir_path is not a literal path")
    # A file name no default uses, so the log directory itself is the longest hit.
    text = f"LOG = '{log_dir}/zz-synthetic-test.log'\nOTHER = '{log_dir}-elsewhere/x'\n"
    hits = find_hits(text, compiled_values)
    assert [(lineno, token) for lineno, token, _owners in hits] == [(1, log_dir)]
