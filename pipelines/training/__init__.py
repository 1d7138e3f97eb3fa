"""SageMaker training job: ``train.py`` is the scikit-learn script-mode entry point."""
