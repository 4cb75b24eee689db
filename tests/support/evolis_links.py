"""The emulator on other links: a loopback TCP server, and a virtual USB bus for pyusb.

:class:`EmulatorOnTcp` serves the emulator on a loopback port (one connection at a time;
a ``DISCONNECT`` closes it and the next connection is accepted).

:class:`VirtualUsbBackend` implements ``usb.backend.IBackend``, so the driver's real
pyusb calls (find, descriptors, configuration, kernel-driver detach, claim, bulk
transfers) run unchanged. A ``DISCONNECT`` fault re-plugs the device: handles opened
before fail with ENODEV and ``find`` returns a new device on a new address.
"""

from __future__ import annotations

import array
import errno
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from drivers.evolis.transports import EVOLIS_VENDOR_ID, USB_PRINTER_CLASS
from tests.support.evolis_emulator import EvolisEmulator, _Harness

EP_OUT, EP_IN = 0x01, 0x82
BULK = 0x02


@dataclass(frozen=True)
class _Handle:
    generation: int


class VirtualUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """One emulated printer on a virtual bus (see the module docstring)."""

    def __init__(self, emulator: EvolisEmulator | None = None, product_id: int = 0x0A00) -> None:
        self.emulator = emulator or EvolisEmulator()
        self.product_id = product_id
        self.plugged = True
        self.generation = 0
        self.kernel_driver_active = True  # usblp holds the interface at first
        self.detaches = 0
        self.configuration = 0
        self._replies: deque[bytes] = deque()
        self._lock = threading.Lock()

    def unplug(self) -> None:
        with self._lock:
            self.plugged = False
            self.generation += 1
            self._replies.clear()

    def plug(self) -> None:
        with self._lock:
            self.plugged, self.configuration, self.kernel_driver_active = True, 0, True

    def _alive(self, handle: _Handle) -> None:
        if not self.plugged or handle.generation != self.generation:
            raise usb.core.USBError(
                "No such device (it may have been disconnected)", error_code=-4, errno=errno.ENODEV
            )

    # -- descriptors -----------------------------------------------------------------

    def enumerate_devices(self) -> Any:
        if self.plugged:
            yield ("evolis", self.generation)

    def get_device_descriptor(self, dev: Any) -> Any:
        return SimpleNamespace(
            bLength=18,
            bDescriptorType=1,
            bcdUSB=0x0200,
            bDeviceClass=0,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=64,
            idVendor=EVOLIS_VENDOR_ID,
            idProduct=self.product_id,
            bcdDevice=0x0100,
            iManufacturer=0,
            iProduct=0,
            iSerialNumber=0,
            bNumConfigurations=1,
            address=4 + dev[1],
            bus=1,
            port_number=2,
            port_numbers=(2,),
            speed=3,
        )

    def get_configuration_descriptor(self, dev: Any, config: int) -> Any:
        if config != 0:
            raise IndexError(config)
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=2,
            wTotalLength=32,
            bNumInterfaces=1,
            bConfigurationValue=1,
            iConfiguration=0,
            bmAttributes=0xC0,
            bMaxPower=1,
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev: Any, intf: int, alt: int, config: int) -> Any:
        if intf != 0 or alt != 0:
            raise IndexError(intf)
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=4,
            bInterfaceNumber=0,
            bAlternateSetting=0,
            bNumEndpoints=2,
            bInterfaceClass=USB_PRINTER_CLASS,
            bInterfaceSubClass=1,
            bInterfaceProtocol=2,
            iInterface=0,
            extra_descriptors=[],
        )

    def get_endpoint_descriptor(self, dev: Any, ep: int, intf: int, alt: int, config: int) -> Any:
        return SimpleNamespace(
            bLength=7,
            bDescriptorType=5,
            bEndpointAddress=(EP_OUT, EP_IN)[ep],
            bmAttributes=BULK,
            wMaxPacketSize=512,
            bInterval=0,
            bRefresh=0,
            bSynchAddress=0,
            extra_descriptors=[],
        )

    # -- handles and transfers -------------------------------------------------------

    def open_device(self, dev: Any) -> _Handle:
        handle = _Handle(dev[1])
        self._alive(handle)
        return handle

    def close_device(self, dev_handle: _Handle) -> None:
        return None

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        self._alive(dev_handle)
        self.configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        self._alive(dev_handle)
        return self.configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, alt: int) -> None:
        self._alive(dev_handle)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        self._alive(dev_handle)
        if self.kernel_driver_active:
            raise usb.core.USBError("Resource busy", error_code=-6, errno=errno.EBUSY)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        self._alive(dev_handle)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        self._alive(dev_handle)
        return self.kernel_driver_active

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        self._alive(dev_handle)
        self.kernel_driver_active = False
        self.detaches += 1

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        self._alive(dev_handle)
        self.kernel_driver_active = True

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: Any, timeout: int) -> int:
        self._alive(dev_handle)
        if ep != EP_OUT:
            raise usb.core.USBError("Pipe error", error_code=-9, errno=errno.EPIPE)
        replies = self.emulator.receive(bytes(data))
        if self.emulator.take_disconnect():
            self.unplug()
            self.plug()
            raise usb.core.USBError("No such device", error_code=-4, errno=errno.ENODEV)
        with self._lock:
            self._replies.extend(replies)
        return len(data)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        deadline = time.monotonic() + timeout / 1000
        while True:
            self._alive(dev_handle)
            with self._lock:
                if self._replies:
                    reply = self._replies.popleft()
                    buff[: len(reply)] = array.array("B", reply)
                    return len(reply)
            if time.monotonic() >= deadline:
                raise usb.core.USBTimeoutError(
                    "Operation timed out", error_code=-7, errno=errno.ETIMEDOUT
                )
            time.sleep(0.002)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._alive(dev_handle)


class EmulatorOnTcp(_Harness):
    """The emulator behind a loopback TCP port; ``.options`` for transport tcp."""

    def __init__(self, emulator: EvolisEmulator | None = None, **overrides: Any) -> None:
        super().__init__(emulator, **overrides)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.options = {
            "transport": "tcp",
            "host": "127.0.0.1",
            "tcp_port": self._server.getsockname()[1],
            **self._base_options(),
        }
        self._conn: socket.socket | None = None
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            watch = [self._server] if self._conn is None else [self._conn]
            ready, _, _ = select.select(watch, [], [], 0.02)
            if not ready:
                continue
            if self._conn is None:
                self._conn, _ = self._server.accept()
                continue
            try:
                data = self._conn.recv(1 << 16)
            except ConnectionError:
                data = b""
            replies = self.emulator.receive(data) if data else []
            for reply in replies:
                self._conn.sendall(reply)
            if not data or self.emulator.take_disconnect():
                self._conn.close()
                self._conn = None

    def stop(self) -> None:
        super().stop()
        if self._conn is not None:
            self._conn.close()
        self._server.close()
