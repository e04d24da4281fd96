"""Volunteer consensus: many people's boxes on one image become one set of trusted boxes.

Several volunteers label the same image (a *task*). Per task and label, their boxes are clustered on
the distance ``1 - IoU`` and each cluster becomes one :class:`ConsensusBox`:

* **Clustering** is agglomerative with *complete linkage*: the distance between two clusters is the
  largest distance between a box of one and a box of the other, and the two closest clusters merge
  while that distance is at most ``eps``. Every two boxes of a cluster therefore overlap by
  ``IoU >= 1 - eps``. Two boxes of the same annotator are at distance infinity, and complete linkage
  carries that infinity to every cluster that holds either of them: one annotator never has two
  boxes in one cluster (Datumaro's IntersectMerge rule). Equal distances are broken by the boxes'
  canonical order (annotator, then ``x1, y1, x2, y2``), so the result does not depend on the input
  order.
* **Consensus box**: the member minimising the sum of squared distances to the other members (a
  medoid; ties go to the earlier member in canonical order).
* **Support**: the skill-weighted share of the task's submitters who have a box in the cluster. The
  submitters are everyone who submitted the task, including those who drew nothing (they vote
  "no object here"). An annotator with boxes on a task but no submission for it is counted as a
  submitter too; :attr:`ConsensusResult.implied_submissions` says how often that happened. When
  every submitter of a task weighs 0, support is 0.
* **Sigma**: the mean distance ``1 - IoU`` of the other members to the consensus box (0 for one box).
* **Label agreement**: each annotator of the task whose boxes (of any label) overlap the consensus box
  by ``IoU >= 1 - eps`` votes once, with the label of their box that overlaps it most (on equal
  overlap, the cluster's label); the label agreement is the skill-weighted share of those votes for
  the cluster's label. Every member votes (all members overlap the consensus box that much).
* A cluster is **accepted** when its support reaches ``min_support``; an accepted cluster with support
  below ``review_support`` or sigma above ``review_sigma`` sends its task back for review. Support,
  sigma and label agreement are rounded to 12 decimals (3 of 5 equal votes is 0.6, not 0.59999...).

Volunteer skill (:func:`skills_from_gold`) is the F1 score of a volunteer's boxes against expert boxes
on gold tasks; volunteers with fewer than ``min_gold`` gold tasks get ``default_skill``
(:func:`effective_skill`). Skills weight the votes linearly; without skills every vote weighs the same.

:func:`consensus` takes records; :func:`consensus_arrays` is the columnar core it calls, which handles
a million boxes in seconds: boxes are sorted once, (task, label) groups of equal size are stacked and
clustered together as ``(groups, n, n)`` distance arrays, one merge per group per numpy step.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from plastic_hotspots.boxmath import iou as _iou
from plastic_hotspots.errors import PlasticHotspotsError
from plastic_hotspots.records import BBox

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Comparisons of support and sigma against thresholds forgive rounding: 3 of 5 equal weights is 0.6.
_TOL = 1e-9
# Elements of one stacked (groups, n, n) distance array, and of one chunk of label-agreement pairs.
_BUCKET_ELEMENTS = 1 << 20
_PAIR_CHUNK = 1 << 22


class ConsensusError(PlasticHotspotsError):
    """Base of the errors raised by volunteer consensus."""


class ConsensusParamsError(ConsensusError, ValueError):
    """A consensus parameter is outside its allowed range."""


class ConsensusInputError(ConsensusError, ValueError):
    """Boxes, submissions or skills handed to consensus are malformed."""


@dataclass(frozen=True, slots=True)
class VolunteerBox:
    """One box drawn by one volunteer on one task (pixels, ``xyxy``)."""

    task: str
    annotator: str
    label: str
    box: BBox

    def __post_init__(self) -> None:
        if not (self.task and self.annotator and self.label):
            raise ConsensusInputError(
                "a volunteer box needs a task, an annotator and a label, got "
                f"task={self.task!r}, annotator={self.annotator!r}, label={self.label!r}"
            )


@dataclass(frozen=True, slots=True)
class Submission:
    """A volunteer submitted a task (whether or not they drew anything on it)."""

    task: str
    annotator: str

    def __post_init__(self) -> None:
        if not (self.task and self.annotator):
            raise ConsensusInputError(
                f"a submission needs a task and an annotator, got task={self.task!r}, "
                f"annotator={self.annotator!r}"
            )


def _in_unit(name: str, value: float, *, low_open: bool = False, high_open: bool = False) -> None:
    low_ok = value > 0.0 if low_open else value >= 0.0
    high_ok = value < 1.0 if high_open else value <= 1.0
    if not (np.isfinite(value) and low_ok and high_ok):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ConsensusParamsError(
            f"{name} must lie in {interval}, got {value!r}", hint=f"choose {name} in {interval}"
        )


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """How boxes are clustered, accepted and sent to review.

    Args:
        eps: Largest distance ``1 - IoU`` between any two boxes of one cluster, in ``(0, 1)``.
        min_support: Skill-weighted share of a task's submitters a cluster needs to be accepted.
        review_support: Accepted clusters with less support than this send their task to review.
        review_sigma: Accepted clusters whose spread sigma exceeds this send their task to review.
        default_skill: Skill of volunteers without enough gold tasks (and of unknown volunteers).
        min_gold: Gold tasks a volunteer needs before their measured skill is used.
    """

    eps: float = 0.5
    min_support: float = 0.5
    review_support: float = 0.6
    review_sigma: float = 0.25
    default_skill: float = 0.7
    min_gold: int = 10

    def __post_init__(self) -> None:
        _in_unit("eps", self.eps, low_open=True, high_open=True)
        _in_unit("min_support", self.min_support, low_open=True)
        _in_unit("review_support", self.review_support)
        _in_unit("review_sigma", self.review_sigma)
        _in_unit("default_skill", self.default_skill, low_open=True)
        if isinstance(self.min_gold, bool) or not isinstance(self.min_gold, int) or self.min_gold < 0:
            raise ConsensusParamsError(
                f"min_gold must be a whole number >= 0, got {self.min_gold!r}",
                hint="give the number of gold tasks a volunteer needs, e.g. 10",
            )

    def parameters(self) -> dict[str, float | int]:
        """The parameters by name, for provenance records."""
        return dict(asdict(self))


@dataclass(frozen=True, slots=True)
class ConsensusBox:
    """One cluster of volunteer boxes on one task and label, and whether it is trusted.

    Args:
        task: The task (image) id.
        label: The class of every box in the cluster.
        box: The consensus box: the member with the least sum of squared distances ``1 - IoU``.
        support: Skill-weighted share of the task's submitters who have a box in the cluster.
        n_annotators: Number of annotators (= boxes) in the cluster.
        n_submitters: Number of annotators who submitted the task (or drew on it).
        sigma: Mean distance ``1 - IoU`` of the other members to the consensus box.
        label_agreement: Skill-weighted share, among the annotators whose boxes of any label overlap
            the consensus box by ``IoU >= 1 - eps`` (each voting with their most overlapping box),
            of those whose vote is this label.
        members: The annotators of the cluster, sorted.
        accepted: Whether the support reaches ``min_support``.
        needs_review: Whether an accepted box has low support or a large spread.
    """

    task: str
    label: str
    box: BBox
    support: float
    n_annotators: int
    n_submitters: int
    sigma: float
    label_agreement: float
    members: tuple[str, ...]
    accepted: bool
    needs_review: bool

    def __post_init__(self) -> None:
        if not (0.0 <= self.support <= 1.0 and 0.0 <= self.label_agreement <= 1.0 and self.sigma >= 0.0):
            raise ConsensusInputError(
                f"support and label agreement must lie in [0, 1] and sigma be >= 0, got support="
                f"{self.support!r}, label_agreement={self.label_agreement!r}, sigma={self.sigma!r}"
            )
        if not (len(self.members) == self.n_annotators <= self.n_submitters and self.n_annotators > 0):
            raise ConsensusInputError(
                f"a cluster needs 1 <= n_annotators == len(members) <= n_submitters, got "
                f"{self.n_annotators} annotators, {len(self.members)} members, {self.n_submitters} submitters"
            )


@dataclass(frozen=True, slots=True)
class ConsensusResult:
    """Every cluster (accepted or not) and the tasks to send back for review.

    Args:
        boxes: All clusters, ordered by task, label, then ``x1, y1, x2, y2`` of the consensus box.
        review_tasks: Tasks with an accepted box of low support or large spread, sorted.
        params: The parameters used.
        implied_submissions: (task, annotator) pairs with boxes but no submission, counted as submitters.
    """

    boxes: tuple[ConsensusBox, ...]
    review_tasks: tuple[str, ...]
    params: ConsensusParams
    implied_submissions: int = 0

    @property
    def accepted(self) -> tuple[ConsensusBox, ...]:
        """The accepted boxes, in the same order."""
        return tuple(b for b in self.boxes if b.accepted)


@dataclass(frozen=True, slots=True, eq=False)
class ConsensusArrays:
    """Columnar result of :func:`consensus_arrays`: one entry per cluster (``C``) or input box (``N``).

    Clusters are ordered by task code, label code, then ``x1, y1, x2, y2`` of the consensus box.

    Args:
        task: ``(C,)`` task code of each cluster.
        label: ``(C,)`` label code.
        xyxy: ``(C, 4)`` consensus box.
        medoid: ``(C,)`` input row of the consensus box.
        support: ``(C,)`` skill-weighted share of the task's submitters in the cluster.
        sigma: ``(C,)`` mean ``1 - IoU`` of the other members to the consensus box.
        label_agreement: ``(C,)`` see :class:`ConsensusBox`.
        n_annotators: ``(C,)`` members.
        n_submitters: ``(C,)`` submitters of the cluster's task.
        accepted: ``(C,)`` support reaches ``min_support``.
        needs_review: ``(C,)`` accepted with low support or large spread.
        member_indptr: ``(C + 1,)`` cluster ``c``'s members are
            ``member_rows[member_indptr[c]:member_indptr[c + 1]]``.
        member_rows: ``(N,)`` input rows, by cluster, then annotator code.
        cluster_of: ``(N,)`` cluster of each input row.
        review_tasks: Sorted task codes with a box that needs review.
        implied_submissions: (task, annotator) pairs with boxes but no submission.
    """

    task: IntArray
    label: IntArray
    xyxy: FloatArray
    medoid: IntArray
    support: FloatArray
    sigma: FloatArray
    label_agreement: FloatArray
    n_annotators: IntArray
    n_submitters: IntArray
    accepted: BoolArray
    needs_review: BoolArray
    member_indptr: IntArray
    member_rows: IntArray
    cluster_of: IntArray
    review_tasks: IntArray
    implied_submissions: int

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return int(self.task.shape[0])


def _codes(name: str, values: npt.ArrayLike) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConsensusInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ConsensusInputError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=False)
    if out.size and int(out.min()) < 0:
        raise ConsensusInputError(f"{name} must be >= 0, found {int(out.min())}")
    return out


def _first_of_runs(*keys: npt.NDArray[np.int64]) -> BoolArray:
    """True where any of the (already sorted) key arrays changes from the previous row."""
    n = keys[0].shape[0]
    first = np.zeros(n, dtype=np.bool_)
    if n:
        first[0] = True
        for key in keys:
            first[1:] |= key[1:] != key[:-1]
    return first


def _cluster_bucket(boxes: FloatArray, annotators: IntArray, eps: float) -> tuple[IntArray, FloatArray]:
    """Complete-linkage clustering of ``G`` groups of ``n`` boxes at once.

    Args:
        boxes: ``(G, n, 4)`` boxes, each group in canonical order.
        annotators: ``(G, n)`` annotator codes.
        eps: Largest distance at which two clusters merge.

    Returns:
        ``(G, n)`` the cluster root (its first member) of each box, and ``(G, n)`` each box's sum of
        squared distances to the members of its cluster.
    """
    g, n = annotators.shape
    dist0 = 1.0 - _iou(boxes[:, :, None, :], boxes[:, None, :, :])
    d = dist0.copy()
    d[annotators[:, :, None] == annotators[:, None, :]] = np.inf  # diagonal and same annotator
    assign = np.broadcast_to(np.arange(n, dtype=np.int64), (g, n)).copy()
    live = np.arange(g)
    while live.size:
        flat = d.reshape(live.size, n * n)
        k = flat.argmin(axis=1)  # the first minimum: lowest (i, j), i < j, in canonical order
        best = flat[np.arange(live.size), k]
        merging = best <= eps
        if not merging.all():
            # Complete-linkage distances never shrink: a group with nothing within eps is done.
            d, live, k = d[merging], live[merging], k[merging]
            if not live.size:
                break
        i, j = k // n, k % n
        rows = np.arange(live.size)
        joined = np.maximum(d[rows, i], d[rows, j])  # (A, n): the merged cluster's distances
        d[rows, i, :] = joined
        d[rows, :, i] = joined
        d[rows, j, :] = np.inf
        d[rows, :, j] = np.inf
        sub = assign[live]
        assign[live] = np.where(sub == j[:, None], i[:, None], sub)
    same = assign[:, :, None] == assign[:, None, :]
    cost = np.where(same, dist0 * dist0, 0.0).sum(axis=-1)
    return assign, np.asarray(cost, dtype=np.float64)


def _cluster_groups(
    t_s: IntArray, l_s: IntArray, a_s: IntArray, b_s: FloatArray, eps: float
) -> tuple[IntArray, FloatArray]:
    """Cluster every (task, label) group of canonically sorted boxes, stacking groups of equal size.

    Returns:
        The sorted row of each box's cluster root (its first member), and each box's sum of squared
        distances to its cluster's members.
    """
    n = t_s.shape[0]
    starts = np.flatnonzero(_first_of_runs(t_s, l_s))
    sizes = np.diff(np.append(starts, n))
    root = np.arange(n, dtype=np.int64)
    cost = np.zeros(n)
    for size in np.unique(sizes[sizes > 1]).tolist():
        group_starts = starts[sizes == size]
        per_chunk = max(1, _BUCKET_ELEMENTS // (size * size))
        for s in range(0, group_starts.size, per_chunk):
            first = group_starts[s : s + per_chunk]
            rows = first[:, None] + np.arange(size)
            assign, bucket_cost = _cluster_bucket(b_s[rows], a_s[rows], eps)
            root[rows] = first[:, None] + assign
            cost[rows] = bucket_cost
    return root, cost


def _unique_pairs(a: IntArray, b: IntArray) -> tuple[IntArray, IntArray]:
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = _first_of_runs(a, b)
    return a[keep], b[keep]


def _label_agreement(
    clusters: tuple[IntArray, IntArray, FloatArray],
    sorted_boxes: tuple[IntArray, IntArray, IntArray, FloatArray],
    weights: FloatArray,
    n_tasks: int,
    eps: float,
) -> FloatArray:
    """Skill-weighted share of overlapping annotators whose best-overlapping box carries the label.

    ``clusters`` (task, label, box) must be ordered by task; ``sorted_boxes`` (task, label, annotator,
    box) by task too.
    """
    c_task, c_label, c_box = clusters
    t_s, l_s, a_s, b_s = sorted_boxes
    n_clusters = c_task.shape[0]
    per_task = np.bincount(t_s, minlength=n_tasks)
    box_start = np.concatenate([[0], np.cumsum(per_task)[:-1]]).astype(np.int64)
    reps = per_task[c_task]  # every box of the task is a candidate voter for the cluster
    cum = np.cumsum(reps)
    num = np.zeros(n_clusters)
    den = np.zeros(n_clusters)
    c0 = 0
    while c0 < n_clusters:
        done = int(cum[c0 - 1]) if c0 else 0
        c1 = max(int(np.searchsorted(cum, done + _PAIR_CHUNK, side="right")), c0 + 1)
        r = reps[c0:c1]
        pc = np.repeat(np.arange(c0, c1), r)
        offsets = np.arange(pc.size) - np.repeat(np.cumsum(r) - r, r)
        pb = box_start[c_task[pc]] + offsets
        iou = _iou(c_box[pc], b_s[pb])
        near = (1.0 - iou) <= eps
        pc, pb, iou = pc[near], pb[near], iou[near]
        disagree = l_s[pb] != c_label[pc]
        pa = a_s[pb]
        order = np.lexsort((disagree, -iou, pa, pc))  # per (cluster, annotator): best overlap first
        pc, pa, disagree = pc[order], pa[order], disagree[order]
        vote = _first_of_runs(pc, pa)
        w = weights[pa[vote]]
        den += np.bincount(pc[vote], weights=w, minlength=n_clusters)
        num += np.bincount(pc[vote], weights=w * ~disagree[vote], minlength=n_clusters)
        c0 = c1
    share = np.divide(num, den, out=np.zeros(n_clusters), where=den > 0)
    return np.asarray(np.clip(share, 0.0, 1.0), dtype=np.float64)


def _checked_boxes(
    task_codes: npt.ArrayLike, annotator_codes: npt.ArrayLike, label_codes: npt.ArrayLike, xyxy: npt.ArrayLike
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """The box columns as arrays: task, annotator and label codes, and ``(N, 4)`` boxes."""
    tasks = _codes("task_codes", task_codes)
    anns = _codes("annotator_codes", annotator_codes)
    labels = _codes("label_codes", label_codes)
    n = tasks.shape[0]
    if anns.shape[0] != n or labels.shape[0] != n:
        raise ConsensusInputError(
            f"task, annotator and label codes must have one entry per box, got lengths "
            f"{n}, {anns.shape[0]}, {labels.shape[0]}"
        )
    xy = np.asarray(xyxy, dtype=np.float64)
    if xy.size == 0 and n == 0:
        xy = xy.reshape(0, 4)
    if xy.shape != (n, 4):
        raise ConsensusInputError(f"xyxy must have shape ({n}, 4), got {xy.shape}")
    if not np.isfinite(xy).all() or not ((xy[:, 2] > xy[:, 0]) & (xy[:, 3] > xy[:, 1])).all():
        raise ConsensusInputError(
            "every box needs finite coordinates with x2 > x1 and y2 > y1",
            hint="drop or fix degenerate boxes before consensus",
        )
    xy = xy + 0.0  # -0.0 becomes 0.0, so equal boxes sort and compare alike
    return tasks, anns, labels, xy


def _checked_submissions(submissions: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """The task and annotator codes of the submissions."""
    subs = np.asarray(submissions)
    if subs.size == 0:
        subs = np.zeros((0, 2), dtype=np.int64)
    if subs.ndim != 2 or subs.shape[1] != 2 or not np.issubdtype(subs.dtype, np.integer):
        raise ConsensusInputError(
            f"submissions must be integer (task code, annotator code) pairs of shape (S, 2), "
            f"got shape {subs.shape} and dtype {subs.dtype}"
        )
    return _codes("submission tasks", subs[:, 0]), _codes("submission annotators", subs[:, 1])


def _vote_weights(skills: npt.ArrayLike | None, n_anns: int, default_skill: float) -> FloatArray:
    """The vote weight of each annotator code: the skills, or ``default_skill`` for all without them."""
    if skills is None:
        return np.full(n_anns, default_skill, dtype=np.float64)
    weights = np.asarray(skills, dtype=np.float64)
    if weights.ndim != 1 or weights.shape[0] < n_anns:
        raise ConsensusInputError(
            f"skills must give one weight per annotator code (at least {n_anns}), got shape {weights.shape}"
        )
    if not (np.isfinite(weights).all() and (weights >= 0).all() and (weights <= 1).all()):
        raise ConsensusInputError("skills must lie in [0, 1]", hint="use effective_skill() values")
    return weights


def _submitters(
    submitted: tuple[IntArray, IntArray],
    drawn: tuple[IntArray, IntArray],
    weights: FloatArray,
    n_tasks: int,
) -> tuple[IntArray, FloatArray, int]:
    """Submitters per task, their summed weight per task, and how many submissions were implied.

    The submitters are the submissions plus everyone with a box on the task.
    """
    sub_task, sub_ann = submitted
    tasks, anns = drawn
    given = _unique_pairs(sub_task, sub_ann)[0].size
    all_t, all_a = _unique_pairs(np.concatenate([sub_task, tasks]), np.concatenate([sub_ann, anns]))
    n_sub = np.bincount(all_t, minlength=n_tasks).astype(np.int64)
    w_sub = np.asarray(np.bincount(all_t, weights=weights[all_a], minlength=n_tasks), dtype=np.float64)
    return n_sub, w_sub, int(all_t.size - given)


def _clusters(
    sorted_boxes: tuple[IntArray, IntArray, IntArray, FloatArray], eps: float
) -> tuple[IntArray, IntArray, IntArray]:
    """Cluster the canonically sorted boxes and find each cluster's medoid.

    Returns:
        The cluster of each sorted box (clusters numbered in the order of their first member), the
        sorted row of each cluster's first member, and the sorted row of each cluster's medoid.
    """
    t_s, l_s, a_s, b_s = sorted_boxes
    root, cost = _cluster_groups(t_s, l_s, a_s, b_s, eps)
    roots, cl = np.unique(root, return_inverse=True)
    cl = cl.astype(np.int64).reshape(-1)
    by_cost = np.lexsort((np.arange(t_s.shape[0]), cost, cl))
    medoid_s = by_cost[_first_of_runs(cl[by_cost])]  # sorted row of each cluster's medoid
    return cl, roots, medoid_s


def _cluster_scores(
    cl: IntArray,
    clusters: tuple[IntArray, IntArray, FloatArray],
    sorted_boxes: tuple[IntArray, IntArray, IntArray, FloatArray],
    weights: FloatArray,
    pool: FloatArray,
    n_tasks: int,
    eps: float,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Members, support, sigma and label agreement of each cluster (the last three rounded).

    ``cl`` is the cluster of each sorted box, ``pool`` the summed weight of each cluster's submitters.
    """
    c_box = clusters[2]
    a_s, b_s = sorted_boxes[2], sorted_boxes[3]
    n_clusters = c_box.shape[0]
    n_ann_c = np.bincount(cl, minlength=n_clusters).astype(np.int64)
    voted = np.bincount(cl, weights=weights[a_s], minlength=n_clusters)
    support = np.clip(np.divide(voted, pool, out=np.zeros(n_clusters), where=pool > 0), 0.0, 1.0)
    spread = np.bincount(cl, weights=1.0 - _iou(b_s, c_box[cl]), minlength=n_clusters)
    sigma = np.maximum(spread, 0.0) / np.maximum(n_ann_c - 1, 1)
    agreement = _label_agreement(clusters, sorted_boxes, weights, n_tasks, eps)
    # Rounded to 12 decimals so that, e.g., 3 of 5 equal votes read 0.6 and not 0.5999999999999999.
    support, sigma, agreement = (np.round(v, 12) for v in (support, sigma, agreement))
    return n_ann_c, support, sigma, agreement


def _decisions(support: FloatArray, sigma: FloatArray, p: ConsensusParams) -> tuple[BoolArray, BoolArray]:
    """Which clusters are accepted, and which accepted ones send their task to review."""
    accepted = support >= p.min_support - _TOL
    review = accepted & ((support < p.review_support - _TOL) | (sigma > p.review_sigma + _TOL))
    return accepted, review


def _canonical_order(tasks: IntArray, labels: IntArray, anns: IntArray, xy: FloatArray) -> IntArray:
    """Rows by task, label, annotator, then ``x1, y1, x2, y2``."""
    order: IntArray = np.lexsort((xy[:, 3], xy[:, 2], xy[:, 1], xy[:, 0], anns, labels, tasks))
    return order


def _output_order(clusters: tuple[IntArray, IntArray, FloatArray], medoid_s: IntArray) -> IntArray:
    """Clusters by task, label, consensus box, then canonical position (equal boxes of one annotator)."""
    task, label, box = clusters
    perm: IntArray = np.lexsort((medoid_s, box[:, 3], box[:, 2], box[:, 1], box[:, 0], label, task))
    return perm


def _memberships(order: IntArray, cl: IntArray, a_s: IntArray, perm: IntArray) -> tuple[IntArray, IntArray]:
    """Input rows by output cluster then annotator code, and the output cluster of each input row.

    ``order`` sorts the input rows canonically, ``cl`` is the cluster of each sorted row, ``a_s`` its
    annotator, and ``perm`` puts the clusters in output order.
    """
    n, n_clusters = order.shape[0], perm.shape[0]
    new_id = np.empty(n_clusters, dtype=np.int64)
    new_id[perm] = np.arange(n_clusters)
    cl_new = new_id[cl]
    by_member = np.lexsort((np.arange(n), a_s, cl_new))
    cluster_of = np.empty(n, dtype=np.int64)
    cluster_of[order] = cl_new
    return order[by_member], cluster_of


def consensus_arrays(
    task_codes: npt.ArrayLike,
    annotator_codes: npt.ArrayLike,
    label_codes: npt.ArrayLike,
    xyxy: npt.ArrayLike,
    submissions: npt.ArrayLike,
    params: ConsensusParams | None = None,
    skills: npt.ArrayLike | None = None,
) -> ConsensusArrays:
    """Consensus of columnar volunteer boxes; the fast core of :func:`consensus`.

    Equal distances are broken by annotator code, then coordinates: give annotator codes in the
    order of the names (as :func:`consensus` does) for name-order tie-breaking. The result does not
    depend on the order of the input rows.

    Args:
        task_codes: ``(N,)`` task code of each box, integers >= 0.
        annotator_codes: ``(N,)`` annotator code of each box.
        label_codes: ``(N,)`` label code of each box.
        xyxy: ``(N, 4)`` pixel boxes with ``x2 > x1`` and ``y2 > y1``.
        submissions: ``(S, 2)`` (task code, annotator code) of every submission, including those
            without boxes. Annotators with boxes on a task they did not submit count as submitters.
        params: Clustering and acceptance parameters (defaults if None).
        skills: ``(A,)`` vote weight in ``[0, 1]`` per annotator code; ``default_skill`` for all if None.

    Returns:
        The clusters as columns (:class:`ConsensusArrays`).

    Raises:
        ConsensusInputError: If shapes, codes, boxes or skills are malformed.
    """
    p = params or ConsensusParams()
    tasks, anns, labels, xy = _checked_boxes(task_codes, annotator_codes, label_codes, xyxy)
    sub_task, sub_ann = _checked_submissions(submissions)
    n_tasks = int(max(tasks.max(initial=-1), sub_task.max(initial=-1))) + 1
    n_anns = int(max(anns.max(initial=-1), sub_ann.max(initial=-1))) + 1
    weights = _vote_weights(skills, n_anns, p.default_skill)
    n_sub, w_sub, implied = _submitters((sub_task, sub_ann), (tasks, anns), weights, n_tasks)
    order = _canonical_order(tasks, labels, anns, xy)
    sorted_boxes = (tasks[order], labels[order], anns[order], xy[order])
    cl, roots, medoid_s = _clusters(sorted_boxes, p.eps)
    t_s, l_s, a_s, b_s = sorted_boxes
    clusters = (t_s[roots], l_s[roots], b_s[medoid_s])  # task, label and consensus box of each cluster
    n_ann_c, support, sigma, agreement = _cluster_scores(
        cl, clusters, sorted_boxes, weights, w_sub[clusters[0]], n_tasks, p.eps
    )
    accepted, review = _decisions(support, sigma, p)
    perm = _output_order(clusters, medoid_s)
    member_rows, cluster_of = _memberships(order, cl, a_s, perm)
    c_task, c_label, c_box = clusters
    return ConsensusArrays(
        task=c_task[perm],
        label=c_label[perm],
        xyxy=c_box[perm],
        medoid=order[medoid_s[perm]],
        support=support[perm],
        sigma=sigma[perm],
        label_agreement=agreement[perm],
        n_annotators=n_ann_c[perm],
        n_submitters=n_sub[c_task[perm]],
        accepted=accepted[perm],
        needs_review=review[perm],
        member_indptr=np.concatenate([[0], np.cumsum(n_ann_c[perm])]).astype(np.int64),
        member_rows=member_rows,
        cluster_of=cluster_of,
        review_tasks=np.unique(c_task[review]),
        implied_submissions=implied,
    )


def consensus(
    boxes: Iterable[VolunteerBox],
    submissions: Iterable[Submission],
    params: ConsensusParams | None = None,
    skills: Mapping[str, float] | None = None,
) -> ConsensusResult:
    """Merge volunteers' boxes into consensus boxes, per task and label (see the module docs).

    Args:
        boxes: Every volunteer box.
        submissions: Every submission, including those of volunteers who drew nothing.
        params: Clustering and acceptance parameters (defaults if None).
        skills: Vote weight in ``[0, 1]`` per annotator (see :func:`effective_skills`); annotators
            missing from it weigh ``default_skill``. All votes weigh the same if None.

    Returns:
        All clusters with their support, spread and label agreement, and the tasks to review.

    Raises:
        ConsensusInputError: If a skill lies outside ``[0, 1]``.
    """
    p = params or ConsensusParams()
    box_list = list(boxes)
    sub_list = list(submissions)
    task_names = sorted({b.task for b in box_list}.union(s.task for s in sub_list))
    ann_names = sorted({b.annotator for b in box_list}.union(s.annotator for s in sub_list))
    label_names = sorted({b.label for b in box_list})
    task_ix = {name: i for i, name in enumerate(task_names)}
    ann_ix = {name: i for i, name in enumerate(ann_names)}
    label_ix = {name: i for i, name in enumerate(label_names)}
    n = len(box_list)
    weights = None
    if skills is not None:
        weights = np.array([skills.get(a, p.default_skill) for a in ann_names], dtype=np.float64)
        bad = [a for a, w in zip(ann_names, weights.tolist(), strict=True) if not 0.0 <= w <= 1.0]
        if bad:
            raise ConsensusInputError(
                f"skills must lie in [0, 1], got {skills[bad[0]]!r} for {bad[0]!r}",
                hint="use effective_skill() values",
            )
    arrays = consensus_arrays(
        np.fromiter((task_ix[b.task] for b in box_list), dtype=np.int64, count=n),
        np.fromiter((ann_ix[b.annotator] for b in box_list), dtype=np.int64, count=n),
        np.fromiter((label_ix[b.label] for b in box_list), dtype=np.int64, count=n),
        np.array([(b.box.x1, b.box.y1, b.box.x2, b.box.y2) for b in box_list], dtype=np.float64),
        np.array([(task_ix[s.task], ann_ix[s.annotator]) for s in sub_list], dtype=np.int64),
        p,
        weights,
    )
    member_list = [box_list[r].annotator for r in arrays.member_rows.tolist()]
    a = arrays
    columns = (a.task, a.label, a.medoid, a.support, a.n_annotators, a.n_submitters, a.sigma)
    rest = (a.label_agreement, a.accepted, a.needs_review)
    out = [
        ConsensusBox(task_names[t], label_names[lab], box_list[m].box, s, na, ns, sg, la, members, acc, rev)
        for (t, lab, m, s, na, ns, sg, la, acc, rev), members in zip(
            zip(*(col.tolist() for col in (*columns, *rest)), strict=True),
            (tuple(member_list[i:j]) for i, j in itertools.pairwise(a.member_indptr.tolist())),
            strict=True,
        )
    ]
    return ConsensusResult(
        boxes=tuple(out),
        review_tasks=tuple(task_names[t] for t in arrays.review_tasks.tolist()),
        params=p,
        implied_submissions=arrays.implied_submissions,
    )


def _matches(mine: Sequence[tuple[str, BBox]], truth: Sequence[tuple[str, BBox]], iou: float) -> int:
    """Greedy one-to-one matches (same label, ``IoU >= iou``, best overlap first) between two box sets."""

    def canonical(items: Sequence[tuple[str, BBox]]) -> list[tuple[str, float, float, float, float]]:
        return sorted((lab, b.x1, b.y1, b.x2, b.y2) for lab, b in items)

    a, b = canonical(mine), canonical(truth)
    if not a or not b:
        return 0
    xa = np.array([r[1:] for r in a], dtype=np.float64)
    xb = np.array([r[1:] for r in b], dtype=np.float64)
    overlap = _iou(xa[:, None, :], xb[None, :, :])
    same = np.array([r[0] for r in a])[:, None] == np.array([r[0] for r in b])[None, :]
    ii, jj = np.nonzero(same & (overlap >= iou))
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    for k in np.lexsort((jj, ii, -overlap[ii, jj])).tolist():
        i, j = int(ii[k]), int(jj[k])
        if i not in taken_a and j not in taken_b:
            taken_a.add(i)
            taken_b.add(j)
    return len(taken_a)


def skills_from_gold(
    boxes: Iterable[VolunteerBox],
    gold: Mapping[str, Sequence[tuple[str, BBox]]],
    iou: float = 0.5,
    *,
    submissions: Iterable[Submission] = (),
) -> dict[str, tuple[float, int]]:
    """Each volunteer's F1 score against expert boxes on gold tasks, and how many gold tasks they did.

    On every gold task a volunteer submitted or drew on, their boxes are matched one-to-one to the
    expert boxes of the same label (greedily, best IoU first, ``IoU >= iou``). Matches are true
    positives, their other boxes false positives, the unmatched expert boxes false negatives; the
    counts are summed over the volunteer's gold tasks and ``F1 = 2 TP / (2 TP + FP + FN)`` (1.0 when
    the tasks were empty and they drew nothing).

    Args:
        boxes: Volunteer boxes (those on tasks that are not gold are ignored).
        gold: Expert ``(label, box)`` pairs per gold task id; an empty list is an image without litter.
        iou: Least IoU of a match, in ``(0, 1]``.
        submissions: Submissions, so that gold tasks a volunteer submitted empty count as misses.

    Returns:
        ``{annotator: (f1, gold tasks)}`` for every annotator who did at least one gold task.

    Raises:
        ConsensusParamsError: If ``iou`` is outside ``(0, 1]``.
    """
    _in_unit("iou", iou, low_open=True)
    drawn: dict[tuple[str, str], list[tuple[str, BBox]]] = defaultdict(list)
    seen: dict[str, set[str]] = defaultdict(set)
    for b in boxes:
        if b.task in gold:
            drawn[(b.annotator, b.task)].append((b.label, b.box))
            seen[b.annotator].add(b.task)
    for s in submissions:
        if s.task in gold:
            seen[s.annotator].add(s.task)
    out: dict[str, tuple[float, int]] = {}
    for annotator in sorted(seen):
        tp = fp = fn = 0
        for task in sorted(seen[annotator]):
            mine = drawn.get((annotator, task), [])
            truth = gold[task]
            hits = _matches(mine, truth, iou)
            tp, fp, fn = tp + hits, fp + len(mine) - hits, fn + len(truth) - hits
        denominator = 2 * tp + fp + fn
        out[annotator] = (2 * tp / denominator if denominator else 1.0, len(seen[annotator]))
    return out


def effective_skill(skill: float, n_gold: int, params: ConsensusParams | None = None) -> float:
    """The vote weight of a volunteer: their gold skill, or ``default_skill`` below ``min_gold`` tasks.

    Raises:
        ConsensusInputError: If ``skill`` is outside ``[0, 1]`` or ``n_gold`` is negative.
    """
    p = params or ConsensusParams()
    if not (np.isfinite(skill) and 0.0 <= skill <= 1.0) or n_gold < 0:
        raise ConsensusInputError(
            f"a skill lies in [0, 1] with a gold count >= 0, got skill={skill!r}, n_gold={n_gold!r}"
        )
    return p.default_skill if n_gold < p.min_gold else float(skill)


def effective_skills(
    gold_skills: Mapping[str, tuple[float, int]], params: ConsensusParams | None = None
) -> dict[str, float]:
    """:func:`effective_skill` of every volunteer in a :func:`skills_from_gold` result."""
    return {a: effective_skill(skill, n, params) for a, (skill, n) in sorted(gold_skills.items())}


@dataclass(frozen=True, slots=True)
class VolunteerStats:
    """How one volunteer's work fared in consensus.

    Args:
        annotator: The volunteer.
        tasks: Tasks they submitted or drew on.
        boxes: Boxes they drew.
        accepted_boxes: Their boxes that are members of an accepted consensus box.
        agreement: ``accepted_boxes / boxes``; None when they drew no box.
        skill: Their vote weight (gold F1 from ``min_gold`` gold tasks on, else ``default_skill``).
        gold_skill: Their F1 on gold tasks; None without gold tasks.
        gold_tasks: Gold tasks they did.
    """

    annotator: str
    tasks: int
    boxes: int
    accepted_boxes: int
    agreement: float | None
    skill: float
    gold_skill: float | None
    gold_tasks: int


def volunteer_stats(
    boxes: Iterable[VolunteerBox],
    submissions: Iterable[Submission],
    result: ConsensusResult,
    skills: Mapping[str, tuple[float, int]] | None = None,
) -> list[VolunteerStats]:
    """Per-volunteer tasks, boxes, agreement with the accepted consensus, and skill.

    Args:
        boxes: The volunteer boxes given to :func:`consensus`.
        submissions: The submissions given to :func:`consensus`.
        result: What :func:`consensus` made of them (its parameters decide the effective skill).
        skills: :func:`skills_from_gold` result, if any.

    Returns:
        One entry per volunteer, by agreement (highest first, those without boxes last), then name.
    """
    gold = skills or {}
    tasks: dict[str, set[str]] = defaultdict(set)
    n_boxes: dict[str, int] = defaultdict(int)
    for b in boxes:
        tasks[b.annotator].add(b.task)
        n_boxes[b.annotator] += 1
    for s in submissions:
        tasks[s.annotator].add(s.task)
    accepted: dict[str, int] = defaultdict(int)
    for cb in result.boxes:
        if cb.accepted:
            for member in cb.members:
                accepted[member] += 1
    stats = []
    for annotator in sorted(tasks):
        drew = n_boxes.get(annotator, 0)
        skill, n_gold = gold.get(annotator, (None, 0))
        stats.append(
            VolunteerStats(
                annotator=annotator,
                tasks=len(tasks[annotator]),
                boxes=drew,
                accepted_boxes=accepted.get(annotator, 0),
                agreement=accepted.get(annotator, 0) / drew if drew else None,
                skill=effective_skill(skill if skill is not None else 0.0, n_gold, result.params),
                gold_skill=skill,
                gold_tasks=n_gold,
            )
        )
    stats.sort(key=lambda v: (v.agreement is None, -(v.agreement or 0.0), v.annotator))
    return stats
