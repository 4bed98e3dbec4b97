"""The ``dicomflow-lab`` command: index, info, sql, anonymize, sample and lab.

Written like pynetdicom's apps (``_setup_argparser()`` and ``main(args=None)``) so that
tests call :func:`main` in-process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _setup_argparser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomflow-lab",
        description="A Jupyter-native DICOM workbench: index, inspect and query DICOM files.",
    )
    parser.add_argument(
        "--workspace",
        "-w",
        metavar="DIR",
        help="workspace folder (default: $DICOMFLOW_HOME or ~/.dicomflow_lab)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index files, folders or DICOMDIRs into the workspace")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--workers", type=int, default=None, help="header-parsing processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--errors", action="store_true", help="list the files that failed")

    p = sub.add_parser("info", help="print a readable dump of a DICOM file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the header as JSON")
    p.add_argument("--meta", action="store_true", help="include the file meta group")

    p = sub.add_parser("sql", help="run SQL on the workspace database")
    p.add_argument("query", metavar="SQL")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--max-rows", type=int, default=100, help="rows to print (table only)")

    p = sub.add_parser(
        "anonymize",
        help="de-identify files (PS3.15) into a new folder",
        description=(
            "De-identify a file, folder, DICOMDIR or indexed Study/Series UID into OUT. The key "
            "is read from the environment variable named by --key-env (default "
            "DICOMFLOW_ANON_KEY) or from --key-file, never from the command line (where "
            "other users could see it in the process list)."
        ),
    )
    p.add_argument("selection", metavar="SOURCE")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--template", "-t", default="basic", help="built-in name or JSON file")
    p.add_argument("--key-env", default="DICOMFLOW_ANON_KEY", metavar="NAME")
    p.add_argument("--key-file", default=None, metavar="FILE")
    p.add_argument("--patient-map", default=None, metavar="CSV")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--verify", action="store_true", help="run the independent verification")
    p.add_argument("--overwrite", action="store_true", help="replace differing output files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("sample", help="write the deterministic sample study")
    p.add_argument("path", nargs="?", default=None, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("lab", help="open JupyterLab on the quickstart notebook")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument(
        "--notebook-dir",
        default=None,
        metavar="DIR",
        help="where to keep the notebooks (default: the repository's notebooks/)",
    )
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    args : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the command failed, 2 for usage errors.
    """
    parser = _setup_argparser()
    ns = parser.parse_args(args)
    from dicomflow_lab.errors import DicomflowError

    try:
        return int(_COMMANDS[ns.command](ns) or 0)
    except DicomflowError as exc:
        print(f"dicomflow-lab {ns.command}: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"dicomflow-lab {ns.command}: {exc}", file=sys.stderr)
        return 1


def _workspace(ns: argparse.Namespace):
    from dicomflow_lab.workspace import Workspace

    return Workspace(ns.workspace)


def _cmd_index(ns: argparse.Namespace) -> int:
    with _workspace(ns) as ws:
        report = ws.index(*ns.paths, workers=ns.workers, progress=not ns.no_progress)
        print(report)
        if ns.errors and report.errors:
            errors = ws.index_errors()
            for row in errors.itertuples():
                print(f"  [{row.kind}] {row.file_path}: {row.reason}")
    return 0


def _cmd_info(ns: argparse.Namespace) -> int:
    import orjson

    from dicomflow_lab.core.dataset import header_to_dict, read_header

    ds = read_header(ns.file)
    if ns.json:
        data = header_to_dict(ds, include_meta=ns.meta)
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if ns.meta and getattr(ds, "file_meta", None):
        print(ds.file_meta)
        print()
    print(ds)
    return 0


def _cmd_sql(ns: argparse.Namespace) -> int:
    import pandas as pd

    with _workspace(ns) as ws:
        frame = ws.sql(ns.query)
    if ns.csv:
        frame.to_csv(sys.stdout, index=False)
    elif frame.empty and not len(frame.columns):
        print("OK")
    else:
        with pd.option_context("display.max_rows", ns.max_rows, "display.width", 200):
            print(frame.to_string(max_rows=ns.max_rows, index=False))
    return 0


def _anonymization_key(ns: argparse.Namespace) -> str:
    from dicomflow_lab.errors import AnonymizationError

    if ns.key_file:
        key = Path(ns.key_file).read_text("utf-8").strip()
    else:
        key = os.environ.get(ns.key_env, "")
    if not key:
        where = f"the file {ns.key_file}" if ns.key_file else f"${ns.key_env}"
        raise AnonymizationError(
            f"no key in {where}: set it (e.g. export {ns.key_env}=$(python -c "
            "'import dicomflow_lab as d; print(d.anonymize.new_key())')) and keep it safe"
        )
    return key


def _cmd_anonymize(ns: argparse.Namespace) -> int:
    with _workspace(ns) as ws:
        report = ws.anonymize(
            ns.selection,
            ns.out,
            template=ns.template,
            key=_anonymization_key(ns),
            patient_map=ns.patient_map,
            workers=ns.workers,
            verify=ns.verify,
            progress=not ns.no_progress,
            overwrite=ns.overwrite,
        )
        print(report.summary())
        problems = report.df[report.df["status"].isin(["quarantined", "failed"])]
        for row in problems.itertuples():
            print(f"  [{row.status}] {row.file}: {row.reason}")
        if report.verification is not None and not report.verification.empty:
            for row in report.verification.itertuples():
                print(f"  [residual {row.check}] {row.file} {row.location}: {row.detail}")
            return 1
    return 1 if report.failed else 0


def _cmd_sample(ns: argparse.Namespace) -> int:
    from dicomflow_lab import data

    print(data.sample_study(ns.path, seed=ns.seed))
    return 0


def _notebooks_dir(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1] / "notebooks"
    if (repo / "quickstart.ipynb").is_file():
        return repo
    from dicomflow_lab._paths import default_home

    target = default_home() / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    packaged = Path(__file__).resolve().parent / "_notebooks" / "quickstart.ipynb"
    if packaged.is_file() and not (target / "quickstart.ipynb").exists():
        shutil.copy2(packaged, target / "quickstart.ipynb")
    return target


def _cmd_lab(ns: argparse.Namespace) -> int:
    from dicomflow_lab import data

    folder = _notebooks_dir(ns.notebook_dir)
    if not (folder / "quickstart.ipynb").is_file():
        print(f"dicomflow-lab lab: no quickstart.ipynb in {folder}", file=sys.stderr)
        return 1
    print("Preparing the sample study (first run only)...", flush=True)
    print(f"Sample study: {data.sample_study()}", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        "--LabApp.default_url=/lab/tree/quickstart.ipynb",
    ]
    if ns.port:
        cmd.append(f"--port={ns.port}")
    if ns.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return subprocess.call(cmd)


_COMMANDS = {
    "anonymize": _cmd_anonymize,
    "index": _cmd_index,
    "info": _cmd_info,
    "sql": _cmd_sql,
    "sample": _cmd_sample,
    "lab": _cmd_lab,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
