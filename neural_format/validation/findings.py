"""Findings and the validation report.

A :class:`Finding` is one broken (or bent) clause at one place in the file; a :class:`Report`
collects them and maps the highest severity to the exit code of ``neural-format validate``.

The contract (docs/format.md, "Exit codes"), the same for the API and the CLI:

============================  ======  ===============  =========  ==============  =====================
findings                      exit    exit ``--strict``  ``ok``   ``passed()``    ``passed(strict=True)``
============================  ======  ===============  =========  ==============  =====================
none                          0       0                True       True            True
best-practice only            0       1                True       True            False
warnings (maybe also b.-p.)   1       1                True       False           False
at least one error            2       2                False      False           False
============================  ======  ===============  =========  ==============  =====================

``ok`` answers "does the file conform (no MUST broken), so readers accept it"; ``passed`` answers
"does ``neural-format validate`` exit 0". Best-practice findings (NF-P001 provenance, NF-S004
extra objects) never fail a run unless strict: a clean file written without an encoder hash must
not break ``set -e`` scripts and CI.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..errors import NeuralFormatError
from .clauses import CLAUSES, SEVERITIES

EXIT_CODES = {None: 0, "best-practice": 0, "warning": 1, "error": 2}
STRICT_EXIT_CODES = {None: 0, "best-practice": 1, "warning": 1, "error": 2}
MAX_FINDINGS_PER_CODE = 50  # a broken column would otherwise yield one finding per row


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    location: str
    message: str
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        text = f"{self.severity.upper():<13} {self.code}  {self.location}: {self.message}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text


def finding(code: str, location: str, message: str, expected=None, found=None) -> Finding:
    """A finding for ``code`` at its clause's severity; ``expected``/``found`` are shown as text."""
    def text(value):
        return None if value is None else str(value)[:300]
    return Finding(code, CLAUSES[code].severity, location, message, text(expected), text(found))


def from_error(error: NeuralFormatError) -> Finding:
    """Turn a coded SDK error (e.g. raised by a reader guard) into a finding."""
    code = error.code if error.code in CLAUSES else "NF-F001"
    return finding(code, error.location, error.message, error.expected, error.found)


@dataclass
class Report:
    path: str
    findings: list[Finding] = field(default_factory=list)
    records: int = 0
    checks_run: int = 0
    skipped: list[str] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)

    def add(self, new) -> None:
        """Add a finding or an iterable of findings, dropping exact duplicates and capping per code."""
        if new is None:
            return
        items = [new] if isinstance(new, Finding) else list(new)
        seen = {(f.code, f.location, f.message) for f in self.findings}
        for item in items:
            key = (item.code, item.location, item.message)
            if key in seen:
                continue
            if sum(1 for f in self.findings if f.code == item.code) >= MAX_FINDINGS_PER_CODE:
                self.suppressed[item.code] = self.suppressed.get(item.code, 0) + 1
                continue
            seen.add(key)
            self.findings.append(item)

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when no finding is an error (warnings and best-practice findings allowed)."""
        return not self.errors

    @property
    def highest_severity(self) -> str | None:
        present = {f.severity for f in self.findings}
        for severity in SEVERITIES:
            if severity in present:
                return severity
        return None

    @property
    def exit_code(self) -> int:
        """``neural-format validate``'s exit status: 0 clean or best-practice only, 1 warnings, 2 errors."""
        return self.exit_code_for(strict=False)

    def exit_code_for(self, strict: bool = False) -> int:
        """The exit status; ``strict=True`` (``--strict``) also fails (1) on best-practice findings."""
        return (STRICT_EXIT_CODES if strict else EXIT_CODES)[self.highest_severity]

    def passed(self, strict: bool = False) -> bool:
        """True exactly when ``neural-format validate [--strict]`` exits 0: no errors, no warnings
        (and, when strict, no best-practice findings)."""
        return self.exit_code_for(strict) == 0

    def to_dict(self, strict: bool = False) -> dict:
        return {"path": self.path, "ok": self.ok, "passed": self.passed(strict), "strict": strict,
                "exit_code": self.exit_code_for(strict), "records": self.records,
                "checks_run": self.checks_run, "skipped": self.skipped, "suppressed": self.suppressed,
                "findings": [asdict(f) for f in self.findings]}

    def to_json(self, strict: bool = False) -> str:
        return json.dumps(self.to_dict(strict), indent=2, ensure_ascii=False)

    def to_text(self, strict: bool = False) -> str:
        lines = [f"{self.path}: {self.records} records, {self.checks_run} checks, "
                 f"{len(self.errors)} errors, {len(self.findings) - len(self.errors)} other findings"]
        order = {s: k for k, s in enumerate(SEVERITIES)}
        lines += [str(f) for f in sorted(self.findings, key=lambda f: (order[f.severity], f.code))]
        lines += [f"... {count} more {code} findings not shown" for code, count in self.suppressed.items()]
        lines += [f"skipped: {reason}" for reason in self.skipped]
        lines.append(self.verdict(strict))
        from ..errors import printable  # values from the file may hold terminal escape sequences
        return printable("\n".join(lines))

    def verdict(self, strict: bool = False) -> str:
        """The last line of the text report; it names what decided the exit status."""
        code = self.exit_code_for(strict)
        if code == 2:
            return "FAILED (errors; exit 2)"
        if code == 1:
            kind = "warnings" if self.highest_severity == "warning" else "best-practice findings, --strict"
            return f"FAILED ({kind}; exit 1)"
        if self.findings:
            return "OK with best-practice findings (exit 0; --strict fails on them)"
        return "OK"

    def __str__(self) -> str:
        return self.to_text()
