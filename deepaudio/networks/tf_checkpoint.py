"""TensorFlow checkpoints read without TensorFlow (the V2 "tensor bundle" format).

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus data shards
``PREFIX.data-00000-of-0000N``. The index is a LevelDB table (sorted string table): data
blocks of prefix-compressed ``key → value`` entries with restart points, an index block
pointing at them, and a 48-byte footer (two block handles, then the magic number). The key
``""`` holds the bundle's header; every other key is a tensor name whose value is a
``BundleEntryProto``: dtype, shape, shard, offset and size in that shard, and the masked
CRC-32C of the tensor's bytes. Tensors are stored raw, little-endian, row-major.

Only what a checkpoint written by ``tf.train.Saver`` / ``tf.train.Checkpoint`` uses is read:
uncompressed blocks and whole (unsliced) numeric tensors. Every block's and every tensor's
checksum is verified, so a truncated or damaged file is an error naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import google_crc32c
import numpy as np

from deepaudio.core.errors import ToolkitError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
# TensorFlow's DataType enum → NumPy (the numeric types a checkpoint of weights holds)
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
          9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32,
          23: np.uint64}


class CheckpointError(ToolkitError):
    """A checkpoint that cannot be read: missing, truncated, damaged or of another format."""


def _unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _crc(data: bytes | memoryview) -> int:
    return google_crc32c.value(bytes(data))


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise IndexError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(msg: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value) pairs in wire order: ints for varint and
    fixed fields, bytes for length-delimited ones (nested messages, strings, packed arrays)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(msg):
        key, pos = _varint(msg, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(msg, pos)
            out.append((number, value))
        elif wire == 1:
            out.append((number, struct.unpack_from("<Q", msg, pos)[0]))
            pos += 8
        elif wire == 2:
            size, pos = _varint(msg, pos)
            if pos + size > len(msg):
                raise ValueError("field runs past the end of the message")
            out.append((number, bytes(msg[pos:pos + size])))
            pos += size
        elif wire == 5:
            out.append((number, struct.unpack_from("<I", msg, pos)[0]))
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


@dataclasses.dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies: ``size`` bytes at ``offset`` in data shard ``shard``."""
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None          # masked, as stored; None when the writer stored none
    sliced: bool


def _entry(name: str, msg: bytes) -> TensorEntry:
    dtype, shape, shard, offset, size, crc, sliced = 0, [], 0, 0, 0, None, False
    for number, value in _fields(msg):
        if number == 1:
            dtype = int(value)
        elif number == 2:
            assert isinstance(value, bytes)
            for dim_number, dim in _fields(value):
                if dim_number == 2:
                    assert isinstance(dim, bytes)
                    sizes = [int(v) for n, v in _fields(dim) if n == 1]
                    shape.append(sizes[0] if sizes else 0)
        elif number == 3:
            shard = int(value)
        elif number == 4:
            offset = int(value)
        elif number == 5:
            size = int(value)
        elif number == 6:
            crc = int(value)
        elif number == 7:
            sliced = True
    return TensorEntry(name, dtype, tuple(shape), shard, offset, size, crc, sliced)


class Checkpoint:
    """A TensorFlow V2 checkpoint: ``names()``, ``entry(name)`` and ``tensor(name)``.

    ``prefix`` is the checkpoint's path without suffix (``.../model.ckpt-200000``), its
    ``.index`` file, or a folder holding exactly one ``*.index`` (or a TensorFlow
    ``checkpoint`` file naming the latest).
    """

    def __init__(self, prefix: str | Path):
        self.prefix = _resolve_prefix(Path(prefix))
        index = Path(f"{self.prefix}.index")
        try:
            self._index = index.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{index}: cannot read ({e.strerror})") from None
        self._where = index
        self.entries: dict[str, TensorEntry] = {}
        self.num_shards = 1
        try:
            self._read_table()
        except (IndexError, ValueError, struct.error) as e:
            raise CheckpointError(f"{index}: not a readable TensorFlow checkpoint index "
                                  f"({e})") from None

    # -- the LevelDB table ------------------------------------------------------------------
    def _block(self, offset: int, size: int) -> bytes:
        data = self._index
        if offset + size + 5 > len(data):
            raise CheckpointError(f"{self._where}: truncated (a block ends past the file)")
        block, kind = data[offset:offset + size], data[offset + size]
        stored = struct.unpack_from("<I", data, offset + size + 1)[0]
        if _unmask(stored) != _crc(data[offset:offset + size + 1]):
            raise CheckpointError(f"{self._where}: damaged (a block's checksum does not match)")
        if kind != 0:
            raise CheckpointError(f"{self._where}: compressed table blocks (type {kind}) are "
                                  "not supported; TensorFlow writes checkpoints uncompressed")
        return block

    @staticmethod
    def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
        n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
        end = len(block) - 4 - 4 * n_restarts
        if end < 0:
            raise ValueError("bad restart array")
        out, pos, key = [], 0, b""
        while pos < end:
            shared, pos = _varint(block, pos)
            unshared, pos = _varint(block, pos)
            size, pos = _varint(block, pos)
            key = key[:shared] + block[pos:pos + unshared]
            pos += unshared
            out.append((key, block[pos:pos + size]))
            pos += size
        return out

    def _read_table(self) -> None:
        data = self._index
        if len(data) < FOOTER_BYTES:
            raise CheckpointError(f"{self._where}: truncated (shorter than a table footer)")
        footer = data[-FOOTER_BYTES:]
        if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
            raise CheckpointError(f"{self._where}: not a TensorFlow checkpoint index (no table "
                                  "magic number at its end; truncated?)")
        _, pos = _varint(footer, 0)                                    # metaindex offset
        _, pos = _varint(footer, pos)                                  # metaindex size
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        for _, handle in self._block_entries(self._block(index_offset, index_size)):
            offset, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
            for key, value in self._block_entries(self._block(offset, size)):
                if key == b"":
                    for number, v in _fields(value):
                        if number == 1:
                            self.num_shards = int(v)
                        elif number == 2 and v != 0:
                            raise CheckpointError(f"{self._where}: a big-endian checkpoint; "
                                                  "only little-endian ones are read")
                else:
                    name = key.decode("utf-8", "replace")
                    self.entries[name] = _entry(name, value)

    # -- tensors ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self.entries)

    def shard_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def entry(self, name: str) -> TensorEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise CheckpointError(f"{self.prefix}: variable {name!r} is not in the "
                                  "checkpoint") from None

    def tensor(self, name: str) -> np.ndarray:
        """The tensor named ``name``, its bytes checked against the stored CRC-32C."""
        e = self.entry(name)
        if e.sliced:
            raise CheckpointError(f"{self.prefix}: variable {name!r} is stored in slices "
                                  "(partitioned); not supported")
        if e.dtype not in DTYPES:
            raise CheckpointError(f"{self.prefix}: variable {name!r} has TensorFlow dtype "
                                  f"{e.dtype}, not a numeric type this reader knows")
        dtype = np.dtype(DTYPES[e.dtype]).newbyteorder("<")
        count = int(np.prod(e.shape, dtype=np.int64))
        if count * dtype.itemsize != e.size:
            raise CheckpointError(f"{self.prefix}: variable {name!r}: {e.size} bytes stored "
                                  f"for shape {e.shape}")
        path = self.shard_path(e.shard)
        try:
            with open(path, "rb") as f:
                f.seek(e.offset)
                raw = f.read(e.size)
        except OSError as err:
            raise CheckpointError(f"{path}: cannot read variable {name!r} "
                                  f"({err.strerror})") from None
        if len(raw) != e.size:
            raise CheckpointError(f"{path}: truncated: variable {name!r} needs bytes "
                                  f"{e.offset}…{e.offset + e.size}, the file ends at "
                                  f"{e.offset + len(raw)}")
        if e.crc32c is not None and _unmask(e.crc32c) != _crc(raw):
            raise CheckpointError(f"{path}: variable {name!r} is damaged (its CRC-32C does "
                                  "not match)")
        return np.frombuffer(raw, dtype=dtype).reshape(e.shape).astype(dtype.newbyteorder("="))


def _resolve_prefix(path: Path) -> Path:
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            m = re.search(r'model_checkpoint_path:\s*"([^"]+)"', state.read_text("utf-8",
                                                                                  "replace"))
            if m and Path(f"{path / Path(m.group(1)).name}.index").is_file():
                return path / Path(m.group(1)).name
        indexes = sorted(path.glob("*.index"))
        if len(indexes) != 1:
            found = ", ".join(p.name for p in indexes) or "none"
            raise CheckpointError(f"{path}: expected one TensorFlow checkpoint (*.index) in "
                                  f"the folder, found {found}")
        return indexes[0].with_suffix("")
    if path.suffix == ".index":
        return path.with_suffix("")
    if not Path(f"{path}.index").is_file():
        raise CheckpointError(f"{path}: no TensorFlow checkpoint here ({path}.index not "
                              "found)")
    return path
