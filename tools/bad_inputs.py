"""Write the bad-input corpus: every bad input of issue 21, and those it implies for each layer kind.

Each case is a folder with its files, the command line to run (after ``plastic-hotspots``) and what the
output must say. A bad case must end with exit code 1, a message holding its key words and no traceback;
an accepted case (paths with spaces, unicode and brackets, EXIF seconds of 60, a fallback that warns)
must end with exit code 0, say its key words and write its files.

    python tools/bad_inputs.py OUT [--only NAME ...]

writes ``OUT/<case>/`` for each case and ``OUT/cases.json``: a list of
``{"name", "kind", "commands", "exit_code", "words", "outputs"}`` where ``commands`` are argument lists
(every one before the last must succeed, the last gives ``exit_code``), ``words`` are case-insensitive
substrings of the output (stdout, stderr and warnings, whitespace collapsed), and ``outputs`` are files
the case must have written. ``tests/core/test_bad_input_corpus.py`` runs every case through the command
line. The basin is the generated demo basin on 400 m cells without uncertainty draws, so that a case
runs in a second or two.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CELL_M = 400.0  # coarse cells: a whole run takes seconds
SPECIAL = "basin [red] ü é 測量 [/] (copy)"  # spaces, unicode and Rich markup in one folder name

# ---------------------------------------------------------------------------------------------------
# Helpers (heavy libraries imported inside: listing the cases stays light)


def _raster(path: Path, change: Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]]) -> None:
    import rasterio

    with rasterio.open(path) as src:
        values, profile = src.read(1), dict(src.profile)
    values, profile = change(values, profile)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)


def _config(case: Path, **changes: Any) -> None:
    import yaml

    path = case / "basin.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def _params(case: Path, **changes: Any) -> None:
    import yaml

    raw = yaml.safe_load((case / "basin.yaml").read_text(encoding="utf-8"))
    params = raw.get("params") or {}
    params.update(changes)
    _config(case, params=params)


def _vector(case: Path, name: str, change: Callable[[Any], Any]) -> None:
    import geopandas as gpd

    path = case / name
    frame = change(gpd.read_file(path))
    path.unlink()
    frame.to_file(path)


def _observations(case: Path, change: Callable[[Any], Any]) -> None:
    import geopandas as gpd

    path = case / "observations.parquet"
    change(gpd.read_parquet(path)).to_parquet(path)


def hotspots(case: Path) -> list[list[str]]:
    """The command line of a basin case."""
    return [["hotspots", "--config", str(case / "basin.yaml"), "--out", str(case / "out")]]


# ---------------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Case:
    """One case: ``make`` spoils the case folder (a copy of the basin) and returns its command lines."""

    name: str
    kind: str
    make: Callable[[Path], list[list[str]]]
    words: tuple[str, ...]
    exit_code: int = 1
    outputs: tuple[str, ...] = ()
    basin: bool = True
    folder: str = ""  # the case folder's name, if not the case's


def _spoilt(spoil: Callable[[Path], None]) -> Callable[[Path], list[list[str]]]:
    def make(case: Path) -> list[list[str]]:
        spoil(case)
        return hotspots(case)

    return make


def _zero_bytes(name: str) -> Callable[[Path], None]:
    return lambda case: (case / name).write_bytes(b"")


def _text(name: str) -> Callable[[Path], None]:
    return lambda case: (case / name).write_text("this is not a layer, just text\n", encoding="utf-8")


def _cut_short(name: str) -> Callable[[Path], None]:
    def spoil(case: Path) -> None:
        data = (case / name).read_bytes()
        (case / name).write_bytes(data[: len(data) // 3])

    return spoil


def _missing(name: str) -> Callable[[Path], None]:
    return lambda case: (case / name).unlink()


def _raster_without_crs(name: str) -> Callable[[Path], None]:
    return lambda case: _raster(case / name, lambda v, p: (v, {**p, "crs": None}))


def _vector_without_crs(name: str) -> Callable[[Path], None]:
    return lambda case: _vector(case, name, lambda f: f.set_crs(None, allow_override=True))


def _nodata_everywhere(name: str) -> Callable[[Path], None]:
    import numpy as np

    return lambda case: _raster(case / name, lambda v, p: (np.full_like(v, p["nodata"]), p))


def _dem_scaled(factor: float, offset: float = 0.0) -> Callable[[Path], None]:
    import numpy as np

    return lambda case: _raster(
        case / "dem.tif", lambda v, p: (np.where(v == p["nodata"], v, v * factor + offset), p)
    )


def _dem_in_feet_tagged(case: Path) -> None:
    """A DEM in feet whose file says so (band unit ``ft``, as GDAL writes it), in the basin's range."""
    import rasterio

    _dem_scaled(3.28084)(case)
    with rasterio.open(case / "dem.tif", "r+") as dst:
        dst.units = ("ft",)


def _population_per_km2(case: Path) -> None:
    import numpy as np

    def per_km2(values: Any, profile: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        t = profile["transform"]
        pixel_km2 = (t.a * 111.32 * np.cos(np.radians(20.0))) * (abs(t.e) * 110.57)
        return np.where(values == profile["nodata"], values, values / pixel_km2), profile

    _raster(case / "population.tif", per_km2)


def _negative_population(case: Path) -> None:
    import numpy as np

    _raster(case / "population.tif", lambda v, p: (np.where(v == p["nodata"], v, -v - 1.0), p))


def _population_polygons_without_counts(case: Path) -> None:
    """Population as census polygons whose count column holds words, not numbers."""
    _vector(case, "districts.gpkg", _set("people", "many"))
    raw_layers = {"dem": "dem.tif", "population": {"path": "districts.gpkg", "count": "people"}}
    import yaml

    raw = yaml.safe_load((case / "basin.yaml").read_text(encoding="utf-8"))
    raw["layers"] = {**raw["layers"], **raw_layers}
    (case / "basin.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def _zones_percent(frame: Any) -> Any:
    frame["collection_rate"] = frame["collection_rate"] * 100.0
    return frame


def _zones_renamed(frame: Any) -> Any:
    return frame.rename(
        columns={"collection_rate": "served", "plastic_share": "plastic", "generation_kg_per_cap_day": "kg"}
    )


def _set(column: str, value: Any) -> Callable[[Any], Any]:
    def change(frame: Any) -> Any:
        frame[column] = value
        return frame

    return change


def _moved(dx: float, dy: float = 0.0) -> Callable[[Any], Any]:
    def change(frame: Any) -> Any:
        frame.geometry = frame.geometry.translate(xoff=dx, yoff=dy)
        return frame

    return change


def _barriers_far_away(case: Path) -> None:
    """Two barriers 2,000 km away (about 18 degrees east), the others where they were."""

    def change(frame: Any) -> Any:
        far = frame.iloc[:2].copy()
        far.geometry = far.geometry.translate(xoff=18.0)
        far["name"] = ["Far dam", "Far weir"]
        import pandas as pd

        return pd.concat([frame, far], ignore_index=True)

    _vector(case, "barriers.gpkg", change)


def _barrier_off_the_rivers(case: Path) -> None:
    """One barrier inside the basin but kilometres from every river."""
    from shapely.geometry import Point

    def change(frame: Any) -> Any:
        import pandas as pd

        extra = frame.iloc[:1].copy()
        extra.geometry = [Point(100.02, 20.33)]  # the basin's north-west corner, on a hillside
        extra["name"] = ["Hillside dam"]
        return pd.concat([frame, extra], ignore_index=True)

    _vector(case, "barriers.gpkg", change)


def _nan_items(frame: Any) -> Any:
    import numpy as np

    frame = frame.copy()
    frame["items"] = frame["items"].astype(float)
    frame.loc[frame.index[:51], "items"] = np.nan
    return frame


def _items_as_words(frame: Any) -> Any:
    """Counts written as text, the first one as a word."""
    return frame.assign(items=["three"] + [str(v) for v in frame["items"].iloc[1:]])


def _density(*options: str) -> Callable[[Path], list[list[str]]]:
    return lambda case: [
        ["density", str(case / "observations.parquet"), "--out", str(case / "cells.gpkg"), *options]
    ]


def _yaml_text(text: str) -> Callable[[Path], None]:
    return lambda case: (case / "basin.yaml").write_text(text, encoding="utf-8")


def _append_yaml(text: str) -> Callable[[Path], None]:
    def spoil(case: Path) -> None:
        with (case / "basin.yaml").open("a", encoding="utf-8") as handle:
            handle.write(text)

    return spoil


def _out_is_a_file(case: Path) -> list[list[str]]:
    (case / "out").write_text("a file where the result folder should go\n", encoding="utf-8")
    return hotspots(case)


def _map_of_a_folder_without_result(command: str) -> Callable[[Path], list[list[str]]]:
    def make(case: Path) -> list[list[str]]:
        (case / "not-a-result").mkdir()
        return [[command, str(case / "not-a-result"), "--out", str(case / f"{command}.html")]]

    return make


def _map_into_a_folder(command: str) -> Callable[[Path], list[list[str]]]:
    def make(case: Path) -> list[list[str]]:
        (case / "folder.html").mkdir()
        return [*hotspots(case), [command, str(case / "out"), "--out", str(case / "folder.html")]]

    return make


def _special_paths(case: Path) -> list[list[str]]:
    """The whole chain in a folder whose name holds spaces, unicode and brackets."""
    out = case / "résultats [v2]"
    return [
        ["hotspots", "--config", str(case / "basin.yaml"), "--out", str(out)],
        ["map", str(out), "--out", str(case / "carte [final].html"), "--title", "Carte [bold]ü[/bold]"],
        ["report", str(out), "--out", str(case / "rapport ü.html")],
    ]


def _density_special(case: Path) -> list[list[str]]:
    shutil.copy(case / "observations.parquet", case / "relevé [1] ü.parquet")
    return [["density", str(case / "relevé [1] ü.parquet"), "--out", str(case / "cellules [1].gpkg")]]


def _photo(path: Path, lat_dms: tuple[float, float, float], lon_dms: tuple[float, float, float]) -> None:
    """A small JPEG with GPS EXIF written as a camera does (degrees, minutes, seconds as rationals)."""
    from fractions import Fraction

    import numpy as np
    from PIL import Image, TiffImagePlugin

    def rational(value: float) -> TiffImagePlugin.IFDRational:
        frac = Fraction(value).limit_denominator(10_000)
        return TiffImagePlugin.IFDRational(frac.numerator, frac.denominator)

    pixels = np.random.default_rng(0).integers(0, 255, size=(96, 128, 3), dtype=np.uint8)
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[0] = b"\x02\x03\x00\x00"
    gps[1], gps[2] = "N", tuple(rational(v) for v in lat_dms)
    gps[3], gps[4] = "E", tuple(rational(v) for v in lon_dms)
    Image.fromarray(pixels).save(path, exif=exif)


def _detect_exif_sixty(case: Path) -> list[list[str]]:
    """A photo whose camera wrote 60 seconds of arc (rounded up without carrying): 20° 12' 60" is 20° 13'."""
    photos = case / "photos [day 1]"
    photos.mkdir()
    _photo(photos / "IMG 0001 ü.jpg", (20.0, 12.0, 60.0), (100.0, 5.0, 60.0))
    return [
        ["detect", str(photos), "--out", str(case / "out" / "detections.parquet"), "--backend", "pytorch",
         "--imgsz", "64", "--conf", "0.9"],
    ]  # fmt: skip


def _detect_bad_option(*options: str) -> Callable[[Path], list[list[str]]]:
    def make(case: Path) -> list[list[str]]:
        photos = case / "photos"
        photos.mkdir()
        _photo(photos / "a.jpg", (20.0, 12.0, 0.0), (100.0, 5.0, 0.0))
        return [["detect", str(photos), "--out", str(case / "detections.parquet"), *options]]

    return make


def _export_file(text: str | None) -> Callable[[Path], list[list[str]]]:
    """``annotate consensus`` on an export file holding ``text`` (None: no file at all)."""

    def make(case: Path) -> list[list[str]]:
        if text is not None:
            (case / "export.json").write_text(text, encoding="utf-8")
        return [["annotate", "consensus", str(case / "export.json"), "--out", str(case / "consensus")]]

    return make


def _dataset_without_consensus(case: Path) -> list[list[str]]:
    (case / "export.json").write_text("[]", encoding="utf-8")
    (case / "consensus").mkdir()
    return [["annotate", "dataset", str(case / "consensus"), "--export", str(case / "export.json"),
             "--photos", str(case), "--out", str(case / "dataset")]]  # fmt: skip


def _dataset_of_unlabelled_tasks(case: Path) -> list[list[str]]:
    tasks = [{"id": k, "data": {"key": f"p{k}.jpg"}, "annotations": []} for k in range(3)]
    (case / "export.json").write_text(json.dumps(tasks), encoding="utf-8")
    return [
        ["annotate", "consensus", str(case / "export.json"), "--out", str(case / "consensus")],
        ["annotate", "dataset", str(case / "consensus"), "--export", str(case / "export.json"),
         "--photos", str(case), "--out", str(case / "dataset")],
    ]  # fmt: skip


def _train_on(make_folder: Callable[[Path], Path]) -> Callable[[Path], list[list[str]]]:
    return lambda case: [["train", str(make_folder(case)), "--out", str(case / "runs"), "--epochs", "1"]]


def _folder_of_photos(case: Path) -> Path:
    photos = case / "photos"
    photos.mkdir()
    _photo(photos / "a.jpg", (20.0, 12.0, 0.0), (100.0, 5.0, 0.0))
    return photos


def _dataset_with_an_empty_split(case: Path) -> Path:
    folder = case / "dataset"
    for split in ("train", "val"):
        (folder / "images" / split).mkdir(parents=True)
    _photo(folder / "images" / "val" / "a.jpg", (20.0, 12.0, 0.0), (100.0, 5.0, 0.0))
    (folder / "data.yaml").write_text(
        "names: {0: bottle}\ntrain: images/train\nval: images/val\n", encoding="utf-8"
    )
    return folder


def _detect_with_a_broken_model(case: Path) -> list[list[str]]:
    (case / "litter.pt").write_bytes(b"these bytes are not a checkpoint")
    (case / "photos").mkdir()
    _photo(case / "photos" / "a.jpg", (20.0, 12.0, 0.0), (100.0, 5.0, 0.0))
    return [["detect", str(case / "photos"), "--out", str(case / "detections.parquet"),
             "--model", str(case / "litter.pt"), "--backend", "onnx"]]  # fmt: skip


def _detect_missing_source(case: Path) -> list[list[str]]:
    return [["detect", str(case / "no such folder"), "--out", str(case / "detections.parquet")]]


HOTSPOTS_BAD_CONFIG = [
    ("cell_size_text", {"cell_size_m": "hundred"}, ("cell_size_m must be a number > 0", "hundred")),
    ("cell_size_zero", {"cell_size_m": 0}, ("cell_size_m must be a number > 0",)),
    ("cell_size_nan", {"cell_size_m": float("nan")}, ("cell_size_m must be a number",)),
    ("top_n_fraction", {"params": {"top_n": 2.5}}, ("top_n must be a whole number", "2.5")),
    ("params_list", {"params": [1, 2]}, ("`params` must be a mapping",)),
    ("collection_rate_text", {"params": {"zone_defaults": {"collection_rate": "high"}}},
     ("collection_rate must be a number", "high")),
    ("barrier_pass_negative", {"params": {"barrier_pass": {"dam": -3}}},
     ("barrier_pass.dam must be a number in [0, 1]", "-3")),
    ("generation_negative", {"params": {"zone_defaults": {"generation_kg_per_cap_day": -1}}},
     ("generation_kg_per_cap_day must be a number >= 0",)),
    ("min_observations_negative", {"params": {"min_observations": -5}},
     ("min_observations must be a whole number >= 1", "-5")),
    ("land_lambda_infinite", {"params": {"land_lambda_m": float("inf")}}, ("land_lambda_m",)),
    ("unknown_key", {"colour": "red"}, ("unknown config key", "colour")),
    ("unknown_parameter", {"params": {"lambda": 3}}, ("unknown model parameter", "lambda")),
    ("outlet_three_numbers", {"outlet": [1, 2, 3]}, ("outlet", "list of 2 numbers")),
    ("empty_area_of_interest", {"area_of_interest": [100.1, 20.2, 100.1, 20.3]},
     ("area of interest", "empty")),
    ("area_outside_the_dem", {"area_of_interest": [10.0, 50.0, 10.05, 50.05], "outlet": None},
     ("does not overlap the basin grid", "extent and crs")),
    ("outlet_outside_the_grid", {"outlet": [10.0, 50.0]}, ("outlet", "outside the grid")),
    ("draws_negative", {"uncertainty": {"draws": -2}}, ("draws",)),
    # 0.01 m cells over a 20 km basin: 4 x 10^12 cells, refused before anything is allocated.
    ("cell_size_a_centimetre", {"cell_size_m": 0.01},
     ("3,983,301,464,032 cells", "of memory", "available", "coarser cells (cell_size_m:")),
]  # fmt: skip


def _config_case(changes: dict[str, Any]) -> Callable[[Path], None]:
    def spoil(case: Path) -> None:
        params = changes.get("params")
        others = {k: v for k, v in changes.items() if k != "params"}
        if others:
            _config(case, **others)
        if isinstance(params, dict):
            _params(case, **params)
        elif params is not None:
            _config(case, params=params)

    return spoil


def cases() -> list[Case]:
    """Every case of the corpus, in order."""
    out: list[Case] = []

    def bad(name: str, kind: str, spoil: Callable[[Path], None], *words: str) -> None:
        out.append(Case(name, kind, _spoilt(spoil), words))

    read_error = ("could not be read", "complete and of the format")
    # The DEM
    bad("dem_zero_bytes", "dem", _zero_bytes("dem.tif"), "dem.tif", *read_error)
    bad("dem_text", "dem", _text("dem.tif"), "dem.tif", *read_error)
    bad("dem_cut_short", "dem", _cut_short("dem.tif"), "dem.tif", "could not be read")
    bad("dem_missing", "dem", _missing("dem.tif"), "dem file not found", "dem.tif")
    bad("dem_without_crs", "dem", _raster_without_crs("dem.tif"), "has no crs", "gdal_edit")
    bad("dem_nodata_everywhere", "dem", _nodata_everywhere("dem.tif"), "nodata everywhere", "nodata value")
    bad("dem_in_centimetres", "dem", _dem_scaled(100.0), "expected metres", "metres above sea level")
    bad("dem_in_feet_high_terrain", "dem", _dem_scaled(3.28084, 9000.0), "expected metres", "feet", "0.3048")
    bad("dem_in_feet_tagged", "dem", _dem_in_feet_tagged, "feet", "dem.tif", "0.3048")
    # Population
    bad("population_text", "population", _text("population.tif"), "population.tif", *read_error)
    bad("population_zero_bytes", "population", _zero_bytes("population.tif"), "population.tif", *read_error)
    bad("population_missing", "population", _missing("population.tif"), "not found", "population.tif")
    bad("population_without_crs", "population", _raster_without_crs("population.tif"), "has no crs")
    bad("population_per_km2", "population", _population_per_km2, "look like a density", "people per pixel")
    bad(
        "population_nodata_everywhere",
        "population",
        _nodata_everywhere("population.tif"),
        "nodata everywhere",
    )
    bad("population_negative", "population", _negative_population, "population", "negative")
    bad("population_polygons_without_counts", "population", _population_polygons_without_counts,
        "has no usable 'people'", "population.count")  # fmt: skip
    # Zones
    bad("zones_zero_bytes", "zones", _zero_bytes("zones.gpkg"), "zones.gpkg", *read_error)
    bad("zones_text", "zones", _text("zones.gpkg"), "zones.gpkg", *read_error)
    bad("zones_missing", "zones", _missing("zones.gpkg"), "not found", "zones.gpkg")
    bad("zones_without_crs", "zones", _vector_without_crs("zones.gpkg"), "has no crs", "set_crs")
    bad("zones_in_percent", "zones", lambda c: _vector(c, "zones.gpkg", _zones_percent),
        "collection_rate", "fractions, not percentages")  # fmt: skip
    bad("zones_figures_as_words", "zones",
        lambda c: _vector(c, "zones.gpkg", _set("collection_rate", "high")),
        "collection_rate is not a number", "'high'")  # fmt: skip
    bad("zones_with_no_features", "zones", lambda c: _vector(c, "zones.gpkg", lambda f: f.iloc[0:0]),
        "has no features", "leave `zones` out")  # fmt: skip
    bad("zones_without_their_columns", "zones", lambda c: _vector(c, "zones.gpkg", _zones_renamed),
        "has none of the columns", "collection_rate: column")  # fmt: skip
    # Rivers
    bad("rivers_zero_bytes", "rivers", _zero_bytes("rivers.gpkg"), "rivers.gpkg", *read_error)
    bad("rivers_text", "rivers", _text("rivers.gpkg"), "rivers.gpkg", *read_error)
    bad("rivers_missing", "rivers", _missing("rivers.gpkg"), "not found", "rivers.gpkg")
    bad("rivers_without_crs", "rivers", _vector_without_crs("rivers.gpkg"), "has no crs", "rivers")
    # Barriers
    bad("barriers_cut_short", "barriers", _cut_short("barriers.gpkg"), "barriers.gpkg", "could not be read")
    bad("barriers_zero_bytes", "barriers", _zero_bytes("barriers.gpkg"), "barriers.gpkg", *read_error)
    bad("barriers_missing", "barriers", _missing("barriers.gpkg"), "not found", "barriers.gpkg")
    bad("barriers_without_crs", "barriers", _vector_without_crs("barriers.gpkg"), "has no crs", "barriers")
    bad("barrier_pass_factor_five", "barriers",
        lambda c: _vector(c, "barriers.gpkg", _set("pass_factor", 5.0)),
        "pass_factor must be a fraction in [0, 1]", "got 5", "leave pass_factor empty")  # fmt: skip
    bad("barrier_pass_factor_negative", "barriers",
        lambda c: _vector(c, "barriers.gpkg", _set("pass_factor", -1.0)),
        "pass_factor must be a fraction in [0, 1]", "got -1")  # fmt: skip
    bad("barrier_pass_factor_words", "barriers",
        lambda c: _vector(c, "barriers.gpkg", _set("pass_factor", "half")),
        "pass_factor must be a fraction in [0, 1]", "'half'")  # fmt: skip
    bad("barriers_without_kind", "barriers",
        lambda c: _vector(c, "barriers.gpkg", lambda f: f.drop(columns="kind")),
        "no `kind` column", "dam/weir/bridge/lock/port")  # fmt: skip
    bad("barrier_of_unknown_kind", "barriers", lambda c: _vector(c, "barriers.gpkg", _set("kind", "canal")),
        "canal", "dam")  # fmt: skip
    # Observations (the survey)
    bad(
        "observations_text",
        "observations",
        _text("observations.parquet"),
        "observations.parquet",
        *read_error,
    )
    bad("observations_zero_bytes", "observations", _zero_bytes("observations.parquet"),
        "observations.parquet", *read_error)  # fmt: skip
    bad("observations_missing", "observations", _missing("observations.parquet"), "not found")
    bad(
        "observations_without_crs",
        "observations",
        lambda c: _observations(c, lambda f: f.set_crs(None, allow_override=True)),
        "have no crs",
        "epsg:4326",
    )
    bad("observations_of_another_place", "observations", lambda c: _observations(c, _moved(5.0)),
        "lie inside the grid", "area_of_interest")  # fmt: skip
    bad("observations_without_usable_image", "observations",
        lambda c: _observations(c, _set("status", "corrupt")),
        "no usable geotagged rows", "rejects")  # fmt: skip
    bad("observations_without_items", "observations",
        lambda c: _observations(c, lambda f: f.drop(columns="items")),
        "no `items` column", "item count")  # fmt: skip
    bad("observations_as_polygons", "observations",
        lambda c: _observations(c, lambda f: f.set_geometry(f.to_crs(32647).buffer(20).to_crs(4326))),
        "polygon geometries", "each observation must be a point")  # fmt: skip
    bad("observations_items_as_words", "observations",
        lambda c: _observations(c, _items_as_words),
        "1 of", "missing, infinite or negative item count")  # fmt: skip
    bad("observations_negative_effort", "observations", lambda c: _observations(c, _set("effort_km", -1.0)),
        "negative effort_km", "spacing along each track")  # fmt: skip
    bad("observations_nan_items", "observations", lambda c: _observations(c, _nan_items),
        "51 of", "missing, infinite or negative item count", "0 where nothing was seen")  # fmt: skip
    bad("observations_negative_items", "observations", lambda c: _observations(c, _set("items", -1)),
        "items", ">= 0")  # fmt: skip
    # The same four kinds of broken file for every layer that the lines above do not cover already
    implied = {
        "population": ("population.tif", ("cut_short",)),
        "zones": ("zones.gpkg", ("cut_short",)),
        "rivers": ("rivers.gpkg", ("cut_short",)),
        "barriers": ("barriers.gpkg", ("text",)),
        "observations": ("observations.parquet", ("cut_short",)),
        "boundaries": ("districts.gpkg", ("zero_bytes", "text", "cut_short", "missing")),
    }
    spoilers = {"zero_bytes": _zero_bytes, "text": _text, "cut_short": _cut_short, "missing": _missing}
    for kind, (file, broken) in implied.items():
        for how in broken:
            words = ("not found", file) if how == "missing" else (file, "could not be read")
            bad(f"{kind}_{how}", kind, spoilers[how](file), *words)
    bad(
        "boundaries_without_crs",
        "boundaries",
        _vector_without_crs("districts.gpkg"),
        "has no crs",
        "districts",
    )
    # The config file
    bad("config_missing", "config", _missing("basin.yaml"), "basin config not found")
    bad("config_not_yaml", "config", _yaml_text("layers: [unclosed\n"), "not valid yaml")
    bad("config_zero_bytes", "config", _yaml_text(""), "basin.yaml", "mapping")
    bad(
        "config_without_dem",
        "config",
        _yaml_text("layers:\n  population: population.tif\n"),
        "no `dem` layer",
    )
    bad("config_unknown_layer", "config", _config_case({"layers": {"dem": "dem.tif", "roads": "r.gpkg"}}),
        "unknown layer", "roads")  # fmt: skip
    for name, changes, words in HOTSPOTS_BAD_CONFIG:
        bad(f"config_{name}", "config", _config_case(changes), *words)
    # Options and outputs of the commands
    out.extend(
        [
            Case("hotspots_out_is_a_file", "options", _out_is_a_file,
                 ("is a file, not a folder to write into",)),
            Case("hotspots_tile_too_small", "options", lambda c: [[*hotspots(c)[0], "--tile", "8"]],
                 ("--tile must be at least 16",)),
            Case("hotspots_work_dir_is_a_file", "options",
                 lambda c: ((c / "scratch").write_text("a file\n"),
                            [[*hotspots(c)[0], "--tile", "64", "--work-dir", str(c / "scratch")]])[1],
                 ("--work-dir", "is a file, not a folder to write into")),
            Case("hotspots_scheduler_malformed", "options",
                 lambda c: [[*hotspots(c)[0], "--tile", "64", "--scheduler", "tcp://host-without-port"]],
                 ("is not a scheduler address", "tcp://HOST:PORT")),
            Case("hotspots_workers_without_tile", "options", lambda c: [[*hotspots(c)[0], "--workers", "2"]],
                 ("options of the large mode", "--tile")),
            Case("map_of_a_folder_without_result", "map", _map_of_a_folder_without_result("map"),
                 ("not-a-result",)),
            Case("report_of_a_folder_without_result", "report", _map_of_a_folder_without_result("report"),
                 ("not-a-result",)),
            Case("map_into_a_folder", "map", _map_into_a_folder("map"),
                 ("is a directory, not a file to write",)),
            Case("report_into_a_folder", "report", _map_into_a_folder("report"),
                 ("is a directory, not a file to write",)),
            Case("density_cell_size_zero", "density", _density("--cell-size", "0"), ("--cell-size", "got 0")),
            Case("density_cell_size_nan", "density", _density("--cell-size", "nan"),
                 ("--cell-size", "got nan")),
            Case("density_cell_size_inf", "density", _density("--cell-size", "inf"),
                 ("--cell-size", "got inf")),
            Case("density_cell_size_negative", "density", _density("--cell-size", "-5"),
                 ("--cell-size", "got -5")),
            Case("density_cell_size_a_centimetre", "density", _density("--cell-size", "0.01"),
                 ("--cell-size", "got 0.01", "100 to 500 m")),
            Case("density_observations_text", "density",
                 lambda c: (_text("observations.parquet")(c), _density()(c))[1], read_error),
            Case("density_observations_missing", "density", lambda c: _density()(c / "elsewhere"),
                 ("observations.parquet",)),
            Case("density_out_is_a_folder", "density",
                 lambda c: ((c / "cells.gpkg").mkdir(), _density()(c))[1], ("is a directory, not a file",)),
            Case("density_min_observations_zero", "density", _density("--min-observations", "0"),
                 ("--min-observations must be at least 1", "got 0")),
            Case("density_validate_no_splits", "density", _density("--validate", "--splits", "0"),
                 ("--splits must be at least 1",)),
            Case("detect_out_is_a_folder", "detect",
                 lambda c: [["detect", str(c), "--out", str(c)]], ("is a directory, not a file to write",)),
            Case("detect_conf_above_one", "detect", _detect_bad_option("--conf", "2"), ("conf", "2")),
            Case("detect_imgsz_zero", "detect", _detect_bad_option("--imgsz", "0"), ("imgsz", "0")),
            Case("detect_chunk_size_zero", "detect", _detect_bad_option("--chunk-size", "0"),
                 ("--chunk-size must be at least 1", "got 0")),
            Case("detect_clock_offset_nan", "detect", _detect_bad_option("--clock-offset-s", "nan"),
                 ("--clock-offset-s must be a number of seconds", "got nan")),
            Case("detect_missing_source", "detect", _detect_missing_source, ("no such folder",)),
            Case("detect_sidecar_missing", "detect", _detect_bad_option("--sidecar", "no-such-positions.csv"),
                 ("sidecar", "no-such-positions.csv", "does not exist"), basin=False),
            Case("detect_gpx_missing", "detect", _detect_bad_option("--gpx", "no-such-track.gpx"),
                 ("gpx file", "no-such-track.gpx", "does not exist"), basin=False),
            Case("detect_gpx_not_gpx", "detect",
                 lambda c: ((c / "track.gpx").write_text("lat,lon\n1,2\n"),
                            _detect_bad_option("--gpx", str(c / "track.gpx"))(c))[1],
                 ("track.gpx is not a gpx file", "gpx 1.1"), basin=False),
            Case("demo_out_is_a_file", "demo",
                 lambda c: ((c / "demo").write_text("a file\n"), [["demo", "--out", str(c / "demo")]])[1],
                 ("is a file, not a folder to write into",), basin=False),
            Case("detect_model_not_a_checkpoint", "detect", _detect_with_a_broken_model,
                 ("litter.pt is not a YOLO detection checkpoint", "weights/best.pt"), basin=False),
            Case("annotate_export_missing", "annotate", _export_file(None), ("export.json was not found",
                 "annotate pull"), basin=False),
            Case("annotate_export_empty", "annotate", _export_file(""), ("export.json is empty",),
                 basin=False),
            Case("annotate_export_not_json", "annotate", _export_file("task,annotator\n1,ana\n"),
                 ("is not valid json",), basin=False),
            Case("annotate_export_an_object", "annotate", _export_file('{"tasks": []}'),
                 ("holds a json object, not a list of tasks",), basin=False),
            Case("annotate_dataset_without_consensus", "annotate", _dataset_without_consensus,
                 ("holds no consensus.parquet", "annotate consensus"), basin=False),
            Case("annotate_dataset_of_unlabelled_tasks", "annotate", _dataset_of_unlabelled_tasks,
                 ("no labelled photo",), basin=False),
            Case("annotate_init_overlap_zero", "annotate",
                 lambda c: [["annotate", "init", "--project", "Street litter", "--overlap", "0"]],
                 ("--overlap must be at least 1", "got 0"), basin=False),
            Case("annotate_init_title_too_short", "annotate",
                 lambda c: [["annotate", "init", "--project", "x"]],
                 ("has 1 characters", "3 to 50"), basin=False),
            Case("annotate_backend_port_out_of_range", "annotate",
                 lambda c: [["annotate", "backend", "--port", "99999", "--state-dir", str(c / "state")]],
                 ("--port must be a port from 0 to 65535", "99999"), basin=False),
            Case("annotate_serve_port_out_of_range", "annotate",
                 lambda c: [["annotate", "serve", "--port", "-1", "--data-dir", str(c / "server")]],
                 ("--port must be a port from 0 to 65535", "-1"), basin=False),
            Case("annotate_backend_retrain_epochs_zero", "annotate",
                 lambda c: [["annotate", "backend", "--retrain-epochs", "0",
                             "--state-dir", str(c / "state")]],
                 ("--retrain-epochs must be at least 1",), basin=False),
            Case("annotate_volunteer_not_an_email", "annotate",
                 lambda c: [["annotate", "volunteers", "add", "ana at example", "--data-dir", str(c)]],
                 ("is not an email address",), basin=False),
            Case("train_missing_dataset", "train", _train_on(lambda c: c / "no dataset"),
                 ("was not found", "annotate dataset"), basin=False),
            Case("train_on_a_folder_of_photos", "train", _train_on(_folder_of_photos),
                 ("holds no data.yaml", "annotate dataset"), basin=False),
            Case("train_on_an_empty_split", "train", _train_on(_dataset_with_an_empty_split),
                 ("the train split", "holds no images"), basin=False),
        ]
    )  # fmt: skip
    # Accepted: fallbacks that warn, and names that are text
    out.extend(
        [
            Case("barriers_far_away", "barriers", _spoilt(_barriers_far_away),
                 ("2 of 10 barriers", "Far dam", "Far weir", "outside the basin grid", "hotspots ranked"),
                 exit_code=0, outputs=("out/hotspots.gpkg",)),
            Case("barrier_off_every_river", "barriers", _spoilt(_barrier_off_the_rivers),
                 ("Hillside dam", "no river", "hotspots ranked"), exit_code=0,
                 outputs=("out/hotspots.gpkg",)),
            Case("paths_with_spaces_unicode_and_brackets", "paths", _special_paths,
                 ("hotspots ranked", "résultats [v2]", "carte [final].html", "rapport ü.html"), exit_code=0,
                 outputs=("résultats [v2]/hotspots.gpkg", "carte [final].html", "rapport ü.html"),
                 folder=SPECIAL),
            Case("density_paths_with_brackets", "density", _density_special,
                 ("observations in", "cellules [1].gpkg"), exit_code=0, outputs=("cellules [1].gpkg",)),
            Case("detect_exif_seconds_sixty", "detect", _detect_exif_sixty, ("1 images",), exit_code=0,
                 outputs=("out/detections.images.parquet",), basin=False),
        ]
    )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------------
# Writing the corpus


def write_base(folder: Path) -> Path:
    """The demo basin's inputs, on 400 m cells and without uncertainty draws (a run takes seconds)."""
    from plastic_hotspots.maps.demo import generate_demo_basin

    config = generate_demo_basin(folder)
    base = config.parent
    _config(base, cell_size_m=CELL_M, uncertainty={"draws": 0})
    return base


def write_corpus(folder: Path, only: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Write every case (or those named in ``only``) under ``folder``; return and write the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    base = write_base(folder / "_base")
    manifest: list[dict[str, Any]] = []
    for case in cases():
        if only and case.name not in only:
            continue
        where = folder / (case.folder or case.name)
        shutil.rmtree(where, ignore_errors=True)
        if case.basin:
            shutil.copytree(base, where)
        else:
            where.mkdir()
        commands = case.make(where)
        manifest.append(
            {
                "name": case.name,
                "kind": case.kind,
                "commands": commands,
                "exit_code": case.exit_code,
                "words": list(case.words),
                "outputs": [str(where / p) for p in case.outputs],
            }
        )
    (folder / "cases.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


def case_names() -> list[str]:
    """The names of every case, without writing any."""
    return [case.name for case in cases()]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the corpus into the folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the cases and cases.json into")
    parser.add_argument("--only", nargs="*", default=[], help="write only these cases")
    args = parser.parse_args(argv)
    manifest = write_corpus(args.out, args.only)
    print(f"{len(manifest)} cases written under {args.out} (cases.json lists them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
