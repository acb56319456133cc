"""The entry point (`ascend-build`, `python -m ascend_build`): a no-change rebuild is answered
before the command line's libraries are imported (fastpath.py); everything else goes to the CLI."""
import sys


def main() -> None:
    from .errors import AscendBuildError
    from .fastpath import answer

    try:
        if answer(sys.argv[1:]):
            return
    except KeyboardInterrupt:
        sys.exit(130)
    except AscendBuildError as err:           # its --json could not be written
        sys.stderr.write(f"error: {err.message}\nfix: {err.fix}\n")
        sys.exit(err.exit_code)
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
