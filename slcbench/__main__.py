"""Allow ``python -m slcbench`` (the GPU machine runs the project this way)."""

from slcbench.cli import main

if __name__ == "__main__":
    main()
