"""Export (pure but for the lazy pyarrow import): series of runs -> one long table.

Columns: run, scenario, host, metric, cpu, queue, time, value. `time` is seconds since the
host's first sample (the start of the series' window), at the end of each interval; `cpu`
and `queue` are empty where a metric has none. pandas reads the CSV as is
(`pd.read_csv(path)`); parquet needs pyarrow (the optional extra `labctl[parquet]`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

from labctl.errors import LabctlError
from labctl.runfiles.series import SeriesFile

if TYPE_CHECKING:
    import pyarrow

COLUMNS = ("run", "scenario", "host", "metric", "cpu", "queue", "time", "value")
Row = tuple[str, str, str, str, int | None, str | None, float, float]


class ExportError(LabctlError):
    """An export that cannot be written (a format whose library is missing)."""


def export_rows(series: Iterable[SeriesFile]) -> Iterator[Row]:
    """The long table's rows, run by run, host by host, line by line; missing values left out."""
    for run in series:
        for host, data in sorted(run.hosts.items()):
            for line in data.lines:
                for time, value in zip(data.times, line.values):
                    if value is not None:
                        yield (run.run_id, run.scenario, host, line.metric, line.cpu, line.queue,
                               time, value)


def write_csv(rows: Iterable[Row], stream: TextIO) -> int:
    """The table as CSV (header first); returns the number of rows written."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
        count += 1
    return count


def parquet_table(rows: Iterable[Row]) -> pyarrow.Table:
    """The table as a pyarrow Table (cpu: nullable int64; queue: nullable string)."""
    try:
        import pyarrow
    except ImportError:
        raise ExportError("--format parquet needs pyarrow, which is not installed: "
                          "pip install 'labctl[parquet]' (or pyarrow), or use --format csv") from None
    columns: list[list[object]] = [[] for _ in COLUMNS]
    for row in rows:
        for column, cell in zip(columns, row):
            column.append(cell)
    types = [pyarrow.string(), pyarrow.string(), pyarrow.string(), pyarrow.string(),
             pyarrow.int64(), pyarrow.string(), pyarrow.float64(), pyarrow.float64()]
    return pyarrow.table({name: pyarrow.array(values, type=kind)
                          for name, values, kind in zip(COLUMNS, columns, types)})
