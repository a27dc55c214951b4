"""Cloud-side controllers over the official Kubernetes client: the DeviceController (devices to
their nodes, status, conditions, the conflict rule), node lifecycle, pod delivery, and the
scheduler and workload controllers of the standalone mode."""
