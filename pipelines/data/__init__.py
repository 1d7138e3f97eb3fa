"""Synthetic datasets: a seeded telecom-churn generator and a defect injector (``pipelines.data.generator``)."""
