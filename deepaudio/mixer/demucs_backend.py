"""Demucs (the ``demucs`` 4.1 package) as a separation backend, with memory bounded on long songs.

``demucs.api.Separator.separate_tensor`` holds the track, the normalised copy, the shifted copy
and 4 stems (plus temporaries) in memory at once, which is how Demucs reaches ~7 GiB for an
hour of audio. Here the model is loaded through ``Separator`` (the real loading code: Hugging
Face cache, torch hub cache, or a local repo folder), but the chunk loop of
``demucs.apply.apply_model`` runs here, chunk by chunk on the same grid with the same
triangular blending and the same shift trick, and every finished stretch of output is appended
to the stem files at once. The result equals ``apply_model`` on the whole track (checked in the
tests); memory is the input plus a few chunks.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.audio import decode_in_blocks, to_channels
from deepaudio.core.download import OFFLINE_ENV, offline_requested
from deepaudio.mixer.stems import ProgressFn, SeparationError, UnknownModelError

_DEMUCS_CACHE: dict[tuple, LoadedDemucs] = {}


def _remote_files(model: str) -> tuple[list[str], dict[str, str]]:
    """The signatures of a named Demucs model and the download URL of each weights file,
    from the tables shipped inside the demucs package."""
    import yaml
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files
    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")
    bag = REMOTE_ROOT / f"{model}.yaml"
    sigs = yaml.safe_load(bag.read_text())["models"] if bag.is_file() else [model]
    return sigs, {s: urls[s] for s in sigs if s in urls}


def _repo_has(repo: Path, model: str) -> tuple[bool, list[str]]:
    import yaml
    weights = {p.stem.rsplit("-", 1)[0] if "-" in p.stem else p.stem
               for p in repo.glob("*.th")}
    bag = repo / f"{model}.yaml"
    if bag.is_file():
        try:
            sigs = yaml.safe_load(bag.read_text())["models"]
        except Exception:
            return False, [f"{bag.name} (unreadable: expected 'models: [...]')"]
        missing = [s for s in sigs if s not in weights]
        return not missing, [f"{s}-*.th" for s in missing]
    return model in weights, [f"{model}.yaml"]


def check_demucs_weights(model: str = "htdemucs", repo: str | os.PathLike | None = None
                         ) -> None:
    """Raise SeparationError, saying which files to put where, when the weights of ``model``
    are not on this machine (a local ``repo`` folder, the Hugging Face cache or the torch hub
    cache). Checking first avoids a download attempt that can only fail offline."""
    sigs, urls = _remote_files(model)
    files = [u.rsplit("/", 1)[1] for u in urls.values()]
    how = (f"Put {model}.yaml (containing: models: {sigs}) and "
           + ", ".join(f"{f} (from {u})" for f, u in zip(files, urls.values()))
           + " in one folder and pass it with --demucs-repo; or copy "
           + ", ".join(files) + " into " + str(Path(_torch_hub_dir()) / "checkpoints")
           + "; or use the offline 'dsp' backend.") if urls else (
           "Pass the folder holding its .th file (and .yaml for a bag) with --demucs-repo, "
           "or use the offline 'dsp' backend.")
    if repo is not None:
        repo = Path(repo)
        if not repo.is_dir():
            raise SeparationError(f"Demucs repo folder {repo} not found. {how}")
        ok, missing = _repo_has(repo, model)
        if not ok:
            raise SeparationError(f"Demucs model {model!r} is not in {repo} (missing "
                                  f"{', '.join(missing)}). {how}")
        return
    if _hf_cached(model, sigs) or (urls and all(
            (Path(_torch_hub_dir()) / "checkpoints" / f).is_file() for f in files)):
        return
    if not urls:
        raise UnknownModelError(f"unknown Demucs model {model!r}: it is not a model or "
                                f"signature demucs knows. {how}")
    raise SeparationError(f"Demucs weights for {model!r} are not on this machine and cannot "
                          f"be downloaded offline (--offline or {OFFLINE_ENV}). {how}")


MODEL_NOTES = {"htdemucs": "4 stems, the default", "htdemucs_ft": "4 stems, a bag of 4 "
               "fine-tuned models (4x slower, better)", "htdemucs_6s": "6 stems: + guitar, piano",
               "hdemucs_mmi": "4 stems, hybrid Demucs v3", "mdx_extra": "4 stems, MDX challenge"}


def known_models() -> list[str]:
    """The named models demucs ships tables for (fetched from the hub or its legacy repo)."""
    from demucs.pretrained import REMOTE_ROOT
    return sorted(p.stem for p in REMOTE_ROOT.glob("*.yaml"))


def models_help() -> str:
    return "; ".join(f"{m} ({MODEL_NOTES[m]})" if m in MODEL_NOTES else m
                     for m in known_models())


_REACHABLE: dict[tp.Any, tuple[float, bool]] = {}
REACHABLE_TTL_S = 300.0


def hub_reachable(model: str, timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``) answers for ``model``'s bag right now:
    a HEAD request, remembered for ``REACHABLE_TTL_S`` seconds, so that ``auto`` does not
    choose Demucs on a machine that cannot fetch it (no network, a proxy, a firewall)."""
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    endpoint = os.environ.get("HF_ENDPOINT") or None
    key = (endpoint or "", model)
    now = time.monotonic()
    if key in _REACHABLE and now - _REACHABLE[key][0] < REACHABLE_TTL_S:
        return _REACHABLE[key][1]
    try:
        repo_id = f"{DEFAULT_NAMESPACE}/{hf_repo_name(model)}"
        get_hf_file_metadata(hf_hub_url(repo_id, f"{model}.yaml", endpoint=endpoint),
                             timeout=timeout)
        ok = True
    except Exception as e:          # an answer that the model is not there is an answer
        ok = type(e).__name__ in ("RepositoryNotFoundError", "EntryNotFoundError",
                                  "RemoteEntryNotFoundError", "RevisionNotFoundError")
    _REACHABLE[key] = (now, ok)
    return ok


def weights_on_machine(model: str, repo: str | os.PathLike | None = None) -> bool:
    """Whether ``model`` loads without a download (from ``repo`` or either cache)."""
    try:
        check_demucs_weights(model, repo)
        return True
    except SeparationError:
        return False


def fetch_demucs_weights(model: str, *, offline: bool | None = None,
                         progress: ProgressFn | None = None) -> dict:
    """Download ``model`` from the Hugging Face hub into its cache, where demucs looks first:
    ``<model>.yaml`` (the bag) and one ``<sig>.safetensors`` per model in it, with
    ``progress(fraction, "fetching weights")`` over their bytes. ``HF_ENDPOINT`` points at a
    mirror. The hub client resumes an interrupted file and renames it into the cache only when
    whole; each weights file is then checked against the SHA-256 the hub gives as its ETag
    (a mismatch is deleted). A model the hub cannot give (not there, or the hub unreachable)
    that demucs' tables list in its legacy repo is fetched from there instead, as demucs itself
    falls back (:func:`_fetch_legacy`). Offline (``offline``, ``DEEPAUDIO_OFFLINE=1`` or
    ``HF_HUB_OFFLINE=1``) nothing connects and the error says which files go where.
    Returns ``{"repo_id", "files", "bytes"}``."""
    import hashlib

    import yaml
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from tqdm.auto import tqdm

    if offline_requested(offline) or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true"):
        check_demucs_weights(model)                     # raises, naming the files
        return {"repo_id": None, "files": [], "bytes": 0}
    repo_id = f"{DEFAULT_NAMESPACE}/{hf_repo_name(model)}"
    report = progress or (lambda f, s: None)
    endpoint = os.environ.get("HF_ENDPOINT") or None     # read now, not at import
    try:
        bag = yaml.safe_load(Path(hf_hub_download(repo_id, f"{model}.yaml",
                                                  endpoint=endpoint)).read_text())
        names = [f"{sig}.safetensors" for sig in bag["models"]]
        metas = {n: get_hf_file_metadata(hf_hub_url(repo_id, n, endpoint=endpoint))
                 for n in names}
    except Exception as e:
        sigs, urls = _remote_files(model)
        if urls and len(urls) == len(sigs):     # demucs' legacy repo has it: fetch from there
            return _fetch_legacy(model, urls, report, f"the Hugging Face hub: {_reason(e)}")
        if type(e).__name__ in ("RepositoryNotFoundError", "EntryNotFoundError",
                                "RemoteEntryNotFoundError", "RevisionNotFoundError"):
            raise UnknownModelError(f"unknown Demucs model {model!r}: the Hugging Face hub has "
                                    f"no {repo_id} with {model}.yaml") from None
        raise SeparationError(f"cannot fetch Demucs model {model!r} from the Hugging Face hub "
                              f"({repo_id}): {_reason(e)}") from None
    total = sum(int(m.size or 0) for m in metas.values()) or 1
    done = [0]

    class Bar(tqdm):                  # the hub client's progress, into the job's
        def update(self, n=1):
            done[0] += n or 0
            report(min(1.0, done[0] / total), "fetching weights")
            return super().update(n)

    paths = []
    for name in names:
        try:
            path = Path(hf_hub_download(repo_id, name, tqdm_class=Bar, endpoint=endpoint))
        except Exception as e:
            raise SeparationError(f"fetching {name} of Demucs model {model!r} from {repo_id} "
                                  f"failed ({_reason(e)}); run again to resume") from None
        expected = (metas[name].etag or "").strip('"')
        if len(expected) == 64:                         # an LFS file: the ETag is its SHA-256
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != expected:
                path.unlink(missing_ok=True)
                raise SeparationError(f"{name} of Demucs model {model!r} does not match its "
                                      "checksum; it was deleted, run again to fetch it anew")
        paths.append(path)
    report(1.0, "fetching weights")
    return {"repo_id": repo_id, "files": [p.name for p in paths],
            "bytes": sum(p.stat().st_size for p in paths)}


def _fetch_legacy(model: str, urls: dict[str, str], report: ProgressFn, why: str) -> dict:
    """Fetch ``model``'s weights from demucs' legacy repo (the URLs in demucs' own tables)
    into the torch hub cache, where demucs' loader looks for them: resumable, each file checked
    against the SHA-256 prefix in its name (``<sig>-<sha256[:8]>.th``, as torch.hub checks)."""
    from deepaudio.core.download import DownloadError, download
    folder = Path(_torch_hub_dir()) / "checkpoints"
    paths = []
    for i, url in enumerate(urls.values()):
        name = url.rsplit("/", 1)[1]
        digest = name.rsplit(".", 1)[0].split("-", 1)[1] if "-" in name else None

        def step(done: int, total: int | None, i: int = i) -> None:
            report(min(1.0, (i + (done / total if total else 0.0)) / len(urls)),
                   "fetching weights")

        try:
            paths.append(download(url, folder / name, sha256=digest, progress=step,
                                  desc=name))
        except DownloadError as e:
            raise SeparationError(f"cannot fetch Demucs model {model!r} ({why}; demucs' legacy "
                                  f"repo: {_reason(e)}); run again to resume") from None
    report(1.0, "fetching weights")
    return {"repo_id": "legacy", "files": [p.name for p in paths],
            "bytes": sum(p.stat().st_size for p in paths)}


def legacy_reachable(model: str, timeout: float = 3.0) -> bool:
    """Whether demucs' legacy repo answers for the first weights file of ``model`` (a HEAD
    request, remembered like :func:`hub_reachable`'s answer)."""
    import urllib.request
    sigs, urls = _remote_files(model)
    if not urls or len(urls) != len(sigs):
        return False
    url = next(iter(urls.values()))
    now = time.monotonic()
    if url in _REACHABLE and now - _REACHABLE[url][0] < REACHABLE_TTL_S:
        return _REACHABLE[url][1]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                    timeout=timeout):
            ok = True
    except Exception:
        ok = False
    _REACHABLE[url] = (now, ok)
    return ok


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def _torch_hub_dir() -> str:
    import torch
    return torch.hub.get_dir()


def _hf_cached(model: str, sigs: list[str]) -> bool:
    try:
        from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    import yaml
    repo_id = f"{DEFAULT_NAMESPACE}/{hf_repo_name(model)}"
    try:
        bag = try_to_load_from_cache(repo_id, f"{model}.yaml")
        if not isinstance(bag, str):
            return False
        try:                # the bag as the hub gave it (its models may differ from demucs')
            sigs = list(yaml.safe_load(Path(bag).read_text())["models"])
        except Exception:
            return False
        return all(isinstance(try_to_load_from_cache(repo_id, f"{s}.safetensors"), str)
                   for s in sigs)
    except ValueError:      # a name the Hub cannot hold (e.g. ending in '-') is not cached
        return False


@dataclasses.dataclass
class LoadedDemucs:
    """A ``demucs.api.Separator`` and the lock that lets one separation at a time use it (one
    run per model at a time keeps memory bounded)."""
    separator: tp.Any
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def model(self):
        return self.separator.model


def load_demucs(model: str = "htdemucs", repo: str | os.PathLike | None = None,
                device: str = "cpu", *, offline: bool | None = None,
                progress: ProgressFn | None = None) -> LoadedDemucs:
    """``model`` loaded through ``demucs.api.Separator`` (kept per process: weights load
    once). Weights that are not on the machine are fetched first (:func:`fetch_demucs_weights`)
    unless offline."""
    key = (model, str(Path(repo).resolve()) if repo else None, device)
    if key in _DEMUCS_CACHE:
        return _DEMUCS_CACHE[key]
    if repo is None and not weights_on_machine(model):
        fetch_demucs_weights(model, offline=offline, progress=progress)
    check_demucs_weights(model, repo)
    from demucs.api import Separator
    try:
        separator = Separator(model=model, repo=Path(repo) if repo else None, device=device,
                              progress=False)
    except SystemExit as e:     # demucs' fatal() exits on a bad repo folder
        raise SeparationError(f"cannot load Demucs model {model!r}: {e}") from None
    except Exception as e:      # ModelLoadingError (checksum), corrupt pickles, bad yaml
        raise SeparationError(f"cannot load Demucs model {model!r}"
                              f"{f' from {repo}' if repo else ''}: {e}") from None
    if len(_DEMUCS_CACHE) >= 2:
        _DEMUCS_CACHE.pop(next(iter(_DEMUCS_CACHE)))
    _DEMUCS_CACHE[key] = loaded = LoadedDemucs(separator)
    return loaded


def _model_segment(model: tp.Any) -> float:
    from demucs.apply import BagOfModels
    if isinstance(model, BagOfModels):
        return min(float(tp.cast(tp.Any, m).segment) for m in model.models)
    return float(model.segment)


class _PassAccumulator:
    """Triangle-weighted overlap-add of one shift pass, over a sliding window of positions."""

    def __init__(self, n_sources: int, channels: int):
        self.base = 0
        self.acc = np.zeros((n_sources, channels, 0), np.float32)
        self.wsum = np.zeros(0, np.float32)

    def add(self, pos: int, out: np.ndarray, w: np.ndarray) -> None:
        end = pos + out.shape[-1]
        if end - self.base > self.wsum.shape[0]:
            grow = end - self.base - self.wsum.shape[0]
            self.acc = np.concatenate([self.acc, np.zeros(self.acc.shape[:2] + (grow,),
                                                          np.float32)], axis=-1)
            self.wsum = np.concatenate([self.wsum, np.zeros(grow, np.float32)])
        self.acc[..., pos - self.base:end - self.base] += w * out
        self.wsum[pos - self.base:end - self.base] += w

    def take(self, start: int, end: int) -> np.ndarray:
        """The finished output on [start, end) (positions), then forget everything before end."""
        a, b = start - self.base, end - self.base
        out = self.acc[..., a:b] / self.wsum[a:b]
        self.acc, self.wsum = self.acc[..., b:].copy(), self.wsum[b:].copy()
        self.base = end
        return out


def demucs_stream(model, mix, *, shifts: int = 1, overlap: float = 0.25,
                  segment: float | None = None, device: str = "cpu",
                  on_output: tp.Callable[[np.ndarray], None],
                  on_progress: tp.Callable[[float], None] | None = None) -> None:
    """Run ``model`` over ``mix`` (1, C, L) exactly as ``apply_model(model, mix, shifts,
    split=True, overlap, segment)`` would, but emit the output as soon as it is final:
    ``on_output`` receives consecutive (sources, C, n) float32 blocks covering [0, L).

    The chunk grid, the triangular weights and the shift offsets (``random.randint(0,
    max_shift)`` per pass, in order) are apply_model's, so with the same ``random`` state the
    result is the same. Passes are interleaved in time order, so only a few chunks are held.
    Progress comes from Demucs' own per-chunk callback.
    """
    import torch
    from demucs.apply import TensorChunk, apply_model

    sr = model.samplerate
    length = mix.shape[-1]
    seg = segment if segment is not None else _model_segment(model)
    seg_len = int(sr * seg)
    stride = int((1 - overlap) * seg_len)
    weight = torch.cat([torch.arange(1, seg_len // 2 + 1),
                        torch.arange(seg_len - seg_len // 2, 0, -1)]).float()
    weights = (weight / weight.max()).numpy()
    if shifts:
        max_shift = int(0.5 * sr)
        padded = TensorChunk(mix).padded(length + 2 * max_shift)
        offsets = [random.randint(0, max_shift) for _ in range(shifts)]
        tracks = [TensorChunk(padded, o, length + max_shift - o) for o in offsets]
    else:
        max_shift, offsets, tracks = 0, [0], [TensorChunk(mix)]
    # every chunk of every pass, in order of its start in padded coordinates
    chunks = sorted(((o + off, i, off) for i, (o, t) in enumerate(zip(offsets, tracks))
                     for off in range(0, t.length, stride)))
    passes = [_PassAccumulator(len(model.sources), mix.shape[1]) for _ in tracks]
    for p, o in zip(passes, offsets):
        p.base = o
    next_start = [o for o in offsets]           # per pass: first position not yet final
    pending = {i: [c for c in chunks if c[1] == i] for i in range(len(tracks))}
    flushed = max_shift                         # padded coordinate of original sample 0
    state = {"done": 0}

    def callback(d: dict) -> None:
        if on_progress is not None and d["state"] == "end":
            within = (d["model_idx_in_bag"] + 1) / d["models"]
            on_progress((state["done"] + within) / len(chunks))

    for start, i, off in chunks:
        chunk = TensorChunk(tracks[i], off, seg_len)
        out = apply_model(model, chunk, shifts=0, split=False, overlap=overlap,
                          device=device, segment=segment, callback=callback)
        block_out = out[0].to("cpu").numpy()
        passes[i].add(start, block_out, weights[:block_out.shape[-1]])
        state["done"] += 1
        pending[i].pop(0)
        next_start[i] = pending[i][0][0] if pending[i] else offsets[i] + tracks[i].length
        final = min(min(next_start), max_shift + length)
        if final > flushed:
            block = np.mean([p.take(flushed, final) for p in passes], axis=0)
            # passes whose windows start later than `flushed` cannot have data there:
            on_output(block.astype(np.float32, copy=False))
            flushed = final


def demucs_separate(song: Path, writer_factory, *, model: str, repo, device: str,
                     shifts: int, overlap: float, segment: float | None,
                     progress: ProgressFn, offline: bool | None = None) -> dict:
    import torch
    progress(0.0, "loading model")
    separator = load_demucs(model, repo, device, offline=offline,
                            progress=lambda f, s: progress(0.0, f"{s} {100 * f:.0f} %"))
    m = separator.model
    audio = decode_in_blocks(song, m.samplerate, progress, share=0.02)
    audio = audio[:2] if audio.shape[0] > 2 else to_channels(audio, m.audio_channels)
    wav = torch.from_numpy(audio)
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8       # as Separator.separate_tensor
    wav -= mean
    wav /= std
    del ref, audio
    writer = writer_factory(m.samplerate, list(m.sources))
    t0 = time.time()
    try:
        with separator.lock:
            demucs_stream(m, wav[None], shifts=shifts, overlap=overlap, segment=segment,
                          device=device,
                          on_output=lambda b: writer.write(b * std.item() + mean.item()),
                          on_progress=lambda f: progress(0.02 + 0.93 * f, "separating"))
    except BaseException:
        writer.abort()
        raise
    return {"writer": writer, "separation_seconds": time.time() - t0,
            "shifts": shifts, "overlap": overlap}
