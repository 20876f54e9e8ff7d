"""Tests of the anime-faces download (helpers.faces_folder, helpers.download_faces).

Every download goes to a loopback HTTP server that this file starts (127.0.0.1, a free port,
in a thread), and lands in a throw-away repository root (see `fake_repo`): nothing is
written into the real data/, and no test touches the internet.

Two kinds of archive are served:
- small ones made here, with a list of checksums made here (the pinned list's SHA-256 is
  swapped for theirs), for every way a download can go wrong; these run anywhere;
- the real upstream archive (its `faces/` folder, as GitHub serves it), and a tampered and a
  truncated copy made from it. It lives outside the repository, in
  ../shared/data/anime-faces-source/ beside the clone (CI has it there) or under
  $GENMODELS_DATA_DIR; without it these tests are skipped.
"""
import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

import helpers  # first: it sets the thread count and engine before mxnet is imported

import cv2
import numpy as np
import pytest
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
ARCHIVE_NAME = f"Deep_Learning_GAN-{helpers.FACES_COMMIT}-faces.tar.gz"
TOP_FOLDER = f"Deep_Learning_GAN-{helpers.FACES_COMMIT}"
FACE_COUNT = 33_431  # data/README.md and ../shared/data/anime-faces-source/README.md


def listed_checksums():
    """{"faces/<N>.jpg": SHA-256} as the committed data/faces.sha256 lists them."""
    lines = (REPO_ROOT / "data" / "faces.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ") for line in lines)}


def find_real_archive():
    places = [REPO_ROOT.parent / "shared" / "data"]
    if os.environ.get(helpers.DATA_ENV_VAR):  # read before any test changes it
        places.append(Path(os.environ[helpers.DATA_ENV_VAR]))
    for place in places:
        if (place / "anime-faces-source" / ARCHIVE_NAME).is_file():
            return place / "anime-faces-source" / ARCHIVE_NAME
    return None


REAL_ARCHIVE = find_real_archive()
needs_real_archive = pytest.mark.skipif(
    REAL_ARCHIVE is None,
    reason=f"the upstream archive {ARCHIVE_NAME} is not on this machine (looked in "
           f"../shared/data/anime-faces-source/ beside the clone and under $GENMODELS_DATA_DIR)")


@pytest.fixture
def scratch(tmp_path):
    """A temporary folder for the repository root: in memory (/dev/shm) where there is room.

    Creating and deleting the real download's 33,431 files costs several times more on a disk
    than in memory (measured on our 2-core test machine: 7.9 s against 1.4 s of system time
    to write them, and 108 s against 2 s to delete them while other jobs used the disk). The
    downloader's steps are the same on either: one folder renamed within one file system.
    Elsewhere (macOS, or a small /dev/shm), tmp_path.
    """
    shared_memory = Path("/dev/shm")
    if not (shared_memory.is_dir() and os.access(shared_memory, os.W_OK)
            and shutil.disk_usage(shared_memory).free > 1 << 30):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="genmodels-test-download-", dir=shared_memory))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def fake_repo(scratch, monkeypatch):
    """A repository root holding only the committed data/faces.sha256."""
    repo = scratch / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / helpers.FACES_CHECKSUMS).write_bytes(
        (REPO_ROOT / "data" / helpers.FACES_CHECKSUMS).read_bytes())
    monkeypatch.setattr(helpers, "REPO_ROOT", repo)
    for variable in (helpers.DATA_ENV_VAR, helpers.FACES_URL_ENV_VAR,
                     "GENMODELS_CHECKPOINT_DIR", "GENMODELS_OUTPUT_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return repo


def downloaded_folder(repo):
    return repo / "data" / "anime-faces" / "faces"


def assert_nothing_left(repo):
    """No faces folder, no temporary folder: data/ holds what it held before the download."""
    assert sorted(path.name for path in (repo / "data").iterdir()) == [helpers.FACES_CHECKSUMS]


# ---------------------------------------------------------------- a loopback HTTP server

class ArchiveServer:
    """Serves one file at /faces.tar.gz on 127.0.0.1; counts the requests.

    `cut_after`: send only that many bytes of the body, though Content-Length announces all
    of it, then close the connection (a download cut off mid-way).
    """

    def __init__(self, body_path, cut_after=None):
        self.body_path, self.cut_after, self.requests = Path(body_path), cut_after, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                if self.path != "/faces.tar.gz":
                    self.send_error(404, "Not Found")
                    return
                size = server.body_path.stat().st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                remaining = size if server.cut_after is None else server.cut_after
                with open(server.body_path, "rb") as body:
                    while remaining > 0:
                        block = body.read(min(remaining, 1 << 20))
                        self.wfile.write(block)
                        remaining -= len(block)
                self.close_connection = True

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/faces.tar.gz"

    def __enter__(self):
        # a short poll interval: shutdown() waits for one, once per test
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- small archives made here

FACES = {f"faces/{number}.jpg": f"face {number}".encode() * 50 for number in (0, 1, 10)}


def use_checksums(repo, monkeypatch, faces=FACES):
    """Write a checksum list for `faces` and make helpers trust it instead of the pinned one."""
    lines = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                    for name, data in sorted(faces.items()))
    path = repo / "data" / helpers.FACES_CHECKSUMS
    path.write_text(lines)
    monkeypatch.setattr(helpers, "FACES_CHECKSUMS_SHA256", helpers.sha256_of(path))


def make_archive(path, files, top=TOP_FOLDER, extra_members=()):
    """A .tar.gz laid out as GitHub's: top/faces/<N>.jpg plus some of the repository's files."""
    with tarfile.open(path, "w:gz") as archive:
        for folder in (top, f"{top}/faces"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        for name, data in list(files.items()) + [("README.md", b"# a GAN\n"),
                                                 ("model.h5", b"\0" * 4096)]:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info, data in extra_members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def small_archive(fake_repo, monkeypatch, tmp_path):
    use_checksums(fake_repo, monkeypatch)
    return make_archive(tmp_path / "faces.tar.gz", FACES)


def download_error(url):
    """The one-line message of the DataUnavailable that downloading from `url` raises."""
    with pytest.raises(helpers.DataUnavailable) as caught:
        helpers.download_faces(url, progress=False)
    message = str(caught.value)
    assert "\n" not in message, "a reader's error is one line"
    return message


def test_downloads_only_the_faces_into_data_anime_faces_faces(fake_repo, small_archive, capsys):
    with ArchiveServer(small_archive) as server:
        folder = helpers.download_faces(server.url, progress=False)
    assert folder == downloaded_folder(fake_repo)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == {
        name.split("/")[1]: data for name, data in FACES.items()}
    # the repository's other files were skipped, and no temporary folder is left beside it
    assert [path.name for path in folder.parent.iterdir()] == ["faces"]
    assert server.requests == 1
    assert "downloaded and verified 3 faces into data/anime-faces/faces" in capsys.readouterr().out


def test_faces_folder_downloads_from_the_url_in_the_environment(fake_repo, small_archive,
                                                               monkeypatch, capsys):
    with ArchiveServer(small_archive) as server:
        monkeypatch.setenv(helpers.FACES_URL_ENV_VAR, server.url)
        assert helpers.faces_folder() == downloaded_folder(fake_repo)
        assert helpers.faces_folder() == downloaded_folder(fake_repo)  # found, not downloaded again
    assert server.requests == 1
    # the progress bar counts the archive's bytes, to the last one
    size = tqdm.format_sizeof(small_archive.stat().st_size)
    progress = capsys.readouterr().err
    assert "downloading and unpacking the faces: 100%" in progress
    assert f"| {size}/{size} [" in progress


def test_a_local_file_path_works_as_the_url_for_offline_machines(fake_repo, small_archive,
                                                                monkeypatch):
    monkeypatch.setenv(helpers.FACES_URL_ENV_VAR, str(small_archive))
    assert sorted(path.name for path in helpers.faces_folder().iterdir()) == ["0.jpg", "1.jpg",
                                                                            "10.jpg"]


def test_an_existing_complete_folder_is_reused_without_downloading(fake_repo, small_archive,
                                                                 monkeypatch):
    folder = downloaded_folder(fake_repo)
    folder.mkdir(parents=True)
    for name in FACES:
        (folder / name.split("/")[1]).write_bytes(b"kept as it is")
    with ArchiveServer(small_archive) as server:
        monkeypatch.setenv(helpers.FACES_URL_ENV_VAR, server.url)
        assert helpers.faces_folder() == folder
        assert helpers.download_faces(progress=False) == folder
    assert server.requests == 0
    assert all(path.read_bytes() == b"kept as it is" for path in folder.iterdir())


def test_an_incomplete_existing_folder_is_reported_with_how_many_and_left_alone(
        fake_repo, small_archive, monkeypatch):
    folder = downloaded_folder(fake_repo)
    folder.mkdir(parents=True)
    (folder / "0.jpg").write_bytes(b"mine")
    monkeypatch.setenv(helpers.FACES_URL_ENV_VAR, f"http://127.0.0.1:{unused_port()}/x.tar.gz")
    with pytest.raises(helpers.DataUnavailable) as caught:
        helpers.faces_folder()
    assert str(caught.value) == ("data/anime-faces/faces lacks 2 of the 3 faces (e.g. "
                                 "faces/1.jpg); delete that folder and run again to download "
                                 "them afresh")
    assert [path.name for path in folder.iterdir()] == ["0.jpg"]
    assert (folder / "0.jpg").read_bytes() == b"mine"


def test_images_of_ones_own_and_brines_layout_are_used_as_they_are(fake_repo, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setenv(helpers.FACES_URL_ENV_VAR, f"http://127.0.0.1:{unused_port()}/x.tar.gz")
    own = fake_repo / "data" / "anime-faces" / "images"
    own.mkdir(parents=True)
    assert helpers.faces_folder() == own
    brine = tmp_path / "brine_datasets" / "jayleicn"
    (brine / "anime-faces" / "images").mkdir(parents=True)
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(brine))  # the environment's folder comes first
    assert helpers.faces_folder() == brine / "anime-faces" / "images"


def test_without_download_a_missing_set_says_where_it_looked_and_how_to_get_it(fake_repo):
    with pytest.raises(helpers.DataUnavailable) as caught:
        helpers.faces_folder(download=False)
    message = str(caught.value)
    assert message.startswith("the anime faces are not on disk (no anime-faces/images or "
                              "anime-faces/faces in data)")
    assert helpers.FACES_URL in message and helpers.DATA_ENV_VAR in message
    assert str(fake_repo) not in message  # no machine paths in a notebook's output
    assert_nothing_left(fake_repo)


# ---------------------------------------------------------------- what goes wrong, and what is left

def test_no_server_listening_gives_the_manual_steps_and_leaves_nothing(fake_repo):
    url = f"http://127.0.0.1:{unused_port()}/faces.tar.gz"
    message = download_error(url)
    assert message.startswith(f"the anime faces are not on disk and the download from {url} "
                              "failed (<urlopen error [Errno ")
    assert f"Connection refused>); download {helpers.FACES_URL} by hand" in message
    assert "unpack its faces/ folder into the repository's data/anime-faces/" in message
    assert "data/README.md has the command" in message  # the recipe is there, not in a notebook's output
    assert f"or set {helpers.DATA_ENV_VAR} to a folder that holds anime-faces/images" in message
    assert str(fake_repo) not in message
    assert_nothing_left(fake_repo)


def test_an_http_error_is_named(fake_repo, small_archive):
    with ArchiveServer(small_archive) as server:
        message = download_error(server.url.replace("faces.tar.gz", "elsewhere.tar.gz"))
    assert "failed (HTTP Error 404: Not Found)" in message
    assert_nothing_left(fake_repo)


def test_a_changed_face_is_named_and_nothing_is_kept(fake_repo, monkeypatch, tmp_path):
    use_checksums(fake_repo, monkeypatch)
    archive = make_archive(tmp_path / "tampered.tar.gz", {**FACES, "faces/10.jpg": b"not a face"})
    with ArchiveServer(archive) as server:
        message = download_error(server.url)
    expected = hashlib.sha256(FACES["faces/10.jpg"]).hexdigest()
    assert message.startswith(
        f"faces/10.jpg in the faces archive from {server.url} has SHA-256 "
        f"{hashlib.sha256(b'not a face').hexdigest()}, but data/faces.sha256 lists {expected}")
    assert_nothing_left(fake_repo)


def test_a_file_the_list_does_not_have_is_refused(fake_repo, monkeypatch, tmp_path):
    use_checksums(fake_repo, monkeypatch)
    archive = make_archive(tmp_path / "extra.tar.gz", {**FACES, "faces/99999.jpg": b"extra"})
    message = download_error(str(archive))
    assert "holds faces/99999.jpg, which data/faces.sha256 does not list" in message
    assert_nothing_left(fake_repo)


def test_missing_faces_are_counted(fake_repo, monkeypatch, tmp_path):
    use_checksums(fake_repo, monkeypatch)
    archive = make_archive(tmp_path / "short.tar.gz", {"faces/0.jpg": FACES["faces/0.jpg"]})
    message = download_error(str(archive))
    assert "lacks 2 of the 3 faces listed in data/faces.sha256 (e.g. faces/1.jpg)" in message
    assert_nothing_left(fake_repo)


def test_a_face_twice_is_refused(fake_repo, monkeypatch, tmp_path):
    use_checksums(fake_repo, monkeypatch)
    again = tarfile.TarInfo(f"{TOP_FOLDER}/faces/0.jpg")
    again.size = len(FACES["faces/0.jpg"])
    archive = make_archive(tmp_path / "twice.tar.gz", FACES,
                           extra_members=[(again, FACES["faces/0.jpg"])])
    assert "holds faces/0.jpg twice" in download_error(str(archive))
    assert_nothing_left(fake_repo)


@pytest.mark.parametrize("unsafe_name", ["/tmp/evil-from-an-archive.jpg", "../evil.jpg",
                                         f"{TOP_FOLDER}/faces/../../../evil.jpg"])
def test_a_member_with_an_unsafe_path_is_refused(fake_repo, monkeypatch, tmp_path, scratch,
                                                 unsafe_name):
    use_checksums(fake_repo, monkeypatch)
    member = tarfile.TarInfo(unsafe_name)
    member.size = 4
    archive = make_archive(tmp_path / "unsafe.tar.gz", FACES, extra_members=[(member, b"evil")])
    assert f"holds a member with an unsafe path, {unsafe_name!r}" in download_error(str(archive))
    assert_nothing_left(fake_repo)
    assert not list(tmp_path.rglob("evil*")) and not list(scratch.rglob("evil*"))
    assert not Path("/tmp/evil-from-an-archive.jpg").exists()


def test_a_link_among_the_faces_is_refused(fake_repo, monkeypatch, tmp_path):
    use_checksums(fake_repo, monkeypatch)
    link = tarfile.TarInfo(f"{TOP_FOLDER}/faces/3.jpg")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = make_archive(tmp_path / "link.tar.gz", FACES, extra_members=[(link, None)])
    assert f"holds '{TOP_FOLDER}/faces/3.jpg', which is not a regular file" in download_error(
        str(archive))
    assert_nothing_left(fake_repo)


def test_a_truncated_archive_says_the_download_was_cut_short(fake_repo, small_archive, tmp_path):
    data = small_archive.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[:len(data) // 2])
    with ArchiveServer(truncated) as server:
        message = download_error(server.url)
    assert "the download was cut short (the archive is truncated)" in message
    assert "Run again, or download" in message
    assert_nothing_left(fake_repo)


def test_an_archive_missing_only_its_gzip_trailer_is_cut_short_too(fake_repo, small_archive,
                                                                    tmp_path):
    # Every face is whole, but the stream ends before gzip's length and CRC: not a full copy.
    # 2 MiB of zero blocks after the tar's end (tar readers stop at the first two) keep tarfile
    # from reading as far as the trailer by itself.
    padded = gzip.decompress(small_archive.read_bytes()) + bytes(2 << 20)
    truncated = tmp_path / "no-trailer.tar.gz"
    truncated.write_bytes(gzip.compress(padded)[:-4])
    assert "the download was cut short" in download_error(str(truncated))
    assert_nothing_left(fake_repo)


def test_a_connection_closed_early_says_the_download_was_cut_short(fake_repo, small_archive):
    with ArchiveServer(small_archive, cut_after=small_archive.stat().st_size // 2) as server:
        message = download_error(server.url)
    assert "could not be read after" in message and "the download was cut short" in message
    assert_nothing_left(fake_repo)


def test_a_file_that_is_not_a_tar_gz_is_named_as_such(fake_repo, small_archive, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html>rate limited</html>")
    message = download_error(str(page))
    assert "it is damaged, or not a gzip-compressed tar archive" in message
    assert_nothing_left(fake_repo)


def test_interrupting_the_download_leaves_nothing(fake_repo, small_archive, monkeypatch):
    write_face = helpers._write_face
    calls = []

    def interrupted_after_one_face(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(args)
        write_face(*args)

    monkeypatch.setattr(helpers, "_write_face", interrupted_after_one_face)
    with pytest.raises(KeyboardInterrupt):
        helpers.download_faces(str(small_archive), progress=False)
    assert calls, "one face was written before the interruption"
    assert_nothing_left(fake_repo)


def test_an_existing_data_anime_faces_folder_is_never_removed_on_failure(fake_repo):
    notes = fake_repo / "data" / "anime-faces" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    download_error(f"http://127.0.0.1:{unused_port()}/faces.tar.gz")
    assert [path.name for path in notes.parent.iterdir()] == ["notes.txt"]


def test_a_temporary_folder_of_a_killed_download_is_cleared(fake_repo, small_archive):
    finished = subprocess.Popen(["true"])  # its process id belongs to no live process now
    finished.wait()
    abandoned = (fake_repo / "data" / "anime-faces"
                 / f"{helpers.PARTIAL_PREFIX}faces-pid{finished.pid}-abc123")
    abandoned.mkdir(parents=True)
    (abandoned / "0.jpg").write_bytes(b"half")
    helpers.download_faces(str(small_archive), progress=False)
    assert [path.name for path in (fake_repo / "data" / "anime-faces").iterdir()] == ["faces"]


def test_when_another_download_finishes_first_its_folder_is_used(fake_repo, small_archive,
                                                                monkeypatch):
    unpack = helpers._unpack_faces

    def unpack_while_another_process_finishes(url, staging, expected, progress):
        unpack(url, staging, expected, progress)
        downloaded_folder(fake_repo).mkdir()
        (downloaded_folder(fake_repo) / "0.jpg").write_bytes(b"the other process's")

    monkeypatch.setattr(helpers, "_unpack_faces", unpack_while_another_process_finishes)
    folder = helpers.download_faces(str(small_archive), progress=False)
    assert folder == downloaded_folder(fake_repo)
    assert [path.name for path in downloaded_folder(fake_repo).parent.iterdir()] == ["faces"]
    assert (downloaded_folder(fake_repo) / "0.jpg").read_bytes() == b"the other process's"


def test_a_changed_checksum_list_is_refused(fake_repo):
    path = fake_repo / "data" / helpers.FACES_CHECKSUMS
    path.write_text(path.read_text().replace("faces/0.jpg", "faces/0.png", 1))
    message = download_error(f"http://127.0.0.1:{unused_port()}/faces.tar.gz")
    assert message.startswith(f"data/faces.sha256 has SHA-256 {helpers.sha256_of(path)}, expected "
                              f"{helpers.FACES_CHECKSUMS_SHA256}: the list was changed")
    assert "git checkout data/faces.sha256" in message
    path.unlink()
    assert "data/faces.sha256, the list of the faces' checksums, is missing" in download_error(
        f"http://127.0.0.1:{unused_port()}/faces.tar.gz")


def test_the_committed_checksum_list_is_the_pinned_one():
    path = REPO_ROOT / "data" / helpers.FACES_CHECKSUMS
    assert helpers.sha256_of(path) == helpers.FACES_CHECKSUMS_SHA256
    lines = path.read_text().splitlines()
    assert len(lines) == FACE_COUNT
    assert [line.split("  ")[1] for line in lines] == sorted(
        f"faces/{number}.jpg" for number in range(FACE_COUNT))


# ---------------------------------------------------------------- the real archive

@pytest.fixture(scope="module")
def tampered_real_archive(tmp_path_factory):
    """The real archive with one byte of one face changed: (that face's name, the copy's path).

    The face is a tenth of the way in: thousands of faces are written before the download
    fails, enough to show that they are all removed, at a tenth of the cost of the whole.
    """
    victim = sorted(listed_checksums())[FACE_COUNT // 10]  # git's order, the archive's
    with gzip.open(REAL_ARCHIVE) as source, tarfile.open(fileobj=source, mode="r|") as archive:
        member = next(member for member in archive if member.name == f"{TOP_FOLDER}/{victim}")
    changed = member.offset_data + member.size // 2  # a byte in the middle of that face
    tampered = tmp_path_factory.mktemp("tampered") / "faces.tar.gz"
    # level 0 stores the tar as it is inside gzip: a valid .tar.gz, made in a second or two
    with gzip.open(REAL_ARCHIVE) as source, gzip.open(tampered, "wb", compresslevel=0) as copy:
        copied = 0
        for block in iter(lambda: source.read(1 << 20), b""):
            if copied <= changed < copied + len(block):
                block = bytearray(block)
                block[changed - copied] ^= 0xFF
            copy.write(block)
            copied += len(block)
    return victim, tampered


@pytest.fixture(scope="module")
def truncated_real_archive(tmp_path_factory):
    """The first tenth of the real archive's bytes."""
    truncated = tmp_path_factory.mktemp("truncated") / "faces.tar.gz"
    with open(REAL_ARCHIVE, "rb") as whole:
        truncated.write_bytes(whole.read(REAL_ARCHIVE.stat().st_size // 10))
    return truncated


@needs_real_archive
def test_the_real_archive_gives_33431_verified_faces(fake_repo, monkeypatch):
    try:
        with ArchiveServer(REAL_ARCHIVE) as server:
            monkeypatch.setenv(helpers.FACES_URL_ENV_VAR, server.url)
            folder = helpers.faces_folder()
            assert helpers.faces_folder() == folder  # the second call finds it on disk
        assert server.requests == 1
        check_the_real_download(fake_repo, folder)
    finally:  # 188 MB in 33,431 files: not left for pytest to keep
        shutil.rmtree(downloaded_folder(fake_repo), ignore_errors=True)


def check_the_real_download(fake_repo, folder):
    assert folder == downloaded_folder(fake_repo)
    assert [path.name for path in folder.parent.iterdir()] == ["faces"]
    # checked again here, independently of the downloader: every file against the list
    listed = {name.split("/")[1]: digest for name, digest in listed_checksums().items()}
    on_disk = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
               for path in folder.iterdir()}
    assert len(on_disk) == FACE_COUNT and on_disk == listed
    first = cv2.imdecode(np.fromfile(str(folder / "0.jpg"), np.uint8), cv2.IMREAD_COLOR)
    assert first.shape == (96, 96, 3)
    images, skipped = helpers.load_images(folder, limit=8)
    assert images.shape == (8, 3, 64, 64) and skipped == []


@pytest.fixture
def faces_written(monkeypatch):
    """A list that grows by one name for each face the downloader writes."""
    written, write_face = [], helpers._write_face

    def counting(archive, member, name, *rest):
        write_face(archive, member, name, *rest)
        written.append(name)

    monkeypatch.setattr(helpers, "_write_face", counting)
    return written


@needs_real_archive
def test_a_tampered_real_archive_names_the_changed_face_and_keeps_nothing(
        fake_repo, tampered_real_archive, faces_written):
    victim, tampered = tampered_real_archive
    with ArchiveServer(tampered) as server:
        message = download_error(server.url)
    assert message.startswith(f"{victim} in the faces archive from {server.url} has SHA-256 ")
    assert "the file is damaged or was changed; nothing was kept" in message
    assert len(faces_written) == FACE_COUNT // 10  # every face before it was written, then removed
    assert_nothing_left(fake_repo)


@needs_real_archive
def test_a_truncated_real_archive_says_cut_short_and_keeps_nothing(
        fake_repo, truncated_real_archive, faces_written):
    with ArchiveServer(truncated_real_archive) as server:
        message = download_error(server.url)
    assert "the download was cut short (the archive is truncated)" in message
    assert len(faces_written) > 3000  # a tenth of the bytes: about a tenth of the faces, removed
    assert_nothing_left(fake_repo)
