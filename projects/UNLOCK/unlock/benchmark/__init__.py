"""The end-to-end synthetic SFOASS benchmark (the README's first command)."""
