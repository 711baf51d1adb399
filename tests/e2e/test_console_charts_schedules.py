"""The charts and the schedules pages in headless Chromium, under daphne (a real server
process on the test database), with every request to a host other than 127.0.0.1 aborted:
the charts draw from the rollup of real finished jobs with the vendored uPlot; a schedule is
paused, resumed and triggered by clicking through the confirmation (the last by keyboard);
a viewer sees no action. Screenshots at 1280 and 390 px go to test-output/console-*.png."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from admin_api.models import OperatorAction
from jobs.models import Job, JobStatus, Limit
from jobs.rollups.models import Grain, JobRollup
from jobs.rollups.sweep import floor_to, rollup_sweep
from jobs.schedules import services
from jobs.schedules.models import Schedule
from tests.e2e.test_live_updates import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    _browser_missing,
    daphne,
)
from tests.factories import move_to

__all__ = ["daphne"]

T = TypeVar("T")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present"),
]


class Browser:
    """A Chromium page whose requests off 127.0.0.1 are aborted and remembered."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.bad: list[str] = []
        page.route("**/*", self._route)
        page.on("response", lambda r: r.status >= 400 and self.bad.append(f"{r.status} {r.url}"))

    def _route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            self.foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def login(self, base: str, username: str, password: str, next_: str) -> None:
        self.page.goto(f"{base}/accounts/login/?next={next_}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("#login-submit")
        self.page.wait_for_url(base + next_)

    def shots(self, name: str) -> None:
        """Screenshots at 1280 px and at a phone's 390 px; the page must not scroll sideways
        at 390."""
        self.page.set_viewport_size({"width": 1280, "height": 900})
        self.page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)
        self.page.set_viewport_size({"width": 390, "height": 844})
        self.page.wait_for_timeout(300)  # the charts' resize is debounced
        self.page.screenshot(path=str(SCREENSHOTS / f"console-{name}-390.png"), full_page=True)
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name} scrolls sideways at 390 px by {overflow}px"
        self.page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _orm(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread of its own: Django's ORM refuses to run in Playwright's loop.
    (The tests are transactional: the thread's connection sees what was committed.)"""

    def run() -> T:
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _new(chromium: Any) -> Browser:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    return Browser(page)


def _finished_jobs(job_factory: Any, user: Any) -> None:
    """Jobs really run through the engine, finished over the twenty minutes before the last
    closed one, rolled up."""
    now = timezone.now()
    for i in range(20):
        status = JobStatus.FAILED if i % 5 == 0 else JobStatus.COMPLETED
        job = move_to(job_factory(owner=user, type="noop" if i % 2 else "fail"), status)
        end = floor_to(now, Grain.MINUTE) - timedelta(minutes=i + 2, seconds=-10)
        Job.objects.filter(id=job.id).update(
            created_at=end - timedelta(seconds=i + 3),
            started_at=end - timedelta(seconds=i % 4 + 1),
            completed_at=end,
        )
    while rollup_sweep(now).buckets:
        pass


def test_the_charts_draw_the_rollup_offline(platform, daphne, job_factory, staff_user, chromium):
    _orm(lambda: _finished_jobs(job_factory, staff_user))
    assert _orm(JobRollup.objects.filter(grain=Grain.MINUTE, type="noop").exists)
    b = _new(chromium)
    b.login(daphne, "operator", "op-password", "/dashboard/charts/")
    b.page.wait_for_selector("body[data-charts=drawn]")
    assert b.page.locator(".uplot canvas").count() == 3
    # Every minute of the hour, less those not closed yet (the sweep's grace).
    assert 58 <= int(b.page.locator("#chart-counts").get_attribute("data-points")) <= 61
    assert b.page.locator("[data-total=completed]").inner_text() == "16"
    assert b.page.locator("[data-total=failed]").inner_text() == "4"
    b.shots("charts")
    # One type, by keyboard: choose it in the select and submit the form.
    b.page.select_option("#chart-type", "noop")
    b.page.focus("form.filters button")
    b.page.keyboard.press("Enter")
    b.page.wait_for_url("**type=noop**")
    b.page.wait_for_selector("body[data-charts=drawn]")
    assert b.page.locator("[data-total=completed]").inner_text() == "8"
    # The other ranges: a day of minutes holds the same jobs; a week is drawn by the hour.
    for range_, points in (("day", range(1400, 1442)), ("week", range(160, 170))):
        b.page.select_option("#chart-range", range_)
        b.page.select_option("#chart-type", "")
        b.page.click("form.filters button")
        b.page.wait_for_url(f"**range={range_}**")
        b.page.wait_for_selector("body[data-charts=drawn]")
        assert b.page.locator(".uplot canvas").count() == 3
        drawn = int(b.page.locator("#chart-counts").get_attribute("data-points"))
        assert drawn in points, (range_, drawn)
        if range_ == "day":
            assert b.page.locator("[data-total=completed]").inner_text() == "16"
        b.shots(f"charts-{range_}")
    assert b.foreign == [] and b.bad == []


def test_a_schedule_is_paused_resumed_and_triggered_through_the_page(
    platform, daphne, staff_user, chromium
):
    data = {"name": "nightly report", "interval_seconds": 3600, "job": {"type": "noop"}}
    schedule = _orm(lambda: services.schedule_create(owner=staff_user, data=data))
    _orm(lambda: Limit.objects.create(key="type:noop", max_concurrency=2, rate="10/m"))
    b = _new(chromium)
    b.login(daphne, "operator", "op-password", "/dashboard/schedules/")
    row = f'tr[data-schedule-id="{schedule.id}"]'
    assert "2 at once, 10/m" in b.page.inner_text('tr[data-limit-key="type:noop"]')
    b.shots("schedules")

    b.page.click(f"{row} >> text=Pause…")
    assert "This touches 1 schedule" in b.page.inner_text("#confirm")
    b.shots("schedule-confirm")
    b.page.click("#confirm-submit")
    b.page.wait_for_selector(".message >> text=Paused schedule nightly report")
    assert b.page.inner_text(f"{row} .next-fire") == "paused"

    b.page.click(f"{row} >> text=Resume…")
    b.page.click("#confirm-submit")
    b.page.wait_for_selector(".message >> text=Resumed schedule nightly report")

    # Trigger now by keyboard: focus the link, Enter, then Enter on the focused confirm.
    b.page.focus(f"{row} >> text=Trigger now…")
    b.page.keyboard.press("Enter")
    b.page.wait_for_selector("#confirm-submit")
    b.page.focus("#confirm-submit")
    b.page.keyboard.press("Enter")
    b.page.wait_for_selector(".message >> text=submitted job")
    job = _orm(lambda: Job.objects.get(schedule=schedule))
    assert str(job.id) in b.page.inner_text(".message")
    b.shots("schedules-after")
    actions = _orm(
        lambda: list(OperatorAction.objects.order_by("id").values_list("action", flat=True))
    )
    assert actions == ["schedule.pause", "schedule.resume", "schedule.trigger"]
    assert _orm(lambda: Schedule.objects.get(id=schedule.id).paused) is False
    assert b.foreign == [] and b.bad == []


def test_a_viewer_sees_the_schedules_without_any_action(
    platform, daphne, staff_user, viewer_user, chromium
):
    data = {"name": "hourly", "interval_seconds": 3600, "job": {"type": "noop"}}
    schedule = _orm(lambda: services.schedule_create(owner=staff_user, data=data))
    b = _new(chromium)
    b.login(daphne, "viewer", "viewer-password", "/dashboard/schedules/")
    row = b.page.locator(f'tr[data-schedule-id="{schedule.id}"]')
    assert "view only" in row.inner_text()
    assert row.locator("a.button").count() == 0
    b.shots("schedules-viewer")
    assert _orm(lambda: Schedule.objects.get(id=schedule.id).paused) is False
    assert b.foreign == [] and b.bad == []
