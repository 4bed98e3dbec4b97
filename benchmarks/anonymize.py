"""Benchmark: de-identifying a folder of CT files, dicomflow_lab vs dicognito and deid.

Project: :class:`dicomflow_lab.anonymize.Anonymizer` with the Basic Profile (the full
PS3.15 Table E.1-1, keyed UID remapping, atomic writes keeping the Pixel Data bytes),
``anonymize_file`` over every file in one process; and ``Workspace.anonymize`` (the same
engine on 2 worker processes, plus the audit tables and the index of the written files).

Peers, on the same files in the same run:

- dicognito 0.19 as its command line drives it: one ``Anonymizer`` for the whole
  folder, per file ``pydicom.dcmread`` → ``anonymize`` → ``save_as`` into a new folder
  named by the new SOP Instance UID, behind its burned-in annotation guard (defaults:
  ``if-yes``, ``warn``). One process: dicognito has no parallel mode.
- deid 0.4.13 with its default recipe (``deid/data/deid.dicom``):
  ``replace_identifiers(files, deid=DeidRecipe(), save=True, output_folder=...)``, the
  recipe parsed once. The documented "get, update, put" flow also calls
  ``get_identifiers`` first, which reads every file once more; it is timed too. One
  process: deid has no parallel mode.

Then each tool de-identifies, once, the generated dataset that holds every attribute of
Table E.1-1 (``dicomflow_lab.anonymize.table_dataset.build()``, 656 attributes), through
its in-memory API (the dataset carries command-group attributes no Part-10 writer
accepts). The "misses" are the table attributes left with their original value although
the Basic Profile's action for them is not K: A compares whole values
(``table_dataset.unchanged_attributes``); B adds the sequences that are kept with
original values inside (a whole-value comparison calls a sequence changed once one
nested UID is remapped, even if its free text stays). The project is also checked under
each of the ten options' templates (there, the action under the option).

Prints files/s for each and the ratios (project / peer, higher is better), and the miss
counts. No DICOM value is printed. Target: >= 1.5x dicognito's files/s with 0 misses.

Usage::

    .venv/bin/python benchmarks/anonymize.py [--files 1500] [--size 512] [--repeat 3]
    .venv/bin/python benchmarks/anonymize.py --quick     # smoke test, well under a minute

The peers come with the ``bench`` extra: ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.metadata
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset

from dicomflow_lab.anonymize import (
    Action,
    Option,
    load_template,
    resolve_action,
    template_from_options,
)
from dicomflow_lab.core.sample import write_sample_study

#: A fixed demo key: the benchmark must be reproducible; never use it for real data.
KEY = "b3c1a0d2e4f60718293a4b5c6d7e8f90b3c1a0d2e4f60718293a4b5c6d7e8f90"
INSTALL_HINT = "pip install -e .[bench]"
PEERS = {"dicognito": "0.19.0", "deid": "0.4.13"}


# -- availability -------------------------------------------------------------------------
def _project_anonymizer() -> type | None:
    mod = importlib.import_module("dicomflow_lab.anonymize")
    cls = getattr(mod, "Anonymizer", None)
    if cls is None:
        with contextlib.suppress(ImportError):
            cls = importlib.import_module("dicomflow_lab.anonymize.engine").Anonymizer
    return cls


def _has_workspace_anonymize() -> bool:
    from dicomflow_lab.workspace import Workspace

    return callable(getattr(Workspace, "anonymize", None))


def _peer_version(name: str) -> str | None:
    try:
        importlib.import_module(name)
    except ImportError:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _table_module() -> Any | None:
    try:
        return importlib.import_module("dicomflow_lab.anonymize.table_dataset")
    except ImportError:
        return None


# -- the sides ---------------------------------------------------------------------------
@dataclass
class Side:
    """One way of de-identifying the corpus."""

    label: str
    short: str  # for the ratio lines
    run: Callable[[list[Path], Path], int]  # (files, out folder) -> files written
    peer: str | None = None  # "dicognito" / "deid" for peers, None for the project
    extra: bool = False  # timed and shown, but not used for the headline ratio


def _project_single(files: list[Path], out: Path) -> int:
    anonymizer = _project_anonymizer()("basic", key=KEY)
    out.mkdir(parents=True)
    written = 0
    for path in files:
        result = anonymizer.anonymize_file(path, out / path.name)
        written += result.quarantined is None
    return written


def _project_workspace(files: list[Path], out: Path) -> int:
    from dicomflow_lab.workspace import Workspace

    with Workspace(out.parent / f"{out.name}-ws") as ws:
        report = ws.anonymize(files, out=out, template="basic", key=KEY, workers=2, progress=False)
    if hasattr(report, "count"):
        return report.count("written")
    return len(report.df)


def _dicognito(files: list[Path], out: Path) -> int:
    from dicognito.anonymizer import Anonymizer
    from dicognito.filters import BurnedInAnnotationGuard, SaveToSOPInstanceUID
    from dicognito.pipeline import Pipeline

    # What `dicognito -o out files...` does, minus its summary table (quiet).
    anonymizer = Anonymizer()
    pipeline = Pipeline()
    pipeline.add(BurnedInAnnotationGuard("if-yes", "warn"))
    pipeline.add(SaveToSOPInstanceUID(str(out)))
    pipeline.before_any()
    for path in files:
        with pydicom.dcmread(path, force=False) as dataset:
            pipeline.before_each(dataset)
            anonymizer.anonymize(dataset)
            pipeline.after_each(dataset)
    pipeline.after_all()
    return sum(1 for _ in out.iterdir())


def _deid_quiet() -> None:
    from deid.logger import bot
    from deid.logger.message import ERROR

    bot.level = ERROR  # its default prints a line per file and action at debug level


def _deid_put(files: list[Path], out: Path) -> int:
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    _deid_quiet()
    out.mkdir(parents=True)
    recipe = DeidRecipe()  # no file: deid's default recipe, deid/data/deid.dicom
    written = replace_identifiers(
        [str(p) for p in files], deid=recipe, save=True, output_folder=str(out)
    )
    return len(written)


def _deid_get_put(files: list[Path], out: Path) -> int:
    from deid.config import DeidRecipe
    from deid.dicom import get_identifiers, replace_identifiers

    _deid_quiet()
    out.mkdir(parents=True)
    recipe = DeidRecipe()
    names = [str(p) for p in files]
    ids = get_identifiers(names)  # "get" step of deid's documented flow
    written = replace_identifiers(names, ids=ids, deid=recipe, save=True, output_folder=str(out))
    return len(written)


def _warm_imports(sides: list[Side]) -> None:
    """Import what each side uses before any clock starts."""
    names = {
        None: ["dicomflow_lab.anonymize.engine", "dicomflow_lab.workspace"],
        "dicognito": ["dicognito.anonymizer", "dicognito.filters", "dicognito.pipeline"],
        "deid": ["deid.config", "deid.dicom", "deid.logger"],
    }
    for side in sides:
        for name in names[side.peer]:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)


def _sides(args: argparse.Namespace) -> tuple[list[Side], list[str]]:
    sides: list[Side] = []
    notes: list[str] = []
    if _project_anonymizer() is None:
        notes.append(
            "project side skipped: dicomflow_lab.anonymize.Anonymizer is not there yet "
            "(anonymize/engine.py missing)"
        )
    else:
        sides.append(
            Side("dicomflow_lab Anonymizer, 1 process", "project 1 process", _project_single)
        )
        if _has_workspace_anonymize():
            sides.append(
                Side(
                    "dicomflow_lab ws.anonymize, workers=2",
                    "project ws 2 workers",
                    _project_workspace,
                    extra=True,
                )
            )
        else:
            notes.append("workspace side skipped: Workspace.anonymize is not there yet")
    if _peer_version("dicognito"):
        sides.append(
            Side("dicognito (its CLI's loop), 1 process", "dicognito", _dicognito, "dicognito")
        )
    else:
        notes.append(f"dicognito side skipped: not installed ({INSTALL_HINT})")
    if _peer_version("deid"):
        sides.append(Side("deid replace_identifiers, default recipe", "deid", _deid_put, "deid"))
        if not args.no_deid_get:
            sides.append(
                Side(
                    "deid get_identifiers + replace_identifiers",
                    "deid get+replace",
                    _deid_get_put,
                    "deid",
                    extra=True,
                )
            )
    else:
        notes.append(f"deid side skipped: not installed ({INSTALL_HINT})")
    return sides, notes


# -- misses on the 656-attribute dataset --------------------------------------------------
def _paths(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for elem in ds:
        path = f"{prefix}({elem.tag.group:04X},{elem.tag.element:04X})"
        yield path, elem
        if elem.VR == "SQ" and elem.value is not None:
            for i, item in enumerate(elem.value):
                yield from _paths(item, f"{path}[{i}].")


def _empty(value: Any) -> bool:
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def unchanged_fallback(original: Dataset, anonymized: Dataset, template: Any) -> list[str]:
    """Table attributes left with their original value where the action is not K.

    The benchmark's own equivalent of ``table_dataset.unchanged_attributes`` (used only
    when that helper is missing): every element of ``original`` (all levels) that the
    table lists, whose effective action under ``template`` (override, else the action
    under its options) is not K, and that ``anonymized`` holds at the same path with an
    equal, non-empty value. Returns the table rows' tags, sorted, each once.
    """
    after = dict(_paths(anonymized))
    options = tuple(getattr(template, "options", ()))
    rows: set[str] = set()
    from dicomflow_lab.anonymize import row_for

    for path, elem in _paths(original):
        row = row_for(elem.tag)
        if row is None or _empty(elem.value):
            continue
        override = template.override_for(elem.tag) if hasattr(template, "override_for") else None
        if override is not None:
            if str(getattr(override, "action", "")).lower().endswith("keep"):
                continue
        elif resolve_action(elem.tag, options) is Action.K:
            continue
        out = after.get(path)
        if out is not None and out.value == elem.value:
            rows.add(row.tag)
    return sorted(rows)


def nested_misses(original: Dataset, anonymized: Dataset, template: Any) -> list[str]:
    """Table sequences kept with original values inside, although their action is not K.

    A whole-value comparison calls a sequence changed as soon as one nested element
    changed, so a tool that remaps the UID inside an item and keeps the item's free text
    passes it. Here a top-level sequence row is at fault when the output still holds, at
    the same path inside it, a non-empty leaf equal to the original's: any leaf
    (well-known UIDs, and leaves a chosen option retains, aside) when the row's action
    removes or replaces the sequence (X, Z, D and the combined codes without U*), else
    (U*, C) only the leaves whose own action is neither K nor unlisted. Returns the rows'
    tags, sorted.
    """
    from dicomflow_lab.anonymize import row_for

    options = tuple(getattr(template, "options", ()))
    after = dict(_paths(anonymized))
    rows: set[str] = set()
    for elem in original:
        row = row_for(elem.tag)
        if elem.VR != "SQ" or row is None or not elem.value:
            continue
        action = resolve_action(elem.tag, options)
        if action is None or action is Action.K:
            continue
        whole = Action.U not in action.candidates and action is not Action.C
        top = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        for path, leaf in _paths(Dataset({elem.tag: elem})):
            if path == top or leaf.VR == "SQ" or _empty(leaf.value):
                continue
            if leaf.VR == "UI" and _well_known(str(leaf.value)):
                continue
            own = resolve_action(leaf.tag, options)
            if whole and own is Action.K and resolve_action(leaf.tag) is not Action.K:
                continue  # a chosen option retains it (e.g. a UID under Retain UIDs)
            if not whole and own in (None, Action.K):
                continue
            out = after.get(path)
            if out is not None and out.value == leaf.value:
                rows.add(row.tag)
                break
    return sorted(rows)


def _well_known(uid: str) -> bool:
    try:
        from dicomflow_lab.anonymize.uids import is_well_known_uid
    except ImportError:
        return uid in pydicom.uid.UID_dictionary
    return is_well_known_uid(uid)


def _table_misses(sides: list[Side]) -> list[str]:
    """Run each tool once on the full-table dataset; return the lines to print.

    Every tool gets its own deep copy of the dataset through its in-memory API (the same
    code its file loop runs): the dataset holds command (0000) and file meta (0002)
    attributes that no Part-10 file can carry in its main dataset.
    """
    mod = _table_module()
    if mod is None or not hasattr(mod, "build"):
        return ["misses: skipped, dicomflow_lab.anonymize.table_dataset.build() is not there yet"]
    original = mod.build()
    unchanged = getattr(mod, "unchanged_attributes", None)
    how = "table_dataset.unchanged_attributes" if unchanged else "the benchmark's own check"
    meta = getattr(original, "file_meta", None) or Dataset()
    n_attrs = len(set(_table_rows_in(original)) | set(_table_rows_in(meta)))

    def count(after: Dataset, template: Any) -> tuple[int, int]:
        if unchanged is not None:
            whole = {str(r).split()[0] for r in unchanged(original, after, template=template)}
        else:
            whole = set(unchanged_fallback(original, after, template))
        return len(whole), len(whole | set(nested_misses(original, after, template)))

    def attempt(run: Callable[[Dataset], Dataset | None], template: Any) -> str:
        try:
            with _silenced() as caught:
                after = run(_as_file_dataset(original))
            if after is None:
                return "quarantined"
            with _silenced():
                whole, strict = count(after, template)
            return f"{whole:>7}{strict:>9}{len(caught):>10}"
        except Exception as exc:  # a tool that crashes is a result, not a failure
            logging.getLogger(__name__).debug("%s", traceback.format_exc())
            return f"crashed: {type(exc).__name__} {_first_line(exc)}"

    basic = load_template("basic")
    lines = [
        f"misses on the full-table dataset ({n_attrs} table attributes present): table "
        "attributes left with the original value where the action is not K",
        f"  A = {how} (whole values); B = A + non-K sequences kept with original values inside",
        "  W = warnings the tool raised (pydicom's, about the values it read or wrote)",
        f"  {'':44}{'A':>7}{'B':>9}{'W':>10}",
    ]
    for label, run in _table_runners(sides):
        lines.append(f"  {label:<44}{attempt(run, basic)}")
    anonymizer_cls = _project_anonymizer()
    if anonymizer_cls is not None:
        lines.append("  dicomflow_lab, each option's template (template_from_options):")
        for option in Option:
            template = template_from_options(option)

            def run(ds: Dataset, template: Any = template) -> Dataset | None:
                return anonymizer_cls(template, key=KEY).anonymize(ds).dataset

            lines.append(f"    {option.value:<42}{attempt(run, template)}")
    return lines


def _as_file_dataset(ds: Dataset) -> FileDataset:
    """A deep copy of ``ds`` as a FileDataset, which is what every tool gets from dcmread.

    (deid's field cache hashes the dataset and only FileDataset is hashable there.)
    """
    ds = copy.deepcopy(ds)
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    return FileDataset("table-dataset.dcm", ds, file_meta=meta, preamble=b"\0" * 128)


def _first_line(exc: BaseException) -> str:
    # Exception texts may quote DICOM values: say only where it was raised (and from what).
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "(no traceback)"
    last = Path(frames[-1].filename)
    text = f"raised in {last.parent.name}/{last.name}:{frames[-1].lineno}"
    cause = exc.__cause__
    if cause is not None:
        text += f" (from {type(cause).__name__} {_first_line(cause)})"
    return text


def _table_rows_in(ds: Dataset) -> Iterator[str]:
    from dicomflow_lab.anonymize import row_for

    for _path, elem in _paths(ds):
        row = row_for(elem.tag)
        if row is not None:
            yield row.tag


@contextlib.contextmanager
def _silenced() -> Iterator[list[warnings.WarningMessage]]:
    # Peers print per-file chatter and warnings that may quote values: keep them out of
    # the report, and hand the warnings back to be counted.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        yield caught


def _table_runners(sides: list[Side]) -> list[tuple[str, Callable[[Dataset], Dataset | None]]]:
    runners: list[tuple[str, Callable[[Dataset], Dataset | None]]] = []
    anonymizer_cls = _project_anonymizer()
    if anonymizer_cls is not None:

        def project(ds: Dataset) -> Dataset | None:
            return anonymizer_cls("basic", key=KEY).anonymize(ds).dataset

        runners.append(("dicomflow_lab (basic)", project))
    peers = {s.peer for s in sides if s.peer}
    if "dicognito" in peers:

        def dicognito(ds: Dataset) -> Dataset | None:
            from dicognito.anonymizer import Anonymizer

            if not hasattr(ds, "file_meta"):
                ds.file_meta = FileMetaDataset()
            Anonymizer().anonymize(ds)
            return ds

        runners.append(("dicognito (defaults)", dicognito))
    if "deid" in peers:

        def deid(ds: Dataset) -> Dataset | None:
            from deid.config import DeidRecipe
            from deid.dicom import replace_identifiers

            _deid_quiet()
            return replace_identifiers([ds], deid=DeidRecipe())[0]

        runners.append(("deid (default recipe)", deid))
    return runners


# -- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=1500, help="CT slices in the corpus")
    parser.add_argument("--size", type=int, default=512, help="CT rows and columns")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-deid-get", action="store_true", help="skip timing deid's get_identifiers flow"
    )
    parser.add_argument("--no-misses", action="store_true", help="skip the full-table check")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 100 files of 128x128, 1 repetition"
    )
    parser.add_argument("--workdir", default=None, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    if args.quick:
        args.files, args.size, args.repeat, args.no_deid_get = 100, 128, 1, True
    if args.files < 1 or args.repeat < 1:
        parser.error("--files and --repeat must be >= 1")

    sides, notes = _sides(args)
    _warm_imports(sides)
    versions = {name: _peer_version(name) for name in PEERS}
    for name, want in PEERS.items():
        have = versions[name]
        if have is None:
            print(f"{name} is not installed; install the peers with: {INSTALL_HINT}")
        elif have != want:
            print(f"note: {name} {have} installed, the benchmark pins {want} ({INSTALL_HINT})")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="dfl-bench-anon-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, sides, notes, versions, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    sides: list[Side],
    notes: list[str],
    versions: dict[str, str | None],
    work: Path,
) -> int:
    started = time.perf_counter()
    src = work / "src"
    write_sample_study(
        src, seed=0, ct_slices=args.files, ct_size=args.size, mr_slices=1, mr_size=32
    )
    files = sorted((src / "1_CT").glob("*.dcm"))
    size = sum(f.stat().st_size for f in files)
    n = len(files)
    print(
        f"corpus: {n} CT files of {args.size}x{args.size}, {size / 1e6:.0f} MB, written in "
        f"{time.perf_counter() - started:.1f} s"
    )
    peers = ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items())
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"pydicom {pydicom.__version__}; {peers}"
    )
    for note in notes:
        print(f"note: {note}")

    if not sides:
        print("nothing to time: no side is available")
        return 2
    timings: dict[str, list[float]] = {s.label: [] for s in sides}
    failed: dict[str, str] = {}
    warned: dict[str, int] = {}
    for rep in range(args.repeat):
        # Rotate the order each repetition: on a shared machine, load drifts.
        for side in sides[rep % len(sides) :] + sides[: rep % len(sides)]:
            if side.label in failed:
                continue
            out = work / f"out-{len(timings[side.label])}-{sides.index(side)}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            try:
                with _silenced() as caught:
                    written = side.run(files, out)
            except Exception as exc:
                failed[side.label] = f"{type(exc).__name__}: {_first_line(exc)}"
                continue
            elapsed = time.perf_counter() - t0
            warned[side.label] = len(caught)
            if written != n:
                failed[side.label] = f"wrote {written} of {n} files"
            timings[side.label].append(elapsed)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(out.parent / f"{out.name}-ws", ignore_errors=True)

    print()
    print(f"repetitions: {args.repeat} (medians; the order of the sides rotates)")
    print(f"{'':46}{'median s':>10}{'files/s':>10}{'warnings':>10}")
    rate: dict[str, float] = {}
    for side in sides:
        if side.label in failed and not timings[side.label]:
            print(f"{side.label:<46}  failed: {failed[side.label]}")
            continue
        med = statistics.median(timings[side.label])
        rate[side.label] = n / med
        flag = f"   ({failed[side.label]})" if side.label in failed else ""
        print(f"{side.label:<46}{med:10.2f}{n / med:10.0f}{warned.get(side.label, 0):10d}{flag}")

    project = [s for s in sides if s.peer is None and s.label in rate]
    print()
    print("ratios, files/s (higher is better):")
    for mine in project:
        for peer_side in sides:
            if peer_side.peer is None or peer_side.label not in rate:
                continue
            ratio = rate[mine.label] / rate[peer_side.label]
            target = (
                "   (target >= 1.5x)" if peer_side.peer == "dicognito" and not mine.extra else ""
            )
            name = f"{mine.short} / {peer_side.short}"
            print(f"ratio {name:<40} {ratio:6.2f}x{target}")
    if not project:
        print("ratios: none (the project side is not available)")

    if not args.no_misses:
        print()
        for line in _table_misses(sides):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
