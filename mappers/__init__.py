"""Protocol mappers (Modbus, OPC UA, Bluetooth LE, ZigBee): not built yet."""
