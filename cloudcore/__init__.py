"""Cloud process: CloudHub (the edge channel), the join service, reliable delivery to nodes,
CloudStream, and the embedded Kubernetes API server (`apiserver`) of the standalone mode."""
