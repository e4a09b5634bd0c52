"""``neural-format view FILE|DIR``: open a collection in the browser viewer (``viewer/``).

Starts an HTTP server on the loopback interface only (127.0.0.1), serving the static viewer page
and the chosen file (or the shards a collection directory's manifest lists), and prints the URL.
The page reads and verifies the file in the browser; the server only hands out bytes. Requests
whose ``Host`` is not this loopback address are refused, so that a web page elsewhere cannot
reach the server through a rebound DNS name.
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import NeuralFormatError

LOOPBACK = "127.0.0.1"
# the page's own files: nothing else under viewer/ is served
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/bundle/worker.js": ("bundle/worker.js", "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' blob: 'wasm-unsafe-eval'; worker-src blob:; "
                               "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def page_candidates() -> list[Path]:
    """Where the page may be: ``viewer/`` of this checkout, then the copy a wheel installs under ``share/``
    (pyproject's ``data-files``)."""
    return [Path(__file__).resolve().parents[2] / "viewer", Path(sys.prefix) / "share" / "neural-format" / "viewer"]


def viewer_dir(candidates: list[Path] | None = None) -> Path:
    """The first of ``candidates`` holding the page and its built worker bundle."""
    candidates = page_candidates() if candidates is None else candidates
    for here in candidates:
        if (here / "index.html").is_file() and (here / "bundle" / "worker.js").is_file():
            return here
    raise FileNotFoundError("the viewer page is not installed: no index.html and bundle/worker.js in "
                            + " or ".join(map(str, candidates)))


def served_files(target: Path) -> list[Path]:
    """The files the page may open: FILE itself, or a directory's shards in manifest order."""
    target = Path(target)
    if target.name == "manifest.json" and target.is_file():
        target = target.parent
    if target.is_file():
        return [target.resolve()]
    if not target.is_dir():
        raise FileNotFoundError(f"no such file or directory: {target}")
    manifest = target / "manifest.json"
    if manifest.is_file():
        from ..collections.manifest import read_manifest
        root = target.resolve()
        files = []
        for shard in read_manifest(target).shards:
            path = (root / shard.path).resolve()
            if root not in path.parents or not path.is_file():  # NF-C002: stay inside the directory
                raise NeuralFormatError("NF-C002", "shard path leaves the collection or is missing",
                                        location=str(manifest), found=shard.path)
            files.append(path)
        return files
    files = sorted(p.resolve() for p in target.iterdir() if p.suffix in (".h5", ".hdf5") and p.is_file())
    if not files:
        raise FileNotFoundError(f"{target} holds no manifest.json and no .h5 files")
    return files


def make_server(target, port: int = 0, page: Path | None = None) -> tuple[ThreadingHTTPServer, str]:
    """A server for ``target`` bound to 127.0.0.1 (``port`` 0: any free port) and its URL; not yet serving."""
    root = page or viewer_dir()
    files = served_files(Path(target))
    listing = json.dumps({"files": [{"name": p.name, "url": f"data/{k}", "size": p.stat().st_size}
                                    for k, p in enumerate(files)]}).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        server_version = "neural-format-view"
        sys_version = ""

        def log_message(self, format, *args):  # requests are not logged; errors reach the caller
            pass

        def _send(self, status, body: bytes = b"", content_type="text/plain; charset=utf-8", source: Path | None = None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(source.stat().st_size if source else len(body)))
            for key, value in SECURITY_HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            if source is None:
                self.wfile.write(body)
            else:
                with open(source, "rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 20)

        def _allowed_host(self) -> bool:
            address = self.server.server_address
            if not isinstance(address, tuple):  # typed for any socket family; this server is TCP, (host, port)
                return False
            port = address[1]
            return self.headers.get("Host", "") in (f"{LOOPBACK}:{port}", f"localhost:{port}")

        def do_GET(self):
            if not self._allowed_host():
                return self._send(HTTPStatus.FORBIDDEN, b"wrong Host header\n")
            path = urlsplit(self.path).path
            if path in STATIC:
                name, content_type = STATIC[path]
                return self._send(HTTPStatus.OK, content_type=content_type, source=root / name)
            if path == "/favicon.ico":
                return self._send(HTTPStatus.NO_CONTENT)
            if path == "/files.json":
                return self._send(HTTPStatus.OK, listing, "application/json")
            if path.startswith("/data/") and path[6:].isdigit() and int(path[6:]) < len(files):
                return self._send(HTTPStatus.OK, content_type="application/octet-stream", source=files[int(path[6:])])
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n")

        do_HEAD = do_GET

    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    server.daemon_threads = True
    return server, f"http://{LOOPBACK}:{server.server_address[1]}/"


def run(args) -> int:
    server, url = make_server(args.path, args.port)
    print(f"Serving {args.path} at {url}  (loopback only; Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def register(sub) -> None:
    p = sub.add_parser("view", help="open a collection file or directory in the browser viewer (serves on 127.0.0.1)")
    p.add_argument("path", help="a collection file (.h5) or a collection directory with manifest.json")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p.add_argument("--open", action="store_true", help="also open the URL in the default browser")
    p.set_defaults(func=run)
