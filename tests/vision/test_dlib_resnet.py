"""The converted dlib ResNet gives dlib's own descriptors, on real face chips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from facetrace.errors import MissingDependencyError, ModelError
from facetrace.vision.dlib_resnet import (
    ResNetDescriptor,
    ResNetRuntime,
    cached_model_name,
    convert,
    file_sha256,
    main,
)
from facetrace.vision.dlib_serialization import read_metric_net

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "face_recognition"
PHOTOS = ["obama.jpg", "biden.jpg", "two_people.jpg"]
MODEL = Path(face_recognition_models.face_recognition_model_location())
TOLERANCE = 1e-4  # the brief: max abs difference per component


@pytest.fixture(scope="module")
def chips() -> npt.NDArray[np.uint8]:
    """150x150 chips of every face dlib's HOG detector finds in the photos (4 faces)."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    found = []
    for name in PHOTOS:
        image = np.asarray(Image.open(FIXTURES / name).convert("RGB"))
        for rect in detector(image, 1):
            shape = predictor(image, rect)
            found.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
    assert len(found) >= 4
    return np.stack(found)


@pytest.fixture(scope="module")
def dlib_descriptors(chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """dlib's own descriptors, one chip at a time."""
    model = dlib.face_recognition_model_v1(str(MODEL))
    return np.stack(
        [np.asarray(model.compute_face_descriptor(chip), dtype=np.float32) for chip in chips]
    )


@pytest.fixture(scope="module")
def onnx_descriptor(tmp_path_factory: pytest.TempPathFactory) -> ResNetDescriptor:
    return ResNetDescriptor(cache_dir=tmp_path_factory.mktemp("models"))


def _pick(runtime: ResNetRuntime, onnx_descriptor: ResNetDescriptor) -> ResNetDescriptor:
    if runtime is ResNetRuntime.ONNX:
        return onnx_descriptor
    return ResNetDescriptor(runtime=runtime)


@pytest.mark.parametrize("runtime", list(ResNetRuntime))
def test_descriptors_match_dlib(
    runtime: ResNetRuntime,
    chips: npt.NDArray[np.uint8],
    dlib_descriptors: npt.NDArray[np.float32],
    onnx_descriptor: ResNetDescriptor,
) -> None:
    descriptor = (
        onnx_descriptor if runtime is ResNetRuntime.ONNX else ResNetDescriptor(runtime=runtime)
    )
    ours = descriptor.compute(chips)
    assert ours.shape == (len(chips), 128)
    assert ours.dtype == np.float32
    assert np.abs(ours - dlib_descriptors).max() <= TOLERANCE
    # Sanity of the inputs: different people's descriptors really differ.
    assert np.abs(dlib_descriptors[0] - dlib_descriptors[1]).max() > 0.05


def test_same_person_is_close_and_others_far(
    chips: npt.NDArray[np.uint8], onnx_descriptor: ResNetDescriptor
) -> None:
    # obama.jpg and biden.jpg hold one face each; dlib's threshold is 0.6.
    obama, biden = onnx_descriptor.compute(chips[:2])
    assert np.linalg.norm(obama - biden) > 0.6
    # The same chip shifted by one pixel is still the same person.
    shifted = np.roll(chips[:1], 1, axis=2)
    assert np.linalg.norm(onnx_descriptor.compute(shifted)[0] - obama) < 0.2


@pytest.mark.parametrize(("runtime", "size"), [(ResNetRuntime.ONNX, 40), (ResNetRuntime.NUMPY, 6)])
def test_batch_equals_one_by_one(
    runtime: ResNetRuntime,
    size: int,
    chips: npt.NDArray[np.uint8],
    onnx_descriptor: ResNetDescriptor,
) -> None:
    descriptor = (
        onnx_descriptor if runtime is ResNetRuntime.ONNX else ResNetDescriptor(runtime=runtime)
    )
    # 40 chips: more than one internal batch of 32.
    batch = np.concatenate([chips] * 10)[:size]
    together = descriptor.compute(batch)
    alone = np.concatenate([descriptor.compute(batch[i : i + 1]) for i in range(len(batch))])
    assert together.shape == (size, 128)
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)


def test_threads_do_not_change_results(
    chips: npt.NDArray[np.uint8], onnx_descriptor: ResNetDescriptor, tmp_path: Path
) -> None:
    two = ResNetDescriptor(cache_dir=tmp_path, threads=2)
    np.testing.assert_allclose(two.compute(chips), onnx_descriptor.compute(chips), atol=1e-5)


def test_conversion_is_cached_and_reused(chips: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    first = ResNetDescriptor(cache_dir=tmp_path)
    assert first.converted is None  # nothing happens before first use
    assert list(tmp_path.iterdir()) == []
    a = first.compute(chips[:1])
    assert first.converted is True
    cached = tmp_path / cached_model_name(file_sha256(MODEL))
    assert first.onnx_path == cached
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]
    before = cached.stat()

    second = ResNetDescriptor(cache_dir=tmp_path)
    b = second.compute(chips[:1])
    assert second.converted is False
    after = cached.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    np.testing.assert_array_equal(a, b)


def test_convert_writes_a_standalone_onnx_model(
    chips: npt.NDArray[np.uint8], dlib_descriptors: npt.NDArray[np.float32], tmp_path: Path
) -> None:
    import onnxruntime

    out = convert(MODEL, tmp_path / "sub" / "resnet.onnx")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    [inp], [outp] = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("chips", "tensor(uint8)", [150, 150, 3])
    assert (outp.name, outp.shape[1]) == ("descriptors", 128)
    result = session.run(None, {"chips": chips})[0]
    assert np.abs(result - dlib_descriptors).max() <= TOLERANCE


def test_cli_converts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.onnx"
    assert main([str(out), str(MODEL)]) == 0
    assert out.stat().st_size > 20_000_000  # 5.6 M float32 weights
    assert file_sha256(MODEL) in capsys.readouterr().out
    assert main([]) == 2


def test_rejects_bad_chips(onnx_descriptor: ResNetDescriptor) -> None:
    with pytest.raises(ValueError, match="uint8"):
        onnx_descriptor.compute(np.zeros((1, 150, 150, 3), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(n, 150, 150, 3\)"):
        onnx_descriptor.compute(np.zeros((1, 112, 112, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        ResNetDescriptor(threads=0)
    empty = onnx_descriptor.compute(np.zeros((0, 150, 150, 3), dtype=np.uint8))
    assert empty.shape == (0, 128) and empty.dtype == np.float32


def test_parser_rejects_damaged_model_files(tmp_path: Path) -> None:
    data = MODEL.read_bytes()
    net = read_metric_net(data)
    assert net.fc_weight.shape == (256, 128)
    assert len(net.blocks) == 14
    with pytest.raises(ModelError, match="ends early"):
        read_metric_net(data[: len(data) // 2])
    with pytest.raises(ModelError, match="unexpected bytes"):
        read_metric_net(data + b"\x00")
    with pytest.raises(ModelError):
        read_metric_net(b"not a dlib model")
    missing = ResNetDescriptor(model_path=tmp_path / "nope.dat")
    with pytest.raises(ModelError, match="missing"):
        missing.compute(np.zeros((1, 150, 150, 3), dtype=np.uint8))
    other = face_recognition_models.pose_predictor_five_point_model_location()
    with pytest.raises(ModelError):
        convert(Path(other), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_missing_onnxruntime_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, chips: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(MissingDependencyError, match=r"facetrace\[onnx\]"):
        ResNetDescriptor(cache_dir=tmp_path).compute(chips[:1])
    # The NumPy runtime needs no extra.
    assert ResNetDescriptor(runtime=ResNetRuntime.NUMPY).compute(chips[:1]).shape == (1, 128)


def test_import_is_cheap() -> None:
    code = (
        "import sys, facetrace.vision.dlib_resnet\n"
        "heavy = {'onnx', 'onnxruntime', 'dlib'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src},
    )
    assert result.stdout.strip() == "[]"
