"""data_export, data_processing and report_generation, run in-process against the real
database: ``handler.run(ctx)`` writes a file in the export storage, computes statistics or
writes a report. send_email is in ``test_handlers_email.py``, payload checks at submit in
``test_handler_payloads.py``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import statistics
import threading
from pathlib import Path
from typing import Any

import pytest

from jobs.models import Job
from jobs.types import JobCancelled
from tests.integration.inprocess import messages, run

pytestmark = pytest.mark.django_db


# --- data_export ------------------------------------------------------------------------------


@pytest.fixture
def export_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"
    return tmp_path / "exports"


ROWS = [
    {"name": "ann", "score": 3.5, "tags": ["a", "b"]},
    {"name": "ben, jr.", "score": 7, "active": True},
    {"name": 'quote "q"\nnewline', "score": None},
]


def test_data_export_writes_rows_as_csv_under_the_owner_directory(job_factory, export_dir, user):
    job = job_factory(
        type="data_export", payload={"format": "csv", "rows": ROWS, "filename": "people"}
    )

    result = run(job)

    path = export_dir / str(user.pk) / "people.csv"
    assert result["path"] == str(path.resolve())
    content = path.read_bytes()
    assert result["bytes"] == len(content)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert (result["rows"], result["format"], result["filename"]) == (3, "csv", "people.csv")
    assert result["columns"] == ["name", "score", "tags", "active"]
    parsed = list(csv.reader(io.StringIO(content.decode(), newline="")))
    assert parsed == [
        ["name", "score", "tags", "active"],
        ["ann", "3.5", '["a","b"]', ""],
        ["ben, jr.", "7", "", "true"],
        ['quote "q"\nnewline', "", "", ""],
    ]
    assert [p.name for p in path.parent.iterdir()] == ["people.csv"]  # no temporary file left
    assert messages(job) == ["exporting", "export written"]


FORMULAS = [
    {"=cmd": '=HYPERLINK("http://x")', "n": -3, "note": "+1", "at": "@SUM(A1)"},
    {"=cmd": "\tx", "n": 2.5, "note": "-2+3", "at": "plain - text = fine"},
]


def test_data_export_csv_defuses_cells_a_spreadsheet_would_run_as_formulas(
    job_factory, export_dir, user
):
    job = job_factory(type="data_export", payload={"format": "csv", "rows": FORMULAS})

    parsed = list(csv.reader(io.StringIO(Path(run(job)["path"]).read_text(), newline="")))

    assert parsed == [
        ["'=cmd", "n", "note", "at"],
        ['\'=HYPERLINK("http://x")', "-3", "'+1", "'@SUM(A1)"],  # a number stays a number
        ["'\tx", "2.5", "'-2+3", "plain - text = fine"],
    ]


def test_data_export_writes_formulas_verbatim_when_asked_and_json_as_given(
    job_factory, export_dir, user
):
    raw = job_factory(
        type="data_export", payload={"format": "csv", "rows": FORMULAS, "escape_formulas": False}
    )
    as_json = job_factory(type="data_export", payload={"format": "json", "rows": FORMULAS})

    parsed = list(csv.reader(io.StringIO(Path(run(raw)["path"]).read_text(), newline="")))

    assert parsed[0] == ["=cmd", "n", "note", "at"]
    assert parsed[1][0] == '=HYPERLINK("http://x")'
    assert json.loads(Path(run(as_json)["path"]).read_text()) == FORMULAS


def test_data_export_writes_json_with_the_chosen_columns(job_factory, export_dir, user):
    job = job_factory(
        type="data_export", payload={"format": "json", "rows": ROWS, "columns": ["score", "name"]}
    )

    result = run(job)

    path = Path(result["path"])
    assert path == (export_dir / str(user.pk) / f"export-{job.id}.json").resolve()
    assert json.loads(path.read_text()) == [
        {"score": 3.5, "name": "ann"},
        {"score": 7, "name": "ben, jr."},
        {"score": None, "name": 'quote "q"\nnewline'},
    ]
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_data_export_replaces_an_earlier_file_of_the_same_name(job_factory, export_dir):
    first = run(
        job_factory(
            type="data_export", payload={"format": "json", "rows": [{"a": 1}], "filename": "x.json"}
        )
    )
    second = run(
        job_factory(
            type="data_export", payload={"format": "json", "rows": [{"a": 2}], "filename": "x.json"}
        )
    )

    assert first["path"] == second["path"]
    assert json.loads(Path(second["path"]).read_text()) == [{"a": 2}]


def test_data_export_query_exports_only_the_owners_jobs(job_factory, export_dir, other_user):
    mine = [job_factory(type="noop"), job_factory(type="fail", priority="high")]
    job_factory(owner=other_user, type="noop")
    job = job_factory(type="data_export", payload={"format": "json", "query": {"source": "jobs"}})

    result = run(job)

    rows = json.loads(Path(result["path"]).read_text())
    assert {r["id"] for r in rows} == {str(j.id) for j in [*mine, job]}
    assert result["columns"] == ["id", "type", "priority", "status", "created_at", "completed_at"]
    fail_row = next(r for r in rows if r["id"] == str(mine[1].id))
    assert fail_row["type"] == "fail"
    assert fail_row["priority"] == "high"
    assert fail_row["status"] == "pending"
    assert fail_row["completed_at"] is None
    assert fail_row["created_at"] == mine[1].created_at.isoformat()


def test_data_export_query_filters_by_type_and_limit(job_factory, export_dir):
    for _ in range(3):
        job_factory(type="noop")
    job_factory(type="fail")
    job = job_factory(
        type="data_export",
        payload={
            "format": "csv",
            "query": {"source": "jobs", "type": "noop", "limit": 2, "status": "pending"},
            "columns": ["type"],
        },
    )

    result = run(job)

    assert result["rows"] == 2
    assert Path(result["path"]).read_text().splitlines() == ["type", "noop", "noop"]


# --- data_processing ----------------------------------------------------------------------------


def test_data_processing_computes_hand_checked_statistics(job_factory):
    job = job_factory(
        type="data_processing",
        payload={"data": [2, 4, 4, 4, 5, 5, 7, 9], "percentiles": [0, 10, 90, 100]},
    )

    result = run(job)

    assert result["count"] == 8
    assert result["sum"] == 40
    assert result["mean"] == 5
    assert (result["min"], result["max"]) == (2, 9)
    assert result["median"] == 4.5
    assert result["pvariance"] == pytest.approx(4.0)  # squared deviations sum to 32; 32 / 8
    assert result["pstdev"] == pytest.approx(2.0)
    assert result["variance"] == pytest.approx(32 / 7)
    assert result["stdev"] == pytest.approx(math.sqrt(32 / 7))
    # h = 7 * p / 100: p10 -> h 0.7 -> 2 + 0.7 * (4 - 2); p90 -> h 6.3 -> 7 + 0.3 * (9 - 7)
    assert result["percentiles"] == {
        "0": 2,
        "10": pytest.approx(3.4),
        "90": pytest.approx(7.6),
        "100": 9,
    }
    assert result["percentile_method"] == "linear"
    assert messages(job) == ["computing statistics", "statistics computed"]


def test_data_processing_agrees_with_the_statistics_module(job_factory):
    data = [((i * 7919) % 1009) / 7 - 50 for i in range(5000)]
    job = job_factory(type="data_processing", payload={"data": data})

    result = run(job)

    assert result["mean"] == pytest.approx(statistics.fmean(data))
    assert result["variance"] == pytest.approx(statistics.variance(data))
    assert result["pstdev"] == pytest.approx(statistics.pstdev(data))
    assert result["median"] == pytest.approx(statistics.median(data))
    quartiles = statistics.quantiles(data, n=4, method="inclusive")
    assert [result["percentiles"][k] for k in ("25", "50", "75")] == pytest.approx(quartiles)


def test_data_processing_keeps_precision_on_a_large_offset(job_factory):
    data = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]  # naive sum-of-squares loses this variance
    result = run(job_factory(type="data_processing", payload={"data": data}))

    assert result["variance"] == pytest.approx(30.0)
    assert result["mean"] == 1e9 + 10


def test_data_processing_of_one_item_has_no_sample_variance(job_factory):
    result = run(
        job_factory(type="data_processing", payload={"data": [3.25], "percentiles": [50, 99.9]})
    )

    assert (result["count"], result["mean"], result["median"]) == (1, 3.25, 3.25)
    assert result["variance"] is None and result["stdev"] is None
    assert result["pvariance"] == 0
    assert result["percentiles"] == {"50": 3.25, "99.9": 3.25}


def test_data_processing_stops_when_the_job_is_cancelled(job_factory):
    job = job_factory(type="data_processing", payload={"data": list(range(10))})
    cancelled = threading.Event()
    cancelled.set()

    with pytest.raises(JobCancelled):
        run(job, cancel_event=cancelled)


# --- report_generation ----------------------------------------------------------------------------


def completed_with(job: Job, result: Any) -> Job:
    """Give a parent a result (the handler reads results, not statuses)."""
    Job.objects.filter(id=job.id).update(result=result)
    return job


def test_report_generation_summarises_each_parent_in_markdown(job_factory):
    stats = completed_with(
        job_factory(type="data_processing"),
        {
            "count": 3,
            "mean": 2.0,
            "min": 1,
            "max": 3,
            "median": 2,
            "percentiles": {"50": 2},
            "sum": 6,
        },
    )
    export = completed_with(
        job_factory(type="data_export"),
        {"format": "csv", "rows": 10, "bytes": 120, "path": "/x/a|b.csv", "sha256": "ab" * 32},
    )
    job = job_factory(
        type="report_generation", payload={"title": "Weekly"}, depends_on=[stats, export]
    )

    report = run(job)

    assert report["title"] == "Weekly"
    assert report["format"] == "markdown"
    assert [(s["type"], s["job_id"]) for s in report["sections"]] == [
        ("data_export", str(export.id)),
        ("data_processing", str(stats.id)),
    ]
    assert report["sections"][0]["summary"] == {
        "format": "csv",
        "rows": 10,
        "bytes": 120,
        "path": "/x/a|b.csv",
        "sha256": "ab" * 32,
    }
    assert report["sections"][1]["summary"] == {
        "count": 3,
        "sum": 6,
        "mean": 2.0,
        "min": 1,
        "max": 3,
        "median": 2,
        "p50": 2,
    }
    markdown = report["markdown"]
    assert markdown.startswith("# Weekly\n")
    assert f"## data_processing {stats.id}" in markdown
    assert "| mean | 2.0 |" in markdown
    assert "| path | /x/a\\|b.csv |" in markdown  # a pipe cannot break the table
    assert "html" not in report
    assert messages(job) == ["building report", "report built"]


def test_report_generation_escapes_every_value_in_html(job_factory):
    evil = "<script>alert('x')</script>"
    parent = completed_with(
        job_factory(type=evil[:60]), {evil: evil, "nested": {"a": 1}, "list": [1, 2]}
    )
    job = job_factory(
        type="report_generation",
        payload={"title": f"{evil} & co", "format": "html", "description": '"quoted" <b>'},
        depends_on=[parent],
    )

    report = run(job)

    html = report["html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html
    assert "<p>&quot;quoted&quot; &lt;b&gt;</p>" in html
    assert report["sections"][0]["summary"] == {evil: evil, "nested": "1 keys", "list": "2 items"}
    assert "markdown" not in report


def test_report_generation_escapes_html_in_markdown_too(job_factory):
    parent = completed_with(job_factory(type="custom"), {"note": "<img src=x onerror=alert(1)>"})
    report = run(job_factory(type="report_generation", depends_on=[parent]))

    assert "<img" not in report["markdown"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in report["markdown"]


def test_report_generation_works_without_parents(job_factory):
    job = job_factory(type="report_generation", payload={"description": "Nothing upstream."})

    report = run(job)

    assert report["title"] == "Job report"
    assert report["sections"] == []
    assert "Nothing upstream." in report["markdown"]
    assert "no parent jobs" in report["markdown"]
