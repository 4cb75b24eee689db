"""The reference queue server (the centre): servers, queue engines, seed, offline batches, its CLI.

It may import :mod:`station.link` and :mod:`station.records`; the station never imports it
(the CLI's ``station central …`` verbs and the demo excepted, see docs/architecture.md)."""
