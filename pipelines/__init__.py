"""Job code for the managed services (Glue ETL, SageMaker training, evaluation and inference).

Plain Python: every entry point is a thin wrapper over pure functions that tests call directly.
"""
