"""``python -m tests.chaos [--quick] ...``: the fault-injection run (``make chaos``)."""

from __future__ import annotations

import sys

from tests.chaos.run import main

sys.exit(main())
