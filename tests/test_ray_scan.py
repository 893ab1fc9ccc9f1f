"""The Ray scan equals the local scan, listing by listing, and resumes the same way (skipped without ray).

Warnings filtered here, narrowly: Ray Data's own ``DataContext`` warns about its deprecated settings
(``use_push_based_shuffle``, ``use_polars``) each time it is created (DeprecationWarning from the module
``ray.data.context``), which ``filterwarnings = error`` would turn into failures.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from knockoff import Catalog, build_index
from knockoff.errors import KnockoffError
from knockoff.run.ray_scan import plan_actors
from knockoff.run.scan import scan

from conftest import textured_image, write_csv

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

N_LISTINGS = 300


@pytest.mark.parametrize(("resources", "num_actors", "expected"), [
    ({"CPU": 4}, None, (3, 1.0, 0.0)),  # a quarter (at least one CPU) left to decoding
    ({"CPU": 2}, None, (1, 1.0, 0.0)),
    ({"CPU": 2}, 2, (2, 0.5, 0.0)),  # two actors on two CPUs: the pool that starved decoding gets half a CPU each
    ({"CPU": 16}, None, (12, 1.0, 0.0)),
    ({"CPU": 8, "GPU": 2}, None, (2, 1.0, 1.0)),
])
def test_actor_pool_leaves_cpu_to_decoding(resources, num_actors, expected):
    plan = plan_actors(resources, num_actors=num_actors)
    assert (plan.num_actors, plan.actor_cpus, plan.actor_gpus) == expected
    assert plan.num_actors * plan.actor_cpus <= resources["CPU"] - 1


def test_actor_pool_refuses_what_cannot_run():
    with pytest.raises(KnockoffError, match="at least 2 CPUs"):
        plan_actors({"CPU": 1})
    with pytest.raises(KnockoffError, match="3 GPU actors"):
        plan_actors({"CPU": 8, "GPU": 2}, num_actors=3)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (scan_with_ray uses it as it is and leaves it open)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _make_listings(root: Path, catalog_dir: Path) -> Path:
    """Copies of the official photos (some with a suspicious title, price or seller), unrelated photos,
    and a few damaged files, in a listings.csv."""
    folder = root / "listings"
    folder.mkdir(parents=True)
    refs = sorted(catalog_dir.rglob("*.png"))
    rows = []
    for i in range(N_LISTINGS):
        name = f"l{i:04d}.jpg"
        if i % 4 == 0:
            with Image.open(refs[i % len(refs)]) as ref:
                ref.convert("RGB").resize((120, 120)).save(folder / name, quality=90)
        elif i % 97 == 5:
            (folder / name).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        else:
            textured_image(5000 + i, (64, 64)).save(folder / name, quality=85)
        title, price, seller = ("Acme tote AAA replica", "45", "shop9") if i % 8 == 0 else ("bag", "400", "acme_store")
        rows.append([f"L{i}", name, title, price, "USD" if price else "", seller])
    write_csv(folder / "listings.csv", ["listing_id", "image", "title", "price", "currency", "seller"], rows)
    return folder


def _rows(path: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    ids = Counter(r["listing_id"] for r in lines)
    assert max(ids.values()) == 1, "a listing was written twice"
    return {r["listing_id"]: r for r in lines}


@pytest.mark.slow
def test_ray_scan_equals_local_scan_and_resumes(local_ray, catalog_dir, tmp_path):
    from knockoff.run.ray_scan import scan_with_ray

    folder = _make_listings(tmp_path, catalog_dir)
    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")  # shipped to the actors pickled
    local = scan(folder, index, tmp_path / "local", workers=0, batch_size=16)
    remote = scan_with_ray(folder, index, tmp_path / "ray", batch_size=16, num_actors=2, timeout_s=120)
    assert remote.decided == local.decided == N_LISTINGS and remote.counts == local.counts
    assert {"suspect", "authorized", "no_match", "error"} <= set(local.counts)
    expected, got = _rows(local.results_path), _rows(remote.results_path)
    assert list(got) == list(expected)  # same listings, same order
    for listing_id, row in expected.items():
        for field in ("verdict", "risk", "match"):
            assert got[listing_id][field] == row[field], (listing_id, field)
    assert remote.results_path.read_text() == local.results_path.read_text()  # in fact, the same lines

    # resume: a killed scan left 100 lines and a torn one; the Ray scan adds exactly the rest
    lines = local.results_path.read_text().splitlines(keepends=True)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "results.jsonl").write_text("".join(lines[:100]) + lines[100][:40])
    resumed = scan_with_ray(folder, index, partial, batch_size=16, num_actors=2, timeout_s=120)
    errors_before = sum(json.loads(line)["verdict"] == "error" for line in lines[:100])  # retried on a rerun
    assert errors_before == 1 and resumed.redecided == {"error": 1}
    assert resumed.already_done == 99 and resumed.decided == N_LISTINGS - 99 and resumed.counts == local.counts
    assert _rows(partial / "results.jsonl") == expected
    again = scan_with_ray(folder, index, partial, num_actors=1, timeout_s=120)  # the errors only (damaged files)
    assert again.decided == again.redecided["error"] == local.counts["error"] and again.total == N_LISTINGS


@pytest.mark.slow
def test_a_stalled_ray_scan_fails_with_a_clear_message(local_ray, catalog_dir, tmp_path):
    from knockoff.run.ray_scan import scan_with_ray

    folder = tmp_path / "few"
    folder.mkdir()
    for i in range(6):
        textured_image(i, (64, 64)).save(folder / f"{i}.jpg")
    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")
    with pytest.raises(KnockoffError, match="no progress for 0.01 s.*run the scan again to resume"):
        scan_with_ray(folder, index, tmp_path / "out", num_actors=1, timeout_s=0.01)


def test_an_index_ships_as_state_and_refuses_another_embedder(catalog_dir):
    import pickle

    import numpy as np

    from knockoff import ReferenceIndex, create_embedder
    from knockoff.errors import IndexMismatchError

    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")
    state = pickle.loads(pickle.dumps(index.to_state()))  # how the index travels to Ray actors
    copy = ReferenceIndex.from_state(state, create_embedder("test-pixels"))
    query = np.random.default_rng(0).standard_normal((3, index.embedder.dim)).astype(np.float32)
    assert [[h.reference_id for h in hits] for hits in copy.search(query, 3)] == \
        [[h.reference_id for h in hits] for hits in index.search(query, 3)]
    with pytest.raises(IndexMismatchError, match="test-pixels:8.*test-pixels:4"):
        ReferenceIndex.from_state(state, create_embedder("test-pixels:4"))
