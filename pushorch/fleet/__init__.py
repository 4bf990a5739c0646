"""What controllers share: the fleet lock, the fleet record (failover's memory), the deploy history."""
