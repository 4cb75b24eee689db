"""The A4 papers an office prints, signs and files (fpdf2): berita acara and reports."""
