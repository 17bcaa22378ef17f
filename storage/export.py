"""Streaming export of the public views to CSV, JSON lines or Parquet, never holding everything in
memory: rows come from a server-side cursor in chunks and go straight to the writer."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO

from sqlalchemy import Engine, text

VIEWS = {"claims": "v_claims", "articles": "v_articles", "quantities": "v_quantities"}
CHUNK = 2000


def _rows(engine: Engine, what: str, since: datetime | None) -> tuple[list[str], Iterator[list[tuple]]]:
    view = VIEWS[what]
    sql = f"SELECT * FROM {view}"  # noqa: S608 - view name from the fixed mapping above
    params = {}
    if since is not None:
        sql += " WHERE published_at >= :since"
        params["since"] = since.replace(tzinfo=None) if engine.dialect.name == "sqlite" else since
    sql += " ORDER BY 1"
    conn = engine.connect().execution_options(stream_results=True, yield_per=CHUNK)
    result = conn.execute(text(sql), params)
    columns = list(result.keys())

    def chunks() -> Iterator[list[tuple]]:
        try:
            for partition in result.partitions(CHUNK):
                yield [tuple(r) for r in partition]
        finally:
            result.close()
            conn.close()

    return columns, chunks()


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def export(engine: Engine, what: str, fmt: str, out: IO, since: datetime | None = None) -> int:
    """Write the view ``what`` to ``out`` (text stream for csv/jsonl, binary for parquet). Returns rows."""
    columns, chunks = _rows(engine, what, since)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for chunk in chunks:
            writer.writerows([[_plain(v) for v in row] for row in chunk])
            count += len(chunk)
    elif fmt == "jsonl":
        for chunk in chunks:
            for row in chunk:
                out.write(
                    json.dumps({c: _plain(v) for c, v in zip(columns, row, strict=True)}, ensure_ascii=False) + "\n"
                )
            count += len(chunk)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        schema = None
        for chunk in chunks:
            data = {
                c: [
                    _plain(row[i]) if isinstance(row[i], date) and not isinstance(row[i], datetime) else row[i]
                    for row in chunk
                ]
                for i, c in enumerate(columns)
            }
            table = pa.table(data) if schema is None else pa.table(data, schema=schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(out, schema)
            writer.write_table(table)
            count += len(chunk)
        if writer is None:
            pq.write_table(pa.table({c: pa.array([], pa.string()) for c in columns}), out)
        else:
            writer.close()
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return count
