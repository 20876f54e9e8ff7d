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
import base64
import contextlib
import hashlib
import json
import math
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
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

ENGINE_LINE = "MXNet start using engine:"


def _start_engine_quietly():
    """Start MXNet's engine now, without the line it logs when MXNET_ENGINE_TYPE is set.

    MXNet creates its engine on first use and then writes "MXNet start using engine:
    NaiveEngine" to the process's stderr (dmlc's LOG(INFO), which no setting silences), where
    Jupyter shows it as a red output. The engine is started here with file descriptor 2 sent to
    a temporary file; anything else written there meanwhile is passed on to sys.stderr.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (a closed stderr): start it as is
        mx.nd.waitall()
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            mx.nd.waitall()  # the first call into the engine creates it
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        rest = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if ENGINE_LINE not in line]
    if rest:
        sys.stderr.write("".join(rest))


_start_engine_quietly()

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR = "GENMODELS_DATA_DIR"
SMOKE_ENV_VAR = "GENMODELS_SMOKE"
# GENMODELS_WEIGHTS_DIR is for the tests of publishing, which work on a copy of weights/.
WEIGHTS_DIR = Path(os.environ.get("GENMODELS_WEIGHTS_DIR") or REPO_ROOT / "weights").resolve()

NIETZSCHE_FILE = "nietzsche.txt"
NIETZSCHE_URL = "https://s3.amazonaws.com/text-datasets/nietzsche.txt"
NIETZSCHE_SHA256 = "1f6258f517f66e336983f76bdb66d53614701e511100908b8eada9bccd1d1300"
FACES_FOLDER = "anime-faces/images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PADDING = "\0"


# ---------------------------------------------------------------- errors a reader sees as one sentence

class OneLineError(Exception):
    """An error whose message says everything: IPython shows only that line, no traceback.

    IPython asks an exception for `_render_traceback_()` before it formats a traceback; a
    reader who set a parameter wrongly needs the sentence that names it, not our call stack.
    """

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


class ParameterError(OneLineError, ValueError):
    """A parameter (or environment variable) has a value the notebook cannot use."""


class DataUnavailable(OneLineError, FileNotFoundError):
    """A data set is not on disk and cannot be downloaded."""


class CheckpointInUse(OneLineError, RuntimeError):
    """Another live run holds the lock of a checkpoint folder."""


class WeightsUnavailable(OneLineError, FileNotFoundError):
    """A weights file, or its manifest entry, is missing."""


class WeightsDamaged(OneLineError, ValueError):
    """A weights file or the manifest does not match what was recorded."""


class TrainingDiverged(OneLineError, RuntimeError):
    """The training loss became non-finite or exploded; the message names the knobs to turn."""


def check(condition, message):
    """Raise ParameterError(message) unless `condition` holds.

    The message is one sentence naming the parameter, its value and the fix, e.g.
    check(BATCH_SIZE > 0, f"BATCH_SIZE = {BATCH_SIZE} must be at least 1; try 64").
    """
    if not condition:
        raise ParameterError(message)


def check_parameters(values, rules, shipped=None):
    """Check a notebook's parameters against a table of rules, in one call.

    `values`: the notebook's globals(). `rules`: {NAME: rule}, where a rule is `bool`, a set of
    allowed values, or a tuple (int or float, minimum, maximum[, "or None"]) with None for an
    open end. `shipped`: the shipped weights' configuration; its value of name.lower() is the
    hint ("try 64"). Raises ParameterError naming the first parameter that breaks its rule.
    """
    shipped = shipped or {}
    for name, rule in rules.items():
        value = values[name]
        suggestion = repr(shipped[name.lower()]) if shipped.get(name.lower()) is not None else None
        hint = f"; try {suggestion}" if suggestion else ""
        if rule is bool:
            check(isinstance(value, bool), f"{name} = {value!r} must be True or False")
        elif isinstance(rule, (set, frozenset)):
            check(value in rule, f"{name} = {value!r} must be one of {', '.join(map(repr, sorted(rule)))}{hint}")
        elif not (len(rule) == 4 and value is None):
            kind, minimum, maximum = rule[:3]
            check_range(name, value, minimum, maximum, whole=kind is int, suggestion=suggestion)


def shipped_config(file_name):
    """The configuration weights/manifest.json records for `file_name` ({} when there is none):
    the values check_parameters suggests, since they are what the shipped weights use."""
    try:
        return dict(read_manifest().get(file_name, {}).get("config") or {})
    except OneLineError:
        return {}


def apply_smoke(values, **small):
    """When the tests ask for a quick run (smoke_test()), set the parameters in `small` in
    `values` (a notebook's globals()) and print one line saying so. Returns smoke_test()."""
    if not smoke_test():
        return False
    values.update(small)
    print("smoke test: " + ", ".join(f"{name} = {value!r}" for name, value in small.items()))
    return True


def check_range(name, value, minimum=None, maximum=None, whole=False, suggestion=None):
    """Raise ParameterError unless `value` is a number (a whole number if `whole`) within
    [minimum, maximum]; the sentence names the parameter, its value, the range and `suggestion`.

    check_range("BATCH_SIZE", BATCH_SIZE, minimum=1, whole=True, suggestion="64") gives, for -1,
    "BATCH_SIZE = -1 must be a whole number of at least 1; try 64".
    """
    kind = "a whole number" if whole else "a number"
    if minimum is not None and maximum is not None:
        allowed = f"{kind} from {minimum} to {maximum}"
    elif minimum is not None:
        allowed = f"{kind} of at least {minimum}"
    elif maximum is not None:
        allowed = f"{kind} of at most {maximum}"
    else:
        allowed = kind
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    fits = (is_number and math.isfinite(value) and (not whole or float(value).is_integer())
            and (minimum is None or value >= minimum) and (maximum is None or value <= maximum))
    if not fits:
        raise ParameterError(f"{name} = {value!r} must be {allowed}"
                             + (f"; try {suggestion}" if suggestion is not None else ""))
    return value


def check_loss(loss, where, explode_above=None, **knobs):
    """Stop a run whose loss is not finite, or above `explode_above`, with one sentence.

    `where` says when ("epoch 3, batch 120"); `knobs` are the parameters to name, e.g.
    LEARNING_RATE=LEARNING_RATE, CLIP=CLIP. Returns `loss` as a float when it is fine.
    """
    loss = float(loss)
    if math.isfinite(loss) and (explode_above is None or loss <= explode_above):
        return loss
    what = "is not a finite number" if not math.isfinite(loss) else f"exploded past {explode_above:.4g}"
    settings = " or ".join(f"{name} (now {value})" for name, value in knobs.items())
    raise TrainingDiverged(f"the training loss {what} ({loss:.6g}) at {where}, so the run diverged; "
                           + (f"lower {settings} in the parameters cell" if settings
                              else "lower the learning rate") + " and train again with FRESH_START = True")


# ---------------------------------------------------------------- machine and randomness

SMOKE_ON = ("1", "true", "yes", "on")
SMOKE_OFF = ("", "0", "false", "no", "off")


def smoke_test():
    """True when the tests ask for a quick run: GENMODELS_SMOKE is 1, true, yes or on.

    0, false, no, off, empty or unset mean a full run; any other value is a ParameterError
    (a typo must not switch a long training run into a one-minute one, or the reverse).
    """
    value = os.environ.get(SMOKE_ENV_VAR, "")
    if value.strip().lower() in SMOKE_ON:
        return True
    if value.strip().lower() in SMOKE_OFF:
        return False
    raise ParameterError(
        f"{SMOKE_ENV_VAR} = {value!r} is not understood; set it to 1 (quick smoke run) or 0 "
        "(full run), or unset it")


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

    Raises DataUnavailable (a FileNotFoundError) naming every place looked in and the fix.
    """
    for folder in data_dirs():
        candidate = folder / relative_path
        if candidate.exists():
            return candidate
    looked_in = ", ".join(shown_path(folder / relative_path) for folder in data_dirs())
    raise DataUnavailable(
        f"{relative_path} not found (looked in: {looked_in}): put it in data/{relative_path} "
        f"or set {DATA_ENV_VAR} to a folder that holds it (data/README.md says where to get it)")


def nietzsche_path(download=True):
    """Path of the verified Nietzsche text: found locally, else downloaded into data/.

    The file's SHA-256 is checked either way; a mismatch raises ValueError. A text that is
    missing and cannot be downloaded raises DataUnavailable (a FileNotFoundError).
    """
    try:
        path = find_data(NIETZSCHE_FILE)
    except FileNotFoundError:
        if not download:
            raise
        path = _download_nietzsche()
    actual = sha256_of(path)
    if actual != NIETZSCHE_SHA256:
        raise DataUnavailable(
            f"{shown_path(path)} is not the expected text (its SHA-256 is {actual[:12]}..., not "
            f"{NIETZSCHE_SHA256[:12]}...: damaged, empty or another file); delete it and run again to download it")
    return path


def _download_nietzsche():
    import pooch  # only needed when the text is not on disk

    pooch.get_logger().setLevel("WARNING")  # its "Downloading ... to <absolute path>" line is noise here
    target = REPO_ROOT / "data"
    try:
        return Path(pooch.retrieve(NIETZSCHE_URL, known_hash=f"sha256:{NIETZSCHE_SHA256}",
                                   fname=NIETZSCHE_FILE, path=target, progressbar=False))
    except Exception as error:  # network down, proxy, or a changed file upstream
        reason = _one_line(error, NIETZSCHE_URL)  # however pooch and urllib3 word it
        raise DataUnavailable(
            f"{NIETZSCHE_FILE} is not on disk and the download from {NIETZSCHE_URL} failed "
            f"({reason}); download it by hand into {shown_path(target / NIETZSCHE_FILE)}, or set "
            f"{DATA_ENV_VAR} to a folder that holds it") from error


# The anime faces: found on disk, else downloaded from a pinned archive and checked file by file.
# The download's layout is data/anime-faces/faces/<N>.jpg: the relative paths of
# data/faces.sha256, so that `sha256sum -c ../faces.sha256` checks it from data/anime-faces/.
FACES_COMMIT = "c0a69475d725a208615b6e7e7585eccdf978d190"
FACES_URL = f"https://github.com/antoncoding/Deep_Learning_GAN/archive/{FACES_COMMIT}.tar.gz"
FACES_URL_ENV_VAR = "GENMODELS_FACES_URL"  # another URL, or a local file: tests, offline machines
FACES_CHECKSUMS = "faces.sha256"  # committed in data/: one line per image of the archive's faces/
FACES_CHECKSUMS_SHA256 = "78ae050b24450688424b52d0286c37ff9997a1a3c5667cca54c1ed8574fb6da0"
DOWNLOADED_FACES = "anime-faces/faces"


def faces_folder(download=True):
    """Folder of the anime-face images; downloads and verifies them when none is on disk.

    Looks for anime-faces/images (the 14,000-face copy, a folder of your own images, or what
    brine downloaded) under $GENMODELS_DATA_DIR, then in data/; then for the downloaded set,
    anime-faces/faces, in the same places; else downloads the 33,431 faces into
    data/anime-faces/faces (download_faces). Raises DataUnavailable when there are none and
    they cannot be downloaded, or `download` is False.
    """
    for folder in data_dirs():
        if (folder / FACES_FOLDER).is_dir():
            return folder / FACES_FOLDER
    for folder in data_dirs():
        if (folder / DOWNLOADED_FACES).exists():
            return _complete_faces(folder / DOWNLOADED_FACES)
    if not download:
        looked_in = " or ".join(shown_path(folder) for folder in data_dirs())
        raise DataUnavailable(
            f"the anime faces are not on disk (no {FACES_FOLDER} or {DOWNLOADED_FACES} in "
            f"{looked_in}); helpers.faces_folder() downloads them, or {_faces_manual_steps()}.")
    return download_faces()


def download_faces(url=None, progress=True):
    """Download the 33,431 faces into data/anime-faces/faces, checked against data/faces.sha256.

    Streams the archive at `url` (default: $GENMODELS_FACES_URL, else the pinned FACES_URL; a
    local file's path works too) and unpacks only its `*/faces/` files, into a temporary
    folder beside the target, hashing each one as it is written. That folder is renamed into
    place only when every listed file is there with its SHA-256 and nothing else is; any
    failure deletes it and raises DataUnavailable. A folder already in place is returned
    after a check of its file names, never replaced.
    """
    target = REPO_ROOT / "data" / DOWNLOADED_FACES
    if target.exists():
        return _complete_faces(target)
    url = url or os.environ.get(FACES_URL_ENV_VAR) or FACES_URL
    expected = face_checksums()
    created = [folder for folder in (target.parent, target.parent.parent) if not folder.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_partials(target.parent)  # left by a download that was killed
    staging = _staging_folder(target.parent, "faces")
    try:
        _unpack_faces(url, staging, expected, progress)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging)  # another process finished the same download first
    except BaseException:  # an error, or Ctrl-C: leave nothing half-made
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # the folders this call made, when they are empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    print(f"downloaded and verified {len(expected):,} faces into {shown_path(target)}")
    return target


def face_checksums():
    """{"faces/<N>.jpg": SHA-256} from data/faces.sha256, after checking that list's own SHA-256."""
    path = REPO_ROOT / "data" / FACES_CHECKSUMS
    fix = f"restore it with `git checkout data/{FACES_CHECKSUMS}`"
    if not path.is_file():
        raise DataUnavailable(f"data/{FACES_CHECKSUMS}, the list of the faces' checksums, "
                              f"is missing; {fix}")
    actual = sha256_of(path)
    if actual != FACES_CHECKSUMS_SHA256:
        raise DataUnavailable(f"data/{FACES_CHECKSUMS} has SHA-256 {actual}, expected "
                              f"{FACES_CHECKSUMS_SHA256}: the list was changed; {fix}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def _complete_faces(folder):
    """`folder` when it holds every face data/faces.sha256 lists; by name only, so it is quick."""
    expected = face_checksums()
    present = {entry.name for entry in os.scandir(folder)}
    missing = [name for name in expected if name.split("/", 1)[1] not in present]
    if missing:
        raise DataUnavailable(
            f"{shown_path(folder)} lacks {len(missing):,} of the {len(expected):,} faces (e.g. "
            f"{missing[0]}); delete that folder and run again to download them afresh")
    return folder


class _ProgressReader:
    """A file-like wrapper that counts the bytes read through it on a progress bar."""

    def __init__(self, stream, bar):
        self.stream, self.bar, self.received = stream, bar, 0

    def read(self, size=-1):
        chunk = self.stream.read(size)
        self.received += len(chunk)
        self.bar.update(len(chunk))
        return chunk


def _unpack_faces(url, staging, expected, progress):
    """Stream the archive at `url` and write its faces into `staging`, each one verified."""
    import gzip  # this and the rest: only needed when downloading
    import http.client
    import tarfile
    import urllib.request
    import zlib

    from tqdm.auto import tqdm

    source = url if "://" in url else Path(url).expanduser().resolve().as_uri()
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(source, headers={"User-Agent": "genmodels-tutorial"}),
            timeout=60)
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DataUnavailable(
            f"the anime faces are not on disk and the download from {url} failed "
            f"({_one_line(error, url)}); {_faces_manual_steps()}.") from error
    length = int(response.headers.get("Content-Length") or 0)  # 0: the server did not say
    written = set()
    with response, tqdm(total=length or None, unit="B", unit_scale=True,
                        desc="downloading and unpacking the faces", disable=not progress) as bar:
        reader = _ProgressReader(response, bar)
        # gzip, not tarfile's "r|gz": tarfile takes a stream cut at a file boundary for the end
        # of the archive, while GzipFile raises EOFError unless the gzip trailer arrived.
        uncompressed = gzip.GzipFile(fileobj=reader, mode="rb")
        try:
            with tarfile.open(fileobj=uncompressed, mode="r|", bufsize=1 << 20) as archive:
                for member in archive:
                    name = _face_name(member, url)
                    if name is not None:
                        _write_face(archive, member, name, staging, expected, written, url)
            while uncompressed.read(1 << 20):  # to the trailer, which checks length and CRC
                pass
        except (EOFError, tarfile.ReadError, gzip.BadGzipFile, zlib.error,
                http.client.HTTPException, ConnectionError, TimeoutError) as error:
            cut_short = "unexpected end" in str(error) or not isinstance(
                error, (tarfile.ReadError, gzip.BadGzipFile, zlib.error))
            problem = ("the download was cut short (the archive is truncated)" if cut_short
                       else "it is damaged, or not a gzip-compressed tar archive")
            raise DataUnavailable(
                f"the faces archive from {url} could not be read after {reader.received:,} "
                f"bytes: {problem} ({_one_line(error)}); nothing was kept. Run again, or "
                f"{_faces_manual_steps()}.") from error
    missing = sorted(set(expected) - written)
    if missing:
        raise DataUnavailable(
            f"the faces archive from {url} lacks {len(missing):,} of the {len(expected):,} "
            f"faces listed in data/{FACES_CHECKSUMS} (e.g. {missing[0]}), so it is not the "
            f"archive of commit {FACES_COMMIT}; nothing was kept. {_manual_steps_sentence()}")


def _face_name(member, url):
    """"faces/<N>.jpg" for a member under `*/faces/`, None for the rest; refuses unsafe members."""
    parts = [part for part in member.name.split("/") if part not in ("", ".")]
    if member.name.startswith("/") or ".." in parts:
        raise DataUnavailable(
            f"the faces archive from {url} holds a member with an unsafe path, {member.name!r} "
            f"(absolute, or with '..'); nothing was kept. {_manual_steps_sentence()}")
    if len(parts) < 3 or parts[1] != "faces":
        return None  # the repository's code, notebooks and saved models: not needed
    if not member.isfile():
        raise DataUnavailable(
            f"the faces archive from {url} holds {member.name!r}, which is not a regular file "
            f"(a link, a folder or a device); nothing was kept. {_manual_steps_sentence()}")
    return "/".join(parts[1:])


def _write_face(archive, member, name, staging, expected, written, url):
    """Copy one face into `staging`, hashing it on the way; its SHA-256 must match the list."""
    if name not in expected:
        raise DataUnavailable(
            f"the faces archive from {url} holds {name}, which data/{FACES_CHECKSUMS} does not "
            f"list, so it is not the archive of commit {FACES_COMMIT}; nothing was kept. "
            f"{_manual_steps_sentence()}")
    if name in written:
        raise DataUnavailable(f"the faces archive from {url} holds {name} twice; nothing was "
                              f"kept. {_manual_steps_sentence()}")
    digest = hashlib.sha256()
    contents = archive.extractfile(member)
    with open(staging / name.rsplit("/", 1)[1], "xb") as copy:
        for block in iter(lambda: contents.read(1 << 16), b""):
            digest.update(block)
            copy.write(block)
    if digest.hexdigest() != expected[name]:
        raise DataUnavailable(
            f"{name} in the faces archive from {url} has SHA-256 {digest.hexdigest()}, but "
            f"data/{FACES_CHECKSUMS} lists {expected[name]}: the file is damaged or was "
            f"changed; nothing was kept. Run again, or {_faces_manual_steps()}.")
    written.add(name)


def _faces_manual_steps():
    return (f"download {FACES_URL} by hand and unpack its faces/ folder into the repository's "
            f"data/anime-faces/, or set {DATA_ENV_VAR} to a folder that holds {FACES_FOLDER} "
            "(data/README.md has the command)")


def _manual_steps_sentence():
    steps = _faces_manual_steps()
    return f"To get the faces, {steps}."


LONG_REASON = 160  # characters: a longer reason is a chain of wrapped errors (urllib3's, say)


def _one_line(error, url=None):
    """Why a download failed, in a few words on one line, for the middle of a sentence.

    A failed name look-up (no network, no DNS) says so with `url`'s host. Otherwise the
    error's own message, on one line; when that is longer than LONG_REASON (requests and
    urllib3 wrap the real reason in two or three reprs), the message of its innermost cause.
    """
    import socket
    import urllib.parse

    chain = []
    while isinstance(error, BaseException) and error not in chain and len(chain) < 10:
        chain.append(error)
        reason = getattr(error, "reason", None)
        inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        error = error.__cause__ or (reason if isinstance(reason, BaseException) else None) or inner \
            or error.__context__
    if not chain:
        return " ".join(str(error).split())
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            host = urllib.parse.urlsplit(url).hostname if url and "://" in url else None
            return f"cannot look up {host or 'the server'}: no network?"
    for cause in chain:
        text = " ".join(str(cause).split())
        if text and (len(text) <= LONG_REASON or cause is chain[-1]):
            return text if len(text) <= LONG_REASON else text[:LONG_REASON - 3] + "..."
    return type(chain[0]).__name__


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

# A PNG's transparent pixels are composited onto this colour (RGB): white, like the page
# a picture with a transparent background is usually drawn on.
ALPHA_BACKGROUND_RGB = (255, 255, 255)


def list_images(folder):
    """Image files (jpg, jpeg, png) under `folder`, recursively, sorted.

    Symbolic links to files and to sub-folders are followed; a folder reached twice (a link
    loop, or two links to one folder) is listed once. Raises FileNotFoundError for a missing
    folder, NotADirectoryError for a file, and ValueError when it holds no images.
    """
    folder = Path(folder)
    if folder.is_file():
        raise NotADirectoryError(
            f"image folder {folder} is a file, not a folder; give the folder that holds the "
            f"images ({folder.parent})")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image folder {folder} does not exist. Put the face images (jpg/png) in "
            f"data/{FACES_FOLDER}, or set {DATA_ENV_VAR} to a folder holding {FACES_FOLDER}.")
    files, visited = [], set()
    for root, sub_folders, names in os.walk(folder, followlinks=True):
        status = os.stat(root)
        if (status.st_dev, status.st_ino) in visited:  # a loop, or a second way into one folder
            sub_folders[:] = []
            continue
        visited.add((status.st_dev, status.st_ino))
        files += [Path(root) / name for name in names
                  if Path(name).suffix.lower() in IMAGE_SUFFIXES and (Path(root) / name).is_file()]
    if not files:
        raise DataUnavailable(f"image folder {shown_path(folder)} holds no .jpg, .jpeg or .png files; "
                              "put the face images there")
    return sorted(files)


def check_image_folder(folder, parameter="IMAGE_FOLDER", batch_size=None):
    """The image files of the folder a parameter names, or one ParameterError sentence.

    The sentence names the parameter, its value and the fix: a folder that does not exist,
    a file instead of a folder, a folder without images, or (with `batch_size`) fewer images
    than one batch.
    """
    shown = f"{parameter} = {str(folder)!r}"
    try:
        files = list_images(folder)
    except NotADirectoryError:
        raise ParameterError(f"{shown} is a file, not a folder; set {parameter} to the folder that "
                             f"holds your images, e.g. {str(Path(folder).parent)!r}") from None
    except DataUnavailable:
        raise ParameterError(f"{shown} holds no .jpg, .jpeg or .png files; set {parameter} to a "
                             "folder of images") from None
    except FileNotFoundError:
        raise ParameterError(f"{shown} does not exist; set {parameter} to a folder of .jpg or .png "
                             "images") from None
    except ValueError:
        raise ParameterError(f"{shown} holds no .jpg, .jpeg or .png files; set {parameter} to a "
                             "folder of images") from None
    if batch_size is not None and len(files) < batch_size:
        raise ParameterError(f"{shown} holds {len(files)} images, fewer than one batch (BATCH_SIZE = "
                             f"{batch_size}); set BATCH_SIZE to {len(files)} or less, or add images")
    return files


_decoder_messages = None  # a temporary file that receives libjpeg's and libpng's messages


def _decode(raw, flags):
    """cv2.imdecode, and what the codec library printed meanwhile (its warnings).

    libjpeg reports a damaged stream ("Corrupt JPEG data: ...") only as a warning on the
    process's standard error and returns an image anyway, the damage painted over in grey;
    standard error is pointed at a temporary file for the call so that the warning can be read.
    """
    global _decoder_messages
    try:
        if _decoder_messages is None:
            _decoder_messages = tempfile.TemporaryFile()
        messages = _decoder_messages.fileno()
        os.ftruncate(messages, 0)
        os.lseek(messages, 0, os.SEEK_SET)
        sys.stderr.flush()
        saved_stderr = os.dup(2)
    except (OSError, ValueError):  # no standard error to borrow: decode without listening
        return cv2.imdecode(raw, flags), ""
    try:
        os.dup2(messages, 2)
        image = cv2.imdecode(raw, flags)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
    return image, os.pread(messages, 4096, 0).decode(errors="replace")


def jpeg_damage(data, decoder_messages=""):
    """Why the JPEG bytes `data` are damaged, or None when they are whole.

    Two checks, as neither catches every case alone: the end-of-image marker (FF D9) must
    follow the last start-of-scan marker (FF DA), which a truncated file lacks (these two
    bytes cannot occur inside the compressed data, where every FF byte is followed by 00 or
    a restart marker); and libjpeg must not have warned of corrupt data while decoding.
    """
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return "truncated: no end-of-image marker after the image data"
    for line in decoder_messages.splitlines():
        if "Corrupt JPEG data" in line or "Premature end of JPEG file" in line:
            return f"damaged: {line.strip()}"
    return None


def _to_bgr8(image):
    """A decoded image as 8-bit BGR: grey expanded, 16-bit scaled, alpha composited onto
    ALPHA_BACKGROUND_RGB."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257).round().astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255
        background = np.array(ALPHA_BACKGROUND_RGB[::-1], np.float32)
        blended = image[:, :, :3].astype(np.float32) * alpha + background * (1 - alpha)
        return blended.round().astype(np.uint8)
    return image


def load_image(path, size=64):
    """One image as float32 CHW RGB in [-1, 1], resized to size x size.

    None when the file does not decode, or is a JPEG that is truncated or partly corrupt
    (see jpeg_damage). Transparent PNG pixels are composited onto ALPHA_BACKGROUND_RGB.
    """
    raw = np.fromfile(str(path), dtype=np.uint8)
    if not raw.size:
        return None
    is_jpeg = raw[:2].tobytes() == b"\xff\xd8"
    # JPEG: IMREAD_COLOR, which also applies the EXIF rotation; others: keep the alpha channel
    image, messages = _decode(raw, cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED)
    if image is None or (is_jpeg and jpeg_damage(raw.tobytes(), messages)):
        return None
    image = _to_bgr8(image)
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0


def load_images(folder, size=64, limit=None):
    """Decode the images of a folder into one NDArray of shape (n, 3, size, size) in [-1, 1].

    Files that do not decode, and JPEGs that are truncated or partly corrupt, are skipped,
    not fatal. Returns (images, skipped_paths).
    """
    files = list_images(folder)[:limit]
    # One array filled in place: a list of images stacked at the end would hold the whole set
    # twice (about 1.6 GB each for the 33,431 faces at 64x64).
    images, count, skipped = np.empty((len(files), 3, size, size), np.float32), 0, []
    for path in files:
        image = load_image(path, size)
        if image is None:
            skipped.append(path)
        else:
            images[count], count = image, count + 1
    if not count:
        raise DataUnavailable(f"none of the {len(files)} image files in {shown_path(folder)} could be decoded "
                              "(damaged, or not images); put readable .jpg or .png faces there")
    return mx.nd.array(images[:count]), skipped


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


def labelled_rows(grids, labels, rows=2, size=64, path=None):
    """The first `rows` rows of several image_grid pictures, stacked, each under its label, at one
    screen pixel per image pixel (so faces are seen at their true size). Shown; saved as PNG
    when `path` is given. A grid may also be the path of a PNG that image_grid drew."""
    import matplotlib.pyplot as plt

    label_height, dpi = 20, 100
    strips = []
    for grid in grids:
        if isinstance(grid, (str, Path)):
            grid = (plt.imread(str(grid))[..., :3] * 255).round().astype(np.uint8)
        strips.append(np.asarray(grid)[:2 + rows * (size + 2)])
    width = max(strip.shape[1] for strip in strips)
    height = sum(label_height + strip.shape[0] for strip in strips)
    figure = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    top = height
    for strip, label in zip(strips, labels):
        figure.text(4 / width, (top - label_height / 2) / height, label, va="center", fontsize=10)
        top -= label_height + strip.shape[0]
        axis = figure.add_axes([0, top / height, strip.shape[1] / width, strip.shape[0] / height])
        axis.imshow(strip, interpolation="nearest")
        axis.set_axis_off()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=dpi)
    plt.show()


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


def png_bytes(picture, scale=1):
    """An HWC uint8 picture as PNG bytes, each pixel repeated `scale` times each way."""
    picture = np.repeat(np.repeat(np.asarray(picture), scale, axis=0), scale, axis=1)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(picture[..., ::-1]))  # OpenCV writes BGR
    return encoded.tobytes()


def drawing_panel(draw_faces, walk, count=16):
    """Notebook 3's panel: a seed slider redraws `draw_faces(seed)` (count faces); three more
    sliders walk from one of those faces to another, `walk(seed, start, end, fraction)` giving
    one face. Where no kernel runs (GitHub, a saved notebook) its output is a still picture."""
    import ipywidgets as widgets
    from IPython.display import display

    seed = widgets.IntSlider(value=0, min=0, max=999, description="seed", continuous_update=False)
    start = widgets.IntSlider(value=1, min=1, max=count, description="from face")
    end = widgets.IntSlider(value=count, min=1, max=count, description="to face")
    fraction = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="walk")
    faces, face = widgets.Image(format="png"), widgets.Image(format="png")

    def redraw(_=None):
        faces.value = png_bytes(image_grid(draw_faces(seed.value)), scale=2)
        face.value = png_bytes(image_grid(walk(seed.value, start.value - 1, end.value - 1, fraction.value),
                                          columns=1), scale=3)

    for slider in (seed, start, end, fraction):
        slider.observe(redraw, names="value")
    redraw()
    panel = widgets.VBox([seed, faces, widgets.HBox([start, end]), fraction, face])
    bundle = panel._repr_mimebundle_()  # the live widget, and a still picture for viewers without a kernel
    bundle["image/png"] = base64.b64encode(faces.value).decode("ascii")
    bundle["text/plain"] = "a drawing panel: run the cell in Jupyter to move its sliders"
    display(bundle, raw=True)
    return panel


# ---------------------------------------------------------------- files that must not be half-written

def unique_partial_name(name):
    """A name for a temporary sibling of `name` that no other writer uses: pid and random token.

    Two runs writing the same file each get their own temporary file, so neither can rename
    the other's half-written bytes into place. The name ends in .partial (git-ignored).
    """
    return f".{name}.{os.getpid()}-{secrets.token_hex(4)}.partial"


def fsync_path(path):
    """Flush a file's (or a folder's) bytes to the disk, so a rename after it never exposes
    an empty file after a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path, write):
    """Call write(temporary_path), then move the result onto `path` in one step.

    The temporary file has a name unique to this call, beside `path` (the same file system,
    so the final rename is atomic). A crash or an error inside `write` leaves any earlier file
    at `path` untouched, and concurrent writers never mix their bytes: `path` always holds
    one writer's complete file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(unique_partial_name(path.name))
    try:
        write(str(temporary))
        if not temporary.is_file():
            raise RuntimeError(f"the writer of {path.name} wrote nothing to the path it was given")
        fsync_path(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_json(path, value):
    """Write `value` as indented JSON, atomically; NumPy numbers and paths are converted."""
    text = _json_text(value)
    return atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def _json_text(value):
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=_json_default) + "\n"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written to JSON; "
                    "store numbers, strings, lists and dicts")


def _replace_folder(staging, target):
    """Rename the complete folder `staging` onto `target`, replacing any folder already there.

    POSIX renames a folder onto an existing non-empty folder only by moving that one aside
    first; in between, `target` is absent (never half-made), and readers fall back to what
    is older.
    """
    if target.exists():
        replaced = target.with_name(f".replaced-{target.name}-pid{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(target, replaced)
        os.rename(staging, target)
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        os.rename(staging, target)
    fsync_path(target.parent)


# ---------------------------------------------------------------- shipped weights and their manifest

MANIFEST = WEIGHTS_DIR / "manifest.json"
# Written by `make train` (scripts/run_notebooks.py) while it publishes, removed when it is done:
# while it exists, weights/ may hold some new files and the old manifest.
PUBLISH_JOURNAL = ".publish-journal.json"


def read_manifest():
    """The weights manifest: {file name: details}, empty when there is none yet.

    A manifest that is not valid JSON (truncated, edited by hand) raises WeightsDamaged.
    """
    if not MANIFEST.exists():
        return {}
    text = MANIFEST.read_text(encoding="utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise WeightsDamaged(
            f"{shown_path(MANIFEST)} is damaged ({len(text)} characters, not valid JSON: {error.msg} at line "
            f"{error.lineno}, column {error.colno}); restore it with git checkout weights/") from None
    if not isinstance(entries, dict):
        raise WeightsDamaged(f"{shown_path(MANIFEST)} holds a {type(entries).__name__}, not a mapping of file "
                             "names to entries; restore it with git checkout weights/")
    return entries


def record_weights(file_name, **details):
    """Add or replace the manifest entry of weights/<file_name>, with its SHA-256.

    Kept for old callers; notebooks save experiments (save_experiment), and only
    `make train` publishes them into weights/.
    """
    entries = read_manifest()
    entries[file_name] = {"sha256": sha256_of(WEIGHTS_DIR / file_name), **details}
    write_json(MANIFEST, entries)
    return entries[file_name]


def verified_weights(file_name):
    """Path of weights/<file_name> after checking it against its manifest entry.

    Returns (path, manifest entry). Raises WeightsUnavailable (a FileNotFoundError) when the
    file or its entry is missing and WeightsDamaged (a ValueError) when the file's SHA-256
    differs from the manifest's, or when a `make train` was interrupted while publishing.
    """
    path = WEIGHTS_DIR / file_name
    if (WEIGHTS_DIR / PUBLISH_JOURNAL).exists():
        raise WeightsDamaged(
            f"{WEIGHTS_DIR} is part-way through a `make train` publish ({PUBLISH_JOURNAL} is "
            "there); if no make train is running, finish it with "
            "python scripts/run_notebooks.py --finish-publish")
    entry = read_manifest().get(file_name)
    if not path.exists() or entry is None:
        raise WeightsUnavailable(
            f"{path} or its entry in {MANIFEST.name} is missing; restore both with git checkout "
            "weights/ (or train your own: TRAIN = True in the parameters cell)")
    actual = sha256_of(path)
    if actual != entry.get("sha256"):
        raise WeightsDamaged(f"checksum mismatch for {shown_path(path)}: SHA-256 is {actual}, the manifest says "
                             f"{entry.get('sha256')}; restore it with git checkout weights/")
    return path, entry


def output_dir():
    """Folder for generated text and image grids: $GENMODELS_OUTPUT_DIR, else outputs/ (git-ignored)."""
    folder = Path(os.environ.get("GENMODELS_OUTPUT_DIR") or REPO_ROOT / "outputs")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------- checkpoints: a run never loses work
#
# checkpoints/<name>/            (or $GENMODELS_CHECKPOINT_DIR/<name>/), git-ignored
#     .lock                      held by the live run (exclusive_run)
#     epoch-0007/                one complete epoch: the writers' files + record.json
#     epoch-0008/                (the newest two and the best epoch are kept)
#     experiment/                the finished run's result (save_experiment), for choose_weights
#                                and for `make train`, which alone copies it into weights/

CHECKPOINT_ENV_VAR = "GENMODELS_CHECKPOINT_DIR"
OUTPUT_ENV_VAR = "GENMODELS_OUTPUT_DIR"
# Set by scripts/run_notebooks.py --train: save_experiment appends the folder it wrote, so that
# `make train` publishes exactly the experiments of the run it started.
EXPERIMENT_LOG_ENV_VAR = "GENMODELS_EXPERIMENT_LOG"
LOCK_FILE = ".lock"
RECORD_FILE = "record.json"
EPOCH_PREFIX = "epoch-"
EXPERIMENT_FOLDER = "experiment"
EXPERIMENT_RECORD = "experiment.json"
PARTIAL_PREFIX = ".partial-"

_held_locks = {}  # lock file path -> open descriptor, for the locks this process holds


def checkpoints_root():
    """$GENMODELS_CHECKPOINT_DIR if set, else checkpoints/ at the repository root (absolute)."""
    configured = os.environ.get(CHECKPOINT_ENV_VAR)
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / "checkpoints"


def checkpoint_dir(name):
    """The checkpoint folder of one notebook's runs, created: <checkpoints root>/<name>.

    The root is absolute (see checkpoints_root), so the folder is the same whatever the
    current directory is.
    """
    folder = _checkpoint_path(name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _checkpoint_path(name):
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ParameterError(f"checkpoint name {name!r} must be a plain folder name such as 'char_lm'")
    return checkpoints_root() / name


def shown_path(path):
    """`path` as a reader's message shows it: relative to the repository, or to
    $GENMODELS_CHECKPOINT_DIR / $GENMODELS_OUTPUT_DIR; never this machine's absolute path
    when either applies."""
    path = Path(path)
    for variable in (CHECKPOINT_ENV_VAR, OUTPUT_ENV_VAR):
        if os.environ.get(variable):
            try:
                return f"${variable}/{path.relative_to(Path(os.environ[variable]).expanduser().resolve())}"
            except ValueError:
                pass
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _process_is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


@contextlib.contextmanager
def exclusive_run(folder):
    """Hold the lock of a checkpoint folder for the duration of a `with` block.

    A second run on the same folder (another kernel, papermill, or this process again) raises
    CheckpointInUse with one sentence naming the process that holds it. The lock is an
    operating-system lock on `folder/.lock` (flock), which the system releases when its
    process dies however it dies; a lock file left by a dead run is therefore taken over,
    with one line saying so. The file records the holder's pid, host and start time.
    """
    import fcntl  # POSIX only: Linux, macOS, WSL2 (the platforms MXNet 1.9.1 ships for)

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_FILE
    if str(lock_path) in _held_locks:
        raise CheckpointInUse(
            f"{shown_path(folder)} is already locked by this Python process (a `with "
            "helpers.exclusive_run(...)` block that has not ended); let it finish, or restart the kernel")
    while True:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_lock(descriptor)
            os.close(descriptor)
            raise CheckpointInUse(
                f"{shown_path(folder)} is in use by another run (process {holder.get('pid', '?')} "
                f"on {holder.get('host', '?')}, since {holder.get('started', '?')}); wait for it to "
                "finish or stop it, then run this again") from None
        # The previous holder deletes the file as it lets go: if that happened between our open
        # and our flock, we hold a lock on a deleted file, so start again on the new one.
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(lock_path)):
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    previous = _read_lock(descriptor)
    if previous.get("pid") and previous["pid"] != os.getpid():
        print(f"{shown_path(folder)}: taking over the lock of process {previous['pid']}, "
              f"which ended without releasing it (an interrupted run)")
    holder = {"pid": os.getpid(), "host": os.uname().nodename,
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(holder).encode(), 0)
    _held_locks[str(lock_path)] = descriptor
    try:
        yield folder
    finally:
        del _held_locks[str(lock_path)]
        os.unlink(lock_path)  # while still holding it: see the check after flock above
        os.close(descriptor)


def _read_lock(descriptor):
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def epoch_seed(seed, epoch):
    """The seed for seed_everything at the start of epoch `epoch` of a run seeded with `seed`.

    Each epoch's random draws (shuffling, dropout, noise) then depend only on (seed, epoch),
    so a run resumed from a checkpoint draws exactly what an uninterrupted run draws.
    """
    digest = hashlib.sha256(f"genmodels-epoch-seed:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2 ** 31 - 1)


def _epoch_folders(folder):
    """{epoch number: path} of the epoch-NNNN folders in `folder` (complete or not)."""
    found = {}
    if Path(folder).is_dir():
        for path in Path(folder).iterdir():
            suffix = path.name[len(EPOCH_PREFIX):]
            if path.name.startswith(EPOCH_PREFIX) and suffix.isdigit() and path.is_dir():
                found[int(suffix)] = path
    return found


def _remove_abandoned_partials(folder):
    """Delete temporary folders and files left in `folder` by writers that died (by their pid)."""
    for path in Path(folder).iterdir():
        if not path.name.startswith((PARTIAL_PREFIX, ".replaced-")):
            continue
        pid = path.name.split("-pid")[-1].split("-")[0] if "-pid" in path.name else ""
        if pid.isdigit() and _process_is_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _staging_folder(folder, label):
    return Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{label}-pid{os.getpid()}-", dir=folder))


def _write_files(staging, writers):
    """Call each writer on its path in `staging`; returns {file name: SHA-256}."""
    checksums = {}
    for file_name, write in writers.items():
        if not file_name or "/" in file_name or file_name in (RECORD_FILE, EXPERIMENT_RECORD):
            raise ValueError(f"file name {file_name!r} must be a plain name other than "
                             f"{RECORD_FILE} and {EXPERIMENT_RECORD}")
        path = staging / file_name
        write(str(path))
        if not path.is_file():
            raise RuntimeError(f"the writer of {file_name} wrote nothing to the path it was given")
        fsync_path(path)
        checksums[file_name] = sha256_of(path)
    return checksums


def _write_record(path, value):
    path.write_text(_json_text(value), encoding="utf-8")
    fsync_path(path)


def save_epoch(folder, epoch, writers, record):
    """Save one epoch's checkpoint as the folder `folder/epoch-NNNN`, complete or not at all.

    `writers`: {file name: callable(path)}, e.g. {"model.params": model.save_parameters,
    "trainer.states": trainer.save_states}. `record`: a JSON-able dict (losses so far, config,
    "best_epoch", ...). Every file is written into a uniquely named temporary folder, with
    record.json (the record and each file's SHA-256) last; the folder is then renamed into
    place in one step. Keeps this epoch, the newest one before it, and record["best_epoch"];
    older epochs, and later ones (left by an abandoned run), are deleted.
    Returns the epoch folder.
    """
    folder = Path(folder)
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a whole number >= 0, got {epoch!r}")
    epoch = int(epoch)
    if not writers:
        raise ValueError("writers is empty: pass {file name: callable(path)} for each file to save")
    json.dumps(record, default=_json_default)  # fail on an unwritable record before writing anything
    folder.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_partials(folder)
    target = folder / f"{EPOCH_PREFIX}{epoch:04d}"
    staging = _staging_folder(folder, target.name)
    try:
        checksums = _write_files(staging, writers)
        _write_record(staging / RECORD_FILE, {"epoch": epoch, "sha256": checksums, "record": record})
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    best = record.get("best_epoch") if isinstance(record, dict) else None
    earlier = [number for number in _epoch_folders(folder) if number < epoch]
    keep = {epoch, max(earlier, default=None), best}
    for number, path in _epoch_folders(folder).items():
        if number not in keep:
            shutil.rmtree(path, ignore_errors=True)
    return target


def _verified_epoch(path):
    """(record, None) for a complete epoch folder whose files match their checksums,
    else (None, the reason it cannot be used)."""
    try:
        saved = json.loads((path / RECORD_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"it has no {RECORD_FILE} (an incomplete checkpoint)"
    except ValueError:
        return None, f"its {RECORD_FILE} is damaged"
    if not isinstance(saved, dict) or not isinstance(saved.get("sha256"), dict) or "record" not in saved:
        return None, f"its {RECORD_FILE} lacks the checksums or the record"
    for file_name, expected in saved["sha256"].items():
        if not (path / file_name).is_file():
            return None, f"{file_name} is missing"
        if sha256_of(path / file_name) != expected:
            return None, f"{file_name} does not match its checksum (changed after it was saved)"
    return saved["record"], None


def latest_epoch(folder):
    """(epoch folder, record) of the newest complete checkpoint in `folder`, or None.

    Each candidate's files are checked against the SHA-256s in its record.json; an epoch
    folder that fails is skipped with one printed line, and the next older one is tried.
    The record is the dict given to save_epoch, with "epoch" added when it had none.
    """
    for number, path in sorted(_epoch_folders(folder).items(), reverse=True):
        record, problem = _verified_epoch(path)
        if problem is None:
            if isinstance(record, dict):
                record.setdefault("epoch", number)
            return path, record
        print(f"skipping the checkpoint {shown_path(path)}: {problem}")
    return None


def resume(folder, networks, trainers, config, epochs, ctx=None):
    """Load the newest complete checkpoint in `folder` into `networks` and `trainers` (dicts
    {name: Block or Trainer}, saved as name.params / name.states); returns its record, or None
    when there is none. A checkpoint of a run with other parameters (any key of `config` but
    "epochs"), or holding more than `epochs` epochs, is refused with one sentence."""
    latest = latest_epoch(folder)
    if latest is None:
        return None
    epoch_folder, record = latest
    saved = record.get("config") or {}
    changed = [f"{key.upper()} = {saved.get(key)!r} there, {value!r} here" for key, value in config.items()
               if key != "epochs" and saved.get(key) != value]
    check(not changed, f"{shown_path(folder)} holds a run with other parameters ({'; '.join(changed)}); set "
                       "them back to resume it, or FRESH_START = True to discard it")
    done = record["epoch"]
    check(done <= epochs, f"{shown_path(folder)} holds {done} epochs, more than EPOCHS = {epochs}; set "
                          f"EPOCHS = {done} or more to use them, or FRESH_START = True to start again")
    for name, network in networks.items():
        network.load_parameters(str(epoch_folder / f"{name}.params"), ctx=ctx)
    for name, trainer in trainers.items():
        trainer.load_states(str(epoch_folder / f"{name}.states"))
    print(f"resuming after epoch {done} from {shown_path(epoch_folder)}")
    return record


@contextlib.contextmanager
def training_run(name, fresh=False):
    """The checkpoint folder of run `name`, locked for the `with` block (exclusive_run);
    emptied first when `fresh` (FRESH_START). Save the finished run inside the block."""
    folder = checkpoint_dir(name)
    with exclusive_run(folder):
        if fresh:
            discard_checkpoints(folder)
        yield folder


def discard_checkpoints(folder):
    """Delete everything a run would resume from in `folder` (what FRESH_START = True does).

    The epoch folders and anything else the run kept there (grids, logs) go; the finished
    experiment (`experiment/`) stays until a new run replaces it, and so does the lock.
    Refused with CheckpointInUse while another live run holds the folder. Returns the names
    of what was deleted.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        return []
    if str(folder / LOCK_FILE) in _held_locks:
        return _discard(folder)
    with exclusive_run(folder):
        return _discard(folder)


def _discard(folder):
    deleted = []
    for path in sorted(folder.iterdir()):
        if path.name in (EXPERIMENT_FOLDER, LOCK_FILE):
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        deleted.append(path.name)
    return deleted


# ---------------------------------------------------------------- experiments: the reader's own weights

def experiment_folder(name):
    """checkpoints/<name>/experiment: where save_experiment puts a finished run's result
    (not created: looking for an experiment leaves no trace)."""
    return _checkpoint_path(name) / EXPERIMENT_FOLDER


def save_experiment(name, files, entries):
    """Save a finished run as checkpoints/<name>/experiment/, complete or not at all.

    `files`: {weights file name: callable(path)}; `entries`: {weights file name: manifest
    entry dict (config, vocabulary, metric, untrained_metric, history, ...)}, one per file.
    The files and experiment.json (the entries, each with its file's SHA-256) are written into
    a temporary folder that then replaces the previous experiment in one rename. A notebook
    never writes to weights/: `make train` publishes an experiment there, after checking it.
    Returns the experiment folder.
    """
    if set(files) != set(entries):
        raise ValueError(f"files {sorted(files)} and entries {sorted(entries)} must name the same "
                         "weights files: every file needs its manifest entry, and the reverse")
    for file_name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ValueError(f"the entry of {file_name} must be a dict, got {type(entry).__name__}")
    json.dumps(entries, default=_json_default)  # fail before writing anything
    folder = checkpoint_dir(name)
    _remove_abandoned_partials(folder)
    staging = _staging_folder(folder, EXPERIMENT_FOLDER)
    try:
        checksums = _write_files(staging, files)
        saved = {file_name: {**entry, "sha256": checksums[file_name]}
                 for file_name, entry in entries.items()}
        _write_record(staging / EXPERIMENT_RECORD, {
            "name": name, "saved": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "entries": saved})
        target = folder / EXPERIMENT_FOLDER
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.environ.get(EXPERIMENT_LOG_ENV_VAR):
        with open(os.environ[EXPERIMENT_LOG_ENV_VAR], "a", encoding="utf-8") as log:
            log.write(f"{target}\n")
    return target


def read_experiment(folder):
    """{weights file name: entry} of the experiment in `folder` (checkpoints/<name>/experiment),
    or None when there is none. Raises WeightsDamaged when its experiment.json is unreadable."""
    record_path = Path(folder) / EXPERIMENT_RECORD
    if not record_path.is_file():
        return None
    try:
        saved = json.loads(record_path.read_text(encoding="utf-8"))
        entries = saved["entries"]
    except (ValueError, KeyError, TypeError):
        raise WeightsDamaged(f"{shown_path(record_path)} is damaged; delete {shown_path(folder)} "
                             "and train again (TRAIN = True)") from None
    return entries


def _json_normal(value):
    """`value` as it reads back from JSON (tuples become lists, NumPy numbers plain numbers)."""
    return json.loads(json.dumps(value, default=_json_default))


def _is_finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown_value(value):
    return repr(value) if isinstance(value, str) else json.dumps(value)


def config_differences(config, reference):
    """[(key, value in config, value in reference)] for each key where the two differ;
    a key missing on one side has the value None there."""
    keys = sorted(set(config) | set(reference))
    return [(key, config.get(key), reference.get(key)) for key in keys
            if config.get(key) != reference.get(key)]


def _describe_differences(differences, whose):
    """One clause naming each differing parameter as the parameters cell spells it (upper case),
    e.g. "NUM_HIDDEN = 256 differs from the shipped 512"."""
    mine = [f"{key.upper()} = {_shown_value(value)}" if value is not None else f"{key.upper()} (not set)"
            for key, value, _ in differences]
    theirs = [_shown_value(value) if value is not None else "unset" for _, _, value in differences]
    if len(differences) == 1:
        return f"{mine[0]} differs from {whose} {theirs[0]}"
    pairs = ", ".join(f"{part} ({whose}: {other})" for part, other in zip(mine, theirs))
    return f"{pairs} differ from {whose} configuration"


def choose_weights(name, file_name, config):
    """The weights a default run uses: (path, manifest entry, "experiment" or "shipped").

    The reader's own experiment (checkpoints/<name>/experiment/<file_name>) when its entry's
    "config" equals `config` (the parameters cell's values), its metric is finite and its
    file matches its checksum; else the shipped weights/<file_name>, verified against the
    manifest. Prints one line saying which it uses and why.
    """
    config = _json_normal(config)
    folder = experiment_folder(name)
    entries = read_experiment(folder)
    entry = (entries or {}).get(file_name)
    note = ""
    if entry is not None:
        problem = None
        if entry.get("config") != config:
            problem = _describe_differences(config_differences(config, entry.get("config") or {}),
                                            "the saved run's")
        elif "metric" in entry and not _is_finite_number(entry["metric"]):
            problem = f"its metric is {entry['metric']} (the run diverged)"
        elif not (folder / file_name).is_file() or sha256_of(folder / file_name) != entry.get("sha256"):
            problem = f"its {file_name} does not match its checksum"
        if problem is None:
            print(f"using the run saved in {shown_path(folder)} by TRAIN = True (its parameters match these)")
            return folder / file_name, entry, "experiment"
        note = f" (not the run saved in {shown_path(folder)}: {problem})"
    path, shipped = verified_weights(file_name)
    differences = config_differences(config, shipped.get("config") or {})
    if differences:
        reason = (f": {_describe_differences(differences, 'the shipped')}; "
                  f"set TRAIN = True to train your own{note}")
    else:
        reason = f" (config matches){note}"
    print(f"using the shipped weights/{file_name}{reason}")
    return path, shipped, "shipped"


# ---------------------------------------------------------------- notebook 2's writing panel

def writing_panel(write, check, prime, temperature, top_k, length, seed, largest_top_k):
    """Notebook 2's panel: a box for the beginning of a text, sliders for the temperature, top-k
    (its largest value, `largest_top_k`, means all characters) and length, and a Write button.
    Each press shows write(prime, temperature, top_k, length, seed) with the next seed; a
    beginning that check(prime) refuses (ValueError) is named in one line under the box, and
    nothing is written. Also prints one text written with the starting values: what a viewer
    without a kernel (GitHub, a saved notebook) sees."""
    import ipywidgets as widgets
    from IPython.display import display

    box = widgets.Text(value=prime, description="beginning", layout=widgets.Layout(width="90%"))
    refusal = widgets.Label(value="")
    temperature_slider = widgets.FloatSlider(value=temperature, min=0, max=max(2.0, temperature), step=0.05,
                                             description="temperature")
    top_k_slider = widgets.IntSlider(value=top_k or largest_top_k, min=1, max=largest_top_k, description="top-k")
    length_slider = widgets.IntSlider(value=length, min=10, max=max(2000, length), step=10, description="length")
    button, output, presses = widgets.Button(description="Write"), widgets.Output(), [0]

    def refused(beginning):
        try:
            check(beginning)
        except ValueError as error:
            refusal.value = str(error)
            return True
        refusal.value = ""
        return False

    def on_press(_=None):
        if refused(box.value):
            return
        presses[0] += 1
        chosen_top_k = None if top_k_slider.value >= largest_top_k else top_k_slider.value
        button.disabled = True
        try:
            text = write(box.value, temperature_slider.value, chosen_top_k, length_slider.value, seed + presses[0])
        finally:
            button.disabled = False
        output.outputs = ()
        output.append_stdout(text + "\n")

    box.observe(lambda change: refused(change["new"]), names="value")
    button.on_click(on_press)
    panel = widgets.VBox([box, refusal, widgets.HBox([temperature_slider, top_k_slider]), length_slider,
                          button, output])
    bundle = panel._repr_mimebundle_()  # the live panel; viewers without a kernel show the text below it
    bundle["text/plain"] = "a writing panel: run the cell in Jupyter to use it"
    display(bundle, raw=True)
    print(f"written from {prime!r} at temperature {temperature}, top-k {top_k}, seed {seed}:")
    print(write(prime, temperature, top_k, length, seed))
    return panel
