"""Real test infrastructure: a loopback OpenSSH sshd of the tests' own (and, later, the lab)."""
