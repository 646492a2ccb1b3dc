"""SecretMaskingFilter on realistic messages: what must be masked, what must stay as it is.

Each secret in the tables is a distinct marker; a masked line must not hold
any part of it. The records go through the filter and a real Formatter, as the
deployed LOGGING sends them to its files.
"""

import io
import json
import logging
import sys

import pytest
from conftest import ROLES

sys.path.insert(0, str(ROLES / "peerquest_logging" / "files"))

from peerquest_logging.filters import DEFAULT_KEYS, MASK, SecretMaskingFilter  # noqa: E402

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNlY3JldA"
# (message, the secret parts it carries)
SECRET_MESSAGES = {
    "authorization header": ("Authorization: Bearer s3cr3t-bearer-0123456789abcdef", ["s3cr3t-bearer"]),
    "authorization header, basic": ("Authorization: Basic dXNlcjpodW50ZXIy", ["dXNlcjpodW50ZXIy"]),
    "authorization, lower case": ("authorization: bearer abcDEF0123456789xyz", ["abcDEF0123456789xyz"]),
    "headers dict (repr)": (
        "headers={'HTTP_AUTHORIZATION': 'Bearer tok-in-repr-0123456789', 'HTTP_HOST': 'peerquest.example.com'}",
        ["tok-in-repr-0123456789"],
    ),
    "bare bearer token": ("upstream refused Bearer zyx987-upstream-token-value", ["zyx987-upstream-token-value"]),
    "api key header": ("X-Api-Key: key-for-the-gateway-42", ["key-for-the-gateway-42"]),
    "json body": (
        'POST /api/login/ body={"username": "alice", "password": "correct horse battery staple"}',
        ["correct horse", "battery staple"],
    ),
    "json body, escaped quote": (
        '{"user": "bob", "client_secret": "sp\\"ace y-secret"}',
        ["sp\\", "ace y-secret"],
    ),
    "json body, token nested": ('{"data": {"auth_token": "nested-tok-31337"}}', ["nested-tok-31337"]),
    "python dict": ("settings {'password': 'pw with spaces', 'debug': False}", ["pw with spaces"]),
    "key=value": ("login failed user=alice password=hunter2", ["hunter2"]),
    "key: value": ("secret: s3kr1t-value", ["s3kr1t-value"]),
    "url with credentials": (
        "connecting to https://deploy:pa55w0rd-in-url@git.example.com/peerquest.git",
        ["pa55w0rd-in-url"],
    ),
    "database url": ("DATABASE_URL=postgres://peerquest:db-pa55-xyz@db.internal:5432/pq", ["db-pa55-xyz"]),
    "redis url without user": ("cache at redis://:redis-pa55-abc@cache:6379/0", ["redis-pa55-abc"]),
    "token in query string": (
        "GET /api/export/?format=csv&access_token=qs-token-5566&page=2 200",
        ["qs-token-5566"],
    ),
    "api key in query string": (
        "GET https://maps.example.com/geo?q=berlin&apikey=maps-key-7788 200",
        ["maps-key-7788"],
    ),
    "session cookie": (
        "Cookie: csrftoken=csrf-value-1122; sessionid=sess-value-3344; theme=dark",
        ["csrf-value-1122", "sess-value-3344"],
    ),
    "set-cookie": (
        "Set-Cookie: sessionid=sess-set-5566; expires=Thu, 01 Jan 2026 00:00:00 GMT; HttpOnly; Path=/",
        ["sess-set-5566"],
    ),
    "cookie in a headers dict": ('{"Cookie": "sessionid=sess-json-7788", "Host": "a"}', ["sess-json-7788"]),
    "jwt anywhere": (f"decoded claims of {JWT} for user 42", [JWT, "c2lnbmF0dXJlLXNlY3JldA"]),
    "two secrets in one line": (
        "retry POST https://svc:pw-one-111@hooks.example.com/x token=tok-two-222",
        ["pw-one-111", "tok-two-222"],
    ),
}

BENIGN_MESSAGES = [
    "Application approved: application=42 quest=7",
    "Quest assigned to user 12",
    "Password reset email sent to user 7",
    "token refresh scheduled in 5 minutes",
    "GET /api/quests/?page=2&ordering=-created_at 200 0.031s",
    "Visit https://peerquest.example.com/quests/7/ for details",
    "mail to alice@example.com delivered",
    "Bearer authentication required for /health/",
    "Slow query took 2.4s: SELECT * FROM quests_quest WHERE id = 7",
    "Transaction rolled back for application 9",
    "CRITICAL: database connection lost",
    'payload {"quest": 7, "status": "open", "tags": ["a", "b"]}',
    "2026-11-28 06:10:11,123+1300 worker 4 ready",
]


@pytest.fixture(scope="module")
def masker():
    return SecretMaskingFilter(keys=DEFAULT_KEYS)


@pytest.mark.parametrize("case", sorted(SECRET_MESSAGES))
def test_secret_is_masked(masker, case):
    message, secrets = SECRET_MESSAGES[case]
    masked = masker.mask(message)
    assert MASK in masked, masked
    for secret in secrets:
        assert secret not in masked, masked


@pytest.mark.parametrize("case", sorted(SECRET_MESSAGES))
def test_masking_twice_changes_nothing_more(masker, case):
    once = masker.mask(SECRET_MESSAGES[case][0])
    assert masker.mask(once) == once


@pytest.mark.parametrize("message", BENIGN_MESSAGES)
def test_benign_message_stays_unchanged(masker, message):
    assert masker.mask(message) == message


def test_what_stays_readable_around_a_mask(masker):
    assert masker.mask("Authorization: Bearer s3cr3t-bearer-0123456789") == f"Authorization: Bearer {MASK}"
    assert masker.mask("https://deploy:pw-x-12345@git.example.com/a") == f"https://deploy:{MASK}@git.example.com/a"
    assert masker.mask('{"password": "a b c", "user": "x"}') == f'{{"password": "{MASK}", "user": "x"}}'
    assert masker.mask("?page=2&token=abc&x=1") == f"?page=2&token={MASK}&x=1"
    assert masker.mask("Set-Cookie: sessionid=s1; Path=/") == f"Set-Cookie: sessionid={MASK}; Path=/"


# --------------------------------------------- records through a formatter


def _emit(record_maker, keys=DEFAULT_KEYS):
    """Log one record through a handler with the filter and a verbose formatter; the text the file gets."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMaskingFilter(keys=keys))
    handler.setFormatter(logging.Formatter("{levelname} {name} {message}", style="{"))
    logger = logging.getLogger(f"redaction-test-{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        record_maker(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("case", sorted(SECRET_MESSAGES))
def test_secret_in_the_args_is_masked(case):
    message, secrets = SECRET_MESSAGES[case]
    text = _emit(lambda log: log.warning("request failed: %s", message))
    for secret in secrets:
        assert secret not in text, text


EXCEPTIONS = {
    "message": (ValueError, "bad credentials password=exc-pw-0001", "exc-pw-0001"),
    "url in a connection error": (
        ConnectionError,
        "HTTPSConnectionPool(host='x'): Max retries exceeded with url: https://u:exc-url-pw-0002@api.example.com/v1",
        "exc-url-pw-0002",
    ),
    "json in an error": (RuntimeError, 'upstream said {"api_key": "exc-key 0003"}', "exc-key 0003"),
    "bearer header in an error": (PermissionError, "sent Authorization: Bearer exc-bearer-00040004", "exc-bearer"),
}


@pytest.mark.parametrize("case", sorted(EXCEPTIONS))
def test_secret_in_an_exception_is_masked_in_message_and_traceback(case):
    kind, text, secret = EXCEPTIONS[case]

    def log_it(logger):
        try:
            raise kind(text)
        except kind as exc:
            # The exception's text in the message, and again in the traceback.
            logger.exception("request failed: %s", exc)

    out = _emit(log_it)
    assert "Traceback (most recent call last)" in out, out
    assert f"{kind.__name__}: " in out
    assert secret not in out, out
    assert out.count(MASK) >= 2, out


def test_a_chained_exception_is_masked_too():
    def log_it(logger):
        try:
            try:
                raise OSError("token=chained-inner-0005")
            except OSError as inner:
                raise RuntimeError("wrapper for https://a:chained-outer-0006@h/") from inner
        except RuntimeError:
            logger.error("job failed", exc_info=True)

    out = _emit(log_it)
    assert "chained-inner-0005" not in out and "chained-outer-0006" not in out, out
    assert "The above exception was the direct cause" in out


def test_stack_info_is_masked():
    out = _emit(lambda log: log.warning("password=stack-pw-0007", stack_info=True))
    assert "stack-pw-0007" not in out and "Stack (most recent call last)" in out


def test_configured_keys_decide_the_key_value_masking():
    # Keys from peerquest_logging_mask_keys: a site-specific one is masked, the URL password always is.
    text = _emit(lambda log: log.info("dsn=postgres://u:dsn-pw-0008@db/x credential=cred-0009"), keys=["credential"])
    assert "cred-0009" not in text and "dsn-pw-0008" not in text, text


def test_the_tables_hold_realistic_json():
    """The JSON cases really are JSON (or the table proves less than it says)."""
    json.loads(SECRET_MESSAGES["json body, token nested"][0])
    json.loads(SECRET_MESSAGES["cookie in a headers dict"][0])
    json.loads(SECRET_MESSAGES["json body, escaped quote"][0])
