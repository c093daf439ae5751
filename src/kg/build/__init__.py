"""The build pipeline: source documents and curated extraction to a validated, swapped-in store."""

from kg.build.pipeline import BuildReport, Layout, build, check

__all__ = ["BuildReport", "Layout", "build", "check"]
