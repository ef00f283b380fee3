"""The run config: file + profile + --set layering, errors that name key, file and fix, seeds."""

from __future__ import annotations

import pytest

from linas._errors import ConfigError
from linas.config import (
    RunConfig,
    config_diff,
    load_config,
    read_mapping,
    stage_seeds,
    to_yaml,
)


def write(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_demo():
    cfg = load_config()
    assert cfg == RunConfig()
    assert cfg.data.kind == "synthetic" and cfg.data.size == (128, 128)
    assert [d.name for d in cfg.devices] == ["this-cpu"] and cfg.devices[0].measured_here
    assert cfg.devices[0].budget_ms == 160.0


def test_the_contract_example_parses(tmp_path):
    (tmp_path / "luts").mkdir()
    path = write(tmp_path, """
seed: 3
data:
  kind: folder
  root: path/to/data
  size: [480, 640]
devices:
  - name: this-cpu
    measure: {runtime: torch}
    budget_ms: 160
  - name: rpi5
    lut: luts/raspberrypi5.json
    budget_ms: 120
""")
    cfg = load_config(path)
    assert cfg.seed == 3 and cfg.data.size == (480, 640)
    assert cfg.device("rpi5").budget_ms == 120.0 and not cfg.device("rpi5").measured_here
    # relative paths in a file are relative to the file's folder
    assert cfg.device("rpi5").lut == str(tmp_path / "luts" / "raspberrypi5.json")
    assert cfg.data.root == str(tmp_path / "path" / "to" / "data")


def test_json_files_and_hxw_strings(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"data": {"size": "96x160"}, "search": {"batch_size": 4}}')
    cfg = load_config(path)
    assert cfg.data.size == (96, 160) and cfg.search.batch_size == 4


def test_set_overrides_file_and_addresses_devices(tmp_path):
    path = write(tmp_path, "search: {batch_size: 4}\n")
    cfg = load_config(path, ["search.batch_size=8", "seed=5",
                             "devices.this-cpu.budget_ms=50", "devices.0.measure.repeat=7"])
    assert cfg.search.batch_size == 8 and cfg.seed == 5
    assert cfg.devices[0].budget_ms == 50.0 and cfg.devices[0].measure.repeat == 7


def test_profile_lies_under_the_file(tmp_path):
    path = write(tmp_path, "search: {search_epochs: 5}\ndevices:\n  - name: a\n    measure: "
                           "{runtime: torch, repeat: 9}\n")
    cfg = load_config(path, profile={"search.search_epochs": 2, "search.warmup_epochs": 1,
                                     "devices.*.measure.repeat": 3,
                                     "devices.*.measure.warmup": 1})
    assert cfg.search.search_epochs == 5 and cfg.search.warmup_epochs == 1
    assert cfg.devices[0].measure.repeat == 9 and cfg.devices[0].measure.warmup == 1


@pytest.mark.parametrize(("text", "needle"), [
    ("search: {calrr: seed}\n", "unknown key 'search.calrr' (did you mean 'calr'?)"),
    ("serch: {}\n", "unknown key 'serch' (did you mean 'search'?)"),
    ("search: {batch_size: many}\n", "search.batch_size = 'many': expected an integer"),
    ("search: {seed: 4}\n", "set `seed:` instead"),
    ("search: {calr: fast}\n", "CaLR"),
    ("devices: []\n", "'devices' is empty"),
    ("devices:\n  - {name: a}\n", "exactly one of `lut: FILE`"),
    ("devices:\n  - {name: a, measure: {}}\n  - {name: a, measure: {}}\n", "used twice"),
    ("devices:\n  - {name: a, measure: {}, budget_ms: -1}\n", "budget_ms = -1"),
    ("devices:\n  - {name: a, measure: {throughput_batches: [4, 8]}}\n",
     "devices.a.measure.throughput_batches = [4, 8]: give distinct batch sizes >= 1 that "
     "include 1"),
    ("devices:\n  - {name: a, measure: {throughput_batches: [1, 8], throughput_images: 4}}\n",
     "devices.a.measure.throughput_images = 4: must be at least the largest throughput batch"),
    ("data: {kind: folder}\n", "data.root is not set"),
    ("search: {strategy: hyper}\n", "hypernet"),
    ("search: {holdout: x}\n", "only the hypernet strategy"),
    ("- 1\n- 2\n", "top level is a list"),
    ("data: [1\n", "not valid YAML"),
])
def test_bad_files_fail_with_key_and_file(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value) or "YAML" in str(err.value) or "list" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_lists_the_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "data: {sise: [64, 64]}\n"))
    assert "valid keys in data: kind, root, size, fit" in str(err.value)


def test_missing_file_and_bad_set():
    with pytest.raises(ConfigError, match="linas init"):
        load_config(__import__("pathlib").Path("/nonexistent/run.yaml"))
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["search.batch_size"])
    with pytest.raises(ConfigError, match="no device 'rpi'"):
        load_config(None, ["devices.rpi.budget_ms=3"])


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_config(None, ["seed=7", "search.calr=seed", "data.size=[64, 96]"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    back = load_config(path)
    assert back == cfg and back.sha256() == cfg.sha256()
    assert config_diff(read_mapping(path), cfg.to_dict()) == []


def test_config_diff_names_keys():
    a = load_config().to_dict()
    b = load_config(None, ["seed=1", "devices.this-cpu.budget_ms=10"]).to_dict()
    assert config_diff(a, b) == ["devices.this-cpu.budget_ms", "seed"]


def test_stage_seeds_derive_from_the_one_seed():
    a, b = stage_seeds(0), stage_seeds(1)
    assert a == stage_seeds(0)
    assert set(a) == {"data", "encoder", "lut", "search", "pareto", "final"}
    assert len(set(a.values())) == len(a)  # independent streams per stage
    assert all(a[k] != b[k] for k in a)
