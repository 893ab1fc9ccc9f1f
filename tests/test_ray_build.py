"""``index build --backend ray`` writes the same index as the local build."""

from __future__ import annotations

import numpy as np
import pytest

from knockoff.cli.app import main
from knockoff.match.index import ReferenceIndex


@pytest.mark.slow
def test_ray_build_equals_the_local_build(catalog_dir, tmp_path, capsys):
    pytest.importorskip("ray")
    (catalog_dir / "acme" / "broken.png").write_bytes(b"not an image")  # skipped the same way by both
    with (catalog_dir / "references.csv").open("a") as handle:
        handle.write("Acme,broken,Broken,acme/broken.png,,\n")
    folders = {}
    for backend in ("local", "ray"):
        folders[backend] = tmp_path / backend
        code = main(["index", "build", str(catalog_dir), "--out", str(folders[backend]), "--engine", "test-pixels",
                     "--backend", backend])
        assert code == 0, capsys.readouterr()
    local, ray = (ReferenceIndex.load(folders[b]) for b in ("local", "ray"))
    assert len(local) == len(ray) == 4
    assert dict(local.references.items()) == dict(ray.references.items())
    for ref_id in local.references:
        np.testing.assert_array_equal(local.reference_vectors(ref_id), ray.reference_vectors(ref_id))
    names = sorted(p.name for p in folders["local"].iterdir() if p.suffix == ".npy")
    assert names == sorted(p.name for p in folders["ray"].iterdir() if p.suffix == ".npy")
    for name in names:  # the reference table and the stored keypoints, byte for byte
        assert (folders["local"] / name).read_bytes() == (folders["ray"] / name).read_bytes(), name


def test_a_skipped_photo_travels_back_from_a_ray_task():
    import pickle

    from knockoff.errors import ImageError

    error = pickle.loads(pickle.dumps(ImageError("/c/a.png", "not an image")))
    assert (type(error), error.path, error.problem, str(error)) == (ImageError, "/c/a.png", "not an image",
                                                                   "/c/a.png: not an image")
