"""``linas init``: a commented starter run config, filled in from the user's data folder."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from linas.data.datasets import IMAGE_SUFFIXES

_TEMPLATE = """\
# LINAS+ run config. Run it with:  linas demo --config {name} --out runs/mine
# Every key not written here takes its default; `RUN/config.yaml` holds the resolved file.
# Override any key on the command line:  --set search.batch_size=8 --set devices.rpi5.budget_ms=100
seed: 0                      # the run's only seed: data split, search, Pareto sample, training

data:
  kind: {kind}{kind_note}
{root_line}  size: [{h}, {w}]             # H, W the model runs at (multiples of 32){size_note}
  fit: refuse                # size not a multiple of 32: refuse | resize | pad
  splits: [0.6, 0.2, 0.2]    # train / arch-val / test (a layout's own test split is honoured)
{options}
encoder:
  weights: auto              # imagenet | random | auto (imagenet if cached, else random) | PATH
  finetune: false            # true trains the encoder too (slow on a CPU, no feature cache)

devices:                     # one entry per deployment target, each with its own budget
  - name: this-cpu
    measure: {{runtime: torch}}  # measured here at data.size: torch | onnxruntime | openvino
    budget_ms: 160           # C3: 100 images in 16 s
  # - name: rpi5
  #   lut: luts/raspberrypi5.json   # measured on the device at data.size (`linas lut measure`)
  #   budget_ms: 160

search:
  strategy: bilevel          # bilevel (baseline LINAS) | hypernet (I1, one model for all devices)
  warmup_epochs: 6
  search_epochs: 8
  batch_size: 16
  train_mode: soft           # I2: soft | single-path | sandwich
  calr: none                 # I2: none | seed | dynas
  momentum: shared           # I2: shared | seed | dynas

pareto:
  strategy: baseline         # baseline (1,000 sampled, 100 evaluated) | zero-cost (I3)
  n_evaluate: 100
  bn_recal_batches: 0        # N > 0: recompute each path's BatchNorm statistics on N training
                             # batches before evaluating it (about 4x the evaluation time at 8)

final:
  epochs: 15
  batch_size: 16
  kd: none                   # I5 distillation: none (CE only) | constant | latency
  T: 4.0                     # KD temperature (logit KD and inter-class similarity)
  base_alpha: 0.5            # logit-KD weight; latency mode: base_alpha * (2 - student/teacher ms)
  beta: 0.1                  # feature-KD weight (1x1 adapters on the five decoder layers)
  gamma: 20.0                # inter-class similarity (AICSD) weight
  teacher: null              # an arch string; null: the largest subnet (Conv7x7_w100 x 5)
  teacher_epochs: null       # null: fine-tune the teacher final.epochs epochs; 0: as extracted

compute:
  device: auto               # auto (cuda if available) | cpu | cuda | cuda:N
  precision: fp32            # fp32 | bf16 | fp16 (fp16 needs cuda)
  feature_cache: disk        # disk (RUN/cache, RAM bounded) | ram
  cache_dtype: float32       # float32 | float16 (half the disk)
  # several processes: torchrun --nproc_per_node=N -m linas demo --config THIS --out DIR
"""


def starter_config(name: str, data: Path | None = None, kind: str | None = None) -> str:
    """The text of a starter config; ``data`` and ``kind`` fill in the data section."""
    kind = kind or ("folder" if data is not None else "synthetic")
    h, w, size_note = 128, 128, ""
    if data is not None:
        found = _first_image(data)
        if found is not None:
            with Image.open(found) as img:
                iw, ih = img.size
            h, w = _round32(ih), _round32(iw)
            size_note = f"  (images are {ih}x{iw}, e.g. {found.name})"
    root_line = f"  root: {data}\n" if data is not None else \
        "  # root: path/to/data     # not for synthetic\n"
    notes = {"synthetic": "            # synthetic | folder | mvtec | cityscapes",
             "folder": "               # images/ + masks/ (class-index PNGs) by file stem",
             "mvtec": "                # MVTec-AD: <category>/test/<defect>, ground_truth/",
             "cityscapes": "           # leftImg8bit/ + gtFine/ (labelIds -> trainIds)"}
    options = ""
    if kind == "mvtec":
        cat = _mvtec_category(data)
        options = (f"  options: {{category: {cat}}}   # the MVTec-AD category\n" if cat else
                   "  # options: {category: bottle}  # when root holds several categories\n")
    if kind == "synthetic":
        options = "  n_images: 320             # synthetic only\n"
    return _TEMPLATE.format(name=name, kind=kind, kind_note=notes.get(kind, ""),
                            root_line=root_line, h=h, w=w, size_note=size_note,
                            options=options)


def _first_image(root: Path) -> Path | None:
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and "mask" not in str(path.relative_to(root)):
            return path
    return None


def _round32(n: int) -> int:
    return max(32, int(round(n / 32)) * 32)


def _mvtec_category(root: Path | None) -> str | None:
    if root is None or (root / "ground_truth").is_dir():
        return None  # root is itself a category
    cats = sorted(p.name for p in root.iterdir() if (p / "ground_truth").is_dir()) \
        if root.is_dir() else []
    return cats[0] if cats else None
