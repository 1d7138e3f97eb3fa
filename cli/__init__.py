"""User-facing commands that need no cloud (``mlops dataset ...``); ``localcloud.cli`` hooks them into ``mlops``."""
