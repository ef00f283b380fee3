"""The reliability table: runs the reliability suite (bad inputs, untrusted files, kill -9
anywhere) and counts, per kind, what held.

    .venv/bin/python benchmarks/reliability.py --out benchmarks/results/reliability.json

Kinds tried and clean come from the bad-input table (tests/reliability/test_bad_inputs.py:
each kind must exit non-zero with one line naming the file/key/value, no traceback); kills
come from tests/reliability/test_kill.py (each kill point must be reached by a real SIGKILL,
and the rerun's results must equal an uninterrupted run's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "reliability"))
    from test_bad_inputs import CASES
    from test_kill import KILLS

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "reliability"),
                        "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"], cwd=ROOT,
                       check=False)
        wall = time.perf_counter() - start
        cases = ET.parse(xml).getroot().iter("testcase")
        outcome = {c.get("name", ""): ("failed" if c.find("failure") is not None or
                                       c.find("error") is not None else
                                       "skipped" if c.find("skipped") is not None else "passed")
                   for c in cases}
    bad = {k.removeprefix("test_bad_input_gives_one_clear_line[").rstrip("]"): v
           for k, v in outcome.items() if k.startswith("test_bad_input_gives_one_clear_line[")}
    kill = outcome.get("test_killed_anywhere_and_rerun_gives_the_uninterrupted_results")
    lut_kill = outcome.get("test_a_lut_measurement_killed_is_measured_again_never_read_half_done")
    result = {
        "kinds_tried": len(CASES), "kinds_clean": sum(v == "passed" for v in bad.values()),
        "tracebacks_or_wrong_errors": sorted(k for k, v in bad.items() if v != "passed"),
        "kill_points": list(KILLS) + ["step:measuring LUT:5", "write:here.json"],
        "kill_chain_results_identical": kill == "passed",
        "lut_kills_never_read_half_done": lut_kill == "passed",
        "other_tests": {k: v for k, v in outcome.items() if "[" not in k},
        "wall_s": round(wall, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "other_tests"}, indent=2))


if __name__ == "__main__":
    main()
