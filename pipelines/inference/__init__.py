"""SageMaker inference handler: ``inference.py`` ships in the model archive as ``code/inference.py``."""
