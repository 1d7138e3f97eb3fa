"""What the operations commands print: aligned tables for people, ``--json`` for scripts, progress on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

Column = tuple[str, str]  # (key in the row, header)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """``rows`` as a left-aligned text table with ``columns`` (key, header); "(none)" when there are no rows."""
    if not rows:
        return "(none)\n"
    texts = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(header), *(len(t[i]) for t in texts)) for i, (_, header) in enumerate(columns)]
    lines = ["  ".join(header.upper().ljust(w) for (_, header), w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(t.ljust(w) for t, w in zip(text, widths, strict=True)).rstrip() for text in texts]
    return "\n".join(lines) + "\n"


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 1)


def duration(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{value:.1f}s"


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return when(value).replace(" ", "T")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def emit(as_json: bool, data: Any, text: str, out: TextIO | None = None) -> None:
    """``data`` as JSON (``--json``) or ``text`` for people."""
    stream = out or sys.stdout
    stream.write(json.dumps(jsonable(data), indent=2, sort_keys=False) + "\n" if as_json else text)
    stream.flush()


def progress(message: str) -> None:
    """One line of progress on stderr (stdout stays parseable with ``--json``)."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)
