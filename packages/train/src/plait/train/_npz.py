"""A bounded, validated read of an ``.npz`` of arrays (no pickle).

The file is read once through :func:`plait.core.read_bytes` (a regular file of bounded
size: FIFOs and devices are refused). Before any array is allocated, every member's
declared uncompressed size is checked against a bound, and every ``.npy`` header's shape
and dtype against that declared size, so a small archive cannot make NumPy allocate
gigabytes. Arrays are then loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from typing import Any

import numpy as np
from numpy.lib import format as npy

from plait.core import SerializationError, read_bytes

__all__ = ["NPZ_MAX_BYTES", "read_npz"]

#: Default bound of an .npz file, and of the uncompressed size of its members together: 16 GiB.
NPZ_MAX_BYTES = 1 << 34
_MAX_MEMBERS = 1024
_MAX_NPY_HEADER = 1 << 20


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: Any) -> None:
    """The ``.npy`` header of ``info`` must describe exactly the bytes the archive declares for it."""
    if not info.filename.endswith(".npy"):
        raise SerializationError(f"{source}: member {info.filename!r} is not a .npy array")
    with archive.open(info) as f:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
        else:
            raise SerializationError(f"{source}: member {info.filename!r}: unsupported .npy version {version}")
        header_bytes = f.tell()
    if dtype.hasobject:
        raise SerializationError(f"{source}: member {info.filename!r} holds Python objects (pickle is never loaded)")
    data_bytes = math.prod(shape) * dtype.itemsize
    if header_bytes + data_bytes != info.file_size:
        raise SerializationError(f"{source}: member {info.filename!r} declares shape {shape} of {dtype} "
                                 f"({data_bytes} bytes) in a member of {info.file_size} bytes")


def read_npz(path: str | os.PathLike[str], *, component: str, max_bytes: int = NPZ_MAX_BYTES) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, as ``{name: array}``.

    Args:
        path: the file.
        component: who reads it, for messages (``"--data"``).
        max_bytes: the largest file, and the largest total uncompressed size of its members.

    Raises:
        SerializationError: the file is not a regular file, exceeds a bound, is not a valid
            .npz, or a member's header does not match its declared size; the message names
            ``component``, the file and the member.
    """
    source = f"{component} {path}"
    data = read_bytes(path, component=component, max_bytes=max_bytes, what=".npz file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise SerializationError(f"{source}: {len(infos)} members, more than {_MAX_MEMBERS}")
            total = 0
            for info in infos:
                total += info.file_size
                if info.file_size > max_bytes or total > max_bytes:
                    raise SerializationError(f"{source}: member {info.filename!r} declares {info.file_size} bytes "
                                             f"uncompressed; the members together may have at most {max_bytes}")
            for info in infos:
                _check_member(archive, info, source)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive_arrays:
            return {name: archive_arrays[name] for name in archive_arrays.files}
    except SerializationError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError, MemoryError) as exc:
        raise SerializationError(f"{source}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
