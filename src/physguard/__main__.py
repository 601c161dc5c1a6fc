"""``python -m physguard ...`` (and ``torchrun ... -m physguard run ...``): the CLI."""

from .cli import main

if __name__ == "__main__":
    main()
