"""io.files: the one name sanitiser, printable names, temporaries matched per final name."""

from __future__ import annotations

import os

import pytest

from video_lstm.io.files import atomic_path, printable, remove_temp_files, safe_name, temp_pattern
from video_lstm.io.results import csv_cell, one_line


@pytest.mark.parametrize(
    "text",
    ["jump", "my video.mp4", "Holiday (2019) - Beach.mp4", "überzug", "日本語のラベル", "=SUM(A1)"],
)
def test_safe_names_pass_through(text):
    assert safe_name(text) == text


@pytest.mark.parametrize(
    "text",
    ["high/five", "a\nb", "x" * 300, ".hidden", "..", "", "tab\there", "a:b", "end.", "café" * 80,
     os.fsdecode(b"caf\xe9.mp4")],
)  # fmt: skip
def test_unsafe_names_are_cleaned_capped_and_hashed(text):
    name = safe_name(text, max_bytes=100)
    assert name and len(name.encode("utf-8")) <= 100
    assert "/" not in name and "\n" not in name and not name.startswith(".")
    assert name.encode("utf-8")  # valid UTF-8, no lone surrogates
    assert safe_name(name, max_bytes=100) == name  # idempotent


def test_names_that_clean_alike_stay_distinct():
    texts = ["a/b", "a:b", "a\nb", "a_b", "x" * 300, "x" * 301, "x" * 300 + "y"]
    assert len({safe_name(t) for t in texts}) == len(texts)


def test_printable_escapes_undecodable_bytes():
    assert printable(os.fsdecode(b"caf\xe9.mp4")) == "caf\\xe9.mp4"
    assert printable("café.mp4") == "café.mp4"


def test_temp_pattern_matches_only_its_own_file(tmp_path):
    with atomic_path(tmp_path / "x.mp4.json") as tmp:
        assert temp_pattern(tmp_path / "x.mp4.json").fullmatch(tmp.name)
        assert not temp_pattern(tmp_path / "x.mp4").fullmatch(tmp.name)
        assert not temp_pattern(tmp_path / "x.mp4.json.mp4.json").fullmatch(tmp.name)
    other = tmp_path / ".x.mp4.json.mp4.json.0123abcd.json.part"  # another file's temporary
    mine = tmp_path / ".x.mp4.json.89abcdef.json.part"
    old = tmp_path / ".x.mp4.k2j3_x9a.json.part"  # mkstemp-style, from earlier versions
    for p in (other, mine, old):
        p.write_text("{")
    assert remove_temp_files(tmp_path / "x.mp4.json") == 2
    assert other.exists() and not mine.exists() and not old.exists()


def test_csv_cells_and_captions():
    assert [csv_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "ok", 3)] == [
        "'=1+1", "'+1", "'-1", "'@x", "'\tx", "ok", 3,
    ]  # fmt: skip
    assert one_line("a\nb\r\n\u2028c --> d") == "a b c -> d"
