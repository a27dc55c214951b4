"""Modbus mapper: pymodbus driver and the pure register codec."""
