"""`ganvae compare` (train and score many models under one budget) and its HTML report."""
