"""Import of client bases from spreadsheet exports (Excel, 1C, other CRMs).

read (hostile-file checks) → guess/apply a column mapping → normalise rows → plan (pure) →
apply in chunks (recorded, so the whole batch can be undone).
"""
