"""The pure helpers of bench/load.py: wrk output, the JPEG comment offset, the config literal, the verdicts."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import load

WRK_LINE = {
    "duration_us": 2_000_000,
    "requests": 400,
    "bytes": 1234,
    "latency_us": {
        "percentiles": {"50": 1500, "90": 4000, "95": 5000, "99": 12000, "99.900000000000006": 20000},
        "mean": 2000.5,
        "max": 25000,
    },
    "statuses": {"201": 390, "409": 4, "500": 2, "503.0": 4},
    "socket_errors": {"connect": 0, "read": 1, "write": 0, "timeout": 3},
    "wrapped": 0,
    "error_samples": ["409 {}"],
}


def test_parse_wrk_output_derives_rates_milliseconds_and_errors() -> None:
    text = "Running 2s test @ http://127.0.0.1:1\n  2 threads\nWRK_JSON " + json.dumps(WRK_LINE) + "\n"
    result = load.parse_wrk_output(text)
    assert result["rps"] == 200
    assert result["ok"] == 390 and result["ok_rps"] == 195
    assert result["non_2xx"] == 10
    assert result["statuses"] == {"201": 390, "409": 4, "500": 2, "503": 4}
    assert result["socket_errors"] == {"read": 1, "timeout": 3}
    assert result["latency_ms"]["p50"] == 1.5 and result["latency_ms"]["p99"] == 12
    assert result["latency_ms"]["p99.9"] == 20


def test_parse_wrk_output_without_the_json_line_fails_with_the_output() -> None:
    with pytest.raises(load.sr.BenchError, match="unable to connect"):
        load.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_a_comment_after_the_app_segments_keeps_the_photo_and_changes_its_bytes() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "bench"  # Make
    Image.new("RGB", (64, 48), "red").save(buffer, "JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    offset = load.jpeg_comment_offset(data)
    assert data[offset : offset + 2] != b"\xff\xe1"  # past the EXIF segment
    text = b"bench-load 1"
    segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    changed = data[:offset] + segment + data[offset:]
    with Image.open(io.BytesIO(changed)) as image:
        image.load()
        assert image.size == (64, 48)
        assert image.getexif()[0x010F] == "bench"
        assert image.info["comment"] == text


def test_jpeg_comment_offset_refuses_other_bytes() -> None:
    with pytest.raises(ValueError):
        load.jpeg_comment_offset(b"\x89PNG\r\n")


def test_lua_literal_escapes_strings() -> None:
    assert load.lua_literal({"a": 'x"y\\z\n', "n": 2, "f": 0.5, "b": True}) == (
        '{["a"] = "x\\"y\\\\z\\n", ["n"] = 2, ["f"] = 0.5, ["b"] = true}'
    )


def test_deal_and_interleave_spread_reporters_over_threads() -> None:
    lines = load.interleave([["a1", "a2", "a3"], ["b1"], ["c1", "c2"]])
    assert lines == ["a1", "b1", "c1", "a2", "c2", "a3"]
    assert load.deal(lines, 2) == [["a1", "c1", "c2"], ["b1", "a2", "a3"]]


def test_verdicts() -> None:
    figures = {
        "submit_vs_pgbench": 0.07,
        "queue_first_paced_p99_ms": 20.0,
        "queue_cursor_paced_p99_ms": 60.0,
        "upload_vs_pillow": 0.65,
        "sqlite_paced_ok_rps": 199.0,
        "sqlite_paced_p99_ms": 40.0,
        "sqlite_paced_errors": 0,
        "sqlite_lock_lines": 1,
    }
    result = load.verdicts(figures, 1_000_000)
    assert result["submit"]["verdict"] == "PASS" and result["submit"]["note"] == "aim not met"
    assert result["inspector queue"]["verdict"] == "FAIL" and result["inspector queue"]["value"] == 60.0
    assert result["photo upload"]["verdict"] == "PASS"
    assert result["embedded SQLite"]["verdict"] == "FAIL"  # a lock error in the log
    assert load.verdicts(figures, 50_000)["inspector queue"]["verdict"] == "n/a"
    never_answered = {**figures, "queue_first_paced_p99_ms": 10.0, "queue_cursor_paced_p99_ms": math.inf}
    assert load.verdicts(never_answered, 1_000_000)["inspector queue"]["verdict"] == "FAIL"
    assert load.verdicts({}, 1_000_000)["submit"]["verdict"] == "n/a"


def test_ratio_of_missing_figures_is_nan() -> None:
    assert load.ratio(10, 20) == 0.5
    assert load.ratio(0, 20) == 0
    assert math.isnan(load.ratio(None, 20)) and math.isnan(load.ratio(10, 0))


def test_paced_connections_are_few_enough_to_stay_alive() -> None:
    assert load.paced_connections(0.7, 2, 32) == 5
    assert load.paced_connections(4.7, 2, 32) == 17
    assert load.paced_connections(2000, 2, 32) == 32


def test_only_picks_parts_and_refuses_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert load.parse_args([]).only == load.PARTS
    assert load.parse_args(["--only", "queue, my_reports"]).only == ("queue", "my_reports")
    for wrong in ("queue,nothing", ","):
        with pytest.raises(SystemExit):
            load.parse_args(["--only", wrong])
    assert "parts are" in capsys.readouterr().err


def test_figures_and_verdicts_of_a_run_of_some_parts() -> None:
    wrk = load.parse_wrk_output("WRK_JSON " + json.dumps({**WRK_LINE, "statuses": {"200": 400}}))
    endpoint = {"saturation": wrk, "paced": wrk, "paced_target_rps": 120.0}
    report = {"queue_first": endpoint, "queue_cursor": endpoint, "config": {"parts": ["queue"]}}
    figures = load.figures(report)
    assert figures["queue_first_paced_p99_ms"] == 12.0 and math.isnan(figures["queue_first_vs_hello"])
    assert figures["submit_vs_pgbench"] is None and "sqlite_paced_p99_ms" not in figures
    verdicts = load.verdicts(figures, 1_000_000)
    assert verdicts["inspector queue"]["verdict"] == "PASS"
    assert {v["verdict"] for name, v in verdicts.items() if name != "inspector queue"} == {"n/a"}
    report.update(figures=figures, verdicts=verdicts)
    lines = load.table_lines(report)
    assert any("GET /v1/staff/cases (inspector, page 1)" in line for line in lines)
    assert not any(line.startswith(("embedded SQLite: POST", "POST /v1/reports")) for line in lines)
