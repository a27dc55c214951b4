"""OPC UA mapper: asyncua driver."""
