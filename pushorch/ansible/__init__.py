"""Ansible's formats: inventories (model, loaders, export, scripts), patterns, tags, vault, ansible.cfg."""
