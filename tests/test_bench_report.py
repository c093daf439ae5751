"""bench/report.py's target lines, on hand-made results (no benchmark run)."""

from __future__ import annotations

from typing import Any

from bench import report


def _stream(growth: float, by_process: dict[str, float], ttfb: float = 12.0) -> dict[str, Any]:
    return {"rows_requested": 1_000_000, "status": 200, "ttfb_ms": ttfb, "total_s": 8.0,
            "bytes": 1, "rss_before_mb": 300.0, "rss_peak_mb": 300.0 + growth,
            "rss_growth_mb": growth, "error": "", "rss_growth_by_process_mb": by_process}


def _stream_target(kg: dict[str, Any]) -> dict[str, Any]:
    results = {"sizes": [{"size": "10m", "servers": {"kg": kg}}]}
    (line,) = [t for t in report.targets(results) if t["target"].startswith("SELECT of 1M")]
    return line


def test_the_first_stream_is_judged_and_the_second_reported_beside_it() -> None:
    line = _stream_target({
        "stream": _stream(102.3, {"child 7": 101.9}),
        "stream_again": _stream(0.4, {}, ttfb=9.0),
    })
    assert line["met"] is False  # 102.3 MB on the first stream, whatever the second does
    assert "RSS growth 102.3 MB (child 7 +101.9 MB)" in line["measured"]
    assert "the same SELECT again right after: first byte 9.0 ms, RSS growth 0.4 MB" in (
        line["measured"])


def test_a_stream_under_the_limits_is_met_without_a_second_one() -> None:
    line = _stream_target({"stream": _stream(37.7, {"child 7": 37.5, "server": 1.2})})
    assert line["met"] is True
    assert line["measured"].endswith("RSS growth 37.7 MB (child 7 +37.5 MB, server +1.2 MB)")
