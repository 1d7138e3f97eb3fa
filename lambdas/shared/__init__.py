"""Cross-cutting pieces every function shares."""
