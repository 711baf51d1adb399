"""The group of a dead letter, as error trackers group: the job type, the exception class and
the *shape* of the message, hashed.

The shape is the message with what varies between occurrences of one bug replaced by a
placeholder: UUIDs, hex (``0x7f...``, long hex runs such as hashes), quoted strings, file
paths, URLs, numbers. ``KeyError: 'user-41'`` and ``KeyError: 'user-7'`` are one group;
``KeyError`` and ``ValueError`` with the same text are two. Pure functions, no database.
"""

from __future__ import annotations

import hashlib
import re

#: The longest message shape kept (a long message differs past this only in its tail).
MAX_SHAPE = 300

# Applied in order: the earlier patterns swallow what the later ones would mangle (a UUID's
# digits are not numbers; a path's digits are not numbers).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>"),
    (re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""), "<str>"),
    (re.compile(r"(?:(?<=\s)|^)(?:~|\.{1,2})?(?:/[\w.@%+-]+)+/?"), "<path>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:[.,:]\d+)*(?:[eE][-+]?\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)

#: ``ValueError: ...``, ``pkg.mod.Error: ...``: the class before the first colon.
_CLASS = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|[A-Z]\w*)):\s?")


def split_error(error: str) -> tuple[str, str]:
    """(exception class, message) of an error as the runner writes it (``Class: message``);
    the class is empty for a message of the platform's own (``timed out after 30s``)."""
    match = _CLASS.match(error)
    if match is None:
        return "", error
    return match.group(1), error[match.end() :]


def message_shape(message: str) -> str:
    """``message`` with its variable parts replaced by placeholders, whitespace collapsed."""
    shape = message
    for pattern, placeholder in _PATTERNS:
        shape = pattern.sub(placeholder, shape)
    return shape.strip()[:MAX_SHAPE]


def error_shape(error: str) -> str:
    """The exception class and the shape of its message: what one group of letters shares."""
    cls, message = split_error(error.strip().splitlines()[0] if error.strip() else "")
    shape = message_shape(message)
    return f"{cls}: {shape}" if cls else shape


def fingerprint(job_type: str, error: str) -> str:
    """The group of a dead letter of a ``job_type`` job that failed with ``error`` (40 hex)."""
    text = f"{job_type}\0{error_shape(error)}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
