"""Downloading a file with a SHA-256 check: temp file, verify, atomic rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from plait.core import PlaitError
from plait.core.files import file_mode

__all__ = ["DownloadError", "download"]


class DownloadError(PlaitError, OSError):
    """A download failed or its checksum did not match (nothing was cached)."""


def download(
    url: str, dest: str | os.PathLike[str], sha256: str | None, timeout: float = 60.0, *, max_bytes: int = 4 * 1024**3
) -> Path:
    """Fetch ``url`` into ``dest``. The bytes go to a temporary sibling first; only when
    their SHA-256 equals ``sha256`` is the file renamed into place, so a failed or
    corrupt download never leaves a file at ``dest``. A response longer than
    ``max_bytes`` is abandoned (a server cannot fill the disk)."""
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    digest = hashlib.sha256()
    try:
        os.chmod(tmp, file_mode())  # mkstemp's 0600 -> what open() would give under the umask
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) URLs
                    size = 0
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        size += len(chunk)
                        if size > max_bytes:
                            raise DownloadError(f"download of {url} is larger than the limit of {max_bytes} bytes; nothing was cached")
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise DownloadError(f"download of {url} failed: {exc}") from exc
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if sha256 is not None and got != sha256.lower():
            raise DownloadError(f"download of {url} is corrupt: SHA-256 {got}, expected {sha256}; nothing was cached")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
