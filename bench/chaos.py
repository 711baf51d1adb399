"""``make chaos``: a fault-injection run of the real platform on this machine.

It starts a PostgreSQL cluster and a Redis server of its own (on free ports, in a temporary
directory: the machine's shared servers are never touched), two Celery workers and two
schedulers, and submits a load of dependent jobs (chains, diamonds, fan-ins; mixed priorities;
~10% fail their first attempt; a few fail for good). While the load runs it SIGKILLs workers
(and once a scheduler), kills and restarts Redis, flushes it, and restarts PostgreSQL. When every
job has ended it checks:

- every job is in exactly one terminal state, and only the expected ones failed or were
  cancelled (the doomed jobs, and their descendants);
- no handler ran twice for the same attempt (the handlers' run log, ``tests.chaos_handlers``);
- no completed child started before all its parents completed;
- the resource ledger holds nothing;
- the counts it prints are the database's.

A platform process that exits by itself is restarted, as a supervisor would, and reported as a
crash (with its log's tail) without failing the run. It prints one summary line and exits 1 if
anything is wrong (with the details and the processes' logs kept under ``var/``), 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUN_LOG_ENV = "DRACONIC_CHAOS_RUN_LOG"  # the same name as in tests.chaos_handlers
TERMINAL = ("completed", "failed", "cancelled")


def say(message: str) -> None:
    print(f"chaos: {message}", flush=True)


# --- the services of our own ------------------------------------------------------------------


def free_port(start: int, taken: set[int]) -> int:
    """The first port from ``start`` on which nothing listens and that we did not pick yet."""
    for port in range(start, start + 100):
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {start}-{start + 99}")


class Postgres:
    """A throwaway PostgreSQL cluster (initdb as the ``postgres`` user when we are root,
    because initdb and pg_ctl refuse to run as root)."""

    def __init__(self, root: Path, port: int) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = found[-1] if found else shutil.which("initdb")
        if not initdb:
            raise RuntimeError("initdb not found (install the PostgreSQL server package)")
        self.bin = Path(initdb).parent
        self.port = port
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.socket_dir = root
        self.owner = "postgres" if os.geteuid() == 0 else None
        if self.owner:
            pw = pwd.getpwnam(self.owner)
            os.chown(root, pw.pw_uid, pw.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -h 127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


class RedisServer:
    """A redis-server of our own without persistence: killing it loses everything in it."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115  (the child keeps it)
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=1)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except OSError:
            return False
        except Exception:  # redis.ConnectionError and friends
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Fleet:
    """The platform's processes: workers and schedulers, each in its own process group."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.commands: dict[str, list[str]] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.crashes: list[str] = []

    def add_worker(self, name: str) -> None:
        self.commands[name] = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "draconic",
            "worker",
            "-Q",
            "critical,high,normal,low",
            "-c",
            "2",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}@%h",
            "-l",
            "INFO",
        ]
        self.start(name)

    def add_scheduler(self, name: str) -> None:
        self.commands[name] = [sys.executable, "manage.py", "scheduler"]
        self.start(name)

    def start(self, name: str) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115  (the child keeps it)
        self.procs[name] = subprocess.Popen(
            self.commands[name],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a worker's main process and its pool children)."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):  # pool children left behind, if any
            os.killpg(proc.pid, signal.SIGKILL)

    def revive(self) -> None:
        """Restart any process that exited by itself: that is a finding, recorded as a crash."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.crashes.append(f"{name} exited with {proc.returncode}")
                say(f"{name} exited by itself with code {proc.returncode}; restarting it")
                tail = (self.root / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                print("\n".join(f"    {line[:400]}" for line in tail), flush=True)
                self.start(name)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Planned:
    key: str
    kind: str  # ok | flaky | doomed
    parents: list[str]
    priority: str
    ms: int
    cpu: int
    mem: int
    starts_shape: bool = False


@dataclass
class Plan:
    batches: list[list[Planned]]
    expected: dict[str, str] = field(default_factory=dict)  # key -> completed|failed|cancelled

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.batches)


SHAPES: dict[str, list[list[int]]] = {  # parents of each member, by index inside the shape
    "single": [[]],
    "chain2": [[], [0]],
    "chain4": [[], [0], [1], [2]],
    "diamond": [[], [0], [0], [1, 2]],
    "fan_in": [[], [], [], [0, 1, 2]],
}


def make_plan(total: int, batch_size: int, rng: random.Random) -> Plan:
    """About ``total`` jobs in batches of dependency shapes, with their expected outcomes."""
    jobs: list[Planned] = []
    while len(jobs) < total:
        shape = rng.choice(list(SHAPES))
        members = SHAPES[shape][: total - len(jobs)]
        base = len(jobs)
        for index, parents in enumerate(members):
            roll = rng.random()
            kind = "doomed" if roll < 0.02 else "flaky" if roll < 0.12 else "ok"
            jobs.append(
                Planned(
                    key=f"j{base + index}",
                    kind=kind,
                    parents=[f"j{base + p}" for p in parents],
                    priority=rng.choice(("critical", "high", "normal", "low")),
                    ms=rng.randint(0, 200),
                    cpu=rng.randint(1, 2),
                    mem=rng.choice((64, 128, 256, 512)),
                    starts_shape=index == 0,
                )
            )
    # A few doomed jobs with descendants, so that cancellation is exercised every run.
    heads = [j for j in jobs if not j.parents and any(j.key in k.parents for k in jobs)]
    for head in heads[3 : 3 + max(3, total // 400)]:
        head.kind = "doomed"
    plan = Plan(batches=[])
    start = 0
    while start < len(jobs):  # cut between shapes, never inside one
        end = min(start + batch_size, len(jobs))
        while end < len(jobs) and not jobs[end].starts_shape:
            end += 1
        plan.batches.append(jobs[start:end])
        start = end
    plan.expected = expected_outcomes(jobs)
    return plan


def expected_outcomes(jobs: list[Planned]) -> dict[str, str]:
    """Descendants of a doomed job end cancelled; a doomed job itself fails (unless one of its
    own ancestors failed first); every other job completes."""
    outcome: dict[str, str] = {}
    for job in jobs:  # parents always come first
        if any(outcome[p] != "completed" for p in job.parents):
            outcome[job.key] = "cancelled"
        else:
            outcome[job.key] = "failed" if job.kind == "doomed" else "completed"
    return outcome


# --- faults -----------------------------------------------------------------------------------

FULL_FAULTS = [
    (0.05, "worker_kill"),
    (0.14, "redis_flush"),
    (0.24, "worker_kill"),
    (0.34, "postgres_restart"),
    (0.46, "worker_kill"),
    (0.58, "redis_restart"),
    (0.70, "worker_kill"),
    (0.80, "scheduler_kill"),
]
QUICK_FAULTS = [
    (0.08, "worker_kill"),
    (0.20, "redis_flush"),
    (0.32, "worker_kill"),
    (0.44, "postgres_restart"),
    (0.56, "redis_restart"),
    (0.68, "scheduler_kill"),
    (0.80, "worker_kill"),
]
FAULT_KINDS = ("worker_kill", "redis_restart", "redis_flush", "postgres_restart", "scheduler_kill")


@dataclass
class Chaos:
    """The running experiment: services, processes, what was submitted, what was injected."""

    root: Path
    pg: Postgres
    redis: RedisServer
    fleet: Fleet
    plan: Plan
    ids: dict[str, str] = field(default_factory=dict)  # plan key -> job id
    submitted_batches: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    victims_running: int = 0  # jobs the killed workers were running when killed
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def inject(self, fault: str) -> None:
        from django.db import connection

        from jobs.redis_client import get_redis

        detail = ""
        if fault == "worker_kill":
            victim = self.busiest_worker()
            self.fleet.kill(victim, signal.SIGKILL)
            self.fleet.start(victim)
            detail = f" ({victim})"
        elif fault == "scheduler_kill":  # it may hold the dispatch lock: the lock must go with it
            victim = f"s{1 + self.faults[fault] % 2}"
            self.fleet.kill(victim, signal.SIGKILL)
            self.fleet.start(victim)
            detail = f" ({victim})"
        elif fault == "redis_restart":
            self.redis.kill()
            time.sleep(1)
            self.redis.start()
        elif fault == "redis_flush":
            self.redis.client().flushall()
        elif fault == "postgres_restart":
            self.pg.restart()
            connection.close()
        get_redis().connection_pool.disconnect()
        self.faults[fault] += 1
        say(f"t={self.elapsed():.0f}s fault #{sum(self.faults.values())}: {fault}{detail}")

    def busiest_worker(self) -> str:
        """The worker running the most jobs right now (so the kill interrupts handlers)."""
        from jobs.models import Job

        workers = sorted(n for n in self.fleet.procs if n.startswith("w"))
        running = Counter(
            w.partition("@")[0]
            for w in Job.objects.filter(status="running").values_list("worker", flat=True)
        )
        victim = max(workers, key=lambda n: (running[n], -workers.index(n)))
        self.victims_running += running[victim]
        return victim

    def submit_next(self, owner: Any) -> None:
        from jobs.api.submit import job_submit_batch
        from tests.factories import make_spec

        batch = self.plan.batches[self.submitted_batches]
        specs = [
            make_spec(
                key=p.key,
                type=f"chaos_{p.kind}",
                priority=p.priority,
                payload={"ms": p.ms},
                cpu_units=p.cpu,
                memory_mb=p.mem,
                max_attempts=8,
                depends_on=p.parents,
            )
            for p in batch
        ]
        jobs = job_submit_batch(owner=owner, specs=specs)
        for planned, job in zip(batch, jobs, strict=True):
            self.ids[planned.key] = str(job.id)
        self.submitted_batches += 1


def status_counts() -> Counter[str]:
    from django.db.models import Count

    from jobs.models import Job

    rows = Job.objects.order_by().values_list("status").annotate(n=Count("id"))
    return Counter(dict(rows))


def drive(chaos: Chaos, owner: Any, faults: list[tuple[float, str]], timeout: float) -> bool:
    """Submit the load and inject the faults until every job is terminal. False on a hang."""
    from django.db import DatabaseError, connection

    total = chaos.plan.total
    backlog_limit = max(150, total // 5)
    pending_faults = list(faults)
    last_fault = last_print = 0.0
    deadline = time.monotonic() + timeout
    while True:
        chaos.fleet.revive()
        try:
            counts = status_counts()
            done = sum(counts[s] for s in TERMINAL)
            submitted = len(chaos.ids)
            while (
                chaos.submitted_batches < len(chaos.plan.batches)
                and submitted - done < backlog_limit
            ):
                chaos.submit_next(owner)
                submitted = len(chaos.ids)
        except DatabaseError as exc:
            say(f"t={chaos.elapsed():.0f}s database unavailable to the load driver: {exc}".strip())
            connection.close()
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
            continue
        now = time.monotonic()
        if (
            pending_faults
            and now - last_fault >= 2
            and (done >= pending_faults[0][0] * total or submitted == done == total)
        ):
            chaos.inject(pending_faults.pop(0)[1])
            last_fault = now
        if now - last_print >= 3:
            busy = " ".join(
                f"{s}={counts[s]}" for s in ("pending", "queued", "running", "retrying")
            )
            say(
                f"t={chaos.elapsed():.0f}s terminal={done}/{total} {busy} faults={sum(chaos.faults.values())}"
            )
            last_print = now
        if done == total and not pending_faults:
            return True
        if now > deadline:
            return False
        time.sleep(0.5)


# --- the verdict ------------------------------------------------------------------------------


@dataclass
class Verdict:
    counts: Counter[str]
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    multi_terminal: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    count_mismatch: list[str] = field(default_factory=list)
    ledger: str = ""

    @property
    def passed(self) -> bool:
        problems = (
            self.lost,
            self.unexpected,
            self.multi_terminal,
            self.duplicates,
            self.unrecorded,
            self.order,
            self.count_mismatch,
        )
        return not any(problems) and not self.ledger


def read_run_log(path: Path) -> list[tuple[str, int, int, float]]:
    """``(job_id, attempt, pid, start_ts)`` of every handler execution."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            job_id, attempt, pid, started = line.split(":")
            out.append((job_id, int(attempt), int(pid), float(started)))
    return out


def verify(chaos: Chaos, run_log: Path) -> Verdict:
    from django.db.models import Count

    from jobs.models import ExecutionLog, Job, JobDependency

    rows = {
        str(r["id"]): r
        for r in Job.objects.filter(id__in=list(chaos.ids.values())).values(
            "id", "status", "attempt", "started_at", "completed_at"
        )
    }
    verdict = Verdict(counts=Counter(r["status"] for r in rows.values()))
    for key, job_id in chaos.ids.items():
        row = rows.get(job_id)
        if row is None or row["status"] not in TERMINAL:
            verdict.lost.append(job_id)
        elif row["status"] != chaos.plan.expected[key]:
            verdict.unexpected.append(job_id)
    terminal_logs = (
        ExecutionLog.objects.filter(to_status__in=TERMINAL)
        .order_by()
        .values_list("job_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    verdict.multi_terminal = [str(job_id) for job_id, _ in terminal_logs]
    runs = read_run_log(run_log)
    seen = Counter((job_id, attempt) for job_id, attempt, _, _ in runs)
    verdict.duplicates = duplicate_runs(runs)
    verdict.unrecorded = [
        j for j, r in rows.items() if r["status"] == "completed" and (j, r["attempt"]) not in seen
    ]
    verdict.order = order_violations(
        rows,
        runs,
        JobDependency.objects.filter(job_id__in=list(rows)).values_list("job_id", "depends_on_id"),
    )
    db_counts = status_counts()
    if (
        db_counts != verdict.counts
        or sum(db_counts.values()) != len(chaos.ids)
        or len(rows) != len(chaos.ids)
    ):
        verdict.count_mismatch = [
            f"checked {dict(verdict.counts)}, database {dict(db_counts)}, "
            f"submitted {len(chaos.ids)}"
        ]
    verdict.ledger = ledger_problem()
    return verdict


def duplicate_runs(runs: list[tuple[str, int, int, float]]) -> list[str]:
    """``job:attempt`` pairs whose handler ran more than once."""
    seen = Counter((job_id, attempt) for job_id, attempt, _, _ in runs)
    return [f"{j}:{a} ran {n} times" for (j, a), n in seen.items() if n > 1]


def order_violations(
    rows: dict[str, Any], runs: list[tuple[str, int, int, float]], edges: Any
) -> list[str]:
    """Completed children whose start (in the database, or any run of the handler) came before
    a parent completed."""
    starts: dict[str, list[float]] = {}
    for job_id, _, _, started in runs:
        starts.setdefault(job_id, []).append(started)
    out = []
    for child, parent in edges:
        child, parent = str(child), str(parent)
        c, p = rows[child], rows[parent]
        if c["status"] != "completed":
            continue
        if p["status"] != "completed" or p["completed_at"] is None:
            out.append(f"{child} completed but its parent {parent} is {p['status']}")
            continue
        early = [s for s in starts.get(child, []) if s < p["completed_at"].timestamp()]
        if c["started_at"] < p["completed_at"] or early:
            out.append(
                f"{child} started {c['started_at']} before its parent {parent} completed {p['completed_at']}"
            )
    return out


def ledger_problem(wait: float = 60) -> str:
    """Empty when the ledger is present and holds nothing, after giving the schedulers' ticks
    ``wait`` seconds to reconcile it; otherwise what it still holds."""
    from jobs.engine import ledger

    deadline = time.monotonic() + wait
    while True:
        usage = ledger.ledger_usage()
        if ledger.ledger_is_present() and usage.cpu_units == usage.memory_mb == usage.leases == 0:
            return ""
        if time.monotonic() > deadline:
            return (
                f"present={ledger.ledger_is_present()} cpu={usage.cpu_units} "
                f"memory={usage.memory_mb} leases={sorted(ledger.ledger_leases())[:10]}"
            )
        time.sleep(0.5)


def explain(verdict: Verdict) -> None:
    """Print the details of each violation, with the ExecutionLog rows of the first jobs."""
    from jobs.models import ExecutionLog

    for name in (
        "lost",
        "unexpected",
        "multi_terminal",
        "duplicates",
        "unrecorded",
        "order",
        "count_mismatch",
    ):
        items = getattr(verdict, name)
        if items:
            say(f"{name}: {len(items)}; first: {items[:10]}")
    if verdict.ledger:
        say(f"ledger not empty: {verdict.ledger}")
    for job_id in (verdict.lost + verdict.unexpected + verdict.multi_terminal)[:5]:
        say(f"history of {job_id}:")
        for log in ExecutionLog.objects.filter(job_id=job_id).order_by("id"):
            print(
                f"    {log.created_at:%H:%M:%S.%f} #{log.attempt} {log.from_status or '-'}->"
                f"{log.to_status or '-'} {log.message[:160]} {log.context or ''}"
            )


def evidence(chaos: Chaos, run_log: Path) -> str:
    """What the faults did: handler runs, retries by reason, ledger rebuilds, re-publishes (read
    from the processes' logs). A run whose faults hit nothing proves little."""
    from jobs.models import ExecutionLog

    runs = read_run_log(run_log)
    reasons = Counter(
        ExecutionLog.objects.filter(to_status="retrying").values_list("context__reason", flat=True)
    )
    logs = [path.read_text(errors="replace") for path in chaos.root.glob("*.log")]
    rebuilt = sum(text.count("ledger rebuilt from PostgreSQL") for text in logs)
    republished = sum(text.count("re-publishing") for text in logs)
    superseded = sum(text.count("attempt had been superseded") for text in logs)
    retries = " ".join(f"{reason}={n}" for reason, n in sorted(reasons.items()))
    return (
        f"handler_runs={len(runs)} retries({retries}) running_when_killed={chaos.victims_running} "
        f"ledger_rebuilds={rebuilt} republishes={republished} superseded_results={superseded}"
    )


def summary(chaos: Chaos, verdict: Verdict) -> str:
    c = verdict.counts
    kinds = " ".join(f"{k}={chaos.faults[k]}" for k in FAULT_KINDS)
    return (
        f"jobs={len(chaos.ids)} completed={c['completed']} failed={c['failed']} cancelled={c['cancelled']} "
        f"faults={sum(chaos.faults.values())} ({kinds}) lost={len(verdict.lost)} "
        f"duplicates={len(verdict.duplicates)} order_violations={len(verdict.order)} "
        f"unexpected={len(verdict.unexpected)} multi_terminal={len(verdict.multi_terminal)} "
        f"ledger_used={0 if not verdict.ledger else 1} crashes={len(chaos.fleet.crashes)} "
        f"elapsed={chaos.elapsed():.0f}s -> {'PASS' if verdict.passed else 'FAIL'}"
    )


# --- the run ----------------------------------------------------------------------------------


def platform_env(
    pg: Postgres, redis_server: RedisServer, root: Path, run_log: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="draconic.settings",
        DATABASE_URL=pg.url("chaos"),
        REDIS_URL=redis_server.url(),
        CELERY_BROKER_URL=redis_server.url(),
        DRACONIC_LEASE_SECONDS="3",
        DRACONIC_REQUEUE_AFTER_SECONDS="5",
        DRACONIC_RETRY_BASE_SECONDS="0.2",
        DRACONIC_RETRY_MAX_SECONDS="2",
        DRACONIC_HANDLER_MODULES="tests.chaos_handlers",
        DRACONIC_SCHEDULER_TICK_SECONDS="0.3",
        DB_CONNECT_TIMEOUT="2",
        MAX_CPU_UNITS="12",
        MAX_MEMORY_MB="4096",
        DRACONIC_EXPORT_DIR=str(root / "exports"),
        EMAIL_FILE_PATH=str(root / "mail"),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env[RUN_LOG_ENV] = str(run_log)
    return env


def setup_django(env: dict[str, str], pg: Postgres) -> Any:
    """Point this process at our services, create the database and the owner of the jobs."""
    import psycopg2

    os.environ.update(env)
    os.environ["LOG_LEVEL"] = "WARNING"  # the load driver's own transitions are not news
    conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE chaos")
    conn.close()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return get_user_model().objects.create_user("chaos")


def keep_logs(root: Path) -> Path:
    target = ROOT / "var" / f"chaos-failed-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for path in root.glob("*.log"):
        shutil.copy(path, target / path.name)
    return target


def run(args: argparse.Namespace, root: Path, cleanup: list[Any]) -> int:
    taken: set[int] = set()
    pg = Postgres(root, free_port(args.port_base, taken))
    redis_server = RedisServer(root, free_port(args.port_base, taken))
    run_log = root / "runs.log"
    pg.init()
    pg.start()
    cleanup.append(lambda: pg.stop("immediate"))
    redis_server.start()
    cleanup.append(redis_server.kill)
    env = platform_env(pg, redis_server, root, run_log)
    owner = setup_django(env, pg)
    plan = make_plan(args.jobs, 50, random.Random(args.seed))
    fleet = Fleet(root, env)
    cleanup.append(fleet.stop)
    for name in ("w1", "w2"):
        fleet.add_worker(name)
    for name in ("s1", "s2"):
        fleet.add_scheduler(name)
    chaos = Chaos(root=root, pg=pg, redis=redis_server, fleet=fleet, plan=plan)
    say(
        f"{plan.total} jobs in {len(plan.batches)} batches; postgres :{pg.port}, redis :{redis_server.port}, "
        f"2 workers, 2 schedulers, seed {args.seed}"
    )
    finished = drive(chaos, owner, QUICK_FAULTS if args.quick else FULL_FAULTS, args.timeout)
    if not finished:
        say(f"hang guard: not every job ended within {args.timeout:.0f}s")
    verdict = verify(chaos, run_log)
    fleet.revive()
    if not verdict.passed:
        explain(verdict)
    if not verdict.passed or fleet.crashes:
        say(f"process logs kept in {keep_logs(root)}")
    if fleet.crashes:
        say(f"processes that exited by themselves: {fleet.crashes}")
    say(f"evidence: {evidence(chaos, run_log)}")
    say(summary(chaos, verdict))
    return 0 if verdict.passed else 1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="how many jobs (default 2000, --quick 500)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a shorter run for CI: 500 jobs, 7 faults"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="hang guard in seconds (default 600)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed of the load")
    parser.add_argument(
        "--port-base", type=int, default=int(os.environ.get("CHAOS_PORT_BASE", 18700))
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (500 if args.quick else 2000)
    args.seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    root = Path(tempfile.mkdtemp(prefix="draconic-chaos-"))
    cleanup: list[Any] = []
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args, root, cleanup)
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for step in reversed(cleanup):
            with contextlib.suppress(Exception):
                step()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
