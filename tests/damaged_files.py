"""Damaging files on purpose, for the tests of the readers that must reject them."""

import zipfile


def flip_compressed_bytes(path):
    """Corrupt the deflated data of the first member, leaving the zip directory intact:
    a first byte of 0xFF is a deflate block of the reserved type 3, so zlib fails."""
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    assert info.compress_type == zipfile.ZIP_DEFLATED
    data = bytearray(path.read_bytes())
    local = info.header_offset  # local header: 30 bytes, then name and extra field
    name_length, extra_length = (int.from_bytes(data[local + at:local + at + 2], "little")
                                 for at in (26, 28))
    data[local + 30 + name_length + extra_length] = 0xFF
    path.write_bytes(bytes(data))
