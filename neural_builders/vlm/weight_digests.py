"""SHA-256 of a weight file that a model still holds, hashed once per file version.

A build's provenance records the SHA-256 of each weight file, and it must be the digest of the
weights the build really used. :meth:`ReportGenerator.weights_sha256` asks :func:`file_digest`:
when the model's tensors are exactly the file's, the answer is the digest of the file's bytes.

Two facts are checked separately, because they change for different reasons:

* **The file did not change** since it was hashed. Its digest is kept in memory under the file's
  identity: resolved path, device, inode, size, modification and status-change times in
  nanoseconds. Rewriting the file changes the size or the times; replacing it changes the inode;
  setting the modification time back (``os.utime``) still changes the status-change time, which
  no user call can set. As git does with its index, a file whose times are within
  :data:`RACY_NS` of the moment it was hashed is not remembered: a write in the same clock tick
  could leave its times unchanged.
* **The model still holds the file's tensors.** That is compared tensor by tensor on every call
  (in the file's dtype, on the model's device, reading the file through safetensors' memory map),
  never inferred: weights changed in place (``param.data``, an optimiser step, ``load_state_dict``)
  bump no version counter that would be reliable, so a model trained in this process fails the
  comparison and its digest is recomputed from its weights by the caller.

So an unchanged model from unchanged files costs one read and compare of the weights per build,
with no serialisation and no hashing after the first.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Mapping, Optional

from .. import optional_deps

optional_deps.require("torch", needed_by="the report generator")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)

# files whose times are this close to the moment they were hashed are hashed again next time
RACY_NS = 2_000_000_000

_DIGESTS: dict[tuple, str] = {}
_LOCK = threading.Lock()


def file_identity(path: Path) -> tuple:
    """What changes whenever the file's bytes may have: path, device, inode, size, mtime, ctime."""
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_digest(path: Path, tensors: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The SHA-256 of ``path``'s bytes when ``tensors`` are exactly the file's tensors, else None."""
    began = time.time_ns()
    identity = file_identity(path)
    with _LOCK:
        known = _DIGESTS.get(identity)
    if known is not None:
        if not _same_as_file(tensors, path):
            return None
        if file_identity(path) == identity:
            return known
        # the file changed while it was compared: hash what is there now
    load = optional_deps.load("safetensors.torch", needed_by="the weight digest").load
    data = Path(path).read_bytes()
    if not _same_weights(tensors, load(data)):
        return None
    digest = hashlib.sha256(data).hexdigest()  # of the bytes just compared, whatever the file does next
    after = file_identity(path)
    if after == identity and max(identity[4], identity[5]) < began - RACY_NS:
        with _LOCK:
            _DIGESTS[identity] = digest
    return digest


def forget() -> None:
    """Drop every remembered digest (tests; a process that distrusts its file system's clock)."""
    with _LOCK:
        _DIGESTS.clear()


def _same_as_file(current: Mapping[str, torch.Tensor], path: Path) -> bool:
    """``_same_weights`` against the file read lazily through safetensors' memory map."""
    safe_open = optional_deps.load("safetensors", needed_by="the weight digest").safe_open
    device = next(iter(current.values())).device if current else torch.device("cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    with safe_open(str(path), framework="pt", device=str(device)) as stored:
        if set(stored.keys()) != set(current):
            return False
        for key in current:
            tensor = stored.get_tensor(key)
            mine = current[key]
            if mine.shape != tensor.shape or not torch.equal(mine.to(tensor.device, tensor.dtype), tensor):
                return False
    return True


def _same_weights(current: Mapping[str, torch.Tensor], stored: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``current`` (any device/dtype) holds exactly the tensors of a weight file."""
    if current.keys() != stored.keys():
        return False
    for key, tensor in stored.items():
        mine = current[key]
        if mine.shape != tensor.shape or not torch.equal(mine.to("cpu", tensor.dtype), tensor):
            return False
    return True
