"""The API's JSON parser: like DRF's, but every body it accepts can be stored and rendered.

DRF's ``JSONParser`` lets three kinds of input through that fail later with a 500 or an
anonymous database error: nesting deep enough to exhaust the recursion limit
(``RecursionError`` is not a ``ValueError``), numbers that overflow to infinity (``1e400``),
and lone UTF-16 surrogates (``"\\ud800"``), which PostgreSQL and the UTF-8 renderer refuse.
This parser answers all three with a 400 ``ParseError``.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]

# A JSON escape of a UTF-16 surrogate; only then can the parsed data hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(JSONParser):
    """Parses a JSON body; raises ``ParseError`` (400) for anything it could not store."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _SURROGATE_ESCAPE.search(text):
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except (UnicodeEncodeError, RecursionError):
                raise ParseError(
                    "JSON parse error - a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
                ) from None
        return data
