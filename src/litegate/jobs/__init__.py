"""Durable work: stored files (OpenAI and Gemini Files APIs) and batch jobs (their store, process
leases, the two APIs' line shapes, and the runner that answers lines through the app)."""
