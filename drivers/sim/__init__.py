"""The simulated printer and chip encoder: a device model with timing, faults and memory."""
