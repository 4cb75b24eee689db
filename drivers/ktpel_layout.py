"""The KTP-el-like file layout the simulated card offers and the seeded scripts write."""

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

#: Short EF identifiers are not offered: READ/UPDATE BINARY address the selected EF.
#: The card's SELECT: 00 A4 P1 P2 02 FID with P1 00 (MF/DF/EF by id) or 02 (EF under
#: the current DF), P2 0C (no answer data) or 00/04 (FCP template answered).

#: GET CHALLENGE: the card answers Le random bytes (kept for EXTERNAL AUTHENTICATE).
GET_CHALLENGE_APDU = bytes.fromhex("0084000008")
#: Proprietary SAM command answering the cryptogram for an 8-byte card challenge:
#: ``80 AE 00 00 08 <challenge> 08`` → first 8 bytes of SHA-256(key || challenge) + 9000.
SAM_CLA = 0x80
SAM_INS_CRYPTOGRAM = 0xAE
#: The card checks ``00 82 00 00 08 <cryptogram>`` (EXTERNAL AUTHENTICATE) against its
#: last challenge: 9000, or 6300 if wrong, 6985 if no challenge is outstanding.
INS_EXTERNAL_AUTHENTICATE = 0x82
#: The shared key of the simulated card and SAM (a stand-in: real keys live in the SAM).
SIM_SAM_KEY = bytes.fromhex("4B54502D454C2053494D204B45592031")  # "KTP-EL SIM KEY 1"
