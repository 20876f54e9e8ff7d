"""Files on disk: the faces' download, the checkpoints a run resumes from, the reader's own
finished runs and the shipped weights. Every file is written under a temporary name beside its
target and renamed into place, so a crash never leaves half a file where a good one was; a
checkpoint folder is used by one run at a time; a notebook never writes into weights/ (only
`make train`, scripts/run_notebooks.py, publishes a finished run there).

checkpoints/<name>/  (or $GENMODELS_CHECKPOINT_DIR/<name>/, git-ignored)
    .lock             held by the live run (filelock); .lock-holder.json says which process
    epoch-0007/       one complete epoch: the networks' files and record.json (kept: the newest
    epoch-0008/       two epochs and the best one)
    experiment/       the finished run (save_experiment), which choose_weights prefers
"""
import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import filelock
import mxnet as mx
import numpy as np
import pooch

import helpers
from helpers import DATA_ENV_VAR, DOWNLOADED_FACES, FACES_FOLDER, DataUnavailable, OneLineError, check, shown_path

# GENMODELS_WEIGHTS_DIR: a copy of weights/, for the tests of publishing
WEIGHTS_DIR = Path(os.environ.get("GENMODELS_WEIGHTS_DIR") or helpers.REPO_ROOT / "weights").resolve()
MANIFEST = WEIGHTS_DIR / "manifest.json"
PUBLISH_JOURNAL = ".publish-journal.json"  # present while `make train` publishes (scripts/run_notebooks.py)
CHECKPOINT_ENV_VAR = "GENMODELS_CHECKPOINT_DIR"
EXPERIMENT_LOG_ENV_VAR = "GENMODELS_EXPERIMENT_LOG"  # make train: save_experiment appends the folder it wrote
RECORD, EXPERIMENT, EXPERIMENT_RECORD = "record.json", "experiment", "experiment.json"
FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


class CheckpointInUse(OneLineError, RuntimeError):
    """Another live run holds the lock of a checkpoint folder."""


class WeightsUnavailable(OneLineError, FileNotFoundError):
    """A weights file, or its manifest entry, is missing."""


class WeightsDamaged(OneLineError, ValueError):
    """A weights file or the manifest does not match what was recorded, or does not fit the network."""


class CannotWrite(OneLineError, OSError):
    """A folder is full, read-only or not ours to write."""


def sha256_of(path):
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def flush_to_disk(path):
    """fsync a file or a folder, so that a rename after it never exposes an empty file after a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def folder_size(folder):
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


@contextlib.contextmanager
def writing(folder, needed=0):
    """Turn a full disk, a read-only folder or a missing permission met inside the block, as an
    OSError or as MXNet's failed file write, into one CannotWrite sentence naming `folder`, its
    free space and the `needed` bytes. What was there before the block stays as it was."""
    try:
        yield
    except (OSError, mx.base.MXNetError) as error:
        code = getattr(error, "errno", None)
        if isinstance(error, mx.base.MXNetError):  # dmlc's file stream: a short write, or a file it cannot open
            text = str(error)
            code = errno.ENOSPC if "Write incomplete" in text else errno.EACCES if "Check failed: fo" in text else None
        if code not in FULL_DISK:
            raise
        existing = Path(folder)
        while not existing.exists():
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                  errno.EROFS: "it is read-only"}.get(code, "permission denied")
        raise CannotWrite(f"cannot write to {shown_path(folder)}: {reason} ({free / 1e6:,.0f} MB free"
                          + (f", about {needed / 1e6:,.0f} MB needed" if needed else "") + "); free some space "
                          f"or make it writable, or set {CHECKPOINT_ENV_VAR} / GENMODELS_OUTPUT_DIR to another "
                          "folder, and run the cell again") from None


def atomic_write(path, write):
    """Call write(temporary path) on a unique name beside `path`, flush it to disk, then rename it onto
    `path` in one step: `path` holds the old file or the whole new one, never half of one."""
    path = Path(path)
    with writing(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(descriptor)
        try:
            write(temporary)
            flush_to_disk(temporary)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
    return path


def _json(value):
    convert = {np.generic: lambda v: v.item(), np.ndarray: lambda v: v.tolist(), Path: str}
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True,
                      default=lambda v: next(f(v) for kind, f in convert.items() if isinstance(v, kind))) + "\n"


def write_json(path, value):
    """Write `value` as indented JSON (NumPy numbers and paths converted), atomically."""
    text = _json(value)
    return atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------- the data

NIETZSCHE_FILE = "nietzsche.txt"
NIETZSCHE_URL = "https://s3.amazonaws.com/text-datasets/nietzsche.txt"
NIETZSCHE_SHA256 = "1f6258f517f66e336983f76bdb66d53614701e511100908b8eada9bccd1d1300"


def data_dirs():
    """Where data is looked for: $GENMODELS_DATA_DIR (when set), then the repository's data/."""
    configured = os.environ.get(DATA_ENV_VAR)
    return ([Path(configured).expanduser()] if configured else []) + [helpers.REPO_ROOT / "data"]


def nietzsche_path():
    """The Nietzsche text, found in a data folder or downloaded into data/ (pooch), and checked
    against its SHA-256. DataUnavailable, one sentence, when it is missing, damaged or a different
    file and cannot be downloaded: the notebooks then go on from the shipped weights."""
    found = [folder / NIETZSCHE_FILE for folder in data_dirs() if (folder / NIETZSCHE_FILE).is_file()]
    if found:
        if sha256_of(found[0]) != NIETZSCHE_SHA256:
            raise DataUnavailable(f"{shown_path(found[0])} is not the expected text (damaged, empty or another "
                                  "file: its SHA-256 differs); delete it and run again to download it")
        return found[0]
    pooch.get_logger().setLevel("WARNING")
    try:
        return Path(pooch.retrieve(NIETZSCHE_URL, f"sha256:{NIETZSCHE_SHA256}", fname=NIETZSCHE_FILE,
                                   path=helpers.REPO_ROOT / "data", progressbar=False))
    except Exception as error:  # no network, a proxy, a changed file upstream
        raise DataUnavailable(f"{NIETZSCHE_FILE} is not in {' or '.join(map(shown_path, data_dirs()))} and its "
                              f"download failed ({one_line(error)}); put it in data/ or set {DATA_ENV_VAR} "
                              "(data/README.md says where to get it)") from None


def faces_folder(download=True):
    """Folder of the anime faces: anime-faces/images (the 14,000-face copy, or your own images) or
    the downloaded anime-faces/faces, in a data folder; else the 33,431 faces are downloaded and
    verified (storage.download_faces). DataUnavailable when there are none to be had."""
    for relative in (FACES_FOLDER, DOWNLOADED_FACES):
        for folder in data_dirs():
            if (folder / relative).is_dir():
                return folder / relative
    if not download:
        raise DataUnavailable(f"the anime faces are not in {' or '.join(map(shown_path, data_dirs()))}; "
                              "data/README.md says how to get them")
    return download_faces()


def one_line(error):
    """Why something failed, for the middle of a sentence: a failed name look-up as "no network",
    else the innermost cause's message (HTTP libraries wrap it in two or three reprs)."""
    import socket

    while error.__cause__ or error.__context__ or isinstance(getattr(error, "reason", None), BaseException):
        if isinstance(error, socket.gaierror):
            break
        error = error.__cause__ or (error.reason if isinstance(getattr(error, "reason", None), BaseException)
                                    else error.__context__)
    if isinstance(error, socket.gaierror) or "Name or service not known" in str(error):
        return "cannot look up the server: no network?"
    return " ".join(str(error).split())[:160] or type(error).__name__


# ---------------------------------------------------------------- the shipped weights

def read_manifest():
    """weights/manifest.json: {file name: entry}; {} when there is none, WeightsDamaged when unreadable."""
    if not MANIFEST.exists():
        return {}
    try:
        entries = json.loads(MANIFEST.read_text(encoding="utf-8"))
        assert isinstance(entries, dict)
    except (ValueError, AssertionError):
        raise WeightsDamaged(f"{shown_path(MANIFEST)} is damaged (not a JSON mapping of file names); "
                             "restore it with git checkout weights/") from None
    return entries


def shipped_config(file_name):
    """The configuration the manifest records for `file_name` ({} without one): the hints of
    helpers.check_parameters, since they are what the shipped weights use."""
    with contextlib.suppress(OneLineError):
        return dict(read_manifest().get(file_name, {}).get("config") or {})
    return {}


def verified_weights(file_name):
    """(path, manifest entry) of weights/<file_name> after checking its SHA-256 against the manifest.
    WeightsUnavailable when the file or entry is missing; WeightsDamaged when they differ or a
    `make train` publish was interrupted."""
    path = WEIGHTS_DIR / file_name
    if (WEIGHTS_DIR / PUBLISH_JOURNAL).exists():
        raise WeightsDamaged(f"{shown_path(WEIGHTS_DIR)} is part-way through a make train publish; if none is "
                             "running, finish it with python scripts/run_notebooks.py --finish-publish")
    entry = read_manifest().get(file_name)
    if not path.exists() or entry is None:
        raise WeightsUnavailable(f"{shown_path(path)} or its manifest entry is missing; restore both with "
                                 "git checkout weights/, or train your own with TRAIN = True")
    if sha256_of(path) != entry.get("sha256"):
        raise WeightsDamaged(f"{shown_path(path)} does not match the SHA-256 in the manifest; restore it "
                             "with git checkout weights/")
    return path, entry


def load_weights(network, path, ctx=None):
    """network.load_parameters(path), or WeightsDamaged naming the file when its arrays do not fit
    the network the parameters cell built (a changed configuration, or another model's file)."""
    try:
        network.load_parameters(str(path), ctx=ctx)
    except (mx.base.MXNetError, AssertionError, ValueError, KeyError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1][:200]  # MXNet's last line says why
        raise WeightsDamaged(f"{shown_path(path)} does not fit the network the parameters cell describes "
                             f"({reason}); set the parameters back to the ones it was trained with, or "
                             "restore it with git checkout weights/") from None
    return network


# ---------------------------------------------------------------- the anime faces' download

FACES_COMMIT = "c0a69475d725a208615b6e7e7585eccdf978d190"
FACES_URL = f"https://github.com/antoncoding/Deep_Learning_GAN/archive/{FACES_COMMIT}.tar.gz"
FACES_URL_ENV_VAR = "GENMODELS_FACES_URL"  # another URL, or a local archive: tests, offline machines
FACES_CHECKSUMS = "faces.sha256"  # data/faces.sha256: one line per face of the archive's faces/
FACES_CHECKSUMS_SHA256 = "78ae050b24450688424b52d0286c37ff9997a1a3c5667cca54c1ed8574fb6da0"
MAX_FACE_BYTES = 1 << 20  # the largest face is 31 kB: a bigger member is not a face of this archive


def face_checksums():
    """{"faces/<N>.jpg": SHA-256} from data/faces.sha256, after checking the list's own SHA-256."""
    path = helpers.REPO_ROOT / "data" / FACES_CHECKSUMS
    if not path.is_file() or sha256_of(path) != FACES_CHECKSUMS_SHA256:
        raise DataUnavailable(f"data/{FACES_CHECKSUMS}, the list of the faces' checksums, is missing or "
                              f"changed; restore it with git checkout data/{FACES_CHECKSUMS}")
    return {name: digest for digest, name in (line.split("  ", 1) for line in path.read_text().splitlines())}


def download_faces(url=None):
    """Download the 33,431 faces into data/anime-faces/faces and check each against data/faces.sha256.

    pooch fetches the archive at `url` ($GENMODELS_FACES_URL, else the pinned FACES_URL; a local path
    works too) with a progress bar. Its faces/ members go, through tarfile's "data" filter and a
    size cap, into a temporary folder, hashed as they are written; that folder is renamed into place
    only when it holds exactly the listed faces. Any failure keeps nothing and says why in one line."""
    target = helpers.REPO_ROOT / "data" / DOWNLOADED_FACES
    expected, url = face_checksums(), url or os.environ.get(FACES_URL_ENV_VAR) or FACES_URL
    manual = (f"download {FACES_URL} by hand and unpack its faces/ folder into data/anime-faces/, or set "
              f"{DATA_ENV_VAR} to a folder holding {FACES_FOLDER} (data/README.md)")
    with writing(target.parent, needed=300e6):
        target.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(target.parent / ".faces.lock"):  # one download at a time; a second one waits
            if target.is_dir():
                return target  # the other download finished first
            for abandoned in target.parent.glob(".faces-*"):  # left by a download that was killed
                shutil.rmtree(abandoned, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=".faces-", dir=target.parent))
            try:
                if "://" in url:
                    pooch.get_logger().setLevel("WARNING")
                    archive = pooch.retrieve(url, None, fname="faces.tar.gz", path=staging, progressbar=True)
                else:
                    archive = Path(url).expanduser()
                _unpack_faces(archive, staging / "faces", expected)
                os.rename(staging / "faces", target)
            except Exception as error:
                if getattr(error, "errno", None) in FULL_DISK:
                    raise  # writing() says it: the folder, its free space, what is needed
                problem = error if isinstance(error, DataUnavailable) else one_line(error)
                if "IncompleteRead" in str(problem) or "ChunkedEncodingError" in type(error).__name__:
                    problem = f"the download was cut short, so the archive is truncated ({problem})"
                raise DataUnavailable(f"the faces from {url} were not kept: {problem}; run again, or {manual}") \
                    from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    print(f"downloaded and verified {len(expected):,} faces into {shown_path(target)}")
    return target


def _unpack_faces(archive, folder, expected):
    def refuse(problem):
        raise DataUnavailable(problem)

    folder.mkdir()
    written = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) != 3 or parts[1] != "faces":
                    continue  # the repository's code and models
                name = "/".join(parts[1:])
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later: refuses links, absolute paths, ..
                    member = tarfile.data_filter(member, str(folder))
                if not member.isfile() or name not in expected or name in written:
                    refuse(f"it holds {member.name!r}, which is not one of the listed faces (or a link, or twice)")
                if member.size > MAX_FACE_BYTES:
                    refuse(f"{name} is {member.size:,} bytes, too large for a face")
                data = tar.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != expected[name]:
                    refuse(f"{name} differs from its checksum in data/{FACES_CHECKSUMS}")
                (folder / parts[2]).write_bytes(data)
                written.add(name)
    except getattr(tarfile, "FilterError", ()) as error:
        refuse(f"it holds an unsafe member ({error})")
    except (EOFError, tarfile.TarError, OSError) as error:
        if getattr(error, "errno", None) in FULL_DISK:
            raise
        refuse(f"the archive is truncated or not a gzip-compressed tar ({one_line(error)})")
    missing = sorted(set(expected) - written)
    if missing:
        refuse(f"it lacks {len(missing):,} of the {len(expected):,} listed faces (e.g. {missing[0]})")


# ---------------------------------------------------------------- checkpoints: a run never loses work

def checkpoint_path(name):
    """<checkpoints root>/<name>, not created: the root is $GENMODELS_CHECKPOINT_DIR or checkpoints/."""
    check(name and not Path(name).is_absolute() and ".." not in Path(name).parts,
          f"checkpoint name {name!r} must be a plain folder name such as 'char_lm'")
    root = os.environ.get(CHECKPOINT_ENV_VAR)
    return (Path(root).expanduser().resolve() if root else helpers.REPO_ROOT / "checkpoints") / name


def checkpoint_dir(name):
    """checkpoint_path(name), created."""
    folder = checkpoint_path(name)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def exclusive_run(folder):
    """Hold `folder`'s lock for the `with` block (filelock: the system frees it when the process dies,
    however it dies). A second run, in another process or this one, gets CheckpointInUse naming the
    holder."""
    folder, lock = Path(folder), filelock.FileLock(Path(folder) / ".lock", timeout=0)
    holder_file = folder / ".lock-holder.json"
    try:
        lock.acquire()
    except filelock.Timeout:
        with contextlib.suppress(OSError, ValueError):
            holder = json.loads(holder_file.read_text())
            raise CheckpointInUse(f"{shown_path(folder)} is in use by process {holder['pid']} on {holder['host']} "
                                  f"since {holder['started']}; wait for it to finish or stop it, then run this again")
        raise CheckpointInUse(f"{shown_path(folder)} is in use by another run; wait for it or stop it") from None
    try:
        holder_file.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}))
        yield folder
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


@contextlib.contextmanager
def training_run(name, fresh=False):
    """The checkpoint folder of run `name`, locked for the `with` block (exclusive_run) and emptied
    first when `fresh` (FRESH_START). Save the finished run inside the block."""
    folder = checkpoint_dir(name)
    with exclusive_run(folder):
        if fresh:
            _discard(folder)
        yield folder


def discard_checkpoints(folder):
    """Delete what a run would resume from in `folder` (not its finished experiment), under its lock."""
    with exclusive_run(folder):
        _discard(folder)


def _discard(folder):
    for path in Path(folder).iterdir():
        if path.name not in (EXPERIMENT, ".lock", ".lock-holder.json"):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _epochs(folder):
    """{epoch number: folder} of the epoch-NNNN folders in `folder`."""
    return {int(path.name[6:]): path for path in Path(folder).glob("epoch-*") if path.name[6:].isdigit()}


def _save_folder(target, writers, record, record_name=RECORD):
    """Write each writer's file and then `record` (with every file's SHA-256) into a temporary folder
    beside `target`, then rename it onto `target`: the folder is complete or absent."""
    earlier = max((folder_size(path) for path in _epochs(target.parent).values()), default=0)
    with writing(target.parent, needed=earlier):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        try:
            for file_name, write in writers.items():
                write(str(staging / file_name))
            record = dict(record, sha256={file_name: sha256_of(staging / file_name) for file_name in writers})
            (staging / record_name).write_text(_json(record), encoding="utf-8")
            for path in staging.iterdir():
                flush_to_disk(path)
            shutil.rmtree(target, ignore_errors=True)  # the same epoch saved again, after a resume
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def save_epoch(folder, epoch, writers, record):
    """Save epoch `epoch` as folder/epoch-NNNN, complete or not at all. `writers`: {file name:
    callable(path)}, e.g. {"model.params": model.save_parameters}; `record`: a JSON-able dict (losses,
    config, "best_epoch"). Keeps this epoch, the one before it and the best; deletes the others."""
    check(isinstance(epoch, (int, np.integer)) and not isinstance(epoch, bool) and epoch >= 0,
          f"epoch = {epoch!r} must be a whole number of at least 0")
    target = _save_folder(Path(folder) / f"epoch-{int(epoch):04d}", writers, dict(record, epoch=int(epoch)))
    keep = {int(epoch), max((n for n in _epochs(folder) if n < epoch), default=None), record.get("best_epoch")}
    for number, path in _epochs(folder).items():
        if number not in keep:
            shutil.rmtree(path, ignore_errors=True)
    return target


def _complete(folder, record_name):
    """The record of a folder whose files all match the SHA-256s it lists, or None (and why)."""
    try:
        record = json.loads((folder / record_name).read_text(encoding="utf-8"))
        damaged = [name for name, digest in record.pop("sha256").items()
                   if not (folder / name).is_file() or sha256_of(folder / name) != digest]
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return None, f"its {record_name} is missing or damaged"
    return (None, f"{damaged[0]} does not match its checksum") if damaged else (record, None)


def latest_epoch(folder):
    """(epoch folder, record) of the newest complete checkpoint in `folder`, or None. A checkpoint whose
    files do not match their checksums is skipped, with one line, for the one before it."""
    for number, path in sorted(_epochs(folder).items(), reverse=True):
        record, problem = _complete(path, RECORD)
        if record is not None:
            return path, record
        print(f"skipping the checkpoint {shown_path(path)}: {problem}")
    return None


def resume(folder, networks, trainers, config, epochs, ctx=None):
    """Load the newest complete checkpoint in `folder` into `networks` and `trainers` ({name: Block or
    Trainer}, saved as name.params / name.states); its record, or None when there is none. A run with
    other parameters (any key of `config` but "epochs"), or more than `epochs` epochs, is refused."""
    latest = latest_epoch(folder)
    if latest is None:
        return None
    path, record = latest
    saved = record.get("config", {})
    changed = [f"{key.upper()} = {saved.get(key)!r} there, {value!r} here"
               for key, value in _plain(config).items() if key != "epochs" and saved.get(key) != value]
    check(not changed, f"{shown_path(folder)} holds a run with other parameters ({'; '.join(changed)}); set them "
                       "back to resume it, or FRESH_START = True to discard it")
    check(record["epoch"] <= epochs, f"{shown_path(folder)} holds {record['epoch']} epochs, more than EPOCHS = "
                                    f"{epochs}; raise EPOCHS to use them, or FRESH_START = True to start again")
    for name, network in networks.items():
        load_weights(network, path / f"{name}.params", ctx)
    for name, trainer in trainers.items():
        trainer.load_states(str(path / f"{name}.states"))
    print(f"resuming after epoch {record['epoch']} from {shown_path(path)}")
    return record


# ---------------------------------------------------------------- the reader's finished runs

def save_experiment(name, files, entries):
    """Save a finished run as checkpoints/<name>/experiment/: `files` {weights file name: callable(path)}
    and `entries` {the same names: manifest entry (config, metric, untrained_metric, ...)}, each entry
    stored with its file's SHA-256. A notebook never writes to weights/: make train publishes this."""
    check(set(files) == set(entries), f"files {sorted(files)} and entries {sorted(entries)} must name the same files")
    folder = _save_folder(checkpoint_dir(name) / EXPERIMENT, files, {"name": name, "entries": entries},
                          EXPERIMENT_RECORD)
    if os.environ.get(EXPERIMENT_LOG_ENV_VAR):
        with open(os.environ[EXPERIMENT_LOG_ENV_VAR], "a", encoding="utf-8") as log:
            log.write(f"{folder}\n")
    return folder


def read_experiment(folder):
    """{weights file name: entry, with its file's SHA-256} of the finished run in `folder`, or None;
    WeightsDamaged when its record is unreadable."""
    if not (Path(folder) / EXPERIMENT_RECORD).is_file():
        return None
    try:
        saved = json.loads((Path(folder) / EXPERIMENT_RECORD).read_text(encoding="utf-8"))
        return {file_name: dict(entry, sha256=saved["sha256"][file_name])
                for file_name, entry in saved["entries"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WeightsDamaged(f"{shown_path(folder)} is damaged; delete it and train again (TRAIN = True)") from None


def _plain(value):
    """`value` as it reads back from JSON (tuples become lists, NumPy numbers plain numbers)."""
    return json.loads(_json(value))


def choose_weights(name, file_name, config):
    """(path, entry, "experiment" or "shipped"): the reader's finished run of `name` when its config
    equals `config` (the parameters cell), its metric is finite and its file matches its checksum;
    else the shipped weights/<file_name>, verified. Prints one line saying which, naming both values
    of every parameter that differs."""
    config, folder = _plain(config), checkpoint_path(name) / EXPERIMENT  # looking creates nothing

    def differences(other, whose):
        keys = sorted(key for key in set(config) | set(other) if config.get(key) != other.get(key))
        return "; ".join(f"{key.upper()} = {config.get(key)!r} here, {other.get(key)!r} in {whose}" for key in keys)

    try:
        entry, note = (read_experiment(folder) or {}).get(file_name), ""
    except WeightsDamaged as damaged:
        entry, note = None, f" (not the run saved in {shown_path(folder)}: {damaged})"
    if entry is not None:
        metric = entry.get("metric", 0)
        problem = (differences(entry.get("config") or {}, "the saved run") or
                   (f"its metric is {metric} (the run diverged)" if not math.isfinite(metric) else "") or
                   ("" if (folder / file_name).is_file() and sha256_of(folder / file_name) == entry.get("sha256")
                    else f"its {file_name} does not match its checksum"))
        if not problem:
            print(f"using the run saved in {shown_path(folder)} by TRAIN = True (its parameters match these)")
            return folder / file_name, entry, "experiment"
        note = f" (not the run saved in {shown_path(folder)}: {problem})"
    path, shipped = verified_weights(file_name)
    differ = differences(shipped.get("config") or {}, "the shipped run")
    print(f"using the shipped weights/{file_name}" + (f": {differ}; set TRAIN = True to train your own" if differ
                                                     else " (its parameters match these)") + note)
    return path, shipped, "shipped"
