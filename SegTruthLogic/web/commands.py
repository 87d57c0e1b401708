"""``segtruth serve``: the web front end. ``add_commands(sub, command)`` registers it on the main parser.

It binds to 127.0.0.1 unless ``--host`` says otherwise: the app has no login, so whoever reaches the port
can read and change the cases. To work on a remote GPU server, tunnel the port instead
(``ssh -L 8080:127.0.0.1:8080 server``) and open http://127.0.0.1:8080 on the laptop.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from ..core.commands import Command
from ..core.errors import SegTruthError

INSTALL_HINT = "pip install 'trame-slicer[standalone]==2.0.0'"


def add_commands(sub, command: Command) -> None:
    p = command(
        "serve",
        "Annotate in a web browser with SegTruth's tools on trame-slicer (one person per server process).",
        cmd_serve,
    )
    p.add_argument(
        "cases",
        nargs="?",
        metavar="CASES",
        help="a folder of cases, a DICOM tree (each series a case, from its RTSTRUCT/SEG), a manifest "
        "(.csv/.json: case,image,segmentation) or one image; "
        "default: the sample chest CT, copied into --sample-dir",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--labels", help="label table (.json or .csv) every case uses: names, values, colors, terminology")
    p.add_argument("--device", default="auto", help="auto-segment device on the server: auto, cpu, cuda or mps")
    p.add_argument(
        "--sample-dir",
        default="segtruth-sample",
        help="where the sample case is copied and saved (default ./segtruth-sample)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from ..core.labels import LabelTable
    from .cases import SAMPLE_LABELS, read_web_cases, sample_cases

    try:
        import trame_slicer  # noqa: F401
    except ImportError:
        raise SegTruthError(f"segtruth serve needs trame-slicer: {INSTALL_HINT}.") from None
    if not 0 <= args.port <= 65535:
        raise SegTruthError(f"Port {args.port} is not a port number (0-65535).")
    if args.cases:
        cases = read_web_cases(args.cases)
        table_path = args.labels
        project = Path(args.cases) if Path(args.cases).is_dir() else Path(args.cases).parent
    else:
        cases = sample_cases(args.sample_dir)
        table_path = args.labels or SAMPLE_LABELS
        project = Path(args.sample_dir)
        print(f"serving the sample chest CT from {args.sample_dir}/ (saved files go there too)")
    table = LabelTable.read(table_path) if table_path else None
    if not _is_loopback(args.host):
        print(
            f"segtruth: warning: listening on {args.host}: anyone who can reach port {args.port} can read and change "
            "these cases (there is no login); prefer 127.0.0.1 with an SSH tunnel.",
            file=sys.stderr,
        )
    # trame would otherwise parse segtruth's own command line as its options.
    os.environ.setdefault("TRAME_ARGS", "")
    from .app import SegTruthWebApp

    app = SegTruthWebApp(cases, table, device=args.device, project=project)
    app.start(host=args.host, port=args.port)
    return 0
