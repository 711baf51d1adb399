"""The ``report_generation`` job type: a report built from the results of the job's parents.

Payload::

    report_type  the report's kind, a snake_case name of 1..64 characters,
                 e.g. "daily_summary"; default "job_report"                (optional)
    title        1..200 characters, no line breaks; default: the kind in
                 words ("daily_summary" -> "Daily summary", "Job report")  (optional)
    format       "markdown" (default) or "html"                           (optional)
    description  an introduction paragraph, at most 10,000 characters      (optional)

The kind is the report's label: it is in the result, printed under the title, and names the
report when no title is given, so ``{"report_type": "daily_summary"}`` (the seed README's
example) is a report titled "Daily summary". With no parents the report holds the title, the
kind and the description alone.

Result::

    {"report_type", "title", "description", "generated_at", "format",
     "sections": [{"job_id", "type", "summary": {key: scalar, ...}}, ...],
     "markdown": "..."  or  "html": "..."}

``sections`` (the JSON form) is always present, one per parent, ordered by type then id. A
summary is type-aware for the seed types (the figures that matter: a processing job's count,
mean, ..., an export's path, rows, sha256, ...) and, for any other type, the result's first
``MAX_SUMMARY_KEYS`` top-level keys with nested values reduced to "n items" / "n keys". Strings
are cut to ``MAX_VALUE_CHARS``.

Every value in the HTML is escaped with ``django.utils.html.escape``; the markdown escapes
``& < >`` as entities too (markdown renderers pass raw HTML through) and ``|`` inside tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.utils import timezone
from django.utils.html import escape

from jobs.types import Handler, HandlerError, JobContext, register

DEFAULT_REPORT_TYPE = "job_report"
DEFAULT_TITLE = "Job report"
REPORT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
FORMATS = ("markdown", "html")
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 10_000
MAX_SUMMARY_KEYS = 20
MAX_VALUE_CHARS = 200
KNOWN_FIELDS = frozenset({"report_type", "title", "format", "description"})
LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
#: The figures worth showing for each seed type, in display order.
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "data_processing": (
        "count",
        "sum",
        "mean",
        "min",
        "max",
        "median",
        "stdev",
        "variance",
        "percentiles",
    ),
    "data_export": ("format", "rows", "bytes", "filename", "path", "sha256"),
    "send_email": ("recipients", "message_id"),
    "report_generation": ("report_type", "title", "generated_at", "format"),
}

Scalar = str | int | float | bool | None


@register("report_generation")
class ReportGenerationHandler(Handler):
    """Summarises the parents' results as markdown or HTML; see the module docstring."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        unknown = sorted(set(payload) - KNOWN_FIELDS)
        if unknown:
            errors["payload"] = f"unknown fields: {', '.join(unknown)[:200]}"
        report_type = payload.get("report_type", DEFAULT_REPORT_TYPE)
        if not isinstance(report_type, str) or not REPORT_TYPE.fullmatch(report_type):
            errors["payload.report_type"] = (
                "must be a snake_case name of 1 to 64 characters (e.g. daily_summary)"
            )
        title = payload.get("title", DEFAULT_TITLE)
        if not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE_CHARS:
            errors["payload.title"] = f"must be a string of 1 to {MAX_TITLE_CHARS} characters"
        elif LINE_BREAKS.search(title):
            errors["payload.title"] = "must not contain line breaks"
        if payload.get("format", "markdown") not in FORMATS:
            errors["payload.format"] = f"must be one of {', '.join(FORMATS)}"
        description = payload.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
            errors["payload.description"] = (
                f"must be a string of at most {MAX_DESCRIPTION_CHARS} characters"
            )
        return errors

    def run(self, ctx: JobContext) -> Any:
        errors = self.validate_payload(ctx.payload)
        if errors:  # stored before a validation change, or written around the API
            raise HandlerError(f"invalid payload: {errors}", permanent=True)
        parents = ctx.parent_results()
        ctx.log("building report", parents=len(parents))
        fmt = ctx.payload.get("format", "markdown")
        report_type = ctx.payload.get("report_type", DEFAULT_REPORT_TYPE)
        report: dict[str, Any] = {
            "report_type": report_type,
            "title": ctx.payload.get("title") or title_of(report_type),
            "description": ctx.payload.get("description", ""),
            "generated_at": timezone.now().isoformat(),
            "format": fmt,
            "sections": build_sections(parents),
        }
        report[fmt] = render_html(report) if fmt == "html" else render_markdown(report)
        ctx.log("report built", sections=len(report["sections"]), chars=len(report[fmt]))
        return report


def title_of(report_type: str) -> str:
    """The title a report of this kind gets when the payload names none: its words."""
    return report_type.replace("_", " ").strip().capitalize() or DEFAULT_TITLE


def build_sections(parents: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One section per parent, ordered by type then job id."""
    ordered = sorted(parents.items(), key=lambda item: (str(item[1].get("type")), item[0]))
    return [
        {
            "job_id": job_id,
            "type": parent.get("type"),
            "summary": summarize(parent.get("type"), parent.get("result")),
        }
        for job_id, parent in ordered
    ]


def summarize(job_type: Any, result: Any) -> dict[str, Scalar]:
    """A flat ``{key: scalar}`` digest of a parent's result (see the module docstring)."""
    if not isinstance(result, dict):
        return {"result": _scalar(result)}
    keys = SUMMARY_KEYS.get(str(job_type))
    if keys is None:
        keys = tuple(list(result)[:MAX_SUMMARY_KEYS])
    summary: dict[str, Scalar] = {}
    for key in keys:
        if key not in result:
            continue
        value = result[key]
        if isinstance(value, dict) and key == "percentiles":
            summary.update({f"p{k}": _scalar(v) for k, v in list(value.items())[:MAX_SUMMARY_KEYS]})
        else:
            summary[str(key)[:MAX_VALUE_CHARS]] = _scalar(value)
    return summary


def _scalar(value: Any) -> Scalar:
    if isinstance(value, dict):
        return f"{len(value)} keys"
    if isinstance(value, list):
        return f"{len(value)} items"
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[: MAX_VALUE_CHARS - 1] + "\u2026"
    scalar: Scalar = value  # JSON: what is neither an object, an array nor a long string
    return scalar


def _text(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _md(value: Scalar) -> str:
    """A value made safe inside a markdown table cell or heading."""
    text = LINE_BREAKS.sub(" ", _text(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [
        f"# {_md(report['title'])}",
        "",
        f"Report type: {_md(report['report_type'])}. Generated at {_md(report['generated_at'])}.",
        "",
    ]
    if report["description"]:
        body = report["description"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines += [body, ""]
    if not report["sections"]:
        lines += ["This report has no parent jobs.", ""]
    for section in report["sections"]:
        lines += [f"## {_md(section['type'])} {_md(section['job_id'])}", ""]
        lines += ["| field | value |", "| --- | --- |"]
        lines += [f"| {_md(k)} | {_md(v)} |" for k, v in section["summary"].items()]
        lines.append("")
    return "\n".join(lines)


def render_html(report: Mapping[str, Any]) -> str:
    parts = [
        f'<article class="draconic-report" data-report-type="{escape(report["report_type"])}">',
        f"<h1>{escape(report['title'])}</h1>",
        f"<p>Report type: <code>{escape(report['report_type'])}</code>."
        f" Generated at <time>{escape(report['generated_at'])}</time>.</p>",
    ]
    if report["description"]:
        parts.append(f"<p>{escape(report['description'])}</p>")
    if not report["sections"]:
        parts.append("<p>This report has no parent jobs.</p>")
    for section in report["sections"]:
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(_text(v))}</td></tr>"
            for k, v in section["summary"].items()
        )
        parts.append(
            f"<section><h2>{escape(_text(section['type']))} <code>{escape(section['job_id'])}</code></h2>"
            f"<table>{rows}</table></section>"
        )
    parts.append("</article>")
    return "\n".join(parts)
