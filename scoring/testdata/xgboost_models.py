#!/usr/bin/env python3
"""Trains small XGBoost models and writes xgboost_models.json: for each
objective, the booster's JSON dump (get_dump(dump_format="json")), its
base_score as save_config() reports it, test rows with missing values
(null), and XGBoost's own predictions and margins for them.

The Go test TestXGBoostPredictions checks that scoring.ParseTrees of the
dump gives XGBoost's outputs. Needs xgboost (Debian: python3-xgboost):

    /usr/bin/python3 xgboost_models.py
"""
import json
import math

import numpy as np
import xgboost as xgb

NAMES = ["temp", "humidity", "count"]


def rows(rng, n, missing):
    x = rng.normal(size=(n, 3)).astype(np.float32) * [10, 20, 3] + [20, 50, 2]
    x = x.astype(np.float32)
    x[rng.random((n, 3)) < missing] = np.nan
    return x


def main():
    rng = np.random.default_rng(1)
    x = rows(rng, 1500, 0.15)
    clean = np.nan_to_num(x, nan=0.0)
    binary = (((clean[:, 0] > 22) & (clean[:, 1] < 60)) | (clean[:, 2] > 4)).astype(int)
    reg = clean[:, 0] * 0.3 - clean[:, 1] * 0.1 + rng.normal(size=len(x))
    test = rows(rng, 60, 0.2)
    cases = [
        ("binary:logistic", binary, None),
        ("binary:logistic", binary, 0.2),
        ("reg:logistic", binary, 0.7),
        ("binary:logitraw", binary, 0.3),
        ("reg:squarederror", reg, None),
        ("reg:squarederror", reg, 3.0),
    ]
    out = []
    for objective, label, base in cases:
        params = {"objective": objective, "max_depth": 3, "eta": 0.3, "seed": 1}
        if base is not None:
            params["base_score"] = base
        booster = xgb.train(params, xgb.DMatrix(x, label=label, feature_names=NAMES), num_boost_round=6)
        config = json.loads(booster.save_config())
        dtest = xgb.DMatrix(test, feature_names=NAMES)
        out.append({
            "objective": objective,
            "base_score": float(config["learner"]["learner_model_param"]["base_score"]),
            "dump": booster.get_dump(dump_format="json"),
            "inputs": [[None if math.isnan(v) else float(v) for v in r] for r in test],
            "predictions": [float(p) for p in booster.predict(dtest)],
            "margins": [float(m) for m in booster.predict(dtest, output_margin=True)],
        })
    with open("xgboost_models.json", "w") as f:
        json.dump({"xgboost": xgb.__version__, "features": NAMES, "models": out}, f, indent=1)
        f.write("\n")


main()
