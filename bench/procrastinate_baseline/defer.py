"""``python -m bench.procrastinate_baseline.defer N``: defer N no-op jobs in batches of 1,000
(``batch_defer``, one INSERT each), as the bench submits Draconic's in 1,000-job batches."""

from __future__ import annotations

import os
import sys
from typing import Any

BATCH = 1_000


def main(total: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.procrastinate_baseline.settings")
    import django

    django.setup()
    from bench.procrastinate_baseline.tasks import noop

    for start in range(0, total, BATCH):
        batch: list[dict[str, Any]] = [{"n": i} for i in range(start, min(start + BATCH, total))]
        noop.batch_defer(*batch)


if __name__ == "__main__":
    main(int(sys.argv[1]))
