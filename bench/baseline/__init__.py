"""The DRF baseline: the same body validation and ONE ORM insert, served by the same gunicorn
configuration as the platform. It is what a plain DRF "create" endpoint costs on this machine;
the platform's submission is measured against it."""

from __future__ import annotations
