"""The examples of a README, read out of its fenced code blocks as steps a test can run.

Used by ``tests/e2e/test_readme_examples.py`` on our README and the seed README
(``docs/seed-README.md``). The parser is small on purpose and refuses what it does not know:

- ``bash``/``sh`` blocks: each command (a ``\\`` continues a line, an open quote continues
  a command, ``#`` starts a comment, a heredoc is skipped with its command) becomes a step:
  ``curl`` (options ``-s``, ``-X``, ``-H``, ``-d``; any other option is an error),
  ``NAME=$(curl ... | jq -r .field)`` (the field of the answer, kept as ``$NAME``),
  ``export NAME=value``, ``sleep N``; any other command is ``Other`` (the test says which
  commands it expects and does not run).
- ``json`` blocks holding a job (an object with ``type``): a submit to ``/jobs/``.
- ``javascript`` blocks: each ``new WebSocket(`url`)``.

Variables (``$NAME``, ``${NAME}``) stay in the steps; the runner expands them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```", re.M | re.S)
CAPTURE = re.compile(r"^(?P<name>\w+)=\$\((?P<command>.*)\)$", re.S)
JQ_FIELD = re.compile(r"\|\s*jq\s+-r\s+\.(?P<field>\w+)\s*$")
TRAILING_COMMENT = re.compile(r"\s+#[^'\"\n]*$")
HEREDOC = re.compile(r"<<-?\s*'?(?P<word>\w+)'?")
WEBSOCKET = re.compile(r"new WebSocket\(\s*[`'\"](?P<url>[^`'\"]+)[`'\"]")
SHELL = {"bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class Request:
    """One HTTP request, as a curl command (or a JSON job) prints it."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    source: str
    #: ``(NAME, field)`` for ``NAME=$(curl ... | jq -r .field)``.
    capture: tuple[str, str] | None = None
    #: For a JSON job: its ``depends_on`` entries are placeholders the runner replaces.
    job: dict[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Export:
    name: str
    value: str
    source: str


@dataclass(frozen=True)
class Sleep:
    seconds: float
    source: str


@dataclass(frozen=True)
class WebSocket:
    url: str
    source: str


@dataclass(frozen=True)
class Other:
    """A command the test does not run (``make``, ``docker``, ...): its first word."""

    command: str
    source: str


Step = Request | Export | Sleep | WebSocket | Other


def section(markdown: str, heading: str) -> str:
    """The section under ``heading`` (a whole heading line, e.g. ``## Schedules``), up to the
    next heading of its level or above (a ``#`` line inside a code block is no heading)."""
    level = len(heading.split(" ", 1)[0])
    lines = markdown.splitlines(keepends=True)
    first = lines.index(heading + "\n")
    fenced = False
    for number in range(first + 1, len(lines)):
        line = lines[number]
        fenced = fenced != line.startswith("```")
        marks = len(line) - len(line.lstrip("#"))
        if not fenced and 0 < marks <= level and line[marks : marks + 1] == " ":
            return "".join(lines[first:number])
    return "".join(lines[first:])


def without_section(markdown: str, heading: str) -> str:
    """``markdown`` without the section under ``heading``."""
    return markdown.replace(section(markdown, heading), "", 1)


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block, in order."""
    return [(m["lang"], m["body"]) for m in FENCE.finditer(text)]


def shell_commands(body: str) -> list[str]:
    """The commands of a shell block: continuations joined, heredocs dropped."""
    commands: list[str] = []
    current, heredoc_end = "", None
    for line in body.splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        current = f"{current}\n{line}" if current else line
        if current.endswith("\\"):
            current = current[:-1]
            continue
        try:
            words = shlex.split(current, comments=True)
        except ValueError:  # a quote is still open: the command goes on
            continue
        heredoc = HEREDOC.search(current)
        heredoc_end = heredoc["word"] if heredoc else None
        if words:
            commands.append(current)
        current = ""
    if current:
        raise ValueError(f"unterminated command: {current!r}")
    return commands


def curl_request(command: str, *, capture: tuple[str, str] | None = None) -> Request:
    words = shlex.split(command, comments=True)
    if words[0] != "curl":
        raise ValueError(f"not a curl command: {command!r}")
    method, url, body = "", "", None
    headers: dict[str, str] = {}
    rest = iter(words[1:])
    for word in rest:
        if word in {"-s", "--silent", "-O", "-J", "-OJ", "--remote-name", "--remote-header-name"}:
            continue  # silent, or saving the body to a file: the answer is checked all the same
        if word in {"-X", "--request"}:
            method = next(rest)
        elif word in {"-H", "--header"}:
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word in {"-d", "--data"}:
            body = next(rest)
        elif word.startswith("-") or url:
            raise ValueError(f"curl option or argument {word!r} is not supported: {command!r}")
        else:
            url = word
    method = method or ("POST" if body is not None else "GET")
    return Request(method, url, headers, body, source=command.strip(), capture=capture)


def shell_step(command: str) -> Step:
    words = shlex.split(command, comments=True)
    captured = CAPTURE.match(TRAILING_COMMENT.sub("", command.strip()))
    if captured is None and re.match(r"\w+=\$\(", command.strip()):
        raise ValueError(f"a command substitution this parser cannot read: {command!r}")
    if captured:
        inner = captured["command"]
        jq = JQ_FIELD.search(inner)
        if not inner.lstrip().startswith("curl"):
            return Other(shlex.split(inner)[0], command)
        if jq is None:
            raise ValueError(f"only `| jq -r .field` can follow a captured curl: {command!r}")
        return curl_request(inner[: jq.start()], capture=(captured["name"], jq["field"]))
    if words[0] == "curl":
        return curl_request(command)
    if words[0] == "export" and len(words) == 2 and "=" in words[1]:
        name, _, value = words[1].partition("=")
        return Export(name, value, command)
    if words[0] == "sleep" and len(words) == 2:
        return Sleep(float(words[1]), command)
    return Other(words[0], command)


def json_job(body: str) -> Request | None:
    value = json.loads(body)
    if not isinstance(value, dict) or "type" not in value:
        return None
    headers = {"Content-Type": "application/json"}
    return Request("POST", "$API/jobs/", headers, None, source=body.strip(), job=value)


def steps(markdown: str) -> list[Step]:
    """Every example of a README, in order."""
    found: list[Step] = []
    for lang, body in blocks(markdown):
        if lang in SHELL:
            found += [shell_step(command) for command in shell_commands(body)]
        elif lang == "json" and (job := json_job(body)) is not None:
            found.append(job)
        elif lang in {"javascript", "js"}:
            found += [WebSocket(m["url"], m[0]) for m in WEBSOCKET.finditer(body)]
    return found
