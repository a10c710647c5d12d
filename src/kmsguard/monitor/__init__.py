"""The monitor: scheduled and event-driven scans, drift, alerts (outbox), the Lambda entry point."""
