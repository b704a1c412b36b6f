"""The package's one atomic text write (checkpoints of my_gpt, the explorer's saved page, the class roll-up)."""

import pytest

from lecture_utils import files


def test_writes_and_replaces(tmp_path):
    path = files.atomic_write_text(tmp_path / "sub" / "a.txt", "one")
    assert path.read_text() == "one"
    files.atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = files.atomic_write_text(tmp_path / "a.txt", "old")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(OSError):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
