"""Spec section 7, NF-C007: ``collection_sha256`` computed by the spec's steps 1 to 4 alone.

The steps are implemented here from the text (no ``json.dumps``, no pydantic) and must give the
SDK's digest for manifests that leave ``format`` out, write ``created`` in other RFC 3339 forms,
omit optional entry fields or hold non-ASCII and control characters.
"""
import hashlib
import json
import re
from pathlib import Path

import pytest

from neural_format.collections.manifest import collection_sha256, parse_manifest

ROOT = Path(__file__).resolve().parents[1]
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def canonical_created(text: str) -> str:
    """Step 2."""
    date, time, fraction, offset = _RFC3339.match(text).groups()
    fraction = (fraction or "")[:6].ljust(6, "0")
    out = f"{date}T{time}" + (f".{fraction}" if int(fraction) else "")
    return out + ("Z" if offset in ("Z", "z", "+00:00", "-00:00") else offset)


def serialise(value) -> str:
    """Step 3."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{serialise(k)}:{serialise(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(serialise(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        raise AssertionError("the hashed object holds no booleans or nulls")
    if isinstance(value, int):
        return str(value)
    return '"' + "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in value) + '"'


def spec_collection_sha256(manifest_text: str) -> str:
    """Steps 1 to 4."""
    parsed = json.loads(manifest_text)
    entry_fields = ("path", "records", "ids_sha256", "format_version", "first_id", "last_id", "file_sha256")
    hashed = {
        "format": parsed.get("format") or "neural-graph-manifest",
        "format_version": parsed["format_version"],
        "collection_id": parsed["collection_id"],
        "created": canonical_created(parsed["created"]),
        "shards": [{k: e[k] for k in entry_fields if e.get(k) is not None} for e in parsed["shards"]],
    }
    return hashlib.sha256(serialise(hashed).encode("utf-8")).hexdigest()


ENTRY = {"path": "shard-00000-of-00001.h5", "records": 3, "first_id": "study-0", "last_id": "study-2",
         "ids_sha256": "1" * 64, "file_sha256": "2" * 64, "format_version": "1.1.0"}


def _manifest(**changes) -> dict:
    manifest = {"format": "neural-graph-manifest", "format_version": "1.1.0",
                "collection_id": "0123456789abcdef0123456789abcdef", "created": "2026-01-01T00:00:00Z",
                "shards": [dict(ENTRY)], "collection_sha256": "0" * 64}
    manifest.update(changes)
    return {k: v for k, v in manifest.items() if v is not None}


@pytest.mark.parametrize("changes", [
    {},
    {"format": None},                                       # format left out: its default is hashed
    {"created": "2026-01-01T00:00:00+00:00"},
    {"created": "2026-01-01T00:00:00.000Z"},
    {"created": "2026-01-01T00:00:00-00:00"},
    {"created": "2026-01-01T00:00:00.5Z"},
    {"created": "2026-01-01T00:00:00.1234567+00:00"},       # truncated to microseconds
    {"created": "2026-01-01T01:00:00+01:00"},               # not converted to UTC
    {"created": "2026-01-01t01:00:00-05:30"},
    {"shards": [{k: v for k, v in ENTRY.items() if k not in ("first_id", "last_id", "file_sha256")}]},
    {"shards": [{**ENTRY, "first_id": "étude \"0\"\\\n\t\x01\x7f 肺"}, {**ENTRY, "path": "b.h5", "file_sha256": None}]},
    {"shards": []},
])
def test_spec_steps_give_the_sdk_digest(changes):
    text = json.dumps(_manifest(**changes), ensure_ascii=False)
    manifest = parse_manifest(text.encode("utf-8"))
    assert spec_collection_sha256(text) == collection_sha256(manifest)


def test_equal_instants_in_other_forms_hash_alike_and_other_instants_do_not():
    digests = {spec_collection_sha256(json.dumps(_manifest(created=c)))
               for c in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000Z")}
    assert len(digests) == 1
    assert spec_collection_sha256(json.dumps(_manifest(created="2026-01-01T01:00:00+01:00"))) not in digests


@pytest.mark.parametrize("manifest", sorted((ROOT / "spec").rglob("manifest.json")),
                         ids=lambda p: str(p.parent.relative_to(ROOT / "spec")))
def test_spec_steps_reproduce_every_committed_manifest(manifest):
    """Golden and conformance manifests: the stored digest is what the spec's steps give
    (except the NF-C001 fixture, which is not JSON, and the NF-C007 one, whose digest is bent)."""
    text = manifest.read_text(encoding="utf-8")
    if manifest.parent.name in ("NF-C001.invalid", "NF-C007.invalid"):
        pytest.skip("bent on purpose")
    assert spec_collection_sha256(text) == json.loads(text)["collection_sha256"]
