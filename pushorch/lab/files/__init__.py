"""Files baked into the lab host image: entry point, Consul stand-in and its CLI shim."""
