"""Facts about where sandboxes run: this host, and a node read over SSH (host key verified).
They go into run.json so that comparisons can tell a changed environment from a change."""
