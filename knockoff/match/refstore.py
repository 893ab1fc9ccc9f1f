"""What verification needs from the reference photos, stored in the index folder (so that it is self-contained).

For each reference photo, computed once when it is added to the index: its RootSIFT keypoints (positions,
responses, descriptors), the sizes of the photo and of its resized copy, the grayscale thumbnail the pixel
check compares, and, for a small photo, its resized grayscale copy (for the enlarged second match of the
packaging check). Four files, covered by the manifest's checksums and memory-mapped on load:

- ``features_table.npy``: int64, one row a reference photo (:data:`TABLE_COLUMNS`);
- ``features_keypoints.npy``: float32 ``(n, 3)``: x, y (resized-image pixels), SIFT response;
- ``features_descriptors.npy``: uint8 ``(n, 128)``: RootSIFT times :data:`DESCRIPTOR_SCALE`, rounded. RootSIFT
  components are at most sqrt(0.2) (SIFT clips each bin at 0.2 of the norm), so nothing is clipped; the
  rounding moved 1 RootSIFT-verified inlier in 192 copy/reference pairs of real photos, and no verdict;
- ``features_pixels.npy``: uint8, the thumbnails, small grayscale copies and RGB colour thumbnails (longer side
  ``colour_side``, for the colour and small-print checks of a copy), one after the other.

About 140 bytes a keypoint (at most ``max_features`` = 1500 a photo) plus about 20 KB of grayscale thumbnail
and up to 300 KB of colour thumbnail (320 px, 3 channels) a photo.
The features depend on the verifier's ``max_side``, ``max_features``, ``thumbnail_side`` and
``enlarge_small_to`` and ``colour_side`` (:data:`FEATURE_SETTINGS`); they are kept in the manifest, and a verifier with other values
computes its own from the photos.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from knockoff.errors import IndexCorruptError

DESCRIPTOR_SCALE = 512.0
FEATURE_SETTINGS = ("max_side", "max_features", "thumbnail_side", "enlarge_small_to", "colour_side")
FEATURE_FILES = ("features_table.npy", "features_keypoints.npy", "features_descriptors.npy", "features_pixels.npy")
TABLE_COLUMNS = ("ref_id", "kp_start", "kp_count", "work_w", "work_h", "image_w", "image_h",
                 "thumb_start", "thumb_h", "thumb_w", "small_start", "small_h", "small_w",
                 "colour_start", "colour_h", "colour_w")
#: the columns of indexes written before the colour thumbnail was stored (read as having none)
_OLD_COLUMNS = 13
_CHANNELS = {"thumb": 1, "small": 1, "colour": 3}
_C = {name: i for i, name in enumerate(TABLE_COLUMNS)}


def feature_settings(settings: Any) -> dict[str, int]:
    """The settings of a ``VerifierSettings`` that the stored features depend on."""
    return {name: int(getattr(settings, name)) for name in FEATURE_SETTINGS if hasattr(settings, name)}


@dataclass(frozen=True, eq=False)
class StoredFeatures:
    """One reference photo's features in their stored (compact) form."""

    points: np.ndarray  # (n, 2) float32
    responses: np.ndarray  # (n,) float32
    descriptors: np.ndarray  # (n, 128) uint8, RootSIFT * DESCRIPTOR_SCALE
    work_size: tuple[int, int]
    image_size: tuple[int, int]
    thumbnail: np.ndarray | None  # 2-D uint8
    small_gray: np.ndarray | None  # 2-D uint8
    colour: np.ndarray | None = None  # (h, w, 3) uint8, for the colour and small-print checks

    @classmethod
    def from_local(cls, features: Any) -> StoredFeatures:
        """From a ``knockoff.match.verify.LocalFeatures``."""
        count = len(features.points)
        responses = features.responses if features.responses is not None else np.zeros(count, np.float32)
        quantized = np.clip(np.rint(np.asarray(features.descriptors) * DESCRIPTOR_SCALE), 0, 255).astype(np.uint8)
        return cls(np.asarray(features.points, np.float32).reshape(count, 2), np.asarray(responses, np.float32),
                   quantized.reshape(count, 128), tuple(features.work_size), tuple(features.image_size),
                   features.thumbnail, features.small_gray, getattr(features, "colour", None))

    def to_local(self) -> Any:
        """As a ``knockoff.match.verify.LocalFeatures`` that the verifier uses as it is."""
        from knockoff.match.verify import LocalFeatures

        descriptors = np.asarray(self.descriptors, np.float32) / np.float32(DESCRIPTOR_SCALE)
        return LocalFeatures(np.asarray(self.points, np.float32), descriptors, self.work_size, self.image_size,
                             responses=np.asarray(self.responses, np.float32), thumbnail=self.thumbnail,
                             small_gray=self.small_gray, colour=self.colour)


class FeatureStore:
    """Reference id -> :class:`StoredFeatures`: the arrays loaded from an index folder (looked up by a binary
    search over their sorted ids: no Python object a photo) plus those added since, less those removed."""

    def __init__(self, settings: dict[str, int]):
        self.settings = dict(settings)
        self._added: dict[int, StoredFeatures] = {}
        self._table = np.zeros((0, len(TABLE_COLUMNS)), np.int64)
        self._sorted_ids = np.zeros(0, np.int64)  # the loaded table's reference ids, sorted
        self._order: np.ndarray | None = None  # the table row of each sorted id (None: the table is in id order)
        self._removed: set[int] = set()  # loaded ids removed or replaced since
        self._keypoints = np.zeros((0, 3), np.float32)
        self._descriptors = np.zeros((0, 128), np.uint8)
        self._pixels = np.zeros(0, np.uint8)

    def _loaded_row(self, ref_id: object) -> int:
        """The table row of a loaded reference id not removed since, or -1."""
        if not isinstance(ref_id, (int, np.integer)) or ref_id in self._removed:
            return -1
        at = int(np.searchsorted(self._sorted_ids, ref_id))
        if at == len(self._sorted_ids) or int(self._sorted_ids[at]) != ref_id:
            return -1
        return at if self._order is None else int(self._order[at])

    def __len__(self) -> int:
        return len(self._sorted_ids) - len(self._removed) + len(self._added)

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._added or self._loaded_row(ref_id) >= 0

    def ids(self) -> list[int]:
        loaded = self._sorted_ids
        if self._removed:
            loaded = loaded[~np.isin(loaded, np.fromiter(self._removed, np.int64, len(self._removed)))]
        return sorted({*loaded.tolist(), *self._added})

    def put(self, ref_id: int, features: StoredFeatures) -> None:
        self.discard(ref_id)
        self._added[ref_id] = features

    def discard(self, ref_id: int) -> None:
        self._added.pop(ref_id, None)
        if self._loaded_row(ref_id) >= 0:
            self._removed.add(int(ref_id))

    def get(self, ref_id: int) -> StoredFeatures | None:
        if ref_id in self._added:
            return self._added[ref_id]
        row = self._loaded_row(ref_id)
        if row < 0:
            return None
        r = self._table[row]
        start, count = int(r[_C["kp_start"]]), int(r[_C["kp_count"]])
        keypoints = self._keypoints[start : start + count]
        return StoredFeatures(keypoints[:, :2], keypoints[:, 2], self._descriptors[start : start + count],
                              (int(r[_C["work_w"]]), int(r[_C["work_h"]])),
                              (int(r[_C["image_w"]]), int(r[_C["image_h"]])),
                              self._image(r, "thumb"), self._image(r, "small"), self._image(r, "colour"))

    def _image(self, row: np.ndarray, kind: str) -> np.ndarray | None:
        start, h, w = (int(row[_C[f"{kind}_{c}"]]) for c in ("start", "h", "w"))
        if h == 0 or w == 0:
            return None
        channels = _CHANNELS[kind]
        image = self._pixels[start : start + h * w * channels]
        return image.reshape(h, w) if channels == 1 else image.reshape(h, w, channels)

    # -- files -------------------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the four files (every reference photo, loaded or added, in reference-id order). The keypoints,
        descriptors and pixels are written photo by photo into memory-mapped files, never joined in memory:
        at 10^5 reference photos the pixels alone are about 30 GB."""
        items = [(ref_id, f) for ref_id in self.ids() if (f := self.get(ref_id)) is not None]
        table, kp_total, px_total = _layout(items)
        np.save(folder / FEATURE_FILES[0], table, allow_pickle=False)
        keypoints = _open_for_writing(folder / FEATURE_FILES[1], (kp_total, 3), np.float32)
        descriptors = _open_for_writing(folder / FEATURE_FILES[2], (kp_total, 128), np.uint8)
        pixels = _open_for_writing(folder / FEATURE_FILES[3], (px_total,), np.uint8)
        for (_, f), row in zip(items, table):
            at, n = int(row[_C["kp_start"]]), int(row[_C["kp_count"]])
            keypoints[at : at + n] = np.column_stack([f.points, f.responses]).astype(np.float32).reshape(-1, 3)
            descriptors[at : at + n] = np.asarray(f.descriptors, np.uint8).reshape(-1, 128)
            for kind, image in (("thumb", f.thumbnail), ("small", f.small_gray), ("colour", f.colour)):
                if image is not None:
                    px_at = int(row[_C[f"{kind}_start"]])
                    pixels[px_at : px_at + image.size] = np.asarray(image, np.uint8).ravel()
        for written in (keypoints, descriptors, pixels):
            if isinstance(written, np.memmap):
                written.flush()

    @classmethod
    def load(
        cls, folder: Path, settings: dict[str, int], reference_ids: Collection[int] | np.ndarray, *,
        mmap: bool = True,
    ) -> FeatureStore:
        """Read (memory-map) the four files; any inconsistency, or a reference id not in ``reference_ids``, is an
        :class:`IndexCorruptError`."""
        store = cls(settings)
        try:
            store._table = _with_all_columns(np.load(folder / FEATURE_FILES[0], allow_pickle=False))
            mode: Literal["r"] | None = "r" if mmap else None
            store._keypoints, store._descriptors, store._pixels = (
                np.load(folder / name, mmap_mode=mode, allow_pickle=False) for name in FEATURE_FILES[1:])
        except (OSError, ValueError, EOFError) as exc:
            raise IndexCorruptError(f"{folder}: cannot read the stored reference features ({exc})") from exc
        known = reference_ids if isinstance(reference_ids, np.ndarray) else np.fromiter(reference_ids, np.int64)
        problem = store._problem(known)
        if problem:
            raise IndexCorruptError(f"{folder}: the stored reference features are damaged ({problem})")
        ids = store._table[:, _C["ref_id"]]
        if len(ids) and np.any(ids[1:] <= ids[:-1]):  # as save writes it, the table is in id order
            store._order = np.argsort(ids, kind="stable")
            ids = ids[store._order]
        store._sorted_ids = np.ascontiguousarray(ids)
        return store

    def _problem(self, reference_ids: np.ndarray) -> str | None:
        t, kp, desc, px = self._table, self._keypoints, self._descriptors, self._pixels
        shapes_ok = (t.dtype == np.int64 and t.ndim == 2 and t.shape[1] == len(TABLE_COLUMNS)
                     and kp.dtype == np.float32 and kp.ndim == 2 and kp.shape[1] == 3
                     and desc.dtype == np.uint8 and desc.shape == (len(kp), 128)
                     and px.dtype == np.uint8 and px.ndim == 1)
        if not shapes_ok:
            return "unexpected array types or shapes"
        if (t < 0).any():
            return "negative numbers in the table"
        ids = t[:, _C["ref_id"]]
        if not all_distinct(ids):
            return "reference ids repeated"
        if not np.isin(ids, reference_ids, assume_unique=True).all():
            return "reference ids unknown to the index"
        if (t[:, _C["kp_start"]] + t[:, _C["kp_count"]] > len(kp)).any():
            return "keypoint ranges beyond the keypoints file"
        for kind, channels in _CHANNELS.items():
            if (t[:, _C[f"{kind}_start"]] + t[:, _C[f"{kind}_h"]] * t[:, _C[f"{kind}_w"]] * channels > len(px)).any():
                return "image ranges beyond the pixels file"
        return None


def all_distinct(ids: np.ndarray) -> bool:
    """Whether no value repeats: a check of adjacent values, after a sort unless they already increase (numpy's
    hash-based ``np.unique`` takes seconds over 10^6 ids, a sort a few tens of milliseconds)."""
    if len(ids) < 2:
        return True
    ordered = ids if bool(np.all(ids[1:] > ids[:-1])) else np.sort(ids)
    return not bool(np.any(ordered[1:] == ordered[:-1]))


def _with_all_columns(table: np.ndarray) -> np.ndarray:
    """A table of an index written before the colour columns existed, padded with zeros (no colour stored)."""
    if table.ndim == 2 and table.shape[1] == _OLD_COLUMNS and table.dtype == np.int64:
        return np.hstack([table, np.zeros((len(table), len(TABLE_COLUMNS) - _OLD_COLUMNS), np.int64)])
    return table


def _layout(items: list[tuple[int, StoredFeatures]]) -> tuple[np.ndarray, int, int]:
    """The table of ``items`` (where each photo's keypoints and images start in the files) and the files' lengths:
    keypoints and pixel bytes."""
    table = np.zeros((len(items), len(TABLE_COLUMNS)), np.int64)
    kp_at = px_at = 0
    for row, (ref_id, f) in enumerate(items):
        values = {"ref_id": ref_id, "kp_start": kp_at, "kp_count": len(f.points), "work_w": f.work_size[0],
                  "work_h": f.work_size[1], "image_w": f.image_size[0], "image_h": f.image_size[1]}
        for kind, image in (("thumb", f.thumbnail), ("small", f.small_gray), ("colour", f.colour)):
            if image is not None:
                values.update({f"{kind}_start": px_at, f"{kind}_h": image.shape[0], f"{kind}_w": image.shape[1]})
                px_at += image.size
        table[row] = [values.get(name, 0) for name in TABLE_COLUMNS]
        kp_at += len(f.points)
    return table, kp_at, px_at


def _open_for_writing(path: Path, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A new ``.npy`` file of ``shape``, memory-mapped for writing (an empty array is written at once: an empty
    file cannot be memory-mapped)."""
    if 0 in shape:
        empty = np.zeros(shape, dtype)
        np.save(path, empty, allow_pickle=False)
        return empty
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
