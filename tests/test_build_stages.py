"""The pipelined build: same file, records, order and skips as the serial build; errors from any
stage reach the caller with nothing left behind; the ordered prefetch and consumer on their own."""
import threading
import time

import h5py
import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

import neural_format as nf  # noqa: E402
from neural_builders.build import BuildConfig, BuildInput, build_collection, inputs_from_pairs  # noqa: E402
from neural_builders.inputs import load_reports, pair_inputs  # noqa: E402
from neural_builders.phantom import generate_cases, write_cases  # noqa: E402
from neural_builders.stages import OrderedConsumer, OrderedPrefetch  # noqa: E402
from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.tokenizer import train_report_tokenizer  # noqa: E402
from neural_format.format.metadata import PruningPolicy, TopKPercent  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    small = generate_cases(5, seed=3, size=(128, 160))
    large = generate_cases(4, seed=4, size=(160, 192))   # a second working size: two batch queues
    for i, case in enumerate(large):
        case.case_id = f"L{i:02d}"
    files = write_cases(small + large, root / "phantoms")
    (files["images"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    with open(files["reports"], "a", encoding="utf-8") as handle:
        handle.write("broken,FINDINGS: Lungs are clear.,0\n")
    tokenizer = train_report_tokenizer([c.report for c in small + large])
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer))
    config["swin"].update(embed_dim=8, num_heads=[1, 1, 2, 2], depths=[1, 1, 1, 1])
    ReportGenerator(config).save_pretrained(root / "model", tokenizer=tokenizer)
    pairs, skipped = pair_inputs(files["images"], load_reports(files["reports"]), load_images=False)
    inputs = sorted(inputs_from_pairs(pairs), key=lambda i: i.case_id)
    # interleave the sizes, and repeat one ID: the writer refuses it (a skip at the write stage)
    order = [inputs[i] for i in (0, 5, 1, 6, 2, 9, 7, 3, 8, 4)]
    dup = BuildInput(case_id=order[0].case_id, image_path=order[0].image_path, report=order[0].report)
    return root, order[:6] + [dup] + order[6:], skipped


def _columns(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name != "metadata":
                out[name] = obj[()]
        f.visititems(visit)
    return out


def _build(setup, out, **options):
    root, inputs, skipped = setup
    model = ReportGenerator.from_pretrained(root / "model")
    options.setdefault("pipelined", True)   # on the CPU the default (None) would run serially
    config = BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=25)), tiles="uint8", batch_size=2,
                         progress=False, **options)
    return build_collection(inputs, model, config, out, skipped=skipped)


@pytest.mark.parametrize("workers, queue, slow_digest", [(2, 1, False), (0, 3, False), (1, 1, True)])
def test_pipelined_build_writes_what_the_serial_build_writes(setup, tmp_path, monkeypatch, workers, queue,
                                                             slow_digest):
    serial = _build(setup, tmp_path / "serial.h5", pipelined=False)
    if slow_digest:  # records wait in memory until the provenance digests are there, then go in order
        real = ReportGenerator.weights_sha256

        def slow(self):
            time.sleep(1.0)
            return real(self)
        monkeypatch.setattr(ReportGenerator, "weights_sha256", slow)
    piped = _build(setup, tmp_path / "piped.h5", pipelined=True, prepare_workers=workers, queue_batches=queue)
    assert nf.validate(tmp_path / "piped.h5").ok
    a, b = _columns(tmp_path / "serial.h5"), _columns(tmp_path / "piped.h5")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert [(s.id, s.stage, s.code) for s in piped.skipped] == [(s.id, s.stage, s.code) for s in serial.skipped]
    assert sorted(s.stage for s in piped.skipped) == ["image", "write"]   # the broken PNG, the repeated ID
    assert piped.records_written == serial.records_written == 9
    assert (piped.patches_kept, piped.source_bytes) == (serial.patches_kept, serial.source_bytes)
    with nf.open(tmp_path / "piped.h5") as reader, nf.open(tmp_path / "serial.h5") as other:
        assert reader.meta.provenance.decoder == other.meta.provenance.decoder
        assert reader.meta.provenance.encoder == other.meta.provenance.encoder
    assert piped.times.provenance > 0 and serial.times.provenance == 0


def _no_build_threads():
    deadline = time.time() + 5
    while time.time() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("build-")]:
            return True
        time.sleep(0.05)
    return False


def test_an_error_in_the_record_stage_reaches_the_caller_and_leaves_nothing(setup, tmp_path, monkeypatch):
    from neural_builders import kg
    real = kg.get_extractor

    class Failing:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def extract(self, text):
            self.calls += 1
            if self.calls == 4:
                raise RuntimeError("extractor broke")
            return self.inner.extract(text)

    monkeypatch.setattr(kg, "get_extractor", lambda name: Failing(real(name)))
    with pytest.raises(RuntimeError, match="extractor broke"):
        _build(setup, tmp_path / "out.h5", prepare_workers=2, queue_batches=1)
    assert list(tmp_path.iterdir()) == []        # neither the file nor its temporary
    assert _no_build_threads()


def test_an_error_while_decoding_reaches_the_caller_and_leaves_nothing(setup, tmp_path, monkeypatch):
    import neural_builders.inputs as inputs_module
    real = inputs_module.load_image

    def load(path, *args, **kwargs):
        if "L02" in str(path):
            raise MemoryError("decoder ran out of memory")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(inputs_module, "load_image", load)
    with pytest.raises(MemoryError):
        _build(setup, tmp_path / "out.h5", prepare_workers=2)
    assert list(tmp_path.iterdir()) == []
    assert _no_build_threads()


def test_ordered_prefetch_keeps_input_order_and_its_bound():
    started, consumed = [], []
    lock = threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        time.sleep(0.002 * ((i * 7) % 5))   # later items often finish first
        return i * i

    for value in OrderedPrefetch(work, range(40), workers=3, lookahead=5):
        with lock:
            assert len(started) <= len(consumed) + 1 + 5   # never more than the lookahead ahead
        consumed.append(value)
    assert consumed == [i * i for i in range(40)]
    assert list(OrderedPrefetch(work, range(5), workers=0, lookahead=1)) == [0, 1, 4, 9, 16]


def test_ordered_consumer_runs_in_order_and_hands_errors_back():
    done = []
    consumer = OrderedConsumer(lambda job: (time.sleep(0.001), done.append(job)), depth=2)
    for i in range(30):
        consumer.submit(i)
    consumer.finish()
    assert done == list(range(30))

    def fail(job):
        if job == 3:
            raise KeyError("job 3")

    consumer = OrderedConsumer(fail, depth=1)
    with pytest.raises(KeyError, match="job 3"):
        for i in range(100):
            consumer.submit(i)
        consumer.finish()

    gate = threading.Event()
    ran = []
    consumer = OrderedConsumer(lambda job: (gate.wait(5), ran.append(job)), depth=5)
    for i in range(4):
        consumer.submit(i)
    threading.Timer(0.1, gate.set).start()
    consumer.cancel()                       # the running job ends; the waiting ones never run
    assert ran == [0]


def test_command_line_options_reach_the_config():
    import argparse

    from neural_builders.build import add_arguments, config_from_args
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--images", "i", "--reports", "r.csv", "--model", "m", "--out", "o.h5"]
    default = config_from_args(parser.parse_args(base))
    assert (default.pipelined, default.prepare_workers, default.attention) == (None, None, "fused")
    chosen = config_from_args(parser.parse_args(base + ["--pipeline", "off", "--prepare-workers", "3",
                                                        "--attention", "eager"]))
    assert (chosen.pipelined, chosen.prepare_workers, chosen.attention) == (False, 3, "eager")
    assert config_from_args(parser.parse_args(base + ["--pipeline", "on"])).pipelined is True


def test_auto_overlaps_on_a_gpu_and_runs_serially_on_the_cpu(setup, tmp_path):
    root, inputs, skipped = setup
    summary = build_collection(inputs[:3], ReportGenerator.from_pretrained(root / "model"),
                               BuildConfig(batch_size=2, progress=False, device="cpu"), tmp_path / "auto.h5")
    assert summary.times.provenance == 0      # the serial build hashes the weights when it opens the file
    assert summary.records_written == 3
