"""Hides an installed psycopg 3 from the cluster's processes (``tests.cluster.driver``), so
that Django falls back to psycopg2, the driver requirements.txt pins."""

from __future__ import annotations

raise ImportError("psycopg 3 is hidden: requirements.txt pins psycopg2 (tests/cluster/driver.py)")
