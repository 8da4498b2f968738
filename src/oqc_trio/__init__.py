"""oqc-trio: run quantum programs on OQC QCaaS at volume, natively under trio."""
