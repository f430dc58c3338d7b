"""Files: artifacts (HDF5, provenance, fingerprints), datasets, model groups, vector formats, atomic writes."""
