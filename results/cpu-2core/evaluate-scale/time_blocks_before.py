"""Per-block wall time of slcbench evaluate's library at the base commit, one process, on a mapped input."""
import sys, time
import numpy as np
t0 = time.perf_counter()
from slcbench.evaluate.logits import load_logits, check_logits_and_labels
from slcbench.evaluate.metrics import Ranking, class_metrics, pols_metrics
from slcbench.evaluate.evaluation import evaluation_warnings
path = sys.argv[1]
marks = {}
t = time.perf_counter(); logits, labels = load_logits(path); marks["load"] = time.perf_counter() - t
t = time.perf_counter(); logits, labels = check_logits_and_labels(logits, labels); marks["check"] = time.perf_counter() - t
t = time.perf_counter(); slc = class_metrics(logits, labels, ranking=Ranking.slc); marks["slc"] = time.perf_counter() - t
t = time.perf_counter(); al = class_metrics(logits, labels, ranking=Ranking.all_logits); marks["all_logits"] = time.perf_counter() - t
t = time.perf_counter(); po = pols_metrics(logits, labels); marks["pols"] = time.perf_counter() - t
t = time.perf_counter(); evaluation_warnings(logits, 0); marks["warnings"] = time.perf_counter() - t
print({k: round(v, 2) for k, v in marks.items()}, "total", round(time.perf_counter() - t0, 2))
print("slc", slc.summary(), "all", al.summary(), "pols", po.values)
