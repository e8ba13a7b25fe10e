"""The benchmarks' shared helpers (``benchmarks/record.py``): a work folder is only ever one the script made."""
import importlib.util
import os
from pathlib import Path

import pytest

from toolkit.errors import InvalidArgumentError

_spec = importlib.util.spec_from_file_location(
    "benchmark_record", Path(__file__).resolve().parents[2] / "benchmarks" / "record.py")
record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record)


def test_new_and_empty_folders_are_claimed_and_marked(tmp_path):
    for path in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if path.name == "empty":
            path.mkdir()
        assert record.claim_work_folder(path, "shortlist_draws.py") == path
        assert (path / record.WORK_MARKER).read_text().strip() == "shortlist_draws.py"


def test_a_folder_the_script_made_before_is_reused(tmp_path):
    record.claim_work_folder(tmp_path / "w", "proxy_reread.py")
    (tmp_path / "w" / "a_int8.tflite").write_bytes(b"x")
    record.claim_work_folder(tmp_path / "w", "proxy_reread.py")
    assert (tmp_path / "w" / "a_int8.tflite").read_bytes() == b"x"


def test_a_users_folder_is_refused_and_left_untouched(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text("my own")
    with pytest.raises(InvalidArgumentError, match="did not write"):
        record.claim_work_folder(mine, "shortlist_draws.py")
    assert sorted(p.name for p in mine.iterdir()) == ["summary.json"]
    assert (mine / "summary.json").read_text() == "my own"


def test_another_scripts_folder_and_a_file_are_refused(tmp_path):
    record.claim_work_folder(tmp_path / "w", "proxy_reread.py")
    (tmp_path / "w" / "x.tflite").write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match="shortlist_draws.py did not write"):
        record.claim_work_folder(tmp_path / "w", "shortlist_draws.py")
    (tmp_path / "f").write_text("file")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        record.claim_work_folder(tmp_path / "f", "proxy_reread.py")


def test_a_folder_another_local_user_could_have_planted_is_refused(tmp_path, monkeypatch):
    # The default work folders lie under /tmp: a link, another user's folder or one others can write into is refused.
    theirs = tmp_path / "theirs"
    record.claim_work_folder(theirs, "proxy_reread.py")
    (tmp_path / "link").symlink_to(theirs)
    with pytest.raises(InvalidArgumentError, match="symbolic link"):
        record.claim_work_folder(tmp_path / "link", "proxy_reread.py")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidArgumentError, match="symbolic link"):
        record.claim_work_folder(tmp_path / "dangling", "proxy_reread.py")
    assert not (tmp_path / "nowhere").exists()
    theirs.chmod(0o777)
    with pytest.raises(InvalidArgumentError, match="written by other users"):
        record.claim_work_folder(theirs, "proxy_reread.py")
    theirs.chmod(0o700)
    monkeypatch.setattr(record.os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(InvalidArgumentError, match="belongs to another user"):
        record.claim_work_folder(theirs, "proxy_reread.py")
    monkeypatch.undo()
    assert record.claim_work_folder(theirs, "proxy_reread.py") == theirs
    assert (tmp_path / "new").exists() is False
    record.claim_work_folder(tmp_path / "new", "proxy_reread.py")
    assert (tmp_path / "new").stat().st_mode & 0o077 == 0  # made private
