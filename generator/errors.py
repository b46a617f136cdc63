"""User-facing errors. The CLI turns each into one line `Error: ...` and an exit code."""


class GeneratorError(Exception):
    """A failure the user can fix; the message names the file, key, value and the fix."""

    exit_code = 1


class InputError(GeneratorError):
    """Bad input file (MIDI, recipe, checkpoint, SoundFont)."""

    exit_code = 2


class RecipeError(InputError):
    """A recipe that does not validate."""


class CheckpointError(InputError):
    """A checkpoint that is missing, corrupt or of an unknown format."""


class SoundFontError(InputError):
    """A SoundFont that is missing or unreadable."""


class LockedError(GeneratorError):
    """Another run holds the output folder."""

    exit_code = 3


class TracksGivenUpError(GeneratorError):
    """Some tracks could not be produced within the rejection limit."""

    exit_code = 4
