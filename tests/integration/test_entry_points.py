"""Job types from installed packages (entry points ``draconic.job_types``), loaded at start-up.

Each test makes a real, tiny distribution (a package and its ``*.dist-info`` with
``entry_points.txt``, as pip would install it) in a temporary directory, puts that directory
on the ``PYTHONPATH`` of a new Python process and starts Django there, the way every Draconic
process starts: nothing is installed into the shared environment."""

from __future__ import annotations

import json
from pathlib import Path

from tests.distributions import start_django as start
from tests.distributions import write_distribution as distribution

ACME = {
    "acme_jobs/__init__.py": '''
        from draconic_sdk import job_type

        @job_type("acme.thumbnail", cpu_units=2)
        def thumbnail(url: str, size: int = 128) -> dict:
            """A thumbnail of the image at url."""
            return {"url": url, "size": size}
    ''',
    "acme_jobs/single.py": """
        from draconic_sdk import job_type

        @job_type("acme.single")
        def single(n: int) -> int:
            return n
    """,
    "acme_jobs/classes.py": '''
        from jobs.types import Handler

        class Ping(Handler):
            """Answers pong."""
            def run(self, ctx):
                return "pong"
    ''',
}
ACME_POINTS = """
    [draconic.job_types]
    acme = acme_jobs
    single = acme_jobs.single:single
    acme.ping = acme_jobs.classes:Ping
"""


def test_a_packages_entry_points_add_its_types_at_start_up(tmp_path: Path) -> None:
    distribution(tmp_path, "acme-jobs", "1.2", ACME_POINTS, ACME)
    done = start(tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    types = loaded["types"]
    assert {"acme.thumbnail", "acme.single", "acme.ping", "send_email"} <= set(types)
    assert types["acme.thumbnail"]["defaults"] == {"cpu_units": 2}
    assert types["acme.thumbnail"]["payload_schema"]["required"] == ["url"]
    assert types["acme.ping"]["payload_schema"] == {"type": "object"}
    assert types["acme.ping"]["description"] == "Answers pong."
    assert sorted(loaded["entry_points"]) == [
        "acme-jobs 1.2: acme = acme_jobs",
        "acme-jobs 1.2: acme.ping = acme_jobs.classes:Ping",
        "acme-jobs 1.2: single = acme_jobs.single:single",
    ]


def test_an_entry_point_that_cannot_load_stops_start_up_naming_its_distribution(
    tmp_path: Path,
) -> None:
    distribution(tmp_path, "acme-jobs", "1.2", ACME_POINTS, ACME)
    broken = {"broken_jobs/__init__.py": "import no_such_dependency_here\n"}
    points = "[draconic.job_types]\nbroken = broken_jobs\n"
    distribution(tmp_path, "broken-jobs", "0.3", points, broken)
    done = start(tmp_path)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert (
        "the distribution broken-jobs 0.3 declares the job-type entry point 'broken'" in done.stderr
    )
    assert "No module named 'no_such_dependency_here'" in done.stderr


def test_an_entry_point_that_is_not_a_job_type_stops_start_up(tmp_path: Path) -> None:
    files = {"odd_jobs/__init__.py": "VALUE = 42\n"}
    distribution(tmp_path, "odd-jobs", "1.0", "[draconic.job_types]\nodd = odd_jobs:VALUE\n", files)
    done = start(tmp_path)
    assert done.returncode != 0
    assert "odd-jobs 1.0" in done.stderr
    assert "is not a module, a draconic_sdk JobType or a jobs.types.Handler class" in done.stderr


def test_a_type_name_two_packages_claim_stops_start_up(tmp_path: Path) -> None:
    distribution(tmp_path, "acme-jobs", "1.2", ACME_POINTS, ACME)
    files = {
        "rival_jobs/__init__.py": """
            from draconic_sdk import job_type

            @job_type("acme.thumbnail")
            def thumbnail(url: str) -> str:
                return url
        """
    }
    distribution(tmp_path, "rival-jobs", "2.0", "[draconic.job_types]\nrival = rival_jobs\n", files)
    done = start(tmp_path)
    assert done.returncode != 0
    assert "rival-jobs 2.0" in done.stderr and "already registered" in done.stderr
