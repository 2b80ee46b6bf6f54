"""Delivering events to people: a persisted outbox, webhooks and MQTT."""
