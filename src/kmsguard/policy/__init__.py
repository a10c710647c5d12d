"""The KMS policy engine: the only place in kmsguard where policy logic lives.

parse (JSON -> raw document, with line/column errors) -> normalise (-> model.Policy) -> evaluate one
Request (evaluate.py, the direct evaluator) or answer whole questions (analyze.py, with z3 proofs in
solver.py), diff two policies (diff.py), generate least-privilege policies (generate.py).
"""
