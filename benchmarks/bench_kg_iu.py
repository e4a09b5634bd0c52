"""The rule-based KG extractor against the MeSH terms of all IU X-ray reports, per finding.

    .venv/bin/python benchmarks/bench_kg_iu.py [--resamples 2000] [--seed 0] [--json out.json]
                                               [--disagreements N] [--extractor rules]

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=None, help="NLMCXR_reports.tgz (default: torchxrayvision's copy)")
    parser.add_argument("--extractor", default="rules")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write all figures here")
    parser.add_argument("--disagreements", type=int, default=0, metavar="N",
                        help="print up to N disagreeing reports per finding and direction (seeded sample)")
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

    results = {"reports": len(rows), "empty_text": empty, "extractor": ref.model_dump(), "findings": {}}
    for positive in ("present+uncertain", "present"):
        counted = {"present"} | ({"uncertain"} if positive == "present+uncertain" else set())
        print(f"### Report-level positive = {positive}\n")
        print("| Finding | MeSH + | P [95 % CI] | R [95 % CI] | F1 [95 % CI] | TP | FP | FN |")
        print("|---|---:|---|---|---|---:|---:|---:|")
        for finding in MESH:
            y_true = np.array([r[2][finding] for r in rows])
            y_pred = np.array([r[3][finding] in counted for r in rows])
            m = prf(y_true, y_pred, resamples=args.resamples, seed=args.seed)
            results["findings"].setdefault(finding, {})[positive] = m
            ci = {k: "[{:.2f}, {:.2f}]".format(*m[f"{k}_ci"]) for k in ("precision", "recall", "f1")}
            print(f"| {finding} | {int(y_true.sum())} | {m['precision']:.3f} {ci['precision']} | "
                  f"{m['recall']:.3f} {ci['recall']} | **{m['f1']:.3f}** {ci['f1']} | {m['tp']} | {m['fp']} | {m['fn']} |")
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

    if args.disagreements:
        rng = np.random.default_rng(args.seed)
        for finding in MESH:
            for kind, pick in (("MeSH+ / extractor-", lambda r: r[2][finding] and r[3][finding] not in ("present", "uncertain")),
                               ("MeSH- / extractor+", lambda r: not r[2][finding] and r[3][finding] in ("present", "uncertain"))):
                cases = [r for r in rows if pick(r)]
                print(f"#### {finding}: {kind} ({len(cases)})")
                for i in sorted(rng.choice(len(cases), min(args.disagreements, len(cases)), replace=False)) if cases else []:
                    rid, text, _, said, major, auto = cases[i]
                    print(f"- {rid} [{said[finding]}] major={list(major)} auto={list(auto)}\n  {text}")
                print()

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
