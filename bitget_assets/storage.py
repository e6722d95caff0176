"""Where outputs live: a local folder or an S3 prefix, with atomic whole-object writes.

Locally a write goes to a temporary file in the same folder, is fsynced and renamed over the target,
so a reader sees the old object or the new one, never half of one. An S3 PUT is atomic by itself.
"""

import os
import tempfile
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def uri(self, key: str) -> str: ...
    def read(self, key: str) -> bytes | None: ...
    def write(self, key: str, data: bytes) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def modified_times(self, prefix: str) -> dict[str, float]: ...
    def delete(self, key: str) -> None: ...


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
            if p.name.startswith("."):
                continue
            try:
                if p.is_file():
                    times[str(p.relative_to(self.root))] = p.stat().st_mtime
            except FileNotFoundError:  # deleted by another run while we listed
                continue
        return times

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


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
