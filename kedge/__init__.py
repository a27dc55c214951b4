"""Command line and the pieces both sides share (logging, config)."""
