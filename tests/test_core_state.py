"""peerquest_ops.core.state and .locking: state files survive crashes, corruption and concurrency."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from conftest import PACKAGE_DIR
from peerquest_ops.core import state
from peerquest_ops.core.locking import locked


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "s.json"
    state.write_json(str(path), {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    state.write_json(str(path), {"c": 3})
    assert json.loads(path.read_text()) == {"c": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "s.json"
    state.write_json(str(path), {"old": True})
    with pytest.raises(TypeError):
        state.write_json(str(path), {"bad": object()})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_write_json_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(state.os, "fsync", recording_fsync)
    state.write_json(str(tmp_path / "s.json"), {})
    # The file's data first, then the rename in its directory.
    assert synced == [False, True]


def test_write_json_modes(tmp_path):
    old = os.umask(0o027)
    try:
        state.write_json(str(tmp_path / "shared.json"), {})
        state.write_json(str(tmp_path / "public.json"), {}, mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o640  # 0666 minus the umask
    assert stat.S_IMODE((tmp_path / "public.json").stat().st_mode) == 0o644  # exactly as asked


def test_read_json_missing_gives_a_fresh_default(tmp_path):
    default = {"keys": {}}
    first = state.read_json(str(tmp_path / "none.json"), default)
    first["keys"]["x"] = 1
    assert state.read_json(str(tmp_path / "none.json"), default) == {"keys": {}}
    assert default == {"keys": {}}


@pytest.mark.parametrize(
    "content",
    ['{"keys": {"a": 1', "not json", "\xff\xfe", "", "1", "[]"],
    ids=["truncated", "text", "bytes", "empty", "truncated-to-a-number", "wrong-kind"],
)
def test_read_json_sets_a_corrupt_file_aside(tmp_path, content):
    path = tmp_path / "dedup.json"
    path.write_bytes(content.encode("latin-1"))
    warnings = []
    assert state.read_json(str(path), {"keys": {}}, warn=warnings.append) == {"keys": {}}
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("dedup.json.corrupt-")]
    assert aside.read_bytes() == content.encode("latin-1") and not path.exists()
    assert len(warnings) == 1 and str(path) in warnings[0] and aside.name in warnings[0]
    # The next write starts afresh.
    state.write_json(str(path), {"keys": {"b": 2}})
    assert state.read_json(str(path), {}) == {"keys": {"b": 2}}


def test_locked_excludes_a_second_holder(tmp_path):
    lock = tmp_path / "sub" / "x.lock"
    with locked(str(lock)):
        assert lock.exists()  # and its directory was created
        with pytest.raises(BlockingIOError), locked(str(lock), blocking=False):
            pass
        # Another process is kept out too.
        code = (
            f"import sys; sys.path.insert(0, {str(PACKAGE_DIR)!r}); from peerquest_ops.core.locking import locked\n"
            f"try:\n    with locked({str(lock)!r}, blocking=False): sys.exit(0)\n"
            "except BlockingIOError: sys.exit(3)"
        )
        assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 3
    with locked(str(lock), blocking=False):
        pass


def test_locked_works_on_a_lock_file_this_account_cannot_write():
    # flock(1) run by root leaves the lock file 0644 and root's; the owning account must still lock it.
    # Root writes anything, so the locker runs as nobody when these tests run as root.
    work = tempfile.mkdtemp(prefix="pq-lock-")
    try:
        os.chmod(work, 0o755)
        lock = os.path.join(work, "x.lock")
        with open(lock, "w"):
            pass
        os.chmod(lock, 0o444)
        code = (
            f"import sys; sys.path.insert(0, {str(PACKAGE_DIR)!r}); from peerquest_ops.core.locking import locked\n"
            f"with locked({lock!r}):\n"
            f"    try:\n        with locked({lock!r}, blocking=False): sys.exit(4)\n"
            "    except BlockingIOError: sys.exit(3)"
        )
        user = {"user": 65534} if os.geteuid() == 0 else {}
        # The host's interpreter, as on a host: nobody cannot reach this virtualenv.
        result = subprocess.run(
            ["/usr/bin/python3", "-I", "-c", code], check=False, capture_output=True, text=True, **user
        )
        assert result.returncode == 3, result.stderr
    finally:
        shutil.rmtree(work)
