"""The browser viewer (viewer/) and ``neural-format view``.

* the loopback server: binds 127.0.0.1 only, serves the page and the chosen file, refuses foreign
  Host headers and paths outside its list, stops;
* the JavaScript reader in Node (``node --test viewer/test/reader.test.mjs``): every valid conformance fixture,
  the golden files, demo-like files written here, each record's SHA-256 recomputed equal to the stored one;
  Appendix B's test vectors byte for byte; the hostile corpus read or refused, never a crash;
* a real browser (Debian's chromium, headless, driven by playwright-core): the page on a demo-like
  file, a record selected, a screenshot kept under viewer/test-artifacts/, assertions on the DOM.

Node and npm are required (the Makefile's ``viewer-deps`` runs ``npm ci``); chromium is installed
by ``.ci/run``; without it the browser tests skip, unless NF_REQUIRE_BROWSER=1 (CI) makes them fail.
Firefox (Debian's firefox-esr, over WebDriver BiDi) is checked too where it is installed.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

import neural_format as nf
from neural_format.cli.view_cmd import make_server
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

ROOT = Path(__file__).resolve().parents[1]
VIEWER = ROOT / "viewer"
ARTIFACTS = VIEWER / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FIREFOX = os.environ.get("FIREFOX", "/usr/bin/firefox-esr")


def write_collection(path: Path, n: int = 12, seed: int = 0, compression="gzip", **meta_kwargs) -> Path:
    meta = synthetic_meta(**meta_kwargs)
    with nf.CollectionWriter(path, meta, overwrite=True, compression=compression) as writer:
        writer.extend(synthetic_records(n, meta, seed=seed))
    return path


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory) -> Path:
    """Like the demo's output: 2-D, stored tiles, float16 features, gzip; entity text and features."""
    return write_collection(tmp_path_factory.mktemp("viewer") / "demo-like.h5", n=24, tiles=True,
                            entity_feature_dim=8, dtype="float16", label_names=("pneumonia", "effusion"))


class Served:
    def __init__(self, target):
        self.server, self.url = make_server(target)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str, host: str | None = None):
        host_port = self.server.server_address
        conn = http.client.HTTPConnection(*host_port, timeout=10)
        conn.request("GET", path, headers={"Host": host or f"{host_port[0]}:{host_port[1]}"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, dict(response.getheaders()), body

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def served(demo_like):
    s = Served(demo_like)
    yield s
    s.stop()


# -- the server ------------------------------------------------------------------------------------
def test_view_server_binds_loopback_and_serves_the_page_and_the_file(served, demo_like):
    host, port = served.server.server_address
    assert host == "127.0.0.1" and served.url == f"http://127.0.0.1:{port}/"
    status, headers, body = served.get("/")
    assert status == 200 and b"neural-format viewer" in body and headers["Content-Type"].startswith("text/html")
    assert "wasm-unsafe-eval" in headers["Content-Security-Policy"]
    assert served.get("/bundle/worker.js")[2].startswith(b"/* neural-format viewer worker")
    status, _, body = served.get("/files.json")
    files = json.loads(body)["files"]
    assert status == 200 and files == [{"name": "demo-like.h5", "url": "data/0", "size": demo_like.stat().st_size}]
    status, headers, body = served.get("/data/0")
    assert status == 200 and body == demo_like.read_bytes()
    assert headers["Content-Type"] == "application/octet-stream"


def test_view_server_refuses_other_paths_and_foreign_hosts(served):
    for path in ("/data/1", "/data/-1", "/../pyproject.toml", "/viewer/package.json", "/src/reader.js", "/build.mjs"):
        assert served.get(path)[0] == 404, path
    # a page elsewhere reaching the port through a rebound DNS name sends its own Host
    assert served.get("/", host="attacker.example:80")[0] == 403
    assert served.get("/data/0", host="attacker.example")[0] == 403


def test_view_server_stops(demo_like):
    s = Served(demo_like)
    port = s.server.server_address[1]
    assert s.get("/files.json")[0] == 200
    s.stop()
    assert not s.thread.is_alive()
    with pytest.raises(OSError):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        conn.getresponse()


def test_view_directory_serves_the_shards_in_manifest_order(tmp_path, demo_like):
    from neural_format.cli.split_cmd import split
    split(demo_like, tmp_path / "sharded", shards=3)
    s = Served(tmp_path / "sharded")
    try:
        files = json.loads(s.get("/files.json")[2])["files"]
        manifest = json.loads((tmp_path / "sharded" / "manifest.json").read_text())
        assert [f["name"] for f in files] == [Path(e["path"]).name for e in manifest["shards"]]
        assert s.get("/data/2")[2] == (tmp_path / "sharded" / manifest["shards"][2]["path"]).read_bytes()
    finally:
        s.stop()


def test_view_command_prints_the_url_and_stops_on_interrupt(demo_like):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "neural_format", "view", str(demo_like)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split("http://", 1)[1].split()[0]
        port = int(url.split(":")[1].rstrip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/data/0")
        assert conn.getresponse().read() == demo_like.read_bytes()
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_view_command_refuses_a_missing_path(tmp_path):
    from neural_format.cli import main
    assert main(["view", str(tmp_path / "nothing.h5")]) == 2


def test_view_finds_the_page_in_a_checkout_or_an_installed_share_folder(tmp_path):
    from neural_format.cli.view_cmd import page_candidates, viewer_dir
    assert viewer_dir() == VIEWER == page_candidates()[0]
    share = tmp_path / "share" / "neural-format" / "viewer"
    with pytest.raises(FileNotFoundError, match="not installed"):
        viewer_dir([tmp_path / "missing", share])
    for name in ("index.html", "app.js", "style.css", "bundle/worker.js"):
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(VIEWER / name, share / name)
    assert viewer_dir([tmp_path / "missing", share]) == share
    # the wheel installs exactly the files the server serves
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {f for files in data_files.values() for f in files}
    from neural_format.cli.view_cmd import STATIC
    assert shipped == {f"viewer/{name}" for name, _ in STATIC.values()}


# -- the JavaScript reader in Node -----------------------------------------------------------------
@pytest.fixture(scope="session")
def node_modules():
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed")
    if not (VIEWER / "node_modules" / "h5wasm").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=VIEWER, check=True, timeout=600)
    return node


def test_node_reader_recomputes_every_digest(node_modules, demo_like, tmp_path):
    files = [demo_like,
             write_collection(tmp_path / "volumes.h5", n=8, seed=1, compression=None, axes=3, tiles=True),
             write_collection(tmp_path / "plain.h5", n=20, seed=2, label_names=("a", "b", "c"))]
    # NaN labels and a record without a report, both hashed by their own rules
    with h5py.File(files[2], "r") as f:
        assert np.isnan(f["/records/labels"][()]).any() and (f["/records/report_source"][()] == 0).any()
    # and the hostile-input corpus the SDK's reader is tested on (tests/hostile)
    hostile = tmp_path / "hostile"
    subprocess.run([sys.executable, str(ROOT / "tests" / "hostile" / "generate.py"), str(hostile)], check=True,
                   capture_output=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    kinds = len(json.loads((hostile / "expected.json").read_text()))
    assert kinds >= 50
    env = dict(os.environ, NF_VIEWER_TEST_FILES=os.pathsep.join(map(str, files)), NF_VIEWER_HOSTILE_DIR=str(hostile))
    result = subprocess.run([node_modules, "--test", "test/reader.test.mjs"], cwd=VIEWER, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    spec = ROOT / "spec"
    conformance = len(list((spec / "conformance").glob("*.valid.h5")))
    vectors = len(list((spec / "test-vectors").glob("*.json")))  # Appendix B's worked examples
    golden = len(list((spec / "golden").glob("*/collection.h5")) + list((spec / "golden").glob("*/sharded/*.h5")))
    assert vectors >= 3 and golden >= 3
    enforced = 17  # the invalid fixtures of the clauses the viewer enforces (reader.test.mjs ENFORCED)
    expected = (conformance + 1) + len(files) + kinds + (vectors + 1) + golden + enforced
    assert f"# pass {expected}\n" in result.stdout and "# fail 0" in result.stdout, result.stdout[-2000:]


def test_committed_bundle_is_built_from_the_sources(node_modules):
    # users never build: the page loads bundle/worker.js, so it must be what viewer/src/ builds to
    result = subprocess.run([node_modules, "build.mjs", "--check"], cwd=VIEWER, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lockfile_pins_exact_versions():
    package = json.loads((VIEWER / "package.json").read_text())
    lock = json.loads((VIEWER / "package-lock.json").read_text())
    for name, version in package["devDependencies"].items():
        assert version[0].isdigit(), f"{name} {version} is a range"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert lock["packages"][f"node_modules/{name}"]["integrity"].startswith("sha512-")


# -- a real browser --------------------------------------------------------------------------------
def browser(node, url: str, screenshot: Path, record: int = 1) -> dict:
    if not Path(CHROMIUM).exists():
        if os.environ.get("NF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"chromium not found at {CHROMIUM}")
        pytest.skip(f"chromium not found at {CHROMIUM} (.ci/run installs it)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([node, "test/browser.mjs", url, str(screenshot), str(record)], cwd=VIEWER,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_browser_shows_a_demo_file_and_verifies_a_record(node_modules, served, demo_like):
    shot = ARTIFACTS / "viewer-demo-like.png"
    summary = browser(node_modules, served.url, shot, record=3)
    with nf.open(demo_like) as reader:
        ids = reader.record_ids()
        rec = reader.get(ids[3])
        stored = reader.stored_hashes()[3].tobytes().hex()
    assert summary["error"] is None, summary
    assert summary["total"] == len(ids) == summary["rows"]
    assert summary["selected"] == "3" and summary["recordId"] == ids[3]
    assert summary["digestState"] == "verified" and summary["digest"] == stored
    assert summary["patchesDrawn"] == rec.num_patches == summary["tilesDrawn"]
    assert summary["entitiesDrawn"] == rec.num_entities
    assert summary["absentDrawn"] == int((rec.entity_assertions == 1).sum())
    assert summary["relationsDrawn"] == len(rec.relation_types)
    assert summary["bridgeDrawn"] == (1 if rec.bridge is not None else 0)
    assert summary["searchRows"] == 1
    assert not [m for m in summary["console"] if m.startswith(("error", "pageerror"))], summary["console"]
    assert shot.stat().st_size > 10_000


def test_browser_reports_a_digest_mismatch(node_modules, tmp_path):
    path = write_collection(tmp_path / "tampered.h5", n=4)
    with h5py.File(path, "r+") as f:
        scores = f["/patches/scores"]
        start = int(f["/patches/offsets"][1])
        assert int(f["/patches/offsets"][2]) > start
        scores[start] = scores[start] + 1.0  # record 1's first patch score changes; its stored digest does not
    s = Served(path)
    try:
        summary = browser(node_modules, s.url, ARTIFACTS / "viewer-mismatch.png", record=1)
    finally:
        s.stop()
    assert summary["digestState"] == "mismatch" and "stored" in summary["digest"], summary


def test_browser_refuses_a_size_bomb_from_the_file_chooser(node_modules):
    # opened from disk (file://) through the file chooser: nothing is served
    bomb = ROOT / "spec" / "conformance" / "NF-H006.invalid.h5"
    summary = browser(node_modules, f"{(VIEWER / 'index.html').as_uri()}#choose={bomb}", ARTIFACTS / "viewer-refused.png")
    assert summary["errorCode"] == "NF-H006" and "declares" in summary["error"], summary
    assert summary["total"] == 0


@pytest.mark.slow  # two Firefox starts, about 10 s each
def test_firefox_shows_a_demo_file_and_verifies_a_record(node_modules, served, demo_like):
    if not Path(FIREFOX).exists():
        pytest.skip(f"firefox not found at {FIREFOX} (.ci/run installs firefox-esr when apt has it)")
    probe = subprocess.run([node_modules, "--experimental-websocket", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this Node has no WebSocket client (Node 20.10+ needed) to speak WebDriver BiDi")
    shot = ARTIFACTS / "viewer-firefox.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([node_modules, "--experimental-websocket", "test/firefox.mjs", served.url, str(shot), "3"],
                            cwd=VIEWER, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    with nf.open(demo_like) as reader:
        ids = reader.record_ids()
        rec = reader.get(ids[3])
        stored = reader.stored_hashes()[3].tobytes().hex()
    assert "Firefox/" in summary["userAgent"] and summary["error"] is None, summary
    assert summary["total"] == len(ids) and summary["recordId"] == ids[3]
    assert summary["digestState"] == "verified" and summary["digest"] == stored
    assert summary["patchesDrawn"] == rec.num_patches and summary["entitiesDrawn"] == rec.num_entities
    # and opened from disk (file://) with the file chooser: the Blob-URL worker and WORKERFS in Firefox
    result = subprocess.run([node_modules, "--experimental-websocket", "test/firefox.mjs",
                             f"{(VIEWER / 'index.html').as_uri()}#choose={demo_like}", str(ARTIFACTS / "viewer-firefox-file.png"), "3"],
                            cwd=VIEWER, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from_disk = json.loads(result.stdout.strip().splitlines()[-1])
    assert from_disk["digestState"] == "verified" and from_disk["digest"] == stored and from_disk["total"] == len(ids), from_disk
