"""Byte pipes to an Evolis printer: USB (pyusb), serial (pyserial) and raw TCP."""

from __future__ import annotations

import errno
import select
import socket
from abc import ABC, abstractmethod
from typing import Any

try:
    import termios

    #: pyserial lets termios.error (not an OSError) escape from flush() on a dead tty.
    _TTY_ERRORS: tuple[type[BaseException], ...] = (termios.error,)
except ImportError:  # pragma: no cover - not POSIX
    _TTY_ERRORS = ()

EVOLIS_VENDOR_ID = 0x0F49
USB_PRINTER_CLASS = 7


class LinkClosed(ConnectionError):
    """The printer closed the link or vanished."""


class Transport(ABC):
    #: True when one read returns one whole reply (USB transfers); False for streams.
    message_oriented = False

    @abstractmethod
    def write(self, data: bytes, timeout: float) -> None: ...

    @abstractmethod
    def read(self, timeout: float) -> bytes:
        """The bytes that arrive within ``timeout`` seconds (b"" when none did)."""

    @abstractmethod
    def close(self) -> None: ...

    def drain(self) -> None:
        """Throw away anything already received (a late reply after a time-out)."""
        while self.read(0.0):
            pass


class TcpTransport(Transport):
    """The printer's raw TCP port (its number is a setting: not publicly documented)."""

    def __init__(self, host: str, port: int, connect_timeout: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=connect_timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes, timeout: float) -> None:
        self._sock.settimeout(timeout)
        self._sock.sendall(data)

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            return b""
        data = self._sock.recv(65536)
        if not data:
            raise LinkClosed("the printer closed the TCP connection")
        return data

    def close(self) -> None:
        self._sock.close()


class SerialTransport(Transport):
    """A serial port (``Pcom`` on the printer must match these settings)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        parity: str = "N",
        stopbits: int = 1,
        flow: str = "none",
    ) -> None:
        import serial

        self._serial: Any = serial.Serial(
            port,
            baudrate=baudrate,
            bytesize=serial.EIGHTBITS,
            parity=parity,
            stopbits=stopbits,
            xonxoff=flow == "xonxoff",
            rtscts=flow == "rtscts",
            timeout=0,
            write_timeout=30,
            exclusive=True,
        )

    def write(self, data: bytes, timeout: float) -> None:
        try:
            self._serial.write_timeout = timeout
            self._serial.write(data)
            self._serial.flush()
        except _TTY_ERRORS as exc:
            raise LinkClosed(f"serial port failed: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        try:
            self._serial.timeout = timeout
            data: bytes = self._serial.read(max(1, self._serial.in_waiting))
        except _TTY_ERRORS as exc:
            raise LinkClosed(f"serial port failed: {exc}") from exc
        return data

    def drain(self) -> None:
        try:
            self._serial.reset_input_buffer()
        except _TTY_ERRORS as exc:
            raise LinkClosed(f"serial port failed: {exc}") from exc

    def close(self) -> None:
        self._serial.close()


def _is_printer_interface(intf: Any) -> bool:
    return int(intf.bInterfaceClass) == USB_PRINTER_CLASS


class UsbTransport(Transport):
    """The printer-class interface of an Evolis USB device (vendor 0x0F49).

    ``product_id`` narrows the match (None: any Evolis device); ``backend`` is a pyusb
    backend (None: pyusb's default, libusb). A kernel driver holding the interface
    (usblp) is detached and re-attached at close.
    """

    message_oriented = True

    def __init__(
        self,
        *,
        vendor_id: int = EVOLIS_VENDOR_ID,
        product_id: int | None = None,
        backend: Any = None,
    ) -> None:
        import usb.core
        import usb.util

        self._usb = usb
        match: dict[str, Any] = {"idVendor": vendor_id}
        if product_id is not None:
            match["idProduct"] = product_id
        dev = usb.core.find(backend=backend, custom_match=self._has_printer_intf, **match)
        if dev is None:
            raise LinkClosed(f"no USB printer with vendor id {vendor_id:04x} is attached")
        self._dev: Any = dev
        self._detached = False
        try:
            cfg = dev.get_active_configuration()
        except usb.core.USBError:
            dev.set_configuration()
            cfg = dev.get_active_configuration()
        intf = usb.util.find_descriptor(cfg, custom_match=_is_printer_interface)
        if intf is None:
            raise LinkClosed("the USB device has no printer-class interface")
        self._intf = int(intf.bInterfaceNumber)
        if dev.is_kernel_driver_active(self._intf):
            dev.detach_kernel_driver(self._intf)
            self._detached = True
        usb.util.claim_interface(dev, self._intf)
        d, kind = usb.util.endpoint_direction, usb.util.endpoint_type
        bulk = [e for e in intf if kind(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK]
        outs = [e for e in bulk if d(e.bEndpointAddress) == usb.util.ENDPOINT_OUT]
        ins = [e for e in bulk if d(e.bEndpointAddress) == usb.util.ENDPOINT_IN]
        if not outs or not ins:
            self.close()
            raise LinkClosed("the printer interface lacks a bulk OUT or bulk IN endpoint")
        self._out, self._in = outs[0], ins[0]

    @staticmethod
    def _has_printer_intf(dev: Any) -> bool:
        return any(_is_printer_interface(i) for cfg in dev for i in cfg)

    def write(self, data: bytes, timeout: float) -> None:
        written = self._out.write(data, timeout=max(1, int(timeout * 1000)))
        if written != len(data):
            raise LinkClosed(f"USB write stopped after {written} of {len(data)} bytes")

    def read(self, timeout: float) -> bytes:
        try:
            data = self._in.read(4096, timeout=max(1, int(timeout * 1000)))
        except self._usb.core.USBTimeoutError:
            return b""
        except self._usb.core.USBError as exc:
            if exc.errno == errno.ETIMEDOUT:
                return b""
            raise
        return bytes(data)

    def close(self) -> None:
        usb = self._usb
        try:
            usb.util.release_interface(self._dev, self._intf)
            if self._detached:
                self._dev.attach_kernel_driver(self._intf)
        except usb.core.USBError:
            pass  # the device is gone: nothing left to give back
        finally:
            usb.util.dispose_resources(self._dev)
