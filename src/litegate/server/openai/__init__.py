"""OpenAI-compatible routes: chat and text completions, the model list, Files and Batch APIs."""
