"""The console's actions not shown by the other browser tests, each done through the page in
headless Chromium (click, read the confirmation, confirm) against real daphne, worker and
scheduler processes, with every request to a host other than 127.0.0.1 aborted:

- a job page: re-drive a failed job with the descendants its failure cancelled (they run
  after it), follow the graph to a descendant by clicking its node and read the operator's
  line in its log, cancel a delayed job, download an export;
- the live log: a job page open before its job runs shows the handler's own lines as they
  are written, without a reload, to its operator and to an on-call viewer;
- the jobs page: "retry now" on jobs waiting out a long backoff, and keyset pages walked
  with the older / newer links;
- dead letters: re-drive a whole group, discard one letter;
- queues: pause a priority (its jobs wait while another priority runs, through a restart of
  the worker and the scheduler), then resume it.

Screenshots: test-output/console-action-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from admin_api.console import pausing
from jobs.models import DeadLetter, ExecutionLog, Job, JobStatus, Priority
from tests.e2e.test_live_updates import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _browser_missing
from tests.e2e.test_live_updates import daphne as daphne  # the fixture
from tests.e2e.test_offline_pages import Traffic
from tests.factories import dead_letter, move_to
from tests.harness import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present"),
]
S = JobStatus
TIMEOUT = 90  # a hang guard for a broken platform, not a performance assertion


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API runs an event loop in this thread, so Django takes the test's
    plain ORM reads for calls from async code and refuses them; they are not."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def _logged_in(browser: Any, base: str, username: str, password: str) -> Iterator[Any]:
    """A page of its own browser context, logged in; after the block, asserts that nothing
    left 127.0.0.1 and nothing failed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT * 1000)
    traffic = Traffic()
    page.route("**/*", traffic.route)
    page.on("requestfailed", traffic.on_failed)
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")
    page.wait_for_url(base + "/dashboard/")
    yield page
    context.close()
    assert traffic.foreign == [], traffic.foreign
    # A poll or the socket cut short by leaving the page is not a failure of the page.
    assert [f for f in traffic.failed if "ERR_ABORTED" not in f] == [], traffic.failed


def _status(job: Job) -> str:
    return str(Job.objects.get(id=job.id).status)


def _wait(jobs: list[Job], status: str, platform: Any) -> None:
    wait_until(
        lambda: all(_status(j) == status for j in jobs),
        timeout=TIMEOUT,
        message=f"{len(jobs)} job(s) to be {status}\n{platform.logs()}",
    )


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"console-action-{name}.png"), full_page=True)


def _confirm_job_action(page: Any, button: str, count: str) -> str:
    """On a job page or the jobs page: click the action, check the count, confirm by keyboard."""
    page.click(button)
    assert page.text_content("#confirm-count") == count
    page.focus("#confirm-submit")
    page.keyboard.press("Enter")
    page.wait_for_selector(".console-messages")
    return str(page.text_content(".console-messages"))


def test_a_job_page_redrives_with_descendants_cancels_and_downloads(
    platform, daphne, staff_user, user, job_factory
):
    parent = job_factory(owner=user, type="fail", payload={"fail_attempts": 1}, max_attempts=1)
    child = job_factory(owner=user, type="noop", depends_on=[parent])
    parent = move_to(parent, S.FAILED)  # its failure cancels the child
    assert _status(child) == S.CANCELLED
    delayed = job_factory(owner=user, type="noop", run_at=timezone.now() + timedelta(hours=1))
    export = job_factory(
        owner=user,
        type="data_export",
        payload={"format": "csv", "rows": [{"a": 1}, {"a": 2}], "filename": "numbers"},
    )
    platform.start_worker()
    platform.start_scheduler()
    _wait([export], S.COMPLETED, platform)
    with _browser() as browser, _logged_in(browser, daphne, "operator", "op-password") as page:
        page.goto(f"{daphne}/dashboard/jobs/{parent.id}/")
        said = _confirm_job_action(page, "#job-action-redrive", "1")
        assert "1 cancelled descendant(s) brought back" in said, said
        _wait([parent, child], S.COMPLETED, platform)

        # The graph's node of the child is a link to its page; its log names the operator.
        page.reload()
        page.click(f'#graph a:has(g.node[data-job-id="{child.id}"])')
        page.wait_for_url(f"**/dashboard/jobs/{child.id}/")
        assert "operator operator: redrive" in page.inner_text("#logs")
        _shot(page, "redriven-child")

        page.goto(f"{daphne}/dashboard/jobs/{delayed.id}/")
        assert "Cancel: 1 of 1 selected job(s) done." in _confirm_job_action(
            page, "#job-action-cancel", "1"
        )
        assert page.inner_text("#job-status") == S.CANCELLED
        assert _status(delayed) == S.CANCELLED

        page.goto(f"{daphne}/dashboard/jobs/{export.id}/")
        with page.expect_download() as download:
            page.click("#job-export")
        assert download.value.suggested_filename == "numbers.csv"
        with open(download.value.path()) as saved:
            assert saved.read().split() == ["a", "1", "2"]


def test_the_log_is_live_for_the_operator_and_the_viewer(
    platform, daphne, staff_user, viewer_user, user, job_factory
):
    """The job is held by a pause while both pages load; resumed, it runs, and its handler's
    own lines reach both pages without a reload."""
    pause = pausing.pause_create(actor=staff_user, job_type="data_processing")
    job = job_factory(owner=user, type="data_processing", payload={"data": [3, 1, 4, 1, 5]})
    platform.start_worker()
    platform.start_scheduler()
    with (
        _browser() as browser,
        _logged_in(browser, daphne, "operator", "op-password") as operator,
        _logged_in(browser, daphne, "viewer", "viewer-password") as viewer,
    ):
        for page in (operator, viewer):
            page.goto(f"{daphne}/dashboard/jobs/{job.id}/")
            page.wait_for_selector("body[data-ws=open]")
            page.evaluate("window.__notReloaded = true")
            assert "statistics computed" not in page.inner_text("#logs")
        pausing.pause_delete(actor=staff_user, pause_id=pause.id)
        for page in (operator, viewer):
            page.wait_for_selector('#logs tr:has-text("statistics computed")')
            page.wait_for_selector("#job-status.status-completed")
            # The badge turns on the feed's event; the lines come from a logs.json fetch
            # after it. "final" is set by an answer that read the job finished before its
            # lines, so every line up to the end is shown by then.
            page.wait_for_selector("body[data-logs=final]")
            assert page.evaluate("window.__notReloaded") is True
            shown = page.locator("#logs tbody tr[data-log-id]").evaluate_all(
                "rows => rows.map(r => Number(r.dataset.logId))"
            )
            assert shown == sorted(set(shown))  # in order, none twice
        _shot(viewer, "live-log-viewer")
    logged = ExecutionLog.objects.filter(job=job).values_list("id", flat=True)
    assert set(shown) == set(logged)


def test_the_jobs_page_retries_now_and_walks_its_keyset_pages(
    platform, daphne, staff_user, user, job_factory
):
    waiting = [move_to(job_factory(owner=user, type="noop"), S.RETRYING) for _ in range(2)]
    later = timezone.now() + timedelta(hours=1)
    Job.objects.filter(id__in=[j.id for j in waiting]).update(next_attempt_at=later)
    filler = [
        job_factory(owner=user, type="data_processing", payload={"data": [1]}) for _ in range(55)
    ]
    Job.objects.filter(id__in=[j.id for j in filler]).update(run_at=later, next_attempt_at=later)
    platform.start_worker()
    platform.start_scheduler()
    with _browser() as browser, _logged_in(browser, daphne, "operator", "op-password") as page:
        page.goto(daphne + "/dashboard/jobs/?status=retrying")
        for job in waiting:
            page.check(f"#pick-{job.id}")
        said = _confirm_job_action(page, "#action-retry", "2")
        assert "Retry now: 2 of 2 selected job(s) done." in said, said
        _wait(waiting, S.COMPLETED, platform)

        # 57 jobs, newest first, 50 a page: older, then newer again, every job once.
        page.goto(daphne + "/dashboard/jobs/")
        rows = "#jobs-table tbody tr[data-job-id]"
        first = page.locator(rows).evaluate_all("rs => rs.map(r => r.dataset.jobId)")
        page.click("#page-next")
        page.wait_for_url("**after=*")
        second = page.locator(rows).evaluate_all("rs => rs.map(r => r.dataset.jobId)")
        _shot(page, "jobs-older")
        assert (len(first), len(second)) == (50, 7)
        expected = Job.objects.order_by("-created_at", "-id").values_list("id", flat=True)
        assert first + second == [str(i) for i in expected]
        page.click("#page-prev")
        page.wait_for_url("**before=*")
        again = page.locator(rows).evaluate_all("rs => rs.map(r => r.dataset.jobId)")
        assert again == first


def _confirm_ops(page: Any, expected: str) -> str:
    question = page.inner_text("#confirm-question")
    assert expected in question, question
    page.focus("#confirm-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done-message")
    return str(page.inner_text("#done-message"))


def test_dead_letters_redrive_a_whole_group_and_discard_one_letter(
    platform, daphne, staff_user, user, job_factory
):
    missing = [job_factory(owner=user, type="noop") for _ in range(3)]
    for n, job in enumerate(missing):
        dead_letter(job, error=f"KeyError: 'user-{n}'")
    lone = job_factory(owner=user, type="fail")
    dead_letter(lone, error="disk /var/x is full")
    with _browser() as browser, _logged_in(browser, daphne, "operator", "op-password") as page:
        page.goto(daphne + "/dashboard/dead/")
        group = page.locator("#dead-groups tbody tr").filter(has_text="KeyError: <str>")
        group.get_by_role("button", name="Re-drive group").click()
        said = _confirm_ops(page, "Re-drive 3 dead letter(s)")
        assert "Re-drove 3 job(s)" in said, said
        assert {_status(j) for j in missing} == {S.PENDING}

        page.goto(daphne + "/dashboard/dead/")
        page.click("text=disk <path> is full")
        page.wait_for_selector("#dead-letters")
        page.get_by_role("button", name=f"Discard the letter of job {lone.id}").click()
        said = _confirm_ops(page, "Discard 1 dead letter(s)")
        assert "Discarded 1 dead letter(s)" in said, said
        _shot(page, "dead-discarded")
        page.goto(daphne + "/dashboard/dead/")
        assert page.locator("#dead-groups tbody tr:not(.empty)").count() == 0
    letter = DeadLetter.objects.get(job=lone)
    assert letter.discarded_at is not None and _status(lone) == S.FAILED


def test_a_priority_paused_on_the_page_waits_through_restarts_and_resumes(
    platform, daphne, staff_user, user, job_factory
):
    platform.start_worker()
    platform.start_scheduler()
    with _browser() as browser, _logged_in(browser, daphne, "operator", "op-password") as page:
        page.goto(daphne + "/dashboard/queues/")
        row = page.locator(f'#depth-priority tr[data-priority="{Priority.LOW.label}"]')
        row.get_by_role("button", name="Pause priority low").click()
        assert "Paused priority low" in _confirm_ops(page, "Pause priority low?")

        held = job_factory(owner=user, type="noop", priority="low")
        runs = job_factory(owner=user, type="noop", priority="normal")
        _wait([runs], S.COMPLETED, platform)
        # The pause is a row in PostgreSQL: restarted processes still hold its jobs.
        platform.restart("worker")
        platform.restart("scheduler")
        held_too = job_factory(owner=user, type="noop", priority="low")
        after = job_factory(owner=user, type="noop", priority="high")
        _wait([after], S.COMPLETED, platform)
        assert {_status(held), _status(held_too)} == {S.PENDING}
        for where in ("/dashboard/", "/dashboard/jobs/"):  # the pause shows everywhere
            page.goto(daphne + where)
            assert "priority low" in page.inner_text("#paused-banner")
        page.goto(f"{daphne}/dashboard/jobs/{held.id}/")
        assert "priority low is paused" in page.inner_text("#waiting-on")
        page.goto(daphne + "/dashboard/queues/")
        row = page.locator(f'#depth-priority tr[data-priority="{Priority.LOW.label}"]')
        assert row.locator("[data-ready]").inner_text() == "2"
        _shot(page, "priority-paused")

        row.get_by_role("button", name="Resume priority low").click()
        assert "Resumed priority low" in _confirm_ops(page, "Resume priority low?")
        _wait([held, held_too], S.COMPLETED, platform)


def _tab_to(page: Any, element_id: str, *, back: bool = False) -> None:
    """Press Tab (Shift+Tab with ``back``) until ``element_id`` has the focus (bounded)."""
    for _ in range(200):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def test_an_operator_cancels_a_job_with_the_keyboard_alone(
    platform, daphne, staff_user, user, job_factory
):
    later = timezone.now() + timedelta(hours=1)
    job, other = (job_factory(owner=user, type="noop", run_at=later) for _ in range(2))
    with _browser() as browser, _logged_in(browser, daphne, "operator", "op-password") as page:
        page.goto(daphne + "/dashboard/jobs/?status=pending")
        _tab_to(page, f"pick-{job.id}")
        page.keyboard.press("Space")
        assert page.text_content("#selected-count") == "1 selected"
        _tab_to(page, "action-cancel", back=True)  # the actions come before the table
        page.keyboard.press("Enter")
        page.wait_for_selector("#confirm-count")
        assert page.text_content("#confirm-count") == "1"
        _tab_to(page, "confirm-submit")
        page.keyboard.press("Enter")
        page.wait_for_selector(".console-messages")
    assert (_status(job), _status(other)) == (S.CANCELLED, S.PENDING)
