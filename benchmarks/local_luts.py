"""Measure this machine's LUTs for several runtime settings: extra real devices for the
cross-hardware predictor (reproducible artefacts, not committed data).

Settings: torch eager with 1 and 2 threads, ONNX Runtime with 1 and 2 threads, and OpenVINO
with 1 thread when installed; each written as ``DIR/local_<runtime>_cpu_t<threads>.json``
(schema v2, 128x128; decoder ops, fixed part and anchor; the predictor uses the ops), and
``DIR/timings/local_luts.json`` with how long each took. Every LUT's provenance names this
CPU, so `linas predictor` maps it to this machine's spec (``hardware.local_spec``) with its
thread count.

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/local_luts.py --out runs/luts
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from linas._io import write_json_atomic
from linas.cli.lut import measure_command
from linas.latency.runtimes import available_runtimes

SETTINGS: tuple[tuple[str, int], ...] = (("torch", 1), ("torch", 2), ("onnxruntime", 1),
                                         ("onnxruntime", 2), ("openvino", 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the LUTs")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--only", nargs="*", default=None,
                    help="subset of settings as runtime:threads, e.g. torch:1 onnxruntime:2")
    ap.add_argument("--skip-existing", action="store_true", help="keep LUTs already in --out")
    args = ap.parse_args()
    wanted = [s for s in SETTINGS if args.only is None or f"{s[0]}:{s[1]}" in args.only]
    avail = set(available_runtimes())
    report: dict[str, dict[str, object]] = {}
    for runtime, threads in wanted:
        name = f"local_{runtime}_cpu_t{threads}"
        path = args.out / f"{name}.json"
        if runtime not in avail:
            report[name] = {"skipped": f"runtime '{runtime}' not installed"}
            continue
        if args.skip_existing and path.is_file():
            report[name] = {"skipped": "exists"}
            continue
        start = time.perf_counter()
        measure_command(path, (128, 128), runtime, "cpu", threads, args.warmup, args.repeat,
                        name, quiet=True)
        report[name] = {"path": str(path), "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: {report[name]['seconds']} s -> {path}", flush=True)
    # in a subfolder: a LUT folder must hold LUTs only (`--luts DIR` loads every *.json);
    # merged with earlier runs so that measuring a subset keeps the other entries
    timings = args.out / "timings" / "local_luts.json"
    old = json.loads(timings.read_text())["luts"] if timings.is_file() else {}
    write_json_atomic(timings, {"warmup": args.warmup, "repeat": args.repeat,
                                "luts": {**old, **report}})


if __name__ == "__main__":
    main()
