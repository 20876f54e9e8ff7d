"""What the notebooks share: checking parameters, text and images as arrays, pictures and panels.
Models and training loops are the lesson, so they live in the notebooks; files on disk (the data,
checkpoints, weights) are storage.py's.

Import this module before mxnet. It sets two variables MXNet reads once, at start, unless they
are set already: OMP_NUM_THREADS (this process's cores; MXNet's default starts more threads than
a laptop has cores) and, for the CPU build, MXNET_ENGINE_TYPE=NaiveEngine (runs each operator
when Python calls it; the threaded engine only competes with OpenMP for the same cores).
GENMODELS_MXNET_DEFAULT_THREADS=1 and GENMODELS_MXNET_DEFAULT_ENGINE=1 keep MXNet's defaults.
"""
import hashlib
import math
import os
import random
import sys
import tempfile
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR, SMOKE_ENV_VAR = "GENMODELS_DATA_DIR", "GENMODELS_SMOKE"
FACES_FOLDER, DOWNLOADED_FACES = "anime-faces/images", "anime-faces/faces"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PADDING = "\0"


class OneLineError(Exception):
    """An error whose message says everything: IPython shows that one line, no traceback."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


class ParameterError(OneLineError, ValueError):
    """A parameter (or environment variable) has a value the notebook cannot use."""


class DataUnavailable(OneLineError, FileNotFoundError):
    """A data set is missing, damaged, or cannot be downloaded."""


class TrainingDiverged(OneLineError, RuntimeError):
    """The training loss stopped being a finite number."""


class WrongCheckout(OneLineError, ImportError):
    """The notebook lives in one checkout and this module in another."""


def cpu_cores():
    """Number of CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_checkout():
    """A notebook must import the helpers beside it. The kernel's folder, or the notebook Jupyter
    names in JPY_SESSION_NAME, holding another helpers.py means this one came from another
    checkout (through a virtual environment's .pth file): refuse in one line."""
    places = [Path.cwd(), Path.cwd() / "notebooks"]
    if os.environ.get("JPY_SESSION_NAME", "").endswith(".ipynb"):
        places.insert(0, Path(os.environ["JPY_SESSION_NAME"]).parent)
    for place in places:
        other = place / "helpers.py"
        if other.is_file() and other.resolve() != Path(__file__).resolve():
            raise WrongCheckout(f"this notebook's folder {place} has its own helpers.py, but Python imported "
                                f"{__file__} from another checkout; start Jupyter from {place.parent} "
                                "(make lab there), or run with that checkout's .venv")


_check_checkout()
if "mxnet" in sys.modules and "OMP_NUM_THREADS" not in os.environ:
    print("helpers: mxnet was imported first, so it keeps its default threads and engine", file=sys.stderr)
if os.environ.get("GENMODELS_MXNET_DEFAULT_THREADS") != "1":
    os.environ.setdefault("OMP_NUM_THREADS", str(cpu_cores()))
try:
    metadata.distribution("mxnet")  # the CPU build; GPU builds are named mxnet-cu112 and so on
    if os.environ.get("GENMODELS_MXNET_DEFAULT_ENGINE") != "1":
        os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")
except metadata.PackageNotFoundError:
    pass

import cv2  # noqa: E402  (after the thread and engine settings, on purpose)
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

ENGINE_LINE = "MXNet start using engine:"


def _start_engine_quietly():
    """Start MXNet's engine now with stderr sent to a file: dmlc logs "MXNet start using engine"
    whenever MXNET_ENGINE_TYPE is set, and Jupyter shows it in red. Anything else is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            mx.nd.waitall()  # the first call into the engine creates it
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        rest = [line for line in captured.read().decode(errors="replace").splitlines(True) if ENGINE_LINE not in line]
    sys.stderr.write("".join(rest))


_start_engine_quietly()


# ---------------------------------------------------------------- parameters

def check(condition, message):
    """Raise ParameterError(message) unless `condition` holds; the message names the parameter,
    its value and what to try."""
    if not condition:
        raise ParameterError(message)


def check_parameters(values, rules, shipped=None):
    """Check a notebook's parameters (`values`: its globals()) against `rules`, {NAME: rule}: `bool`,
    a set of choices, or (int or float, minimum, maximum[, "or None"]) with None for an open end.
    The hint is the shipped weights' value (`shipped`, keys in lower case). Raises ParameterError."""
    for name, rule in rules.items():
        value, hint = values[name], (shipped or {}).get(name.lower())
        hint = f"; try {hint!r}" if hint is not None else ""
        if rule is bool:
            check(isinstance(value, bool), f"{name} = {value!r} must be True or False")
        elif isinstance(rule, (set, frozenset)):
            check(value in rule, f"{name} = {value!r} must be one of {', '.join(map(repr, sorted(rule)))}{hint}")
        elif not (len(rule) == 4 and value is None):
            kind, low, high = rule[:3]
            number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            fits = (number and math.isfinite(value) and (kind is float or float(value).is_integer())
                    and (low is None or value >= low) and (high is None or value <= high))
            allowed = "a whole number" if kind is int else "a number"
            allowed += (f" from {low} to {high}" if low is not None and high is not None else
                        f" of at least {low}" if low is not None else f" of at most {high}" if high is not None else "")
            check(fits, f"{name} = {value!r} must be {allowed}{' or None' if len(rule) == 4 else ''}{hint}")


def smoke_test():
    """True when the tests ask for a quick run: GENMODELS_SMOKE is 1, true, yes or on. Unset,
    empty, 0, false, no and off mean a full run; anything else is a ParameterError (a typo must not
    turn an hour of training into a minute, or the reverse)."""
    value = os.environ.get(SMOKE_ENV_VAR, "").strip().lower()
    check(value in ("1", "true", "yes", "on", "", "0", "false", "no", "off"),
          f"{SMOKE_ENV_VAR} = {value!r} is not understood; set it to 1 (a quick run) or 0, or unset it")
    return value in ("1", "true", "yes", "on")


def apply_smoke(values, **small):
    """In a quick test run (smoke_test()), set the parameters in `small` in `values` (a notebook's
    globals()) and print one line saying so."""
    if smoke_test():
        values.update(small)
        print("smoke test: " + ", ".join(f"{name} = {value!r}" for name, value in small.items()))


def check_loss(loss, where, explode_above=None, **knobs):
    """The loss as a float, or TrainingDiverged naming `where` ("epoch 3") and the `knobs` to lower
    (LEARNING_RATE=LEARNING_RATE, ...) when it is not a finite number or is above `explode_above`."""
    loss = float(loss)
    if math.isfinite(loss) and (explode_above is None or loss <= explode_above):
        return loss
    settings = " or ".join(f"{name} (now {value})" for name, value in knobs.items()) or "the learning rate"
    raise TrainingDiverged(f"the training loss became {loss:.6g} at {where}, so the run diverged; lower "
                           f"{settings} in the parameters cell and train again with FRESH_START = True")


def choose_device():
    """The first GPU when MXNet sees one, else the CPU."""
    return mx.gpu(0) if mx.context.num_gpus() > 0 else mx.cpu()


def seed_everything(seed):
    """Seed Python's, NumPy's and MXNet's random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def epoch_seed(seed, epoch):
    """The seed of epoch `epoch` of a run seeded with `seed`: each epoch's draws depend on (seed,
    epoch) only, so a run resumed from a checkpoint draws what an uninterrupted one draws."""
    digest = hashlib.sha256(f"genmodels-epoch-seed:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2 ** 31 - 1)


# ---------------------------------------------------------------- paths

def shown_path(path):
    """`path` as a message shows it: relative to the repository when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def output_dir():
    """Folder for generated text and pictures: $GENMODELS_OUTPUT_DIR, else outputs/ (git-ignored)."""
    folder = Path(os.environ.get("GENMODELS_OUTPUT_DIR") or REPO_ROOT / "outputs")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------- text

def read_text(path):
    """The whole file as one string (UTF-8)."""
    return Path(path).read_text(encoding="utf-8")


def build_vocabulary(text):
    """(index_to_char, char_to_index): a padding slot at index 0, then the sorted characters."""
    index_to_char = [PADDING] + sorted(set(text) - {PADDING})
    return index_to_char, {char: index for index, char in enumerate(index_to_char)}


def encode(text, char_to_index):
    """The indices of `text` as int32; ValueError naming characters the vocabulary lacks."""
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
    """Windows of `width` characters every `width` characters, and the character after each:
    (inputs (n, width), targets (n,))."""
    indices = np.asarray(indices)
    starts = np.arange(0, len(indices) - width, width)
    return np.stack([indices[starts + offset] for offset in range(width)], axis=1), indices[starts + width]


def split_by_position(indices, valid_fraction=0.1):
    """(train, valid): the last `valid_fraction` of the sequence is held out, in order."""
    check(0 < valid_fraction < 1, f"valid_fraction = {valid_fraction} must be between 0 and 1; try 0.1")
    cut = int(round(len(indices) * (1 - valid_fraction)))
    return indices[:cut], indices[cut:]


def batchify(indices, batch_size, ctx=None):
    """Cut a sequence into `batch_size` columns, column j the j-th stretch of the text: an NDArray
    (steps, batch_size). The tail that does not fill a row is dropped."""
    steps = len(indices) // batch_size
    check(steps >= 2, f"{len(indices)} characters are too few for a batch size of {batch_size}; lower it")
    columns = np.asarray(indices[:steps * batch_size], dtype=np.float32).reshape(batch_size, steps)
    return mx.nd.array(columns.T, ctx=ctx or mx.cpu())


def get_batch(source, start, seq_length):
    """Inputs source[start:start+L] and the targets one step later (L <= seq_length)."""
    length = min(seq_length, source.shape[0] - 1 - start)
    return source[start:start + length], source[start + 1:start + 1 + length]


def detach(hidden):
    """Cut the hidden state(s) from the graph, so back-propagation stops at this batch."""
    return [detach(state) for state in hidden] if isinstance(hidden, (list, tuple)) else hidden.detach()


# ---------------------------------------------------------------- images

def list_images(folder):
    """The .jpg, .jpeg and .png files under `folder`, recursively (links followed, each folder once), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataUnavailable(f"image folder {shown_path(folder)} is not a folder; put the faces in "
                              f"data/{FACES_FOLDER} or set {DATA_ENV_VAR}")
    files, seen = [], set()
    for root, folders, names in os.walk(folder, followlinks=True):
        status = os.stat(root)
        if (status.st_dev, status.st_ino) in seen:  # a link loop, or a second way into one folder
            folders[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        files += [Path(root, name) for name in names
                  if Path(name).suffix.lower() in IMAGE_SUFFIXES and Path(root, name).is_file()]
    files.sort()
    if not files:
        raise DataUnavailable(f"image folder {shown_path(folder)} holds no .jpg, .jpeg or .png files; put faces there")
    return files


def check_image_folder(folder, batch_size=None):
    """The images of the folder IMAGE_FOLDER names, or one ParameterError: not a folder, no images,
    or (with `batch_size`) fewer images than one batch."""
    try:
        files = list_images(folder)
    except DataUnavailable as problem:
        raise ParameterError(f"IMAGE_FOLDER = {str(folder)!r}: {problem}") from None
    check(batch_size is None or len(files) >= batch_size,
          f"IMAGE_FOLDER = {str(folder)!r} holds {len(files)} images, fewer than BATCH_SIZE = {batch_size}; "
          f"set BATCH_SIZE to {len(files)} or less, or add images")
    return files


def load_image(path, size=64):
    """One image as uint8 RGB (3, size, size), or None when it does not decode or is a truncated JPEG
    (no end-of-image marker after its last scan). Grey is expanded, 16 bits scaled, transparency
    composited onto white."""
    raw = np.fromfile(str(path), dtype=np.uint8)
    is_jpeg = raw[:2].tobytes() == b"\xff\xd8"
    if is_jpeg and raw.tobytes().rfind(b"\xff\xd9") < raw.tobytes().rfind(b"\xff\xda"):
        return None
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED) if raw.size else None
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image / 257).round().astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:] / 255
        image = (image[:, :, :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def load_images(folder, size=64, limit=None):
    """(images, skipped): the folder's images as one NDArray (n, 3, size, size) in [-1, 1], and the
    files that did not decode. Decoded as uint8 (a quarter of float32's memory), then scaled in chunks."""
    files = list_images(folder)[:limit]
    pixels, skipped, count = np.empty((len(files), 3, size, size), np.uint8), [], 0
    for path in files:
        image = load_image(path, size)
        if image is None:
            skipped.append(path)
        else:
            pixels[count], count = image, count + 1
    if not count:
        raise DataUnavailable(f"none of the {len(files)} image files in {shown_path(folder)} could be decoded; "
                              "put readable .jpg or .png faces there")
    images = mx.nd.empty((count, 3, size, size))
    for start in range(0, count, 4096):
        chunk = pixels[start:min(start + 4096, count)]
        images[start:start + len(chunk)] = mx.nd.array(chunk, dtype=np.uint8).astype("float32") / 127.5 - 1
    return images, skipped


def image_grid(images, columns=8):
    """Tile an (n, 3, h, w) batch in [-1, 1] into one HWC uint8 picture, 2-pixel white gaps."""
    images = images.asnumpy() if hasattr(images, "asnumpy") else np.asarray(images)
    count, channels, height, width = images.shape
    grid = np.ones((-(-count // columns) * (height + 2) + 2, columns * (width + 2) + 2, channels), np.float32)
    for index, image in enumerate(images):
        top, left = 2 + (index // columns) * (height + 2), 2 + (index % columns) * (width + 2)
        grid[top:top + height, left:left + width] = (image.transpose(1, 2, 0) + 1) / 2
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def show_images(images, columns=8, title=None, path=None):
    """Show a batch as a grid (matplotlib); also save it as a PNG when `path` is given."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, columns)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        plt.imsave(path, grid)
    scale = grid.shape[1] / 66 * 1.1
    plt.figure(figsize=(scale, scale * grid.shape[0] / grid.shape[1]))
    plt.imshow(grid)
    plt.axis("off")
    plt.title(title or "")
    plt.show()


def labelled_rows(grids, labels, rows=2, size=64, path=None):
    """The first `rows` rows of several image_grid pictures (or PNGs it drew), each under its label,
    one screen pixel per image pixel; shown, and saved as a PNG when `path` is given."""
    import matplotlib.pyplot as plt

    strips = [(plt.imread(str(grid))[..., :3] * 255).round().astype(np.uint8) if isinstance(grid, (str, Path))
              else np.asarray(grid) for grid in grids]
    strips = [strip[:2 + rows * (size + 2)] for strip in strips]
    width, label_height = max(strip.shape[1] for strip in strips), 20
    height = sum(label_height + strip.shape[0] for strip in strips)
    figure, top = plt.figure(figsize=(width / 100, height / 100), dpi=100), height
    for strip, label in zip(strips, labels):
        figure.text(4 / width, (top - label_height / 2) / height, label, va="center", fontsize=10)
        top -= label_height + strip.shape[0]
        axis = figure.add_axes([0, top / height, strip.shape[1] / width, strip.shape[0] / height])
        axis.imshow(strip, interpolation="nearest")
        axis.set_axis_off()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    plt.show()
