"""Arrow record batches as PostgreSQL binary COPY data, encoded a column at a time.

psycopg's `write_row` turns every value into a Python object and back
(ENVIRONMENT.md: under 1 M narrow rows/s, far less for a 9-column fact
row). Here each column becomes its binary COPY fields in one Arrow/NumPy
call, and the fields of a row are joined by one Arrow kernel, so the
client encodes many times faster than the server ingests and no Python
code runs per row. Memory: a few copies of one record batch.

The format (PostgreSQL docs, "COPY ... BINARY"): a signature, then per row
an int16 field count and per field an int32 length (-1 for NULL) and the
value in network byte order; an int16 -1 ends the data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
NULL_FIELD = struct.pack("!i", -1)
PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01 UTC, PostgreSQL's timestamp epoch, in microseconds after the Unix epoch."""

_BYTES = pa.large_binary()
_EMPTY = pa.scalar(b"", _BYTES)
_NULL = pa.scalar(NULL_FIELD, _BYTES)

_FIXED: dict[pa.DataType, tuple[str, str]] = {
    pa.int64(): ("bigint", ">i8"),
    pa.int32(): ("integer", ">i4"),
    pa.float64(): ("double precision", ">f8"),
}
_TEXT = (pa.string(), pa.large_string(), pa.string_view())


def pg_type(arrow_type: pa.DataType) -> str:
    """The PostgreSQL type a column of this Arrow type is copied into."""
    if arrow_type in _FIXED:
        return _FIXED[arrow_type][0]
    if arrow_type in _TEXT:
        return "text"
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        return "timestamptz"
    raise TypeError(f"no binary COPY encoding for Arrow type {arrow_type}")


def _fixed_fields(values: np.ndarray, be_dtype: str) -> pa.Array:
    """Length word and big-endian value of every row, as one fixed-width matrix."""
    width = np.dtype(be_dtype).itemsize
    matrix = np.empty((len(values), 4 + width), dtype=np.uint8)
    matrix[:, :4] = np.frombuffer(struct.pack("!i", width), dtype=np.uint8)
    matrix[:, 4:] = values.astype(be_dtype).view(np.uint8).reshape(-1, width)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 + width), len(values), [None, pa.py_buffer(matrix)])
    return fixed.cast(_BYTES)


def _field(column: pa.Array) -> pa.Array:
    """Every row's encoded field (length word and value) for one column."""
    kind = column.type
    if kind in _TEXT:
        data = column.cast(_BYTES)
        lengths = pc.binary_length(data).to_numpy(zero_copy_only=False)
        words = np.where(column.is_null().to_numpy(zero_copy_only=False), -1, lengths).astype(">i4")
        prefix = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(words), [None, pa.py_buffer(words)])
        return pc.binary_join_element_wise(prefix.cast(_BYTES), data.fill_null(b""), _EMPTY)
    if pa.types.is_timestamp(kind):
        micros = column.cast(pa.timestamp("us", kind.tz)).cast(pa.int64())
        values = pc.subtract(micros.fill_null(PG_EPOCH_US), PG_EPOCH_US).to_numpy()
        encoded = _fixed_fields(values, ">i8")
    else:
        pg_type(kind)
        encoded = _fixed_fields(column.fill_null(0).to_numpy(), _FIXED[kind][1])
    if column.null_count:
        encoded = pc.if_else(column.is_null(), _NULL, encoded)
    return encoded


def encode(batch: pa.RecordBatch) -> pa.Buffer:
    """The rows of `batch` in binary COPY form (no signature, no trailer)."""
    if batch.num_rows == 0:
        return pa.py_buffer(b"")
    count = struct.pack("!h", batch.num_columns)
    counts = pa.array([count], _BYTES).take(np.zeros(batch.num_rows, dtype=np.int64))
    rows = pc.binary_join_element_wise(counts, *(_field(c) for c in batch.columns), _EMPTY)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=len(rows) + 1, offset=rows.offset * 8)
    return rows.buffers()[2][int(offsets[0]):int(offsets[-1])]


def stream(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Buffer | bytes]:
    """A whole binary COPY input: signature, every batch's rows, trailer."""
    yield SIGNATURE
    for batch in batches:
        if batch.num_rows:
            yield encode(batch)
    yield TRAILER
