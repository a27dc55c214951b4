"""Bluetooth LE mapper: the pure GATT value codec (the bleak driver is not built yet)."""
