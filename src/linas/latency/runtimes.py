"""Inference runtimes that latency is measured in: PyTorch eager, ONNX Runtime, OpenVINO.

A :class:`Runtime` turns any ``nn.Module`` plus an example input into a :class:`Runner`, a
zero-argument call that runs one inference inside that runtime (and a sync hook for
asynchronous devices). The timing machinery in :mod:`linas.latency.measure` only ever sees
runners, so every runtime is timed with the same warm-up / repeat / IQR code.

ONNX Runtime and OpenVINO get the module exported to ONNX (TorchScript-based exporter, opset
17, static shapes); OpenVINO is optional (``pip install 'linas[openvino]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from linas._errors import ConfigError
from linas._registry import Registry

ONNX_OPSET = 17


@dataclass(frozen=True)
class Runner:
    """One prepared inference: ``run()`` executes it; ``sync()`` waits for async devices."""

    run: Callable[[], Any]
    sync: Callable[[], None] | None = None


class Runtime(ABC):
    """A named inference runtime on one device with a fixed intra-op thread count.

    Args:
        device: ``cpu`` or ``cuda``.
        threads: intra-op threads; None keeps the runtime's default.

    Raises:
        ConfigError: when the runtime is not installed or cannot use ``device``.
    """

    name: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise ConfigError(f"runtime '{self.name}': {reason}")
        if device not in self.devices:
            raise ConfigError(f"runtime '{self.name}' runs on {', '.join(self.devices)}, not "
                              f"--device '{device}'; use --runtime torch for cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU on this machine; use --device cpu")
        if threads is not None and threads < 1:
            raise ConfigError(f"--threads {threads}: must be >= 1")
        self.device, self.threads = device, threads

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this runtime cannot run here (e.g. not installed), or None when it can."""
        return None

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        """Build a runner for ``module(example)`` in this runtime (module put in eval mode).

        Args:
            module: any module with a single tensor input.
            example: the input; moved to this runtime's device.

        Returns:
            A :class:`Runner`.
        """
        module.eval()
        return self._prepare(module, example.to(self.device))

    @abstractmethod
    def _prepare(self, module: nn.Module, example: torch.Tensor) -> Runner: ...

    @abstractmethod
    def version(self) -> str:
        """The runtime's version string."""

    def threads_used(self) -> int:
        """Intra-op threads runs use (the explicit value or the runtime's default)."""
        return self.threads if self.threads is not None else torch.get_num_threads()

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Process-wide settings while timing (torch's thread count); restored afterwards."""
        yield

    def provenance(self) -> dict[str, Any]:
        """Runtime name, version, device kind and threads for the LUT's provenance."""
        return {"runtime": self.name, "runtime_version": self.version(),
                "device_type": self.device, "threads": int(self.threads_used())}


class TorchRuntime(Runtime):
    """PyTorch eager under ``torch.inference_mode()``; CUDA runs are synchronised."""

    name = "torch"
    devices = ("cpu", "cuda")

    def _prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        module.to(self.device)

        def run() -> Any:
            with torch.inference_mode():
                return module(example)

        sync = torch.cuda.synchronize if self.device == "cuda" else None
        return Runner(run, sync)

    def version(self) -> str:
        return str(torch.__version__)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def export_onnx_bytes(module: nn.Module, args: tuple[torch.Tensor, ...],
                      input_names: Sequence[str] = ("input",),
                      output_names: Sequence[str] = ("output",)) -> bytes:
    """Export ``module`` for the static shapes of ``args`` to ONNX, in memory, on CPU.

    Args:
        module: put in eval mode first (the exporter restores the mode it finds).
        args: example inputs whose shapes are baked into the graph.
        input_names: graph input names, one per arg.
        output_names: graph output names.

    Returns:
        The serialised ONNX model.
    """
    buf = io.BytesIO()
    module = module.cpu().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter accepts file-like objects despite its annotation.
        torch.onnx.export(module, tuple(a.cpu() for a in args), buf,  # type: ignore[arg-type]
                          input_names=list(input_names), output_names=list(output_names),
                          opset_version=ONNX_OPSET, dynamo=False)
    return buf.getvalue()


class OnnxModelRuntime(Runtime):
    """A runtime that runs ONNX graphs; :meth:`prepare_onnx` takes a graph directly."""

    def _prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        with torch.no_grad():
            n_out = len(out) if isinstance(out := module(example), tuple) else 1
        names = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
        return self.prepare_onnx(export_onnx_bytes(module, (example,), ("input",), names),
                                 example)

    @abstractmethod
    def prepare_onnx(self, model: bytes, example: torch.Tensor) -> Runner:
        """Build a runner for a serialised ONNX model with one input."""


class OnnxRuntime(OnnxModelRuntime):
    """ONNX Runtime, CPU execution provider, full graph optimisation, sequential execution.

    Intra-op threads do not spin while idle. With spinning (ORT's default) every session's
    pool keeps busy-waiting after its run, so with several sessions alive in one process (a
    LUT times 21 candidates round-robin, validation 8 models) the idle pools steal the cores
    from the one running: single candidates timed 2-10x slower than alone, and end-to-end
    timings moved with whatever ran before. Without spinning, a candidate times the same alone
    and among its 20 siblings (e.g. Conv5x5_w50 at layer 0: 0.77 vs 0.83 ms, was 7.4 ms).
    """

    name = "onnxruntime"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed; pip install onnxruntime"
        return None

    def prepare_onnx(self, model: bytes, example: torch.Tensor) -> Runner:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads is not None:
            opts.intra_op_num_threads = self.threads
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: example.detach().cpu().numpy()}
        return Runner(lambda: sess.run(None, feed))

    def version(self) -> str:
        import onnxruntime as ort

        return str(ort.__version__)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "intra_op_spinning": False}

    def threads_used(self) -> int:
        # ORT's default intra-op pool has one thread per physical core; torch's default too.
        return self.threads if self.threads is not None else torch.get_num_threads()


class OpenVINORuntime(OnnxModelRuntime):
    """OpenVINO on CPU with the LATENCY performance hint, synchronous infer requests."""

    name = "openvino"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "openvino is not installed; pip install 'linas[openvino]' (or openvino)"
        return None

    def prepare_onnx(self, model: bytes, example: torch.Tensor) -> Runner:
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        compiled = core.compile_model(core.read_model(model=model, weights=b""), "CPU", config)
        request = compiled.create_infer_request()
        data = np.ascontiguousarray(example.detach().cpu().numpy())
        return Runner(lambda: request.infer({0: data}))

    def version(self) -> str:
        import openvino as ov

        return str(ov.get_version())


RUNTIMES: Registry[type[Runtime]] = Registry("runtime")
for _cls in (TorchRuntime, OnnxRuntime, OpenVINORuntime):
    RUNTIMES.add(_cls.name, _cls)


def get_runtime(name: str, device: str = "cpu", threads: int | None = None) -> Runtime:
    """Build the runtime registered as ``name``.

    Args:
        name: one of :data:`RUNTIMES` (``torch``, ``onnxruntime``, ``openvino``).
        device: ``cpu`` or ``cuda`` (cuda: torch only).
        threads: intra-op threads; None keeps the runtime's default.

    Raises:
        ConfigError: for an unknown name (listing the menu and the closest match), a runtime
            not installed here, or a device it cannot use.
    """
    return RUNTIMES.get(name)(device, threads)


def available_runtimes() -> list[str]:
    """Names of the registered runtimes that can run on this machine."""
    return [n for n in RUNTIMES.names() if RUNTIMES.get(n).unavailable_reason() is None]
