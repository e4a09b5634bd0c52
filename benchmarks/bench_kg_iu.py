"""The rule-based KG extractor against the MeSH terms of all IU X-ray reports, per finding.

    .venv/bin/python benchmarks/bench_kg_iu.py [--resamples 2000] [--seed 0] [--json out.json]
                                               [--disagreements N] [--extractor rules]
                                               [--adjudication benchmarks/data/iu_mesh_adjudication.csv]

Reads every ``ecgen-radiology/*.xml`` member of torchxrayvision's ``NLMCXR_reports.tgz`` (found
on disk without importing torchxrayvision, parsed with the standard library's expat through
:func:`neural_builders.inputs.reports.parse_iu_report`), runs the extractor over each report's
findings + impression (the text the NEURAL pipeline feeds it), and compares, per finding and per
report, "the extractor says the report has the finding" with "the report's MeSH terms (major or
automatic) name the finding".

* **Reference.** IU indexers assign MeSH *major* terms to positive findings
  (``Opacity/lung/base/left/mild``); *automatic* terms are concepts an automatic indexer found
  in the text (``opacity``). Negated findings are not indexed (the 1,391 reports indexed
  ``normal`` carry no other term), hedged ones sometimes are. :data:`MESH` is the mapping.
* **Prediction.** A report's assertion for a finding is the strongest over the extractor's
  ``finding`` entities whose text is one of :data:`SURFACE` [finding] (present > uncertain >
  absent > not mentioned). ``--positive present+uncertain`` (default) counts a hedged finding
  as present, ``--positive present`` does not; the script prints both.
* **Adjudication.** ``benchmarks/data/iu_mesh_adjudication.csv`` holds labels read by hand
  (report id, finding, MeSH label, the extractor's assertion when read, the adjudicated label,
  a reason class, the deciding phrase). The convention: a finding the report states present or
  hedged (uncertain, a differential) is positive, a negated or unmentioned one is negative; the
  rows correct MeSH where it departs from that (and document, where MeSH is kept, why the
  extractor disagrees). Figures are given against raw MeSH and against MeSH corrected by the
  table, side by side, with the number of changed labels per finding.
* **Held-out part.** One report in five, by a salted SHA-256 of its id (:func:`held_out`);
  figures per part. Rules written from then on are to be read off development reports only:
  ``--disagreements`` prints development reports unless ``--part held-out|all`` is given.
* **Negation probe.** Every "no/without (qualifier) <finding>" mention must come out absent.
* **Figures.** Precision, recall and F1 (scikit-learn) with 95 % percentile bootstrap intervals
  over reports (``scipy.stats.bootstrap``, paired, seeded), and the confusion table of the
  extractor's assertion on the reports whose MeSH terms name the finding, and on the others.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

# Finding -> (MeSH major heading(s), i.e. the first "/"-part of a major term; automatic-term
# pattern). Headings compare case-insensitively; the automatic pattern is a regex searched in
# the lower-cased term. "Cardiac Shadow/enlarged" is the indexers' other way of coding cardiomegaly.
MESH = {
    "pneumonia": ({"pneumonia", "pneumonia, viral", "pneumonia, mycoplasma"}, r"\bpneumon(ia|itis)"),
    "pleural effusion": ({"pleural effusion"}, r"^(?!.*pericardial).*\beffusions?\b"),
    "pneumothorax": ({"pneumothorax", "hydropneumothorax", "hemopneumothorax"}, r"pneumothora"),
    "consolidation": ({"consolidation"}, r"\bconsolidation"),
    "opacity/infiltrate": ({"opacity", "infiltrate", "airspace disease"}, r"^(opacity|opacities|infiltrates?)$"),
    "atelectasis": ({"pulmonary atelectasis"}, r"atelecta"),
    "cardiomegaly": ({"cardiomegaly", "cardiac shadow/enlarged"}, r"^(cardiomegaly|enlarged heart)$"),
    "edema": ({"pulmonary edema"}, r"^(?!.*subcutaneous).*\bedemas?\b"),
    "nodule": ({"nodule", "multiple pulmonary nodules", "solitary pulmonary nodule"}, r"\bnodules?\b"),
}

# Finding -> the extractor's surface forms (lexicon phrases of type "finding") that name it.
SURFACE = {
    "pneumonia": {"pneumonia", "pneumonias", "bronchopneumonia", "pneumonitis"},
    "pleural effusion": {"pleural effusion", "pleural effusions", "effusion", "effusions", "pleural fluid"},
    "pneumothorax": {"pneumothorax", "pneumothoraces", "hydropneumothorax", "pleural air collection"},
    "consolidation": {"consolidation", "consolidations", "consolidative opacity", "airspace consolidation"},
    "opacity/infiltrate": {"opacity", "opacities", "opacification", "airspace opacity", "airspace opacities",
                           "air space opacity", "air space opacities", "airspace disease", "air space disease",
                           "infiltrate", "infiltrates", "infiltration", "consolidative opacity",
                           "interstitial opacities", "reticular opacities", "nodular opacity", "nodular opacities",
                           "haziness", "opaque", "opaque area", "opaque areas"},
    "atelectasis": {"atelectasis", "atelectatic changes", "atelectatic change", "collapse"},
    "cardiomegaly": {"cardiomegaly", "cardiac enlargement"},
    "edema": {"edema", "pulmonary edema", "interstitial edema"},
    "nodule": {"nodule", "nodules"},
}
# "The heart is enlarged": the KG holds modifier "enlarged" -modifies-> anatomy "heart"; that
# statement is cardiomegaly (with the modifier's assertion), as is finding "enlargement"
# -located_at-> "cardiac silhouette".
CARDIAC = {"heart", "heart size", "cardiac silhouette", "cardiomediastinal silhouette", "cardiac contours"}
ENLARGED = {"enlarged", "increased", "large"}

RANK = {"absent": 1, "uncertain": 2, "present": 3}
CLASSES = ("present", "uncertain", "absent", "none")
FIVE = ("pneumonia", "pleural effusion", "pneumothorax", "consolidation", "opacity/infiltrate")


def mesh_labels(major, automatic) -> dict[str, bool]:
    heads = [m.lower() for m in major]
    out = {}
    for finding, (headings, pattern) in MESH.items():
        hit = any(h.split("/")[0] in headings or "/".join(h.split("/")[:2]) in headings for h in heads)
        hit = hit or any(re.search(pattern, a.lower()) for a in automatic)
        out[finding] = hit
    return out


def report_assertions(kg) -> dict[str, str]:
    """The strongest assertion per finding in one knowledge graph ("none" when not mentioned)."""
    best = {f: 0 for f in SURFACE}
    for entity in kg.entities:
        if entity.type != "finding":
            continue
        for finding, forms in SURFACE.items():
            if entity.text in forms:
                best[finding] = max(best[finding], RANK[entity.assertion])
    for rel in kg.relations:
        source, target = kg.entities[rel.source], kg.entities[rel.target]
        if target.text in CARDIAC and ((rel.type == "modifies" and source.text in ENLARGED)
                                       or (rel.type == "located_at" and source.text == "enlargement")):
            best["cardiomegaly"] = max(best["cardiomegaly"], RANK[source.assertion])
    names = {v: k for k, v in RANK.items()}
    return {f: names.get(r, "none") for f, r in best.items()}


def iu_reports(path: Path):
    """Every report of the archive, including those with no findings/impression text."""
    from neural_builders.inputs.reports import parse_iu_report
    with tarfile.open(path, "r:*") as tar:
        members = sorted((m for m in tar.getmembers() if m.isreg() and m.name.endswith(".xml")),
                         key=lambda m: int(Path(m.name).stem) if Path(m.name).stem.isdigit() else 10**9)
        for member in members:
            yield parse_iu_report(tar.extractfile(member).read(), f"{path}!{member.name}")


def prf(y_true, y_pred, *, resamples: int, seed: int) -> dict:
    from scipy.stats import bootstrap
    from sklearn.metrics import precision_recall_fscore_support
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)

    def counts(t, q, axis):
        tp = np.sum(t & q, axis=axis)
        return tp, np.sum(~t & q, axis=axis), np.sum(t & ~q, axis=axis)

    def ratio(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.maximum(b, 1), 0.0)

    stats = {"precision": lambda t, q, axis: ratio(counts(t, q, axis)[0], sum(counts(t, q, axis)[:2])),
             "recall": lambda t, q, axis: ratio(counts(t, q, axis)[0], counts(t, q, axis)[0] + counts(t, q, axis)[2]),
             "f1": lambda t, q, axis: ratio(2 * counts(t, q, axis)[0], 2 * counts(t, q, axis)[0]
                                            + counts(t, q, axis)[1] + counts(t, q, axis)[2])}
    out = {"precision": float(p), "recall": float(r), "f1": float(f),
           "tp": int(np.sum(y_true & y_pred)), "fp": int(np.sum(~y_true & y_pred)), "fn": int(np.sum(y_true & ~y_pred))}
    for k, (name, fn) in enumerate(stats.items()):
        res = bootstrap((y_true, y_pred), fn, paired=True, vectorized=True, n_resamples=resamples,
                        method="percentile", rng=np.random.default_rng([seed, k]))
        out[f"{name}_ci"] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return out


ADJUDICATION = Path(__file__).with_name("data") / "iu_mesh_adjudication.csv"
HELD_OUT_SALT = "neural-format/issue-19/held-out"
# "no/without (qualifier) <finding>": every such mention must come out absent (the negation probe)
NEGATION_PROBE = re.compile(r"\b(?:no|without)\s+(?:(?:evidence of|focal|definite|acute|large|visible|xxxx)\s+)*"
                            r"(pneumothorax|pleural effusion|consolidation|edema|pneumonia|effusion|infiltrate)\b", re.I)


def held_out(report_id: str) -> bool:
    """The fixed held-out part: one report in five, by a salted SHA-256 of the report id (no
    reading order, no text, no label involved)."""
    import hashlib
    return int(hashlib.sha256(f"{HELD_OUT_SALT}:{report_id}".encode()).hexdigest()[:8], 16) % 5 == 0


def load_adjudication(path: Path, known: dict) -> list[dict]:
    """Rows of the adjudication table, checked against the corpus: the report exists, the finding
    is one of :data:`MESH`, and the recorded MeSH label is what the archive says."""
    import csv
    rows = list(csv.DictReader(path.open(newline="")))
    for n, row in enumerate(rows, start=2):
        rid, finding = row["report_id"], row["finding"]
        if rid not in known or finding not in MESH:
            raise SystemExit(f"{path}:{n}: unknown report {rid!r} or finding {finding!r}")
        if int(row["mesh"]) != int(known[rid][finding]):
            raise SystemExit(f"{path}:{n}: {rid} {finding}: table says MeSH {row['mesh']}, archive says {int(known[rid][finding])}")
        if row["adjudicated"] not in ("0", "1"):
            raise SystemExit(f"{path}:{n}: adjudicated must be 0 or 1")
    return rows


def negation_probe(extractor_name: str, texts) -> tuple[int, int, list]:
    """Every "no/without ... <finding>" mention: is the entity ending there absent?"""
    from neural_builders.kg import get_extractor
    per_mention = get_extractor(extractor_name, merge_repeats=False)
    total = absent = 0
    misses = []
    for rid, text in texts:
        matches = list(NEGATION_PROBE.finditer(text))
        if not matches:
            continue
        ends = {e.end: e for e in per_mention.extract(text).entities if e.type == "finding"}
        for m in matches:
            total += 1
            entity = ends.get(m.end(1))
            if entity is not None and entity.assertion == "absent":
                absent += 1
            else:
                misses.append((rid, m.group(0), entity.assertion if entity else "no entity"))
    return absent, total, misses


def _fmt(m: dict, key: str = "f1") -> str:
    return "{:.3f} [{:.2f}, {:.2f}]".format(m[key], *m[f"{key}_ci"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=None, help="NLMCXR_reports.tgz (default: torchxrayvision's copy)")
    parser.add_argument("--extractor", default="rules")
    parser.add_argument("--adjudication", default=str(ADJUDICATION),
                        help="CSV of adjudicated labels (report_id, finding, mesh, adjudicated, ...)")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write all figures here")
    parser.add_argument("--disagreements", type=int, default=0, metavar="N",
                        help="print up to N disagreeing reports per finding and direction (seeded sample)")
    parser.add_argument("--part", choices=("development", "held-out", "all"), default="development",
                        help="which reports --disagreements prints (default: development only, so that rules "
                             "are not read off the held-out part)")
    args = parser.parse_args(argv)

    from neural_builders.inputs.reports import iu_xray_archive_path
    from neural_builders.kg import get_extractor, extractor_ref
    extractor = get_extractor(args.extractor)
    path = Path(args.archive) if args.archive else iu_xray_archive_path()

    t0 = time.perf_counter()
    rows = []
    for report in iu_reports(path):
        text = report.text_for_model
        rows.append((report.report_id, text, mesh_labels(report.mesh, report.mesh_automatic),
                     report_assertions(extractor.extract(text)), report.mesh, report.mesh_automatic))
    elapsed = time.perf_counter() - t0
    empty = sum(1 for r in rows if not r[1].strip())
    ref = extractor_ref(extractor)
    print(f"{len(rows)} IU reports ({empty} with no findings/impression text, kept as 'nothing mentioned'), "
          f"extractor {ref.name} {ref.version}, read + extracted in {elapsed:.1f} s\n")

    mesh_of = {r[0]: r[2] for r in rows}
    table = load_adjudication(Path(args.adjudication), mesh_of)
    adjudicated = {(t["report_id"], t["finding"]): t["adjudicated"] == "1" for t in table}
    part = np.array([held_out(r[0]) for r in rows])
    results = {"reports": len(rows), "empty_text": empty, "extractor": ref.model_dump(),
               "adjudication": {"path": str(args.adjudication), "rows": len(table)},
               "held_out_reports": int(part.sum()), "findings": {}}

    def truth(finding: str, reference: str) -> np.ndarray:
        if reference == "mesh":
            return np.array([r[2][finding] for r in rows])
        return np.array([adjudicated.get((r[0], finding), r[2][finding]) for r in rows])

    print("### Report-level positive = present+uncertain: raw MeSH and MeSH corrected by the adjudication table\n")
    print("| Finding | MeSH + | adjudicated rows (-> +, -> -) | corrected + | raw P / R / F1 [F1 95 % CI] | "
          "adjudicated P / R / F1 [F1 95 % CI] | raw TP/FP/FN | adj. TP/FP/FN |")
    print("|---|---:|---|---:|---|---|---|---|")
    for finding in MESH:
        y_pred = np.array([r[3][finding] in ("present", "uncertain") for r in rows])
        raw, adj = truth(finding, "mesh"), truth(finding, "adjudicated")
        m_raw = prf(raw, y_pred, resamples=args.resamples, seed=args.seed)
        m_adj = prf(adj, y_pred, resamples=args.resamples, seed=args.seed)
        n_rows = sum(1 for t in table if t["finding"] == finding)
        to_pos, to_neg = int(np.sum(adj & ~raw)), int(np.sum(~adj & raw))
        entry = results["findings"].setdefault(finding, {})
        entry["present+uncertain"] = m_raw
        entry["present+uncertain adjudicated"] = m_adj
        entry["adjudicated_rows"] = {"rows": n_rows, "to_positive": to_pos, "to_negative": to_neg}
        print(f"| {finding} | {int(raw.sum())} | {n_rows} (+{to_pos}, -{to_neg}) | {int(adj.sum())} | "
              f"{m_raw['precision']:.3f} / {m_raw['recall']:.3f} / **{_fmt(m_raw)}** | "
              f"{m_adj['precision']:.3f} / {m_adj['recall']:.3f} / **{_fmt(m_adj)}** | "
              f"{m_raw['tp']}/{m_raw['fp']}/{m_raw['fn']} | {m_adj['tp']}/{m_adj['fp']}/{m_adj['fn']} |")
    print()
    # the adjudicated labels follow the "uncertain is not absent" convention, so only raw MeSH here
    print("### Report-level positive = present only (raw MeSH)\n")
    print("| Finding | MeSH + | P / R / F1 [F1 95 % CI] | TP/FP/FN |")
    print("|---|---:|---|---|")
    for finding in MESH:
        raw = truth(finding, "mesh")
        m = prf(raw, np.array([r[3][finding] == "present" for r in rows]), resamples=args.resamples, seed=args.seed)
        results["findings"][finding]["present"] = m
        print(f"| {finding} | {int(raw.sum())} | {m['precision']:.3f} / {m['recall']:.3f} / **{_fmt(m)}** | "
              f"{m['tp']}/{m['fp']}/{m['fn']} |")
    print()

    print(f"### Development vs held-out part (positive = present+uncertain; held-out = {int(part.sum())} reports "
          f"chosen by SHA-256 of the report id, 1 in 5)\n")
    print("| Finding | dev MeSH + | dev F1 raw | dev F1 adjudicated | held-out MeSH + | held-out F1 raw | held-out F1 adjudicated |")
    print("|---|---:|---|---|---:|---|---|")
    for finding in MESH:
        y_pred = np.array([r[3][finding] in ("present", "uncertain") for r in rows])
        cells = []
        for mask in (~part, part):
            raw, adj = truth(finding, "mesh")[mask], truth(finding, "adjudicated")[mask]
            m_raw = prf(raw, y_pred[mask], resamples=args.resamples, seed=args.seed)
            m_adj = prf(adj, y_pred[mask], resamples=args.resamples, seed=args.seed)
            name = "held_out" if mask is part else "development"
            results["findings"][finding][name] = {"mesh_positive": int(raw.sum()), "raw": m_raw, "adjudicated": m_adj}
            cells += [str(int(raw.sum())), _fmt(m_raw), _fmt(m_adj)]
        print(f"| {finding} | " + " | ".join(cells) + " |")
    print()

    print("### Extractor's assertion by MeSH label (reports)\n")
    print("| Finding | MeSH | " + " | ".join(CLASSES) + " |")
    print("|---|---|" + "---:|" * len(CLASSES))
    for finding in MESH:
        for label in (True, False):
            c = Counter(r[3][finding] for r in rows if r[2][finding] == label)
            results["findings"][finding]["confusion_mesh_" + ("pos" if label else "neg")] = {k: c[k] for k in CLASSES}
            print(f"| {finding} | {'names it' if label else 'does not'} | " + " | ".join(str(c[k]) for k in CLASSES) + " |")
    print()

    absent, total, misses = negation_probe(args.extractor, ((r[0], r[1]) for r in rows))
    results["negation_probe"] = {"absent": absent, "mentions": total}
    print(f"Negation probe: {absent} of {total} 'no/without (qualifier) <finding>' mentions come out absent")
    for rid, phrase, said in misses[:20]:
        print(f"- {rid}: {phrase!r} -> {said}")
    print()

    # disagreements with the corrected reference that nobody has adjudicated yet (new after a rule change)
    unread = {f: [r[0] for r in rows if (r[3][f] in ("present", "uncertain")) != adjudicated.get((r[0], f), r[2][f])
                  and (r[0], f) not in adjudicated] for f in FIVE}
    results["unadjudicated_disagreements"] = unread
    print("Disagreements with the corrected reference not in the adjudication table (five NEURAL findings): "
          + ", ".join(f"{f} {len(v)}" for f, v in unread.items()) + "\n")

    if args.disagreements:
        rng = np.random.default_rng(args.seed)
        for finding in MESH:
            for kind, pick in (("MeSH+ / extractor-", lambda r: r[2][finding] and r[3][finding] not in ("present", "uncertain")),
                               ("MeSH- / extractor+", lambda r: not r[2][finding] and r[3][finding] in ("present", "uncertain"))):
                cases = [r for r in rows if pick(r) and (args.part == "all" or held_out(r[0]) == (args.part == "held-out"))]
                print(f"#### {finding}: {kind} ({len(cases)}, {args.part} part)")
                for i in sorted(rng.choice(len(cases), min(args.disagreements, len(cases)), replace=False)) if cases else []:
                    rid, text, _, said, major, auto = cases[i]
                    note = f" adjudicated={int(adjudicated[(rid, finding)])}" if (rid, finding) in adjudicated else ""
                    print(f"- {rid} [{said[finding]}]{note} major={list(major)} auto={list(auto)}\n  {text}")
                print()

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
