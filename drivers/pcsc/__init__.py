"""The chip encoder over PC/SC (pyscard): the channel and its deadline-bound sessions."""
