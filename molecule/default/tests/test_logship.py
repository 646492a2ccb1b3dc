"""Log forwarding on real hosts: the app's lines reach the monitoring host over TLS, and only over TLS.

The app host's rsyslog (peerquest_logship) forwards the files the LOGGING
settings write to the receiver (peerquest_logstore, the first host of group
peerquest_monitoring). While the receiver is down the lines wait in the
forwarding queue (memory first; disk-assisted past peerquest_logship_queue_size
and across a shutdown) and arrive exactly once and in order when it is back.
Every path, port, name and mode comes from the deployed variables (pqtest),
so the same tests hold with custom_site's values.
"""

import os
import re
import shlex
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    files_receiving,
    host,
    log_path,
    log_through_django,
    marker,
    output,
    wait_for,
)

APP = host("app")
SHIP = V("app")
RECEIVER_NAME = SHIP["peerquest_logship_target"]
RECEIVER = host(RECEIVER_NAME)
STORE = V(RECEIVER_NAME)
STORE_DIR = STORE["peerquest_logstore_dir"]
PORT = SHIP["peerquest_logship_port"]
TLS_DIR = SHIP["peerquest_logship_tls_dir"]
# A logger and level whose records land in a forwarded file.
LOGGER, LEVEL = "quests", "WARNING"
# Marked lines logged while the receiver is down.
QUEUED_LINES = 30
SERVICE = "rsyslog.service"
# Host names the hand-made test clients claim (their directories are removed after).
SENDERS = ("pq-anon", "pq-rogue", "pq-signed")
# Debian's rsyslog is socket-activated: stopping it for good stops the socket too.
STOP = "systemctl stop syslog.socket rsyslog.service"
START = "systemctl start rsyslog.service"


def _stored_file():
    """Where the receiver keeps the app's lines of the first file LOGGER writes at LEVEL."""
    files = files_receiving(LOGGER, LEVEL)
    assert files, f"no log file receives {LOGGER} {LEVEL}"
    stem = os.path.splitext(os.path.basename(files[0]))[0]
    sender = output(APP, "hostname").strip()
    return log_path(files[0]), f"{STORE_DIR}/{sender}/{SHIP['peerquest_logship_tag_prefix']}{stem}.log"


SOURCE, STORED = _stored_file()


def _stored_lines(tag, path=None):
    """Lines carrying tag in a stored file, or in every stored file."""
    where = shlex.quote(path) if path else shlex.quote(STORE_DIR)
    result = RECEIVER.run(f"grep -rhF -- {shlex.quote(tag)} {where}")
    return result.stdout.splitlines() if result.rc == 0 else []


def _receiver_address():
    return output(APP, f"getent ahostsv4 {shlex.quote(RECEIVER_NAME)}").split()[0]


def test_a_line_logged_through_the_app_reaches_the_receiver_s_per_host_file():
    tag = marker("ship")
    log_through_django(APP, LOGGER, LEVEL, f"forwarded {tag}")
    wait_for(
        lambda: tag in RECEIVER.file(STORED).content_string if RECEIVER.file(STORED).exists else False,
        timeout=30,
        interval=0.3,
        what=f"{tag} in {STORED}",
    )
    stored = RECEIVER.file(STORED)
    assert stored.user == STORE["peerquest_logstore_owner"] and stored.group == STORE["peerquest_logstore_group"]
    assert stored.mode == int(STORE["peerquest_logstore_file_mode"], 8), oct(stored.mode)
    directory = RECEIVER.file(os.path.dirname(STORED))
    assert directory.mode == int(STORE["peerquest_logstore_dir_mode"], 8), oct(directory.mode)
    # Once in the file's copy, once per file the record went to, and not in the receiver's own logs.
    assert len(_stored_lines(tag, STORED)) == 1
    copies = len(files_receiving(LOGGER, LEVEL))
    wait_for(lambda: len(_stored_lines(tag)) >= copies, timeout=15, interval=0.3, what=f"{copies} copies of {tag}")
    assert len(_stored_lines(tag)) == copies
    assert RECEIVER.run(f"grep -rlF -- {shlex.quote(tag)} /var/log/syslog /var/log/messages").rc != 0


def test_the_keys_are_root_s_alone():
    key = APP.file(f"{TLS_DIR}/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    key = RECEIVER.file(f"{STORE['peerquest_logstore_tls_dir']}/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)


def test_the_receiver_refuses_plaintext_and_clients_without_a_certificate():
    address = _receiver_address()
    plain, anonymous, rogue, signed = (marker(kind) for kind in ("plain", "anon", "rogue", "signed"))
    # Plain TCP syslog, as any process on the network could send it.
    APP.run(f"logger --tcp -n {address} -P {PORT} -t pqtest {shlex.quote(plain)}")
    # TLS that trusts the receiver but shows no certificate of its own.
    s_client = f"timeout 10 openssl s_client -quiet -connect {address}:{PORT} -CAfile {TLS_DIR}/ca.pem"
    line = "<134>1 - {host} pqtest - - - {text}"  # one of SENDERS as the host
    APP.run(f"printf '%s\\n' {shlex.quote(line.format(host='pq-anon', text=anonymous))} | {s_client}")
    # A certificate, but signed by another CA (made on the spot).
    rogue_dir = output(APP, "mktemp -d").strip()
    try:
        APP.check_output(
            f"cd {rogue_dir} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout key.pem -out cert.pem -days 1 -subj /CN=pq-rogue 2>/dev/null"
        )
        APP.run(
            f"printf '%s\\n' {shlex.quote(line.format(host='pq-rogue', text=rogue))} | "
            f"{s_client} -cert {rogue_dir}/cert.pem -key {rogue_dir}/key.pem"
        )
    finally:
        APP.run(f"rm -rf {rogue_dir}")
    # The control: the same client with the app host's certificate is heard.
    APP.run(
        f"printf '%s\\n' {shlex.quote(line.format(host='pq-signed', text=signed))} | "
        f"{s_client} -cert {TLS_DIR}/cert.pem -key {TLS_DIR}/key.pem"
    )
    try:
        wait_for(lambda: _stored_lines(signed), timeout=20, interval=0.3, what=f"{signed} at the receiver")
        for refused in (plain, anonymous, rogue):
            assert _stored_lines(refused) == [], f"the receiver stored {refused}"
    finally:
        RECEIVER.run(" ".join(["rm -rf"] + [shlex.quote(f"{STORE_DIR}/{name}") for name in SENDERS]))


def test_lines_logged_while_the_receiver_is_down_arrive_once_in_order():
    """Nothing is lost or repeated across the receiver's outage. The lines wait in the forwarding
    queue: in memory up to peerquest_logship_queue_size, on disk past it and across a shutdown."""
    tag = marker("queued")
    count = QUEUED_LINES
    try:
        RECEIVER.check_output(STOP)
        wait_for(lambda: not RECEIVER.service(SERVICE).is_running, timeout=15, interval=0.3, what="the receiver down")
        log_through_django(APP, LOGGER, LEVEL, f"{tag} seq={{i}}", count=count)
        time.sleep(3)  # what the sender would deliver, it has tried to by now
        assert _stored_lines(tag, STORED) == []
    finally:
        RECEIVER.run(START)
    wait_for(
        lambda: len(set(_stored_lines(tag, STORED))) >= count,
        timeout=90,
        interval=0.5,
        what=f"{count} queued lines at the receiver",
    )
    sequence = [int(re.search(r"seq=(\d+)", line).group(1)) for line in _stored_lines(tag, STORED)]
    # Every line exactly once, in order.
    assert sequence == list(range(count)), sequence
