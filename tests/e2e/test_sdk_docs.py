"""The examples of docs/client.md and of the README's client section run as printed against
a live platform: each ``python`` block in turn (one namespace, as a reader pasting them would
run them), each ``draconic`` command of a ``bash`` block (with the exit code its comment
names), and ``NAME=$(draconic --json ... | jq -r .field)`` keeps ``$NAME`` for the next lines.
A ``json NAME`` block is written to the file NAME first (``graph.json``, ``job.json``)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from draconic_sdk.cli import cli
from tests.e2e import sdk_live
from tests.e2e.sdk_live import Live
from tests.harness import ROOT

pytestmark = pytest.mark.e2e
live = sdk_live.live  # the fixture

FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.M | re.S)
CAPTURE = re.compile(r"^(?P<name>\w+)=\$\((?P<command>draconic .*) \| jq -r \.(?P<field>\w+)\)$")
EXIT = re.compile(r"#.*\bexit (?P<code>\d+)")


def _blocks(text: str) -> list[tuple[str, str]]:
    return [(m["info"].strip(), m["body"]) for m in FENCE.finditer(text)]


def _readme_section() -> str:
    """The README's section on the client, up to the next section of its level."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## The Python client and the `draconic` command")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


class Shell:
    """Runs the ``draconic`` lines of bash blocks; ``pip``, ``eval`` and ``export`` lines are
    not run (the test sets DRACONIC_URL and DRACONIC_TOKEN itself)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.vars: dict[str, str] = {}
        self.ran = 0

    def run(self, line: str) -> None:
        capture = CAPTURE.match(line)
        command = capture["command"] if capture else line.split(" #")[0]
        for name, value in self.vars.items():
            command = command.replace(f"${name}", value)
        expected = int(m["code"]) if (m := EXIT.search(line)) else 0
        result = CliRunner().invoke(cli, shlex.split(command)[1:], env=self.env)
        assert result.exit_code == expected, f"{line}\n{result.output}"
        if capture:
            self.vars[capture["name"]] = str(json.loads(result.stdout)[capture["field"]])
        self.ran += 1

    def block(self, body: str) -> None:
        for raw in body.splitlines():
            line = raw.strip()
            if line.startswith("draconic ") or CAPTURE.match(line):
                self.run(line)
            else:
                assert not line or line.startswith(("pip ", "#", "eval ", "export ")), line


def _run_examples(text: str, live: Live, monkeypatch: Any, tmp_path: Path) -> tuple[int, int]:
    env = live.env(live.staff_token)  # the operator examples need a staff token
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    shell, namespace, python = Shell(env), {"__name__": "__docs__"}, 0
    blocks = _blocks(text)
    for info, body in blocks:
        if info.startswith("json "):
            (tmp_path / info.split()[1]).write_text(body)
    for info, body in blocks:
        if info == "python":
            exec(compile(body, "<docs>", "exec"), namespace)  # noqa: S102  (our own docs)
            python += 1
        elif info == "bash":
            shell.block(body)
    return python, shell.ran


def test_the_examples_of_docs_client_md_run_as_printed(live, monkeypatch, tmp_path) -> None:
    ran = _run_examples((ROOT / "docs" / "client.md").read_text(), live, monkeypatch, tmp_path)
    assert ran == (9, 24)  # counted when written: every example ran


def test_the_readme_client_examples_run_as_printed(live, monkeypatch, tmp_path) -> None:
    ran = _run_examples(_readme_section(), live, monkeypatch, tmp_path)
    assert ran[0] >= 1 and ran[1] >= 2
