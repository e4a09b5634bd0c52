"""CI+GT: BLEU-2 (sacrebleu) hand cases and a cross-check against the former hand-written BLEU,
and reports generated from stored patches into a new collection."""
import math
import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neural_models.report_generation import bleu2, bleu_signature, corpus_bleu2


# -- the former hand-written BLEU-2, kept only as a cross-check of sacrebleu ----------------------
def _tokens(text):
    return re.findall(r"\w+|[^\w\s]", (text or "").lower())


def _counts(candidate, reference):
    c, r = _tokens(candidate), _tokens(reference)
    matches, totals = [], []
    for n in (1, 2):
        cand = Counter(tuple(c[i:i + n]) for i in range(len(c) - n + 1))
        ref = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
        matches.append(sum(min(k, ref[g]) for g, k in cand.items()))
        totals.append(sum(cand.values()))
    return matches, totals, len(c), len(r)


def _from_counts(matches, totals, c_len, r_len):
    if c_len == 0 or any(t == 0 or m == 0 for m, t in zip(matches, totals)):
        return 0.0
    brevity = 1.0 if c_len > r_len else math.exp(1.0 - r_len / c_len)
    return brevity * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / 2)


def hand_corpus_bleu2(cands, refs):
    parts = [_counts(c, r) for c, r in zip(cands, refs)]
    return _from_counts([sum(p[0][k] for p in parts) for k in (0, 1)], [sum(p[1][k] for p in parts) for k in (0, 1)],
                        sum(p[2] for p in parts), sum(p[3] for p in parts))


WORDS = ["the", "cat", "sat", "on", "mat", "lung", "clear", "no", "effusion", ".", ","]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from(WORDS), max_size=12),
                          st.lists(st.sampled_from(WORDS), min_size=1, max_size=12)), min_size=1, max_size=5))
def test_sacrebleu_agrees_with_the_former_hand_written_bleu(pairs):
    cands = [" ".join(c) for c, _ in pairs]
    refs = [" ".join(r) for _, r in pairs]
    assert corpus_bleu2(cands, refs) == pytest.approx(hand_corpus_bleu2(cands, refs), abs=1e-9)
    for c, r in zip(cands, refs):
        assert bleu2(c, r) == pytest.approx(_from_counts(*_counts(c, r)), abs=1e-9)


def test_bleu_variant_is_named():
    signature = bleu_signature()
    assert all(part in signature for part in ("case:lc", "eff:no", "tok:13a", "smooth:none"))


def test_bleu2_hand_case():
    # unigrams: the x2, cat, on, mat match (5 of 6); bigrams: "the cat", "on the", "the mat" (3 of 5);
    # equal lengths, so no brevity penalty: sqrt(5/6 * 3/5) = sqrt(1/2)
    assert bleu2("The cat is on the mat", "the cat sat on the mat") == pytest.approx(math.sqrt(0.5))


def test_bleu2_brevity_penalty_and_clipping():
    # every n-gram of "the cat" matches, but 2 words against 6: BP = exp(1 - 6/2)
    assert bleu2("the cat", "the cat sat on the mat") == pytest.approx(math.exp(-2.0))
    # "the the the": unigram matches clipped at 2 ("the" twice in the reference), no bigram match
    assert bleu2("the the the", "the cat on the mat") == 0.0
    assert bleu2("", "anything") == 0.0


def test_corpus_bleu2_sums_counts_before_the_ratio():
    cands = ["the cat is on the mat", "the cat"]
    refs = ["the cat sat on the mat", "the cat sat on the mat"]
    # unigrams 5+2 of 6+2, bigrams 3+1 of 5+1; lengths 8 vs 12 -> BP exp(1 - 12/8)
    expected = math.exp(1 - 12 / 8) * math.sqrt((7 / 8) * (4 / 6))
    assert corpus_bleu2(cands, refs) == pytest.approx(expected)


def test_generate_collection_from_stored_patches(tmp_path):
    pytest.importorskip("transformers")
    import torch
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    from neural_format import open as open_collection_file
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    from neural_format.files.writer import write_collection
    from neural_models.report_generation import generate_collection

    torch.manual_seed(0)
    torch.set_num_threads(1)
    reports = ["Focal consolidation in the right lower zone, suggestive of pneumonia.",
               "No focal consolidation. No pleural effusion. Lungs are clear."]
    tokenizer = train_report_tokenizer(reports * 3)
    generator = ReportGenerator(tiny_config(vocab_size=len(tokenizer)))
    generator.tokenizer = tokenizer
    meta = synthetic_meta(feature_dim=generator.swin_dim)
    source = write_collection(tmp_path / "gt.h5", meta, synthetic_records(6, meta, seed=2, patches=(0, 12)),
                              compression="gzip", compression_level=7)
    summary = generate_collection(source, tmp_path / "generated.h5", generator, batch_size=4, max_new_tokens=8)
    assert summary["records"] == 6 and 0.0 <= summary["corpus_bleu2"] <= 1.0
    with open_collection_file(source) as a, open_collection_file(tmp_path / "generated.h5") as b:
        assert "reports generated" in b.meta.provenance.history[-1]
        # the output keeps the source's storage, as reprune and merge do
        assert (b.storage.compression, b.storage.compression_level) == ("gzip", 7)
        for before, after in zip(a, b):
            assert after.report_source == "generated"
            np.testing.assert_array_equal(before.patch_features, after.patch_features)
            np.testing.assert_array_equal(before.labels, after.labels)
            assert after.group_key == before.group_key
    # greedy decoding from the same stored patches gives the same text again
    again = generate_collection(source, tmp_path / "again.h5", generator, batch_size=3, max_new_tokens=8,
                                compression="none", dtype="float16")
    assert [e["generated"] for e in again["examples"]] == [e["generated"] for e in summary["examples"]]
    with open_collection_file(tmp_path / "again.h5") as c:
        assert c.storage.compression is None and c.meta.patch_feature_dtype == "float16"


def test_paired_test_records_and_undefined_reasons():
    from neural_models.cli.generate_reports_cmd import paired_test_records, undefined_reason
    truth_ids = ["a", "b", "c", "d", "e"]
    generated_ids = ["a", "b", "c"]  # --limit 3
    assert paired_test_records(truth_ids, generated_ids, np.array([4, 1, 2])) == ([1, 2], [1, 2])
    assert paired_test_records(truth_ids, ["c", "b", "a", "d", "e"], [0, 3]) == ([0, 3], [2, 3])
    assert "raise --limit" in undefined_reason([])
    assert undefined_reason([1.0, 1.0]) == "all 2 test records are positive"
    assert undefined_reason([0.0, 1.0]) is None


@pytest.mark.slow
def test_generate_reports_command_scores_both_aucs_on_the_same_records(tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("torch_geometric")
    import json

    import torch
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    from neural_format.cli import main
    from neural_models.planted import write_planted_collection

    torch.manual_seed(0)
    torch.set_num_threads(1)
    tokenizer = train_report_tokenizer(["No focal consolidation.", "Consolidation, suggestive of pneumonia."] * 3)
    generator = ReportGenerator(tiny_config(vocab_size=len(tokenizer)))
    generator.save_pretrained(tmp_path / "gen", tokenizer)
    source = write_planted_collection(tmp_path / "planted.h5", 80, seed=1, feature_dim=generator.swin_dim)
    assert main(["train", str(source), "--out", str(tmp_path / "run"), "--hidden", "8", "--max-epochs", "2",
                 "--bootstrap", "20", "--quiet", "--modality", "fused"]) == 0
    capsys.readouterr()
    assert main(["generate-reports", str(source), "--generator", str(tmp_path / "gen"), "--out",
                 str(tmp_path / "generated.h5"), "--model", str(tmp_path / "run" / "fused"), "--limit", "40",
                 "--max-new-tokens", "4", "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    mpnn = json.loads((tmp_path / "generated.generation.json").read_text())["mpnn"]
    n = mpnn["n"]
    assert 0 < n < mpnn["test_records"] and "--limit" in mpnn["left_out"]
    for name in ("ground_truth_reports", "generated_reports"):
        assert mpnn[name]["n"] == n  # both AUCs on the same records
    assert out.count(f"n = {n}") == 2 and f"the same {n} of {mpnn['test_records']} test records" in out


@pytest.mark.parametrize("make, found", [
    (lambda d: d.mkdir(), "no config.json"),
    (lambda d: None, "no such directory"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text('{"format": "neural-models-mpnn", "model": {}}')),
     "format 'neural-models-mpnn'"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("\x00 not json")), "config.json that is not JSON"),
])
def test_generate_reports_with_a_directory_that_is_no_generator_is_nb_g001(tmp_path, capsys, make, found):
    """Exit 2 with the code, the path, what was expected and what was found; no output written."""
    pytest.importorskip("transformers")
    from neural_builders.errors import NoGeneratorError
    from neural_builders.vlm.model import ReportGenerator
    from neural_format.cli import main
    from neural_models.planted import write_planted_collection

    source = write_planted_collection(tmp_path / "planted.h5", 6, seed=1, feature_dim=8)
    generator = tmp_path / "not-a-generator"
    make(generator)
    capsys.readouterr()
    assert main(["generate-reports", str(source), "--generator", str(generator),
                 "--out", str(tmp_path / "generated.h5")]) == 2
    err = capsys.readouterr().err
    assert "[NB-G001]" in err and str(generator) in err and "Traceback" not in err
    assert "expected a report-generator directory (config.json of format 'neural-builders-report-generator')" in err
    assert f"found {found}" in err
    assert not (tmp_path / "generated.h5").exists()
    with pytest.raises(NoGeneratorError) as caught:  # the same error from Python, still a FileNotFoundError
        ReportGenerator.from_pretrained(generator)
    assert isinstance(caught.value, FileNotFoundError) and caught.value.code == "NB-G001"
