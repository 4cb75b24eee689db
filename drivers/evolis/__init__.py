"""The Evolis card printer: the driver, its pure command protocol, its transports."""
