"""gentrain trainer: generative models that train, checkpoint and report their health."""
