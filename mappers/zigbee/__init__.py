"""ZigBee mapper: zigpy over a configured radio (XBee, EZSP, ZNP, deCONZ, ZiGate)."""
