"""Grow from seeds: exact voxel counts, updates equal full runs, seeds at RAS points, real CT lungs."""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest
from conftest import write_volume
from slicer.util import arrayFromVolume

from SegTruthLogic import Cancelled, SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume, volume_from_array
from SegTruthLogic.tools.grow import (
    GrowCut,
    grow_from_seeds,
    grow_labels,
    paint_spheres,
    paint_stroke,
    seed_map,
    seeds_from_labelmap,
)

BOX_A = np.s_[5:15, 10:20, 10:30]  # the two_boxes fixture: 2000 voxels of 100
BOX_B = np.s_[20:35, 25:45, 30:50]  # 6000 voxels of 200


def noisy_image(shape, seed=0, dtype=np.float32) -> np.ndarray:
    """Smooth blobs plus noise: float costs with practically no ties."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    blobs = 300 * np.exp(-((i - 0.3) ** 2 + (j - 0.4) ** 2 + (k - 0.5) ** 2) / 0.03)
    blobs += 200 * np.exp(-((i - 0.7) ** 2 + (j - 0.6) ** 2 + (k - 0.4) ** 2) / 0.02)
    return (blobs + rng.normal(0, 15, shape)).astype(dtype)


def seed_points(seeds: np.ndarray, label: int, points) -> np.ndarray:
    for point in points:
        seeds[point] = label
    return seeds


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# -- exact results ---------------------------------------------------------------------------------------------
def test_two_boxes_give_exactly_the_boxes(session, two_boxes):
    volume = load_volume(session, two_boxes)
    values = arrayFromVolume(volume)
    seeds = seed_map(volume)
    seeds[10, 15, 20], seeds[27, 35, 40] = 1, 2
    seeds[0, 0, 0] = seeds[-1, -1, -1] = 3  # background seeds in opposite corners: the region is the whole image
    for connectivity in (6, 26):
        labels = grow_labels(values, seeds, Grid.from_node(volume).spacing, connectivity=connectivity)
        assert np.bincount(labels.ravel()).tolist() == [0, 2000, 6000, values.size - 8000]
        assert (labels[BOX_A] == 1).all() and (labels[BOX_B] == 2).all()


def test_segments_are_seeds_and_are_replaced(session, two_boxes):
    volume = load_volume(session, two_boxes)
    segmentation = new_segmentation(session, volume)
    for name, points in (("a", [(10, 15, 20)]), ("b", [(27, 35, 40)]), ("rest", [(0, 0, 0), (39, 49, 59)])):
        mask = np.zeros(arrayFromVolume(volume).shape, dtype=bool)
        set_segment_mask(
            session, segmentation, add_segment(segmentation, name), seed_points(mask, True, points), volume
        )
    cut = grow_from_seeds(session, segmentation, volume)
    counts = {n: int(segment_mask(session, segmentation, find_segment(segmentation, n), volume).sum()) for n in "ab"}
    assert counts == {"a": 2000, "b": 6000}
    rest = segment_mask(session, segmentation, find_segment(segmentation, "rest"), volume)
    assert rest.sum() == 40 * 50 * 60 - 8000 and not rest[BOX_A].any()
    assert cut.last_update == "full"


def test_region_is_the_seed_box_plus_margin(session, two_boxes):
    values = arrayFromVolume(load_volume(session, two_boxes))
    seeds = np.zeros(values.shape, np.uint8)
    seeds[10, 10, 10], seeds[20, 30, 40] = 1, 2  # box sizes 11, 21, 31 -> margins 2, 4, 5 at 15 %
    cut = GrowCut(values)
    labels = cut.update(seeds)
    assert cut.box == (slice(8, 23), slice(6, 35), slice(5, 46))
    inside = np.zeros(values.shape, dtype=bool)
    inside[cut.box] = True
    assert (labels[inside] > 0).all() and not labels[~inside].any()
    assert np.isinf(cut.costs[~inside]).all() and cut.costs[10, 10, 10] == 0


def test_mask_and_editable_intensity_range(session, two_boxes):
    volume = load_volume(session, two_boxes)
    values = arrayFromVolume(volume)
    seeds = seed_points(np.zeros(values.shape, np.uint8), 1, [(10, 15, 20)])
    seeds = seed_points(seeds, 2, [(0, 0, 0), (39, 49, 59)])
    labels = grow_labels(values, seeds, mask=values != 200)  # box B is not editable
    assert np.bincount(labels.ravel()).tolist() == [6000, 2000, values.size - 8000]
    segmentation = new_segmentation(session, volume)
    for name, label in (("a", 1), ("rest", 2)):
        set_segment_mask(session, segmentation, add_segment(segmentation, name), seeds == label, volume)
    grow_from_seeds(session, segmentation, volume, intensity_range=(0, 150))
    masks = [segment_mask(session, segmentation, find_segment(segmentation, n), volume) for n in ("a", "rest")]
    assert [int(m.sum()) for m in masks] == [2000, values.size - 8000]
    assert not (masks[0] | masks[1])[BOX_B].any()


def reference_costs(image, seeds, spacing, connectivity, penalty):
    """Textbook Dijkstra (heapq, float costs) from the seeds of each label; seeds of other labels end paths."""
    shape = image.shape
    moves = [m for m in itertools.product((-1, 0, 1), repeat=3) if any(m)]
    moves = [m for m in moves if connectivity == 26 or sum(map(abs, m)) == 1]
    step = {m: penalty * float(np.linalg.norm(np.array(m) * np.array(spacing[::-1]))) for m in moves}
    costs = []
    for label in np.unique(seeds[seeds > 0]):
        cost = np.full(shape, np.inf)
        queue = [(0.0, tuple(int(v) for v in p)) for p in np.argwhere(seeds == label)]
        for _, p in queue:
            cost[p] = 0.0
        while queue:
            c, p = heapq.heappop(queue)
            if c > cost[p]:
                continue
            for m in moves:
                q = (p[0] + m[0], p[1] + m[1], p[2] + m[2])
                if min(q) < 0 or any(q[a] >= shape[a] for a in range(3)) or seeds[q]:
                    continue
                new = c + abs(float(image[p]) - float(image[q])) + step[m]
                if new < cost[q]:
                    cost[q] = new
                    heapq.heappush(queue, (new, q))
        costs.append(cost)
    return np.unique(seeds[seeds > 0]), np.stack(costs)


@pytest.mark.parametrize(("dtype", "connectivity", "penalty"), [(np.int16, 6, 0.0), (np.float32, 26, 1.5)])
def test_labels_follow_the_cheapest_path(dtype, connectivity, penalty):
    rng = np.random.default_rng(3)
    image = (rng.integers(0, 60, (9, 11, 13)) if dtype == np.int16 else rng.normal(0, 10, (9, 11, 13))).astype(dtype)
    seeds = np.zeros(image.shape, np.uint16)
    for label in (3, 7, 9):
        for _ in range(2):
            seeds[tuple(rng.integers(0, n) for n in image.shape)] = label
    spacing = (0.7, 1.0, 2.5)
    labels = grow_labels(image, seeds, spacing, connectivity=connectivity, distance_penalty=penalty, margin=None)
    values, costs = reference_costs(image, seeds, spacing, connectivity, penalty)
    ordered = np.sort(costs, axis=0)
    clear = ordered[1] - ordered[0] > 1e-3 * (1 + ordered[0])  # no tie within the float quantisation
    assert clear.mean() > 0.95
    assert np.array_equal(labels[clear], values[np.argmin(costs, axis=0)][clear])


# -- updates ---------------------------------------------------------------------------------------------------
def test_update_equals_a_full_run():
    image = noisy_image((40, 48, 56))
    seeds = np.zeros(image.shape, np.uint16)
    seeds[5, 5, 5], seeds[35, 40, 50], seeds[20, 19, 17], seeds[16, 29, 39] = 5, 5, 1, 2
    cut = GrowCut(image, (0.8, 0.9, 1.5))
    cut.update(seeds)
    steps = [
        np.s_[18:21, 25:28, 30:33],  # more of label 1 inside the region
        np.s_[10:12, 10:12, 40:44],  # a new label, 3, inside the region
        np.s_[30:31, 8:10, 8:10],  # a new label value below the others: re-slotting
    ]
    for label, where in zip((1, 3, 2), steps):
        seeds[where] = label
        labels = cut.update(seeds)
        assert cut.last_update == "incremental"
        full = GrowCut(image, (0.8, 0.9, 1.5))
        assert np.array_equal(labels, full.update(seeds))
        assert np.array_equal(cut.costs, full.costs)
    seeds[39, 47, 55] = 3  # beyond the region: it grows and everything is recomputed
    assert np.array_equal(cut.update(seeds), grow_labels(image, seeds, (0.8, 0.9, 1.5)))
    assert cut.last_update == "full" and cut.box == (slice(0, 40), slice(0, 48), slice(0, 56))
    seeds[20, 19, 17] = 0  # a removed seed raises costs: only a full run is right
    assert np.array_equal(cut.update(seeds), grow_labels(image, seeds, (0.8, 0.9, 1.5)))
    assert cut.last_update == "full"


def test_updates_with_ties_follow_the_tie_rule():
    """Integer images with a few grey values tie everywhere; ties go to the smaller label in both paths."""
    rng = np.random.default_rng(7)
    kinds = []
    for trial in range(40):
        shape = tuple(int(n) for n in rng.integers(5, 12, 3))
        image = rng.integers(0, 3, shape).astype(np.uint8) if trial % 2 else np.zeros(shape, np.int16)
        options = {"connectivity": (6, 26)[trial % 4 // 2], "margin": (None, 0.15)[trial % 3 // 2]}
        seeds = np.zeros(shape, np.uint16)
        for label in (4, 2):
            seeds[tuple(rng.integers(0, n) for n in shape)] = label
        if len(np.unique(seeds)) < 3:
            continue
        cut = GrowCut(image, **options)
        cut.update(seeds)
        for _ in range(3):
            point = tuple(rng.integers(0, n) for n in shape)
            if seeds[point] == 0:
                seeds[point] = rng.choice([1, 2, 4, 6])
            labels = cut.update(seeds)
            kinds.append(cut.last_update)
            assert np.array_equal(labels, GrowCut(image, **options).update(seeds))
    assert "incremental" in kinds and "full" in kinds


def test_preview_is_updated_after_painting_and_then_applied(session):
    grid = Grid((56, 48, 40), np.diag([0.8, 0.9, 1.5, 1.0]))
    volume = volume_from_array(session, noisy_image(grid.shape_kji), grid, "noisy")
    segmentation = new_segmentation(session, volume)
    ids = [add_segment(segmentation, name) for name in ("a", "b", "rest")]
    for sid, points in zip(ids, ([(20, 19, 17)], [(16, 29, 39)], [(0, 0, 0), (39, 47, 55)])):
        mask = seed_points(np.zeros(grid.shape_kji, bool), True, points)
        set_segment_mask(session, segmentation, sid, mask, volume)
    cut = grow_from_seeds(session, segmentation, volume, preview=True)
    assert segment_mask(session, segmentation, ids[1], volume).sum() == 1  # a preview writes nothing
    before = cut.labels
    stroke = [(grid.ijk_to_ras @ [i, 12, 30, 1])[:3] for i in (30, 45)]  # a brush stroke of "b"
    painted = paint_stroke(seed_map(volume), volume, stroke, 2.0, 1).astype(bool)
    b = segment_mask(session, segmentation, ids[1], volume)
    set_segment_mask(session, segmentation, ids[1], b | painted, volume)
    assert grow_from_seeds(session, segmentation, volume, growcut=cut, preview=True) is cut
    assert cut.last_update == "incremental"
    fresh = grow_from_seeds(session, segmentation, volume, preview=True)
    assert np.array_equal(cut.labels, fresh.labels) and (cut.labels == 2).sum() > (before == 2).sum()
    grow_from_seeds(session, segmentation, volume, growcut=cut)
    assert cut.last_update == "unchanged"
    for label, sid in enumerate(ids, start=1):
        assert np.array_equal(segment_mask(session, segmentation, sid, volume), fresh.labels == label)


def test_progress_and_cancel(session, two_boxes):
    image = noisy_image((72, 72, 72))
    seeds = np.zeros(image.shape, np.uint8)
    seeds[10, 10, 10], seeds[60, 60, 60] = 1, 2
    reports: list[float] = []
    grow_labels(image, seeds, progress=lambda fraction, _message: reports.append(fraction))
    assert reports[0] == 0.0 and reports[-1] == 1.0 and reports == sorted(reports) and len(reports) > 2
    token = CancelToken()
    cut = GrowCut(image)
    with pytest.raises(Cancelled):
        cut.update(seeds, progress=lambda _fraction, _message: token.cancel(), cancel=token)
    assert not cut.labels.any()
    assert np.array_equal(cut.update(seeds), grow_labels(image, seeds))
    volume = load_volume(session, two_boxes)
    segmentation = new_segmentation(session, volume)
    for name, point in (("a", (10, 15, 20)), ("b", (27, 35, 40))):
        mask = seed_points(np.zeros(arrayFromVolume(volume).shape, bool), True, [point])
        set_segment_mask(session, segmentation, add_segment(segmentation, name), mask, volume)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        grow_from_seeds(session, segmentation, volume, cancel=token)
    assert segment_mask(session, segmentation, find_segment(segmentation, "a"), volume).sum() == 1


# -- seeds at RAS points ---------------------------------------------------------------------------------------
SHAPE = (20, 26, 32)  # k, j, i
SPACING = (0.8, 1.3, 2.0)  # i, j, k
ORIGIN = (12.0, -20.0, 35.0)  # LPS


def rotation() -> np.ndarray:
    a, b = 0.4, -0.35
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def centres_ras() -> np.ndarray:
    """(k, j, i, 3) RAS voxel centres computed from the file's LPS geometry, not from the loaded node."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    lps = np.stack([i, j, k], axis=-1) * np.array(SPACING) @ rotation().T + np.array(ORIGIN)
    return lps * np.array([-1.0, -1.0, 1.0])


def distance_to_polyline(points: np.ndarray) -> np.ndarray:
    centres = centres_ras()
    best = np.full(SHAPE, np.inf)
    for a, b in zip(points[:-1], points[1:]) if len(points) > 1 else [(points[0], points[0])]:
        d = b - a
        t = np.clip(((centres - a) @ d) / max(d @ d, 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(centres - a - t[..., None] * d, axis=-1))
    return best


@pytest.fixture
def oblique(session, tmp_path):
    """Two halves (i < 16: 0, else 500) plus mild noise, on an oblique anisotropic grid."""
    image = np.zeros(SHAPE, np.int16)
    image[:, :, 16:] = 500
    image += np.random.default_rng(1).integers(-5, 6, SHAPE).astype(np.int16)
    path = write_volume(tmp_path / "oblique.nrrd", image, SPACING, ORIGIN, tuple(rotation().ravel()))
    return load_volume(session, path)


def test_spheres_and_strokes_land_on_the_right_voxels(oblique):
    centres = centres_ras()
    targets = [(3, 4, 5), (10, 20, 27), (19, 0, 31)]
    seeds = paint_spheres(seed_map(oblique), oblique, [centres[t] for t in targets], 0.3, 7)
    assert sorted(map(tuple, np.argwhere(seeds == 7))) == sorted(targets)
    point = centres[9, 13, 11] + np.array([0.3, -0.2, 0.45])
    seeds = paint_spheres(seed_map(oblique), oblique, [point], 3.7, 2)
    assert np.array_equal(seeds == 2, distance_to_polyline(point[None]) <= 3.7)
    stroke = np.array([centres[4, 5, 4], centres[10, 12, 9], centres[15, 20, 12]]) + 0.21
    seeds = paint_stroke(seed_map(oblique), oblique, stroke, 2.6, 1)
    expected = distance_to_polyline(stroke) <= 2.6
    assert expected.sum() > 100 and np.array_equal(seeds == 1, expected)


def test_strokes_grow_the_halves_of_an_oblique_volume(oblique):
    centres = centres_ras()
    seeds = paint_stroke(seed_map(oblique), oblique, [centres[2, 3, 3], centres[17, 22, 12]], 1.5, 1)
    seeds = paint_spheres(seeds, oblique, [centres[5, 5, 25], centres[15, 20, 28]], 1.5, 2)
    labels = grow_labels(arrayFromVolume(oblique), seeds, Grid.from_node(oblique).spacing, margin=None)
    assert (labels[:, :, :16] == 1).all() and (labels[:, :, 16:] == 2).all()


# -- real data ---------------------------------------------------------------------------------------------------
def erode_in_plane(mask: np.ndarray, times: int) -> np.ndarray:
    """Erosion by a 2D cross within each slice (slices are 10 mm apart here)."""
    mask = mask.copy()
    for _ in range(times):
        inner = mask.copy()
        inner[:, 1:, :] &= mask[:, :-1, :]
        inner[:, :-1, :] &= mask[:, 1:, :]
        inner[:, :, 1:] &= mask[:, :, :-1]
        inner[:, :, :-1] &= mask[:, :, 1:]
        inner[:, [0, -1], :] = False
        inner[:, :, [0, -1]] = False
        mask = inner
    return mask


def test_lungs_grow_back_from_their_cores(session, ct_chest):
    image_path, reference_path = ct_chest
    volume = load_volume(session, image_path)
    reference = session.segmentations.LoadSegmentationFromFile(str(reference_path), False)
    masks = {
        name: segment_mask(session, reference, find_segment(reference, name), volume)
        for name in ("right lung", "left lung")
    }
    other = ~(masks["right lung"] | masks["left lung"])
    every_third = np.zeros(other.shape, dtype=bool)
    every_third[::3] = True
    cores = {name: erode_in_plane(mask, 8) & every_third for name, mask in masks.items()}
    cores["other"] = erode_in_plane(other, 8) & every_third
    assert all(cores[name].sum() < 0.1 * masks[name].sum() for name in masks)  # sparse seeds
    segmentation = new_segmentation(session, volume)
    for name, core in cores.items():
        set_segment_mask(session, segmentation, add_segment(segmentation, name), core, volume)
    grow_from_seeds(session, segmentation, volume)
    for name, mask in masks.items():
        grown = segment_mask(session, segmentation, find_segment(segmentation, name), volume)
        assert dice(grown, mask) >= 0.95, name


# -- bad input -------------------------------------------------------------------------------------------------
def test_bad_input_is_a_clear_error(session, two_boxes):
    volume = load_volume(session, two_boxes)
    values = arrayFromVolume(volume)
    grid = Grid.from_node(volume)
    shifted = grid.ijk_to_ras.copy()
    shifted[:3, 3] += (0.0, 2.5, 0.0)  # same shape, half a box off
    other = Grid(grid.size, shifted)
    labelmap = volume_from_array(session, np.ones(other.shape_kji, np.uint8), other, "seeds", labelmap=True)
    with pytest.raises(SegTruthError, match=r"'seeds' \(60x50x40 .*origin.* not on the grid of 'boxes' \(60x50x40"):
        seeds_from_labelmap(labelmap, volume)
    assert seeds_from_labelmap(volume_from_array(session, values.astype(np.uint8), grid, "ok"), volume).max() == 200
    with pytest.raises(SegTruthError, match=r"shape \(10, 10, 10\).*shape \(40, 50, 60\)"):
        grow_labels(values, np.ones((10, 10, 10), np.uint8))
    with pytest.raises(SegTruthError, match="no seeds"):
        grow_labels(values, np.zeros(values.shape, np.uint8))
    with pytest.raises(SegTruthError, match="only label 3"):
        grow_labels(values, np.full(values.shape, 3, np.uint8))
    nan_image = values.astype(np.float32)
    nan_image[3, 4, 5] = np.nan
    with pytest.raises(SegTruthError, match="1 NaN"):
        grow_labels(nan_image, np.eye(60, dtype=np.uint8)[None, :50].repeat(40, 0))
    with pytest.raises(SegTruthError, match="integer label values"):
        grow_labels(values, np.zeros(values.shape, np.float32))
    with pytest.raises(SegTruthError, match="outside"):
        paint_spheres(seed_map(volume), volume, [(1000.0, 0.0, 0.0)], 2.0, 1)
    with pytest.raises(SegTruthError, match="paints no voxel"):
        paint_stroke(seed_map(volume), volume, [(1000.0, 0.0, 0.0), (1000.0, 5.0, 0.0)], 2.0, 1)
    segmentation = new_segmentation(session, volume)
    set_segment_mask(session, segmentation, add_segment(segmentation, "only"), values == 100, volume)
    add_segment(segmentation, "empty")
    with pytest.raises(SegTruthError, match="at least two non-empty segments"):
        grow_from_seeds(session, segmentation, volume)
