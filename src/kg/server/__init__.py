"""The HTTP service: SPARQL protocols, Graph Store protocol, linked data, workbench."""
