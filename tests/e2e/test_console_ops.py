"""The operator pages through headless Chromium against real processes (daphne, a worker and
a scheduler), every action done by clicking through the page and its confirmation:

- pause a job type on the queues page: its jobs wait (``waiting_on`` says paused, the job
  page and the index too) while the jobs behind them run; resume runs them;
- dead letters grouped by error shape: discard a group, re-drive one letter; ``GET
  /admin/dlq/`` agrees; the audit page lists what the operator did;
- quiet a worker: it finishes what it runs and takes nothing new (another worker does).

Every request to a host other than 127.0.0.1 is aborted and asserted absent. Screenshots of
each page, at 1280 px and at a phone's 390 px, go to test-output/console-<page>.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from tests.e2e.test_live_updates import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    _browser_missing,
    _get_json,
    _post_json,
    daphne,
)
from tests.e2e.test_offline_pages import Traffic
from tests.e2e.test_scheduling import TEST_TYPES
from tests.harness import wait_until

__all__ = ["daphne"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present"),
]
TIMEOUT = 90  # a hang guard for a broken platform, not a performance assertion


@contextmanager
def _operator_page(base: str) -> Iterator[tuple[Any, Traffic]]:
    """A logged-in operator's page; after the block, asserts nothing left 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    traffic = Traffic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT * 1000)
            page.route("**/*", traffic.route)
            page.on("requestfailed", traffic.on_failed)
            page.goto(base + "/accounts/login/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "op-password")
            page.click("#login-submit")
            page.wait_for_url(base + "/dashboard/")
            yield page, traffic
        finally:
            browser.close()
    assert traffic.foreign == [], traffic.foreign
    # A poll or the socket cut short by leaving the page is not a failure of the page.
    assert [f for f in traffic.failed if "ERR_ABORTED" not in f] == [], traffic.failed


def _shots(page: Any, name: str) -> None:
    """Screenshots at 1280 px and 390 px; at 390 nothing but a table's own scroller overflows."""
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert overflow <= 390, f"{name} is {overflow}px wide at 390"


def _confirm(page: Any, expected: str) -> str:
    """On a confirmation page: check what it says, confirm with the keyboard, return the
    answer."""
    question = page.inner_text("#confirm-question")
    assert expected in question, question
    page.focus("#confirm-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done-message")
    return str(page.inner_text("#done-message"))


def _status(base: str, token: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = _get_json(f"{base}/jobs/{job_id}/", token)
    return job


def _submit(base: str, token: str, body: dict[str, Any]) -> str:
    status, job = _post_json(base + "/jobs/", body, token)
    assert status == 201, job
    return str(job["id"])


def _wait_status(base: str, token: str, ids: list[str], status: str) -> None:
    wait_until(
        lambda: all(_status(base, token, i)["status"] == status for i in ids),
        timeout=TIMEOUT,
        message=f"{len(ids)} job(s) to be {status}",
    )


def test_a_type_paused_on_the_page_waits_while_others_run_and_resume_runs_it(
    platform: Any, daphne: str, staff_user: Any
) -> None:
    token = Token.objects.create(user=staff_user).key
    platform.start_worker()
    platform.start_scheduler()
    with _operator_page(daphne) as (page, _):
        page.goto(daphne + "/dashboard/queues/")
        page.fill("#pause-type", "fail")
        page.click("#pause-type-submit")
        assert "Paused type fail" in _confirm(page, "Pause type fail?")

        held = [
            _submit(daphne, token, {"type": "fail", "payload": {"fail_attempts": 0}})
            for _ in range(2)
        ]
        runs = _submit(daphne, token, {"type": "noop"})  # submitted after, same priority
        _wait_status(daphne, token, [runs], "completed")
        for job_id in held:
            job = _status(daphne, token, job_id)
            assert job["status"] == "pending", job
            assert [(r["reason"], r.get("job_type")) for r in job["waiting_on"]] == [
                ("paused", "fail")
            ]

        page.goto(f"{daphne}/dashboard/jobs/{held[0]}/")
        assert "paused: type fail is paused" in page.inner_text("main")
        _shots(page, "job-paused")
        page.goto(daphne + "/dashboard/")
        assert "type fail" in page.inner_text("#paused-banner")
        page.goto(daphne + "/dashboard/queues/")
        row = page.locator('#depth-type tr[data-type="fail"]')
        assert row.locator("[data-ready]").inner_text() == "2"
        assert row.locator("[data-paused]").count() == 1
        _shots(page, "queues")

        row.get_by_role("button", name="Resume type fail").click()
        assert "Resumed type fail" in _confirm(page, "Resume type fail?")
        _wait_status(daphne, token, held, "completed")

        page.goto(daphne + "/dashboard/audit/")
        actions = page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
        assert actions[:2] == ["resume_type", "pause_type"], actions
        _shots(page, "audit")


def test_dead_letters_grouped_by_shape_discard_a_group_and_redrive_one_on_the_page(
    platform: Any, daphne: str, staff_user: Any
) -> None:
    token = Token.objects.create(user=staff_user).key
    platform.start_worker()
    platform.start_scheduler()
    body = {"type": "fail", "max_attempts": 1}
    missing = [
        _submit(daphne, token, {**body, "payload": {"message": f"user {n} not found"}})
        for n in (41, 7)
    ]
    full = _submit(daphne, token, {**body, "payload": {"message": "disk /var/x is full"}})
    _wait_status(daphne, token, [*missing, full], "failed")
    with _operator_page(daphne) as (page, _):
        page.goto(daphne + "/dashboard/dead/")
        rows = page.locator("#dead-groups tbody tr")
        assert rows.count() == 2
        counts = dict(
            zip(
                page.locator(".ops-shape").all_inner_texts(),
                page.locator("[data-count]").all_inner_texts(),
                strict=True,
            )
        )
        assert counts == {
            "HandlerError: user <n> not found": "2",
            "HandlerError: disk <path> is full": "1",
        }, counts
        _shots(page, "dead")

        group = rows.filter(has_text="user <n> not found")
        group.get_by_role("button", name="Discard group").click()
        assert "Discarded 2 dead letter(s)" in _confirm(page, "Discard 2 dead letter(s)")

        page.goto(daphne + "/dashboard/dead/")
        assert page.locator("#dead-groups tbody tr").count() == 1
        page.click("text=HandlerError: disk <path> is full")
        page.wait_for_selector("#dead-letters")
        _shots(page, "dead-group")
        page.get_by_role("button", name=f"Re-drive job {full}").click()
        assert "Re-drove 1 job(s)" in _confirm(page, "Re-drive 1 dead letter(s)")

    _wait_status(daphne, token, [full], "failed")  # its fresh attempt failed again
    listed = _get_json(daphne + "/admin/dlq/", token)["results"]
    assert [row["job"]["id"] for row in listed] == [full], listed
    assert {_status(daphne, token, i)["status"] for i in missing} == {"failed"}


def _worker_row(page: Any, base: str, prefix: str) -> Any:
    page.goto(base + "/dashboard/queues/")
    return page.locator(f'#workers tr[data-worker^="{prefix}@"]')


def test_quiet_a_worker_on_the_page_it_finishes_its_job_and_takes_no_new_one(
    platform: Any, staff_user: Any, tmp_path: Path
) -> None:
    token = Token.objects.create(user=staff_user).key
    # The web process takes the test-only "gate" type too (it validates what is submitted).
    daphne = platform.start_web(**TEST_TYPES)
    platform.start_worker("w1", **TEST_TYPES)
    platform.start_scheduler(**TEST_TYPES)
    # Runs until the gate opens: still running once the page has quieted its worker, however
    # long a loaded machine takes to start Chromium and get there.
    gate = tmp_path / "gate"
    long = _submit(daphne, token, {"type": "gate", "payload": {"path": str(gate)}})
    _wait_status(daphne, token, [long], "running")
    with _operator_page(daphne) as (page, _):
        wait_until(
            lambda: _worker_row(page, daphne, "w1").get_attribute("data-alive") == "true",
            timeout=TIMEOUT,
            message="w1 on the page",
        )
        row = _worker_row(page, daphne, "w1")
        assert row.locator("[data-running]").get_attribute("data-running") == "1"
        name = row.get_attribute("data-worker")
        row.get_by_role("button", name=f"Quiet {name}").click()
        assert f"{name} answered" in _confirm(page, f"Quiet 1 worker, {name}")
        assert _status(daphne, token, long)["status"] == "running"  # quieted while it ran
        assert _worker_row(page, daphne, "w1").get_attribute("data-quiet") == "true"
        _shots(page, "workers")

        later = [_submit(daphne, token, {"type": "noop"}) for _ in range(2)]
        _wait_status(daphne, token, later, "queued")  # published; a consuming w1 had a free slot
        gate.touch()
        _wait_status(daphne, token, [long], "completed")
        assert _status(daphne, token, long)["worker"] == name  # it finished its running job
        for job_id in later:
            assert _status(daphne, token, job_id)["status"] == "queued"
        platform.start_worker("w2", **TEST_TYPES)
        _wait_status(daphne, token, later, "completed")
        assert {_status(daphne, token, i)["worker"].split("@")[0] for i in later} == {"w2"}

        # Stop: the warm shutdown of a SIGTERM (the worker's own grace), from the page.
        wait_until(
            lambda: _worker_row(page, daphne, "w2").get_attribute("data-alive") == "true",
            timeout=TIMEOUT,
            message="w2 on the page",
        )
        w2 = _worker_row(page, daphne, "w2").get_attribute("data-worker")
        _worker_row(page, daphne, "w2").get_by_role("button", name=f"Stop {w2}").click()
        _confirm(page, f"Stop 1 worker, {w2}")
        wait_until(
            lambda: platform.procs["w2"].poll() is not None, timeout=TIMEOUT, message="w2 to exit"
        )
        assert "shutting down: taking no new jobs" in platform.log_tail("w2", 20_000)
        assert _worker_row(page, daphne, "w2").get_attribute("data-alive") == "false"
