"""The station's database: the owner thread, the schema and its migrations, and one module
per table group."""
