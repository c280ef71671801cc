"""HTML pages served by the app, no build step: the dashboard, a learning model's page, pipelines."""
