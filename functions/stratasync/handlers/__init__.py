"""AWS Lambda entry points (thin: parse the event, call the core, shape the response)."""
