"""Errors that the command-line entry points turn into one-line messages and exit status 2."""


class HouseMultitaskError(Exception):
    """Base class for failures caused by the user's input, files or parameters.

    The message is one line that names the file, column, row or parameter and gives the fix.
    """


class DataError(HouseMultitaskError):
    """Invalid or missing input data."""


class ParamsError(HouseMultitaskError):
    """Invalid parameter in params.yaml or on the command line."""


class ModelDirError(HouseMultitaskError):
    """Missing, corrupted or incompatible model directory."""
