"""The console's jobs page and job page in headless Chromium, every action done through the
page (click, read the confirmation, confirm), against a real daphne, worker and scheduler;
every request to a host other than 127.0.0.1 is aborted and must not happen.

The story: an operator filters the failed ``noop`` jobs, re-drives all that match and sees
them complete while the failed ``fail`` jobs stay failed; selects two delayed jobs and
cancels them; on a failed job's page retries it and watches its second attempt; clones a
job with a bad body, reads the error by field, fixes it and gets the new job's page.
Screenshots: test-output/console-*.png, at 1280 px and 390 px wide.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.e2e.test_live_updates import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _browser_missing
from tests.e2e.test_live_updates import daphne as daphne  # the fixture
from tests.factories import move_to
from tests.harness import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present"),
]
S = JobStatus
TIMEOUT = 90  # a hang guard, not a performance assertion


def _status(job: Job) -> str:
    return str(Job.objects.get(id=job.id).status)


class Foreign:
    """Aborts and remembers every request that would leave 127.0.0.1."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            self.urls.append(route.request.url)
            route.abort()
        else:
            route.continue_()


def _login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")
    page.wait_for_url(base + "/dashboard/")


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


@pytest.fixture
def orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API runs an event loop in this thread, so Django takes the test's
    plain ORM reads for calls from async code and refuses them; they are not."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_an_operator_redrives_cancels_retries_and_clones_through_the_pages(
    platform, daphne, staff_user, job_factory, orm_beside_playwright
):
    from playwright.sync_api import sync_playwright

    later = timezone.now() + timedelta(hours=1)
    redrive = [move_to(job_factory(type="noop"), S.FAILED) for _ in range(3)]
    stay_failed = [move_to(job_factory(type="fail"), S.FAILED) for _ in range(2)]
    delayed = [job_factory(type="noop", run_at=later) for _ in range(3)]
    lone = move_to(job_factory(type="noop", payload={"note": "x" * 400}), S.FAILED)
    platform.start_worker()
    platform.start_scheduler()
    SCREENSHOTS.mkdir(exist_ok=True)
    foreign = Foreign()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT * 1000)
            page.route("**/*", foreign.route)
            _login(page, daphne, "operator", "op-password")

            # The failed noop jobs, by the filter form (its values land in the URL).
            page.click('header nav a[href="/dashboard/jobs/"]')
            page.select_option("#id_status", "failed")
            page.fill("#id_type", "noop")
            page.click("#filter-submit")
            page.wait_for_url("**/dashboard/jobs/?*status=failed*")
            assert "type=noop" in page.url
            assert page.locator("#jobs-table tbody tr[data-job-id]").count() == 4
            _shot(page, "jobs")
            page.check("#scope-all")
            page.click("#action-redrive")
            page.wait_for_selector("#confirm-count")
            assert page.text_content("#confirm-count") == "4"
            _shot(page, "jobs-confirm")
            page.focus("#confirm-submit")  # by the keyboard
            page.keyboard.press("Enter")
            page.wait_for_selector(".console-messages")
            assert "Re-drive: 4 of 4 selected job(s) done." in page.text_content(
                ".console-messages"
            )
            wait_until(
                lambda: all(_status(j) == S.COMPLETED for j in [*redrive, lone]),
                timeout=TIMEOUT,
                message=platform.logs(),
            )
            assert {_status(j) for j in stay_failed} == {S.FAILED}

            # Two of the delayed jobs, picked by hand, cancelled.
            page.goto(daphne + "/dashboard/jobs/?status=pending")
            for job in delayed[:2]:
                page.check(f"#pick-{job.id}")
            assert page.text_content("#selected-count") == "2 selected"
            page.click("#action-cancel")
            assert page.text_content("#confirm-count") == "2"
            page.click("#confirm-submit")
            page.wait_for_selector(".console-messages")
            assert [_status(j) for j in delayed] == [S.CANCELLED, S.CANCELLED, S.PENDING]

            # A failed job's page: retry now (re-driven alone), its second attempt completes.
            job = stay_failed[0]
            page.goto(f"{daphne}/dashboard/jobs/{job.id}/")
            page.wait_for_selector("#attempts-table")
            page.click("#job-action-retry")
            assert page.text_content("#confirm-count") == "1"
            page.click("#confirm-submit")
            page.wait_for_url(f"**/dashboard/jobs/{job.id}/")
            wait_until(
                lambda: _status(job) == S.FAILED and Job.objects.get(id=job.id).attempt >= 2,
                timeout=TIMEOUT,
                message=platform.logs(),
            )
            page.reload()
            assert page.locator("#timeline .bar").count() >= 2
            assert page.locator("#attempts-table tbody tr").count() >= 2
            _shot(page, "job")

            # Clone: a bad body is refused by field, a good one makes a new job of ours.
            page.click("#job-clone")
            page.fill("#clone-body", '{"type": "noop", "priority": "urgent"}')
            page.click("#clone-submit")
            page.wait_for_selector('#clone-errors li[data-field="priority"]')
            _shot(page, "job-clone")
            page.fill("#clone-body", '{"type": "noop", "payload": {"seconds": 0}}')
            page.click("#clone-submit")
            page.wait_for_selector(".console-messages")
            clone = Job.objects.exclude(
                id__in=[j.id for j in [*redrive, *stay_failed, *delayed, lone]]
            ).get()
            assert page.url.endswith(f"/dashboard/jobs/{clone.id}/")
            assert clone.owner_id == staff_user.id and clone.payload == {"seconds": 0}

            # Phone width: the same pages, readable.
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(daphne + "/dashboard/jobs/")
            page.wait_for_selector("#jobs-table")
            _shot(page, "jobs-390")
            page.goto(f"{daphne}/dashboard/jobs/{lone.id}/")
            page.wait_for_selector("#payload details")
            _shot(page, "job-390")
        finally:
            browser.close()
    assert foreign.urls == []


def test_an_on_call_viewer_browses_both_pages_and_is_offered_no_action(
    platform, daphne, viewer_user, job_factory, orm_beside_playwright
):
    from playwright.sync_api import sync_playwright

    job = move_to(job_factory(type="noop"), S.FAILED)
    foreign = Foreign()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT * 1000)
            page.route("**/*", foreign.route)
            _login(page, daphne, "viewer", "viewer-password")
            page.goto(daphne + "/dashboard/jobs/")
            page.wait_for_selector(f'tr[data-job-id="{job.id}"]')
            assert page.locator("#action-cancel").count() == 0
            # By the keyboard alone: Tab reaches the search box, and the focus shows.
            for _ in range(10):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.id") == "id_q":
                    break
            assert page.evaluate("document.activeElement.id") == "id_q"
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), outline
            page.keyboard.type(str(job.id))
            page.keyboard.press("Enter")  # submits the search form
            page.wait_for_url(f"**q={job.id}*")
            assert page.locator("#jobs-table tbody tr[data-job-id]").count() == 1
            page.click(f'tr[data-job-id="{job.id}"] a')
            page.wait_for_selector("#attempts-table")
            assert page.locator("#job-actions button, #job-clone").count() == 0
            _shot(page, "job-viewer")
        finally:
            browser.close()
    assert foreign.urls == []
    assert _status(job) == S.FAILED
