"""Embedded Kubernetes-compatible API server for standalone mode (kubectl and client-go alike)."""
