"""One exception tree for every device the station drives."""

from __future__ import annotations

from typing import ClassVar


def N_(message: str) -> str:  # noqa: N802 - the gettext marker Babel extracts
    """Mark an ``action`` for the station's catalog (station/locale): the status CLI
    shows it in the technician's language; drivers themselves stay English."""
    return message


class DeviceError(Exception):
    """Base of every device failure; ``str()`` is safe to log (never personal data)."""

    retryable: ClassVar[bool] = False
    action: ClassVar[str] = N_("check the device and the station log")
    #: Whether a card that was inside the device is damaged or must be rejected.
    spoils_card: ClassVar[bool] = True

    def __init__(self, message: str, *, frames: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        #: The last frames exchanged with the device (commands/APDUs, data elided).
        self.frames = frames


class TransientDeviceError(DeviceError):
    retryable = True
    action = N_("none: the station retries by itself")
    spoils_card = False


class DeviceBusy(TransientDeviceError):
    pass


class DeviceTimeout(TransientDeviceError):
    action = N_("if it repeats, power-cycle the device")
    spoils_card = True


class DeviceOffline(TransientDeviceError):
    action = N_("check the cable and power of the device")


class PrinterError(DeviceError):
    pass


class MediaOut(PrinterError):
    spoils_card = False


class FeederEmpty(MediaOut):
    action = N_("load blanks into the input hopper")


class RibbonOut(MediaOut):
    action = N_("replace the ribbon")


class CardJam(PrinterError):
    action = N_("open the printer, remove the jammed card into the reject tray, close the cover")


class CoverOpen(PrinterError):
    action = N_("close the printer cover")
    spoils_card = False


class PrintFailed(PrinterError):
    action = N_("inspect the card in the reject tray; clean the print head if it repeats")


class ChipError(DeviceError):
    action = N_("none: the card is rejected and the record retried with a new blank")


class NoCard(ChipError):
    action = N_("check that the encoder sees the card at the contact station")


class ChipDead(ChipError):
    pass


class ChipStatusError(ChipError):
    """The card answered a status word the step did not expect."""

    def __init__(self, message: str, *, sw: int, frames: tuple[str, ...] = ()) -> None:
        super().__init__(message, frames=frames)
        self.sw = sw
