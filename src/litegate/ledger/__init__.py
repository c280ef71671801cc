"""The ledger: one row per call (``calls``), the accounting observer that writes it, prices
(``pricing``), Prometheus metrics (``metrics``) and the serial background writer."""
