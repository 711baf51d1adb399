"""Every page of the console in headless Chromium, checked the same way: readable, usable by
keyboard, usable from 1280 px down to a phone's 390 px, and offline.

The pages are those an operator walks through (the login, the index, the jobs page and its
confirmation, a job page and its clone form, the charts, the schedules and a schedule's
confirmation, the dead letters, a group and its confirmation and answer, the queues and
workers, the audit), each with data in it. On each page:

- **contrast**: every visible piece of text against the background it is drawn on (the
  first opaque one, blending translucent ones over it) has WCAG AA's 4.5:1 (3:1 for large
  text); SVG text is its fill against the graph's white;
- **keyboard**: Tab alone reaches every visible link, button, field and summary, in turn, and
  each shows a focus indicator (an outline or a ring of at least 2 px, with 3:1 against its
  background);
- **widths**: at 1280, 768, 390 (a phone) and 320 px nothing scrolls sideways but a
  table's own scroller;
- **live**: the pages with a live feed show its badge and it turns live; the others hide it;
- **offline**: every request to a host other than 127.0.0.1 is aborted, and none is made;
  no request fails, no answer is a 4xx or 5xx.

Screenshots go to test-output/page-<name>.png (1280 px) and page-<name>-<width>.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from admin_api.console import pausing
from jobs.models import DeadLetter, Job, JobStatus, Limit
from jobs.rollups.models import Grain
from jobs.rollups.sweep import floor_to, rollup_sweep
from jobs.schedules import services as schedules
from tests.e2e.test_live_updates import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _browser_missing
from tests.e2e.test_live_updates import daphne as daphne  # the fixture
from tests.e2e.test_offline_pages import Traffic
from tests.factories import dead_letter, move_to
from workers import liveness

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present"),
]
S = JobStatus
WIDTHS = (1280, 768, 390, 320)
#: The pages with a live feed (the WebSocket): the others show no "connecting…" badge.
LIVE_PAGES = frozenset({"index", "job", "job-waiting"})

#: The colour maths of WCAG 2.x, and the text of the page that fails it.
CONTRAST_JS = """() => {
  function rgba(text) {
    const m = /rgba?\\(([^)]+)\\)/.exec(text || "");
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  function over(top, under) {  // top composited over an opaque colour
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
  }
  function background(el) {  // the colour el's text is drawn on, or null over an image
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage && s.backgroundImage !== "none") return null;
      const c = rgba(s.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let colour = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) colour = over(layers[i], colour);
    return colour;
  }
  function luminance(c) {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  }
  function ratio(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }
  window.__contrast = { rgba, background, ratio, over };
  const bad = [], seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    const s = getComputedStyle(el);
    if (s.visibility !== "visible" || el.getClientRects().length === 0) continue;
    if (el.closest(".sr-only, script, style, title, option")) continue;
    const svg = el instanceof SVGElement;
    const bg = background(svg ? el.closest("svg").parentElement : el);
    if (!bg) continue;
    let fg = rgba(svg ? s.fill : s.color);
    if (!fg) continue;
    fg = over(fg, bg);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const found = ratio(fg, bg);
    if (found < need - 0.005) {
      bad.push(`${found.toFixed(2)}:1 < ${need}:1 for "${walker.currentNode.textContent.trim().slice(0, 40)}"`
        + ` (${el.tagName.toLowerCase()}.${[...el.classList].join(".")}, ${s.color} on rgb(${bg.slice(0, 3)}))`);
    }
  }
  return [...new Set(bad)];
}"""

#: Marks every visible control, and records what Tab focuses and how the focus shows. An SVG
#: link (a graph node) shows it on its box: its stroke must change from the unfocused one.
KEYBOARD_SETUP_JS = """() => {
  const selector = 'a[href], button, input:not([type="hidden"]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
  const controls = [...document.querySelectorAll(selector)].filter(el => {
    const s = getComputedStyle(el);
    return !el.disabled && s.visibility === "visible" && el.getClientRects().length > 0
      && !el.closest("details:not([open]) > :not(summary)");
  });
  const box = el => el.querySelector("rect");
  const stroke = el => { const s = getComputedStyle(box(el)); return s.stroke + " " + s.strokeWidth; };
  controls.forEach((el, i) => {
    el.dataset.kbd = String(i);
    if (el instanceof SVGElement && box(el)) el.dataset.kbdStroke = stroke(el);
  });
  window.__focused = [];
  window.__reached = new Set();
  document.addEventListener("focusin", event => {
    const el = event.target;
    if (!el.dataset || el.dataset.kbd === undefined) return;
    window.__reached.add(el.dataset.kbd);
    const c = window.__contrast;
    const s = getComputedStyle(el);
    let colour = null, shows = false;
    if (el instanceof SVGElement) {
      const now = box(el) && getComputedStyle(box(el));
      shows = !!now && stroke(el) !== el.dataset.kbdStroke && parseFloat(now.strokeWidth) >= 2;
      colour = now ? c.rgba(now.stroke) : null;
    } else {
      const ring = s.boxShadow && s.boxShadow !== "none";
      const line = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2;
      shows = ring || line;
      colour = line ? c.rgba(s.outlineColor) : null;
    }
    const bg = c.background(el.parentElement || el) || [255, 255, 255, 1];
    window.__focused.push({
      kbd: el.dataset.kbd,
      what: `${el.tagName.toLowerCase()}#${el.id || ""} ${(el.textContent || el.name || "").trim().slice(0, 30)}`,
      shows: shows,
      contrast: colour ? c.ratio(c.over(colour, bg), bg) : 3,
    });
  });
  document.activeElement && document.activeElement.blur();
  return controls.length;
}"""


def _rollup(job_factory: Any, user: Any) -> None:
    """Finished jobs over the last twenty minutes, rolled up, for the charts."""
    now = timezone.now()
    for i in range(12):
        status = S.FAILED if i % 4 == 0 else S.COMPLETED
        job = move_to(job_factory(owner=user, type="noop"), status)
        end = floor_to(now, Grain.MINUTE) - timedelta(minutes=i + 2, seconds=-10)
        Job.objects.filter(id=job.id).update(
            created_at=end - timedelta(seconds=5),
            started_at=end - timedelta(seconds=2),
            completed_at=end,
        )
    while rollup_sweep(now).buckets:
        pass


def _data(job_factory: Any, staff_user: Any, user: Any) -> dict[str, str]:
    """Something on every page; the ids the pages' URLs need."""
    _rollup(job_factory, staff_user)
    failed = move_to(job_factory(owner=user, type="fail", payload={"note": "x" * 300}), S.FAILED)
    parent = job_factory(owner=user, type="noop")
    child = job_factory(owner=user, type="noop", depends_on=[parent])
    move_to(parent, S.RUNNING)
    job_factory(owner=user, type="noop", priority="low")
    move_to(job_factory(owner=user, type="noop"), S.RETRYING)
    for n in range(3):
        dead_letter(job_factory(owner=user, type="fail"), error=f"KeyError: 'user-{n}'")
    letter = DeadLetter.objects.filter(job__type="fail", requeued_at__isnull=True).first()
    assert letter is not None
    schedule = schedules.schedule_create(
        owner=user,
        data={"name": "nightly report", "interval_seconds": 3600, "job": {"type": "noop"}},
    )
    Limit.objects.create(key="type:noop", max_concurrency=2, rate="10/m")
    pausing.pause_create(actor=staff_user, priority=3, reason="night")
    liveness.beat_once("w1@host", {"concurrency": 2, "queues": ["normal"]}, ttl=600)
    return {
        "job": str(failed.id),
        "child": str(child.id),
        "schedule": str(schedule.id),
        "group": letter.fingerprint,
    }


def _audit_page(page: Any, traffic: Traffic, name: str, kind: str) -> list[str]:
    """Check the page the browser shows now (a page of ``kind``; screenshots named
    ``name``); what is wrong with it."""
    page.wait_for_load_state("networkidle")
    problems = []
    # Only the pages with a live feed show its state, and it turns live.
    live = kind in LIVE_PAGES
    if page.is_visible("#ws-state") != live:
        problems.append(f"the live-feed badge is {'' if live else 'not '}hidden")
    elif live:
        page.wait_for_selector("body[data-ws=open]")
    problems += [f"contrast {line}" for line in page.evaluate(CONTRAST_JS)]
    problems += _keyboard(page)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)  # the charts' resize is debounced
        suffix = "" if width == 1280 else f"-{width}"
        page.screenshot(path=str(SCREENSHOTS / f"page-{name}{suffix}.png"), full_page=True)
        wide = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if wide > 1:
            problems.append(f"scrolls sideways by {wide}px at {width}px")
    page.set_viewport_size({"width": 1280, "height": 900})
    problems += [f"left 127.0.0.1: {url}" for url in traffic.foreign]
    problems += [f"failed: {f}" for f in traffic.failed if "ERR_ABORTED" not in f]
    problems += [f"answered {r}" for r in traffic.bad]
    traffic.clear()
    return problems


def _keyboard(page: Any) -> list[str]:
    """Tab from the top through the page: every control reached, each with its focus shown.
    (A date field takes a Tab per part, so Tab goes on until all are reached, or a bound.)"""
    count = page.evaluate(KEYBOARD_SETUP_JS)
    page.evaluate("window.scrollTo(0, 0)")
    for _ in range(4 * count + 20):
        page.keyboard.press("Tab")
        if page.evaluate("window.__reached.size") == count:
            break
    focused = page.evaluate("window.__focused")
    problems = []
    missing = count - len({f["kbd"] for f in focused})
    if missing:
        problems.append(f"{missing} of {count} controls not reached by Tab")
    for f in focused:
        if not f["shows"] or f["contrast"] < 3:
            problems.append(f"no visible focus on {f['what']} (contrast {f['contrast']:.2f})")
    return list(dict.fromkeys(problems))


class Walk:
    """One Chromium page, offline, that audits each page it is sent to (``problems``)."""

    def __init__(self, page: Any, base: str, traffic: Traffic, prefix: str = "") -> None:
        self.page, self.base, self.traffic, self.prefix = page, base, traffic, prefix
        self.problems: dict[str, list[str]] = {}

    def visit(self, name: str, path: str) -> None:
        self.page.goto("about:blank")
        self.traffic.clear()
        self.page.goto(self.base + path)
        self.audit(name)

    def after_click(self, name: str, selector: str) -> None:
        self.page.click(selector)
        self.page.wait_for_load_state("load")
        self.audit(name)

    def audit(self, name: str) -> None:
        self.problems[name] = _audit_page(self.page, self.traffic, self.prefix + name, name)

    def log_in(self, username: str, password: str) -> None:
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("#login-submit")
        self.page.wait_for_url(self.base + "/dashboard/")

    def assert_fine(self, names: list[str]) -> None:
        assert sorted(self.problems) == sorted(names)
        broken = {name: found for name, found in self.problems.items() if found}
        assert not broken, "\n".join(
            f"{name}: {line}" for name, found in broken.items() for line in found
        )


@contextmanager
def _walk(base: str, prefix: str = "") -> Iterator[Walk]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    traffic = Traffic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.route("**/*", traffic.route)
            page.on("requestfailed", traffic.on_failed)
            page.on("response", traffic.on_response)
            yield Walk(page, base, traffic, prefix)
        finally:
            browser.close()


def test_every_console_page_is_readable_keyboard_usable_narrow_and_offline(
    platform, daphne, staff_user, user, job_factory
):
    ids = _data(job_factory, staff_user, user)
    with _walk(daphne) as walk:
        walk.visit("login", "/accounts/login/")
        walk.log_in("operator", "op-password")
        walk.visit("index", "/dashboard/")
        walk.visit("jobs", "/dashboard/jobs/")
        walk.page.check("#scope-all")
        walk.after_click("jobs-confirm", "#action-cancel")
        walk.visit("job", f"/dashboard/jobs/{ids['job']}/")
        walk.visit("job-waiting", f"/dashboard/jobs/{ids['child']}/")
        walk.visit("job-clone", f"/dashboard/jobs/{ids['job']}/clone/")
        walk.visit("charts", "/dashboard/charts/?range=day")
        walk.visit("schedules", "/dashboard/schedules/")
        walk.visit("schedule-confirm", f"/dashboard/schedules/{ids['schedule']}/pause/")
        walk.visit("dead-group", f"/dashboard/dead/{ids['group']}/")
        walk.visit("dead", "/dashboard/dead/")
        walk.page.get_by_role("button", name="Re-drive group").first.click()
        walk.page.wait_for_selector("#confirm-question")
        walk.audit("dead-confirm")
        walk.after_click("dead-done", "#confirm-button")
        walk.visit("queues", "/dashboard/queues/")
        walk.visit("audit", "/dashboard/audit/")
        walk.assert_fine(
            [
                "login",
                "index",
                "jobs",
                "jobs-confirm",
                "job",
                "job-waiting",
                "job-clone",
                "charts",
                "schedules",
                "schedule-confirm",
                "dead",
                "dead-group",
                "dead-confirm",
                "dead-done",
                "queues",
                "audit",
            ]
        )


#: What offers an action: a form that posts (but the header's log-out), or a link to an
#: action's confirmation or the clone form.
ACTION_CONTROLS = (
    'form[method="post"]:not(.logout), a[href$="/pause/"], a[href$="/resume/"],'
    ' a[href$="/trigger/"], a[href$="/clone/"]'
)


def test_a_read_only_staff_user_sees_every_page_offers_no_action_and_reads_as_well(
    platform, daphne, staff_user, staff_viewer_user, user, job_factory
):
    ids = _data(job_factory, staff_user, user)
    pages = {
        "index": "/dashboard/",
        "jobs": "/dashboard/jobs/",
        "job": f"/dashboard/jobs/{ids['job']}/",
        "charts": "/dashboard/charts/",
        "schedules": "/dashboard/schedules/",
        "dead": "/dashboard/dead/",
        "dead-group": f"/dashboard/dead/{ids['group']}/",
        "queues": "/dashboard/queues/",
        "audit": "/dashboard/audit/",
    }
    offered = {}
    with _walk(daphne, prefix="readonly-") as walk:
        walk.page.goto(daphne + "/accounts/login/")
        walk.log_in("staff-viewer", "staff-viewer-password")
        for name, path in pages.items():
            walk.visit(name, path)
            offered[name] = walk.page.locator(ACTION_CONTROLS).count()
        walk.assert_fine(list(pages))
    assert offered == dict.fromkeys(pages, 0)
