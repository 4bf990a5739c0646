"""Loaders: files on disk -> validated, located data. They read files and nothing else."""
