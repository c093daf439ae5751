"""SPARQL handling independent of HTTP: guard, media types, isolated execution."""
