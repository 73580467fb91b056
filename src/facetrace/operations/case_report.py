"""The case report as a PDF (fpdf2, its built-in fonts: no font files, Latin-1 text).

:func:`render` lays out a :class:`~facetrace.operations.cases.CaseRecord`; what goes in
it, and the auditing of it, is :func:`facetrace.operations.cases.report`'s. Text the
built-in fonts cannot draw is transliterated where it can be and shown as ``?`` where
it cannot, so any case ID, reason, name or URL renders.
"""

from __future__ import annotations

import io
import shlex
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facetrace.operations.cases import CaseMatch, CaseRecord, CaseSearch

TITLE = "facetrace case report"
DELETED = "deleted since the search"
_FONT = "helvetica"
_MONO = "courier"


_PUNCTUATION = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
    | {"\u2026": "...", "\u20ac": "EUR", "\u2212": "-"}
)


def latin1(text: object) -> str:
    """``text`` in Latin-1, which the built-in PDF fonts draw: accents kept where
    Latin-1 has them, others dropped, typographic quotes and dashes made plain,
    anything else ``?``."""
    out = []
    for char in str(text).translate(_PUNCTUATION):
        if char.isprintable() and ord(char) < 256:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
        kept = "".join(c for c in base if c.isprintable())
        out.append(kept or "?")
    return "".join(out)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def _rate(value: float | None) -> str:
    return f"{value:.1e}" if value is not None else "n/a"


def render(
    record: CaseRecord,
    *,
    organisation: str,
    generated_at: datetime,
    generated_by: str,
    thumbnails: Mapping[int, bytes] | None = None,
) -> bytes:
    """The report as PDF bytes. ``thumbnails``: JPEG bytes by face id, drawn beside
    the matches (None or empty: no picture column)."""
    from fpdf import FPDF

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(_FONT, "", 7)
            self.cell(
                0,
                5,
                latin1(f"{TITLE}, case {record.case_id}: page {self.page_no()}/{{nb}}"),
                align="C",
            )

    pdf = _Pdf(format="A4")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(True, 16)
    pdf.set_title(latin1(f"{TITLE}: {record.case_id}"))
    pdf.set_creator("facetrace")
    pdf.add_page()
    _header(pdf, record, organisation, generated_at, generated_by)
    _heading(pdf, f"Searches ({len(record.searches)})")
    if not record.searches:
        _line(pdf, "No search is recorded in this case.")
    for n, search in enumerate(record.searches, 1):
        _search(pdf, n, search, thumbnails or {})
    _confirmations(pdf, record)
    _audit(pdf, record)
    return bytes(pdf.output())


# --- sections --------------------------------------------------------------------------


def _heading(pdf: Any, text: str) -> None:
    pdf.ln(3)
    pdf.set_font(_FONT, "B", 12)
    pdf.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, "", 9)


def _line(pdf: Any, text: str, *, style: str = "", size: float = 9, mono: bool = False) -> None:
    pdf.set_font(_MONO if mono else _FONT, style, size)
    pdf.multi_cell(0, size * 0.5, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, "", 9)


def _header(
    pdf: Any, record: CaseRecord, organisation: str, generated_at: datetime, generated_by: str
) -> None:
    pdf.set_font(_FONT, "B", 16)
    pdf.cell(0, 9, TITLE, new_x="LMARGIN", new_y="NEXT")
    _line(pdf, f"Case ID: {record.case_id}", style="B", size=11)
    _line(pdf, f"Organisation: {organisation}")
    _line(pdf, f"Generated at {_when(generated_at)} by {generated_by}")
    _line(
        pdf,
        f"{len(record.searches)} search(es), {len(record.confirmations)} confirmation(s)",
    )
    pdf.ln(2)
    _line(pdf, record.NOTICE, style="B")
    _line(
        pdf,
        "A probe photo is never kept: each search names it by its SHA-256. A match's "
        "false-match rate is the chance that a stranger's face is at least this close "
        "(from the model's calibration); its expected false matches are that rate times "
        "the number of faces searched.",
        size=8,
    )


def _search(pdf: Any, n: int, search: CaseSearch, thumbnails: Mapping[int, bytes]) -> None:
    pdf.ln(2)
    _line(pdf, f"Search {n}: {_when(search.at)} by {search.actor}", style="B", size=10)
    _line(pdf, f"Reason: {search.reason}")
    _line(pdf, f"Probe SHA-256: {search.probe_sha256}", mono=True, size=8)
    _line(
        pdf,
        f"Probe faces: {search.probe_faces}; gallery searched: {search.gallery_size} faces; "
        f"audit entry {search.seq}",
    )
    if not search.matches:
        _line(pdf, "No match.")
        return
    pdf.ln(1)
    _matches(pdf, search.matches, thumbnails)


def _matches(pdf: Any, matches: tuple[CaseMatch, ...], thumbnails: Mapping[int, bytes]) -> None:
    pictures = bool(thumbnails)
    widths = (12, 12, 15, 18, 20, 50, 35) if pictures else (12, 15, 20, 22, 60, 40)
    heads = ("face", "distance", "false-match rate", "expected false matches", "source", "found")
    pdf.set_font(_FONT, "", 8)
    with pdf.table(
        col_widths=widths, text_align="LEFT", line_height=4, first_row_as_headings=True
    ) as table:
        row = table.row()
        if pictures:
            row.cell("")
        for head in heads:
            row.cell(head)
        for m in matches:
            detail = _sightings(m)
            row = table.row()
            if pictures:
                data = thumbnails.get(m.face_id)
                span = 2 if detail else 1
                if data is not None:
                    row.cell(img=io.BytesIO(data), img_fill_width=False, rowspan=span)
                else:
                    row.cell("", rowspan=span)
            row.cell(str(m.face_id))
            row.cell(f"{m.distance:.3f}")
            row.cell(_rate(m.false_match_rate))
            row.cell(_rate(m.expected_false_matches))
            if not m.present:
                row.cell(DELETED, colspan=2)
                continue
            first = m.provenance[0] if m.provenance else None
            row.cell(latin1(first.source) if first else "")
            row.cell(_when(first.collected_at) if first else "")
            if detail:
                table.row().cell(latin1(detail), colspan=len(heads))
    pdf.set_font(_FONT, "", 9)


def _sightings(m: CaseMatch) -> str:
    """Where the match's photo was found: its URL or path, and page, per sighting."""
    lines = []
    for i, p in enumerate(m.provenance):
        line = f"URL: {p.origin}" + (f"  page: {p.page_url}" if p.page_url else "")
        if i:
            line = f"also in {p.source}, found {_when(p.collected_at)}: {line}"
        lines.append(line)
    return "\n".join(lines)


def _confirmations(pdf: Any, record: CaseRecord) -> None:
    _heading(pdf, f"Confirmations ({len(record.confirmations)})")
    if not record.confirmations:
        _line(
            pdf,
            "None: no match of this case was proposed as an identification (a match is "
            "an identification only once two different users agree).",
        )
        return
    pdf.set_font(_FONT, "", 8)
    with pdf.table(col_widths=(12, 20, 35, 32, 35, 32), text_align="LEFT", line_height=4) as table:
        row = table.row()
        for head in ("face", "status", "proposed by", "proposed at", "confirmed by", "at"):
            row.cell(head)
        for c in record.confirmations:
            row = table.row()
            row.cell(str(c.face_id))
            row.cell(c.status.value)
            row.cell(latin1(c.proposed_by))
            row.cell(_when(c.proposed_at))
            row.cell(latin1(c.confirmed_by or ""))
            row.cell(_when(c.confirmed_at))
    pdf.set_font(_FONT, "", 9)


def _audit(pdf: Any, record: CaseRecord) -> None:
    head, check = record.head, record.verify
    _heading(pdf, "Audit trail")
    _line(
        pdf,
        f"Chain head: {head.count} entries, hash {head.hash}. The head includes this "
        "report's own entry (case.report).",
    )
    pdf.ln(1)
    if check.ok:
        _line(pdf, f"Audit chain verified: {check.entries} entries, unbroken.", style="B")
    else:
        _line(pdf, "AUDIT CHAIN BROKEN: this record may have been edited.", style="B", size=11)
        for problem in check.problems:
            _line(pdf, f"- {problem}", size=8)
    _heading(pdf, "How to check")
    _line(
        pdf,
        "Every audit entry is canonical JSON holding the SHA-256 of the entry before it; "
        "changing, deleting or reordering one breaks the chain. Keep the head above "
        "outside the system; to check later that the record up to this report is "
        "intact, save it as head.json:",
    )
    _line(pdf, f'{{"count": {head.count}, "hash": "{head.hash}"}}', mono=True, size=7)
    _line(pdf, "and run (an auditor's key; exit status 3 and TAMPERED lines if not intact):")
    _line(pdf, "facetrace audit verify --anchor head.json", mono=True, size=8)
    _line(pdf, "or ask the API:")
    _line(
        pdf,
        f"GET /v1/audit/verify?anchor_count={head.count}&anchor_hash={head.hash}",
        mono=True,
        size=7,
    )
    _line(
        pdf,
        "This case's entries, with their hashes and links (each search above names its "
        "audit entry):",
    )
    _line(pdf, f"facetrace audit export --case {shlex.quote(record.case_id)}", mono=True, size=8)
