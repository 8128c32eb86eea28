"""What an ``rbd export-diff`` stream holds, as one digest that depends on content only.

Why: comparing ``rbd export`` of two images reads and hashes their provisioned size, holes
included, and two equal images allocated differently (a hole here, zeros written there) must
still compare equal. A digest over the non-zero blocks of the extents an export-diff carries
reads only allocated data, and can be computed while the stream crosses to the destination.
"""
import hashlib
from typing import IO, Any, Callable, Dict, Optional

from .errors import VerificationFailed

DIGEST_BLOCK = 64 * 1024
_ZERO = bytes(DIGEST_BLOCK)
_READ = 4 * 1024 * 1024
DIGEST_OF = "sha256 over the non-zero 64 KiB blocks (index, bytes)"


class ContentDigest:
    """SHA-256 over the non-zero 64 KiB blocks (index and bytes) of what an export-diff stream
    describes. Holes and zeros hash alike, so two images with the same content have the same
    digest however each allocated it, and only allocated data is ever read."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.index = -1
        self.block: Optional[bytearray] = None
        self.data_bytes = 0

    def write(self, offset: int, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            index, start = divmod(offset + pos, DIGEST_BLOCK)
            n = min(DIGEST_BLOCK - start, len(view) - pos)
            self._at(index)
            if start == 0 and n == DIGEST_BLOCK:
                self._emit(index, view[pos:pos + n])
                self.block = None
            else:
                if self.block is None:
                    self.block = bytearray(DIGEST_BLOCK)
                self.block[start:start + n] = view[pos:pos + n]
            pos += n

    def zero(self, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            index, start = divmod(offset, DIGEST_BLOCK)
            n = min(DIGEST_BLOCK - start, end - offset)
            self._at(index)
            if self.block is not None:
                self.block[start:start + n] = _ZERO[:n]
            offset += n

    def hexdigest(self) -> str:
        self._at(self.index + 1)
        return self.sha.hexdigest()

    def _at(self, index: int) -> None:
        if index < self.index:
            raise VerificationFailed("export-diff extents out of order (a striped image?): "
                                     "cannot verify by content blocks")
        if index != self.index:
            if self.block is not None:
                self._emit(self.index, self.block)
            self.index, self.block = index, None

    def _emit(self, index: int, block: Any) -> None:
        if block != _ZERO:
            self.sha.update(index.to_bytes(8, "little"))
            self.sha.update(block)
            self.data_bytes += DIGEST_BLOCK


class DiffDigest:
    """Reads ``rbd export-diff`` (format 1) as it is fed, in pieces of any size: the image's
    size, the snapshots and the content digest of the extents it carries. Fed by the copy
    itself (``sync_round``), it gives the source's side of the check without reading the
    source a second time."""

    _HEAD = b"rbd diff v1\n"
    _FIXED = {b"f": 5, b"t": 5, b"s": 9, b"w": 17, b"z": 17, b"e": 1}

    def __init__(self) -> None:
        self.digest = ContentDigest()
        self.found: Dict[str, Any] = {"size": None, "from": None, "to": None}
        self.pending = bytearray()
        self.started = self.ended = False
        self.at = self.left = self.read = 0

    def feed(self, data: bytes) -> None:
        self.pending += data
        with memoryview(self.pending) as view:
            used = self._parse(view)
        del self.pending[:used]

    def _parse(self, view: memoryview) -> int:
        i = 0
        if not self.started:
            if len(view) < len(self._HEAD):
                return 0
            if bytes(view[:len(self._HEAD)]) != self._HEAD:
                raise VerificationFailed("not an export-diff (format 1) stream")
            self.started, i = True, len(self._HEAD)
        while i < len(view):
            if self.left:                          # inside a record's data
                n = min(self.left, len(view) - i)
                self.digest.write(self.at, view[i:i + n])
                self.at, self.left, self.read, i = self.at + n, self.left - n, self.read + n, i + n
                continue
            tag = bytes(view[i:i + 1])
            if self.ended:
                raise VerificationFailed("export-diff stream goes on after its end")
            if tag not in self._FIXED:
                raise VerificationFailed("export-diff stream has an unknown record %r" % tag)
            if len(view) - i < self._FIXED[tag]:
                break
            if tag in (b"f", b"t"):
                length = int.from_bytes(view[i + 1:i + 5], "little")
                if len(view) - i < 5 + length:
                    break
                self.found["from" if tag == b"f" else "to"] = bytes(
                    view[i + 5:i + 5 + length]).decode()
                i += 5 + length
            elif tag == b"s":
                self.found["size"] = int.from_bytes(view[i + 1:i + 9], "little")
                i += 9
            elif tag in (b"w", b"z"):
                offset = int.from_bytes(view[i + 1:i + 9], "little")
                length = int.from_bytes(view[i + 9:i + 17], "little")
                if tag == b"w":
                    self.at, self.left = offset, length
                else:
                    self.digest.zero(offset, length)
                i += 17
            else:
                self.ended, i = True, i + 1
        return i

    def result(self) -> Dict[str, Any]:
        if not self.ended or self.left or self.pending:
            raise VerificationFailed("export-diff stream ended early")
        return dict(self.found, sha256=self.digest.hexdigest(),
                    data_bytes=self.digest.data_bytes, read=self.read)


def digest_stream(stream: IO[bytes], alive: Callable[[int], None]) -> Dict[str, Any]:
    """DiffDigest of a whole stream, read in pieces as they come (``alive`` after each)."""
    found = DiffDigest()
    read = getattr(stream, "read1", stream.read)
    for chunk in iter(lambda: read(_READ), b""):
        found.feed(chunk)
        alive(found.read)
    return found.result()
