"""A JSON value as readable HTML: small values inline, large objects, arrays and strings
folded in ``<details>`` (open with a click or the keyboard), every text escaped."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

#: A value whose compact JSON is longer than this is folded.
FOLD_CHARS = 160
#: A folded string shows this much of itself in its summary.
PREVIEW_CHARS = 60


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def render(value: Any) -> SafeString:
    """``value`` (what a JSONField holds) as HTML."""
    text = _compact(value)
    if len(text) <= FOLD_CHARS:
        return format_html("<pre>{}</pre>", text)
    if isinstance(value, str):
        return format_html(
            "<details><summary>{}… ({} characters)</summary><pre>{}</pre></details>",
            _compact(value[:PREVIEW_CHARS]),
            len(value),
            value,
        )
    if isinstance(value, dict):
        entries = format_html_join(
            "",
            '<div class="entry"><span class="k">{}</span>: {}</div>',
            ((_compact(k), render(v)) for k, v in value.items()),
        )
        return _folded(
            f"{{…}} {len(value)} key{'' if len(value) == 1 else 's'}, {len(text)} characters",
            entries,
        )
    if isinstance(value, list):
        entries = format_html_join(
            "",
            '<div class="entry"><span class="k">[{}]</span> {}</div>',
            ((i, render(v)) for i, v in enumerate(value)),
        )
        return _folded(
            f"[…] {len(value)} item{'' if len(value) == 1 else 's'}, {len(text)} characters",
            entries,
        )
    return format_html("<pre>{}</pre>", text)  # a long number: nothing to fold


def _folded(summary: str, entries: SafeString) -> SafeString:
    return format_html("<details><summary>{}</summary>{}</details>", summary, entries)


def pretty(value: Any) -> str:
    """``value`` indented, for a form's text area."""
    return json.dumps(value, ensure_ascii=False, indent=2)
