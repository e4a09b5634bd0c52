"""Radiology reports from text files, a CSV, or the IU X-ray archive shipped by torchxrayvision.

Every loader returns :class:`Report` objects whose ``sections`` hold the FINDINGS and IMPRESSION
text (:func:`extract_sections`); ``sections.text_for_model`` is what the report generator and the
KG extractor see. Reports whose findings and impression are both empty are kept by the text/CSV
loaders (pairing skips them with a reason) and skipped, with a :class:`Skipped` entry, by the
IU X-ray reader.
"""
from __future__ import annotations

import csv
import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from ..errors import REPORT_FORBIDDEN, REPORT_STRUCTURE, REPORT_UNREADABLE, BuildInputError
from .skipped import record_skip

# Headings that open a section. CONCLUSION is read as the impression; the others close the
# FINDINGS/IMPRESSION section before them and are not passed to the model.
_HEADINGS = {
    "findings": "findings", "finding": "findings", "impression": "impression",
    "impressions": "impression", "conclusion": "impression", "conclusions": "impression",
    "indication": None, "indications": None, "comparison": None, "history": None,
    "clinical history": None, "clinical information": None, "technique": None, "examination": None,
    "exam": None, "procedure": None, "reason for exam": None, "reason for examination": None,
    "recommendation": None, "recommendations": None, "notification": None,
}
_HEADING_RE = re.compile(
    r"(?i)(?:^|(?<=[\s.;]))(" + "|".join(sorted((re.escape(h) for h in _HEADINGS), key=len, reverse=True))
    + r")\s*:")
MAX_REPORT_BYTES = 1 << 20  # a report is a few kB; larger members of an archive are refused


def normalise_whitespace(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _join(*parts: str) -> str:
    out: list[str] = []
    for part in parts:
        part = normalise_whitespace(part)
        if not part:
            continue
        if out and out[-1][-1] not in ".!?;:":
            out[-1] += "."
        out.append(part)
    return " ".join(out)


@dataclass(frozen=True)
class Sections:
    """``findings`` and ``impression`` (whitespace-normalised, may be empty) and
    ``text_for_model``: findings then impression, or the whole text when it has no headings."""
    findings: str
    impression: str
    text_for_model: str

    @property
    def is_empty(self) -> bool:
        return not self.text_for_model


def extract_sections(text: str) -> Sections:
    """Split a report at headings such as ``FINDINGS:`` / ``IMPRESSION:`` (any case).

    A report without any recognised heading is taken whole as findings-free free text
    (``text_for_model`` = the normalised text). A report with headings but no FINDINGS or
    IMPRESSION section (e.g. only INDICATION) gives an empty ``text_for_model``.
    """
    text = text or ""
    matches = list(_HEADING_RE.finditer(text))
    if not matches:
        return Sections("", "", normalise_whitespace(text))
    parts: dict[str, list[str]] = {"findings": [], "impression": []}
    for k, match in enumerate(matches):
        kind = _HEADINGS[match.group(1).lower()]
        end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        if kind is not None:
            parts[kind].append(text[match.end():end])
    findings = _join(*parts["findings"])
    impression = _join(*parts["impression"])
    return Sections(findings, impression, _join(findings, impression))


@dataclass(frozen=True)
class Report:
    """One report. ``report_id`` is the file stem, CSV id or IU ``uId``; ``image_ids`` lists the
    image IDs the source links to the report (IU ``parentImage`` ids), ``mesh`` its MeSH major
    terms (assigned by the indexers, e.g. ``Opacity/lung/base/left/mild``) and ``mesh_automatic``
    its automatic ones (terms found in the text by automatic indexing, e.g. ``opacity``)."""
    report_id: str
    text: str
    sections: Sections
    source: str
    image_ids: tuple[str, ...] = ()
    mesh: tuple[str, ...] = field(default=())
    mesh_automatic: tuple[str, ...] = field(default=())

    @property
    def text_for_model(self) -> str:
        return self.sections.text_for_model


def report_from_text(report_id: str, text: str, source: str = "text") -> Report:
    return Report(str(report_id), text, extract_sections(text), source)


def load_reports_dir(directory, pattern: str = "*.txt", *, encoding: str = "utf-8") -> list[Report]:
    """One report per text file in ``directory`` (sorted), ID = file stem.

    Undecodable bytes are replaced (U+FFFD) rather than failing the whole directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BuildInputError(REPORT_UNREADABLE, "report directory does not exist", location=str(directory))
    reports = []
    for path in sorted(directory.glob(pattern)):
        if not path.is_file():
            continue
        text = path.read_bytes()[:MAX_REPORT_BYTES].decode(encoding, errors="replace")
        reports.append(report_from_text(path.stem, text, "text-file"))
    return reports


_ID_COLUMNS = ("id", "report_id", "case_id", "uid", "image_id", "study_id")
_TEXT_COLUMNS = ("report", "text", "report_text")


def load_reports_csv(path) -> list[Report]:
    """Reports from a CSV with an id column (``id``, ``report_id``, ``case_id``, ``uid``...) and
    either a whole-report column (``report``/``text``) or ``findings`` and/or ``impression``
    columns. Column names are matched case-insensitively. Raises ``NB-R003`` when no id or text
    column is found or an id repeats."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BuildInputError(REPORT_UNREADABLE, f"cannot read reports CSV: {exc.strerror or exc}",
                              location=str(path)) from None
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline=""))
    columns = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    id_col = next((columns[c] for c in _ID_COLUMNS if c in columns), None)
    text_col = next((columns[c] for c in _TEXT_COLUMNS if c in columns), None)
    findings_col, impression_col = columns.get("findings"), columns.get("impression")
    if id_col is None or (text_col is None and findings_col is None and impression_col is None):
        raise BuildInputError(REPORT_STRUCTURE, "reports CSV lacks an id or a text column", location=str(path),
                              expected=f"one of {_ID_COLUMNS} and one of {_TEXT_COLUMNS + ('findings', 'impression')}",
                              found=list(columns))
    reports, seen = [], set()
    for row_number, row in enumerate(reader, start=2):
        report_id = (row.get(id_col) or "").strip()
        if not report_id:
            raise BuildInputError(REPORT_STRUCTURE, "empty report id", location=f"{path}:{row_number}")
        if report_id in seen:
            raise BuildInputError(REPORT_STRUCTURE, "report id repeats", location=f"{path}:{row_number}",
                                  expected="unique ids", found=report_id)
        seen.add(report_id)
        if text_col is not None and (row.get(text_col) or "").strip():
            reports.append(report_from_text(report_id, row[text_col], "csv"))
            continue
        findings = normalise_whitespace(row.get(findings_col) or "") if findings_col else ""
        impression = normalise_whitespace(row.get(impression_col) or "") if impression_col else ""
        text = "\n".join(p for p in (f"FINDINGS: {findings}" if findings else "",
                                      f"IMPRESSION: {impression}" if impression else "") if p)
        reports.append(Report(report_id, text, Sections(findings, impression, _join(findings, impression)), "csv"))
    return reports


def load_reports(source) -> list[Report]:
    """Reports from a directory of ``*.txt`` files or a ``.csv`` file."""
    source = Path(source)
    if source.is_dir():
        return load_reports_dir(source)
    return load_reports_csv(source)


# --- IU X-ray (Open-i) archive -------------------------------------------------------------
def iu_xray_archive_path() -> Path:
    """Where torchxrayvision installs ``NLMCXR_reports.tgz`` (found without importing it)."""
    import importlib.util
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise BuildInputError(REPORT_UNREADABLE, "torchxrayvision is not installed",
                              location="torchxrayvision/data/NLMCXR_reports.tgz")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "NLMCXR_reports.tgz"


class _ForbiddenXML(Exception):
    pass


def parse_xml_defused(data: bytes, location: str):
    """Parse XML with expat, refusing any DTD, entity declaration or external reference.

    Internal DTDs are how entity-expansion ("billion laughs") and external-entity attacks start;
    radiology report XML needs none, so a document declaring one is refused (``NB-R002``).
    """
    import xml.etree.ElementTree as ET
    from xml.parsers import expat

    def forbid(*_args):
        raise _ForbiddenXML()

    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.UnparsedEntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid
    parser.StartElementHandler = lambda tag, attrs: builder.start(tag, attrs)
    parser.EndElementHandler = lambda tag: builder.end(tag)
    parser.CharacterDataHandler = lambda data: builder.data(data)
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except _ForbiddenXML:
        raise BuildInputError(REPORT_FORBIDDEN, "XML declares a DTD or entities", location=location,
                              expected="no <!DOCTYPE>/<!ENTITY>", found="a DTD or entity declaration") from None
    except expat.ExpatError as exc:
        raise BuildInputError(REPORT_UNREADABLE, f"malformed XML: {exc}", location=location) from None
    return builder.close()


def parse_iu_report(data: bytes, location: str) -> Report:
    """One IU X-ray ``ecgen-radiology/*.xml`` document -> :class:`Report`."""
    root = parse_xml_defused(data, location)
    uid = root.find("uId")
    report_id = (uid.get("id") if uid is not None else None) or Path(location).stem
    labelled = {}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().upper()
        labelled[label] = normalise_whitespace("".join(node.itertext()))
    findings, impression = labelled.get("FINDINGS", ""), labelled.get("IMPRESSION", "")
    text = "\n".join(f"{label}: {value}" for label, value in labelled.items() if value)
    images = tuple(node.get("id") for node in root.iter("parentImage") if node.get("id"))
    def terms(tag):
        return tuple(normalise_whitespace(node.text or "") for node in root.iter(tag) if (node.text or "").strip())

    return Report(report_id, text, Sections(findings, impression, _join(findings, impression)), "iu-xray",
                  images, terms("major"), terms("automatic"))


def load_iu_xray_reports(archive=None, *, limit: Optional[int] = None, skipped: Optional[list] = None) -> list[Report]:
    """Read the IU X-ray reports from ``NLMCXR_reports.tgz`` without extracting it to disk.

    Only regular ``.xml`` members up to 1 MiB are read (links and other members are ignored);
    reports with empty findings and impression are skipped and, when ``skipped`` is a list,
    recorded there as ``Skipped(id, "report", ...)``. ``limit`` stops after that many kept
    reports. Reports come in archive order of their numeric file names.
    """
    path = Path(archive) if archive is not None else iu_xray_archive_path()
    reports: list[Report] = []
    try:
        tar = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as exc:
        raise BuildInputError(REPORT_UNREADABLE, f"cannot open report archive: {exc}", location=str(path)) from None
    with tar:
        members = [m for m in tar.getmembers() if m.isreg() and m.name.endswith(".xml")]

        def order(member):
            stem = Path(member.name).stem
            return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)

        for member in sorted(members, key=order):
            where = f"{path}!{member.name}"
            if member.size > MAX_REPORT_BYTES:
                record_skip(skipped, member.name, "report", "archive member larger than 1 MiB", REPORT_STRUCTURE)
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                report = parse_iu_report(handle.read(), where)
            except BuildInputError as exc:
                record_skip(skipped, member.name, "report", exc.message, exc.code)
                continue
            if report.sections.is_empty:
                record_skip(skipped, report.report_id, "report", "empty findings and impression")
                continue
            reports.append(report)
            if limit is not None and len(reports) >= limit:
                break
    return reports


def reports_by_id(reports: Iterable[Report]) -> dict[str, Report]:
    return {r.report_id: r for r in reports}
