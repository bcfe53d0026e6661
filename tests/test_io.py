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


def _rewrite(path, edit):
    """Copy a model archive member by member, letting ``edit(name, data)`` change bytes."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, edit(name, data))


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
    assert metadata["format"] == "emkit-model" and metadata["format_version"] == 1
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
