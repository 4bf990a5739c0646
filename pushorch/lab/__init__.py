"""The lab: a real multi-host cluster on one machine (containers with sshd and their own dockerd)."""
