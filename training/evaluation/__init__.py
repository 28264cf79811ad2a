"""Evaluation with the paper's protocol (``liverclick evaluate`` and ``liverclick compare``), one job a module.

- :mod:`.protocol`: the simulated inputs per image and :func:`.protocol.evaluate`, the report;
- :mod:`.baselines`: no-learning baselines on the same inputs;
- :mod:`.noc`: the number of clicks to a Jaccard threshold (RITM protocol);
- :mod:`.summary`: per-image records -> figures with bootstrap CIs;
- :mod:`.stats`: ROC analysis, bootstrap, paired tests (numpy/scipy);
- :mod:`.markdown`, :mod:`.plots`: the report as tables and figures; :mod:`.paper`: the paper's own figures;
- :mod:`.compare`: paired tests between two reports; :mod:`.cli`: the two commands.
"""
