"""Move emkit's modules into their layer folders and rewrite every reference to them (issue 15).

Run once, from a clean checkout, on the tree that is to change::

    python tools/relayout.py .          # then: ruff check . && pytest -n 2

What it does, in this order:

1. Checks: the working tree is clean, every module of :data:`MOVES` is where the
   table says and none of its targets exists (so a second run stops at once), and
   every module under ``src/emkit`` is either moved or listed as staying
   (:data:`STAYS`, :data:`STAY_FOLDERS`); a module it does not know stops it, listed.
2. Relative imports in ``src/emkit`` (``from .x import y``, ``from ..families.q
   import z``) become absolute ones.
3. In every tracked text file (Python, Markdown, TOML, Makefile, ...):
   ``from emkit[.pkg] import module`` statements naming a moved module are rebuilt
   from their syntax tree; every other dotted name ``emkit.old.path[.attr]`` (in
   imports, code, strings such as ``mock.patch`` targets, docstrings, prose) and
   every path ``emkit/old/path.py`` is mapped through :data:`MOVES`.
4. ``git mv`` of each module, the new packages' ``__init__.py``, ``families/``
   removed, ``emkit.sources`` kept as a public name of the package, and
   ``tools/test_layers.py`` moved to ``tests/``.
5. ``ruff --select I --fix`` on the Python files it changed (module paths change
   the sort order), then every module of the package is imported in a fresh
   interpreter; leftovers (old names it could not map) are listed.

It exits non-zero, saying why, when any step fails; ``git reset --hard && git
clean -fd src tests`` undoes a run.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Old module -> new module. A module not named here must be in STAYS (or in a
# STAY_FOLDERS folder), or the script stops.
MOVES: dict[str, str] = {
    # core: the EM loop and its drivers; knows no Gaussian and no file format
    "emkit._parallel": "emkit.core._parallel",
    "emkit.stats": "emkit.core.stats",
    "emkit.engine": "emkit.core.engine",
    "emkit.variants": "emkit.core.variants",
    "emkit.acceleration": "emkit.core.acceleration",
    "emkit.runs": "emkit.core.runs",
    "emkit.custom": "emkit.core.custom",
    # data: where rows come from, and their checks
    "emkit.sources": "emkit.data.sources",
    "emkit.file_sources": "emkit.data.file_sources",
    "emkit.dask_source": "emkit.data.dask_source",
    "emkit.scale": "emkit.data.scale",
    "emkit._row_checks": "emkit.data._row_checks",
    "emkit._validation": "emkit.data._validation",
    "emkit._io_tables": "emkit.data._io_tables",
    # distributions: every component family; the Gaussian one in its own folder
    "emkit.distributions.gaussian": "emkit.distributions.gaussian.distribution",
    "emkit.families.gaussian": "emkit.distributions.gaussian.family",
    "emkit.families.covariance": "emkit.distributions.gaussian.covariance",
    "emkit.families.quadratic": "emkit.distributions.gaussian.quadratic",
    "emkit.families._soft_pass": "emkit.distributions.gaussian._soft_pass",
    "emkit.families.gaussian_codec": "emkit.distributions.gaussian.codec",
    "emkit.missing": "emkit.distributions.gaussian.missing",
    "emkit.families.component_list": "emkit.distributions.component_list",
    "emkit.families.distribution_codec": "emkit.distributions.codec",
    # latent: structures that turn a family into an EM model
    "emkit.mixture": "emkit.latent.mixture",
    "emkit.online": "emkit.latent.online",
    # estimators: the scikit-learn fronts and what only they use
    "emkit.gaussian_mixture": "emkit.estimators.gaussian_mixture",
    "emkit.mixture_model": "emkit.estimators.mixture_model",
    "emkit._mixture_methods": "emkit.estimators._mixture_methods",
    "emkit.kmeans": "emkit.estimators.kmeans",
    "emkit.imputer": "emkit.estimators.imputer",
    "emkit.selection": "emkit.estimators.selection",
    "emkit.checkpoint": "emkit.estimators.checkpoint",
    "emkit.initialization": "emkit.estimators.initialization",
    # added by other branches in flight; moved if present
    "emkit.mixture_starts": "emkit.estimators.mixture_starts",
}
# Modules of MOVES that may not exist (yet): skipped, with a note, when absent.
OPTIONAL = {"emkit.mixture_starts"}

# Packages that disappear. Their dotted name in prose maps to the new home; an
# import of a non-module name from them stops the script (nothing does so today).
REMOVED_PACKAGES: dict[str, str] = {"emkit.families": "emkit.distributions.gaussian"}

# Modules that stay where they are.
STAYS = {
    "emkit",
    "emkit.io",
    "emkit.plot",
    "emkit.cli",
    "emkit.distributions",
    "emkit.datasets",
    "emkit.demos",
}
# Folders whose modules all stay (a family file added to distributions/ stays there).
STAY_FOLDERS = ("emkit/distributions/", "emkit/datasets/", "emkit/demos/")

# Names the package keeps at its top for users (README: ``from emkit import sources``).
PUBLIC_ALIASES = {"sources": "emkit.data.sources"}

NEW_PACKAGES: dict[str, str] = {
    "emkit.core": (
        '"""The EM loop and its drivers: statistics as values, the engine, variants, SQUAREM,\n'
        'threads, and :func:`emkit.em` for models written as two functions.\n\n'
        'Knows no component family and no file format."""\n'
    ),
    "emkit.data": (
        '"""Where rows come from: arrays, files, Dask arrays, their checks and samples."""\n'
    ),
    "emkit.distributions.gaussian": (
        '"""The Gaussian family: covariance structures, the quadratic-feature kernel and its\n'
        'compiled pass, the missing-data algebra, codecs, and the user-facing distribution."""\n'
    ),
    "emkit.latent": (
        '"""Latent structures that turn a component family into an EM model (``e_step``,\n'
        '``m_step``): the finite mixture, and its online (stepwise) update."""\n'
    ),
    "emkit.estimators": (
        '"""The scikit-learn fronts: GaussianMixture, MixtureModel, KMeans, the imputer, model\n'
        'selection, and what only they use (initialisation, checkpoints)."""\n'
    ),
}

TEXT_SUFFIXES = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".pyi"}
TEXT_NAMES = {"Makefile"}
SELF = {"tools/relayout.py", "tools/test_layers.py"}

DOTTED = re.compile(r"(?<![\w.])emkit(?:\.[A-Za-z_]\w*)+")
PATHLIKE = re.compile(r"(?<![\w])emkit/((?:[A-Za-z_]\w*/)*[A-Za-z_]\w*)\.py\b")
# Words that name old places; any left after the run are listed for a look.
LEFTOVER = re.compile(
    r"\bfamilies/|\b(?:distribution_codec|gaussian_codec)\b|emkit\.families\b"
)


class RelayoutError(RuntimeError):
    """A precondition or a step failed; nothing after it ran."""


def new_modules() -> set[str]:
    """Every module and package name the new layout has (from the tables)."""
    names = set(MOVES.values()) | set(NEW_PACKAGES) | STAYS
    for name in list(names):
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return names


NEW = new_modules()


# --- step 1: checks -------------------------------------------------------


def module_file(root: Path, module: str, *, package: bool = False) -> Path:
    path = root / "src" / Path(*module.split("."))
    return path / "__init__.py" if package else path.with_suffix(".py")


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root / "src").with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RelayoutError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def check_preconditions(root: Path, allow_dirty: bool) -> None:
    if not (root / "src" / "emkit" / "__init__.py").is_file():
        raise RelayoutError(f"{root} is not an emkit checkout (no src/emkit/__init__.py)")
    if not allow_dirty and git(root, "status", "--porcelain", "--untracked-files=no").strip():
        raise RelayoutError("the working tree has uncommitted changes: commit or stash them")
    present = [m for m in MOVES.values() if module_file(root, m).exists()]
    present += [p for p in NEW_PACKAGES if module_file(root, p, package=True).exists()]
    if present:
        raise RelayoutError(
            "the new layout is (partly) there already, was the script run before? found: "
            + ", ".join(present)
        )
    for name in sorted(OPTIONAL):
        if not module_file(root, name).is_file():
            print(f"note: {name} is not there; not moved")
            del MOVES[name]
    missing = [m for m in MOVES if not module_file(root, m).is_file()]
    if missing:
        raise RelayoutError("modules of the table are not where it says: " + ", ".join(missing))
    unknown = []
    for path in sorted((root / "src" / "emkit").rglob("*.py")):
        name = module_name(root, path)
        rel = path.relative_to(root / "src").as_posix()
        if name in MOVES or name in STAYS or name in REMOVED_PACKAGES:
            continue
        if rel.startswith(STAY_FOLDERS) and not rel.startswith("emkit/distributions/gaussian"):
            continue
        unknown.append(f"{name} ({rel})")
    if unknown:
        raise RelayoutError(
            "modules that are not in the mapping table; add them to MOVES or STAYS in "
            "tools/relayout.py:\n  " + "\n  ".join(unknown)
        )


# --- step 2: relative imports -> absolute ----------------------------------


def absolutise(root: Path, path: Path, text: str) -> str:
    """``from .x import y`` -> ``from emkit.pkg.x import y`` (only the module part changes)."""
    tree = ast.parse(text, filename=str(path))
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    lines = text.splitlines(keepends=True)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = package.split(".")
        if node.level > 1:
            base = base[: -(node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
        line = lines[node.lineno - 1]
        pattern = re.compile(r"from\s+\.+\s*" + re.escape(node.module or "") + r"\s+import")
        new, count = pattern.subn(f"from {target} import", line, count=1)
        if count != 1:
            raise RelayoutError(f"{path}:{node.lineno}: cannot rewrite relative import {line!r}")
        lines[node.lineno - 1] = new
    return "".join(lines)


# --- step 3: rewrite references ---------------------------------------------


def map_dotted(match: re.Match[str]) -> str:
    parts = match.group(0).split(".")
    for i in range(len(parts), 1, -1):
        prefix = ".".join(parts[:i])
        if prefix in MOVES:
            return ".".join([MOVES[prefix], *parts[i:]])
        if prefix in REMOVED_PACKAGES:
            return ".".join([REMOVED_PACKAGES[prefix], *parts[i:]])
        if prefix in NEW:
            return match.group(0)
    return match.group(0)


def map_path(match: re.Match[str]) -> str:
    dotted = "emkit." + match.group(1).replace("/", ".")
    if dotted in MOVES:
        return MOVES[dotted].replace(".", "/") + ".py"
    return match.group(0)


def map_text(text: str) -> str:
    return PATHLIKE.sub(map_path, DOTTED.sub(map_dotted, text))


def import_rewrites(path: Path, text: str) -> dict[int, tuple[int, str]]:
    """Rebuilt ``from emkit[.pkg] import module`` statements: {first line: (last line, text)}.

    Lines are 0-based. Names that are not moved modules stay in a statement
    importing from the (mapped) package, names that are moved modules go to
    one statement per new parent package.
    """
    tree = ast.parse(text, filename=str(path))
    lines = text.splitlines(keepends=True)
    out: dict[int, tuple[int, str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            continue
        if not (node.module == "emkit" or node.module.startswith("emkit.")):
            continue
        qualified = [f"{node.module}.{a.name}" for a in node.names]
        if node.module in REMOVED_PACKAGES:
            bad = [a.name for a, q in zip(node.names, qualified, strict=True) if q not in MOVES]
            if bad:
                raise RelayoutError(
                    f"{path}:{node.lineno}: imports {', '.join(bad)} from {node.module}, which "
                    "goes away; import them from their module instead"
                )
        moved = [q in MOVES and not (node.module == "emkit" and a.name in PUBLIC_ALIASES)
                 for a, q in zip(node.names, qualified, strict=True)]
        if not any(moved):
            continue
        groups: dict[str, list[str]] = {}
        for alias, q, is_moved in zip(node.names, qualified, moved, strict=True):
            if is_moved:
                parent, _, leaf = MOVES[q].rpartition(".")
                local = alias.asname or alias.name
                name = leaf if local == leaf else f"{leaf} as {local}"
                groups.setdefault(parent, []).append(name)
            else:
                name = alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"
                groups.setdefault(map_text(node.module), []).append(name)
        first, last = node.lineno - 1, node.end_lineno - 1
        indent = re.match(r"\s*", lines[first]).group(0)
        head = lines[first][: node.col_offset]
        tail = lines[last][node.end_col_offset :]
        if head.strip() or (tail.strip() and not tail.strip().startswith("#")):
            raise RelayoutError(f"{path}:{node.lineno}: an import shares its line; split it first")
        comment = tail.strip()
        statements = [f"{indent}from {parent} import {', '.join(names)}"
                      for parent, names in groups.items()]
        if comment:
            statements = [f"{s}  {comment}" for s in statements]
        out[first] = (last, "\n".join(statements) + "\n")
    return out


def rewrite_python(path: Path, text: str) -> str:
    rewrites = import_rewrites(path, text)
    lines = text.splitlines(keepends=True)
    pieces, i = [], 0
    while i < len(lines):
        if i in rewrites:
            last, new = rewrites[i]
            pieces.append(new)
            i = last + 1
        else:
            pieces.append(map_text(lines[i]))
            i += 1
    return "".join(pieces)


def tracked_text_files(root: Path) -> list[Path]:
    files = []
    for rel in git(root, "ls-files").splitlines():
        path = Path(rel)
        if rel in SELF or not (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            continue
        if (root / path).is_file():
            files.append(root / path)
    return files


# --- step 4: moves ----------------------------------------------------------


def move_modules(root: Path) -> None:
    # The Gaussian distribution module becomes a package of the same name: move it
    # aside first, so that the folder can be made.
    aside = root / "src/emkit/distributions/_gaussian_moving.py"
    git(root, "mv", str(module_file(root, "emkit.distributions.gaussian")), str(aside))
    for old, new in MOVES.items():
        source = aside if old == "emkit.distributions.gaussian" else module_file(root, old)
        target = module_file(root, new)
        target.parent.mkdir(parents=True, exist_ok=True)
        git(root, "mv", str(source), str(target))
    for package, doc in NEW_PACKAGES.items():
        init = module_file(root, package, package=True)
        init.write_text(doc)
        git(root, "add", str(init))
    for package in REMOVED_PACKAGES:
        init = module_file(root, package, package=True)
        git(root, "rm", "-q", "-f", str(init))
        folder = init.parent
        left = [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        if left:
            raise RelayoutError(f"{folder} still holds {left}: move them first")
        # A folder left behind would still import, as a namespace package.
        shutil.rmtree(folder, ignore_errors=True)
    init = root / "src/emkit/__init__.py"
    text = init.read_text()
    for name, module in PUBLIC_ALIASES.items():
        parent, _, leaf = module.rpartition(".")
        # "as name" marks a re-export (ruff F401).
        line = f"from {parent} import {leaf} as {name}"
        anchor = "\n__version__"
        if anchor not in text:
            raise RelayoutError("src/emkit/__init__.py has no __version__ line to add after")
        text = text.replace(anchor, f"{line}  # public: emkit.{name}\n{anchor}", 1)
    init.write_text(text)
    layers = root / "tools/test_layers.py"
    if layers.is_file():
        git(root, "mv", str(layers), str(root / "tests/test_layers.py"))


# --- step 5: tidy and verify -------------------------------------------------


def ruff(root: Path, files: list[Path], ruff_cmd: str | None) -> None:
    if ruff_cmd is None or not files:
        return
    subprocess.run([ruff_cmd, "check", "--select", "I", "--fix", "--quiet",
                    *map(str, files)], cwd=root, check=False)


def import_everything(root: Path, python: str) -> None:
    names = sorted(module_name(root, p) for p in (root / "src/emkit").rglob("*.py"))
    code = "import importlib, sys\n" + "".join(
        f"importlib.import_module({n!r})\n" for n in names
    ) + "import emkit\nassert emkit.sources.open\nprint(len(sys.modules))\n"
    done = subprocess.run([python, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root / "src")})
    if done.returncode != 0:
        raise RelayoutError("importing the new package failed:\n" + done.stderr[-3000:])
    print(f"imported all {len(names)} modules of the new layout")


def leftovers(root: Path) -> list[str]:
    found = []
    for path in tracked_text_files(root):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if LEFTOVER.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="repository root (a clean git checkout)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run on a working tree with uncommitted changes")
    parser.add_argument("--ruff", default=shutil.which("ruff"),
                        help="ruff executable, to re-sort imports (default: from PATH)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to import the result with (default: this one)")
    parser.add_argument("--map", action="append", default=[], metavar="OLD=NEW",
                        help="one more move, e.g. emkit._foo=emkit.data._foo (repeatable), "
                             "for a module added since the table was written")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        for item in args.map:
            old, sep, new = item.partition("=")
            if not (sep and old.startswith("emkit.") and new.startswith("emkit.")):
                raise RelayoutError(f"--map wants emkit.OLD=emkit.NEW, got {item!r}")
            MOVES[old] = new
        NEW.update(new_modules())
        check_preconditions(root, args.allow_dirty)
        for path in sorted((root / "src/emkit").rglob("*.py")):
            text = path.read_text()
            if re.search(r"^\s*from\s+\.", text, re.MULTILINE):
                path.write_text(absolutise(root, path, text))
        changed = []
        for path in tracked_text_files(root):
            text = path.read_text()
            new = rewrite_python(path, text) if path.suffix == ".py" else map_text(text)
            if new != text:
                path.write_text(new)
                changed.append(path)
        print(f"rewrote references in {len(changed)} files")
        move_modules(root)
        print(f"moved {len(MOVES)} modules, made {len(NEW_PACKAGES)} packages")
        python_files = [p for p in tracked_text_files(root) if p.suffix == ".py"]
        ruff(root, python_files, args.ruff)
        import_everything(root, args.python)
    except RelayoutError as exc:
        print(f"relayout: {exc}", file=sys.stderr)
        return 1
    left = leftovers(root)
    if left:
        print("old names left (look at these by hand):\n  " + "\n  ".join(left))
    return 0


if __name__ == "__main__":
    sys.exit(main())
