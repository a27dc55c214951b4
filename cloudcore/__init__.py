"""Cloud process (CloudHub, embedded API server): not built yet."""
