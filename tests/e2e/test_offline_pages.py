"""Every page works offline: each HTML page the platform serves loads all of its assets from
the app itself, under the server `make run` runs (daphne on draconic.asgi, DEBUG on).

The story: /api/docs/ was a blank page without internet (Swagger UI came from a CDN), and
the Django admin and the browsable API were unstyled under `make run` (every /static/admin/*
and /static/rest_framework/* answered 404: daphne does not serve static files). Here headless
Chromium loads each page with every request to a host other than 127.0.0.1 aborted, and each
page must ask for nothing elsewhere, get no 404, apply its stylesheets and show its main
element. A screenshot of each goes to test-output/offline-<name>.png.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.e2e.test_live_updates import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    _browser_missing,
    _serving,
)
from tests.harness import ROOT, free_port, process_env, wait_until

#: What the Procfile's `web` process serves.
WEB_APP = "draconic.asgi:application"

#: What each page's JavaScript must have drawn, or its server-rendered main element.
PAGES: list[tuple[str, str, str]] = [
    # (name, path, selector that must be visible); {job} is a job's id.
    ("dashboard", "/dashboard/", "main table"),
    ("job-page", "/dashboard/jobs/{job}/", "#graph g.node"),
    ("swagger-ui", "/api/docs/", ".swagger-ui .opblock"),
    ("redoc", "/api/redoc/", ".api-content h1"),
    ("admin-changelist", "/admin/jobs/job/", "#changelist #result_list tbody tr"),
    ("admin-change", "/admin/jobs/job/{job}/change/", "#content-main form"),
    ("browsable-api", "/jobs/", ".content-main .response-info"),
]

#: Counts the stylesheets of the page: every <link rel=stylesheet> must have loaded rules.
STYLESHEETS_JS = """() => {
  const links = [...document.querySelectorAll('link[rel="stylesheet"]')];
  let rules = 0;
  for (const sheet of document.styleSheets) {
    try { rules += sheet.cssRules.length; } catch (e) { /* another origin's: unloaded */ }
  }
  return {
    links: links.map(l => l.href),
    unloaded: links.filter(l => {
      try { return !l.sheet || l.sheet.cssRules.length === 0; } catch (e) { return true; }
    }).map(l => l.href),
    rules: rules,
  };
}"""


@pytest.fixture
def make_run_web(platform: Any, tmp_path: Path) -> Iterator[str]:
    """The `web` process of the Procfile (daphne on draconic.asgi, DEBUG on), on the test DB."""
    port = free_port()
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), WEB_APP],
            cwd=ROOT,
            env=process_env(DEBUG="true"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _serving(base + "/healthz"), timeout=90, interval=0.3)
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


class Traffic:
    """Every request a page makes: those that left 127.0.0.1 (aborted), failures, 4xx/5xx.

    A request the page's own Content-Security-Policy refused never leaves the browser; it is
    not a failure when it is an image (ReDoc's bundle shows Redocly's logo from a CDN, and
    hides it when it cannot load), and is one for anything else (a script, a stylesheet)."""

    def __init__(self) -> None:
        self.foreign: list[str] = []
        self.failed: list[str] = []
        self.bad: list[str] = []

    def route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            self.foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def on_failed(self, request: Any) -> None:
        if request.failure == "csp" and request.resource_type == "image":
            return
        self.failed.append(f"{request.url} ({request.resource_type}: {request.failure})")

    def on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.bad.append(f"{response.status} {response.url}")

    def clear(self) -> None:
        self.foreign, self.failed, self.bad = [], [], []


def _check_page(page: Any, traffic: Traffic, name: str, url: str, selector: str) -> list[str]:
    """Load one page; returns what is wrong with it (nothing, for a page that works)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto("about:blank")  # ends the previous page's polls before counting this page's
    traffic.clear()
    page.goto(url, wait_until="load")
    problems = []
    try:
        page.wait_for_selector(selector, state="visible", timeout=90_000)
        page.wait_for_load_state("networkidle")
    except PlaywrightTimeout:
        problems.append(f"{selector!r} never became visible")
    page.screenshot(path=str(SCREENSHOTS / f"offline-{name}.png"), full_page=True)
    problems += [f"left 127.0.0.1: {url}" for url in traffic.foreign]
    problems += [f"failed: {failure}" for failure in traffic.failed]
    problems += [f"answered {response}" for response in traffic.bad]
    sheets = page.evaluate(STYLESHEETS_JS)
    problems += [f"stylesheet not applied: {href}" for href in sheets["unloaded"]]
    if not sheets["rules"]:
        problems.append("no CSS rules at all")
    # Styled, not the browser's default: Chromium's default body margin is 8px and its
    # default font is serif; every one of our pages changes at least one of them.
    body = page.evaluate(
        "() => { const s = getComputedStyle(document.body);"
        " return {margin: s.marginTop, font: s.fontFamily}; }"
    )
    if body == {"margin": "8px", "font": '"Times New Roman"'}:
        problems.append(f"the body has the browser's default style {body}")
    return problems


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    """The development `admin` of `make run` (devsetup): a superuser, so the admin shows all."""
    return django_user_model.objects.create_superuser("admin", password="admin-password")


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_name_no_other_host_and_are_not_in_the_schema(client: Client, path: str):
    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "https://" not in html and "http://" not in html, html
    assert "/static/drf_spectacular_sidecar/" in html
    assert page["Content-Security-Policy"].startswith("default-src 'self'")
    schema = client.get("/api/schema/?format=json").json()
    assert path not in schema["paths"]


@pytest.mark.parametrize(
    "asset",
    [
        "admin/css/base.css",
        "rest_framework/css/bootstrap.min.css",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
    ],
)
def test_the_app_serves_its_static_files_itself(client: Client, asset: str):
    response = client.get(f"/static/{asset}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)


@pytest.mark.e2e
@pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present")
def test_every_page_renders_with_nothing_but_the_app(make_run_web, superuser, job_factory):
    from playwright.sync_api import sync_playwright

    job = job_factory(owner=superuser, type="noop")
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

            login = make_run_web + "/accounts/login/"
            problems = {"login": _check_page(page, traffic, "login", login, "section.login")}
            page.fill("#id_username", "admin")
            page.fill("#id_password", "admin-password")
            page.click("#login-submit")
            page.wait_for_url(make_run_web + "/dashboard/")

            for name, path, selector in PAGES:
                url = make_run_web + path.format(job=job.id)
                problems[name] = _check_page(page, traffic, name, url, selector)
                # The browsable API is what a browser (Accept: text/html) gets: the list.
                listed = str(job.id) in page.locator("body").inner_text()
                if name == "browsable-api" and not listed:
                    problems[name].append("the job is not listed")
        finally:
            browser.close()
    broken = {name: found for name, found in problems.items() if found}
    assert not broken, "\n".join(f"{name}: {found}" for name, found in broken.items())
