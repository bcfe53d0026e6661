"""Saving and loading fitted models as plain data: a zip of ``.npy`` arrays and JSON.

Loading never unpickles anything, so a model file cannot run code. The
metadata is checked against the SHA-256 in ``metadata.sha256``, every array
against the SHA-256 recorded in the metadata, and the loaded parameters
against each other (finite, weights summing to one, covariances positive
definite and matching their precisions), so a truncated, foreign or altered
file is refused with :class:`ModelFileError`, whatever the damage. Sizes are
checked before anything is decompressed: the members may hold at most
:data:`MAX_LOAD_BYTES` together, and every ``.npy`` member exactly what its
header declares.

Saved files follow the umask like any file the user writes. Only parameters
are saved, never paths: ``checkpoint`` is saved and restored as None, so a
model file cannot make a later fit write files elsewhere.

File layout (a zip archive, conventionally ``.npz``)::

    metadata.sha256        SHA-256 of metadata.json (hex; format version 2 on)
    metadata.json          format name and version, class, parameters, scalars,
                           and for every array its shape, dtype and sha256;
                           distributions appear as {"distribution": type name,
                           "params": {...}} and are rebuilt only from known types
    arrays/<name>.npy      fitted arrays (``weights_``, ``means_``, ...)
    params/<name>.npy      array-valued constructor parameters (``means_init``, ...)
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import numbers
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from emkit.distributions import Distribution, from_spec, to_spec
from emkit.distributions.gaussian.prior import ConjugatePrior

FORMAT_NAME = "emkit-model"
FORMAT_VERSION = 2  # 2: metadata.sha256

# Most bytes a model file may decompress to, all members together (checked
# before reading any): a damaged or hostile file cannot exhaust memory.
# Raise it (``emkit.io.MAX_LOAD_BYTES = ...``) to load a trusted larger model.
MAX_LOAD_BYTES = 1 << 30
_MAX_METADATA_BYTES = 16 << 20
_METADATA_CHECKSUM = "metadata.sha256"
# Parameters that name files: never saved nor restored (see the module docstring).
_PATH_PARAMS = ("checkpoint",)


class ModelFileError(ValueError):
    """A model file that cannot be read: truncated, foreign, altered or unsupported."""


# Estimator classes a model file may name, by class name. Each estimator module
# registers its class (register_estimator), so this module imports no estimator.
_ESTIMATORS: dict[str, type] = {}


def register_estimator(cls: type) -> type:
    """Let :func:`save` and :func:`load` handle ``cls``; used as a class decorator."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def _registry(name: str | None = None) -> dict[str, type]:
    """The registered estimators; an unknown ``name`` first imports every estimator module.

    ``import emkit`` is lazy (PEP 562), so a model file may name a class whose
    module nobody has imported yet. The modules of the ``emkit.estimators``
    package are found by listing it (a plugin-style lookup, not an import of a
    higher layer at load time: a new estimator module needs no entry here).
    """
    if name is not None and name not in _ESTIMATORS:
        import importlib
        import pkgutil

        package = importlib.import_module("emkit.estimators")
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
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
    if isinstance(value, ConjugatePrior):  # GaussianMixture's prior
        return {"conjugate_prior": value.to_dict()}
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
    if isinstance(value, dict) and "conjugate_prior" in value:
        return ConjugatePrior(**value["conjugate_prior"])
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
        if name in _PATH_PARAMS:
            params[name] = None
        elif (_is_plain(value) or _holds_distributions(value)
              or isinstance(value, Distribution | ConjugatePrior)):
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
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    _remove_stale_temporaries(path)
    # The pid in the name lets a later save remove what a killed one left.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                    suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            text = json.dumps(metadata, indent=1).encode()
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(_METADATA_CHECKSUM, hashlib.sha256(text).hexdigest())
                archive.writestr("metadata.json", text)
                for member, data in members.items():
                    archive.writestr(member, data)
            handle.flush()
            # mkstemp makes the file private (0600); a saved model is an ordinary file.
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    try:  # Linux tells it without changing it (other threads may be creating files)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere, reading the umask means setting it; restored at once
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of saves to ``path`` whose process is gone (killed mid-save)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp")
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        found = pattern.fullmatch(candidate.name)
        if found and not _process_alive(int(found.group(1))):
            candidate.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or cannot tell: leave its file alone
    return True


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
            _check_sizes(archive, path)
            metadata = _read_metadata(archive, path)
            arrays = {
                member: _read_array(archive, member, info, path)
                for member, info in metadata["arrays"].items()
            }
        return _rebuild(metadata, arrays, path)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(
            f"{path} is not a readable emkit model file (truncated or not a zip archive): {exc}"
        ) from None
    except Exception as exc:
        # Whatever else damage triggers (zlib.error, NotImplementedError for an
        # unknown compression, RecursionError for deeply nested JSON, a wrong
        # type somewhere in the metadata): the file is at fault.
        raise ModelFileError(
            f"{path} is not a readable emkit model file ({type(exc).__name__}: {exc})"
        ) from None


def _check_sizes(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse before decompressing anything a file that would expand beyond the bounds."""
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > MAX_LOAD_BYTES:
        raise ModelFileError(
            f"{path} would expand to {total:,} bytes, more than emkit.io.MAX_LOAD_BYTES "
            f"({MAX_LOAD_BYTES:,}): damaged or hostile; raise the bound only for a trusted file"
        )
    for info in infos:
        if info.filename in ("metadata.json", _METADATA_CHECKSUM) and (
                info.file_size > _MAX_METADATA_BYTES):
            raise ModelFileError(f"{path}: {info.filename} is {info.file_size:,} bytes, too large")


def _read_metadata(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        text = archive.read("metadata.json")
        metadata = json.loads(text)
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
    if version >= 2 or _METADATA_CHECKSUM in archive.namelist():
        _check_metadata_checksum(archive, text, path)
    for key in ("class", "params", "scalars", "arrays"):
        if not isinstance(metadata.get(key), str if key == "class" else dict):
            raise ModelFileError(f"{path}: metadata.json lacks {key!r} (or it is malformed)")
    return metadata


def _check_metadata_checksum(archive: zipfile.ZipFile, text: bytes, path: Path) -> None:
    try:
        recorded = archive.read(_METADATA_CHECKSUM).decode("ascii").strip()
    except KeyError:
        raise ModelFileError(f"{path} is damaged: {_METADATA_CHECKSUM} is missing") from None
    if recorded != hashlib.sha256(text).hexdigest():
        raise ModelFileError(
            f"{path} is damaged or was altered: metadata.json does not match its checksum"
        )


def _read_array(archive: zipfile.ZipFile, member: str, info: dict, path: Path) -> np.ndarray:
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: metadata.json describes array {member} wrongly")
    try:
        zip_info = archive.getinfo(member)
    except KeyError:
        raise ModelFileError(f"{path} is damaged: array {member} is missing") from None
    _check_npy_header(archive, zip_info, path)
    data = archive.read(zip_info)
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise ModelFileError(
            f"{path} is damaged or was altered: array {member} does not match its checksum"
        )
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise ModelFileError(f"{path}: array {member} cannot be read safely ({exc})") from None


def _check_npy_header(archive: zipfile.ZipFile, zip_info: zipfile.ZipInfo, path: Path) -> None:
    """The ``.npy`` header alone: plain numbers whose declared size is the member's size."""
    member = zip_info.filename
    with archive.open(zip_info) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(handle, max_header_size=10_000)
        except ValueError as exc:
            raise ModelFileError(f"{path}: array {member} cannot be read safely ({exc})") from None
        offset = handle.tell()
    if dtype.hasobject:
        raise ModelFileError(f"{path}: array {member} cannot be read safely (object dtype)")
    declared = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared != zip_info.file_size:
        raise ModelFileError(
            f"{path} is damaged: array {member} declares shape {shape} of {dtype} "
            f"({declared:,} bytes) but holds {zip_info.file_size:,} bytes"
        )


def _rebuild(metadata: dict, arrays: dict[str, np.ndarray], path: Path) -> Any:
    registry = _registry(str(metadata["class"]))
    cls = registry.get(metadata["class"])
    if cls is None:
        raise ModelFileError(
            f"{path} holds an unknown model class {metadata['class']!r} "
            f"(known: {', '.join(sorted(registry))})"
        )
    try:
        params = {name: None if name in _PATH_PARAMS else _unplain(value)
                  for name, value in metadata["params"].items()}
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
        if hasattr(model, "covariances_"):
            check_gaussian_parameters(model)
    except ValueError as exc:
        raise ModelFileError(f"{path} holds an inconsistent model: {exc}") from None
    return model


def check_gaussian_parameters(model: Any) -> None:
    """Raise ValueError unless a Gaussian mixture's covariances and precisions agree.

    Covariances must be positive definite, ``precisions_cholesky_`` a factor of
    their inverse with a positive diagonal (its logarithm enters every density),
    and ``precisions_`` its product. Checked on load, since the arrays' checksums
    only prove that the file is as written, not that it was written by a fit.
    """
    from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES

    structure = COVARIANCE_STRUCTURES[model.covariance_type]
    k, d = model.means_.shape
    covariances = np.asarray(model.covariances_, np.float64)
    factors = np.asarray(model.precisions_cholesky_, np.float64)
    tolerance = 1e-3 if model.means_.dtype == np.float64 else 5e-2
    if structure.name in ("diag", "spherical"):
        # Elementwise: no (K, D, D) matrices for a wide diagonal model.
        if not (covariances > 0).all():
            raise ValueError("covariances_ are not positive definite")
        if not (factors > 0).all():
            raise ValueError("precisions_cholesky_ has a diagonal entry <= 0")
        identity, eye = np.square(factors) * covariances, 1.0
    else:
        covariances = structure.dense(covariances, k, d)
        factors = structure.dense(factors, k, d)
        eigenvalues = np.linalg.eigvalsh(covariances)
        if not (eigenvalues[:, 0] > 0).all():
            raise ValueError("covariances_ are not positive definite")
        if not (np.diagonal(factors, axis1=1, axis2=2) > 0).all():
            raise ValueError("precisions_cholesky_ has a diagonal entry <= 0")
        # factor^T covariance factor is the identity when factor factor^T inverts it,
        # to a rounding that grows with the covariance's condition number.
        identity, eye = np.swapaxes(factors, 1, 2) @ covariances @ factors, np.eye(d)
        condition = eigenvalues[:, -1] / eigenvalues[:, 0]
        eps = np.finfo(model.means_.dtype).eps
        tolerance = np.maximum(tolerance, 100 * eps * condition)[:, None, None]
    if (np.abs(identity - eye) > tolerance).any():
        raise ValueError("precisions_cholesky_ does not factor the inverse of covariances_")
    expected = structure.precisions(model.precisions_cholesky_)
    scale = np.abs(expected).max()
    if np.abs(np.asarray(model.precisions_) - expected).max() > 1e-6 * scale:
        raise ValueError("precisions_ is not the product of precisions_cholesky_")


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
            _check_sizes(archive, path)
            text = archive.read("metadata.json")
            metadata = json.loads(text)
            if not isinstance(metadata, dict) or metadata.get("format") != format_name:
                raise ModelFileError(f"{path} is not an {format_name} file")
            if _METADATA_CHECKSUM in archive.namelist():
                _check_metadata_checksum(archive, text, path)
            arrays = {
                member: _read_array(archive, member, info, path)
                for member, info in metadata.get("arrays", {}).items()
            }
    except ModelFileError:
        raise
    except Exception as exc:  # any damage, as in load
        raise ModelFileError(
            f"{path} is not a readable {format_name} file (truncated or damaged): {exc}"
        ) from None
    return metadata, arrays
