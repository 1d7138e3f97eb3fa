"""Lambda functions: thin Powertools handlers (``handler.py``) over plain logic (``logic.py``)."""
