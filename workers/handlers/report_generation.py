"""The ``report_generation``  job type. (Handler body arrives with the scheduling engine.)"""

from __future__ import annotations

from typing import Any

from workers.handlers import register
from workers.handlers.base import Handler, HandlerError, JobContext


@register("report_generation")
class Handler_report_generation(Handler):
    def run(self, ctx: JobContext) -> Any:
        raise HandlerError("not implemented yet", permanent=True)
