"""The content digest of export-diff streams: equal content hashes alike however it was
allocated (a hole, zeros written, a zero record), any byte of difference shows, and a stream
the digest cannot read fails instead of passing."""
import io
import os

import pytest

from lib.diff_digest import DIGEST_BLOCK, digest_stream
from lib.errors import VerificationFailed

MIB = 1024 * 1024


def stream(records, size=8 * MIB, head=b"rbd diff v1\n"):
    """An ``rbd export-diff`` format 1 stream: ("w", offset, data) and ("z", offset, length)."""
    out = io.BytesIO()
    out.write(head + b"t" + (4).to_bytes(4, "little") + b"snap" + b"s" + size.to_bytes(8, "little"))
    for record in records:
        if record[0] == "w":
            out.write(b"w" + record[1].to_bytes(8, "little") + len(record[2]).to_bytes(8, "little")
                      + record[2])
        else:
            out.write(b"z" + record[1].to_bytes(8, "little") + record[2].to_bytes(8, "little"))
    out.write(b"e")
    out.seek(0)
    return out


def digest(records, **kw):
    seen = []
    result = digest_stream(stream(records, **kw), seen.append)
    return result, seen


DATA = bytes(b or 1 for b in os.urandom(3 * DIGEST_BLOCK + 777))     # no zero byte in it


def test_the_same_content_hashes_alike_whatever_its_allocation():
    plain, seen = digest([("w", MIB + 5, DATA)])
    assert seen and seen[-1] == len(DATA)
    with_zeros, _ = digest([("w", 0, bytes(DIGEST_BLOCK * 2)), ("w", MIB + 5, DATA),
                            ("z", 4 * MIB, 2 * MIB)])
    split, _ = digest([("w", MIB + 5, DATA[:1000]), ("w", MIB + 1005, DATA[1000:])])
    assert plain["sha256"] == with_zeros["sha256"] == split["sha256"]
    assert plain["size"] == 8 * MIB and plain["to"] == "snap"
    assert plain["data_bytes"] == 4 * DIGEST_BLOCK      # only the blocks holding data count


def test_one_byte_moved_or_changed_or_zeroed_shows():
    base = digest([("w", MIB, DATA)])[0]["sha256"]
    changed = bytearray(DATA)
    changed[4321] ^= 1
    assert digest([("w", MIB, bytes(changed))])[0]["sha256"] != base
    assert digest([("w", MIB + DIGEST_BLOCK, DATA)])[0]["sha256"] != base     # moved
    zeroed = [("w", MIB, DATA[:100]), ("z", MIB + 100, 1), ("w", MIB + 101, DATA[101:])]
    assert digest(zeroed)[0]["sha256"] != base
    assert digest([("w", MIB, DATA)], size=9 * MIB)[0]["size"] == 9 * MIB


@pytest.mark.parametrize("records,kw,words", [
    ([("w", MIB, DATA), ("w", 0, DATA)], {}, "out of order"),
    ([("w", 0, DATA)], {"head": b"rbd diff v2\n"}, "not an export-diff"),
])
def test_a_stream_it_cannot_read_fails(records, kw, words):
    with pytest.raises(VerificationFailed, match=words):
        digest(records, **kw)


def test_a_truncated_stream_fails():
    whole = stream([("w", 0, DATA)]).getvalue()
    with pytest.raises(VerificationFailed, match="ended early"):
        digest_stream(io.BytesIO(whole[:-100]), lambda n: None)


@pytest.mark.parametrize("piece", [1, 7, 4096, 10 ** 6])
def test_fed_in_pieces_of_any_size_as_the_copy_carries_it(piece):
    """The copy feeds the stream as it carries it: where the pieces break changes nothing."""
    from lib.diff_digest import DiffDigest

    whole = stream([("w", MIB + 5, DATA), ("z", 3 * MIB, 100), ("w", 4 * MIB, DATA[:999])])
    expected = digest_stream(io.BytesIO(whole.getvalue()), lambda n: None)
    found = DiffDigest()
    data = whole.getvalue()
    for at in range(0, len(data), piece):
        found.feed(data[at:at + piece])
    assert found.result() == expected
    unfinished = DiffDigest()
    unfinished.feed(data[:-1])
    with pytest.raises(VerificationFailed, match="ended early"):
        unfinished.result()
