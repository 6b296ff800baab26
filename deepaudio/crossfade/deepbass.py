"""DeepBass' ``config.ini``: its sections and keys, validated, and a default file.

The ini is read with configparser (no interpolation, so ``%`` in a path is literal) with
``[DEFAULT]`` treated as an ordinary section: configparser would otherwise copy
``SamplingRate`` into every section, and unknown keys could not be told from inherited ones.
Each section is a dataclass checked by :func:`config.load_config`; the strings of the ini are
converted by the field types first, so ``Time=-1``, ``Style=Foo`` and ``Flag=maybe`` are
errors that name the section and the key. Keys are case-insensitive, as in configparser.

DeepBass' ``CreateConfig`` stored the integer 30, which Python 3's configparser refuses
("option values must be strings"), so its first run crashed; :func:`default_ini` writes strings
only. ``~`` in paths is expanded (DeepBass left it literal).
"""

from __future__ import annotations

import configparser
import dataclasses
import io
import os
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.audio import resample, save_audio
from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.files import atomic_write_bytes
from deepaudio.crossfade.measures import roughness
from deepaudio.crossfade.neural import crossfade_neural
from deepaudio.crossfade.plots import plot_encodings, plot_transitions
from deepaudio.crossfade.songs import crossfade_songs, write_output

# DeepBass' style names (lower-cased) -> ours (deepaudio.crossfade.render.RAMPS / NEURAL_RAMPS)
INI_SIMPLE_STYLES = {"linear": "linear", "sigmoid": "sigmoid", "random_linear": "random_linear",
                     "equal_power": "equal_power", "equalpower": "equal_power",
                     "logarithmic": "logarithmic", "s_curve": "s_curve", "scurve": "s_curve"}
INI_NSYNTH_STYLES = {"linearfade": "linear", "hannfade": "hann", "equalpowerfade": "equal_power"}


@dataclasses.dataclass
class DefaultSection:
    samplingrate: int = 16000          # Hz of every output of the config run

    def validate(self) -> None:
        if not 8000 <= self.samplingrate <= 192000:
            raise ConfigError(f"SamplingRate must be 8000..192000 Hz, got {self.samplingrate}")


@dataclasses.dataclass
class NSynthSection:
    style: str = "LinearFade"          # LinearFade | HannFade | EqualPowerFade (of encodings)
    time: float = 4.0                  # seconds decoded by the WaveNet

    def validate(self) -> None:
        if self.style.lower() == "extend":
            raise ConfigError("Style Extend was never implemented in DeepBass either; use "
                              "LinearFade, HannFade or EqualPowerFade")
        if self.style.lower() not in INI_NSYNTH_STYLES:
            raise ConfigError(f"Style must be LinearFade, HannFade or EqualPowerFade, got "
                              f"{self.style!r}")
        if not 0 < self.time <= 60:
            raise ConfigError(f"Time must be in (0, 60] seconds, got {self.time}")


@dataclasses.dataclass
class SimpleSection:
    style: str = "Linear"              # Linear | Sigmoid | Random_Linear, and our ramps
    time: float = 4.0                  # overlap in seconds
    context: float = 4.0              # seconds of A before and B after the overlap (ours)
    seed: int = 0                      # Random_Linear's switch pattern (ours)

    def validate(self) -> None:
        if self.style.lower() not in INI_SIMPLE_STYLES:
            raise ConfigError(f"Style must be one of Linear, Sigmoid, Random_Linear, "
                              f"Equal_Power, Logarithmic, S_Curve; got {self.style!r}")
        if not self.time > 0:
            raise ConfigError(f"Time must be a positive number of seconds, got {self.time}")
        if not self.context >= 0:
            raise ConfigError(f"Context must be >= 0 seconds, got {self.context}")


@dataclasses.dataclass
class PreprocessSection:
    sr_window_duration: float = 30.0   # seconds searched for silence at each edge
    threshold: float = 0.15            # fraction of the song's RMS (DeepBass: 15 %) (ours)

    def validate(self) -> None:
        if not self.sr_window_duration > 0:
            raise ConfigError(f"SR window duration must be positive, got "
                              f"{self.sr_window_duration}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"Threshold must be in (0, 1), got {self.threshold}")


@dataclasses.dataclass
class IOSection:
    firstsong: str = "first.mp3"       # file name in Load Directory (or an absolute path)
    secondsong: str = "second.mp3"
    load_directory: str = "~/DeepBass/songs"
    save_directory: str = "~/DeepBass/output"
    save_name: str = "crossfade"
    model_weights: str = ""            # a wavenet run folder; empty: no NSynth-style fade

    def validate(self) -> None:
        for key, value in (("FirstSong", self.firstsong), ("SecondSong", self.secondsong),
                           ("Save Name", self.save_name)):
            if not value.strip():
                raise ConfigError(f"{key} must not be empty")
        if "/" in self.save_name or os.sep in self.save_name:
            raise ConfigError(f"Save Name must be a file name without folders, got "
                              f"{self.save_name!r}")


@dataclasses.dataclass
class PlotSection:
    flag: bool = True                  # write PNG figures next to the audio


# ini section -> (dataclass, {ini key: field}); the ini spelling is what errors name
SECTIONS: dict[str, tuple[type, dict[str, str]]] = {
    "DEFAULT": (DefaultSection, {"SamplingRate": "samplingrate"}),
    "NSynth XFade Settings": (NSynthSection, {"Style": "style", "Time": "time"}),
    "Simple XFade Settings": (SimpleSection, {"Style": "style", "Time": "time",
                                              "Context": "context", "Seed": "seed"}),
    "Preprocess": (PreprocessSection, {"SR window duration": "sr_window_duration",
                                       "Threshold": "threshold"}),
    "IO": (IOSection, {"FirstSong": "firstsong", "SecondSong": "secondsong",
                       "Load Directory": "load_directory", "Save Directory": "save_directory",
                       "Save Name": "save_name", "Model Weights": "model_weights"}),
    "Plot": (PlotSection, {"Flag": "flag"}),
}


@dataclasses.dataclass
class DeepBassConfig:
    default: DefaultSection
    nsynth: NSynthSection
    simple: SimpleSection
    preprocess: PreprocessSection
    io: IOSection
    plot: PlotSection

    def path(self, value: str, base: str | None = None) -> Path:
        """A path of the [IO] section, ``~`` expanded; relative names resolve in ``base``."""
        p = Path(os.path.expanduser(value))
        if base is not None and not p.is_absolute():
            p = Path(os.path.expanduser(base)) / p
        return p

    @property
    def first_song(self) -> Path:
        return self.path(self.io.firstsong, self.io.load_directory)

    @property
    def second_song(self) -> Path:
        return self.path(self.io.secondsong, self.io.load_directory)

    @property
    def save_dir(self) -> Path:
        return self.path(self.io.save_directory)

    @property
    def weights(self) -> Path | None:
        return self.path(self.io.model_weights) if self.io.model_weights.strip() else None


def _convert(raw: str, hint: tp.Any, where: str, key: str) -> tp.Any:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]           # DeepBass wrote Flag='True'
    try:
        if hint is bool:
            lowered = value.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
    except ValueError:
        kind = {bool: "True or False", int: "an integer", float: "a number"}[hint]
        raise ConfigError(f"{where}: {key} must be {kind}, got {raw!r}") from None
    return value


class _IniParser(configparser.ConfigParser):
    """Keys keep DeepBass' spelling (configparser lower-cases them), so errors quote the key as
    the user wrote it and a written default keeps ``SamplingRate``."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def read_ini(path: str | os.PathLike) -> DeepBassConfig:
    """Parse and validate a DeepBass ``config.ini``; missing sections and keys take defaults."""
    path = Path(os.path.expanduser(path))
    parser = _IniParser(interpolation=None, default_section="\0none")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config ({e})") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as e:
        raise ConfigError(f"{path}: not a valid ini file ({' '.join(str(e).split())})") from None
    by_lower = {s.lower(): s for s in SECTIONS}
    values: dict[str, dict] = {s: {} for s in SECTIONS}
    for section in parser.sections():
        name = by_lower.get(section.lower())
        if name is None:
            raise ConfigError(f"{path}: unknown section [{section}] (sections: "
                              f"{', '.join(f'[{s}]' for s in SECTIONS)})")
        cls, keys = SECTIONS[name]
        hints = tp.get_type_hints(cls)
        key_by_lower = {k.lower(): k for k in keys}
        where = f"{path} [{name}]"
        for key, raw in parser.items(section):
            ini_key = key_by_lower.get(key.lower())
            if ini_key is None:
                raise ConfigError(f"{where}: unknown key {key!r} (keys: {', '.join(keys)})")
            field = keys[ini_key]
            values[name][field] = _convert(raw, hints[field], where, ini_key)
    sections: dict[str, tp.Any] = {}
    for name, (cls, _) in SECTIONS.items():
        sections[name] = load_config(cls, values[name], where=f"{path} [{name}]")
    return DeepBassConfig(default=sections["DEFAULT"], nsynth=sections["NSynth XFade Settings"],
                          simple=sections["Simple XFade Settings"],
                          preprocess=sections["Preprocess"], io=sections["IO"],
                          plot=sections["Plot"])


def default_ini() -> str:
    """The text of a default config.ini: every section and key, all values strings."""
    parser = _IniParser(interpolation=None, default_section="\0none")
    for name, (cls, keys) in SECTIONS.items():
        defaults = cls()
        parser.add_section(name)
        for ini_key, field in keys.items():
            parser.set(name, ini_key, str(getattr(defaults, field)))
    buf = io.StringIO()
    parser.write(buf)
    return ("# DeepBass-compatible crossfade config: python crossfade.py -config_fname "
            "config.ini\n" + buf.getvalue())


def write_default_ini(path: str | os.PathLike) -> Path:
    path = Path(os.path.expanduser(path))
    atomic_write_bytes(path, default_ini().encode())
    return path


def _roughness_txt(path: Path, audio: np.ndarray, sr: int) -> float:
    value = roughness(audio, sr)["roughness"]
    atomic_write_bytes(path, f"{value:f}\n".encode())
    return value


def run_deepbass(config_path, *, log=print) -> list[Path]:
    """DeepBass' main_simple (+ main_NSynth when ``Model Weights`` is set) from a config.ini."""
    cfg = read_ini(config_path)
    save, name, sr = cfg.save_dir, cfg.io.save_name, cfg.default.samplingrate
    style = INI_SIMPLE_STYLES[cfg.simple.style.lower()]
    out = crossfade_songs(cfg.first_song, cfg.second_song, sr=sr, style=style,
                          seconds=cfg.simple.time, context=cfg.simple.context,
                          seed=cfg.simple.seed, threshold=cfg.preprocess.threshold,
                          max_trim=cfg.preprocess.sr_window_duration)
    i0, n = out["overlap_start"], out["overlap"]
    ov = slice(i0, i0 + n)
    parts = {"end_trim.wav": out["part_a"][:, ov], "begin_trim.wav": out["part_b"][:, ov],
             "end_faded.wav": out["part_a"][:, ov] * out["g_out"][ov].astype(np.float32),
             "begin_faded.wav": out["part_b"][:, ov] * out["g_in"][ov].astype(np.float32)}
    written = [save_audio(save / f, x, sr, sample_format="float") for f, x in parts.items()]
    written.append(write_output(save / f"{name}_simple.wav", out, {"config": str(config_path)}))
    rough = save / f"{name}_simple_roughness.txt"
    _roughness_txt(rough, out["audio"][:, ov], sr)
    written += [rough, save / f"{name}_simple.json"]
    if cfg.plot.flag:
        written.append(plot_transitions({style: out}, save / f"{name}_simple.png"))
    if cfg.weights is not None:
        nstyle = INI_NSYNTH_STYLES[cfg.nsynth.style.lower()]
        neural = crossfade_neural(cfg.first_song, cfg.second_song, cfg.weights, style=nstyle,
                                  seconds=cfg.nsynth.time, context=cfg.simple.context,
                                  threshold=cfg.preprocess.threshold,
                                  max_trim=cfg.preprocess.sr_window_duration)
        neural_sr = neural["sr"]
        if sr != neural_sr:     # the WaveNet works at 16 kHz; outputs follow SamplingRate
            neural["audio"] = resample(neural["audio"], neural_sr, sr)
            neural["sr"] = sr
            neural["sidecar"]["sr"] = sr
        written.append(write_output(save / f"{name}_NSynth.wav", neural))
        np.save(save / "a_end_enc.npy", np.asarray(neural["enc_a"]))
        np.save(save / "b_begin_enc.npy", np.asarray(neural["enc_b"]))
        written += [save / "a_end_enc.npy", save / "b_begin_enc.npy",
                    save_audio(save / "end.wav", neural["x1"], neural_sr, sample_format="float"),
                    save_audio(save / "begin.wav", neural["x2"], neural_sr,
                               sample_format="float")]
        rough = save / f"{name}_nsynth_roughness.txt"
        _roughness_txt(rough, neural["decoded"][None], neural_sr)
        written.append(rough)
        if cfg.plot.flag:
            written.append(plot_encodings(neural, save / f"{name}_NSynth.png"))
    for p in written:
        log(f"wrote {p}")
    return written
