"""MNIST and Fashion-MNIST from IDX files.

Where the files are looked for, in order:

1. ``path`` (a folder) when given;
2. the cache, ``data_home()/<name>``: ``$PLAIT_DATA`` if set, else the platform's user
   cache folder (``$XDG_CACHE_HOME/plait``, by default ``~/.cache/plait``, on Linux);
3. the Debian/Ubuntu package folder (``/usr/share/datasets/fashion-mnist`` from
   ``dataset-fashion-mnist``);
4. a download from the canonical URL into the cache, each file checked against its
   SHA-256 (``base_url`` or ``$PLAIT_<NAME>_URL`` overrides the URL, e.g. for a mirror).

Each file may be gzip-compressed (``train-images-idx3-ubyte.gz``) or raw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs

from plait.core import ConfigError

from .download import download
from .idx import read_idx

__all__ = ["data_home", "load_fashion_mnist", "load_mnist"]

_PARTS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class _Source:
    name: str
    url: str
    sha256: dict[str, str]
    system_dirs: tuple[str, ...] = field(default=())


FASHION_MNIST = _Source(
    "fashion-mnist",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
    ("/usr/share/datasets/fashion-mnist",),
)

MNIST = _Source(
    "mnist",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # the mirror torchvision uses; same files as LeCun's
    {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    ("/usr/share/datasets/mnist",),
)


def data_home() -> Path:
    """Where datasets are cached: ``$PLAIT_DATA`` if set, else the platform's user cache folder
    for ``plait`` (``platformdirs.user_cache_dir``: ``$XDG_CACHE_HOME/plait``, by default
    ``~/.cache/plait``, on Linux; ``~/Library/Caches/plait`` on macOS;
    ``%LOCALAPPDATA%\\plait\\Cache`` on Windows)."""
    override = os.environ.get("PLAIT_DATA")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("plait", appauthor=False))


def _find(folder: Path, part: str) -> Path | None:
    for name in (part + ".gz", part, part.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _locate(source: _Source, path: str | os.PathLike[str] | None, download_ok: bool, base_url: str | None) -> list[Path]:
    if path is not None:
        folder = Path(path)
        found = [_find(folder, p) for p in _PARTS]
        missing = [p for p, f in zip(_PARTS, found) if f is None]
        if missing:
            raise FileNotFoundError(f"{source.name}: {folder} lacks {', '.join(missing)} (.gz or raw)")
        return found  # type: ignore[return-value]
    cache = data_home() / source.name
    for folder in (cache, *map(Path, source.system_dirs)):
        found = [_find(folder, p) for p in _PARTS]
        if all(found):
            return found  # type: ignore[return-value]
    if not download_ok:
        raise FileNotFoundError(
            f"{source.name} not found in {cache} or {', '.join(source.system_dirs)} and download=False"
        )
    env = "PLAIT_" + source.name.upper().replace("-", "_") + "_URL"
    url = (base_url or os.environ.get(env) or source.url).rstrip("/") + "/"
    out = []
    for part in _PARTS:
        name = part + ".gz"
        target = cache / name
        if not target.is_file():
            download(url + name, target, source.sha256[name])
        out.append(target)
    return out


Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _load(
    source: _Source, path: str | os.PathLike[str] | None, flatten: bool, download_ok: bool, base_url: str | None
) -> Splits:
    files = _locate(source, path, download_ok, base_url)
    x_train, y_train, x_test, y_test = (read_idx(f) for f in files)
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ConfigError(f"{source.name}: {split} images {images.shape} and labels {labels.shape} do not match")

    def images(a: np.ndarray) -> np.ndarray:
        out = a.astype(np.float32)
        out *= np.float32(1.0 / 255.0)
        return out.reshape(len(a), -1) if flatten else out

    return (images(x_train), y_train.astype(np.int64)), (images(x_test), y_test.astype(np.int64))


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    flatten: bool = False,
    download: bool = True,
    base_url: str | None = None,
) -> Splits:
    """``((x_train, y_train), (x_test, y_test))`` of Fashion-MNIST (60,000 + 10,000).

    Images are float32 in [0, 1], (N, 28, 28) or (N, 784) with ``flatten``; labels int64
    in 0..9. See the module docstring for where the files are found.
    """
    return _load(FASHION_MNIST, path, flatten, download, base_url)


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    flatten: bool = False,
    download: bool = True,
    base_url: str | None = None,
) -> Splits:
    """``((x_train, y_train), (x_test, y_test))`` of MNIST digits; as :func:`load_fashion_mnist`."""
    return _load(MNIST, path, flatten, download, base_url)
