"""Online experiments (A/B tests): the per-observation outcomes and the always-valid sequential test that decides
them. Standard library only: the evaluator Lambda and the synth's declaration check import it."""
