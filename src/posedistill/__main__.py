"""``python -m posedistill`` (also what ``torchrun -m posedistill`` runs)."""

from .cli import main

if __name__ == "__main__":
    main()
