"""MNIST and CIFAR-10 loaders on tiny files written here, a local download server, real files."""

import gzip
import hashlib
import http.server
import io
import os
import struct
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from twolayer.data import images as data_images
from twolayer.data.images import (
    CIFAR10,
    MNIST,
    Archive,
    DataError,
    FileSpec,
    load_images,
    two_class_subset,
)


def spec_of(name: str, content: bytes) -> FileSpec:
    return FileSpec(name, len(content), hashlib.sha256(content).hexdigest())


def idx(magic: int, array: np.ndarray) -> bytes:
    header = struct.pack(f">{1 + array.ndim}i", magic, *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def tiny_mnist(count: int = 40, seed: int = 0) -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pictures = rng.integers(1, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = np.arange(count, dtype=np.uint8) % 10
    files = {
        "train-images-idx3-ubyte.gz": idx(2051, pictures),
        "train-labels-idx1-ubyte.gz": idx(2049, labels),
        "t10k-images-idx3-ubyte.gz": idx(2051, pictures[:10]),
        "t10k-labels-idx1-ubyte.gz": idx(2049, labels[:10]),
    }
    return files, pictures, labels


def tiny_cifar(per_batch: int = 6) -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    pictures = rng.integers(1, 256, size=(6 * per_batch, 3, 32, 32), dtype=np.uint8)
    labels = (np.arange(6 * per_batch) % 10).astype(np.uint8)
    records = np.concatenate([labels[:, None], pictures.reshape(len(labels), -1)], axis=1)
    files = {
        name: records[i * per_batch : (i + 1) * per_batch].tobytes()
        for i, name in enumerate(names)
    }
    return files, pictures, labels


def dataset_for(base, files: dict[str, bytes], urls=(), **changes):
    return replace(
        base,
        files=tuple(spec_of(name, content) for name, content in files.items()),
        urls=tuple(urls),
        **changes,
    )


def write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty mirror ($TWOLAYER_DATA) and an empty cache ($TWOLAYER_CACHE)."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    monkeypatch.setenv("TWOLAYER_DATA", str(mirror))
    monkeypatch.setenv("TWOLAYER_CACHE", str(cache))
    monkeypatch.setenv("TWOLAYER_PROGRESS", "0")
    return mirror, cache


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_mnist_from_the_mirror(places):
    mirror, cache = places
    files, pictures, labels = tiny_mnist()
    write(mirror / "mnist", files)
    dataset = dataset_for(MNIST, files)
    got_images, got_labels = load_images(dataset, "train")
    assert np.array_equal(got_images, pictures) and np.array_equal(got_labels, labels)
    test_images, _ = load_images(dataset, "test")
    assert np.array_equal(test_images, pictures[:10])
    assert not (cache / "mnist").exists()  # nothing copied out of the mirror


def test_cifar_binary_records(places):
    mirror, _ = places
    files, pictures, labels = tiny_cifar()
    write(mirror / "cifar10", files)
    got_images, got_labels = load_images(dataset_for(CIFAR10, files), "train")
    assert got_images.shape == (30, 3, 32, 32)
    assert np.array_equal(got_images, pictures[:30]) and np.array_equal(got_labels, labels[:30])


def test_a_corrupt_file_is_caught_and_the_message_lists_the_places(places):
    mirror, cache = places
    files, _, _ = tiny_mnist()
    dataset = dataset_for(MNIST, files, urls=["http://127.0.0.1:9/nothing/"])
    broken = dict(files)
    content = bytearray(files["train-images-idx3-ubyte.gz"])
    content[100] ^= 0xFF
    broken["train-images-idx3-ubyte.gz"] = bytes(content)
    write(mirror / "mnist", broken)
    with pytest.raises(DataError) as caught:
        load_images(dataset, "train")
    message = str(caught.value)
    assert message.startswith("MNIST: train-images-idx3-ubyte.gz not found")
    assert "SHA-256" in message and "corrupt" in message
    assert f"$TWOLAYER_DATA/mnist: {mirror / 'mnist'}" in message
    assert f"the cache: {cache / 'mnist'}" in message
    assert "http://127.0.0.1:9/nothing/train-images-idx3-ubyte.gz" in message
    assert "set TWOLAYER_DATA" in message
    assert caught.value._render_traceback_() == [f"DataError: {message}"]


def test_a_truncated_file_is_caught_by_its_size(places):
    mirror, _ = places
    files, _, _ = tiny_mnist()
    dataset = dataset_for(MNIST, files)
    truncated = dict(files)
    truncated["train-labels-idx1-ubyte.gz"] = files["train-labels-idx1-ubyte.gz"][:-5]
    write(mirror / "mnist", truncated)
    with pytest.raises(DataError, match=r"has 35 bytes, not 40 \(truncated"):
        load_images(dataset, "train")


def test_download_tries_the_mirrors_and_rejects_a_bad_copy(places, server):
    _, cache = places
    root, base = server
    files, pictures, _ = tiny_mnist()
    write(root / "good", files)
    bad = {name: content[:-3] for name, content in files.items()}
    write(root / "bad", bad)
    dataset = dataset_for(MNIST, files, urls=[base + "missing/", base + "bad/", base + "good/"])
    got_images, _ = load_images(dataset, "train")
    assert np.array_equal(got_images, pictures)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert (cache / "mnist" / name).read_bytes() == files[name]
    assert not list((cache / "mnist").glob("*.part"))
    # a second load finds the verified copies in the cache, with the server gone
    offline = replace(dataset, urls=())
    assert np.array_equal(load_images(offline, "train")[0], pictures)


def test_a_failed_download_leaves_nothing_behind(places, server):
    _, cache = places
    root, base = server
    files, _, _ = tiny_mnist()
    write(root / "bad", {name: content[:-3] for name, content in files.items()})
    dataset = dataset_for(MNIST, files, urls=[base + "bad/"])
    with pytest.raises(DataError) as caught:
        load_images(dataset, "test")
    assert "downloaded, but" in str(caught.value) and "truncated" in str(caught.value)
    assert not any((cache / "mnist").iterdir())


def test_download_of_an_official_archive(places, server):
    _, cache = places
    root, base = server
    files, pictures, labels = tiny_cifar()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    archive = buffer.getvalue()
    (root / "tiny-cifar.tar.gz").write_bytes(archive)
    dataset = dataset_for(
        CIFAR10,
        files,
        urls=[base],
        archive=Archive(
            "tiny-cifar.tar.gz", hashlib.md5(archive).hexdigest(), "cifar-10-batches-bin"
        ),
    )
    got_images, got_labels = load_images(dataset, "test")
    assert np.array_equal(got_images, pictures[30:]) and np.array_equal(got_labels, labels[30:])
    assert sorted(p.name for p in (cache / "cifar10").iterdir()) == ["test_batch.bin"]
    wrong = replace(dataset, archive=replace(dataset.archive, md5="0" * 32))
    (cache / "cifar10" / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="its MD5 is"):
        load_images(wrong, "test")


def test_two_class_subset(places):
    mirror, cache = places
    files, pictures, labels = tiny_mnist(count=60)
    write(mirror / "mnist", files)
    dataset = dataset_for(MNIST, files)
    sample = two_class_subset(dataset, [3, 5], 10, seed=4, random_labels=0.3)
    assert sample.X.shape == (10, 784) and sample.X.dtype == torch.float64
    assert torch.allclose(sample.X.norm(dim=1), torch.ones(10, dtype=torch.float64))
    chosen = pictures[np.isin(labels, [3, 5])][sample.index].reshape(10, -1).astype(float)
    expected = chosen / np.linalg.norm(chosen, axis=1, keepdims=True)
    assert np.allclose(sample.X.numpy(), expected)
    first = labels[np.isin(labels, [3, 5])][sample.index] == 3
    assert np.array_equal(sample.clean.numpy(), np.where(first, 1.0, -1.0))
    assert int(sample.randomized.sum()) == 3
    kept = ~sample.randomized
    assert torch.equal(sample.y[kept], sample.clean[kept])
    assert set(sample.y.tolist()) <= {-1.0, 1.0}
    # reproducible by seed, from the .npy cache even without the raw files
    for path in (mirror / "mnist").iterdir():
        path.unlink()
    again = two_class_subset(dataset, [3, 5], 10, seed=4, random_labels=0.3)
    assert torch.equal(again.X, sample.X) and torch.equal(again.y, sample.y)
    assert sorted(p.suffix for p in (cache / "decoded").iterdir()) == [".npy", ".npy"]
    other = two_class_subset(dataset, [3, 5], 10, seed=5)
    assert not np.array_equal(other.index, sample.index)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": [3, 3]}, "two different classes"),
        ({"classes": [3, 10]}, "between 0 and 9"),
        ({"n": 1000}, "has 12 images of classes 3 and 5"),
        ({"random_labels": 1.5}, "random_labels"),
    ],
)
def test_two_class_subset_refuses_bad_requests(places, changes, message):
    mirror, _ = places
    files, _, _ = tiny_mnist(count=60)
    write(mirror / "mnist", files)
    request = {"classes": [3, 5], "n": 10, **changes}
    with pytest.raises(ValueError, match=message):
        two_class_subset(dataset_for(MNIST, files), request.pop("classes"), **request)


@pytest.mark.skipif(
    not (Path(os.environ.get("TWOLAYER_DATA", "/nonexistent")) / "mnist").is_dir(),
    reason="needs the local mirror of the official files (TWOLAYER_DATA)",
)
def test_the_official_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_CACHE", str(tmp_path))
    _, mnist_labels = load_images("mnist", "test")
    assert np.bincount(mnist_labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009,
    ]
    cifar_images, cifar_labels = load_images("cifar10", "test")
    assert cifar_images.shape == (10000, 3, 32, 32)
    assert cifar_labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert np.bincount(cifar_labels).tolist() == [1000] * 10


def test_the_registry_holds_the_published_checksums():
    assert MNIST.spec["train-images-idx3-ubyte.gz"].sha256.startswith("440fcabf73cc546f")
    assert CIFAR10.archive.md5 == "c32a1d4ab5d03f1284b67883e8d87530"
    assert all(spec.size == 30730000 for spec in CIFAR10.files)
    assert data_images.DATASETS == {"mnist": MNIST, "cifar10": CIFAR10}
