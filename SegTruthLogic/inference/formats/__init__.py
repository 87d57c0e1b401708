"""Model formats: each reads its files into a LoadedModel (card + network + ensemble members)."""
