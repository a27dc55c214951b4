"""Cloud-side controllers (DeviceController, EdgeController): not built yet."""
