"""Volunteer consensus: simulated volunteers of known skill, invariants, quorum, skill and review rules."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic_hotspots.annotations.consensus import (
    ConsensusBox,
    ConsensusError,
    ConsensusInputError,
    ConsensusParams,
    ConsensusParamsError,
    ConsensusResult,
    Submission,
    VolunteerBox,
    consensus,
    consensus_arrays,
    effective_skill,
    effective_skills,
    skills_from_gold,
    volunteer_stats,
)
from plastic_hotspots.errors import PlasticHotspotsError
from plastic_hotspots.records import BBox

LABELS = ("bag", "bottle", "foam", "wrapper")
IMAGE_W, IMAGE_H = 640.0, 480.0

# ---------------------------------------------------------------- simulated volunteers


@dataclass(frozen=True)
class Volunteer:
    name: str
    jitter: float  # standard deviation of each coordinate, as a share of the object's size
    miss: float  # chance of not drawing a true object
    wrong_label: float  # chance of drawing it with a random label
    false_positives: float  # mean number of boxes on nothing, per image
    adversarial: bool = False  # draws only random boxes with random labels


def good(name: str) -> Volunteer:
    """Small jitter, rare misses, wrong labels and false positives."""
    return Volunteer(name, jitter=0.03, miss=0.01, wrong_label=0.005, false_positives=0.05)


def careless(name: str) -> Volunteer:
    """Big jitter, many misses, wrong labels and false positives."""
    return Volunteer(name, jitter=0.15, miss=0.3, wrong_label=0.1, false_positives=0.5)


def adversarial(name: str) -> Volunteer:
    """Only random boxes with random labels."""
    return Volunteer(name, 0.0, 1.0, 0.0, 3.0, adversarial=True)


# Names whose alphabetical order mixes the kinds, so that tie-breaking by name favours nobody.
CROWD = (
    good("dara"),
    good("bea"),
    good("eli"),
    careless("ash"),
    adversarial("cat"),
)


def iou(a: BBox, b: BBox) -> float:
    iw = max(min(a.x2, b.x2) - max(a.x1, b.x1), 0.0)
    ih = max(min(a.y2, b.y2) - max(a.y1, b.y1), 0.0)
    inter = iw * ih
    return inter / (a.area + b.area - inter)


def random_box(rng: np.random.Generator) -> BBox:
    w, h = rng.uniform(30, 150, 2)
    x, y = rng.uniform(0, IMAGE_W - w), rng.uniform(0, IMAGE_H - h)
    return BBox(float(x), float(y), float(x + w), float(y + h))


def make_truth(
    rng: np.random.Generator, n_images: int, prefix: str = "img"
) -> dict[str, list[tuple[str, BBox]]]:
    """1-5 objects per image (a tenth of the images empty), overlapping each other by IoU < 0.1."""
    truth: dict[str, list[tuple[str, BBox]]] = {}
    for i in range(n_images):
        objects: list[tuple[str, BBox]] = []
        wanted = 0 if rng.uniform() < 0.1 else int(rng.integers(1, 6))
        while len(objects) < wanted:
            box = random_box(rng)
            if all(iou(box, other) < 0.1 for _, other in objects):
                objects.append((LABELS[int(rng.integers(len(LABELS)))], box))
        truth[f"{prefix}-{i:04d}"] = objects
    return truth


def draw(rng: np.random.Generator, v: Volunteer, objects: list[tuple[str, BBox]]) -> list[tuple[str, BBox]]:
    drawn: list[tuple[str, BBox]] = []
    if not v.adversarial:
        for label, b in objects:
            if rng.uniform() < v.miss:
                continue
            noise = rng.normal(0, v.jitter, 4) * np.array([b.width, b.height, b.width, b.height])
            x1, y1, x2, y2 = np.array([b.x1, b.y1, b.x2, b.y2]) + noise
            x1, x2 = min(x1, x2 - 2), max(x2, x1 + 2)
            y1, y2 = min(y1, y2 - 2), max(y2, y1 + 2)
            said = LABELS[int(rng.integers(len(LABELS)))] if rng.uniform() < v.wrong_label else label
            drawn.append((said, BBox(float(x1), float(y1), float(x2), float(y2))))
    for _ in range(int(rng.poisson(v.false_positives))):
        drawn.append((LABELS[int(rng.integers(len(LABELS)))], random_box(rng)))
    return drawn


def simulate(
    rng: np.random.Generator, truth: dict[str, list[tuple[str, BBox]]], crowd: tuple[Volunteer, ...] = CROWD
) -> tuple[list[VolunteerBox], list[Submission]]:
    boxes: list[VolunteerBox] = []
    submissions: list[Submission] = []
    for task, objects in truth.items():
        for v in crowd:
            submissions.append(Submission(task, v.name))
            boxes.extend(VolunteerBox(task, v.name, label, b) for label, b in draw(rng, v, objects))
    return boxes, submissions


def precision_recall(
    result: ConsensusResult, truth: dict[str, list[tuple[str, BBox]]]
) -> tuple[float, float, int, int]:
    """Accepted boxes against the truth: one-to-one, same label, IoU >= 0.5, best overlap first."""
    found: dict[str, list[ConsensusBox]] = defaultdict(list)
    for cb in result.accepted:
        found[cb.task].append(cb)
    tp = 0
    for task, objects in truth.items():
        pairs = sorted(
            (
                (iou(cb.box, b), i, j)
                for i, cb in enumerate(found[task])
                for j, (label, b) in enumerate(objects)
                if cb.label == label
            ),
            reverse=True,
        )
        used_i: set[int] = set()
        used_j: set[int] = set()
        for overlap, i, j in pairs:
            if overlap >= 0.5 and i not in used_i and j not in used_j:
                used_i.add(i)
                used_j.add(j)
        tp += len(used_i)
    n_found = len(result.accepted)
    n_true = sum(len(o) for o in truth.values())
    return tp / n_found, tp / n_true, n_found, n_true


def test_consensus_recovers_the_true_boxes_from_a_mixed_crowd() -> None:
    rng = np.random.default_rng(7)
    truth = make_truth(rng, 300)
    boxes, submissions = simulate(rng, truth)
    gold_truth = make_truth(rng, 15, prefix="gold")
    gold_boxes, gold_submissions = simulate(rng, gold_truth)

    start = time.perf_counter()
    plain = consensus(boxes, submissions)
    took = time.perf_counter() - start
    precision, recall, n_found, n_true = precision_recall(plain, truth)
    print(
        f"\nequal votes: precision {precision:.3f}, recall {recall:.3f} "
        f"({n_found} accepted, {n_true} true objects, {len(boxes)} volunteer boxes, {took:.2f} s)"
    )
    assert n_true > 700
    assert precision >= 0.95
    assert recall >= 0.95

    gold = skills_from_gold(gold_boxes, gold_truth, submissions=gold_submissions)
    weights = effective_skills(gold)
    weighted = consensus(boxes, submissions, skills=weights)
    w_precision, w_recall, w_found, _ = precision_recall(weighted, truth)
    print(
        f"gold-skill votes: precision {w_precision:.3f}, recall {w_recall:.3f} ({w_found} accepted); "
        f"skills {', '.join(f'{a} {s:.2f}' for a, s in weights.items())}"
    )
    assert w_precision >= 0.95
    assert w_recall >= recall  # two good volunteers now carry a box without the careless one
    # Nothing the adversary drew survives, and the accepted boxes agree on their label.
    stats = {s.annotator: s for s in volunteer_stats(boxes, submissions, plain, gold)}
    assert stats["cat"].agreement is not None
    assert stats["cat"].agreement < 0.02
    assert min(stats[n].agreement or 0 for n in ("bea", "dara", "eli")) > 0.9
    assert np.mean([cb.label_agreement for cb in plain.accepted]) > 0.9


# ---------------------------------------------------------------- invariants


def test_two_overlapping_boxes_of_one_annotator_never_merge() -> None:
    boxes = [
        VolunteerBox("t", "ann", "bottle", BBox(0, 0, 100, 100)),
        VolunteerBox("t", "ann", "bottle", BBox(2, 0, 102, 100)),  # IoU 0.96 with ann's first box
        VolunteerBox("t", "bob", "bottle", BBox(1, 0, 101, 100)),
    ]
    result = consensus(boxes, [Submission("t", "ann"), Submission("t", "bob")])
    assert [cb.members for cb in result.boxes] == [("ann", "bob"), ("ann",)]
    assert [cb.box for cb in result.boxes] == [BBox(0, 0, 100, 100), BBox(2, 0, 102, 100)]
    assert [cb.support for cb in result.boxes] == [1.0, 0.5]
    # Equal distances go to the annotator's box that comes first by coordinates, whatever the input order.
    assert consensus(boxes[::-1], [Submission("t", "bob"), Submission("t", "ann")]) == result
    # Even when one annotator's boxes are identical.
    twice = consensus([boxes[0], boxes[0]], [Submission("t", "ann")])
    assert [cb.members for cb in twice.boxes] == [("ann",), ("ann",)]


# A coarse grid, so that equal distances (and equal boxes) are common.
coord = st.integers(0, 8).map(float)
size = st.integers(1, 6).map(float)
raw_box = st.tuples(
    st.sampled_from(["t1", "t2"]),
    st.sampled_from(["ann", "bob", "cy", "dee"]),
    st.sampled_from(["bag", "bottle"]),
    coord,
    coord,
    size,
    size,
)


def build(raw: list[tuple[str, str, str, float, float, float, float]]) -> list[VolunteerBox]:
    return [VolunteerBox(t, a, lab, BBox(x, y, x + w, y + h)) for t, a, lab, x, y, w, h in raw]


@settings(max_examples=150)
@given(
    raw=st.lists(raw_box, max_size=24),
    extra=st.lists(
        st.tuples(st.sampled_from(["t1", "t2", "t3"]), st.sampled_from(["ann", "eve"])), max_size=4
    ),
    seed=st.integers(0, 2**32 - 1),
    eps=st.sampled_from([0.3, 0.5, 0.7]),
)
def test_consensus_does_not_depend_on_input_order_or_on_names_in_the_same_order(
    raw: list[tuple[str, str, str, float, float, float, float]],
    extra: list[tuple[str, str]],
    seed: int,
    eps: float,
) -> None:
    boxes = build(raw)
    # Most drawers submitted; "dee" never does (implied submitter); some submit without drawing.
    subs = [Submission(b.task, b.annotator) for b in boxes if b.annotator != "dee"] + [
        Submission(*e) for e in extra
    ]
    params = ConsensusParams(eps=eps)
    skills = {"ann": 0.9, "bob": 0.4, "cy": 0.7}
    base = consensus(boxes, subs, params, skills)

    rng = np.random.default_rng(seed)
    shuffled = consensus(
        [boxes[i] for i in rng.permutation(len(boxes))],
        [subs[i] for i in rng.permutation(len(subs))],
        params,
        skills,
    )
    assert shuffled == base

    # Renaming annotators in a way that keeps their order changes nothing but the names.
    rename = {"ann": "v01-zed", "bob": "v02-al", "cy": "v03-kim", "dee": "v04-bo", "eve": "v05-jo"}
    renamed = consensus(
        [replace(b, annotator=rename[b.annotator]) for b in reversed(boxes)],
        [replace(s, annotator=rename[s.annotator]) for s in subs],
        params,
        {rename[a]: w for a, w in skills.items()},
    )
    assert renamed.boxes == tuple(
        replace(cb, members=tuple(rename[m] for m in cb.members)) for cb in base.boxes
    )
    assert renamed.review_tasks == base.review_tasks

    # Every cluster holds distinct annotators, all within eps of each other, counted against submitters.
    for cb in base.boxes:
        assert len(set(cb.members)) == len(cb.members) == cb.n_annotators <= cb.n_submitters
    keys = [(cb.task, cb.label, cb.box.x1, cb.box.y1, cb.box.x2, cb.box.y2) for cb in base.boxes]
    assert keys == sorted(keys)
    assert base.review_tasks == tuple(sorted({cb.task for cb in base.boxes if cb.needs_review}))
    assert base.implied_submissions == len(
        {(b.task, b.annotator) for b in boxes} - {(s.task, s.annotator) for s in subs}
    )


def reference_clusters(
    boxes: list[VolunteerBox], eps: float
) -> list[tuple[tuple[str, str, str, float, float, float, float], ...]]:
    """Complete linkage with cannot-link, plainly: merge the closest pair (first in order) while <= eps."""
    groups: dict[tuple[str, str], list[VolunteerBox]] = defaultdict(list)
    for b in boxes:
        groups[(b.task, b.label)].append(b)
    out = []
    for members in groups.values():
        members.sort(key=lambda b: (b.annotator, b.box.x1, b.box.y1, b.box.x2, b.box.y2))
        clusters = [[b] for b in members]  # kept in order of their first member

        def linkage(p: list[VolunteerBox], q: list[VolunteerBox]) -> float:
            if {b.annotator for b in p} & {b.annotator for b in q}:
                return math.inf
            return max(1.0 - iou(a.box, b.box) for a in p for b in q)

        while True:
            best = None
            for i in range(len(clusters)):
                for j in range(i + 1, len(clusters)):
                    d = linkage(clusters[i], clusters[j])
                    if d <= eps and (best is None or d < best[0]):
                        best = (d, i, j)
            if best is None:
                break
            _, i, j = best
            clusters[i] += clusters.pop(j)
        for c in clusters:
            out.append(
                tuple(
                    sorted((b.task, b.label, b.annotator, b.box.x1, b.box.y1, b.box.x2, b.box.y2) for b in c)
                )
            )
    return sorted(out)


@settings(max_examples=150)
@given(raw=st.lists(raw_box, max_size=30), eps=st.sampled_from([0.3, 0.5, 0.7]))
def test_the_fast_clustering_matches_a_plain_implementation(
    raw: list[tuple[str, str, str, float, float, float, float]], eps: float
) -> None:
    boxes = build(raw)
    tasks, anns, labels = (sorted({getattr(b, f) for b in boxes}) for f in ("task", "annotator", "label"))
    arrays = consensus_arrays(
        np.array([tasks.index(b.task) for b in boxes], dtype=np.int64),
        np.array([anns.index(b.annotator) for b in boxes], dtype=np.int64),
        np.array([labels.index(b.label) for b in boxes], dtype=np.int64),
        np.array([(b.box.x1, b.box.y1, b.box.x2, b.box.y2) for b in boxes]).reshape(-1, 4),
        np.zeros((0, 2), dtype=np.int64),
        ConsensusParams(eps=eps),
    )
    got = []
    for c in range(arrays.n_clusters):
        rows = arrays.member_rows[arrays.member_indptr[c] : arrays.member_indptr[c + 1]].tolist()
        members = [boxes[r] for r in rows]
        got.append(
            tuple(
                sorted(
                    (b.task, b.label, b.annotator, b.box.x1, b.box.y1, b.box.x2, b.box.y2) for b in members
                )
            )
        )
        assert arrays.cluster_of[rows].tolist() == [c] * len(rows)
        # The consensus box is a member with the least sum of squared distances to the others.
        costs = [sum((1 - iou(m.box, o.box)) ** 2 for o in members) for m in members]
        medoid = boxes[int(arrays.medoid[c])]
        assert medoid in members
        assert sum((1 - iou(medoid.box, o.box)) ** 2 for o in members) <= min(costs) + 1e-12
        sigma = sum(1 - iou(medoid.box, o.box) for o in members) / max(len(members) - 1, 1)
        assert arrays.sigma[c] == pytest.approx(sigma, abs=1e-9)
    assert sorted(got) == reference_clusters(boxes, eps)


# ---------------------------------------------------------------- quorum, skill, label agreement, review


def crowd_on_one_box(drawers: list[str], submitters: list[str]) -> ConsensusResult:
    return consensus(
        [VolunteerBox("img", a, "bag", BBox(10, 10, 60, 60)) for a in drawers],
        [Submission("img", a) for a in submitters],
    )


def test_the_quorum_counts_submitters_who_drew_nothing() -> None:
    five = ["a", "b", "c", "d", "e"]
    one = crowd_on_one_box(["c"], five).boxes[0]
    assert (one.support, one.n_annotators, one.n_submitters, one.accepted) == (0.2, 1, 5, False)
    three = crowd_on_one_box(["a", "c", "e"], five).boxes[0]
    assert (three.support, three.n_annotators, three.n_submitters, three.accepted) == (0.6, 3, 5, True)
    assert not three.needs_review  # 0.6 is not below review_support 0.6
    # Someone who drew but never submitted counts as a submitter too (and is reported).
    implied = crowd_on_one_box(["a", "f"], ["a", "b"])
    assert (implied.boxes[0].n_submitters, implied.implied_submissions) == (3, 1)
    assert implied.boxes[0].support == pytest.approx(2 / 3)
    # A task submitted empty by everybody has no boxes and no review.
    empty = consensus([], [Submission("img", a) for a in five])
    assert empty.boxes == ()
    assert empty.review_tasks == ()


def test_skilled_volunteers_outvote_a_larger_unskilled_crowd() -> None:
    left, right = BBox(0, 0, 50, 50), BBox(200, 200, 260, 260)
    boxes = [VolunteerBox("img", a, "bottle", left) for a in ("pro1", "pro2")]
    boxes += [VolunteerBox("img", a, "bottle", right) for a in ("new1", "new2", "new3")]
    subs = [Submission("img", b.annotator) for b in boxes]

    equal = consensus(boxes, subs)
    assert [(cb.box, cb.support, cb.accepted) for cb in equal.boxes] == [
        (left, 0.4, False),
        (right, 0.6, True),
    ]

    skills = {"pro1": 0.95, "pro2": 0.95, "new1": 0.3, "new2": 0.3, "new3": 0.3}
    weighted = consensus(boxes, subs, skills=skills)
    assert [(cb.box, cb.accepted) for cb in weighted.boxes] == [(left, True), (right, False)]
    assert weighted.boxes[0].support == pytest.approx(1.9 / 2.8)
    # Close skills do not overturn the majority.
    close = consensus(boxes, subs, skills={**skills, "new1": 0.8, "new2": 0.8, "new3": 0.8})
    assert [cb.accepted for cb in close.boxes] == [False, True]


def test_label_agreement_counts_each_overlapping_annotator_once() -> None:
    box = BBox(0, 0, 100, 100)
    boxes = [
        VolunteerBox("img", "a", "bottle", box),
        VolunteerBox("img", "b", "bottle", BBox(0, 0, 100, 96)),
        VolunteerBox("img", "c", "bottle", BBox(2, 0, 100, 100)),
        VolunteerBox("img", "d", "bag", BBox(0, 0, 100, 98)),
        VolunteerBox("img", "d", "bag", BBox(1, 1, 99, 99)),  # d's second vote on the object: not counted
        VolunteerBox("img", "e", "foam", BBox(300, 300, 340, 340)),  # elsewhere: no vote
    ]
    result = consensus(boxes, [Submission("img", x) for x in "abcde"])
    bottle = next(cb for cb in result.boxes if cb.label == "bottle")
    assert bottle.members == ("a", "b", "c")
    assert bottle.label_agreement == 0.75
    bags = [cb for cb in result.boxes if cb.label == "bag"]
    assert [cb.label_agreement for cb in bags] == [0.25, 0.25]
    # Weighted by skill: d's vote weighs as much as the three others together.
    weighted = consensus(
        boxes, [Submission("img", x) for x in "abcde"], skills={"a": 0.3, "b": 0.3, "c": 0.3, "d": 0.9}
    )
    assert next(cb for cb in weighted.boxes if cb.label == "bottle").label_agreement == 0.5


def test_an_annotator_with_two_labels_on_one_box_votes_for_the_cluster_label() -> None:
    box = BBox(0, 0, 10, 10)
    boxes = [VolunteerBox("img", "a", "bottle", box), VolunteerBox("img", "b", "bottle", box)]
    boxes.append(VolunteerBox("img", "b", "bag", box))
    result = consensus(boxes, [Submission("img", "a"), Submission("img", "b")])
    assert [(cb.label, cb.members, cb.label_agreement) for cb in result.boxes] == [
        ("bag", ("b",), 0.5),
        ("bottle", ("a", "b"), 1.0),
    ]


def test_low_support_or_large_spread_sends_the_task_to_review() -> None:
    six = ["a", "b", "c", "d", "e", "f"]
    half = crowd_on_one_box(["a", "b", "c"], six)  # support 0.5: accepted, below review_support 0.6
    assert (half.boxes[0].accepted, half.boxes[0].needs_review, half.review_tasks) == (True, True, ("img",))

    spread = [BBox(0, 0, 100, 100), BBox(30, 0, 130, 100), BBox(15, 0, 115, 100)]  # 1 - IoU: .46, .26, .26
    boxes = [VolunteerBox("wide", a, "bag", b) for a, b in zip("abc", spread, strict=True)]
    boxes += [VolunteerBox("tight", a, "bag", BBox(0, 0, 100, 100)) for a in "abc"]
    result = consensus(boxes, [Submission(t, a) for t in ("wide", "tight") for a in "abc"])
    by_task = {cb.task: cb for cb in result.boxes}
    assert by_task["wide"].support == 1.0
    assert by_task["wide"].box == BBox(15, 0, 115, 100)  # the medoid, nearest to both others
    assert by_task["wide"].sigma > 0.25
    assert by_task["wide"].needs_review
    assert (by_task["tight"].sigma, by_task["tight"].needs_review) == (0.0, False)
    assert result.review_tasks == ("wide",)
    # A looser spread limit clears it; rejected boxes never ask for review.
    loose = consensus(
        boxes, [Submission(t, a) for t in ("wide", "tight") for a in "abc"], ConsensusParams(review_sigma=0.5)
    )
    assert loose.review_tasks == ()
    lonely = crowd_on_one_box(["a"], six)
    assert (lonely.boxes[0].accepted, lonely.boxes[0].needs_review, lonely.review_tasks) == (False, False, ())


# ---------------------------------------------------------------- skill from gold tasks, volunteer stats


def test_skills_from_gold_rank_the_volunteers() -> None:
    rng = np.random.default_rng(3)
    crowd = (
        Volunteer("mid", 0.08, 0.15, 0.05, 0.3),
        good("top"),
        careless("low"),
        adversarial("zed"),
        Volunteer("ghost", 0.0, 1.0, 0.0, 0.0),  # submits every gold task empty
    )
    gold = make_truth(rng, 12, prefix="gold")
    boxes, submissions = simulate(rng, gold, crowd)
    skills = skills_from_gold(boxes, gold, submissions=submissions)
    print("\ngold F1: " + ", ".join(f"{a} {f:.2f}" for a, (f, _) in skills.items()))
    assert skills["top"][0] > skills["mid"][0] > skills["low"][0] > max(skills["zed"][0], skills["ghost"][0])
    assert skills["zed"][0] < 0.1
    assert {n for _, n in skills.values()} == {12}
    assert skills["top"][0] > 0.95
    assert skills["ghost"][0] == 0.0
    # Without submissions the empty-handed volunteer saw no gold task at all.
    assert "ghost" not in skills_from_gold(boxes, gold)

    assert effective_skills(skills)["top"] == skills["top"][0]  # 12 >= min_gold 10
    assert effective_skills(skills, ConsensusParams(min_gold=13)) == dict.fromkeys(sorted(skills), 0.7)
    assert effective_skill(0.2, 9, ConsensusParams(default_skill=0.6)) == 0.6
    with pytest.raises(ConsensusInputError, match=r"skill lies in \[0, 1\]"):
        effective_skill(1.5, 20)


def test_skills_from_gold_on_a_hand_made_case() -> None:
    gold = {"g1": [("bag", BBox(0, 0, 10, 10)), ("bottle", BBox(20, 20, 30, 30))], "g2": []}
    boxes = [
        VolunteerBox("g1", "a", "bag", BBox(0, 0, 10, 11)),  # hit
        VolunteerBox("g1", "a", "bag", BBox(20, 20, 30, 30)),  # right place, wrong label: FP + FN
        VolunteerBox("g2", "a", "bag", BBox(0, 0, 5, 5)),  # FP on an empty gold image
        VolunteerBox("other", "a", "bag", BBox(0, 0, 5, 5)),  # not gold: ignored
        VolunteerBox("g2", "b", "bag", BBox(0, 0, 5, 5)),
    ]
    skills = skills_from_gold(boxes, gold, submissions=[Submission("g2", "c")])
    assert skills == {"a": (2 * 1 / (2 * 1 + 2 + 1), 2), "b": (0.0, 1), "c": (1.0, 1)}
    with pytest.raises(ConsensusParamsError, match=r"iou must lie in \(0, 1\]"):
        skills_from_gold(boxes, gold, iou=0.0)


def test_volunteer_stats() -> None:
    five = ["ann", "bob", "cy", "dee", "eve"]
    box = BBox(10, 10, 60, 60)
    boxes = [VolunteerBox("img", a, "bag", box) for a in ("ann", "bob", "cy")]
    boxes += [VolunteerBox("img", "dee", "bag", BBox(300, 300, 320, 320))]
    boxes += [VolunteerBox("other", "dee", "bag", box)]
    subs = [Submission("img", a) for a in five]
    result = consensus(boxes, subs)
    stats = volunteer_stats(boxes, subs, result, {"bob": (0.9, 12), "cy": (0.5, 3)})
    assert [s.annotator for s in stats] == ["ann", "bob", "cy", "dee", "eve"]
    by_name = {s.annotator: s for s in stats}
    assert by_name["bob"] == volunteer_stats(boxes, subs, result, {"bob": (0.9, 12)})[1]
    assert (by_name["bob"].skill, by_name["bob"].gold_skill, by_name["bob"].gold_tasks) == (0.9, 0.9, 12)
    assert (by_name["cy"].skill, by_name["cy"].gold_skill, by_name["cy"].gold_tasks) == (0.7, 0.5, 3)
    # dee drew one box on a task nobody else saw (accepted: 1 of 1 submitter) and one stray box.
    assert (by_name["dee"].tasks, by_name["dee"].boxes, by_name["dee"].accepted_boxes) == (2, 2, 1)
    assert by_name["dee"].agreement == 0.5
    assert (by_name["eve"].boxes, by_name["eve"].agreement, by_name["eve"].skill) == (0, None, 0.7)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eps", 0.0, r"eps must lie in \(0, 1\), got 0.0"),
        ("eps", 1.0, r"eps must lie in \(0, 1\)"),
        ("eps", math.nan, r"eps must lie in"),
        ("min_support", 0.0, r"min_support must lie in \(0, 1\]"),
        ("min_support", 1.2, r"min_support must lie in \(0, 1\]"),
        ("review_support", -0.1, r"review_support must lie in \[0, 1\]"),
        ("review_sigma", 2.0, r"review_sigma must lie in \[0, 1\]"),
        ("default_skill", 0.0, r"default_skill must lie in \(0, 1\]"),
        ("min_gold", -1, r"min_gold must be a whole number >= 0, got -1"),
        ("min_gold", 2.5, r"min_gold must be a whole number"),
    ],
)
def test_params_are_validated(field: str, value: float, message: str) -> None:
    with pytest.raises(ConsensusParamsError, match=message) as caught:
        ConsensusParams(**{field: value})  # type: ignore[arg-type]
    assert isinstance(caught.value, ConsensusError)
    assert isinstance(caught.value, PlasticHotspotsError)
    assert "How to fix" in str(caught.value)


def test_params_are_recorded() -> None:
    assert ConsensusParams().parameters() == {
        "eps": 0.5,
        "min_support": 0.5,
        "review_support": 0.6,
        "review_sigma": 0.25,
        "default_skill": 0.7,
        "min_gold": 10,
    }
    assert crowd_on_one_box(["a"], ["a"]).params == ConsensusParams()


def test_bad_records_and_columns_are_rejected() -> None:
    with pytest.raises(ConsensusInputError, match="needs a task, an annotator and a label"):
        VolunteerBox("t", "", "bag", BBox(0, 0, 1, 1))
    with pytest.raises(ConsensusInputError, match="needs a task and an annotator"):
        Submission("", "a")
    with pytest.raises(ConsensusInputError, match=r"skills must lie in \[0, 1\], got 1.5 for 'a'"):
        consensus([VolunteerBox("t", "a", "bag", BBox(0, 0, 1, 1))], [], skills={"a": 1.5})
    one = (np.array([0]), np.array([0]), np.array([0]))
    none = np.zeros((0, 2), dtype=np.int64)
    with pytest.raises(ConsensusInputError, match=r"one entry per box, got lengths 1, 2, 1"):
        consensus_arrays(one[0], np.array([0, 1]), one[2], [[0, 0, 1, 1]], none)
    with pytest.raises(ConsensusInputError, match=r"xyxy must have shape \(1, 4\)"):
        consensus_arrays(*one, [[0, 0, 1]], none)
    with pytest.raises(ConsensusInputError, match="x2 > x1 and y2 > y1"):
        consensus_arrays(*one, [[0, 0, 0, 1]], none)
    with pytest.raises(ConsensusInputError, match="task_codes must hold integer codes"):
        consensus_arrays(np.array([0.5]), one[1], one[2], [[0, 0, 1, 1]], none)
    with pytest.raises(ConsensusInputError, match="label_codes must be >= 0, found -1"):
        consensus_arrays(one[0], one[1], np.array([-1]), [[0, 0, 1, 1]], none)
    with pytest.raises(ConsensusInputError, match=r"submissions must be integer .* shape \(S, 2\)"):
        consensus_arrays(*one, [[0, 0, 1, 1]], np.array([[0, 0, 0]]))
    with pytest.raises(ConsensusInputError, match=r"at least 2\), got shape \(1,\)"):
        consensus_arrays(*one, [[0, 0, 1, 1]], np.array([[0, 1]]), skills=[0.5])
    with pytest.raises(ConsensusInputError, match=r"skills must lie in \[0, 1\]"):
        consensus_arrays(*one, [[0, 0, 1, 1]], none, skills=[-0.5])


def test_columns_and_records_agree() -> None:
    rng = np.random.default_rng(11)
    truth = make_truth(rng, 20)
    boxes, submissions = simulate(rng, truth)
    result = consensus(boxes, submissions)
    tasks = sorted(truth)
    anns = sorted({v.name for v in CROWD})
    arrays = consensus_arrays(
        np.array([tasks.index(b.task) for b in boxes]),
        np.array([anns.index(b.annotator) for b in boxes]),
        np.array([LABELS.index(b.label) for b in boxes]),
        np.array([(b.box.x1, b.box.y1, b.box.x2, b.box.y2) for b in boxes]),
        np.array([(tasks.index(s.task), anns.index(s.annotator)) for s in submissions]),
    )
    assert arrays.n_clusters == len(result.boxes)
    assert [tasks[t] for t in arrays.task.tolist()] == [cb.task for cb in result.boxes]
    assert arrays.support.tolist() == [cb.support for cb in result.boxes]
    assert arrays.xyxy.tolist() == [[cb.box.x1, cb.box.y1, cb.box.x2, cb.box.y2] for cb in result.boxes]
    assert Counter(arrays.cluster_of.tolist()) == Counter(
        {c: cb.n_annotators for c, cb in enumerate(result.boxes)}
    )
    assert sorted(arrays.member_rows.tolist()) == list(range(len(boxes)))
