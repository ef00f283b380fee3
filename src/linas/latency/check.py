"""LUT quality checks for ``linas lut check``: every problem of a file, as findings.

Checks run on the raw JSON first (:mod:`linas.latency.check_raw`), so one pass reports *all*
missing keys and bad values (the loader stops at the first); when the file is usable,
statistical checks follow on the :class:`LUT` (spread, width order, a dominant entry, launch
overhead, device naming), and :func:`check_many` adds a cross-device ranking check. A run
checks its LUT objects with :func:`check_lut` / :func:`check_luts`. Pure except for reading
the files.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy.stats import rankdata

from linas._errors import LUTError
from linas.latency.check_raw import MEASURE_HINT, Finding, check_raw, ignored_findings
from linas.latency.lut import LUT, lut_from_dict
from linas.latency.model import LUTLatencyModel
from linas.latency.sums import space_minimum
from linas.space import CHOICE_KEYS, NUM_CHOICES, NUM_LAYERS, OPS, WIDTH_TAGS, Arch

Kind = Literal["gpu", "cpu"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_MEASURE = MEASURE_HINT
_err, _warn, _info = (partial(Finding, sev) for sev in ("error", "warning", "info"))


class DeviceClass(NamedTuple):
    """What a LUT ``hardware`` name stands for: processor kind, family, spec-sheet name."""

    kind: Kind
    family: str
    spec_name: str


# Explicit map of the LUT `hardware` names we know; never guess a class from a loose match.
DEVICE_CLASSES: dict[str, DeviceClass] = {
    "A6000": DeviceClass("gpu", "desktop GPU", "NVIDIA RTX A6000"),
    "RTX3090": DeviceClass("gpu", "desktop GPU", "NVIDIA GeForce RTX 3090"),
    "RTX4090": DeviceClass("gpu", "desktop GPU", "NVIDIA GeForce RTX 4090"),
    "Orin": DeviceClass("gpu", "Jetson Orin", "NVIDIA Jetson Orin (module not recorded)"),
    "RaspberryPi5": DeviceClass("cpu", "ARM CPU", "Raspberry Pi 5 (BCM2712, 4x Cortex-A76)"),
    "Odroid": DeviceClass("cpu", "ARM CPU", "Hardkernel ODROID (board not recorded)"),
}


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the statistical checks (defaults calibrated on the reference LUTs)."""

    max_cv: float = 0.25  # std/mean above this: the entry is too spread to trust
    width_sigmas: float = 2.0  # narrower slower than wider by more than this many stds
    width_rel_tol: float = 0.02  # ... and by more than this fraction of the wider entry
    dominant_ratio: float = 10.0  # entry / its layer's median
    dominant_share: float = 0.5  # entry / slowest architecture
    overhead_width_ratio: float = 1.15  # median w100/w50 below this: launch-overhead bound
    rank_samples: int = 20_000
    rank_seed: int = 0
    rank_alike: float = 0.9  # Spearman with a device of the other kind above this ...
    rank_unlike: float = 0.3  # ... and mean Spearman with its own kind below this


class Profile(NamedTuple):
    """How latency scales over the space: CPUs scale with work, GPUs at batch 1 barely do.

    Reference tables, (width_ratio, kernel_ratio, span): desktop GPUs (1.03-1.04, 1.4-1.8,
    3.3-5.4); ARM CPUs (1.7-1.8, 4.9-21, 10-165).
    """

    width_ratio: float  # median over (layer, op) of w100 / w50
    kernel_ratio: float  # median over (layer, width) of Conv7x7 / Conv3x3
    span: float  # slowest / fastest architecture (sums of op entries)

    @property
    def looks(self) -> str:
        """'cpu' when at least two of the three scale like a CPU, 'gpu' when none does."""
        votes = (self.width_ratio >= 1.4) + (self.kernel_ratio >= 3.0) + (self.span >= 10.0)
        return "cpu" if votes >= 2 else "gpu" if votes == 0 else "mixed"


def latency_profile(mean_ms: np.ndarray) -> Profile:
    """The :class:`Profile` of a (5, 21) mean-latency table."""
    m = np.asarray(mean_ms, dtype=np.float64).reshape(NUM_LAYERS, len(OPS), len(WIDTH_TAGS))
    conv3, conv7 = m[:, OPS.index("Conv3x3")], m[:, OPS.index("Conv7x7")]
    lo, hi = m.reshape(NUM_LAYERS, -1).min(1).sum(), m.reshape(NUM_LAYERS, -1).max(1).sum()
    return Profile(float(np.median(m[:, :, -1] / m[:, :, 0])),
                   float(np.median(conv7 / conv3)), float(hi / lo))


# ---- statistical checks on a usable LUT -----------------------------------------------------


def check_lut(lut: LUT, config: CheckConfig | None = None,
              expect_input_size: tuple[int, int] | None = None) -> list[Finding]:
    """Checks of a LUT object (loaded, or built in memory): what a run checks at its start.

    Args:
        lut: the table (complete and finite, as :class:`LUT` objects are).
        config: thresholds; defaults to :class:`CheckConfig`.
        expect_input_size: the run's (H, W); another input size is an error.

    Returns:
        Findings in check order: errors (input size, a model with pair terms that predicts
        <= 0 ms somewhere) stop a run; warnings (spread, width order, a dominant entry, launch
        overhead, device naming such as the Orin table that profiles as a CPU) and infos go in
        its report.
    """
    cfg = config or CheckConfig()
    return [*_check_size(lut, expect_input_size), *_check_model(lut), *_check_spread(lut, cfg),
            *_check_widths(lut, cfg), *_check_dominant(lut, cfg), *_check_profile(lut, cfg),
            *_check_naming(lut), *_check_context(lut), *ignored_findings(lut.ignored_entries)]


def check_luts(luts: Mapping[str, LUT], config: CheckConfig | None = None,
               expect_input_size: tuple[int, int] | None = None) -> dict[str, list[Finding]]:
    """:func:`check_lut` of every device's LUT, plus the cross-device ranking check.

    Args:
        luts: ``{device name: LUT}``.
        config: thresholds; defaults to :class:`CheckConfig`.
        expect_input_size: the run's (H, W).

    Returns:
        ``{device name: findings}``; with two or more LUTs, a table named as one processor
        kind whose architecture ranking follows the other kind gets ``cross-device-rank``.
    """
    cfg = config or CheckConfig()
    results = {name: check_lut(lut, cfg, expect_input_size) for name, lut in luts.items()}
    if len(luts) >= 2:
        for key, found in _check_ranking(dict(luts), cfg).items():
            results[key].extend(found)
    return results


def _check_size(lut: LUT, expect: tuple[int, int] | None) -> list[Finding]:
    if expect is None or tuple(lut.input_size) == tuple(expect):
        return []
    (h, w), (eh, ew) = lut.input_size, expect
    return [_err("input-size", "input_size", f"measured at {h}x{w} but the run's input is "
                 f"{eh}x{ew}; measure one at that size (`linas lut measure --size {eh}x{ew} "
                 "--out FILE`)")]


def _check_model(lut: LUT) -> list[Finding]:
    if lut.interactions is None:
        return []  # fixed + positive entries: positive by construction
    low, best = space_minimum(lut.mean_ms, lut.fixed_ms or 0.0, lut.interactions)
    if low > 0:
        return []
    return [_err("non-positive-model", "interactions", f"fixed + ops + pairs predicts "
                 f"{low:.4g} ms for {Arch(best)}; re-measure with {_MEASURE} --interactions "
                 "fit|context (kept positive) or drop the interaction terms")]


def _wider(c: int) -> range:
    """Choices of the same op as ``c`` with a larger width."""
    return range(c + 1, c - c % len(WIDTH_TAGS) + len(WIDTH_TAGS))


def _check_spread(lut: LUT, cfg: CheckConfig) -> list[Finding]:
    out, m, s = [], lut.mean_ms, lut.std_ms
    for i, c in zip(*np.nonzero(s / m > cfg.max_cv), strict=True):
        head = f"std {s[i, c]:.3g} ms on a {m[i, c]:.3g} ms mean (CV {s[i, c] / m[i, c]:.2f}"
        loc = f"layer_{i}.{CHOICE_KEYS[c]}"
        # Spread plus "slower than a wider sibling" means the mean itself is off, not just noisy.
        if slower := [w for w in _wider(c) if m[i, c] > m[i, w]]:
            w = slower[-1]
            out.append(_warn("outlier-entry", loc, f"{head}) and slower than {CHOICE_KEYS[w]} "
                             f"({m[i, w]:.3g} ms): outlier-ridden; re-measure it on an idle "
                             f"machine with more repeats ({_MEASURE})"))
        else:
            out.append(_warn("high-cv", loc, f"{head} > {cfg.max_cv}): too spread to trust; "
                             f"re-measure it on an idle machine ({_MEASURE})"))
    return out


def _width_violations(lut: LUT, sigmas: float, rel_tol: float) -> list[tuple[int, int, int]]:
    """(layer, narrower choice, wider choice) where the narrower is slower beyond tolerance."""
    m, s = lut.mean_ms, lut.std_ms
    return [(i, c, w) for i in range(NUM_LAYERS) for c in range(NUM_CHOICES) for w in _wider(c)
            if m[i, c] - m[i, w] > max(sigmas * math.hypot(s[i, c], s[i, w]), rel_tol * m[i, w])]


def _check_widths(lut: LUT, cfg: CheckConfig) -> list[Finding]:
    out, m, seen = [], lut.mean_ms, set()
    for i, c, w in _width_violations(lut, cfg.width_sigmas, cfg.width_rel_tol):
        if (i, c) in seen:  # one finding per slower entry, against its nearest wider sibling
            continue
        seen.add((i, c))
        d = m[i, c] - m[i, w]
        out.append(_warn("non-monotonic-width", f"layer_{i}.{CHOICE_KEYS[c]}",
                         f"{m[i, c]:.4g} ms > {CHOICE_KEYS[w]} {m[i, w]:.4g} ms: the wider one "
                         f"is {d:.3g} ms ({d / m[i, c]:.0%}) faster, beyond noise; re-measure the "
                         f"row ({_MEASURE}) or check the runtime's kernel choice for this shape"))
    return out


def _check_dominant(lut: LUT, cfg: CheckConfig) -> list[Finding]:
    m, out = lut.mean_ms, []
    slowest = float(m.max(axis=1).sum())
    for i in range(NUM_LAYERS):
        c = int(np.argmax(m[i]))
        ratio, share = m[i, c] / np.median(m[i]), m[i, c] / slowest
        if ratio > cfg.dominant_ratio and share > cfg.dominant_share:
            fam = m[i, c - c % 3: c - c % 3 + 3]
            out.append(_warn("dominant-entry", f"layer_{i}.{CHOICE_KEYS[c]}",
                             f"{m[i, c]:.4g} ms is {ratio:.0f}x its layer's median and "
                             f"{share:.0%} of the slowest architecture ({slowest:.4g} ms); "
                             f"{OPS[c // 3]} spans {fam.min():.4g}-{fam.max():.4g} ms here. The "
                             "space's max hinges on one entry: confirm it by re-measuring, or "
                             "exclude the op at this layer"))
    return out


def _measured_kind(lut: LUT) -> Kind | None:
    device_type = lut.provenance.get("device_type")
    return "gpu" if device_type == "cuda" else "cpu" if device_type == "cpu" else None


def _expected_kind(lut: LUT) -> Kind | None:
    """Kind the table should have: from the name map, else from provenance.device_type."""
    cls = DEVICE_CLASSES.get(lut.hardware)
    return cls.kind if cls is not None else _measured_kind(lut)


def _check_profile(lut: LUT, cfg: CheckConfig) -> list[Finding]:
    p, out = latency_profile(lut.mean_ms), []
    if p.width_ratio < cfg.overhead_width_ratio:
        n_raw = len(_width_violations(lut, 0.0, 0.0))
        out.append(_warn("launch-overhead", "table", f"width barely changes latency (median "
                         f"w100/w50 = {p.width_ratio:.2f}; {n_raw} of 105 width pairs are "
                         "non-monotonic before noise tolerance): per-op overhead such as kernel "
                         "launches dominates, so widths are barely told apart; measure with "
                         "CUDA graphs, a compiled runtime or a larger batch"))
    kind = _expected_kind(lut)
    if kind is not None and p.looks not in (kind, "mixed"):
        out.append(_warn("device-name", "table", f"named '{lut.hardware}' ({kind.upper()} "
                         f"expected) but its latency profile looks like a {p.looks.upper()}: "
                         f"median w100/w50 {p.width_ratio:.2f}x, Conv7x7/Conv3x3 "
                         f"{p.kernel_ratio:.1f}x, slowest/fastest arch {p.span:.0f}x; likely "
                         f"measured on the {p.looks.upper()}. Re-measure on the intended device "
                         f"({_MEASURE}) or name and map it as what it is"))
    return out


def _check_naming(lut: LUT) -> list[Finding]:
    cls, prov, measured = DEVICE_CLASSES.get(lut.hardware), lut.provenance, _measured_kind(lut)
    if cls is None:
        seen = f"; provenance says {prov['device']!r}" if prov.get("device") else ""
        return [_info("device-name", "hardware", f"'{lut.hardware}' is not in the device table "
                      f"(linas.latency.check.DEVICE_CLASSES){seen}; its class is not checked "
                      "against its profile; add it with its spec-sheet name")]
    if measured is not None and measured != cls.kind:
        return [_warn("device-name", "hardware", f"'{lut.hardware}' maps to {cls.spec_name} "
                      f"({cls.kind.upper()}) but provenance says it was measured on "
                      f"{prov.get('device')!r} ({measured.upper()}); re-measure or rename it")]
    if not prov.get("device"):
        return [_info("device-name", "hardware", f"'{lut.hardware}' is not a spec-sheet name; "
                      f"mapped explicitly to {cls.spec_name} [{cls.family}, "
                      f"{cls.kind.upper()}]; record the full device name when re-measuring")]
    return []


def _check_context(lut: LUT) -> list[Finding]:
    out = []
    if lut.fixed_ms is None:
        out.append(_info("decoder-only", "fixed", "no fixed part (encoder, skip fusions, "
                         "classifier): predictions are decoder-op sums, not end-to-end latency; "
                         f"measure it with {_MEASURE} (v2 'fixed')"))
    if missing := [k for k in ("runtime", "device", "threads", "date") if k not in lut.provenance]:
        what = "schema v1 has no provenance" if lut.schema == "v1" else "provenance lacks"
        out.append(_info("provenance", "provenance", f"{what} ({', '.join(missing)}); "
                         f"re-measure with {_MEASURE} for a v2 table that records them"))
    return out


def _check_range(data: dict[str, Any], lut: LUT) -> list[Finding]:
    rng = data.get("latency_range")
    if not isinstance(rng, dict) or lut.ignored_entries:
        return []  # with ignored entries the original code's range covers those too
    want = (float(lut.mean_ms.min(axis=1).sum()), float(lut.mean_ms.max(axis=1).sum()))
    got = (rng.get("min_ms"), rng.get("max_ms"))
    if all(isinstance(v, int | float) and math.isclose(v, w, rel_tol=1e-3)
           for v, w in zip(got, want, strict=True)):
        return []
    return [_warn("latency-range", "latency_range", f"is {got}, but the entries give "
                  f"({want[0]:.6g}, {want[1]:.6g}) ms; it is informational, recompute or drop it")]


# ---- files, many files, cross-device ranking ------------------------------------------------


def _check_file(path: Path, cfg: CheckConfig) -> tuple[list[Finding], LUT | None]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        return [_err("unreadable", "file", f"cannot read ({exc.strerror})")], None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [_err("schema", "file", f"not valid JSON ({exc}); re-measure or fix it")], None
    findings = check_raw(data)
    if any(f.severity == "error" for f in findings):
        return findings, None
    try:
        lut = lut_from_dict(data, source=str(path))
    except LUTError as exc:  # what the raw pass does not cover (fixed part, interactions)
        return [*findings, _err("schema", "file", str(exc))], None
    raw = [f for f in findings if f.code != "ignored-entries"]  # check_lut reports them
    return [*raw, *_check_range(data, lut), *check_lut(lut, cfg)], lut


def check_lut_file(path: str | Path, config: CheckConfig | None = None) -> list[Finding]:
    """All findings for one LUT file: raw schema/value errors, then statistical checks.

    Args:
        path: a v1 or v2 LUT JSON file.
        config: thresholds; defaults to :class:`CheckConfig`.

    Returns:
        Findings; the statistical checks run only when the file has no errors.
    """
    return _check_file(Path(path), config or CheckConfig())[0]


def rank_correlations(luts: Sequence[LUT], n: int = 20_000, seed: int = 0) -> np.ndarray:
    """Spearman correlations (d, d) of architecture rankings between d tables.

    Args:
        luts: the tables.
        n: architectures drawn uniformly with ``numpy.random.default_rng(seed)``.
        seed: the sample's seed.

    Returns:
        The matrix; latency is the decoder-op sum (no fixed part, no interactions).
    """
    choices = np.random.default_rng(seed).integers(0, NUM_CHOICES, size=(n, NUM_LAYERS))
    lat = np.stack([LUTLatencyModel(lut, use_fixed=False, use_interactions=False)
                    .predict(choices) for lut in luts], axis=1)  # (n, d)
    return np.atleast_2d(np.corrcoef(rankdata(lat, axis=0), rowvar=False))


def _check_ranking(luts: Mapping[str, LUT], cfg: CheckConfig) -> dict[str, list[Finding]]:
    keys = list(luts)
    names, kinds = [luts[k].name for k in keys], [_expected_kind(luts[k]) for k in keys]
    r = rank_correlations([luts[k] for k in keys], cfg.rank_samples, cfg.rank_seed)
    out: dict[str, list[Finding]] = {k: [] for k in keys}
    for a, kind in enumerate(kinds):
        same = [b for b in range(len(keys)) if b != a and kinds[b] == kind]
        other = [b for b in range(len(keys)) if kinds[b] not in (None, kind)]
        if kind is None or not other:
            continue
        b = max(other, key=lambda j: r[a, j])
        same_mean = float(np.mean(r[a, same])) if same else float("nan")
        # With no same-kind peer to compare, a strong match with the other kind is enough.
        if r[a, b] > cfg.rank_alike and not same_mean >= cfg.rank_unlike:
            peers = ", ".join(names[j] for j in same) or "none given"
            out[keys[a]].append(_warn("cross-device-rank", "ranking", (
                f"architecture ranking (Spearman, {cfg.rank_samples} seeded random archs) "
                f"correlates {r[a, b]:.2f} with {names[b]} ({kinds[b]}) but {same_mean:.2f} on "
                f"average with the other {kind}s ({peers}): it behaves like a {kinds[b]} and was "
                f"probably measured on one; re-measure on the intended device or treat it as a "
                f"{kinds[b]}")))
    return out


def check_many(paths: Iterable[str | Path],
               config: CheckConfig | None = None) -> dict[str, list[Finding]]:
    """Check several LUT files (folders expand to their ``*.json``), then across devices.

    Args:
        paths: files and/or folders.
        config: thresholds; defaults to :class:`CheckConfig`.

    Returns:
        ``{str(path): findings}`` in path order; the cross-device ranking check adds
        ``cross-device-rank`` warnings to tables named as one processor kind whose
        architecture ranking follows the other kind.
    """
    cfg = config or CheckConfig()
    files = [f for p in map(Path, paths) for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    results: dict[str, list[Finding]] = {}
    usable: dict[str, LUT] = {}
    for path in files:
        results[str(path)], lut = _check_file(path, cfg)
        if lut is not None:
            usable[str(path)] = lut
    if len(usable) >= 2:
        for key, found in _check_ranking(usable, cfg).items():
            results[key].extend(found)
    return results


def format_findings(results: Mapping[str, Sequence[Finding]],
                    max_per_code: int | None = None) -> str:
    """Readable report grouped by file: a count line, then one line per finding.

    Args:
        results: ``{file: findings}`` as from :func:`check_many`.
        max_per_code: show at most this many findings per (file, code); the rest are counted.

    Returns:
        The text, ending with a totals line.
    """
    lines, totals = [], Counter[str]()
    for path, findings in results.items():
        sev, codes = Counter(f.severity for f in findings), Counter(f.code for f in findings)
        totals.update(sev)
        tally = ", ".join(f"{c} x{n}" for c, n in codes.items()) or "OK"
        lines.append(f"{path}: {sev['error']} errors, {sev['warning']} warnings, "
                     f"{sev['info']} info  [{tally}]")
        shown, first = Counter[str](), {c: i for i, c in enumerate(codes)}
        for f in sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], first[f.code])):
            shown[f.code] += 1
            if max_per_code is None or shown[f.code] <= max_per_code:
                lines.append(f"  {f.severity:<7} {f.code:<19} {f.location:<26} {f.message}")
            elif shown[f.code] == max_per_code + 1:
                lines.append(f"  {'':<7} {f.code:<19} ... {codes[f.code] - max_per_code} more")
    lines.append(f"{len(results)} files: {totals['error']} errors, {totals['warning']} "
                 f"warnings, {totals['info']} info")
    return "\n".join(lines)
