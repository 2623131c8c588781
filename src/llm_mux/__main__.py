"""Allow ``python -m llm_mux``."""

from llm_mux.cli.main import entry

if __name__ == "__main__":
    entry()
