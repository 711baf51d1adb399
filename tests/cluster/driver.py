"""The PostgreSQL driver of the cluster's processes is the one requirements.txt pins.

Django uses psycopg 3 whenever it can be imported, before psycopg2. When requirements.txt pins
psycopg2 and not psycopg, a psycopg 3 found in the environment was put there by something
else (another tool sharing the virtualenv), and would silently change the driver under the
engine's statements (``jobs/engine/prepared.py`` quotes with psycopg2). Then ``shim_path``
is a directory whose ``psycopg`` package refuses to import, to be put first on PYTHONPATH.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from tests.harness import ROOT

SHIM = Path(__file__).resolve().parent / "psycopg2_only"


def shim_path() -> str | None:
    """The directory to put first on PYTHONPATH, or None when the environment is as pinned."""
    pins = (ROOT / "requirements.txt").read_text()
    wants_psycopg2 = re.search(r"^psycopg2(-binary)?==", pins, re.M) is not None
    wants_psycopg3 = re.search(r"^psycopg(\[[^\]]*\])?==", pins, re.M) is not None
    if wants_psycopg2 and not wants_psycopg3 and importlib.util.find_spec("psycopg"):
        return str(SHIM)
    return None
