"""Where outputs live: a local folder or an S3 prefix, with atomic whole-object writes.

Locally a write goes to a temporary file in the same folder, is fsynced and renamed over the target,
so a reader sees the old object or the new one, never half of one. An S3 PUT is atomic by itself.

Big outputs are written as local files in a staging folder, then `publish`ed together: nothing is replaced
until every file is complete, and then all of them are replaced one right after the other.
"""

import fcntl
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Protocol

IO_THREADS = 4  # files read, written or downloaded at once by one step (local disk or S3 round trips)


class Storage(Protocol):
    def uri(self, key: str) -> str: ...
    def read(self, key: str) -> bytes | None: ...
    def write(self, key: str, data: bytes) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def modified_times(self, prefix: str) -> dict[str, float]: ...
    def delete(self, key: str) -> None: ...
    def staging_dir(self) -> AbstractContextManager[Path]: ...
    def publish(self, files: dict[str, Path]) -> dict[str, str]: ...
    def local_path(self, key: str) -> Path | None: ...
    def download(self, key: str, target: Path) -> bool: ...


class LocalStorage:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def local_path(self, key: str) -> Path:
        """The file of `key` (which may not exist): read it in place, a part at a time."""
        return self._path(key)

    def download(self, key: str, target: Path) -> bool:
        """Copy `key` into the local file `target`; False when there is no such object."""
        try:
            shutil.copyfile(self._path(key), target)
        except FileNotFoundError:
            return False
        return True

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _sweep_orphans(path)
        return str(path)

    def list(self, prefix: str) -> list[str]:
        return sorted(self.modified_times(prefix))

    def modified_times(self, prefix: str) -> dict[str, float]:
        """Key -> when it was last written (Unix seconds), for every object under `prefix`."""
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return {}
        times = {}
        for p in base.rglob("*"):
            rel = p.relative_to(self.root)
            if any(part.startswith(".") for part in rel.parts):  # temp files and staging folders
                continue
            try:
                if p.is_file():
                    times[str(rel)] = p.stat().st_mtime
            except FileNotFoundError:  # deleted by another run while we listed
                continue
        return times

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    @contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """A hidden folder inside the root (same file system, so publishing is a rename), removed afterwards."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.recover()
        folder = Path(tempfile.mkdtemp(dir=self.root, prefix=f".staging-{os.getpid()}-"))
        try:
            yield folder
        finally:
            if not (folder / _COMMITTED).exists():  # a committed folder is the output now: recover() finishes it
                shutil.rmtree(folder, ignore_errors=True)

    def publish(self, files: dict[str, Path]) -> dict[str, str]:
        """Move finished files (from one `staging_dir`) over their keys, as one output.

        All are made durable, then a record of them is written in the staging folder: from that commit point
        the new files are the output, and the renames that follow are finished by whoever gets there (this
        writer, or `recover` in the next run if this one dies between two renames). A lock keeps two writers
        of one folder from interleaving their renames.
        """
        folders = {source.parent for source in files.values()}
        if len(folders) != 1:
            raise ValueError("publish takes the files of one staging folder")
        staging = folders.pop()
        for source in files.values():
            with open(source, "rb") as f:
                os.fsync(f.fileno())
        with self._publish_lock():
            self._finish_committed()  # an earlier writer's half-done publish goes first, never after ours
            record = staging / _COMMITTED
            with open(record, "w") as f:
                json.dump({key: source.name for key, source in files.items()}, f)
                f.flush()
                os.fsync(f.fileno())
            self._finish(staging)
        return {key: self.uri(key) for key in files}

    def recover(self) -> None:
        """Finish every committed publish a writer left half done; remove staging that dead writers never committed."""
        with self._publish_lock():
            self._finish_committed()
        for stale in self.root.glob(".staging-*"):
            pid = stale.name.split("-")[1]
            if pid.isdigit() and not _process_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)

    def _finish_committed(self) -> None:
        for staging in self.root.glob(".staging-*"):
            if (staging / _COMMITTED).exists():
                self._finish(staging)

    def _finish(self, staging: Path) -> None:
        """The renames of a committed staging folder; those already done are skipped, so it may run twice."""
        try:
            record = json.loads((staging / _COMMITTED).read_text())
        except FileNotFoundError:  # finished meanwhile
            return
        for key, name in record.items():
            target = self._path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            with suppress(FileNotFoundError):  # moved already
                os.replace(staging / name, target)
        (staging / _COMMITTED).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)

    @contextmanager
    def _publish_lock(self) -> Iterator[None]:
        with open(self.root / ".publish.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


_COMMITTED = "committed.json"  # in a staging folder: its files are the output; the renames may still be due


def _sweep_orphans(path: Path) -> None:
    """Remove temp files of `path` left by writers that were killed mid-write (their process is gone)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            stale.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class S3Storage:
    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def local_path(self, key: str) -> None:
        """No local file: objects are read whole or `download`ed."""
        return None

    def download(self, key: str, target: Path) -> bool:
        """Stream `key` into the local file `target` (never whole in memory); False when there is no such object."""
        try:
            self.client.download_file(self.bucket, self._key(key), str(target))
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                Path(target).unlink(missing_ok=True)
                return False
            raise
        return True

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def list(self, prefix: str) -> list[str]:
        return sorted(self.modified_times(prefix))

    def modified_times(self, prefix: str) -> dict[str, float]:
        """Key -> when it was last written (Unix seconds, the server's clock), for every object under `prefix`."""
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        times = {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            times |= {obj["Key"][strip:]: obj["LastModified"].timestamp() for obj in page.get("Contents", [])}
        return times

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def staging_dir(self) -> AbstractContextManager[Path]:
        return _temporary_path()

    def publish(self, files: dict[str, Path]) -> dict[str, str]:
        """Upload every file beside its key first; only once all are up, copy each over its key (server-side).

        A failed or cut-off upload therefore leaves every published object as it was.
        """
        token = uuid.uuid4().hex[:12]
        pending = {key: f"{key}.pending-{token}" for key in files}
        try:
            for key, source in files.items():
                self.client.upload_file(str(source), self.bucket, self._key(pending[key]))
            for key in files:
                self.client.copy({"Bucket": self.bucket, "Key": self._key(pending[key])}, self.bucket, self._key(key))
        finally:
            for key in pending.values():
                with suppress(Exception):  # the upload's own error, if any, is the one to report
                    self.delete(key)
        return {key: self.uri(key) for key in files}


@contextmanager
def _temporary_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bitget-staging-") as folder:
        yield Path(folder)


def parse_location(location: str) -> tuple[str, str, str]:
    """("s3", bucket, prefix) or ("local", path, ""); a malformed location is refused before any work."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[5:].partition("/")
        if len(bucket) < 3 or not bucket.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"not a valid S3 location: {location!r} (expected s3://bucket/prefix)")
        return "s3", bucket, prefix.strip("/")
    if "://" in location or not location.strip():
        raise ValueError(f"not a valid output location: {location!r} (a folder or s3://bucket/prefix)")
    return "local", location, ""
