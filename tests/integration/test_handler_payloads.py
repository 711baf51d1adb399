"""Bad payloads of the seed job types are refused at submit with a 400 naming the field; good
ones are stored as given."""

from __future__ import annotations

import pytest

from jobs.models import Job

pytestmark = pytest.mark.django_db

BIG = "x" * (100 * 1024 + 1)

INVALID = [
    ("send_email", {"subject": "s", "body": "b"}, "payload.to: is required"),
    (
        "send_email",
        {"to": "nope", "subject": "s", "body": "b"},
        "payload.to: 'nope' is not a valid",
    ),
    ("send_email", {"to": ["a@example.com", 5], "subject": "s", "body": "b"}, "payload.to: item 1"),
    ("send_email", {"to": [], "subject": "s", "body": "b"}, "payload.to: must name at least one"),
    (
        "send_email",
        {"to": [f"u{i}@example.com" for i in range(51)], "subject": "s", "body": "b"},
        "the limit is 50",
    ),
    (
        "send_email",
        {"to": ["a@example.com"] * 30, "cc": ["b@example.com"] * 21, "subject": "s", "body": "b"},
        "to, cc and bcc hold 51",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "a\r\nBcc: x@evil.com", "body": "b"},
        "payload.subject: must not contain line breaks",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s" * 256, "body": "b"},
        "payload.subject: must be a string of 1 to 255",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s", "body": 7},
        "payload.body: must be a string",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s", "body": "b", "from_email": "x"},
        "payload.from_email",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s", "body": "b", "reply": 1},
        "payload: unknown fields: reply",
    ),
    ("data_export", {"rows": []}, "payload.format: must be one of csv, json"),
    ("data_export", {"format": "xml", "rows": []}, "payload.format"),
    ("data_export", {"format": "csv"}, "payload: give exactly one of rows and query"),
    ("data_export", {"format": "csv", "rows": [], "query": {"source": "jobs"}}, "give exactly one"),
    ("data_export", {"format": "csv", "rows": [1]}, "payload.rows: item 0 is not an object"),
    (
        "data_export",
        {"format": "csv", "rows": [], "escape_formulas": "yes"},
        "payload.escape_formulas: must be true or false",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "users"}},
        'payload.query.source: must be "jobs"',
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs", "owner": 2}},
        "payload.query: unknown fields: owner",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs", "limit": 10001}},
        "payload.query.limit",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs", "status": "done"}},
        "payload.query.status",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs"}, "columns": ["payload"]},
        "is not a column of the jobs query",
    ),
    (
        "data_export",
        {"format": "csv", "rows": [], "columns": ["a", "a"]},
        "payload.columns: must not repeat",
    ),
    (
        "data_export",
        {"format": "csv", "rows": [], "filename": "../../etc/passwd"},
        "payload.filename",
    ),
    ("data_export", {"format": "csv", "rows": [], "filename": ".."}, "payload.filename"),
    ("data_export", {"format": "csv", "rows": [], "filename": "a/b.csv"}, "payload.filename"),
    ("data_processing", {}, "payload.data: is required"),
    ("data_processing", {"data": []}, "payload.data: must be a list of 1 to 1000000"),
    ("data_processing", {"data": [1, True]}, "payload.data: item 1 is not a finite number"),
    ("data_processing", {"data": [1, "2"]}, "payload.data: item 1"),
    ("data_processing", {"data": [1e200]}, "payload.data: item 0"),
    (
        "data_processing",
        {"data": [1], "percentiles": [101]},
        "payload.percentiles: item 0 is not a number from 0 to 100",
    ),
    ("data_processing", {"data": [1], "percentiles": 50}, "payload.percentiles: must be a list"),
    ("report_generation", {"format": "pdf"}, "payload.format: must be one of markdown, html"),
    ("report_generation", {"title": ""}, "payload.title: must be a string of 1 to 200"),
    ("report_generation", {"title": "a\nb"}, "payload.title: must not contain line breaks"),
    ("report_generation", {"description": 5}, "payload.description"),
    ("report_generation", {"report_type": "Daily"}, "payload.report_type: must be a snake_case"),
]


@pytest.mark.parametrize(("job_type", "payload", "expected"), INVALID)
def test_a_bad_payload_is_refused_at_submit_naming_the_field(api, job_type, payload, expected):
    response = api.post("/jobs/", {"type": job_type, "payload": payload}, format="json")

    assert response.status_code == 400, response.content
    assert any(expected in message for message in response.json()["payload"]), response.json()
    assert not Job.objects.filter(type=job_type).exists()


@pytest.mark.parametrize(
    ("job_type", "payload"),
    [
        (
            "send_email",
            {"to": "a@example.com", "subject": "s", "body": "b", "cc": [], "html_body": "<p>"},
        ),
        ("data_export", {"format": "json", "rows": [{"a": 1}], "filename": "report-2024_01.v2"}),
        (
            "data_export",
            {
                "format": "csv",
                "query": {"source": "jobs", "status": "completed", "type": "noop", "limit": 5},
            },
        ),
        ("data_processing", {"data": [1, 2.5, -3], "percentiles": [0, 99.9, 100]}),
        ("report_generation", {}),
        ("report_generation", {"report_type": "daily_summary"}),
        ("send_email", {"to": "a@example.com", "subject": "s"}),
        ("report_generation", {"title": "T", "format": "html", "description": "d"}),
    ],
)
def test_a_good_payload_is_accepted_at_submit(api, job_type, payload):
    response = api.post("/jobs/", {"type": job_type, "payload": payload}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["payload"] == payload
