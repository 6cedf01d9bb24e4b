"""The HTML report rendered from run records: self-contained, escaped, merged across machines, fast and small."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from harness.report import html
from harness.result import RunResult
from tests.report import records

XSS = "<script>alert(1)</script>"


def _figures(page: str) -> list[dict]:
    blob = re.search(r'<script type="application/json" id="optbench-figures">(.*?)</script>', page, re.S)
    assert blob is not None
    return json.loads(blob.group(1))["figures"]


def xss_run() -> dict:
    """A run whose model and case names hold HTML."""
    rec = records.record(XSS, "quantization", "int8", "onnxruntime")
    ref = records.record(XSS, "reference", "fp32", "onnxruntime", reference=True)
    return records.run([records.case(ref, suite="quantization"), records.case(rec, "fail", [records.FAILED])])


def test_the_page_is_one_offline_file_with_plotly_inlined_once():
    page = html.render([RunResult.from_dict(records.run())])
    assert page.count('id="plotly-js"') == 1
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://cdn", page)
    assert len(_figures(page)) == page.count('class="plot" data-figure=')


def test_summary_counts_failures_and_environment_come_from_the_record():
    result = RunResult.from_dict(records.run())
    page = html.render([result])
    for status, n in result.counts().items():
        assert f'data-status="{status}"><b>{n}</b>' in page
    failures = page[page.index('<table id="failures">'):page.index('<h3>Where it was measured')]
    rows = re.findall(r'<tr class="fail">(.*?)</tr>', failures)
    assert len(rows) == len(result.failed_checks()) == 3
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0])
    assert cells[:6] == ["digits_cnn-int8-onnxruntime", "baseline speedup", "speedup", "1.8", "1.1", "0.35"]
    assert "Test CPU [avx2], 2 CPUs, 1 thread(s)" in page and "abc123" in page


def test_each_model_plots_quality_against_latency_with_its_pareto_front():
    page = html.render([RunResult.from_dict(records.run())])
    plot = next(f for f in _figures(page) if f["layout"]["title"]["text"].startswith("digits_cnn: quality"))
    front = next(t for t in plot["data"] if t["name"] == "Pareto front")
    assert front["text"]
    points = [(x, y) for t in plot["data"] if t["name"] != "Pareto front" for x, y in zip(t["x"], t["y"],
                                                                                              strict=True)]
    for x, y in zip(front["x"], front["y"], strict=True):  # nothing beats a front point on both axes
        assert not any(x2 < x and y2 > y for x2, y2 in points)
    hover = [text for t in plot["data"] for text in t.get("text", [])]
    assert any(text.startswith("digits_cnn-int8-onnxruntime<br>measured on Test CPU") for text in hover)


def test_pareto_front_keeps_only_points_nothing_beats_on_both_axes():
    points = [(1.0, 0.9), (2.0, 0.95), (3.0, 0.94), (0.5, 0.5), (1.0, 0.8)]
    assert html.pareto_front(points) == [3, 0, 1]


def test_several_records_merge_with_each_figure_labelled_by_machine():
    other = records.ENV | {"cpu": "Other CPU"}
    results = [RunResult.from_dict(records.run(started="2026-11-28T19:00:00Z")),
               RunResult.from_dict(records.run(started="2026-11-28T20:00:00Z", environment=other, commit="def456"))]
    page = html.render(results)
    assert "#1 Test CPU, 1 thread(s)" in page and "#2 Other CPU, 1 thread(s)" in page
    plot = next(f for f in _figures(page) if f["layout"]["title"]["text"].startswith("digits_cnn: quality"))
    assert {t["name"] for t in plot["data"]} >= {"onnxruntime (#1 Test CPU, 1 thread(s))",
                                                 "onnxruntime (#2 Other CPU, 1 thread(s))"}
    trend = [f for f in _figures(page) if "per run" in f["layout"]["title"]["text"]]
    assert trend and any("commit def456" in text for f in trend for t in f["data"] for text in t["text"])


def test_history_rows_drive_the_trend_plots():
    rows = [{"run": i, "started": f"2026-11-2{i}T10:00:00Z", "commit": f"c{i}", "machine": "m", "suite": "s",
             "case_id": "m-int8-ort", "latency_p50_s": 0.001 * (i + 1), "quality": 0.9, "speedup": 1.0}
            for i in range(3)]
    page = html.render([RunResult.from_dict(records.run())], history=rows)
    trend = next(f for f in _figures(page) if f["layout"]["title"]["text"] == "s: p50 latency at batch 1 (ms) per run")
    assert trend["data"][0]["y"] == pytest.approx([1.0, 2.0, 3.0])
    assert trend["data"][0]["text"][2].startswith("m-int8-ort<br>commit c2")


def test_html_in_names_is_escaped_as_text():
    page = html.render([RunResult.from_dict(xss_run())])
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


IMG, BREAKOUT, SVG = "<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", "<svg onload=alert(1)>"


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_hostile_model_and_machine_names_reach_plotly_and_the_page_only_escaped():
    """Every section renders models and a machine named with HTML. The page keeps its own three scripts and no
    tag of theirs; the figures (titles, hover text, legends, axis labels) hold the names escaped, since Plotly
    reads its strings as HTML (``<a href>``, ``<b>``) and decodes entities: the names then show as written."""
    text = json.dumps(records.run(environment={**records.ENV, "cpu": SVG}))
    data = json.loads(text.replace("digits_cnn", IMG).replace("cancer_mlp", BREAKOUT))
    page = html.render([RunResult.from_dict(data)])
    assert page.count("<script") == page.count("</script>") == 3
    blob = page[page.index('id="optbench-figures">'):]
    assert "<" not in blob[:blob.index("</script>")]  # the JSON escapes even the report's own <br>
    assert not re.search(r"<(img|svg)\b", page, re.I)
    for name in (IMG, BREAKOUT, SVG):
        assert name not in page
    strings = list(_strings(_figures(page)))
    assert not [s for s in strings if re.search(r"<(?!br>|/?extra>)", s)]  # only the report's own markup
    for name in (IMG, BREAKOUT, SVG):
        escaped = name.replace("<", "&lt;").replace(">", "&gt;")
        assert any(escaped in s for s in strings), name
    titles = [f["layout"]["title"]["text"] for f in _figures(page)]
    assert any(t.startswith("&lt;img src=x onerror=alert(1)&gt;: quality") for t in titles)


def test_an_empty_run_says_so():
    page = html.render([RunResult.from_dict(records.run([]))])
    assert 'id="empty-run"' in page and "This run measured no cases" in page
    assert _figures(page) == []


def test_rendering_takes_under_two_seconds_and_five_megabytes(tmp_path):
    data = records.run()
    for i in range(3):  # three times the cases of the hand-made run: more than today's suites
        data["cases"] += [c | {"case_id": f"{c['case_id']}-{i}"} for c in records.all_techniques()]
    result = RunResult.from_dict(data)
    start = time.perf_counter()
    path = html.write([result], tmp_path / "report.html")
    assert time.perf_counter() - start <= 2.0
    assert path.stat().st_size <= 5_000_000


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.report", *args], capture_output=True, text=True,
                          check=False)


def test_the_command_renders_several_records_into_one_page(tmp_path):
    a = records.write(tmp_path, records.run(), "run-a.json")
    b = records.write(tmp_path, records.run(started="2026-11-28T21:00:00Z"), "run-b.json")
    done = _cli(str(a), str(b), "-o", str(tmp_path / "out.html"))
    assert done.returncode == 0, done.stderr
    assert re.match(r"wrote .*out.html \(\d+\.\d\d MB, \d+\.\d\d s\)", done.stdout)
    assert str(a) in (tmp_path / "out.html").read_text()


def test_the_command_names_a_truncated_or_foreign_record(tmp_path):
    good = records.write(tmp_path, records.run(), "run-good.json")
    bad = tmp_path / "run-bad.json"
    bad.write_text(good.read_text()[:100])
    done = _cli(str(good), str(bad), "-o", str(tmp_path / "out.html"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"optbench report: {bad}: not valid JSON")
    foreign = records.write(tmp_path, records.run() | {"schema_version": 99}, "run-new.json")
    done = _cli(str(foreign))
    assert done.returncode == 2 and f"{foreign}: unknown run record schema_version 99" in done.stderr
    assert not (tmp_path / "out.html").exists()
