"""The KTP-el-like file layout the simulated card offers and the seeded scripts write.

Not the ministry's real layout (which is not public): a stand-in with the same shape,
8 KB of elementary files under one dedicated file, addressed by 2-byte file ids.
"""

from __future__ import annotations

MF = 0x3F00
DF_KTPEL = 0x7F10

#: elementary file id → size in bytes (8 KB in all)
EF_SIZES: dict[int, int] = {
    0x0101: 1024,  # demographic data (UTF-8 JSON of the face fields)
    0x0102: 4096,  # photo (JPEG, truncated/padded to fit)
    0x0103: 1024,  # signature image
    0x0104: 2048,  # two fingerprint templates
}

#: Largest data field of one short UPDATE BINARY.
MAX_SHORT_DATA = 255

#: GET DATA for the chip serial: CLA INS P1 P2 Le — answers 8 bytes + 9000.
GET_SERIAL_APDU = bytes.fromhex("00CA010100")
#: The PC/SC reader's own pseudo-APDU for the UID (answered by the reader, not the card).
PCSC_GET_UID_APDU = bytes.fromhex("FFCA000000")
