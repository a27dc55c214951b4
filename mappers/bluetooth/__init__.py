"""Bluetooth LE mapper: bleak driver, bumble backend for virtual controllers, GATT codec."""
