"""Argument types every verb shares, so each checks its own input before anything else.

argparse calls these while parsing: a bad value stops the verb with exit 2 and
a message naming the flag, the value and what would be valid, before it
reads AWS credentials, needs the Pulumi CLI or touches a file.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence

from infra import config, naming

# Published Lambda versions are positive integers; `$LATEST` is never served by the alias.
_LAMBDA_VERSION_RE = re.compile(r"[1-9][0-9]{0,9}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's real default, and none for flags whose default is None or off."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "%(default)" in text:
            return text
        return super()._get_help_string(action) or text


def parser(module: str, description: str | None, **kwargs: object) -> argparse.ArgumentParser:
    """A parser whose usage line is a command that works: `python -m scripts.<module> ...`."""
    return argparse.ArgumentParser(
        prog=f"python -m scripts.{module}",
        description=description,
        formatter_class=HelpFormatter,
        **kwargs,  # type: ignore[arg-type]
    )


def branch_arg(text: str) -> str:
    """A git branch name, as git's ref rules allow it (`refs/heads/` optional)."""
    try:
        naming.slugify(text)
    except naming.NamingError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def region_arg(text: str) -> str:
    try:
        return config.parse_setting("region", text)
    except config.ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def api_version_arg(text: str) -> str:
    try:
        naming.check_api_version(text)
    except naming.NamingError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def lambda_version_arg(text: str) -> str:
    if not _LAMBDA_VERSION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"Lambda version {text!r} must be a published version number such as 3"
        )
    return text


def config_arg(text: str) -> tuple[str, str]:
    """KEY=VALUE of a setting (`apiVersions`, `PROJECT:apiVersions` or `aws:region`)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    project, _ = config.read_project()
    key = key.removeprefix(f"{project}:")
    if key not in config.config_keys().values():
        raise argparse.ArgumentTypeError(
            f"{key!r} is not a setting of {project}; {config.closest_key(key)}"
        )
    return key, value


def parsed(
    parse: Callable[[Sequence[str]], argparse.Namespace], argv: Sequence[str]
) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code argparse chose (2 for bad input, 0 for --help).

    Verbs return exit codes from `main(argv)` rather than leaving the process, so a
    refused flag reaches a caller (or a test) as 2, the same as from the shell.
    """
    try:
        return parse(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
