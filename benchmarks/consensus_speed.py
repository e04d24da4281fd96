"""Speed of volunteer consensus on a million boxes, against a plain per-image DBSCAN.

A seeded survey: 100,000 images, 3-5 volunteers each (from a pool of 2,000 of varying care), 1-5
objects per image in 6 classes, volunteers missing objects, jittering boxes, swapping labels and adding
false positives, trimmed to exactly 1,000,000 boxes. Timed:

* ``consensus_arrays`` on the columns (the fast core), and ``consensus`` on 1,000,000
  ``VolunteerBox`` records (encoding and building the result records included; making the input
  records is not timed);
* baseline: per image and label, the ``1 - IoU`` matrix and DBSCAN (eps 0.5, min_samples 1) written
  plainly in Python, without the same-annotator rule, no support or label agreement. It runs on a
  random sample of the images and its time is extrapolated to all of them (the output says so).

    python benchmarks/consensus_speed.py [--images 100000] [--boxes 1000000] [--sample 0.015]
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import numpy as np
import numpy.typing as npt

from plastic_hotspots.annotations.consensus import (
    ConsensusParams,
    Submission,
    VolunteerBox,
    consensus,
    consensus_arrays,
)
from plastic_hotspots.records import BBox

POOL = 2_000
STEP = 7_919  # k * STEP mod POOL differs for k < 5: the volunteers of one image are distinct
N_LABELS = 6
W, H = 1024.0, 768.0


class Survey:
    """Columns of a simulated survey."""

    def __init__(self, n_images: int, n_boxes: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        n_vol = rng.integers(3, 6, n_images)
        base = rng.integers(0, POOL, n_images)
        care = rng.uniform(0.02, 0.15, POOL)  # jitter, as a share of the object's size
        miss = rng.uniform(0.02, 0.2, POOL)
        # Objects: 1-5 per image, sizes 20-200 px.
        n_obj = rng.integers(1, 6, n_images)
        obj_img = np.repeat(np.arange(n_images), n_obj)
        size = rng.uniform(20, 200, (obj_img.size, 2))
        corner = rng.uniform(0, 1, (obj_img.size, 2)) * (np.array([W, H]) - size)
        obj_label = rng.integers(0, N_LABELS, obj_img.size)
        # Every volunteer of the image looks at every object.
        per_obj = n_vol[obj_img]
        o = np.repeat(np.arange(obj_img.size), per_obj)
        k = np.arange(o.size) - np.repeat(np.cumsum(per_obj) - per_obj, per_obj)
        vol = (base[obj_img[o]] + k * STEP) % POOL
        hit = rng.uniform(size=o.size) > miss[vol]
        o, vol = o[hit], vol[hit]
        sz = size[o]
        jitter = rng.normal(0, 1, (o.size, 4)) * care[vol][:, None] * np.hstack([sz, sz])
        xyxy = np.hstack([corner[o], corner[o] + sz]) + jitter
        label = np.where(rng.uniform(size=o.size) < 0.05, rng.integers(0, N_LABELS, o.size), obj_label[o])
        task = obj_img[o]
        # False positives: about 0.3 per volunteer and image.
        img_vol = np.repeat(np.arange(n_images), n_vol)
        kk = np.arange(img_vol.size) - np.repeat(np.cumsum(n_vol) - n_vol, n_vol)
        sub_vol = (base[img_vol] + kk * STEP) % POOL
        n_fp = rng.poisson(0.3, img_vol.size)
        fp_task = np.repeat(img_vol, n_fp)
        fp_vol = np.repeat(sub_vol, n_fp)
        fp_size = rng.uniform(20, 200, (fp_task.size, 2))
        fp_corner = rng.uniform(0, 1, (fp_task.size, 2)) * (np.array([W, H]) - fp_size)
        task = np.concatenate([task, fp_task])
        vol = np.concatenate([vol, fp_vol])
        label = np.concatenate([label, rng.integers(0, N_LABELS, fp_task.size)])
        xyxy = np.vstack([xyxy, np.hstack([fp_corner, fp_corner + fp_size])])
        # Repair boxes jitter turned inside out, then trim to exactly n_boxes.
        x1, x2 = np.minimum(xyxy[:, 0], xyxy[:, 2]), np.maximum(xyxy[:, 0], xyxy[:, 2]) + 1.0
        y1, y2 = np.minimum(xyxy[:, 1], xyxy[:, 3]), np.maximum(xyxy[:, 1], xyxy[:, 3]) + 1.0
        xyxy = np.round(np.stack([x1, y1, x2, y2], axis=1), 1)
        if task.size < n_boxes:
            raise SystemExit(f"the simulation made only {task.size:,} boxes; ask for fewer")
        keep = np.sort(rng.choice(task.size, n_boxes, replace=False))
        shuffle = rng.permutation(n_boxes)
        self.task = task[keep][shuffle]
        self.annotator = vol[keep][shuffle]
        self.label = label[keep][shuffle]
        self.xyxy = xyxy[keep][shuffle]
        self.submissions = np.stack([img_vol, sub_vol], axis=1)
        self.n_images = n_images


def _iou_matrix(b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x1 = np.maximum(b[:, None, 0], b[None, :, 0])
    y1 = np.maximum(b[:, None, 1], b[None, :, 1])
    x2 = np.minimum(b[:, None, 2], b[None, :, 2])
    y2 = np.minimum(b[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area[:, None] + area[None, :] - inter), dtype=np.float64)


def dbscan(dist: npt.NDArray[np.float64], eps: float, min_samples: int) -> list[int]:
    """Plain DBSCAN on a precomputed distance matrix; -1 marks noise."""
    n = dist.shape[0]
    labels = [-2] * n  # -2: unvisited
    cluster = -1
    for i in range(n):
        if labels[i] != -2:
            continue
        neighbours = np.flatnonzero(dist[i] <= eps).tolist()
        if len(neighbours) < min_samples:
            labels[i] = -1
            continue
        cluster += 1
        labels[i] = cluster
        queue = deque(neighbours)
        while queue:
            j = queue.popleft()
            if labels[j] == -1:
                labels[j] = cluster
            if labels[j] != -2:
                continue
            labels[j] = cluster
            more = np.flatnonzero(dist[j] <= eps).tolist()
            if len(more) >= min_samples:
                queue.extend(more)
    return labels


def baseline(survey: Survey, images: npt.NDArray[np.int64], eps: float) -> int:
    """Per image and label: 1 - IoU matrix, DBSCAN, a medoid per cluster. Returns the cluster count."""
    order = np.argsort(survey.task, kind="stable")
    task_sorted = survey.task[order]
    found = 0
    for image in images.tolist():
        lo, hi = np.searchsorted(task_sorted, [image, image + 1])
        rows = order[lo:hi]
        for label in sorted(set(survey.label[rows].tolist())):
            sel = rows[survey.label[rows] == label]
            dist = 1.0 - _iou_matrix(survey.xyxy[sel])
            labels = dbscan(dist, eps, 1)
            for c in set(labels):
                members = [i for i, lab in enumerate(labels) if lab == c]
                sub = dist[np.ix_(members, members)]
                _ = members[int(np.argmin((sub * sub).sum(axis=1)))]
                found += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--sample", type=float, default=0.015, help="share of images for the baseline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    survey = Survey(args.images, args.boxes, args.seed)
    took = time.perf_counter() - t0
    print(f"simulated {survey.task.size:,} boxes on {args.images:,} images in {took:.1f} s")
    params = ConsensusParams()

    t0 = time.perf_counter()
    arrays = consensus_arrays(
        survey.task, survey.annotator, survey.label, survey.xyxy, survey.submissions, params
    )
    t_arrays = time.perf_counter() - t0
    print(
        f"consensus_arrays: {survey.task.size:,} boxes in {t_arrays:.1f} s (goal < 60 s): "
        f"{arrays.n_clusters:,} clusters, {int(arrays.accepted.sum()):,} accepted, "
        f"{arrays.review_tasks.size:,} tasks to review"
    )

    names = [f"volunteer-{i:04d}" for i in range(POOL)]
    labels = [f"class-{i}" for i in range(N_LABELS)]
    boxes = [
        VolunteerBox(f"image-{t:06d}", names[a], labels[lab], BBox(*xy))
        for t, a, lab, xy in zip(
            survey.task.tolist(),
            survey.annotator.tolist(),
            survey.label.tolist(),
            survey.xyxy.tolist(),
            strict=True,
        )
    ]
    subs = [Submission(f"image-{t:06d}", names[a]) for t, a in survey.submissions.tolist()]
    t0 = time.perf_counter()
    result = consensus(boxes, subs, params)
    t_records = time.perf_counter() - t0
    print(f"consensus (records in and out): {len(boxes):,} boxes in {t_records:.1f} s (goal < 60 s)")
    if len(result.boxes) != arrays.n_clusters:
        raise SystemExit("consensus and consensus_arrays disagree on the number of clusters")
    del boxes, subs, result

    rng = np.random.default_rng(args.seed + 1)
    n_sample = max(1, round(args.images * args.sample))
    sample = np.sort(rng.choice(args.images, n_sample, replace=False))
    t0 = time.perf_counter()
    baseline(survey, sample, params.eps)
    t_sample = time.perf_counter() - t0
    t_base = t_sample * args.images / n_sample
    print(
        f"consensus: {survey.task.size:,} boxes in {t_records:.1f} s (goal < 60 s); "
        f"baseline per-image DBSCAN: {t_base:.1f} s (extrapolated from {n_sample:,} images, "
        f"{t_sample:.1f} s measured); ratio Y/X = {t_base / t_records:.1f} "
        f"(consensus_arrays alone: {t_arrays:.1f} s, ratio {t_base / t_arrays:.1f})"
    )


if __name__ == "__main__":
    main()
