"""Tests of the anime faces' download (storage.download_faces, storage.faces_folder).

Each download lands in a throw-away repository root (`fake_repo`) and reads a local archive or one
served on 127.0.0.1 by `ArchiveServer`: no test touches data/ or the internet. Small archives are
made here; the real upstream one (its faces/ folder, as GitHub serves it) is read from
../shared/data/anime-faces-source/ beside the clone or $GENMODELS_DATA_DIR, skipped where absent.
"""
import errno
import functools
import gzip
import hashlib
import http.server
import io
import os
import pathlib
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import helpers  # first: it sets MXNet's threads and engine before storage imports mxnet
import pytest
import storage

REPO_ROOT = Path(__file__).resolve().parent.parent
TOP = f"Deep_Learning_GAN-{storage.FACES_COMMIT}"
DOWNLOADED = Path("data") / helpers.DOWNLOADED_FACES  # data/anime-faces/faces
FACE_COUNT = 33_431  # data/README.md and ../shared/data/anime-faces-source/README.md
FACES = {f"faces/{number}.jpg": f"face {number}".encode() * 50 for number in (0, 1, 10)}
WITHOUT_1 = {name: data for name, data in FACES.items() if name != "faces/1.jpg"}
REAL_ARCHIVE = next((path for path in (
    folder / "anime-faces-source" / f"{TOP}-faces.tar.gz"  # read before any test changes the environment
    for folder in (REPO_ROOT.parent / "shared" / "data", Path(os.environ.get(helpers.DATA_ENV_VAR) or "/none")))
    if path.is_file()), None)
needs_real_archive = pytest.mark.skipif(REAL_ARCHIVE is None, reason=(
    f"{TOP}-faces.tar.gz is not in ../shared/data/anime-faces-source/ nor under $GENMODELS_DATA_DIR"))


@pytest.fixture
def scratch(tmp_path):
    """A temporary folder in memory (/dev/shm) where there is room: writing and deleting the real
    download's 33,431 files costs seconds on a shared disk. The steps are the same on either."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1 << 30):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="genmodels-test-download-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def fake_repo(scratch, monkeypatch):
    """A repository root holding only data/faces.sha256; no data folder, a URL where no server listens."""
    repo = scratch / "repo"
    (repo / "data").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "data" / storage.FACES_CHECKSUMS, repo / "data")
    monkeypatch.setattr(helpers, "REPO_ROOT", repo)
    monkeypatch.delenv(helpers.DATA_ENV_VAR, raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv(storage.FACES_URL_ENV_VAR, f"http://127.0.0.1:{probe.getsockname()[1]}/faces.tar.gz")
    return repo


def assert_nothing_left(repo):
    """No faces and no temporary folder: data/ holds the list (and at most an empty anime-faces/, a lock)."""
    assert {str(path.relative_to(repo / "data")) for path in (repo / "data").rglob("*")
            if not path.name.endswith(".lock")} <= {storage.FACES_CHECKSUMS, "anime-faces"}


def refused(url, *subjects):
    """Downloading from `url` raises a one-line DataUnavailable naming `subjects` and keeps nothing."""
    with pytest.raises(helpers.DataUnavailable) as caught:
        storage.download_faces(url)
    assert_nothing_left(helpers.REPO_ROOT)
    message = str(caught.value)
    assert "\n" not in message and all(subject in message for subject in subjects), message


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves the file `path` at self.url on 127.0.0.1 and counts the requests; `cut_after`: send only
    that many bytes, though Content-Length announces them all (a connection cut early)."""

    def __init__(self, path, cut_after=None):
        server, self.requests = self, 0

        class Handler(http.server.SimpleHTTPRequestHandler):
            def send_head(self):
                server.requests += 1
                return super().send_head()

            def copyfile(self, source, output):
                output.write(source.read(cut_after)) if cut_after else super().copyfile(source, output)

            def log_message(self, *args):  # keep the test output quiet
                pass

        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=Path(path).parent))
        self.url = f"http://127.0.0.1:{self.server_port}/{Path(path).name}"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def info(name, **attributes):
    """A tar member's header (TarInfo.replace is Python 3.11.4 and later)."""
    member = tarfile.TarInfo(name)
    for key, value in attributes.items():
        setattr(member, key, value)
    return member


def make_archive(path, faces=FACES, extra=()):
    """A .tar.gz laid out as GitHub's (TOP/faces/<N>.jpg and other files), plus `extra` (TarInfo, data)."""
    with tarfile.open(path, "w:gz") as archive:
        for folder in (TOP, f"{TOP}/faces"):
            archive.addfile(info(folder, type=tarfile.DIRTYPE))
        for name, data in [*faces.items(), ("README.md", b"# a GAN\n"), ("model.h5", bytes(4096))]:
            archive.addfile(info(f"{TOP}/{name}", size=len(data)), io.BytesIO(data))
        for member, data in extra:
            archive.addfile(member, None if data is None else io.BytesIO(data))
    return str(path)


@pytest.fixture
def listed(fake_repo, monkeypatch):
    """use(faces): storage trusts a checksum list of `faces` instead of the pinned one (FACES at first)."""
    def use(faces=FACES):
        path = fake_repo / "data" / storage.FACES_CHECKSUMS
        path.write_text("".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(faces.items())))
        monkeypatch.setattr(storage, "FACES_CHECKSUMS_SHA256", storage.sha256_of(path))
    use()
    return use


@pytest.fixture
def small_archive(listed, scratch):  # FACES, listed
    return make_archive(scratch / "faces.tar.gz")


@pytest.fixture
def extracted(monkeypatch):
    """The names of the members the downloader reads, in order."""
    names, extractfile = [], tarfile.TarFile.extractfile
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda tar, m: names.append(m.name) or extractfile(tar, m))
    return names


# ---------------------------------------------------------------- what a reader gets

def test_downloads_only_the_faces_into_data_anime_faces_faces_with_a_progress_bar(fake_repo, small_archive, capsys):
    with ArchiveServer(small_archive) as server:
        folder = storage.download_faces(server.url)
    assert folder == fake_repo / DOWNLOADED and server.requests == 1
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == {name[6:]: data for name, data in FACES.items()}
    assert [path.name for path in folder.parent.iterdir() if path.suffix != ".lock"] == ["faces"]  # no archive, no temporary folder
    out, err = capsys.readouterr()
    assert "data/anime-faces/faces" in out and "100%" in err


def test_faces_folder_downloads_from_the_url_in_the_environment_once(fake_repo, small_archive, monkeypatch):
    with ArchiveServer(small_archive) as server:
        monkeypatch.setenv(storage.FACES_URL_ENV_VAR, server.url)
        assert storage.faces_folder() == storage.faces_folder() == fake_repo / DOWNLOADED
    assert server.requests == 1  # the second call finds the folder on disk


def test_a_local_path_works_as_the_url_and_a_killed_downloads_folder_is_cleared(fake_repo, small_archive):
    abandoned = fake_repo / "data" / "anime-faces" / ".faces-abc123" / "faces"
    abandoned.mkdir(parents=True)
    (abandoned / "0.jpg").write_bytes(b"half")
    assert sorted(path.name for path in storage.download_faces(small_archive).iterdir()) == ["0.jpg", "1.jpg", "10.jpg"]
    assert [path.name for path in (fake_repo / DOWNLOADED).parent.iterdir() if path.suffix != ".lock"] == ["faces"]


def test_without_download_a_missing_set_names_where_it_looked(fake_repo, monkeypatch, tmp_path):
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(helpers.DataUnavailable, match=str(tmp_path / "elsewhere")):
        storage.faces_folder(download=False)
    assert_nothing_left(fake_repo)


# ---------------------------------------------------------------- what goes wrong: one line, nothing kept

@pytest.mark.parametrize("status", ["no server", "404"])
def test_an_unreachable_url_is_named(small_archive, status):
    with ArchiveServer(small_archive) as server:
        url = os.environ[storage.FACES_URL_ENV_VAR] if status == "no server" else server.url.replace("faces.tar", "other.tar")
        refused(url, url, *([status] if status == "404" else []))


@pytest.mark.parametrize("faces, extra, named", [
    ({**FACES, "faces/10.jpg": b"not a face"}, (), "faces/10.jpg"),
    ({**FACES, "faces/99999.jpg": b"unlisted"}, (), "faces/99999.jpg"),
    (WITHOUT_1, (), "faces/1.jpg"),
    (FACES, [(info(f"{TOP}/faces/1.jpg", size=len(FACES["faces/1.jpg"])), FACES["faces/1.jpg"])], "faces/1.jpg"),
], ids=["changed", "unlisted", "missing", "twice"])
def test_an_archive_unlike_the_list_is_refused_naming_the_face(listed, scratch, faces, extra, named):
    refused(make_archive(scratch / "odd.tar.gz", faces, extra), named)


@pytest.mark.parametrize("name, link", [
    ("{outside}/faces/1.jpg", None),  # an absolute path
    (f"{TOP}/faces/../../../outside/faces/1.jpg", None),
    (f"{TOP}/faces/1.jpg", (tarfile.SYMTYPE, "/etc/passwd")),
    (f"{TOP}/faces/1.jpg", (tarfile.LNKTYPE, f"{TOP}/faces/0.jpg")),
], ids=["absolute", "dot-dot", "symlink", "hard-link"])
def test_an_unsafe_member_in_place_of_a_face_is_refused_and_nothing_is_written_outside(listed, scratch, name, link):
    member = info(name.format(outside=scratch / "outside"), size=0 if link else 4)
    if link:
        member.type, member.linkname = link
    archive = make_archive(scratch / "unsafe.tar.gz", WITHOUT_1, [(member, None if link else b"evil")])
    refused(archive, "1.jpg")
    assert {str(path) for path in scratch.rglob("*") if path.is_file() and path.suffix != ".lock"} == {
        archive, str(helpers.REPO_ROOT / "data" / storage.FACES_CHECKSUMS)}


def test_an_oversized_member_is_refused_before_it_is_read(listed, scratch, monkeypatch, extracted):
    # issue 30: with no cap, a hostile archive fills the disk before the checksum is compared
    monkeypatch.setattr(storage, "MAX_FACE_BYTES", 1000)
    listed({**FACES, "faces/1.jpg": bytes(1001)})  # its true checksum: only the size can refuse it
    refused(make_archive(scratch / "big.tar.gz", {**FACES, "faces/1.jpg": bytes(1001)}), "faces/1.jpg")
    assert f"{TOP}/faces/1.jpg" not in extracted


@pytest.mark.parametrize("cut, said", [
    ("file", "truncated"),
    ("connection", "truncated"),
    ("not a tar.gz", "gzip"),
])
def test_a_truncated_archive_a_cut_connection_or_another_file_is_refused(small_archive, scratch, cut, said):
    whole, served = Path(small_archive).read_bytes(), scratch / "served.tar.gz"
    served.write_bytes({"file": whole[:len(whole) // 2], "connection": whole}.get(cut, b"<html>rate limited</html>"))
    with ArchiveServer(served, cut_after=len(whole) // 2 if cut == "connection" else None) as server:
        refused(server.url, server.url, said)


@pytest.mark.parametrize("error, raised, named", [
    (KeyboardInterrupt(), KeyboardInterrupt, ""),  # Ctrl-C
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), storage.CannotWrite, "data/anime-faces"),
], ids=["ctrl-c", "full disk"])
def test_ctrl_c_or_a_full_disk_mid_download_leaves_nothing(fake_repo, small_archive, monkeypatch, error, raised, named):
    write, written = pathlib.Path.write_bytes, []

    def write_one_face_then_fail(path, data):
        if written:
            raise error
        written.append(write(path, data))

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_one_face_then_fail)
    with ArchiveServer(small_archive) as server, pytest.raises(raised, match=named):
        storage.download_faces(server.url)
    assert written, "one face was written before"
    assert_nothing_left(fake_repo)


def test_a_second_download_at_the_same_time_waits_and_uses_the_first_ones_folder(fake_repo, small_archive,
                                                                                 monkeypatch):
    unpack, calls, second = storage._unpack_faces, [], {}

    def while_a_second_download_starts(*args):
        calls.append(args)
        if len(calls) == 1:
            waiting = threading.Thread(target=lambda: second.update(folder=storage.download_faces(small_archive)))
            waiting.start()
            time.sleep(0.5)  # the second one is now waiting for the first's lock
            second["waiting"] = waiting
        unpack(*args)

    monkeypatch.setattr(storage, "_unpack_faces", while_a_second_download_starts)
    assert storage.download_faces(small_archive) == fake_repo / DOWNLOADED
    second["waiting"].join(timeout=60)
    assert second["folder"] == fake_repo / DOWNLOADED and len(calls) == 1


def test_a_changed_or_missing_checksum_list_is_refused_naming_it(fake_repo, small_archive):
    path = fake_repo / "data" / storage.FACES_CHECKSUMS
    path.write_text(path.read_text().replace("faces/0.jpg", "faces/0.png", 1))
    refused(small_archive, f"data/{storage.FACES_CHECKSUMS}")
    path.unlink()
    refused(small_archive, f"data/{storage.FACES_CHECKSUMS}")


def test_the_committed_checksum_list_is_the_pinned_one():
    path = REPO_ROOT / "data" / storage.FACES_CHECKSUMS
    assert storage.sha256_of(path) == storage.FACES_CHECKSUMS_SHA256
    assert [line.split("  ")[1] for line in path.read_text().splitlines()] == sorted(
        f"faces/{number}.jpg" for number in range(FACE_COUNT))


# ---------------------------------------------------------------- the real archive

@needs_real_archive
def test_the_real_archive_gives_33431_verified_faces(fake_repo, monkeypatch):
    with ArchiveServer(REAL_ARCHIVE) as server:
        monkeypatch.setenv(storage.FACES_URL_ENV_VAR, server.url)
        folder = storage.faces_folder()
    # checked again here, apart from the downloader: every file against the committed list
    on_disk = {f"faces/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}
    assert len(on_disk) == FACE_COUNT and on_disk == storage.face_checksums()
    assert [path.name for path in folder.parent.iterdir() if path.suffix != ".lock"] == ["faces"]


@pytest.fixture(scope="module")
def damaged_real_archives(tmp_path_factory):
    """{"tampered": the real archive with one byte of a face a tenth of the way in flipped, ending a
    megabyte after that face; "truncated": its first tenth}, and the name of the changed face."""
    folder = tmp_path_factory.mktemp("real")
    victim = sorted(storage.face_checksums())[FACE_COUNT // 10]  # git's order, the archive's
    with tarfile.open(REAL_ARCHIVE) as archive:
        member = next(member for member in archive if member.name == f"{TOP}/{victim}")
    with gzip.open(REAL_ARCHIVE) as source:
        data = bytearray(source.read(member.offset_data + member.size + (1 << 20)))
    data[member.offset_data + member.size // 2] ^= 0xFF
    (folder / "tampered").write_bytes(gzip.compress(data, compresslevel=1))
    (folder / "truncated").write_bytes(REAL_ARCHIVE.read_bytes()[:REAL_ARCHIVE.stat().st_size // 10])
    return {"tampered": str(folder / "tampered"), "truncated": str(folder / "truncated")}, victim


@needs_real_archive
@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_real_archive_is_refused_after_thousands_of_faces(damaged_real_archives, extracted, damage):
    archives, victim = damaged_real_archives
    refused(archives[damage], archives[damage], {"tampered": victim, "truncated": "truncated"}[damage])
    assert len(extracted) > 3000  # thousands of faces were written before it, and removed
