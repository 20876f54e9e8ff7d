"""Plumbing shared by the three notebooks: finding data, turning text and images into arrays,
and setting up MXNet on this machine. The models and training loops are not here: they are
the lesson, so they live in the notebooks.

Import this module *before* mxnet: on import it sets two environment variables that MXNet
reads once, when it starts, unless they are already set:

- ``OMP_NUM_THREADS``: the number of CPU cores this process may use. MXNet's default starts
  more OpenMP threads than a small machine has cores, and they get in each other's way.
- ``MXNET_ENGINE_TYPE=NaiveEngine``, with the CPU build of MXNet only: the synchronous engine,
  which runs each operator when Python calls it. The default, asynchronous engine runs them on
  worker threads so that Python can queue work while a GPU computes; on a CPU those workers
  only compete with OpenMP's threads for the same cores.

``GENMODELS_MXNET_DEFAULT_THREADS=1`` and ``GENMODELS_MXNET_DEFAULT_ENGINE=1`` keep MXNet's own
defaults instead, to measure them (see README, "Speed on a small CPU").
"""
import hashlib
import json
import os
import random
import sys
from importlib import metadata
from pathlib import Path


def cpu_cores():
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def mxnet_is_cpu_build():
    """True when the installed MXNet is the CPU build (the wheel named `mxnet`, not `mxnet-cu112`...)."""
    try:
        metadata.distribution("mxnet")
    except metadata.PackageNotFoundError:
        return False
    return True


if "mxnet" in sys.modules and "OMP_NUM_THREADS" not in os.environ:
    print("helpers: mxnet was imported before helpers; its thread count and engine are MXNet's "
          "defaults. Import helpers first for the faster settings.", file=sys.stderr)
if os.environ.get("GENMODELS_MXNET_DEFAULT_THREADS") != "1":  # "1": keep MXNet's default, to measure it
    os.environ.setdefault("OMP_NUM_THREADS", str(cpu_cores()))
if os.environ.get("GENMODELS_MXNET_DEFAULT_ENGINE") != "1" and mxnet_is_cpu_build():
    os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")

import cv2  # noqa: E402  (after the thread and engine settings, on purpose)
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR = "GENMODELS_DATA_DIR"
SMOKE_ENV_VAR = "GENMODELS_SMOKE"
WEIGHTS_DIR = REPO_ROOT / "weights"

NIETZSCHE_FILE = "nietzsche.txt"
NIETZSCHE_URL = "https://s3.amazonaws.com/text-datasets/nietzsche.txt"
NIETZSCHE_SHA256 = "1f6258f517f66e336983f76bdb66d53614701e511100908b8eada9bccd1d1300"
FACES_FOLDER = "anime-faces/images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PADDING = "\0"


# ---------------------------------------------------------------- machine and randomness

def smoke_test():
    """True when the tests ask for a quick run (environment variable GENMODELS_SMOKE=1)."""
    return os.environ.get(SMOKE_ENV_VAR, "") not in ("", "0")


def choose_device():
    """The first GPU when MXNet sees one, else the CPU."""
    return mx.gpu(0) if mx.context.num_gpus() > 0 else mx.cpu()


def seed_everything(seed):
    """Seed Python's, NumPy's and MXNet's random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


# ---------------------------------------------------------------- finding data

def data_dirs():
    """Where data is looked for, in order: $GENMODELS_DATA_DIR (if set), then data/."""
    dirs = []
    if os.environ.get(DATA_ENV_VAR):
        dirs.append(Path(os.environ[DATA_ENV_VAR]).expanduser())
    dirs.append(REPO_ROOT / "data")
    return dirs


def sha256_of(path):
    """SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_data(relative_path):
    """Path of a data file or folder in the first data directory that has it.

    Raises FileNotFoundError naming every place looked in and how to fix it.
    """
    for folder in data_dirs():
        candidate = folder / relative_path
        if candidate.exists():
            return candidate
    looked_in = ", ".join(str(folder / relative_path) for folder in data_dirs())
    raise FileNotFoundError(
        f"{relative_path} not found (looked in: {looked_in}). Put it in data/{relative_path} "
        f"inside the repository, or set {DATA_ENV_VAR} to a folder that holds it; "
        "data/README.md says where to get it.")


def nietzsche_path(download=True):
    """Path of the verified Nietzsche text: found locally, else downloaded into data/.

    The file's SHA-256 is checked either way; a mismatch raises ValueError.
    """
    try:
        path = find_data(NIETZSCHE_FILE)
    except FileNotFoundError:
        if not download:
            raise
        path = _download_nietzsche()
    actual = sha256_of(path)
    if actual != NIETZSCHE_SHA256:
        raise ValueError(
            f"checksum mismatch for {path}: SHA-256 is {actual}, expected {NIETZSCHE_SHA256}. "
            "The file is damaged or a different text; delete it and run again to download it.")
    return path


def _download_nietzsche():
    import pooch  # only needed when the text is not on disk

    target = REPO_ROOT / "data"
    try:
        return Path(pooch.retrieve(NIETZSCHE_URL, known_hash=f"sha256:{NIETZSCHE_SHA256}",
                                   fname=NIETZSCHE_FILE, path=target, progressbar=False))
    except Exception as error:  # network down, proxy, or a changed file upstream
        raise FileNotFoundError(
            f"{NIETZSCHE_FILE} is not on disk and the download from {NIETZSCHE_URL} failed "
            f"({error}). Download it by hand into {target / NIETZSCHE_FILE}, or set "
            f"{DATA_ENV_VAR} to a folder that holds it.") from error


def faces_folder():
    """Folder of the anime-face images (data/anime-faces/images or under $GENMODELS_DATA_DIR)."""
    return find_data(FACES_FOLDER)


# ---------------------------------------------------------------- text

def read_text(path):
    """The whole file as one string (UTF-8)."""
    return Path(path).read_text(encoding="utf-8")


def build_vocabulary(text):
    """Sorted distinct characters, after a padding slot at index 0, as the original did.

    Returns (index_to_char, char_to_index): a list and a dict.
    """
    index_to_char = [PADDING] + sorted(set(text) - {PADDING})
    char_to_index = {char: index for index, char in enumerate(index_to_char)}
    return index_to_char, char_to_index


def encode(text, char_to_index):
    """Indices of the characters of `text` as an int32 array.

    Raises ValueError naming the characters that are not in the vocabulary.
    """
    unknown = sorted(set(text) - set(char_to_index))
    if unknown:
        raise ValueError(f"characters not in the vocabulary: {unknown!r}; "
                         "use only characters that occur in the training text")
    return np.array([char_to_index[char] for char in text], dtype=np.int32)


def decode(indices, index_to_char):
    """The string spelled by a sequence of indices (a list, NumPy array or NDArray)."""
    indices = indices.asnumpy() if hasattr(indices, "asnumpy") else indices
    return "".join(index_to_char[int(index)] for index in indices)


def three_char_windows(indices, width=3):
    """Non-overlapping windows of `width` characters and the character after each.

    Windows start every `width` characters (stride 3, as in the original).
    Returns (inputs of shape (n, width), targets of shape (n,)).
    """
    indices = np.asarray(indices)
    starts = np.arange(0, len(indices) - width, width)
    inputs = np.stack([indices[starts + offset] for offset in range(width)], axis=1)
    return inputs, indices[starts + width]


def split_by_position(indices, valid_fraction=0.1):
    """(train, valid): the last `valid_fraction` of the sequence is held out, in order."""
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    cut = int(round(len(indices) * (1 - valid_fraction)))
    return indices[:cut], indices[cut:]


def batchify(indices, batch_size, ctx=None):
    """Cut a sequence into `batch_size` equal columns: an NDArray of shape (steps, batch).

    Column j holds the j-th contiguous stretch of the text; the tail that does not fill a
    whole row is dropped.
    """
    steps = len(indices) // batch_size
    if steps < 2:
        raise ValueError(f"{len(indices)} characters are too few for batch size {batch_size}")
    columns = np.asarray(indices[:steps * batch_size], dtype=np.float32).reshape(batch_size, steps)
    return mx.nd.array(columns.T, ctx=ctx or mx.cpu())


def get_batch(source, start, seq_length):
    """Inputs source[start:start+L] and targets shifted by one step (L <= seq_length)."""
    length = min(seq_length, source.shape[0] - 1 - start)
    return source[start:start + length], source[start + 1:start + 1 + length]


def detach(hidden):
    """Cut the hidden state(s) from the graph so back-propagation stops at this batch."""
    if isinstance(hidden, (list, tuple)):
        return [detach(state) for state in hidden]
    return hidden.detach()


# ---------------------------------------------------------------- images

def list_images(folder):
    """Image files (jpg, jpeg, png) under `folder`, recursively, sorted.

    Raises FileNotFoundError for a missing folder and ValueError when it holds no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image folder {folder} does not exist. Put the face images (jpg/png) in "
            f"data/{FACES_FOLDER}, or set {DATA_ENV_VAR} to a folder holding {FACES_FOLDER}.")
    files = sorted(path for path in folder.rglob("*")
                   if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"image folder {folder} holds no .jpg, .jpeg or .png files; "
                         "put the face images there")
    return files


def load_image(path, size=64):
    """One image as float32 CHW RGB in [-1, 1], resized to size x size; None if undecodable."""
    raw = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if image is None:
        return None
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0


def load_images(folder, size=64, limit=None):
    """Decode the images of a folder into one NDArray of shape (n, 3, size, size) in [-1, 1].

    Files that do not decode are skipped, not fatal. Returns (images, skipped_paths).
    """
    files = list_images(folder)[:limit]
    images, skipped = [], []
    for path in files:
        image = load_image(path, size)
        (skipped.append(path) if image is None else images.append(image))
    if not images:
        raise ValueError(f"none of the {len(files)} image files in {folder} could be decoded")
    return mx.nd.array(np.stack(images)), skipped


def image_grid(images, columns=8):
    """Tile an (n, 3, h, w) batch in [-1, 1] into one HWC uint8 picture."""
    images = images.asnumpy() if hasattr(images, "asnumpy") else np.asarray(images)
    count, channels, height, width = images.shape
    rows = -(-count // columns)
    grid = np.ones((rows * (height + 2) + 2, columns * (width + 2) + 2, channels), np.float32)
    for index, image in enumerate(images):
        top, left = 2 + (index // columns) * (height + 2), 2 + (index % columns) * (width + 2)
        grid[top:top + height, left:left + width] = (image.transpose(1, 2, 0) + 1) / 2
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def show_images(images, columns=8, title=None, path=None):
    """Show a batch of images in a grid with matplotlib; also save it as PNG when `path` is given."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, columns)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        plt.imsave(path, grid)
    scale = grid.shape[1] / 66 * 1.1
    plt.figure(figsize=(scale, scale * grid.shape[0] / grid.shape[1]))
    plt.imshow(grid)
    plt.axis("off")
    if title:
        plt.title(title)
    plt.show()


# ---------------------------------------------------------------- files that must not be half-written

def atomic_write(path, write):
    """Call write(temporary_path), then move the result onto `path` in one step.

    A crash or an error inside `write` leaves any earlier file at `path` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        write(str(temporary))
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


# ---------------------------------------------------------------- shipped weights and their manifest

MANIFEST = WEIGHTS_DIR / "manifest.json"


def read_manifest():
    """The weights manifest: {file name: details}, empty when there is none yet."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def record_weights(file_name, **details):
    """Add or replace the manifest entry of weights/<file_name>, with its SHA-256."""
    entries = read_manifest()
    entries[file_name] = {"sha256": sha256_of(WEIGHTS_DIR / file_name), **details}
    text = json.dumps(entries, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    atomic_write(MANIFEST, lambda temporary: Path(temporary).write_text(text))
    return entries[file_name]


def verified_weights(file_name):
    """Path of weights/<file_name> after checking it against its manifest entry.

    Returns (path, manifest entry). Raises FileNotFoundError when the file or its entry is
    missing and ValueError when the file's SHA-256 differs from the manifest's.
    """
    path = WEIGHTS_DIR / file_name
    entry = read_manifest().get(file_name)
    if not path.exists() or entry is None:
        raise FileNotFoundError(
            f"{path} or its entry in {MANIFEST.name} is missing: run the notebook with "
            "TRAIN = True to train and save it, or restore it with git checkout weights/")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise ValueError(f"checksum mismatch for {path}: SHA-256 is {actual}, the manifest says "
                         f"{entry['sha256']}; restore it with git checkout weights/")
    return path, entry


def output_dir():
    """Folder for generated text and image grids: $GENMODELS_OUTPUT_DIR, else outputs/ (git-ignored)."""
    folder = Path(os.environ.get("GENMODELS_OUTPUT_DIR") or REPO_ROOT / "outputs")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
