"""The card face: the template, its rendering, and the helper process that prepares faces ahead."""
