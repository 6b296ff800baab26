import dataclasses
import json
import typing as tp

import pytest

from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.files import atomic_write_json


@dataclasses.dataclass
class Cfg:
    name: str
    epochs: int = 1
    lr: float = 0.1
    batchnorm: bool = False
    arch: tp.Literal["vgg11", "vgg16"] = "vgg11"
    limit: int | None = None
    dims: list[int] = dataclasses.field(default_factory=lambda: [64, 96])

    def validate(self):
        if self.epochs < 1:
            raise ConfigError("key 'epochs' must be >= 1")


def test_defaults_and_int_to_float():
    c = load_config(Cfg, {"name": "x", "lr": 1})
    assert c.epochs == 1 and c.lr == 1.0 and isinstance(c.lr, float) and c.dims == [64, 96]


@pytest.mark.parametrize("raw, key", [
    ({"name": "x", "batchnorm": "false"}, "batchnorm"),   # the reference's truthy string
    ({"name": "x", "epochs": 2.5}, "epochs"),
    ({"name": "x", "epochs": True}, "epochs"),             # a bool is not an int
    ({"name": "x", "lr": "0.1"}, "lr"),
    ({"name": "x", "arch": "vgg13"}, "arch"),
    ({"name": "x", "dims": [64, "96"]}, "dims"),
    ({"name": "x", "limit": "none"}, "limit"),
    ({"name": "x", "fma_meta_path": "a"}, "fma_meta_path"),  # the reference's silent typo
    ({}, "name"),
    ({"name": "x", "epochs": 0}, "epochs"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=repr(key)):
        load_config(Cfg, raw)


def test_string_boolean_gets_a_hint():
    with pytest.raises(ConfigError, match="without quotes"):
        load_config(Cfg, {"name": "x", "batchnorm": "false"})


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(Cfg, tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(Cfg, tmp_path / "list.json")


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_json(tmp_path / "a" / "r.json", {"x": 1})
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == {"x": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["r.json"]
    assert (tmp_path / "a" / "r.json").stat().st_mode & 0o044  # readable by others, not 0600
