"""Access to the quad store (embedded pyoxigraph on disk)."""
