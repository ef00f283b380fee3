"""The one typed configuration of a run (SPEC section 9).

A :class:`RunConfig` is frozen and made of sections (``data``, ``encoder``, ``devices``,
``search``, ``hypernet``, ``pareto``, ``final``, ``compute``) plus the run's only ``seed``. It is
read from a YAML or JSON file (``--config FILE``), overridden by ``--set section.key=value``
(repeatable; ``devices.<name>.key=value`` addresses one device), and saved resolved as
``RUN/config.yaml``. Every stage's seed derives from ``seed`` (:func:`stage_seeds`).

Layers: defaults < profile (``quick``) < file < ``--set``. Unknown keys fail with the key,
the file, the valid keys and the closest match; wrong types name the key, value and type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from linas._errors import ConfigError, closest
from linas.distill import FinalTrainConfig
from linas.pareto.strategies import ParetoConfig
from linas.search import HypernetConfig, SearchConfig

BUDGET_MS = 160.0  # C3: 100 images in 16 s
STAGES = ("data", "encoder", "lut", "search", "pareto", "final")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DataConfig:
    """The dataset: a registered loader ``kind`` over ``root`` at the run size ``size``.

    ``fit``: what to do when ``size`` is not runnable (H, W multiples of 32): ``refuse``,
    ``resize`` (to the nearest runnable size) or ``pad`` (bottom/right, masks with the ignore
    index). ``n_images`` is for ``synthetic`` only; ``options`` go to the loader (e.g.
    ``category`` for ``mvtec``). ``splits``: train / arch-val / test shares (a layout's own
    test split is honoured).
    """

    kind: str = "synthetic"
    root: str | None = None
    size: tuple[int, int] = (128, 128)
    fit: str = "refuse"
    n_images: int = 320
    splits: tuple[float, float, float] = (0.6, 0.2, 0.2)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EncoderConfig:
    """DenseNet121 weights (``imagenet`` | ``random`` | ``auto`` | a state_dict file) and whether
    it is fine-tuned (no feature cache) or frozen (features cached once)."""

    weights: str = "auto"
    finetune: bool = False


@dataclass(frozen=True)
class MeasureConfig:
    """How a device measured on this machine is timed: its LUT (``warmup``/``repeat`` per
    entry, ``interactions`` fitted from ``fit_archs`` end-to-end runs) and its final model
    (``e2e_warmup``/``e2e_repeat``; in torch also the C3 throughput at each of
    ``throughput_batches``, which must include 1, timed on ``throughput_images`` images and
    stated per 100: scaled when fewer are timed, as the quick profile does)."""

    runtime: str = "torch"
    device: str = "cpu"
    threads: int | None = None
    warmup: int = 3
    repeat: int = 15
    interactions: str = "fit"
    fit_archs: int = 40
    e2e_warmup: int = 10
    e2e_repeat: int = 50
    throughput_batches: tuple[int, ...] = (1, 2, 4, 8, 16)
    throughput_images: int = 100


@dataclass(frozen=True)
class DeviceConfig:
    """One deployment target: a LUT file measured on it, or a ``measure`` block (this
    machine), and its per-image latency budget. ``use_interactions`` (I4): the latency model
    adds the LUT's adjacent-pair terms when it has them; false: fixed part + op sum only."""

    name: str
    budget_ms: float = BUDGET_MS
    lut: str | None = None
    measure: MeasureConfig | None = None
    use_interactions: bool = True

    @property
    def measured_here(self) -> bool:
        """True when the device is this machine (its models can be timed here)."""
        return self.measure is not None


@dataclass(frozen=True)
class SearchSection(SearchConfig):
    """The search stage: a registered ``strategy`` (``bilevel`` baseline | ``hypernet`` I1),
    the device held out of hypernet training (``holdout``), and the schedule and I2 options
    of :class:`~linas.search.SearchConfig`."""

    strategy: str = "bilevel"
    holdout: str | None = None


@dataclass(frozen=True)
class ComputeConfig:
    """Where training runs (search, weight-sharing evaluation, zero-cost scoring, final
    training; latency measurement keeps each device's own ``measure`` settings).

    - ``threads``: intra-op threads (None: torch's default).
    - ``device``: ``auto`` (cuda when available, else cpu), ``cpu``, ``cuda`` or ``cuda:N``.
    - ``precision``: ``fp32``, ``bf16`` or ``fp16`` (autocast; fp16 adds a gradient scaler).
    - ``feature_cache``: where the frozen encoder's features live: ``disk`` (memory-mapped
      under ``RUN/cache/``, read batch by batch: RAM does not grow with the dataset) or
      ``ram``.
    - ``cache_dtype``: ``float32`` or ``float16`` (half the disk and read time).
    - ``checkpoint_every_s``: the least time between two search checkpoints.
    - ``grad_checkpoint``: with ``encoder.finetune``, recompute the encoder's activations in
      the backward pass (less memory, about one more encoder forward per step).
    """

    threads: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    feature_cache: str = "disk"
    cache_dtype: str = "float32"
    checkpoint_every_s: float = 600.0
    grad_checkpoint: bool = False


def _default_devices() -> tuple[DeviceConfig, ...]:
    return (DeviceConfig(name="this-cpu", measure=MeasureConfig()),)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; saved resolved as ``RUN/config.yaml``."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    devices: tuple[DeviceConfig, ...] = field(default_factory=_default_devices)
    search: SearchSection = field(default_factory=SearchSection)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    pareto: ParetoConfig = field(default_factory=ParetoConfig)
    final: FinalTrainConfig = field(default_factory=FinalTrainConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)

    def device(self, name: str) -> DeviceConfig:
        """The device called ``name``.

        Raises:
            ConfigError: no such device, listing the run's devices.
        """
        for dev in self.devices:
            if dev.name == name:
                return dev
        names = [d.name for d in self.devices]
        raise ConfigError(f"device '{name}'{closest(name, names)}: not in this run; devices: "
                          f"{', '.join(names)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, no tuples), stage seeds left out (they derive from ``seed``)."""
        return _plain(self)

    def sha256(self) -> str:
        """Hash of the resolved config (canonical JSON)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# Section fields that are never read from a file: stage seeds derive from the top-level seed.
DERIVED = {"seed"}


def stage_seeds(seed: int) -> dict[str, int]:
    """One independent seed per stage (:data:`STAGES`), derived from the run's ``seed`` with
    ``numpy.random.SeedSequence(seed).spawn``: the same seed gives the same run, another seed
    another data split, search, Pareto sample and final training."""
    children = np.random.SeedSequence(seed).spawn(len(STAGES))
    return {name: int(child.generate_state(1)[0]) for name, child in
            zip(STAGES, children, strict=True)}


# ---- reading ---------------------------------------------------------------------------------

def load_config(path: Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                profile: dict[str, Any] | None = None) -> RunConfig:
    """Build the run config from defaults, a ``profile``, a file and ``--set`` overrides.

    Args:
        path: a YAML or JSON file, or None for the defaults (the demo).
        overrides: ``section.key=value`` strings (values parsed as YAML).
        profile: dotted-key overrides applied under the file (e.g. the quick profile).

    Raises:
        ConfigError: unreadable file, unknown key, bad value or type, bad device list.
    """
    where = str(path) if path is not None else "defaults"
    raw: dict[str, Any] = {}
    profile = profile or {}
    for key, value in profile.items():
        if not key.startswith("devices.*."):
            _set_dotted(raw, key, value, "profile")
    if path is not None:
        _merge(raw, _resolve_paths(read_mapping(Path(path)), Path(path).parent))
    for text in overrides:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set '{text}': expected section.key=value, e.g. "
                              "--set search.batch_size=8")
        parsed = _parse_value(value)
        if _is_path_key(key.strip()) and isinstance(parsed, str):
            parsed = _absolute(parsed, Path.cwd())
        _set_dotted(raw, key.strip(), parsed, "--set")
        where = f"{where} + --set"
    # after --set too: a device list given by --set gets the profile's defaults as well
    _apply_device_profile(raw, {k[len("devices.*."):]: v for k, v in profile.items()
                                if k.startswith("devices.*.")})
    cfg = _build(RunConfig, raw, where, "")
    check_config(cfg, where)
    return cfg


def with_overrides(cfg: RunConfig, overrides: dict[str, Any], where: str) -> RunConfig:
    """``cfg`` with dotted-key ``overrides`` on top (``devices.*.key`` sets every device;
    ``devices.*.measure.key`` every measured one), checked like a file.

    Raises:
        ConfigError: an unknown key or a wrong value, naming ``where``.
    """
    raw = cfg.to_dict()
    for key, value in overrides.items():
        if not key.startswith("devices.*."):
            _set_dotted(raw, key, value, where)
            continue
        rest = key[len("devices.*."):]
        for dev in raw["devices"]:
            if not rest.startswith("measure.") or dev.get("measure") is not None:
                _set_dotted(dev, rest, value, where)
    out = _build(RunConfig, raw, where, "")
    check_config(out, where)
    return out


def read_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML / JSON config file.

    Raises:
        ConfigError: missing, unreadable or malformed file, or not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file; write one with "
                          f"`linas init --out {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot be read as UTF-8 text ({exc})") from None
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: not valid YAML/JSON ({str(exc).splitlines()[0]})"
                          ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: top level is a {type(data).__name__}, expected a "
                          "mapping of sections (seed, data, devices, ...)")
    return data


_WEIGHT_NAMES = ("imagenet", "random", "auto")


def _is_path_key(key: str) -> bool:
    return key in ("data.root", "encoder.weights") or (key.startswith("devices.")
                                                        and key.endswith(".lut"))


def _absolute(value: str, base: Path) -> str:
    if value in _WEIGHT_NAMES:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths in a config file are relative to the file's folder."""
    data, enc = raw.get("data"), raw.get("encoder")
    if isinstance(data, dict) and isinstance(data.get("root"), str):
        data["root"] = _absolute(data["root"], base)
    if isinstance(enc, dict) and isinstance(enc.get("weights"), str):
        enc["weights"] = _absolute(enc["weights"], base)
    for dev in raw.get("devices") or []:
        if isinstance(dev, dict) and isinstance(dev.get("lut"), str):
            dev["lut"] = _absolute(dev["lut"], base)
    return raw


def _apply_device_profile(raw: dict[str, Any], values: dict[str, Any]) -> None:
    """Profile keys ``devices.*.measure.<key>``: defaults for every measured device."""
    if not values:
        return
    devices = raw.setdefault("devices", _plain_devices_default())
    for dev in devices if isinstance(devices, list) else []:
        measure = dev.get("measure") if isinstance(dev, dict) else None
        if measure is None:
            continue
        if not isinstance(measure, dict):
            continue
        for key, value in values.items():
            measure.setdefault(key.removeprefix("measure."), value)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(raw: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set ``a.b.c`` in nested dicts; ``devices.<name|index>.key`` edits one device."""
    parts = key.split(".")
    if parts[0] == "devices" and len(parts) >= 3:
        devices = raw.setdefault("devices", [dict(d) for d in _plain_devices_default()])
        if not isinstance(devices, list):
            raise ConfigError(f"{where} {key}: 'devices' is not a list")
        target = _find_device(devices, parts[1], key, where)
        _set_dotted(target, ".".join(parts[2:]), value, where)
        return
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where} {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _plain_devices_default() -> list[dict[str, Any]]:
    """The default device list as a file would write it (unset keys left to defaults)."""
    return [{"name": d.name, "measure": {}} for d in _default_devices()]


def _find_device(devices: list[Any], ref: str, key: str, where: str) -> dict[str, Any]:
    for dev in devices:
        if isinstance(dev, dict) and dev.get("name") == ref:
            return dev
    if ref.isdigit() and int(ref) < len(devices) and isinstance(devices[int(ref)], dict):
        return devices[int(ref)]
    names = [str(d.get("name")) for d in devices if isinstance(d, dict)]
    raise ConfigError(f"{where} {key}: no device '{ref}'{closest(ref, names)}; devices: "
                      f"{', '.join(names)}")


def _merge(base: dict[str, Any], top: dict[str, Any]) -> None:
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _build(cls: type, raw: Any, where: str, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw`` (a mapping), checking keys and types."""
    name = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: '{name}' must be a mapping, got {_show(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)
              if not (prefix and f.name in DERIVED)}
    for key in raw:
        if key not in fields:
            raise ConfigError(_unknown_key(key, prefix, fields, where))
    kwargs = {key: _coerce(hints[key], value, where, f"{prefix}{key}")
              for key, value in raw.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {name}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: '{name}': {exc}") from None


def _unknown_key(key: str, prefix: str, fields: dict[str, Any], where: str) -> str:
    if prefix and key in DERIVED:
        return (f"{where}: '{prefix}{key}': stage seeds derive from the top-level 'seed'; "
                "set `seed:` instead")
    section = prefix.rstrip(".") or "the top level"
    return (f"{where}: unknown key '{prefix}{key}'{closest(key, fields)}; valid keys in "
            f"{section}: {', '.join(fields)}")


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked / converted to the annotated type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if value is None else value, where, f"{key}.")  # type: ignore[arg-type]
    if origin is tuple:
        return _coerce_tuple(args, value, where, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} = {_show(value)}: expected a mapping")
        return dict(value)
    return _coerce_scalar(hint, value, where, key)


def _coerce_tuple(args: tuple[Any, ...], value: Any, where: str, key: str) -> tuple[Any, ...]:
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*[xX]\s*\d+\s*", value):
        value = [int(v) for v in re.split(r"[xX]", value)]  # "480x640"
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: {key} = {_show(value)}: expected a list")
    if len(args) == 2 and args[1] is Ellipsis:
        if key == "devices":
            return _devices(value, where)
        return tuple(_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{where}: {key} = {_show(value)}: expected {len(args)} values")
    return tuple(_coerce(a, v, where, f"{key}[{i}]") for i, (a, v) in
                 enumerate(zip(args, value, strict=True)))


def _devices(value: list[Any] | tuple[Any, ...], where: str) -> tuple[DeviceConfig, ...]:
    out = tuple(_build(DeviceConfig, v, where, f"devices[{i}].") for i, v in enumerate(value))
    return out


def _coerce_scalar(hint: Any, value: Any, where: str, key: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key} = {_show(value)}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key} = {_show(value)}: expected an integer")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not np.isfinite(value):
                raise ConfigError(f"{where}: {key} = {value}: expected a finite number")
            return float(value)
        raise ConfigError(f"{where}: {key} = {_show(value)}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. a device name 3090
        raise ConfigError(f"{where}: {key} = {_show(value)}: expected a string")
    raise ConfigError(f"{where}: {key}: unsupported type {hint}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- validation ------------------------------------------------------------------------------

def check_config(cfg: RunConfig, where: str) -> None:
    """Cross-field checks the types cannot express.

    Raises:
        ConfigError: naming the key, the value and the fix.
    """
    from linas.search import SEARCH_STRATEGIES

    if not cfg.devices:
        raise ConfigError(f"{where}: 'devices' is empty; list at least one device (a `measure:` "
                          "block for this machine or a `lut:` file)")
    names = [d.name for d in cfg.devices]
    for dev in cfg.devices:
        _check_device(dev, where)
        if names.count(dev.name) > 1:
            raise ConfigError(f"{where}: device name '{dev.name}' is used twice; names must be "
                              "unique")
    if cfg.data.kind != "synthetic" and not cfg.data.root:
        raise ConfigError(f"{where}: data.root is not set for data.kind '{cfg.data.kind}'; set "
                          "it to the dataset folder")
    if cfg.data.n_images < 3:
        raise ConfigError(f"{where}: data.n_images = {cfg.data.n_images}: need at least 3")
    from linas.pareto.strategies import PARETO_STRATEGIES

    for key, registry, value in (("search.strategy", SEARCH_STRATEGIES, cfg.search.strategy),
                                 ("pareto.strategy", PARETO_STRATEGIES, cfg.pareto.strategy)):
        try:
            registry.check(value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    if cfg.search.holdout is not None:
        if cfg.search.strategy != "hypernet":
            raise ConfigError(f"{where}: search.holdout = {cfg.search.holdout}: only the hypernet "
                              "strategy holds devices out; set search.strategy: hypernet")
        cfg.device(cfg.search.holdout)
        if len(cfg.devices) < 2:
            raise ConfigError(f"{where}: search.holdout: it is the only device; add devices")
    if cfg.pareto.bn_recal_batches < 0:
        raise ConfigError(f"{where}: pareto.bn_recal_batches = {cfg.pareto.bn_recal_batches}: "
                          "must be >= 0 (0 evaluates without BN recalibration)")
    if cfg.compute.threads is not None and cfg.compute.threads < 1:
        raise ConfigError(f"{where}: compute.threads = {cfg.compute.threads}: must be >= 1")
    _check_compute(cfg.compute, where)


COMPUTE_CHOICES = {"precision": ("fp32", "bf16", "fp16"), "feature_cache": ("disk", "ram"),
                   "cache_dtype": ("float32", "float16")}


def _check_compute(compute: ComputeConfig, where: str) -> None:
    for key, menu in COMPUTE_CHOICES.items():
        value = getattr(compute, key)
        if value not in menu:
            raise ConfigError(f"{where}: compute.{key} = {value!r}{closest(str(value), menu)}: "
                              f"use one of {', '.join(menu)}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", compute.device):
        raise ConfigError(f"{where}: compute.device = {compute.device!r}: use auto, cpu, cuda or "
                          "cuda:N")
    if not compute.checkpoint_every_s >= 0:
        raise ConfigError(f"{where}: compute.checkpoint_every_s = "
                          f"{compute.checkpoint_every_s}: must be >= 0 seconds")


def _check_device(dev: DeviceConfig, where: str) -> None:
    key = f"devices.{dev.name}"
    if not _NAME.match(dev.name):
        raise ConfigError(f"{where}: device name '{dev.name}': use letters, digits, '_', '-', "
                          "'.' (it names folders under deploy/)")
    if (dev.lut is None) == (dev.measure is None):
        raise ConfigError(f"{where}: {key}: give exactly one of `lut: FILE` (measured on the "
                          "device) or `measure: {runtime: torch}` (this machine)")
    if not dev.budget_ms > 0:
        raise ConfigError(f"{where}: {key}.budget_ms = {dev.budget_ms}: must be > 0 ms")
    m = dev.measure
    if m is not None and (m.warmup < 0 or m.repeat < 3 or m.e2e_repeat < 3):
        raise ConfigError(f"{where}: {key}.measure: warmup must be >= 0, repeat and e2e_repeat "
                          ">= 3 (IQR filtering needs samples)")
    batches = () if m is None else m.throughput_batches
    if m is not None and (1 not in batches or min(batches) < 1
                          or len(set(batches)) != len(batches)):
        raise ConfigError(f"{where}: {key}.measure.throughput_batches = {list(batches)}: give "
                          "distinct batch sizes >= 1 that include 1, e.g. [1, 2, 4, 8, 16]")
    if m is not None and m.throughput_images < max(batches):
        raise ConfigError(f"{where}: {key}.measure.throughput_images = {m.throughput_images}: "
                          f"must be at least the largest throughput batch ({max(batches)})")


# ---- writing and comparing -------------------------------------------------------------------

def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        top = isinstance(obj, RunConfig)  # only the top level keeps its seed
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if top or f.name not in DERIVED}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def to_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML (the format of ``RUN/config.yaml``)."""
    head = "# resolved LINAS+ run config (every default filled in); rerun with --config this file\n"
    return head + yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> values; devices are keyed by name (``devices.rpi5.budget_ms``)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "devices" and not prefix and isinstance(value, list):
                for i, dev in enumerate(value):
                    ref = dev.get("name", i) if isinstance(dev, dict) else i
                    out.update(flatten(dev, f"devices.{ref}."))
                out["devices"] = [d.get("name") if isinstance(d, dict) else d for d in value]
            else:
                out.update(flatten(value, f"{prefix}{key}."))
        return out
    out[prefix.rstrip(".")] = data
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two plain configs."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))
