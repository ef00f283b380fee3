"""Files read back are checked before use (names, shapes, dtypes, finite values), writes are
atomic with the usual file mode, and the temporaries a crash leaves are cleaned up under the
run's lock without touching anything else."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from linas._errors import ConfigError
from linas._failpoint import ENV
from linas._io import atomic_path, remove_stale_temporaries, write_json_atomic
from linas._tensors import check_tensors
from linas.run.final import load_trained
from linas.run.rundir import run_lock
from linas.search.fair import check_optimizer_state


def expected() -> dict[str, torch.Tensor]:
    return {"w": torch.zeros(3, 4), "b": torch.zeros(3), "n": torch.zeros((), dtype=torch.long)}


@pytest.mark.parametrize(("edit", "needle"), [
    ({"w": torch.zeros(4, 3)}, "w has shape [4, 3], this config needs [3, 4]"),
    ({"b": torch.zeros(3, dtype=torch.float64)}, "b is torch.float64"),
    ({"b": torch.tensor([0.0, float("nan"), 1.0])}, "b holds NaN or inf"),
    ({"w": [[0.0] * 4] * 3}, "w is a list"),
    ({"extra": torch.zeros(1)}, "unexpected extra"),
])
def test_a_tensor_that_does_not_fit_is_refused_by_name(edit, needle) -> None:
    got = {**expected(), **edit}
    with pytest.raises(ConfigError, match="weights.st: does not fit this config") as err:
        check_tensors(expected(), got, "weights.st", "delete it")
    assert needle in str(err.value) and str(err.value).endswith("; delete it")


def test_missing_keys_are_refused_unless_allowed() -> None:
    got = {k: v for k, v in expected().items() if k != "n"}
    with pytest.raises(ConfigError, match="missing n"):
        check_tensors(expected(), got, "f", "fix")
    check_tensors(expected(), got, "f", "fix", may_lack=lambda k: k == "n")  # no error


def test_final_weights_are_checked_and_keep_their_history(tmp_path) -> None:
    model = nn.Linear(4, 3)
    path = tmp_path / "a.safetensors"
    save_file(dict(model.state_dict()), str(path), metadata={"train_history": '[{"loss": 1.5}]'})
    fresh = nn.Linear(4, 3)
    assert load_trained(fresh, path) == [{"loss": 1.5}]  # type: ignore[arg-type]
    assert torch.equal(fresh.weight, model.weight)
    with pytest.raises(ConfigError, match=r"weight has shape \[3, 4\], this config needs \[2, 4"):
        load_trained(nn.Linear(4, 2), path)  # type: ignore[arg-type]
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ConfigError, match="not a readable safetensors file.*train this arch"):
        load_trained(fresh, path)  # type: ignore[arg-type]
    save_file(dict(model.state_dict()), str(path))  # no history: another version wrote it
    with pytest.raises(ConfigError, match="lack their training history"):
        load_trained(fresh, path)  # type: ignore[arg-type]


def test_optimizer_state_of_other_shapes_is_refused() -> None:
    model = nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    state = opt.state_dict()
    check_optimizer_state(opt, state, "ck.pt")  # its own state fits
    state["state"][0]["exp_avg"] = torch.zeros(5, 5)
    with pytest.raises(ConfigError, match=r"ck.pt: optimizer entry exp_avg of parameter 0 has "
                                          r"shape \[5, 5\]"):
        check_optimizer_state(opt, state, "ck.pt")
    other = torch.optim.Adam(nn.Linear(4, 3, bias=False).parameters())
    with pytest.raises(ConfigError, match="holds 2 parameters in 1 group"):
        check_optimizer_state(other, opt.state_dict(), "ck.pt")


def test_atomic_writes_get_the_usual_mode_and_leave_nothing_on_error(tmp_path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    path = write_json_atomic(tmp_path / "r.json", {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_crash_between_write_and_rename_keeps_the_old_file(tmp_path) -> None:
    """The kill point fires after the temporary file is written, before the rename: the
    target keeps its old content, and the next run's lock removes the temporary."""
    import subprocess
    import sys

    target = write_json_atomic(tmp_path / "results.json", {"old": True})
    code = ("import sys; from pathlib import Path; from linas._io import write_json_atomic; "
            "write_json_atomic(Path(sys.argv[1]), {'new': True})")
    proc = subprocess.run([sys.executable, "-c", code, str(target)],
                          env={**os.environ, ENV: "write:results.json"}, check=False)
    assert proc.returncode == -9
    assert target.read_text() == '{\n  "old": true\n}\n'
    (tmp_path / "mine.tmp").write_text("a user's file")  # not one of ours: never removed
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".results.json.")]
    assert len(leftovers) == 1
    messages: list[str] = []
    with run_lock(tmp_path, messages.append):
        pass
    assert not any(p.name.startswith(".results.json.") for p in tmp_path.iterdir())
    assert (tmp_path / "mine.tmp").exists() and "temporary file(s)" in messages[-1]
    assert remove_stale_temporaries(tmp_path) == []
