"""The reference queue server (the centre): servers, queue engines, seed, offline
batches and its CLI verbs."""
