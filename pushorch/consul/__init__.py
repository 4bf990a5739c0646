"""The hosts' Consul agents: where they are (settings), the one client, the lock backend, definition builders."""
