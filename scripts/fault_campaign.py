"""The fault-injection campaign (:mod:`facetrace.evaluation.campaign`) on the embedded
default: seeded SIGKILLs during ingest, takedown, opt-out, retention, index rebuild and
index migration, each followed by a restart, the doctor and a re-run.

Usage (about 3 seconds a run on 2 cores on FAISS)::

    .venv/bin/python scripts/fault_campaign.py --runs 200 --seed 1 --json campaign.json
    .venv/bin/python scripts/milvus_server.py run -- sh -c \
        '.venv/bin/python scripts/fault_campaign.py --runs 200 --seed 1 \
         --milvus-uri "$FACETRACE_TEST_MILVUS_URI"'

A failing run is reproduced with ``--first RUN --runs 1 --seed SEED``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from facetrace.config import Settings
from facetrace.evaluation.campaign import Backend, Photos, RunResult, campaign, write_report
from facetrace.vision.analyzer import build_analyzer

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def fixture_photos() -> Photos:
    johns = FIXTURES / "johns"

    def jpgs(*names: str) -> list[Path]:
        return [p for n in names for p in sorted((johns / n).glob("*.jpg"))]

    fr = FIXTURES / "face_recognition"
    return Photos(
        kept=jpgs("John_Salley", "John_Savage")[1:],
        taken_down=jpgs("John_Schneider", "John_Shimkus"),
        expiring=[fr / "obama.jpg", fr / "biden.jpg", fr / "obama_and_biden.jpg"],
        new=johns / "John_Simm",
        opt_out=jpgs("John_Salley")[0],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="first run number")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument(
        "--milvus-uri", default=None, help="run on Milvus at this URI (default: FAISS)"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="facetrace-campaign-"))
    analyzer = build_analyzer(Settings(home=work / "models", workers=1))

    def show(r: RunResult) -> None:
        mark = "ok" if r.ok else "FAIL " + "; ".join(r.problems)
        print(
            f"run {r.run}: {r.command} killed at {r.kill_at}/{r.points} "
            f"({'killed' if r.killed else 'finished'}) {r.seconds:.1f}s {mark}",
            file=sys.stderr,
            flush=True,
        )

    report = campaign(
        args.runs,
        args.seed,
        work,
        fixture_photos(),
        analyzer,
        args.first,
        show,
        Backend(args.milvus_uri),
    )
    report["command"] = " ".join(["scripts/fault_campaign.py", *sys.argv[1:]])
    if args.json:
        write_report(report, args.json)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}, indent=2))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
