"""MNIST and CIFAR-10 from their official files, and the two-class subsets of arora2019.

The files are looked for, in this order:

1. ``$TWOLAYER_DATA/<dataset>/`` under their official names: a local mirror, only read;
2. the cache ``<cache>/<dataset>/``, where ``<cache>`` is ``$TWOLAYER_CACHE``, else
   ``$XDG_CACHE_HOME/twolayer``, else ``~/.cache/twolayer``;
3. the official sources and their mirrors, downloaded into the cache with a progress bar.

Every file is checked against its published size and SHA-256 before it is decoded, and a
download that does not match is thrown away. CIFAR-10 is read from its official *binary*
version (records of one label byte and 3072 pixel bytes); nothing is ever unpickled. Once
decoded, the images of a pair of classes are cached as plain ``.npy`` arrays under
``<cache>/decoded/``, so later runs skip the files altogether.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import struct
import tarfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from twolayer.rng import derive_seed

DATA_VARIABLE = "TWOLAYER_DATA"
CACHE_VARIABLE = "TWOLAYER_CACHE"
_CHUNK = 1 << 20


class DataError(Exception):
    """A data file that is missing, cannot be downloaded, or does not match its checksum.

    The message says where the file was looked for and how to provide it; notebooks show
    it without a traceback.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"DataError: {self}"]


@dataclass(frozen=True)
class FileSpec:
    """One official file: its name, its size in bytes and its SHA-256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Archive:
    """An official archive whose members ``<folder>/<file name>`` are the data files."""

    name: str
    md5: str
    folder: str


@dataclass(frozen=True)
class Dataset:
    """Where a data set comes from and how its files are laid out.

    ``splits`` maps a split to its files: for MNIST (images, labels), for CIFAR-10 the
    batches. A file is downloaded from ``<url><name>`` for each URL in turn, or, when the
    data set ships as an ``archive``, the archive is downloaded from ``<url><archive name>``.
    """

    key: str
    title: str
    files: tuple[FileSpec, ...]
    splits: dict[str, tuple[str, ...]]
    urls: tuple[str, ...]
    home: str
    image_shape: tuple[int, ...]
    classes: tuple[str, ...]
    format: str  # "idx" (gzip-compressed IDX) or "cifar-binary"
    archive: Archive | None = None
    spec: dict[str, FileSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", {f.name: f for f in self.files})


MNIST = Dataset(
    key="mnist",
    title="MNIST",
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ),
    splits={
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    },
    urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    home="http://yann.lecun.com/exdb/mnist/",
    image_shape=(28, 28),
    classes=tuple(str(digit) for digit in range(10)),
    format="idx",
)

_CIFAR_SIZE = 30730000
CIFAR10 = Dataset(
    key="cifar10",
    title="CIFAR-10",
    files=tuple(
        FileSpec(name, _CIFAR_SIZE, digest)
        for name, digest in (
            ("data_batch_1.bin",
             "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5"),
            ("data_batch_2.bin",
             "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed"),
            ("data_batch_3.bin",
             "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67"),
            ("data_batch_4.bin",
             "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48"),
            ("data_batch_5.bin",
             "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"),
            ("test_batch.bin",
             "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"),
        )
    ),
    splits={
        "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        "test": ("test_batch.bin",),
    },
    urls=("https://www.cs.toronto.edu/~kriz/",),
    home="https://www.cs.toronto.edu/~kriz/cifar.html (the binary version)",
    image_shape=(3, 32, 32),
    classes=(
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
    format="cifar-binary",
    archive=Archive(
        "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin"
    ),
)

DATASETS = {MNIST.key: MNIST, CIFAR10.key: CIFAR10}


# ---------------------------------------------------------------------------------- places


def cache_dir() -> Path:
    """The per-user cache: ``$TWOLAYER_CACHE``, else ``$XDG_CACHE_HOME/twolayer``, else
    ``~/.cache/twolayer``."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "twolayer"


def search_folders(dataset: Dataset) -> list[tuple[str, Path]]:
    """The folders searched for the files, in order, each with a label for messages."""
    folders = []
    mirror = os.environ.get(DATA_VARIABLE)
    if mirror:
        folders.append((f"${DATA_VARIABLE}/{dataset.key}", Path(mirror) / dataset.key))
    folders.append(("the cache", cache_dir() / dataset.key))
    return folders


# ------------------------------------------------------------------------------- checksums


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_problem(path: Path, spec: FileSpec) -> str | None:
    """Why ``path`` is not the official file ``spec`` (size, then SHA-256), or None."""
    size = path.stat().st_size
    if size != spec.size:
        return f"{path} has {size} bytes, not {spec.size} (truncated or not the official file)"
    digest = _digest(path, "sha256")
    if digest != spec.sha256:
        return f"{path} has SHA-256 {digest}, not {spec.sha256} (corrupt or not the official file)"
    return None


# ------------------------------------------------------------------------------- download


def _progress_disabled() -> bool:
    return os.environ.get("TWOLAYER_PROGRESS", "1") == "0"


def _fetch(url: str, target: Path) -> None:
    """Stream ``url`` into ``target`` with a progress bar; raise OSError on any failure."""
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=f"downloading {target.name}",
            disable=_progress_disabled(),
            leave=False,
        )
        with bar, target.open("wb") as out:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _download_file(url: str, target: Path, check) -> str | None:
    """Download ``url`` to ``target`` if ``check`` accepts it; return why not, or None."""
    partial = target.with_name(target.name + ".part")
    try:
        _fetch(url, partial)
    except (OSError, http.client.HTTPException, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        return f"{url}: {type(error).__name__}: {reason}"
    problem = check(partial)
    if problem is not None:
        partial.unlink(missing_ok=True)
        return f"{url}: downloaded, but {problem}"
    partial.replace(target)
    return None


def _download(dataset: Dataset, names: Sequence[str], folder: Path) -> list[str]:
    """Download the missing ``names`` into ``folder``; return the failures (empty if none)."""
    folder.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    if dataset.archive is not None:
        archive = dataset.archive
        target = folder / archive.name

        def check(path: Path) -> str | None:
            digest = _digest(path, "md5")
            return None if digest == archive.md5 else f"its MD5 is {digest}, not {archive.md5}"

        for url in dataset.urls:
            problem = _download_file(url + archive.name, target, check)
            if problem is None:
                break
            failures.append(problem)
        else:
            return failures
        failures = []
        with tarfile.open(target, "r:gz") as tar:
            for name in names:
                try:
                    member = tar.getmember(f"{archive.folder}/{name}")
                except KeyError:
                    failures.append(f"{target}: no member {archive.folder}/{name}")
                    continue
                source = tar.extractfile(member)
                if source is None:
                    failures.append(f"{target}: {member.name} is not a regular file")
                    continue
                partial = folder / (name + ".part")
                with source, partial.open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                problem = file_problem(partial, dataset.spec[name])
                if problem is None:
                    partial.replace(folder / name)
                else:
                    partial.unlink()
                    failures.append(f"{target}: {problem}")
        target.unlink()
        return failures
    for name in names:
        spec = dataset.spec[name]
        attempts = []
        for url in dataset.urls:
            target = folder / name
            problem = _download_file(url + name, target, lambda p, s=spec: file_problem(p, s))
            if problem is None:
                attempts = []
                break
            attempts.append(problem)
        failures += attempts
    return failures


def locate(dataset: Dataset, names: Sequence[str]) -> dict[str, Path]:
    """Find (or download into the cache) verified copies of the files ``names``.

    Raises DataError with one message that lists every place searched, every download tried
    and how to provide the files.
    """
    found: dict[str, Path] = {}
    problems: list[str] = []
    folders = search_folders(dataset)
    for name in names:
        for _, folder in folders:
            path = folder / name
            if path.is_file():
                problem = file_problem(path, dataset.spec[name])
                if problem is None:
                    found[name] = path
                    break
                problems.append(problem)
    missing = [name for name in names if name not in found]
    if not missing:
        return found
    cache = cache_dir() / dataset.key
    failures = _download(dataset, missing, cache)
    for name in missing:
        path = cache / name
        if path.is_file() and file_problem(path, dataset.spec[name]) is None:
            found[name] = path
    still = [name for name in names if name not in found]
    if not still:
        return found
    lines = [
        f"{dataset.title}: {', '.join(still)} not found and could not be downloaded.",
        "Looked in:",
        *(f"  {label}: {folder}" for label, folder in folders),
        *(f"  {problem}" for problem in problems),
        "Downloads tried:",
        *(f"  {failure}" for failure in failures or ["none: no download source is known"]),
        f"To provide the files, put the official files ({dataset.home}) under their official "
        f"names into {cache}, or set {DATA_VARIABLE} to a folder that holds "
        f"{dataset.key}/ with them.",
    ]
    raise DataError("\n".join(lines))


# -------------------------------------------------------------------------------- decoding


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An IDX array (big-endian header: magic, then ``dims`` sizes), gzip-compressed."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    header = 4 * (1 + dims)
    values = struct.unpack(f">{1 + dims}i", data[:header])
    if values[0] != magic:
        raise DataError(f"{path}: IDX magic number {values[0]}, expected {magic}")
    shape = values[1:]
    if len(data) != header + int(np.prod(shape)):
        raise DataError(f"{path}: {len(data) - header} data bytes for an array of shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _decode_mnist(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(paths[0], 2051, 3)
    labels = _read_idx(paths[1], 2049, 1)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} {len(labels)} labels")
    return images, labels


def _decode_cifar(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    records = np.concatenate(
        [np.fromfile(path, dtype=np.uint8).reshape(-1, 3073) for path in paths]
    )
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].copy()


def load_images(dataset: str | Dataset, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Every image and label of one split, as uint8 arrays: (N, *image_shape) and (N,).

    MNIST images are (28, 28); CIFAR-10 images are (3, 32, 32), channels red, green, blue.
    """
    spec = DATASETS[dataset] if isinstance(dataset, str) else dataset
    if split not in spec.splits:
        raise ValueError(f"split = {split!r} is not allowed: expected one of {list(spec.splits)}")
    names = spec.splits[split]
    found = locate(spec, names)
    paths = [found[name] for name in names]
    return (_decode_cifar if spec.format == "cifar-binary" else _decode_mnist)(paths)


def _two_class_images(spec: Dataset, split: str, classes: tuple[int, int]):
    """The images and labels of two classes of one split, through the ``.npy`` cache."""
    stem = f"{spec.key}-{split}-{classes[0]}-{classes[1]}"
    folder = cache_dir() / "decoded"
    images_path, labels_path = folder / f"{stem}-images.npy", folder / f"{stem}-labels.npy"
    if images_path.is_file() and labels_path.is_file():
        return (
            np.load(images_path, allow_pickle=False),
            np.load(labels_path, allow_pickle=False),
        )
    images, labels = load_images(spec, split)
    keep = np.isin(labels, classes)
    images, labels = np.ascontiguousarray(images[keep]), labels[keep]
    folder.mkdir(parents=True, exist_ok=True)
    for path, array in ((images_path, images), (labels_path, labels)):
        partial = path.with_name(path.stem + ".part.npy")
        np.save(partial, array, allow_pickle=False)
        partial.replace(path)
    return images, labels


@dataclass(frozen=True)
class TwoClassSubset:
    """A two-class sample: unit-norm inputs ``X`` (n, d), labels ``y`` in {-1, +1}.

    ``clean`` holds the labels before any was replaced by a random one, ``randomized``
    marks the replaced ones and ``index`` the images' positions among the two classes.
    """

    X: torch.Tensor
    y: torch.Tensor
    clean: torch.Tensor
    randomized: torch.Tensor
    index: np.ndarray


def two_class_subset(
    dataset: str | Dataset,
    classes: Sequence[int],
    n: int,
    *,
    split: str = "train",
    seed: int = 0,
    random_labels: float = 0.0,
) -> TwoClassSubset:
    """``n`` images of two classes with labels +1 (first class) and -1 (second), arora2019 §4.

    The images are drawn without replacement by ``seed``, flattened and scaled to unit norm.
    A fraction ``random_labels`` of them (chosen by ``seed`` as well) gets a label drawn
    uniformly from {-1, +1} instead, the random-label experiments of arora2019 Figures 1-2.
    """
    spec = DATASETS[dataset] if isinstance(dataset, str) else dataset
    pair = tuple(int(c) for c in classes)
    if len(pair) != 2 or pair[0] == pair[1] or not all(0 <= c < len(spec.classes) for c in pair):
        raise ValueError(
            f"classes = {list(classes)!r} is not allowed: expected two different classes "
            f"between 0 and {len(spec.classes) - 1}"
        )
    if not 0.0 <= random_labels <= 1.0:
        raise ValueError(f"random_labels = {random_labels!r} is not allowed: expected 0 to 1")
    images, labels = _two_class_images(spec, split, pair)
    if not 1 <= n <= len(labels):
        raise ValueError(
            f"n = {n} is not allowed: the {split} split of {spec.title} has {len(labels)} "
            f"images of classes {pair[0]} and {pair[1]}"
        )
    rng = np.random.default_rng(derive_seed(seed, "subset", spec.key, split, *pair))
    index = np.sort(rng.permutation(len(labels))[:n])
    X = torch.from_numpy(images[index].reshape(n, -1).astype(np.float64))
    norms = X.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise DataError(f"{spec.title}: an image of the sample is all zeros and has no direction")
    clean = torch.from_numpy(np.where(labels[index] == pair[0], 1.0, -1.0))
    randomized = torch.zeros(n, dtype=torch.bool)
    randomized[torch.from_numpy(rng.permutation(n)[: round(random_labels * n)])] = True
    coins = torch.from_numpy(rng.integers(0, 2, size=n).astype(np.float64) * 2 - 1)
    y = torch.where(randomized, coins, clean)
    return TwoClassSubset(X / norms, y, clean, randomized, index)
