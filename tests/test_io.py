"""Saving models as plain data, and refusing files that are not what they claim."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from emkit import GaussianMixture, load, save
from emkit.io import ModelFileError
from tests.conftest import COVARIANCE_TYPES


@pytest.fixture
def fitted(blobs):
    return GaussianMixture(3, random_state=0).fit(blobs)


def _rewrite(path, edit, checksum=True):
    """Copy a model archive member by member, letting ``edit(name, data)`` change bytes.

    With ``checksum``, the metadata's checksum is recomputed (an edit made on purpose,
    which only the checks of the content can catch).
    """
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = {name: edit(name, data) for name, data in members.items()}
    if checksum:
        members["metadata.sha256"] = hashlib.sha256(members["metadata.json"]).hexdigest().encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip_restores_the_model(tmp_path, blobs, covariance_type):
    gm = GaussianMixture(
        3, covariance_type=covariance_type, means_init=np.repeat([[0.0], [1.0], [2.0]], 2, axis=1),
        random_state=0,
    ).fit(blobs)
    loaded = load(save(gm, tmp_path / "model.npz"))
    assert type(loaded) is GaussianMixture
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
                 "history_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gm, name))
    for name in ("converged_", "n_iter_", "lower_bound_", "n_features_in_"):
        assert getattr(loaded, name) == getattr(gm, name)
    np.testing.assert_array_equal(loaded.means_init, gm.means_init)
    assert loaded.get_params()["covariance_type"] == covariance_type
    np.testing.assert_array_equal(loaded.predict_proba(blobs), gm.predict_proba(blobs))


def test_feature_names_survive(tmp_path, blobs):
    frame = pd.DataFrame(blobs, columns=["height", "weight"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    loaded = load(save(gm, tmp_path / "m.npz"))
    assert list(loaded.feature_names_in_) == ["height", "weight"]
    np.testing.assert_array_equal(loaded.predict(frame), gm.predict(frame))


def test_file_is_plain_data(tmp_path, fitted):
    path = save(fitted, tmp_path / "m.npz")
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read("metadata.json"))
        for name in archive.namelist():
            if name.endswith(".npy"):
                array = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
                assert array.dtype != object
    assert metadata["format"] == "emkit-model" and metadata["format_version"] == 2
    assert metadata["class"] == "GaussianMixture"


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="unfitted GaussianMixture"):
        save(GaussianMixture(), tmp_path / "m.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        load(tmp_path / "absent.npz")


def test_truncated_file_is_refused(tmp_path, fitted):
    path = save(fitted, tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or not a zip archive"):
        load(path)


def test_foreign_files_are_refused(tmp_path):
    plain_npz = tmp_path / "plain.npz"
    np.savez(plain_npz, weights=np.ones(2))
    with pytest.raises(ModelFileError, match=r"no metadata\.json"):
        load(plain_npz)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a zip archive"):
        load(text)


def test_tampered_array_is_refused(tmp_path, fitted):
    path = save(fitted, tmp_path / "m.npz")

    def flip_last_byte(name, data):
        if name == "arrays/means_.npy":
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    _rewrite(path, flip_last_byte)
    with pytest.raises(ModelFileError, match=r"altered: array arrays/means_\.npy"):
        load(path)


def test_pickled_array_is_refused_even_with_a_matching_checksum(tmp_path, fitted):
    """An object array would need unpickling; loading refuses it rather than run code."""
    path = save(fitted, tmp_path / "m.npz")
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    evil = buffer.getvalue()

    def swap(name, data):
        if name == "arrays/means_.npy":
            return evil
        if name == "metadata.json":
            meta = json.loads(data)
            meta["arrays"]["arrays/means_.npy"]["sha256"] = hashlib.sha256(evil).hexdigest()
            return json.dumps(meta).encode()
        return data

    _rewrite(path, swap)
    with pytest.raises(ModelFileError, match="cannot be read safely"):
        load(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {**m, "format": "other"}, "not an emkit model file"),
        (lambda m: {**m, "format_version": 99}, "format version 99"),
        (lambda m: {**m, "class": "Pickle"}, "unknown model class 'Pickle'"),
        (lambda m: {**m, "scalars": {**m["scalars"], "n_iter_": 3}}, "inconsistent model"),
        (lambda m: {**m, "params": {**m["params"], "n_components": 4}}, "inconsistent model"),
    ],
)
def test_edited_metadata_is_refused(tmp_path, fitted, edit, message):
    path = save(fitted, tmp_path / "m.npz")

    def rewrite_metadata(name, data):
        return json.dumps(edit(json.loads(data))).encode() if name == "metadata.json" else data

    _rewrite(path, rewrite_metadata)
    with pytest.raises(ModelFileError, match=message):
        load(path)


def test_save_is_atomic(tmp_path, fitted):
    """Only the final file appears: no temporary files are left behind."""
    save(fitted, tmp_path / "m.npz")
    save(fitted, tmp_path / "m.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def _declare_size(path, member, size):
    """Patch the central directory so that ``member`` claims ``size`` bytes uncompressed."""
    data = bytearray(path.read_bytes())
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        name_length = int.from_bytes(data[position + 28 : position + 30], "little")
        name = bytes(data[position + 46 : position + 46 + name_length]).decode()
        if name == member:
            data[position + 24 : position + 28] = size.to_bytes(4, "little")
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path, fitted, monkeypatch):
    # Issue 22 item 8: a 2 MB file expanded to 4.4 GB before being refused.
    import tracemalloc

    from emkit import io as model_io

    path = save(fitted, tmp_path / "m.npz")
    _declare_size(path, "arrays/means_.npy", 4_000_000_000)  # as a bomb declares it
    with pytest.raises(ModelFileError, match=r"would expand to 4,0.*MAX_LOAD_BYTES"):
        load(path)
    # A real one, scaled down: 64 MB of zeros in a 64 kB member, bound at 8 MB.
    bomb = np.zeros((8_000_000,))
    path = save(fitted, tmp_path / "bomb.npz")
    _rewrite(path, lambda name, data: model_io._npy_bytes(bomb)
             if name == "arrays/history_.npy" else data)
    assert path.stat().st_size < 1_000_000
    monkeypatch.setattr(model_io, "MAX_LOAD_BYTES", 8_000_000)
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="would expand"):
        load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4_000_000


def test_npy_headers_must_declare_the_member_size(tmp_path, fitted):
    path = save(fitted, tmp_path / "m.npz")

    def huge_header(name, data):
        if name != "arrays/means_.npy":
            return data
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)})
        return buffer.getvalue() + data[-48:]

    _rewrite(path, huge_header)
    with pytest.raises(ModelFileError, match=r"declares shape \(1000000000000, 2\)"):
        load(path)


def test_damaged_files_always_give_model_file_errors(tmp_path, fitted):
    # Issue 22 (low): zlib, NotImplemented, Recursion, Attribute and Memory errors leaked.
    path = save(fitted, tmp_path / "m.npz")
    original = path.read_bytes()
    rng = np.random.default_rng(0)
    refused = 0
    for variant in range(60):
        data = bytearray(original)
        if variant % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for position in rng.integers(0, len(data), size=1 + variant % 4):
                data[position] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        try:
            loaded = load(path)
        except ModelFileError:
            refused += 1
            continue
        # A flip in a byte nothing reads (a timestamp) may load: then it is the same model.
        np.testing.assert_array_equal(loaded.means_, fitted.means_)
    assert refused >= 40
    # Metadata that is valid JSON but nested too deeply, or of the wrong types.
    for text in ("[" * 100_000 + "]" * 100_000, '{"format": "emkit-model", "format_version": 2,'
                 ' "class": 1, "params": [], "scalars": 1, "arrays": 1}'):
        path.write_bytes(original)
        _rewrite(path, lambda name, data, text=text: text.encode()
                 if name == "metadata.json" else data)
        with pytest.raises(ModelFileError):
            load(path)
    path.write_bytes(original)
    _rewrite(path, lambda name, data: data, checksum=False)
    with zipfile.ZipFile(path) as archive:  # unknown compression method
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = bytearray(path.read_bytes())
    for marker in (b"PK\x03\x04", b"PK\x01\x02"):
        position = raw.find(marker)
        while position >= 0:
            method_at = position + (8 if marker == b"PK\x03\x04" else 10)
            raw[method_at : method_at + 2] = (99).to_bytes(2, "little")
            position = raw.find(marker, position + 4)
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError):
        load(path)


def test_edited_metadata_without_its_checksum_is_refused(tmp_path, fitted):
    path = save(fitted, tmp_path / "m.npz")

    def edit(name, data):
        if name != "metadata.json":
            return data
        return data.replace(b'"tol": 0.001', b'"tol": 0.5')

    _rewrite(path, edit, checksum=False)
    with pytest.raises(ModelFileError, match=r"metadata\.json does not match its checksum"):
        load(path)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_inconsistent_parameters_with_valid_checksums_are_refused(
        tmp_path, blobs, covariance_type):
    # Issue 22 (low): an edited precisions_cholesky_ with a recomputed checksum gave NaN.
    from emkit import io as model_io

    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(blobs)
    for name, change, message in [
        ("precisions_cholesky_", lambda a: -a, "diagonal entry <= 0"),
        ("precisions_cholesky_", lambda a: 2 * a, "does not factor"),
        ("precisions_", lambda a: 2 * a, "not the product"),
        ("covariances_", lambda a: -a, "not positive definite"),
    ]:
        path = save(gm, tmp_path / "m.npz")
        member = f"arrays/{name}.npy"
        edited = model_io._npy_bytes(change(getattr(gm, name)))

        def swap(item, data, member=member, edited=edited):
            if item == member:
                return edited
            if item == "metadata.json":
                meta = json.loads(data)
                meta["arrays"][member]["sha256"] = hashlib.sha256(edited).hexdigest()
                return json.dumps(meta).encode()
            return data

        _rewrite(path, swap)
        with pytest.raises(ModelFileError, match=message):
            load(path)


def test_paths_are_never_saved_nor_restored(tmp_path, fitted, blobs):
    # Issue 22 item 9: a model file carried a checkpoint path; refitting wrote files there.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fitted.set_params(checkpoint=str(elsewhere / "fit.ckpt"))
    path = save(fitted, tmp_path / "m.npz")
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read("metadata.json"))["params"]["checkpoint"] is None

    def plant(name, data):
        if name != "metadata.json":
            return data
        meta = json.loads(data)
        meta["params"]["checkpoint"] = str(elsewhere / "planted.ckpt")
        return json.dumps(meta).encode()

    _rewrite(path, plant)
    loaded = load(path)
    assert loaded.checkpoint is None
    loaded.fit(blobs)
    assert list(elsewhere.iterdir()) == []


def test_saved_files_follow_the_umask_and_need_their_folder(tmp_path, fitted):
    import os

    old = os.umask(0o027)
    try:
        path = save(fitted, tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(fitted, tmp_path / "missing" / "m.npz")
    assert not (tmp_path / "missing").exists()


def test_temporaries_of_killed_saves_are_removed(tmp_path, fitted):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".m.npz.{dead.stdout.strip()}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    foreign = tmp_path / ".other.npz.1.abc.tmp"  # another file's: left alone
    foreign.write_bytes(b"x")
    save(fitted, tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name, "m.npz"]


def test_ill_conditioned_models_still_load(tmp_path):
    # The parameter checks allow the rounding of a nearly singular covariance.
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=500), rng.normal(size=500) * 1e-3])
    X[:, 1] += X[:, 0]
    for dtype in (np.float32, np.float64):
        gm = GaussianMixture(2, random_state=0).fit(X.astype(dtype))
        eigenvalues = np.linalg.eigvalsh(gm.covariances_.astype(np.float64))
        assert (eigenvalues[:, -1] / eigenvalues[:, 0]).max() > 1e5  # nearly singular
        loaded = load(save(gm, tmp_path / "m.npz"))
        np.testing.assert_array_equal(loaded.score_samples(X), gm.score_samples(X))
