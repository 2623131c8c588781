"""Backends: CLI commands, HTTP APIs, mock scripts and local models behind one protocol."""
