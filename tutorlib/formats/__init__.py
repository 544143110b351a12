"""The seed datasets' on-disk formats: writers for the shapes world's views and readers for real files.

Keep this file a plain list of imports, one line per format module.
"""
# ruff: noqa: F401  (re-exports)
from .common import FormatError, atomic_dir, atomic_file, read_image, read_json, write_image, write_json

from .iclevr import ICLEVRFile, read_iclevr, write_iclevr  # 01 SSCR: GeNeVA i-CLEVR HDF5
from .simat import read_simat, write_simat  # 02 SIMAT: triplets.csv, captions.txt, transfos.csv, images/
from .drawing import DrawingFolder, read_drawing, write_drawing  # 03 drawing: name lists, text/, audio/, images/

from .vismin import ImageRecords, read_vismin, write_vismin  # 04 VisMin: annotations.json + images/
from .clevr_change import ClevrChangeFiles, read_clevr_change, write_clevr_change  # 05 IDC: CLEVR-Change folder
