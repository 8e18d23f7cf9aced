"""Incidents: intake, routing, workflow, deadlines, statistics, photos, Open311."""
