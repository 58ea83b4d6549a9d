"""Historical and live pipelines."""
