"""The seed README's two payloads that Draconic used to refuse are valid jobs that do their work.

The seed README's quick start sends ``send_email`` with a subject and no ``body``; its
dependency example asks ``report_generation`` for ``{"report_type": "daily_summary"}``. Both
answered 400 (``payload.body: is required``, ``unknown fields: report_type``). The whole of both
READMEs runs against a live platform in ``tests/e2e/test_readme_examples.py``; these tests pin down
what the two payloads mean, in one process.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from jobs.models import Job
from jobs.types import JobContext, get_handler

pytestmark = pytest.mark.django_db

#: Verbatim from /work/shared/seed/draconic-README.md, "2. Submit Your First Job".
SEED_EMAIL = {
    "type": "send_email",
    "priority": "high",
    "payload": {"to": "user@example.com", "subject": "Welcome!"},
    "resource_requirements": {"cpu_units": 1, "memory_mb": 128},
}
#: Verbatim from the seed README's "Job Dependencies", without its placeholder parents.
SEED_REPORT = {
    "type": "report_generation",
    "priority": "normal",
    "payload": {"report_type": "daily_summary"},
}


def run(job_id: str) -> Any:
    job = Job.objects.get(id=job_id)
    handler = get_handler(job.type)
    assert handler is not None
    return handler.run(JobContext(job))


def test_the_seed_quick_start_email_without_a_body_is_accepted_and_sent(api, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")

    response = api.post("/jobs/", SEED_EMAIL, format="json")

    assert response.status_code == 201, response.content
    result = run(response.json()["id"])
    assert result["recipients"] == 1
    [mail_file] = list(Path(settings.EMAIL_FILE_PATH).glob("*.log"))
    # The file backend ends each message with a line of 79 dashes.
    message = mail_file.read_bytes().rsplit(b"-" * 79, 1)[0]
    sent = message_from_bytes(message, policy=policy.default)
    assert (sent["To"], sent["Subject"]) == ("user@example.com", "Welcome!")
    assert sent.get_body(("plain",)).get_content().strip() == ""  # what the README promises


def test_the_seed_report_type_is_the_reports_kind_and_names_it(api, job_factory):
    parent = job_factory(type="data_processing", payload={"data": [1, 2, 3]})
    Job.objects.filter(id=parent.id).update(result={"count": 3, "mean": 2.0})

    response = api.post("/jobs/", {**SEED_REPORT, "depends_on": [str(parent.id)]}, format="json")

    assert response.status_code == 201, response.content
    report = run(response.json()["id"])
    assert (report["report_type"], report["title"]) == ("daily_summary", "Daily summary")
    assert report["markdown"].startswith("# Daily summary\n\nReport type: daily_summary.")
    assert [s["job_id"] for s in report["sections"]] == [str(parent.id)]


def test_a_reports_title_wins_over_its_kind_and_html_carries_the_kind(job_factory):
    job = job_factory(
        type="report_generation",
        payload={"report_type": "weekly_ops", "title": "Ops, week 12", "format": "html"},
    )

    report = run(str(job.id))

    assert (report["report_type"], report["title"]) == ("weekly_ops", "Ops, week 12")
    assert 'data-report-type="weekly_ops"' in report["html"]
    assert "<code>weekly_ops</code>" in report["html"]


def test_a_report_without_a_kind_is_a_job_report(job_factory):
    report = run(str(job_factory(type="report_generation").id))

    assert (report["report_type"], report["title"]) == ("job_report", "Job report")


@pytest.mark.parametrize("report_type", ["", "Daily Summary", "daily-summary", 7, "x" * 65])
def test_a_report_type_that_is_not_a_snake_case_name_is_refused(api, report_type):
    payload = {"report_type": report_type}
    response = api.post("/jobs/", {"type": "report_generation", "payload": payload}, format="json")

    assert response.status_code == 400, response.content
    assert any("payload.report_type" in m for m in response.json()["payload"]), response.json()
