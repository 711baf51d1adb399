"""The ``draconic`` command (``draconic_sdk.cli``) against a live platform, run in-process
with click's runner: tables and ``--json``, exit codes, and errors that say what to do next.
(tests/e2e/test_sdk_install.py runs the installed console script itself.)"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from draconic_sdk import Client
from draconic_sdk.cli import cli
from tests.e2e import sdk_live
from tests.e2e.sdk_live import Live
from tests.harness import free_port

pytestmark = pytest.mark.e2e
live = sdk_live.live  # the fixture


def draconic(
    live: Live, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> Result:
    environment = {**live.env(token), **(env or {})}
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_submit_wait_get_ls_logs_and_cancel(live: Live, tmp_path: Path) -> None:
    done = draconic(live, "submit", "noop", "--payload", '{"seconds": 0.1}', "--wait")
    assert done.exit_code == 0, done.output
    assert "completed" in done.stdout

    payload = tmp_path / "p.json"
    payload.write_text('{"permanent": true}')
    failed = draconic(live, "--json", "submit", "fail", "--payload", f"@{payload}", "--wait")
    assert failed.exit_code == 1 and as_json(failed)["status"] == "failed"
    job_id = as_json(failed)["id"]

    shown = draconic(live, "get", job_id)
    assert shown.exit_code == 0 and job_id in shown.stdout and "failed" in shown.stdout
    listed = draconic(live, "--json", "ls", "--status", "failed", "--type", "fail", "--limit", "5")
    assert [j["id"] for j in as_json(listed)] == [job_id]
    table = draconic(live, "ls", "--priority", "normal")
    assert job_id in table.stdout
    logs = draconic(live, "logs", job_id, "--follow")
    assert logs.exit_code == 0 and "running -> failed" in logs.stdout

    slow = as_json(
        draconic(
            live, "--json", "submit", "noop", "--payload", '{"seconds": 60}', "--priority", "low"
        )
    )
    cancelled = draconic(live, "--json", "cancel", slow["id"])
    assert cancelled.exit_code == 0, cancelled.output
    again = draconic(live, "cancel", slow["id"])
    if as_json(cancelled)["status"] == "cancelled":
        assert again.exit_code == 6 and "draconic get" in again.stderr


def test_graph_submit_waits_for_the_whole_graph(live: Live, tmp_path: Path) -> None:
    graph = tmp_path / "graph.json"
    graph.write_text(
        json.dumps(
            {
                "jobs": [
                    {"key": "stats", "type": "data_processing", "payload": {"data": [1, 2, 3]}},
                    {"key": "report", "type": "report_generation", "depends_on": ["stats"]},
                ]
            }
        )
    )
    result = draconic(live, "graph", "submit", str(graph), "--wait")
    assert result.exit_code == 0, result.output
    assert "stats (data_processing) completed" in result.stdout
    as_data = draconic(live, "--json", "graph", "submit", str(graph))
    assert set(as_json(as_data)["keys"]) == {"stats", "report"}


def test_watch_prints_a_jobs_events_as_json_lines(live: Live) -> None:
    job = as_json(draconic(live, "--json", "submit", "noop"))
    result = draconic(live, "--json", "watch", "--job", job["id"], "--since", "0", "--until-done")
    assert result.exit_code == 0, result.output
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["pending", "queued", "running", "completed"]


def test_watch_shows_a_table_and_logs_follow_a_running_job_to_its_end(live: Live) -> None:
    job = as_json(draconic(live, "--json", "submit", "noop", "--payload", '{"seconds": 2}'))
    followed = draconic(live, "--json", "logs", job["id"], "--follow")
    assert followed.exit_code == 0, followed.output
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert lines[-1]["to_status"] == "completed"  # it followed the job to its end
    assert len({line["id"] for line in lines}) == len(lines)  # each line once
    table = draconic(live, "watch", "--job", job["id"], "--since", "0", "--until-done")
    assert table.exit_code == 0 and "running -> completed" in table.stdout


def test_the_operator_commands(live: Live) -> None:
    staff = live.staff_token
    job = as_json(
        draconic(
            live,
            "--json",
            "submit",
            "fail",
            "--payload",
            '{"permanent": true}',
            "--wait",
            token=staff,
        )
    )
    listed = draconic(live, "--json", "dlq", "ls", "--reason", "non_retryable", token=staff)
    assert [d["job"]["id"] for d in as_json(listed)] == [job["id"]]
    dry = draconic(live, "dlq", "retry-all", "--type", "fail", "--dry-run", token=staff)
    assert dry.exit_code == 0 and "would re-drive 1" in dry.stdout
    assert draconic(live, "dlq", "retry-all", token=staff).exit_code == 2  # a filter is required
    retried = draconic(live, "--json", "dlq", "retry", job["id"], token=staff)
    assert as_json(retried)["status"] == "pending"
    health = draconic(live, "--json", "health", token=staff)
    assert health.exit_code in (0, 1) and "postgres" in as_json(health)["checks"]
    denied = draconic(live, "health")
    assert denied.exit_code == 4 and "--staff" in denied.stderr


def test_errors_say_what_to_do_next(live: Live) -> None:
    no_token = draconic(live, "ls", env={"DRACONIC_TOKEN": ""})
    assert no_token.exit_code == 4 and "createapitoken" in no_token.stderr
    url = f"http://127.0.0.1:{free_port()}"
    down = draconic(live, "--timeout", "2", "ls", env={"DRACONIC_URL": url})
    assert down.exit_code == 7 and url in down.stderr
    missing = draconic(live, "get", str(uuid.uuid4()))
    assert missing.exit_code == 5 and "draconic ls" in missing.stderr
    invalid = draconic(live, "--json", "submit", "noop", "--payload", '{"seconds": "x"}')
    assert invalid.exit_code == 3 and "payload" in json.loads(invalid.stderr)["errors"]
    bad_json = draconic(live, "submit", "noop", "--payload", "{nope")
    assert bad_json.exit_code == 2 and "not valid JSON" in bad_json.output


def test_shell_completion_is_clicks(live: Live) -> None:
    script = draconic(live, "completion", "bash")
    assert script.exit_code == 0 and "_DRACONIC_COMPLETE" in script.stdout
    words = CliRunner().invoke(
        cli,
        [],
        env={"_DRACONIC_COMPLETE": "bash_complete", "COMP_WORDS": "draconic dl", "COMP_CWORD": "1"},
        prog_name="draconic",
    )
    assert "dlq" in words.stdout


def test_schedules_commands(live: Live, tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text('{"type": "noop", "payload": {"seconds": 0.1}}')
    # Daily, at the hour twelve hours from now in Amsterdam: it cannot fire by itself during
    # the test (a fixed 03:00 would, for a run that crosses it), so the trigger is its last run.
    hour = (datetime.now(ZoneInfo("Europe/Amsterdam")) + timedelta(hours=12)).hour
    daily = f"0 {hour} * * *"
    made = draconic(
        live, "--json", "schedules", "create", "nightly", "--cron", daily,
        "--timezone", "Europe/Amsterdam", "--job", f"@{job_file}",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    schedule_id = as_json(made)["id"]
    assert len(as_json(made)["next_fire_times"]) == 5
    listed = draconic(live, "schedules", "ls")
    assert schedule_id in listed.stdout and daily in listed.stdout
    fired = as_json(draconic(live, "--json", "schedules", "trigger", schedule_id))
    assert fired["schedule"] == schedule_id
    Client(live.url, live.token).wait(fired["id"], timeout=120)
    shown = as_json(draconic(live, "--json", "schedules", "get", schedule_id))
    assert shown["last_runs"][0]["job_id"] == fired["id"]
    assert "manual" in draconic(live, "schedules", "get", schedule_id).stdout
    assert as_json(draconic(live, "--json", "schedules", "pause", schedule_id))["paused"]
    assert not as_json(draconic(live, "--json", "schedules", "resume", schedule_id))["paused"]
    every = draconic(
        live, "--json", "schedules", "create", "often", "--interval", "5m", "--job", f"@{job_file}"
    )
    assert as_json(every)["interval_seconds"] == 300
    assert draconic(live, "schedules", "rm", schedule_id).exit_code == 0
    assert draconic(live, "schedules", "get", schedule_id).exit_code == 5
    both = draconic(live, "schedules", "create", "x", "--cron", "* * * * *", "--interval", "5",
                    "--job", "{}")  # fmt: skip
    assert both.exit_code == 2 and "exactly one" in both.output
    bad = draconic(live, "schedules", "create", "x", "--cron", "nope", "--job", f"@{job_file}")
    assert bad.exit_code == 3 and "cron" in bad.output


def test_limits_commands_and_submit_run_at_and_delay(live: Live) -> None:
    staff = live.staff_token
    made = draconic(
        live, "--json", "limits", "set", "tenant:*", "--max-concurrency", "3", token=staff
    )
    assert made.exit_code == 0, made.output
    assert (as_json(made)["max_concurrency"], as_json(made)["rate"]) == (3, None)
    changed = as_json(
        draconic(live, "--json", "limits", "set", "tenant:*", "--rate", "10/s", token=staff)
    )
    assert (changed["id"], changed["max_concurrency"], changed["rate"]) == (
        as_json(made)["id"],
        3,
        "10/s",
    )
    lifted = draconic(
        live, "--json", "limits", "set", "tenant:*", "--max-concurrency", "none", token=staff
    )
    assert as_json(lifted)["max_concurrency"] is None
    table = draconic(live, "limits", "ls", token=staff)
    assert "tenant:*" in table.stdout and "10/s" in table.stdout
    assert draconic(live, "limits", "ls").exit_code == 4  # not staff
    assert draconic(live, "limits", "rm", "tenant:*", token=staff).exit_code == 0
    assert draconic(live, "limits", "rm", "tenant:*", token=staff).exit_code == 5
    assert as_json(draconic(live, "--json", "limits", "ls", token=staff)) == []

    later = as_json(draconic(live, "--json", "submit", "noop", "--delay", "3600",
                             "--concurrency-key", "tenant:1"))  # fmt: skip
    assert later["run_at"] and later["concurrency_key"] == "tenant:1"
    due = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    at = as_json(draconic(live, "--json", "submit", "noop", "--run-at", due.isoformat()))
    assert datetime.fromisoformat(at["run_at"]) == due
    scheduled = as_json(draconic(live, "--json", "ls", "--scheduled"))
    assert {j["id"] for j in scheduled} == {later["id"], at["id"]}
    assert "run_at" in draconic(live, "get", at["id"]).stdout
