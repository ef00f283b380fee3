"""LUT measurement: the only code in LINAS+ that reads a clock.

It times any ``nn.Module`` it is handed and never imports the supernet: the caller passes a
``make_candidate(layer, choice)`` factory that returns the exact module that runs in the model
for that choice (op, BN, activation, width projection) and an input of the right shape.

Statistics are pure functions of the raw samples (:func:`iqr_filter`, :func:`summarize`); only
:func:`time_callable` touches ``time.perf_counter_ns``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from linas.latency.lut import LUT
from linas.latency.runtimes import Runner, Runtime, TorchRuntime
from linas.space import NUM_CHOICES, NUM_LAYERS

Candidate = tuple[nn.Module, torch.Tensor]
MakeCandidate = Callable[[int, int], Candidate]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TimingStats:
    """Summary of one timed entry, in milliseconds, after IQR outlier removal.

    ``count`` samples were kept out of ``n_raw``; ``n_outliers = n_raw - count``.
    """

    mean_ms: float
    std_ms: float
    median_ms: float
    p95_ms: float
    count: int
    n_raw: int
    n_outliers: int


def iqr_filter(samples: np.ndarray, k: float = 1.5) -> np.ndarray:
    """Drop samples outside Tukey's fences ``[Q1 - k*IQR, Q3 + k*IQR]``.

    Quartiles use numpy's default (linear interpolation) percentile.

    Args:
        samples: raw timings, any shape (flattened).
        k: fence width in interquartile ranges.

    Returns:
        The kept samples, 1-D, in their original order.

    Raises:
        ValueError: when ``samples`` is empty.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("iqr_filter needs at least one sample")
    q1, q3 = np.percentile(x, [25.0, 75.0])
    iqr = q3 - q1
    return x[(x >= q1 - k * iqr) & (x <= q3 + k * iqr)]


def summarize(samples_ms: np.ndarray | Sequence[float], k: float = 1.5) -> TimingStats:
    """IQR-filter raw timings, then compute mean/std/median/p95 of the kept samples.

    ``std_ms`` uses ddof=1 when more than one sample is kept, else 0. ``p95_ms`` is the 95th
    percentile of the kept samples (so it describes steady-state jitter, not rare stalls).

    Args:
        samples_ms: raw per-call timings in milliseconds.
        k: IQR fence width passed to :func:`iqr_filter`.

    Returns:
        The :class:`TimingStats`.

    Raises:
        ValueError: when there are no samples or some are not finite.
    """
    raw = np.asarray(samples_ms, dtype=np.float64).ravel()
    if raw.size == 0 or not np.all(np.isfinite(raw)):
        raise ValueError(f"summarize needs finite samples, got {raw.size} with non-finite "
                         f"{int(np.sum(~np.isfinite(raw)))}")
    kept = iqr_filter(raw, k)
    n = int(kept.size)
    return TimingStats(mean_ms=float(kept.mean()),
                       std_ms=float(kept.std(ddof=1)) if n > 1 else 0.0,
                       median_ms=float(np.median(kept)),
                       p95_ms=float(np.percentile(kept, 95.0)),
                       count=n, n_raw=int(raw.size), n_outliers=int(raw.size - n))


def time_callable(fn: Callable[[], Any], warmup: int, repeat: int,
                  sync: Callable[[], None] | None = None) -> np.ndarray:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed, one clock pair each.

    Args:
        fn: the work to time (no arguments).
        warmup: untimed calls first (allocator, cuDNN autotune, caches, frequency ramp-up).
        repeat: timed calls.
        sync: called after ``fn`` and before reading the clock, e.g. ``torch.cuda.synchronize``
            so that asynchronous GPU work is counted; also called once after the warm-up.

    Returns:
        Per-call wall time in milliseconds, shape (repeat,).

    Raises:
        ValueError: when ``warmup < 0`` or ``repeat < 1``.
    """
    if warmup < 0 or repeat < 1:
        raise ValueError(f"need warmup >= 0 and repeat >= 1, got warmup={warmup}, "
                         f"repeat={repeat}")
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()  # the warm-up's queued GPU work must not land in the first sample
    out = np.empty(repeat, dtype=np.float64)
    for r in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        if sync is not None:
            sync()
        out[r] = (time.perf_counter_ns() - t0) / 1e6
    return out


def cuda_sync_for(tensor: torch.Tensor) -> Callable[[], None] | None:
    """The sync hook for ``tensor``'s device: ``torch.cuda.synchronize`` on CUDA, else None."""
    if tensor.is_cuda:
        device = tensor.device
        return lambda: torch.cuda.synchronize(device)
    return None


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Set ``torch.set_num_threads(threads)`` inside the block and restore it afterwards."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _eval_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    # The modules may be the live supernet's own; put their train/eval flags back afterwards.
    flags = [[m.training for m in mod.modules()] for mod in modules]
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for mod, saved in zip(modules, flags, strict=True):
            for m, flag in zip(mod.modules(), saved, strict=True):
                m.training = flag


def time_module(module: nn.Module, example_input: torch.Tensor, warmup: int = 10,
                repeat: int = 50, threads: int | None = None) -> TimingStats:
    """Time ``module(example_input)`` in eval mode under ``torch.inference_mode()``.

    Args:
        module: any module; its train/eval flags are restored afterwards.
        example_input: the input tensor (its device decides whether CUDA sync is used).
        warmup: untimed calls.
        repeat: timed calls.
        threads: intra-op threads while timing; the previous value is restored afterwards.

    Returns:
        IQR-filtered :class:`TimingStats` in milliseconds.
    """
    with num_threads(threads), _eval_mode([module]), torch.inference_mode():
        samples = time_callable(lambda: module(example_input), warmup, repeat,
                                sync=cuda_sync_for(example_input))
    return summarize(samples)


def _chunks(repeat: int, rounds: int) -> list[int]:
    """Split ``repeat`` timed calls into ``rounds`` near-equal chunks (no empty chunk)."""
    rounds = max(1, min(rounds, repeat))
    base, extra = divmod(repeat, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def time_runners(runners: Sequence[Runner], warmup: int, repeat: int, rounds: int = 5,
                 tick: Callable[[], None] | None = None) -> list[TimingStats]:
    """Time several prepared runners round-robin so slow drift spreads evenly over them.

    Every runner is warmed up first; then the ``repeat`` timed calls of each are split into
    ``rounds`` chunks, and each round times one chunk of every runner, starting at a
    different runner each round (rotation) so no runner is always first after a switch.
    One untimed call precedes each chunk to re-warm caches after switching.

    Args:
        runners: prepared inferences (any runtime, see :mod:`linas.latency.runtimes`).
        warmup: untimed calls per runner before the first round.
        repeat: timed calls per runner, in total over the rounds.
        rounds: number of round-robin rounds.
        tick: called once per runner, when its last chunk is timed (progress reporting).

    Returns:
        One :class:`TimingStats` per runner, in order.
    """
    samples: list[list[np.ndarray]] = [[] for _ in runners]
    n, chunks = len(runners), _chunks(repeat, rounds)
    for runner in runners:
        for _ in range(warmup):
            runner.run()
        if runner.sync is not None:
            runner.sync()
    for r, chunk in enumerate(chunks):
        for j in range(n):
            c = (j + r) % n
            samples[c].append(time_callable(runners[c].run, 1, chunk, runners[c].sync))
            if tick is not None and r == len(chunks) - 1:
                tick()
    return [summarize(np.concatenate(s)) for s in samples]


def measure_lut(make_candidate: MakeCandidate, hardware: str, input_size: tuple[int, int],
                warmup: int = 10, repeat: int = 50, threads: int | None = None,
                fixed: Callable[[], Candidate] | None = None,
                progress: Progress | None = None, rounds: int = 5,
                runtime: Runtime | None = None) -> LUT:
    """Measure a v2 LUT on this machine in one runtime, interleaving each layer's choices.

    For each layer, ``make_candidate(layer, choice)`` is called for all 21 choices (so a
    layer's candidates are alive together), each is prepared in ``runtime`` (ONNX export and
    session for ONNX Runtime / OpenVINO), warmed up, and then they are timed round-robin in
    ``rounds`` rounds (see :func:`time_runners`): thermal or frequency drift, which is slow,
    is spread evenly over the choices instead of biasing whichever was timed last. ``fixed``
    (encoder, skip fusions, classifier) is timed once after the layers, the same way.

    Args:
        make_candidate: ``(layer, choice) -> (module, input)`` with the module exactly as it
            runs in the model for that choice, and an input of the right shape and device.
        hardware: device name stored in the LUT (use a name the device table knows).
        input_size: model input (H, W) the candidates' shapes correspond to.
        warmup: untimed calls per entry.
        repeat: timed calls per entry.
        threads: intra-op threads (restored afterwards) for the default torch runtime; None
            keeps the current setting. Ignored when ``runtime`` is given (it has its own).
        fixed: optional factory of the end-to-end fixed part; stored as ``fixed_ms``.
        progress: ``progress(done, total)`` once per finished entry (in the last round of
            its layer); ``total`` is 105, plus 1 when ``fixed`` is given.
        rounds: round-robin rounds per layer.
        runtime: where to run; default PyTorch eager on the candidates' device.

    Returns:
        A schema-v2 :class:`LUT` with mean/std/median/p95/count and provenance.
    """
    stats = np.zeros((4, NUM_LAYERS, NUM_CHOICES))  # mean, std, median, p95
    count = np.zeros((NUM_LAYERS, NUM_CHOICES), dtype=np.int64)
    tick = _ticker(NUM_LAYERS * NUM_CHOICES + (fixed is not None), progress)
    fixed_stats: TimingStats | None = None
    for layer in range(NUM_LAYERS):
        # Factories run outside inference mode: weights they create or cache stay trainable.
        cands = [_checked(make_candidate(layer, c), f"make_candidate({layer}, {c})")
                 for c in range(NUM_CHOICES)]
        if runtime is None:
            runtime = TorchRuntime("cuda" if cands[0][1].is_cuda else "cpu", threads)
        for c, st in enumerate(time_in_runtime(runtime, cands, warmup, repeat, rounds, tick)):
            stats[:, layer, c] = (st.mean_ms, st.std_ms, st.median_ms, st.p95_ms)
            count[layer, c] = st.count
        sample_input = cands[0][1]
        del cands  # free this layer's modules before building the next layer's
    assert runtime is not None  # set in the first layer
    if fixed is not None:
        fixed_stats = time_in_runtime(runtime, [_checked(fixed(), "fixed()")], warmup, repeat,
                                      rounds, tick)[0]
    prov = provenance(sample_input, runtime.threads_used(), input_size, warmup, repeat, rounds,
                      runtime)
    return LUT(hardware=hardware, input_size=(int(input_size[0]), int(input_size[1])),
               mean_ms=stats[0], std_ms=stats[1], median_ms=stats[2], p95_ms=stats[3],
               count=count, fixed_ms=fixed_stats.mean_ms if fixed_stats else None,
               fixed_std_ms=fixed_stats.std_ms if fixed_stats else None,
               warmup=warmup, repeat=repeat, provenance=prov)


def time_in_runtime(runtime: Runtime, candidates: Sequence[Candidate], warmup: int,
                    repeat: int, rounds: int = 5, tick: Callable[[], None] | None = None
                    ) -> list[TimingStats]:
    """Prepare (module, input) pairs in ``runtime`` and time them round-robin.

    Modules' train/eval flags are restored afterwards; the runtime's thread setting applies.

    Args:
        runtime: where to run.
        candidates: (module, input) pairs.
        warmup: untimed calls per candidate.
        repeat: timed calls per candidate.
        rounds: round-robin rounds (see :func:`time_runners`).
        tick: progress hook, once per finished candidate.

    Returns:
        One :class:`TimingStats` per candidate, in order.
    """
    with runtime.scope(), _eval_mode([m for m, _ in candidates]):
        runners = [runtime.prepare(m, x) for m, x in candidates]
        return time_runners(runners, warmup, repeat, rounds, tick)


def _ticker(total: int, progress: Progress | None) -> Callable[[], None]:
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    return tick


def _checked(candidate: Any, where: str) -> Candidate:
    ok = (isinstance(candidate, tuple) and len(candidate) == 2
          and isinstance(candidate[0], nn.Module) and isinstance(candidate[1], torch.Tensor))
    if not ok:
        raise TypeError(f"{where} must return (nn.Module, torch.Tensor), got "
                        f"{type(candidate).__name__}")
    return candidate


def provenance(example: torch.Tensor, threads: int, input_size: tuple[int, int],
               warmup: int, repeat: int, rounds: int,
               runtime: Runtime | None = None) -> dict[str, Any]:
    """Where and how a LUT was measured (no hostname: LUT files get shared).

    Args:
        example: an input tensor of the measurement (device, dtype, batch size).
        threads: intra-op threads used.
        input_size: model input (H, W).
        warmup: untimed calls per entry.
        repeat: timed calls per entry.
        rounds: round-robin rounds.
        runtime: the runtime timed in (name and version recorded); default torch eager.

    Returns:
        A JSON-ready dict (lists, not tuples, so it round-trips through JSON unchanged).
    """
    on_cuda = example.is_cuda
    out = {
        "runtime": runtime.name if runtime is not None else "torch",
        "runtime_version": runtime.version() if runtime is not None else str(torch.__version__),
        "torch_version": str(torch.__version__),
        "cuda_version": torch.version.cuda if on_cuda else None,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "platform": f"{platform.system()}-{platform.machine()}",
        "host": platform.node(),
        "device_type": "cuda" if on_cuda else "cpu",
        "device": torch.cuda.get_device_name(example.device) if on_cuda else cpu_name(),
        "threads": int(threads),
        "input_size": [int(input_size[0]), int(input_size[1])],
        "batch_size": int(example.shape[0]) if example.dim() > 0 else 1,
        "dtype": str(example.dtype).removeprefix("torch."),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "warmup": int(warmup),
        "repeat": int(repeat),
        "method": f"interleaved round-robin, {rounds} rounds per layer; IQR filter k=1.5; "
                  "perf_counter_ns per call",
    }
    if runtime is not None:  # runtime-specific settings (e.g. ORT's thread spinning)
        out.update({k: v for k, v in runtime.provenance().items() if k not in out})
    return out


def this_machine() -> str:
    """This machine, as recorded with what is timed on it: host name, CPU model and count."""
    return f"{platform.node()} ({cpu_name()}, {os.cpu_count()} CPUs)"


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``/machine."""
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            # x86 says "model name"; many ARM kernels only give "Model" (the board) or nothing.
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"
