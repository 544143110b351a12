"""tutorlib: the library behind the vision-language tutorial notebooks.

`tutorlib.world` generates the shapes world and its task views, `tutorlib.formats` reads and writes the
seed datasets' on-disk formats, and the small helper modules (device, seeding, profiles, training, cache,
plots, report, runner) are shared by every notebook.
"""
__version__ = "0.1.0"
