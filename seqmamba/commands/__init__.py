"""Thin command modules behind `seqmamba WORD`: each parses its arguments and calls the library."""
