"""Framework-free domain services: they take a Session and plain values, raise domain errors."""
