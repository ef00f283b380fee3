"""Batches of encoder features: cached once for a frozen encoder (in RAM, or memory-mapped
``.npy`` files on disk), or computed per batch."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from linas._errors import ConfigError, DataError
from linas._io import atomic_path, write_json_atomic

# One cached map: an in-RAM tensor, or a read-only np.memmap of a ``.npy`` file. Both take
# ``[idx]`` and have ``.shape``; read them through FeatureSet.batch (float32 tensors).
FeatureArray = torch.Tensor | np.ndarray
CACHE_DTYPES: dict[torch.dtype, type[np.floating[Any]]] = {torch.float32: np.float32,
                                                             torch.float16: np.float16}
CACHE_VERSION = 1


@dataclass
class FeatureSet:
    """A split's masks plus either cached encoder features or the images to encode.

    With a frozen encoder the five feature maps of every image are computed once
    (:func:`cache_features`), the main speed lever on a CPU; a trainable encoder keeps the
    images and runs ``encoder`` on each batch.
    """

    masks: torch.Tensor  # (N, H, W) int64
    feats: list[FeatureArray] | None = None  # five (N, C_i, H_i, W_i), tensors or np.memmap
    images: torch.Tensor | None = None  # (N, 3, H, W)
    encoder: Callable[[torch.Tensor], list[torch.Tensor]] | None = None

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Encoder features (five float32 maps) and masks of the images at ``idx``.

        Raises:
            ValueError: a FeatureSet with neither cached feats nor images + encoder.
        """
        if self.feats is not None:
            return [_rows(f, idx) for f in self.feats], self.masks[idx].long()
        if self.images is None or self.encoder is None:
            raise ValueError("FeatureSet needs cached feats or images + encoder")
        images = self.images[idx]
        if isinstance(self.encoder, nn.Module):  # a fine-tuned encoder may sit on a GPU
            images = images.to(next(self.encoder.parameters()).device)
        return self.encoder(images), self.masks[idx].long()



def _rows(arr: FeatureArray, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of one cached map as a float32 tensor, in the order of ``idx``."""
    if isinstance(arr, torch.Tensor):
        return arr[idx].float()
    ix = np.asarray(idx, dtype=np.int64).reshape(-1)
    order = np.argsort(ix, kind="stable")
    rows = _read_rows(arr, ix[order])  # (B, C, H, W), in RAM, front to back
    out = torch.from_numpy(rows).float()
    if np.array_equal(order, np.arange(order.size)):
        return out
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return out[torch.from_numpy(back)]  # (B, C, H, W) in the order of idx


@torch.no_grad()
def cache_features(encoder: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                   batch_size: int = 16, progress: Callable[[int], None] | None = None,
                   path_prefix: Path | None = None, dtype: torch.dtype = torch.float32,
                   info: Callable[[str], None] | None = None) -> FeatureSet:
    """Run a frozen encoder once over ``images`` (N, 3, H, W) and keep its five maps.

    The maps are written batch by batch into their storage: in RAM (``path_prefix`` None),
    or into ``<path_prefix>_f<i>.npy`` files (written atomically, then opened read-only as
    memory maps) with a sidecar ``<path_prefix>.json`` recording what they were computed
    from. A disk cache whose sidecar and files match the encoder weights, images, masks and
    dtype is reused without encoding; any other is recomputed, never read.

    Args:
        encoder: the frozen encoder (put in eval mode), returning the five maps of a batch.
        images: (N, 3, H, W) normalised images.
        masks: (N, H, W) int64 labels.
        batch_size: images encoded at a time (what bounds the RAM of the disk cache).
        progress: called with the number of images done after each batch.
        path_prefix: where the disk cache lives; None keeps the maps in RAM.
        dtype: ``torch.float32`` or ``torch.float16`` (half the bytes; read back as float32).
        info: told whether a disk cache was reused or why it was recomputed.

    Returns:
        The split's FeatureSet (``feats``: tensors in RAM, read-only np.memmap on disk).

    Raises:
        ConfigError: an unsupported dtype, or float16 features that overflow.
        DataError: no images.
    """
    if dtype not in CACHE_DTYPES:
        raise ConfigError(f"feature cache dtype {dtype}: not supported; use float32 or float16 "
                          "(compute.cache_dtype)")
    n = int(images.shape[0])
    if n == 0:
        raise DataError(f"feature cache {path_prefix or 'in RAM'}: the split has no images; "
                        "give every split at least one image (data.splits)")
    encoder.eval()
    if path_prefix is None:
        arrays = _encode_into(encoder, images, batch_size, progress, dtype,
                              lambda shape: np.empty(shape, dtype=CACHE_DTYPES[dtype]))
        return FeatureSet(masks=masks, feats=[torch.from_numpy(a) for a in arrays])
    prefix = Path(path_prefix)
    meta = _cache_meta(encoder, images, masks, dtype)
    reused = _open_cache(prefix, meta)
    if isinstance(reused, list):
        if info is not None:
            info(f"feature cache {prefix}_f*.npy: reused (same encoder, images, masks, dtype)")
        if progress is not None:
            progress(n)
        return FeatureSet(masks=masks, feats=list(reused))
    if info is not None and reused:
        info(f"feature cache {prefix}_f*.npy: {reused}; recomputing")
    return FeatureSet(masks=masks, feats=list(_write_cache(
        prefix, meta, encoder, images, batch_size, progress, dtype)))


def _encode_into(encoder: nn.Module, images: torch.Tensor, batch_size: int,
                 progress: Callable[[int], None] | None, dtype: torch.dtype,
                 allocate: Callable[[tuple[int, ...]], np.ndarray]) -> list[np.ndarray]:
    """Encode ``images`` batch by batch, writing each batch's maps into arrays made by
    ``allocate((N, C_i, H_i, W_i))`` on the first batch; returns the arrays."""
    n = int(images.shape[0])
    arrays: list[np.ndarray] = []
    for start in range(0, n, batch_size):
        outs = encoder(images[start:start + batch_size])  # five (B, C_i, H_i, W_i)
        if not arrays:
            arrays = [allocate((n, *o.shape[1:])) for o in outs]
        for arr, out in zip(arrays, outs, strict=True):
            block = out.detach().to("cpu", dtype).numpy()
            if dtype == torch.float16 and not np.isfinite(block).all():
                raise ConfigError("compute.cache_dtype: float16 overflows on these encoder "
                                  "features (values beyond 65504); use compute.cache_dtype: "
                                  "float32")
            arr[start:start + block.shape[0]] = block
        if progress is not None:
            progress(min(batch_size, n - start))
    return arrays


def _write_cache(prefix: Path, meta: dict[str, Any], encoder: nn.Module, images: torch.Tensor,
                 batch_size: int, progress: Callable[[int], None] | None,
                 dtype: torch.dtype) -> list[np.ndarray]:
    """Encode into new ``.npy`` files (each atomic), then the sidecar; returns them opened
    read-only.

    Raises:
        DataError: the files just written cannot be read back.
    """
    sidecar = prefix.with_name(prefix.name + ".json")
    # the sidecar goes first: while the files are being replaced, none vouches for them
    sidecar.unlink(missing_ok=True)
    with ExitStack() as stack:
        tmps: list[Path] = []

        writers: list[_NpyWriter] = []

        def allocate(shape: tuple[int, ...]) -> Any:  # one per map, on the first batch
            path = _tap_paths(prefix, len(tmps) + 1)[-1]
            tmps.append(stack.enter_context(atomic_path(path)))
            writers.append(_NpyWriter(tmps[-1], shape, np.dtype(CACHE_DTYPES[dtype])))
            return writers[-1]

        try:
            _encode_into(encoder, images, batch_size, progress, dtype, allocate)
        finally:
            for writer in writers:
                writer.close()  # complete on disk before the renames as the stack closes
        shapes = [list(w.shape) for w in writers]
    paths = _tap_paths(prefix, len(shapes))
    for stale in _tap_paths(prefix, None)[len(shapes):]:  # extra maps of another encoder
        stale.unlink(missing_ok=True)
    write_json_atomic(sidecar, {**meta, "shapes": shapes,
                                "files": {p.name: _file_id(p) for p in paths}})
    opened = _open_cache(prefix, meta)
    if not isinstance(opened, list):
        raise DataError(f"feature cache {prefix}_f*.npy: unreadable right after writing it "
                        f"({opened}); check the disk under {prefix.parent}")
    return opened


def _tap_paths(prefix: Path, count: int | None) -> list[Path]:
    """The ``<prefix>_f<i>.npy`` files: ``count`` of them, or those that exist (None)."""
    if count is not None:
        return [prefix.with_name(f"{prefix.name}_f{i}.npy") for i in range(count)]
    found: list[Path] = []
    while (p := prefix.with_name(f"{prefix.name}_f{len(found)}.npy")).exists():
        found.append(p)
    return found


def _read_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of a ``.npy`` map read with plain file reads, not through the mapping: the pages
    go to the kernel's page cache (reclaimable), never into this process's resident memory,
    so RSS stays at one batch however large the cache and however long the run."""
    if not isinstance(arr, np.memmap) or arr.filename is None:
        return np.ascontiguousarray(arr[rows])
    out = np.empty((len(rows), *arr.shape[1:]), dtype=arr.dtype)
    row_bytes = int(np.prod(arr.shape[1:])) * arr.dtype.itemsize
    with open(arr.filename, "rb") as fh:
        for j, i in enumerate(rows):
            fh.seek(arr.offset + int(i) * row_bytes)
            if fh.readinto(memoryview(out[j]).cast("B")) != row_bytes:
                raise DataError(f"feature cache {arr.filename}: shorter than its header says "
                                "(truncated?); delete RUN/cache to recompute it")
    return out


class _NpyWriter:
    """A ``.npy`` file written front to back with plain writes (``arr[a:b] = block``), so
    encoding a large split never maps the whole file into memory."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        np.lib.format.write_array_header_1_0(
            self.fh, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                      "shape": shape})
        self.offset = self.fh.tell()
        self.row_bytes = int(np.prod(shape[1:])) * self.dtype.itemsize
        self.fh.truncate(self.offset + shape[0] * self.row_bytes)

    def __setitem__(self, rows: slice, block: np.ndarray) -> None:
        self.fh.seek(self.offset + int(rows.start) * self.row_bytes)
        self.fh.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())

    def close(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


def _file_id(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"bytes": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _open_cache(prefix: Path, meta: dict[str, Any]) -> list[np.ndarray] | str:
    """The cached maps as read-only memmaps, or why they cannot be used ('' for no cache)."""
    sidecar = prefix.with_name(prefix.name + ".json")
    if not sidecar.is_file():
        return ""
    try:
        stored = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        return f"sidecar {sidecar.name} unreadable ({type(exc).__name__})"
    if not isinstance(stored, dict):
        return f"sidecar {sidecar.name} is not a JSON object"
    changed = [k for k, v in meta.items() if stored.get(k) != v]
    if changed:
        return f"computed from other {', '.join(changed)}"
    shapes, files = stored.get("shapes"), stored.get("files")
    if not isinstance(shapes, list) or not isinstance(files, dict) or not shapes:
        return f"sidecar {sidecar.name} lacks shapes/files"
    arrays: list[np.ndarray] = []
    for path, shape in zip(_tap_paths(prefix, len(shapes)), shapes, strict=True):
        if not path.is_file() or files.get(path.name) != _file_id(path):
            return f"{path.name} is missing or not the file the sidecar records"
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:  # truncated or not a .npy
            return f"{path.name} unreadable ({exc})"
        if list(arr.shape) != shape or arr.dtype != np.dtype(meta["dtype"]):
            return f"{path.name} holds {arr.dtype} {list(arr.shape)}, not {meta['dtype']} {shape}"
        arrays.append(arr)
    return arrays


def _cache_meta(encoder: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                dtype: torch.dtype) -> dict[str, Any]:
    """What a disk cache is computed from (compared with its sidecar on reuse)."""
    return {"version": CACHE_VERSION, "n_images": int(images.shape[0]),
            "size": [int(images.shape[-2]), int(images.shape[-1])],
            "dtype": np.dtype(CACHE_DTYPES[dtype]).name, "encoder": module_sha256(encoder),
            "masks": _sha256(masks), "images": _sha256(images[:, :, ::8, ::8])}


def module_sha256(module: nn.Module) -> str:
    """sha256 of a module's state_dict (names, dtypes, shapes and values): its weights'
    identity, whatever file or seed they came from."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)};".encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()


def _sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(f"{tensor.dtype}:{list(tensor.shape)};".encode()
                          + _bytes(tensor)).hexdigest()


def _bytes(tensor: torch.Tensor) -> bytes:
    t = tensor.detach().to("cpu").contiguous()
    # bfloat16 has no numpy dtype: hash its raw 16-bit words
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
