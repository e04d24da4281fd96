"""Ingest through the batch runner: the bad-input corpus, EXIF photos, sidecars and GeoTIFF tiles."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from exif_photos import write_exif_photo
from fake_detector import FakeDetector
from PIL import Image
from pyproj import Transformer

from plastic_hotspots.detector.errors import IngestError
from plastic_hotspots.detector.ingest import IngestOptions, discover, load
from plastic_hotspots.detector.run import RunOptions, output_paths, run_detection
from plastic_hotspots.errors import ConfigError


def _dark(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60, size=(h, w, 3), dtype=np.uint8)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width x height`` pixels (a decompression-bomb shape), no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _jpeg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A folder of bad inputs next to good ones; returns folder, sidecar and the expected reasons."""
    folder = tmp_path_factory.mktemp("corpus")
    expected: dict[str, str] = {}
    good = _jpeg_bytes(_dark())
    (folder / "zero.jpg").write_bytes(b"")
    expected["zero.jpg"] = "empty_file"
    (folder / "notes.jpg").write_text("field notes, not a photo\n")
    expected["notes.jpg"] = "not_an_image"
    (folder / "half.jpg").write_bytes(good[: len(good) // 2])
    expected["half.jpg"] = "truncated"
    broken = bytearray(good)
    broken[len(good) // 2 : len(good) // 2 + 100] = b"\xff" * 100
    (folder / "broken.jpg").write_bytes(bytes(broken))
    expected["broken.jpg"] = "corrupt"
    _png_header_only(folder / "bomb.png", 40_000, 40_000)  # 1.6 gigapixels claimed
    expected["bomb.png"] = "too_large"
    _png_header_only(folder / "big.png", 11_000, 11_000)  # 121 megapixels, just over the limit
    expected["big.png"] = "too_large"
    write_exif_photo(folder / "exif_lat95.jpg", _dark(seed=1), lat=95.0, lon=100.0)
    expected["exif_lat95.jpg"] = "impossible_gps"
    write_exif_photo(folder / "exif_null_island.jpg", _dark(seed=2), lat=0.0, lon=0.0)
    expected["exif_null_island.jpg"] = "impossible_gps"
    Image.fromarray(_dark(seed=3)).save(folder / "sidecar_bad.png")
    expected["sidecar_bad.png"] = "impossible_gps"
    Image.fromarray(_dark(seed=4)).save(folder / "nowhere.png")
    expected["nowhere.png"] = "no_position"
    # Good inputs: EXIF GPS, and a sidecar position.
    write_exif_photo(folder / "ok_exif.jpg", _dark(seed=5), lat=20.27, lon=100.08)
    Image.fromarray(_dark(seed=6)).save(folder / "ok_sidecar.png")
    sidecar = folder / "positions.csv"
    pd.DataFrame(
        [
            {"image": "ok_sidecar.png", "lon": 100.1, "lat": 20.2},
            {"image": "sidecar_bad.png", "lon": 100.1, "lat": 123.0},
        ]
    ).to_csv(sidecar, index=False)
    return folder, sidecar, expected


def test_bad_inputs_are_rejected_with_their_reason(
    corpus: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, sidecar, expected = corpus
    out = tmp_path / "detections.parquet"
    summary = run_detection([folder], out, FakeDetector(), ingest=IngestOptions(sidecar=sidecar))
    assert summary.images == 2
    assert summary.rejected == len(expected)
    assert summary.exit_code == 3
    rejects = pd.read_csv(output_paths(out)["rejects"])
    got = {Path(p).name: r for p, r in zip(rejects["path"], rejects["reason"], strict=True)}
    assert got == expected
    assert rejects["message"].notna().all()
    images = gpd.read_parquet(output_paths(out)["images"])
    assert sorted(Path(p).name for p in images.loc[images["status"] == "ok", "path"]) == [
        "ok_exif.jpg",
        "ok_sidecar.png",
    ]


def test_load_raises_ingest_errors_directly(corpus: tuple[Path, Path, dict[str, str]]) -> None:
    folder, sidecar, expected = corpus
    options = IngestOptions(sidecar=sidecar)
    by_name = {item.path.name: item for item in discover([folder], options)}
    for name, reason in expected.items():
        with pytest.raises(IngestError) as info:
            load(by_name[name], options)
        assert info.value.reason == reason, name
        assert info.value.hint, name


def test_missing_source_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        discover([tmp_path / "nope"], IngestOptions())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images, videos or rasters"):
        run_detection([tmp_path / "empty"], tmp_path / "d.parquet", FakeDetector())


def test_sidecar_geojson_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "day1").mkdir()
    Image.fromarray(_dark(seed=7)).save(tmp_path / "day1" / "a.png")
    Image.fromarray(_dark(seed=8)).save(tmp_path / "a.png")  # same name, other folder
    sidecar = tmp_path / "positions.geojson"
    sidecar.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-70.67, -33.45]},'
        ' "properties": {"image": "day1/a.png", "captured_at": "2026-03-14T08:00:00-03:00"}},'
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-78.47, -0.18]},'
        ' "properties": {"image": "a.png", "location_error_m": 3.5}}]}'
    )
    options = IngestOptions(sidecar=sidecar)
    loaded = {
        item.path.relative_to(tmp_path).as_posix(): load(item, options)
        for item in discover([tmp_path], options)
    }
    day1 = loaded["day1/a.png"].record
    assert (day1.lon, day1.lat) == (-70.67, -33.45)
    assert day1.captured_at is not None
    assert day1.captured_at.utcoffset() is not None
    assert day1.captured_at.utcoffset().total_seconds() == -3 * 3600  # type: ignore[union-attr]
    top = loaded["a.png"].record
    assert (top.lon, top.lat, top.location_error_m) == (-78.47, -0.18, 3.5)


def _write_geotiff(path: Path, array: np.ndarray, west: float, north: float, pixel: float, epsg: int) -> None:
    import rasterio
    from rasterio.transform import from_origin

    h, w, _ = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=3,
        dtype="uint8",
        crs=f"EPSG:{epsg}",
        transform=from_origin(west, north, pixel, pixel),
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as dst:
        dst.write(np.transpose(array, (2, 0, 1)))


def test_geotiff_tiles_give_each_box_its_ground_position(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ortho = rng.integers(0, 60, size=(600, 700, 3), dtype=np.uint8)
    squares = [(64, 96), (320, 288), (512, 544)]  # (x, y) of 32-pixel bright squares, on the fake's grid
    for x, y in squares:
        ortho[y : y + 32, x : x + 32] = (210, 230, 255)
    west, north, pixel = 590_000.0, 2_240_000.0, 0.05  # UTM 47N near Chiang Rai, 5 cm drone pixels
    _write_geotiff(tmp_path / "ortho.tif", ortho, west, north, pixel, 32647)
    out = tmp_path / "d.parquet"
    summary = run_detection(
        [tmp_path / "ortho.tif"], out, FakeDetector(), ingest=IngestOptions(tile_size=256), run=RunOptions()
    )
    assert summary.images == 9  # 3 x 3 tiles of at most 256 pixels
    dets = gpd.read_parquet(out)
    assert len(dets) == len(squares)
    to_ll = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True)
    expected = sorted(to_ll.transform(west + (x + 16) * pixel, north - (y + 16) * pixel) for x, y in squares)
    got = sorted(zip(dets["lon"], dets["lat"], strict=True))
    np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-9)
    np.testing.assert_allclose(dets.geometry.x.sort_values().to_numpy(), sorted(e[0] for e in expected))
    np.testing.assert_allclose(dets["location_error_m"], pixel, rtol=1e-6)
    images = gpd.read_parquet(output_paths(out)["images"])
    assert images["image"].str.contains("#tile=").all()
    assert set(images["kind"]) == {"raster_tile"}


def test_plain_tiff_is_a_photo(tmp_path: Path) -> None:
    Image.fromarray(_dark()).save(tmp_path / "scan.tif")
    items = discover([tmp_path], IngestOptions())
    assert [(i.kind, i.path.name) for i in items] == [("photo", "scan.tif")]


def test_reduced_jpeg_decode_reports_boxes_in_full_pixels(tmp_path: Path) -> None:
    photo = _dark(960, 1280, seed=9)
    photo[128:256, 256:384] = (210, 230, 255)  # one bright 128-pixel square
    write_exif_photo(tmp_path / "big.jpg", photo, lat=20.27, lon=100.08)
    options = IngestOptions(decode_size=320)
    (item,) = discover([tmp_path], options)
    loaded = load(item, options)
    assert loaded.image.shape == (240, 320, 3)  # the decoder's 1/4 scale: long side still >= 320
    assert loaded.scale == (0.25, 0.25)
    assert (loaded.record.width, loaded.record.height) == (1280, 960)
    out = tmp_path / "d.parquet"
    run_detection([tmp_path / "big.jpg"], out, FakeDetector(), ingest=options)
    dets = gpd.read_parquet(out)
    assert dets[["x1", "y1", "x2", "y2"]].to_numpy().tolist() == [[256.0, 128.0, 384.0, 256.0]]
    full = tmp_path / "full.parquet"
    run_detection([tmp_path / "big.jpg"], full, FakeDetector(), ingest=IngestOptions())
    assert len(gpd.read_parquet(full)) == 16  # at full size the fake sees the square as 4 x 4 cells


def _heic_survey(folder: Path) -> tuple[Path, np.ndarray]:
    folder.mkdir()
    photo = _dark(240, 320, seed=10)
    photo[64:96, 128:160] = (210, 230, 255)  # one bright square, on the fake detector's 32-pixel grid
    path = folder / "IMG_0001.HEIC"
    # pillow-heif writes the EXIF block Pillow builds (GPS IFD included) into the HEIF container.
    write_exif_photo(path, photo, lat=-33.4512, lon=-70.6693, altitude_m=520.0, fmt="HEIF")
    return path, photo


def test_heic_photo_is_read_with_its_gps_and_detected(tmp_path: Path) -> None:
    path, photo = _heic_survey(tmp_path / "photos")
    (item,) = discover([tmp_path / "photos"], IngestOptions())
    assert (item.kind, item.path) == ("photo", path)
    loaded = load(item, IngestOptions())
    assert loaded.image.shape == (240, 320, 3)
    # Lossy HEVC blurs the noise, but the picture is the same one, the same way up.
    assert loaded.image[64:96, 128:160].mean() > 180
    assert np.abs(loaded.image.astype(int).mean() - photo.astype(int).mean()) < 3
    assert loaded.record.lat == pytest.approx(-33.4512, abs=1e-6)
    assert loaded.record.lon == pytest.approx(-70.6693, abs=1e-6)
    out = tmp_path / "d.parquet"
    summary = run_detection([tmp_path / "photos"], out, FakeDetector())
    assert (summary.images, summary.rejected, summary.exit_code) == (1, 0, 0)
    dets = gpd.read_parquet(out)
    assert dets[["x1", "y1", "x2", "y2"]].to_numpy().tolist() == [[128.0, 64.0, 160.0, 96.0]]
    np.testing.assert_allclose(dets[["lon", "lat"]].to_numpy(), [[-70.6693, -33.4512]], atol=1e-6)


def test_heic_photo_through_the_shipped_model(tmp_path: Path) -> None:
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import shipped_model_path

    _heic_survey(tmp_path / "photos")
    detector = YoloDetector(shipped_model_path(), backend="pytorch", imgsz=160, config_dir=tmp_path / "cfg")
    out = tmp_path / "d.parquet"
    summary = run_detection([tmp_path / "photos"], out, detector)
    assert (summary.images, summary.rejected) == (1, 0)
    images = gpd.read_parquet(output_paths(out)["images"])
    assert images["status"].tolist() == ["ok"]
    assert Path(images["path"].iloc[0]).name == "IMG_0001.HEIC"
    assert (images["width"].iloc[0], images["height"].iloc[0]) == (320, 240)
    np.testing.assert_allclose(images[["lon", "lat"]].to_numpy(), [[-70.6693, -33.4512]], atol=1e-6)


def test_every_file_not_used_is_in_the_rejects(tmp_path: Path) -> None:
    folder = tmp_path / "survey"
    (folder / "sub").mkdir(parents=True)
    write_exif_photo(folder / "ok.jpg", _dark(seed=11), lat=20.27, lon=100.08)
    (folder / "notes.txt").write_text("field notes\n")
    (folder / "notes_as_photo.jpg").write_text("field notes, renamed\n")
    Image.fromarray(_dark(seed=12)).save(folder / "sub" / "anim.gif")
    Image.fromarray(_dark(seed=13)).save(folder / "gif_named.png", "GIF")  # a GIF under a photo's name
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "README").write_text("what is in here\n")
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "empty.mp4").write_bytes(b"")
    pd.DataFrame([{"image": "ok.jpg", "lon": 1.0, "lat": 2.0}]).to_csv(folder / "positions.csv", index=False)
    out = tmp_path / "d.parquet"
    summary = run_detection(
        [folder], out, FakeDetector(), ingest=IngestOptions(sidecar=folder / "positions.csv")
    )
    rejects = pd.read_csv(output_paths(out)["rejects"])
    got = {
        Path(p).relative_to(folder).as_posix(): r
        for p, r in zip(rejects["path"], rejects["reason"], strict=True)
    }
    assert got == {
        "notes.txt": "not_an_image",
        "notes_as_photo.jpg": "not_an_image",
        "sub/anim.gif": "not_an_image",
        "gif_named.png": "not_an_image",
        ".DS_Store": "not_an_image",
        "README": "not_an_image",
        "dangling.jpg": "unreadable",
        "empty.mp4": "empty_file",
    }  # the sidecar is an input of the run, not a rejected photo
    assert (summary.images, summary.rejected) == (1, 8)
    messages = dict(zip(rejects["path"].map(lambda p: Path(p).name), rejects["message"], strict=True))
    assert "'.txt' files are not read by detect" in messages["notes.txt"]
    assert "'.gif' files are not read by detect" in messages["anim.gif"]
    assert ".heic" in messages["anim.gif"]
    assert "not a JPEG, PNG, TIFF, WebP, BMP or HEIC image" in messages["gif_named.png"]
    assert "without an extension" in messages["README"]


def test_heic_without_pillow_heif_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plastic_hotspots.detector import ingest

    path, _ = _heic_survey(tmp_path / "photos")
    monkeypatch.setattr(ingest, "_register_heif", lambda: False)
    with pytest.raises(IngestError, match="pillow-heif is not installed") as info:
        load(ingest.WorkItem(path.as_posix(), "photo", path), IngestOptions())
    assert info.value.reason == "not_an_image"
    assert "pip install" in info.value.hint
