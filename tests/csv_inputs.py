"""Small CSV inputs written by the label tests (reports, pathology) — one writer, shared."""

import csv


def write_csv(path, header, rows):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path
