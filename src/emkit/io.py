"""Saving and loading fitted models as plain data: a zip of ``.npy`` arrays and JSON.

Loading never unpickles anything, so a model file cannot run code. Every array
is checked against the SHA-256 recorded in the metadata, so a truncated,
foreign or altered file is refused with a clear error.

File layout (a zip archive, conventionally ``.npz``)::

    metadata.json          format name and version, class, parameters, scalars,
                           and for every array its shape, dtype and sha256;
                           distributions appear as {"distribution": type name,
                           "params": {...}} and are rebuilt only from known types
    arrays/<name>.npy      fitted arrays (``weights_``, ``means_``, ...)
    params/<name>.npy      array-valued constructor parameters (``means_init``, ...)
"""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from emkit.distributions import Distribution, from_spec, to_spec

FORMAT_NAME = "emkit-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read: truncated, foreign, altered or unsupported."""


# Estimator classes a model file may name, by class name. Each estimator module
# registers its class (register_estimator), so this module imports no estimator.
_ESTIMATORS: dict[str, type] = {}


def register_estimator(cls: type) -> type:
    """Let :func:`save` and :func:`load` handle ``cls``; used as a class decorator."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def _registry() -> dict[str, type]:
    return _ESTIMATORS


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | numbers.Integral | numbers.Real)


def _plain(value: Any) -> Any:
    """JSON-ready scalar (numpy scalars become Python ones), or distributions as specs."""
    if isinstance(value, Distribution):  # MixtureModel's template
        return to_spec(value)
    if _holds_distributions(value):
        return [to_spec(d) for d in value]
    return value.item() if isinstance(value, np.generic) else value


def _holds_distributions(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(d, Distribution) for d in value)
    )


def _unplain(value: Any) -> Any:
    """Inverse of :func:`_plain`: lists of distribution specs become distributions."""
    if isinstance(value, list) and value and all(isinstance(s, dict) for s in value):
        return [from_spec(spec) for spec in value]
    if isinstance(value, dict) and "distribution" in value:  # MixtureModel's template
        return from_spec(value)
    return value


def save(model: Any, path: str | os.PathLike) -> Path:
    """Write a fitted emkit model to ``path`` atomically.

    Parameters
    ----------
    model : fitted emkit estimator (e.g. :class:`emkit.GaussianMixture`)
    path : str or path-like
        Destination file; written to a temporary file first, then renamed, so
        an interrupted save never leaves a half-written model behind.

    Returns
    -------
    Path of the written file.
    """
    cls_name = type(model).__name__
    if cls_name not in _registry():
        raise TypeError(f"cannot save {cls_name}: not an emkit model class")
    missing = [name for name in model._saved_arrays if not hasattr(model, name)]
    if missing:
        raise ValueError(f"cannot save an unfitted {cls_name} (missing {', '.join(missing)})")

    members: dict[str, bytes] = {}
    array_meta: dict[str, dict[str, Any]] = {}

    def add_array(member: str, array: Any) -> None:
        data = _npy_bytes(np.asarray(array))
        members[member] = data
        array_meta[member] = {"sha256": hashlib.sha256(data).hexdigest()}

    params: dict[str, Any] = {}
    for name, value in model.get_params(deep=False).items():
        if _is_plain(value) or _holds_distributions(value) or isinstance(value, Distribution):
            params[name] = _plain(value)
        elif isinstance(value, np.random.RandomState | np.random.Generator) or callable(value):
            params[name] = None  # generator state and callbacks are behaviour, not model data
        else:
            add_array(f"params/{name}.npy", value)
    for name in model._saved_arrays:
        add_array(f"arrays/{name}.npy", getattr(model, name))
    scalars = {name: _plain(getattr(model, name)) for name in model._saved_scalars}
    if hasattr(model, "feature_names_in_"):
        scalars["feature_names_in_"] = [str(n) for n in model.feature_names_in_]

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": cls_name,
        "params": params,
        "scalars": scalars,
        "arrays": array_meta,
    }
    return _write_zip_atomically(Path(path), metadata, members)


def _write_zip_atomically(path: Path, metadata: dict, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("metadata.json", json.dumps(metadata, indent=1))
                for member, data in members.items():
                    archive.writestr(member, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is truncated, not an emkit model, altered, or from a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = _read_metadata(archive, path)
            arrays = {
                member: _read_array(archive, member, info, path)
                for member, info in metadata["arrays"].items()
            }
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(
            f"{path} is not a readable emkit model file (truncated or not a zip archive): {exc}"
        ) from None
    return _rebuild(metadata, arrays, path)


def _read_metadata(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        metadata = json.loads(archive.read("metadata.json"))
    except KeyError:
        raise ModelFileError(f"{path} is not an emkit model file (no metadata.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: metadata.json is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an emkit model file (format is not {FORMAT_NAME!r})")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {version!r}; this emkit reads versions up to "
            f"{FORMAT_VERSION} (upgrade emkit)"
        )
    for key in ("class", "params", "scalars", "arrays"):
        if key not in metadata:
            raise ModelFileError(f"{path}: metadata.json lacks {key!r}")
    return metadata


def _read_array(archive: zipfile.ZipFile, member: str, info: dict, path: Path) -> np.ndarray:
    try:
        data = archive.read(member)
    except KeyError:
        raise ModelFileError(f"{path} is damaged: array {member} is missing") from None
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise ModelFileError(
            f"{path} is damaged or was altered: array {member} does not match its checksum"
        )
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise ModelFileError(f"{path}: array {member} cannot be read safely ({exc})") from None


def _rebuild(metadata: dict, arrays: dict[str, np.ndarray], path: Path) -> Any:
    registry = _registry()
    cls = registry.get(metadata["class"])
    if cls is None:
        raise ModelFileError(
            f"{path} holds an unknown model class {metadata['class']!r} "
            f"(known: {', '.join(sorted(registry))})"
        )
    try:
        params = {name: _unplain(value) for name, value in metadata["params"].items()}
        scalars = {name: _unplain(value) for name, value in metadata["scalars"].items()}
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} holds an invalid distribution: {exc}") from None
    fitted: dict[str, Any] = {}
    for member, array in arrays.items():
        folder, _, name = member.partition("/")
        name = name.removesuffix(".npy")
        if folder == "params":
            params[name] = array
        else:
            fitted[name] = array
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelFileError(f"{path}: parameters do not fit {cls.__name__} ({exc})") from None
    missing = [name for name in cls._saved_arrays if name not in fitted]
    if missing:
        raise ModelFileError(f"{path} is damaged: missing {', '.join(missing)}")
    for name, value in {**fitted, **scalars}.items():
        setattr(model, name, np.asarray(value, dtype=object) if name == "feature_names_in_"
                else value)
    try:
        model._check_fitted_state()
    except ValueError as exc:
        raise ModelFileError(f"{path} holds an inconsistent model: {exc}") from None
    return model


def write_archive(
    path: str | os.PathLike, metadata: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Path:
    """Write other state (checkpoints) in the model file layout: JSON plus checksummed ``.npy``.

    ``metadata`` must name its own ``format``; the ``arrays`` entry (member
    name to sha256) is filled in here. Written atomically, like :func:`save`.
    """
    members = {member: _npy_bytes(np.asarray(array)) for member, array in arrays.items()}
    checksums = {m: {"sha256": hashlib.sha256(data).hexdigest()} for m, data in members.items()}
    return _write_zip_atomically(Path(path), {**metadata, "arrays": checksums}, members)


def read_archive(path: str | os.PathLike, format_name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read what :func:`write_archive` wrote: the metadata and the verified arrays.

    Raises
    ------
    ModelFileError
        If the file is truncated, of another format, or altered.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
            if not isinstance(metadata, dict) or metadata.get("format") != format_name:
                raise ModelFileError(f"{path} is not an {format_name} file")
            arrays = {
                member: _read_array(archive, member, info, path)
                for member, info in metadata.get("arrays", {}).items()
            }
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, json.JSONDecodeError,
            UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"{path} is not a readable {format_name} file (truncated or damaged): {exc}"
        ) from None
    return metadata, arrays
