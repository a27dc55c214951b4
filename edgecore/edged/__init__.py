"""Edged: runs the pods bound to this node as supervised processes (the process runtime)."""
