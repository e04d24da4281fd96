"""The smoothed, cross-validated litter density: its choice, intervals, Gi* with FDR, and bad surveys."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic_hotspots.errors import PlasticHotspotsError
from plastic_hotspots.maps.inputs.observations import Observations, read_plitter_tracks
from plastic_hotspots.maps.params import GI_FDR as FDR
from plastic_hotspots.maps.survey.cells import benjamini_hochberg, survey_density, survey_grid
from plastic_hotspots.maps.survey.smoothing import choose_smoothing, smoothed_density
from plastic_hotspots.maps.survey.validation import score_split, split_tracks

M_PER_DEG_LON, M_PER_DEG_LAT = 105_000.0, 111_000.0


def synthetic_survey(
    seed: int, *, tracks: int = 12, per_track: int = 150, hot: float = 1.0
) -> gpd.GeoDataFrame:
    """Tracks of random points over 3 x 3 km; items Poisson(1), ``hot`` times that in a 600 m square."""
    rng = np.random.default_rng(seed)
    n = tracks * per_track
    x, y = rng.uniform(0, 3000, n), rng.uniform(0, 3000, n)
    inside = (x > 1000) & (x < 1600) & (y > 1000) & (y < 1600)
    items = rng.poisson(np.where(inside, hot, 1.0)).astype(float)
    return gpd.GeoDataFrame(
        {"track": np.repeat([f"t{t}" for t in range(tracks)], per_track), "items": items},
        geometry=gpd.points_from_xy(100 + x / M_PER_DEG_LON, 20 + y / M_PER_DEG_LAT),
        crs="EPSG:4326",
    )


def _codes(tracks: np.ndarray) -> np.ndarray:
    return np.unique(tracks, return_inverse=True)[1].astype(np.int64).reshape(-1)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_the_choice_is_never_worse_than_the_area_rate_on_its_folds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    rows, cols = rng.integers(0, 15, n), rng.integers(0, 15, n)
    items = rng.poisson(rng.uniform(0.2, 3.0, n)).astype(float)
    tracks = rng.integers(0, int(rng.integers(2, 9)), n)
    choice = choose_smoothing(rows, cols, items, tracks)
    if choice.folds:
        assert choice.cv_deviance <= choice.cv_area_deviance + 1e-9
        assert choice.dispersion > 0
    else:
        assert choice.note


def test_a_spatial_pattern_is_smoothed_and_noise_is_not() -> None:
    pattern = synthetic_survey(1, hot=4.0)
    _, rows, cols, _ = survey_grid(pattern, 250.0)
    items, tracks = pattern["items"].to_numpy(), _codes(pattern["track"].to_numpy())
    chosen = choose_smoothing(rows, cols, items, tracks)
    assert math.isfinite(chosen.strength)
    assert chosen.deviance_ratio < 0.95
    flat = synthetic_survey(1, hot=1.0)
    _, rows, cols, _ = survey_grid(flat, 250.0)
    plain = choose_smoothing(rows, cols, flat["items"].to_numpy(), _codes(flat["track"].to_numpy()))
    assert plain.deviance_ratio > 0.97  # nothing to find: about the area rate's deviance
    assert plain.deviance_ratio <= 1.0


def test_held_out_intervals_cover_about_their_share() -> None:
    coverages = []
    for seed in range(4):
        survey = synthetic_survey(10 + seed, tracks=16, hot=3.0)
        grid, rows, cols, _ = survey_grid(survey, 250.0)
        names = list(dict.fromkeys(survey["track"]))
        fitted, scored = split_tracks(names, seed)
        score = score_split(
            rows, cols, survey["items"].to_numpy(), survey["track"].to_numpy(), fitted, scored, grid.width
        )
        assert score.model < score.area < score.raw
        coverages.append(score.coverage)
    assert 0.8 <= float(np.mean(coverages)) <= 0.97


def test_benjamini_hochberg_q_values() -> None:
    p = np.array([[0.01, 0.04], [np.nan, 0.03]])
    q = benjamini_hochberg(p)
    assert np.isnan(q[1, 0])
    np.testing.assert_allclose(q[~np.isnan(q)], [0.03, 0.04, 0.04])  # 0.01*3/1, min(0.03*3/2, 0.04), 0.04
    assert np.all(q[~np.isnan(q)] >= p[~np.isnan(p)])


def test_gi_star_with_fdr_finds_a_planted_cluster() -> None:
    result = survey_density(synthetic_survey(0, hot=4.0), 250.0)
    hot = (result.gi_q <= FDR) & (result.gi_z > 0)
    assert int(np.nansum(hot)) >= 3
    rows, cols = np.nonzero(hot)
    x = result.grid.west + (cols + 0.5) * result.grid.cell_size
    y = result.grid.north - (rows + 0.5) * result.grid.cell_size
    centre_x = result.grid.west + 1300.0  # the planted square's centre, 1000-1600 m from the survey's corner
    assert np.all(np.abs(x - centre_x) < 900)
    assert np.all(np.abs(y - y.mean()) < 900)


def test_gi_star_with_fdr_calls_no_cell_on_pure_noise() -> None:
    flagged = sum(
        int(np.nansum(survey_density(synthetic_survey(seed, tracks=8, per_track=120), 250.0).gi_q <= FDR) > 0)
        for seed in range(100)
    )
    print(f"surveys of pure noise with a cell significant after correction: {flagged} of 100")
    assert flagged <= 5


def _obs(items: list[float], tracks: list[str]) -> Observations:
    n = len(items)
    return Observations(
        x=np.zeros(n),
        y=np.zeros(n),
        items=np.array(items),
        track=np.array(tracks),
        effort_km=np.full(n, 0.01),
    )


def test_one_track_falls_back_and_says_so() -> None:
    rows, cols = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2])
    density, choice = smoothed_density(
        rows, cols, _obs([1, 2, 0, 3, 1], ["a"] * 5), (3, 3), min_observations=1
    )
    assert choice.folds == 0
    assert "one track: no cross-validation" in choice.note
    assert np.isfinite(density.cell_rate).all()
    assert (density.cell_rate_lo <= density.cell_rate).all()
    assert (density.cell_rate <= density.cell_rate_hi).all()


def test_one_cell_and_no_litter_give_numbers_not_nan() -> None:
    rows = cols = np.zeros(6, dtype=np.int64)
    density, choice = smoothed_density(rows, cols, _obs([0] * 6, list("aabbcc")), (1, 1), min_observations=3)
    assert choice.note.startswith("no litter seen")
    assert density.cell_rate.tolist() == [0.0]
    assert density.cell_rate_lo.tolist() == [0.0]
    assert 0.0 < density.cell_rate_hi[0] < 1.0  # six observations and nothing seen: an upper bound, not 0
    density, _ = smoothed_density(
        rows, cols, _obs([1, 0, 2, 1, 0, 3], list("aabbcc")), (1, 1), min_observations=3
    )
    assert np.isfinite([density.cell_rate[0], density.cell_rate_lo[0], density.cell_rate_hi[0]]).all()


@pytest.mark.parametrize(("bad", "message"), [
    (math.nan, "1 of 3 observations have a missing, infinite or negative item count"),
    (math.inf, "1 of 3 observations have a missing, infinite or negative item count"),
    (-1.0, "item counts must be >= 0"),
])  # fmt: skip
def test_missing_or_negative_counts_are_refused(bad: float, message: str) -> None:
    rows = cols = np.zeros(3, dtype=np.int64)
    with pytest.raises(PlasticHotspotsError, match=message):
        smoothed_density(rows, cols, _obs([1.0, bad, 2.0], ["a", "b", "c"]), (1, 1), min_observations=1)


def test_duplicate_points_and_tracks_without_times_are_counted_as_given() -> None:
    survey = synthetic_survey(3, tracks=6, per_track=40)
    doubled = gpd.GeoDataFrame(
        {"track": np.tile(survey["track"], 2), "items": np.tile(survey["items"], 2)},
        geometry=gpd.GeoSeries(list(survey.geometry) * 2, crs="EPSG:4326"),
    )
    once, twice = survey_density(survey, 250.0), survey_density(doubled, 250.0)
    np.testing.assert_array_equal(twice.density.cell_observations, 2 * once.density.cell_observations)
    assert twice.density.area_rate == pytest.approx(once.density.area_rate)
    assert np.isfinite(twice.density.cell_rate).all()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "plastic_hotspots.cli", "density", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=300)


def test_density_cli_prints_and_records_its_choice(tmp_path: Path) -> None:
    path = tmp_path / "survey.parquet"
    synthetic_survey(5, hot=4.0).to_parquet(path)
    proc = _cli(str(path), "--out", str(tmp_path / "cells.gpkg"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cross-validated over 12 folds of whole tracks" in proc.stdout
    assert "false-discovery rate of 5%" in proc.stdout
    meta = pyogrio.read_info(tmp_path / "cells.gpkg", layer="cells")["layer_metadata"]
    choice = json.loads(meta["smoothing"])
    assert choice["folds"] == 12
    assert choice["cv_deviance"] <= choice["cv_area_deviance"]
    assert 0 < choice["cv_coverage"] <= 1
    cells = gpd.read_file(tmp_path / "cells.gpkg", layer="cells")
    assert {"gi_z", "gi_p", "gi_q"} <= set(cells.columns)
    tested = cells["gi_p"].notna()
    assert (cells.loc[tested, "gi_q"] >= cells.loc[tested, "gi_p"]).all()


def test_density_validate_prints_the_held_out_table(tmp_path: Path) -> None:
    path = tmp_path / "survey.parquet"
    synthetic_survey(6, hot=4.0).to_parquet(path)
    proc = _cli(str(path), "--validate", "--splits", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert any(line.split()[:1] == ["all"] for line in lines)
    assert "density  area rate  raw counts" in proc.stdout
    assert not (tmp_path / "cells.gpkg").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--cell-size", "0"], "--cell-size must be a number of metres of at least 1, got 0.0"),
    (["--cell-size", "nan"], "--cell-size must be a number of metres of at least 1, got nan"),
    (["--validate", "--splits", "0"], "--splits must be at least 1, got 0"),
])  # fmt: skip
def test_density_cli_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "survey.parquet"
    synthetic_survey(7, tracks=5, per_track=20).to_parquet(path)
    proc = _cli(str(path), *args)
    assert proc.returncode == 1
    assert message in " ".join(proc.stderr.split())


def test_validate_needs_several_tracks(tmp_path: Path) -> None:
    path = tmp_path / "survey.parquet"
    synthetic_survey(8, tracks=3, per_track=20).to_parquet(path)
    proc = _cli(str(path), "--validate")
    assert proc.returncode == 1
    assert "it needs 4 or more, the survey has 3" in " ".join(proc.stderr.split())


def held_out_table(path: Path, seeds: range) -> tuple[float, float, float, float]:
    """Summed deviances (density, area rate, raw) over the seeds' halvings, and the pooled coverage."""
    frame = read_plitter_tracks(path)
    grid, rows, cols, _ = survey_grid(frame, 250.0)
    names = list(dict.fromkeys(frame["track"]))
    items, track = frame["items"].to_numpy(), frame["track"].to_numpy()
    totals = np.zeros(3)
    covered = judged = 0.0
    for seed in seeds:
        fitted, scored = split_tracks(names, seed)
        s = score_split(rows, cols, items, track, fitted, scored, grid.width, seed=seed)
        totals += (s.model, s.area, s.raw)
        covered += s.coverage * s.coverage_cells
        judged += s.coverage_cells
        print(f"  split {seed}: density {s.model:.0f}, area rate {s.area:.0f}, raw {s.raw:.0f}, "
              f"ratio {s.ratio:.2f}, coverage {s.coverage:.2f}; {s.choice.describe(250.0)}")  # fmt: skip
    return totals[0], totals[1], totals[2], covered / judged


@pytest.mark.realdata
@pytest.mark.parametrize(("city", "survey", "splits", "goal"), [
    ("Chiang Rai", "plitter_street_tracks/tracks/ChiangRai_September_2021.geojson", 3, 0.90),
    ("Mawanella", "maha_oya_srilanka/survey/Mawanella_January_2022_A.geojson", 5, 0.75),
])  # fmt: skip
def test_density_beats_the_area_rate_on_held_out_videos(
    shared_data: Path, city: str, survey: str, splits: int, goal: float
) -> None:
    model, area, raw, coverage = held_out_table(shared_data / survey, range(splits))
    print(f"{city}, {splits} halvings by video, 250 m: density {model:.0f}, area rate {area:.0f}, "
          f"raw {raw:.0f}; ratio {model / area:.3f}; coverage {coverage:.3f}")  # fmt: skip
    assert model <= goal * area
    assert model < raw
    assert 0.80 <= coverage <= 0.97
