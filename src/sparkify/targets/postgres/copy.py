"""Arrow record batches as PostgreSQL binary COPY data, encoded a column at a time.

psycopg's `write_row` turns every value into a Python object and back
(ENVIRONMENT.md: under 1 M narrow rows/s, far less for a 9-column fact
row). Here each column becomes its length words and values in one
NumPy/Arrow call, and one Arrow kernel joins the pieces of every row, so no
Python code runs per row and the client stays well ahead of the server.
Memory: a few copies of one slice of at most CHUNK_BYTES.

`ahead` runs the reading and encoding on a thread, a bounded number of
slices ahead of the writer: the client then encodes the next rows while the
server ingests the last ones, instead of each waiting on the other (a
blocking write returns only once most of a slice is in the socket).

The format (PostgreSQL docs, "COPY ... BINARY"): a signature, then per row
an int16 field count and per field an int32 length (-1 for NULL) and the
value in network byte order; an int16 -1 ends the data.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01 UTC, PostgreSQL's timestamp epoch, in microseconds after the Unix epoch."""

CHUNK_BYTES = 64 << 20
"""Largest slice encoded at once: bounds memory and keeps Arrow's 32-bit offsets safe."""

T = TypeVar("T")
_END = object()

_BYTES = pa.binary()
_EMPTY = pa.scalar(b"", _BYTES)

_FIXED: dict[pa.DataType, tuple[str, str]] = {
    pa.int64(): ("bigint", ">i8"),
    pa.int32(): ("integer", ">i4"),
    pa.float64(): ("double precision", ">f8"),
}
_TEXT = (pa.string(), pa.large_string())


def pg_type(arrow_type: pa.DataType) -> str:
    """The PostgreSQL type a column of this Arrow type is copied into."""
    if arrow_type in _FIXED:
        return _FIXED[arrow_type][0]
    if arrow_type in _TEXT:
        return "text"
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        return "timestamptz"
    raise TypeError(f"no binary COPY encoding for Arrow type {arrow_type}")


def _binary(data: np.ndarray, width: int) -> pa.Array:
    """Equal-width byte strings laid end to end, as a variable-width Arrow array."""
    count = len(data) // width
    offsets = np.arange(count + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(_BYTES, count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _words(lengths: np.ndarray) -> pa.Array:
    """Each row's int32 length word (-1: NULL)."""
    return _binary(lengths.astype(">i4").view(np.uint8), 4)


def _pieces(column: pa.Array) -> list[pa.Array]:
    """One column's part of every row: the length word, then the value."""
    kind = column.type
    if kind in _TEXT:
        data = column.cast(pa.large_binary() if kind == pa.large_string() else _BYTES).cast(_BYTES)
        lengths = pc.binary_length(data).fill_null(-1).to_numpy()
        return [_words(lengths), data.fill_null(b"")]
    if pa.types.is_timestamp(kind):
        micros = column.cast(pa.timestamp("us", kind.tz)).cast(pa.int64())
        values, be_dtype = pc.subtract(micros.fill_null(PG_EPOCH_US), PG_EPOCH_US).to_numpy(), ">i8"
    elif kind in _FIXED:
        values, be_dtype = column.fill_null(0).to_numpy(), _FIXED[kind][1]
    else:
        raise TypeError(f"no binary COPY encoding for Arrow type {kind}")
    width = np.dtype(be_dtype).itemsize
    if not column.null_count:
        matrix = np.empty((len(values), 4 + width), dtype=np.uint8)
        matrix[:, :4] = np.frombuffer(struct.pack("!i", width), dtype=np.uint8)
        matrix[:, 4:] = values.astype(be_dtype).view(np.uint8).reshape(-1, width)
        return [_binary(matrix.reshape(-1), 4 + width)]
    valid = column.is_valid()
    encoded = pc.if_else(valid, _binary(values.astype(be_dtype).view(np.uint8), width), _EMPTY)
    return [_words(np.where(valid.to_numpy(zero_copy_only=False), width, -1)), encoded]


def _encode(batch: pa.RecordBatch) -> pa.Buffer:
    count = np.frombuffer(struct.pack("!h", batch.num_columns), dtype=np.uint8)
    parts = [_binary(np.tile(count, batch.num_rows), 2)]
    for column in batch.columns:
        parts.extend(_pieces(column))
    rows = pc.binary_join_element_wise(*parts, _EMPTY)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4)
    return rows.buffers()[2][int(offsets[0]):int(offsets[-1])]


def encode(batch: pa.RecordBatch) -> Iterator[pa.Buffer]:
    """The rows of `batch` in binary COPY form (no signature, no trailer), in slices."""
    per_row = batch.nbytes / max(batch.num_rows, 1) + 4 * batch.num_columns + 2
    step = max(1, int(CHUNK_BYTES // per_row))
    for start in range(0, batch.num_rows, step):
        yield _encode(batch.slice(start, step))


def stream(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Buffer | bytes]:
    """A whole binary COPY input: signature, every batch's rows, trailer."""
    yield SIGNATURE
    for batch in batches:
        yield from encode(batch)
    yield TRAILER


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items`, produced on a thread at most `depth` items ahead of the consumer.

    The producer's exception is raised in the consumer; a consumer that stops
    early (an error while writing) stops the producer before returning, so
    nothing reads the source after this generator is closed.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="pgcopy-encode", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
