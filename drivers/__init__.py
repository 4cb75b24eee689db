"""Device drivers: the printer and chip-encoder contracts and their errors, the pure
protocol modules (iso7816, script, ktpel_layout) and one package per backend."""
