"""Importing Magenta's NSynth checkpoint without TensorFlow.

The fixture (``tests/fixtures/nsynth_tiny``, written by ``make_nsynth_fixture.py`` with
TensorFlow) is Magenta's ``h512_bo16`` graph at reduced widths, saved by TensorFlow, with the
encodings and logits TensorFlow computed. Through the real importer the torch model must give
the same numbers, and fast generation from the imported weights must equal naive. Damaged,
truncated and incomplete checkpoints give an error naming the variable.
"""

import json
import shutil
import struct
import tarfile

import google_crc32c
import numpy as np
import pytest
import torch

from deepaudio.core.errors import ToolkitError
from deepaudio.networks.checkpoint import load_wavenet
from deepaudio.networks.nsynth import import_nsynth, load_magenta
from deepaudio.networks.tf_checkpoint import TABLE_MAGIC, Checkpoint, CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def fixture_dir(request):
    return request.config.rootpath / "tests" / "fixtures" / "nsynth_tiny"


@pytest.fixture
def expected(fixture_dir):
    with np.load(fixture_dir / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def test_imported_run_gives_tensorflows_codes_and_logits(fixture_dir, expected, tmp_path):
    summary = import_nsynth(fixture_dir, tmp_path / "nsynth")
    widths = json.loads(str(expected["config"]))
    cfg = summary["config"]
    assert (cfg["enc_channels"], cfg["residual_channels"], cfg["skip_channels"]) == (
        widths["ae_width"], widths["width"], widths["skip_width"])
    assert (cfg["enc_layers"], cfg["dec_layers"], cfg["layout"]) == (12, 12, "magenta")
    assert summary["checkpoint"] == "model.ckpt-200000"
    model = load_wavenet(tmp_path / "nsynth")             # the run loads like a trained one
    stored = json.loads((tmp_path / "nsynth" / "config.json").read_text())
    assert stored["preset"] == "nsynth" and stored["imported_from"]["checkpoint"]

    model = model.double()
    wav = torch.from_numpy(expected["wav"]).double()
    codes = model.encode(wav)                              # (B, 16, frames)
    assert codes.shape == (2, 16, 2)
    assert np.abs(codes.numpy().transpose(0, 2, 1) - expected["encoding"]).max() < 1e-4
    with torch.no_grad():
        logits = model.decode(wav, codes)                   # (B, 256, T)
    assert np.abs(logits.numpy().transpose(0, 2, 1) - expected["logits"]).max() < 1e-4
    # and the numbers are not trivially small: the check has teeth
    assert np.abs(expected["logits"]).max() > 1 and np.abs(expected["encoding"]).max() > 0.1


def test_fast_generation_from_imported_weights_equals_naive(fixture_dir, expected):
    model = load_magenta(fixture_dir).double()
    codes = model.encode(torch.from_numpy(expected["wav"]).double())
    n = 300
    for sampling in ("greedy", "sample"):
        fast = model.generate(codes, n, method="fast", sampling=sampling, seed=3)
        naive = model.generate(codes, n, method="naive", sampling=sampling, seed=3)
        assert np.array_equal(fast, naive)
    assert len(np.unique(fast)) > 10


def test_import_from_magentas_tar(fixture_dir, expected, tmp_path):
    archive = tmp_path / "wavenet-ckpt.tar"
    with tarfile.open(archive, "w") as tar:
        for f in fixture_dir.iterdir():
            if f.name != "expected.npz":
                tar.add(f, arcname=f"wavenet-ckpt/{f.name}")
    import_nsynth(archive, tmp_path / "run")
    model = load_wavenet(tmp_path / "run")
    codes = model.encode(torch.from_numpy(expected["wav"]))
    assert np.abs(codes.numpy().transpose(0, 2, 1) - expected["encoding"]).max() < 1e-4
    with pytest.raises(ToolkitError, match="not empty"):
        import_nsynth(archive, tmp_path / "run")


# -- a minimal writer of TensorFlow's bundle format, to make incomplete checkpoints ---------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)                 # one restart point, at 0


def write_bundle(prefix, tensors: dict[str, np.ndarray]) -> None:
    data, entries = bytearray(), [(b"", _field(1, 0, _varint(1)))]     # header: 1 shard
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        shape = b"".join(_field(2, 2, _varint(len(d)) + d)
                         for d in (_field(1, 0, _varint(n)) for n in a.shape))
        msg = (_field(1, 0, _varint(1)) + _field(2, 2, _varint(len(shape)) + shape)
               + _field(4, 0, _varint(len(data))) + _field(5, 0, _varint(a.nbytes))
               + _field(6, 5, struct.pack("<I", _masked_crc(a.tobytes()))))
        entries.append((name.encode(), msg))
        data += a.tobytes()
    out = bytearray()

    def put(block: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(block))
        out.extend(block + b"\0" + struct.pack("<I", _masked_crc(block + b"\0")))
        return handle

    data_handle = put(_block(entries))
    meta_handle = put(_block([]))
    index_handle = put(_block([(entries[-1][0], data_handle)]))
    footer = meta_handle + index_handle
    out += footer + b"\0" * (40 - len(footer)) + struct.pack("<Q", TABLE_MAGIC)
    (prefix.parent / f"{prefix.name}.index").write_bytes(bytes(out))
    (prefix.parent / f"{prefix.name}.data-00000-of-00001").write_bytes(bytes(data))


def _model_tensors(fixture_dir) -> dict[str, np.ndarray]:
    ckpt = Checkpoint(fixture_dir)
    return {n: ckpt.tensor(n) for n in ckpt.names() if n.endswith(("/W", "/biases"))
            and "/Adam" not in n}


def test_a_rewritten_checkpoint_imports_the_same(fixture_dir, expected, tmp_path):
    write_bundle(tmp_path / "model.ckpt-1", _model_tensors(fixture_dir))
    model = load_magenta(tmp_path / "model.ckpt-1")
    codes = model.encode(torch.from_numpy(expected["wav"]))
    assert np.abs(codes.numpy().transpose(0, 2, 1) - expected["encoding"]).max() < 1e-4


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop("res_7/W"), "variable 'res_7/W' is not in the checkpoint"),
    (lambda t: t.pop("cond_map_out1/biases"), "'cond_map_out1/biases' is not in"),
    (lambda t: t.update({"skip_3/W": t["skip_3/W"][:, :, :, :4]}),
     r"variable 'skip_3/W' has shape \(1, 1, 16, 4\), expected \(1, 1, 16, 8\)"),
    (lambda t: t.update({"dilatedconv_2/W": t["dilatedconv_2/W"][:, :2]}),
     r"'dilatedconv_2/W' has shape \(1, 2, 16, 32\), expected \(1, 3, 16, 32\)"),
])
def test_incomplete_or_misshapen_checkpoint_names_the_variable(fixture_dir, tmp_path, change,
                                                               message):
    tensors = _model_tensors(fixture_dir)
    change(tensors)
    write_bundle(tmp_path / "model.ckpt-1", tensors)
    with pytest.raises(CheckpointError, match=message):
        import_nsynth(tmp_path / "model.ckpt-1", tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert not list(tmp_path.glob(".run*"))                 # no half-written run either


def test_truncated_or_damaged_data_names_the_variable(fixture_dir, tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    shutil.copytree(fixture_dir, ckpt_dir)
    shard = ckpt_dir / "model.ckpt-200000.data-00000-of-00001"
    full = shard.read_bytes()
    shard.write_bytes(full[:len(full) // 2])
    with pytest.raises(CheckpointError, match=r"truncated: variable '[\w/]+' needs bytes"):
        import_nsynth(ckpt_dir, tmp_path / "run")
    damaged = bytearray(full)
    entry = Checkpoint(ckpt_dir).entry("logits/W")
    damaged[entry.offset + 10] ^= 0x40
    shard.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="variable 'logits/W' is damaged"):
        import_nsynth(ckpt_dir, tmp_path / "run")
    index = ckpt_dir / "model.ckpt-200000.index"
    index.write_bytes(index.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        import_nsynth(ckpt_dir, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ToolkitError, match="not found"):
        import_nsynth(tmp_path / "nothing", tmp_path / "run")
    (tmp_path / "junk.tar").write_bytes(b"\0" * 1024)
    with pytest.raises(CheckpointError):
        import_nsynth(tmp_path / "junk.tar", tmp_path / "run")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"expected one TensorFlow checkpoint"):
        import_nsynth(empty, tmp_path / "run")
