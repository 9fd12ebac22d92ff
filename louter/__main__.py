"""`python -m louter`: the same as the `louter` command."""

from louter.cli.louter import main

if __name__ == "__main__":
    main()
