"""Cloud process: the embedded API server for standalone mode (CloudHub comes with issue 6)."""
