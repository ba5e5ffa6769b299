"""Scoring: saved == in memory, exact reasons, leak-free, nobody lost, schema guard, CLI."""

from __future__ import annotations

import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from pqlml.cli import main
from pqlml.errors import PqlmlError
from pqlml.explain import contributions, explain, reasons, signal_contributions
from pqlml.model import train
from pqlml.project import build_features, open_project
from pqlml.buyers import CONTACT_COLUMNS
from pqlml.score import SCORE_COLUMNS, Scorer
from pqlml.simulate import simulate

AS_OF = "2024-11-01"


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    sim = simulate(n_accounts=1_200, seed=8, out=root / "sim", months=12)
    models = {}
    for kind in ("logistic", "gradient_boosting"):
        project = open_project(sim.config)
        model = train(project.snapshots(), settings=project.config, kind=kind)
        models[kind] = model
        model.save(root / f"{kind}.skops")
    return sim.config, models, root


def _score(scorer, config, as_of=AS_OF):
    """(scores, not scored) of ``scorer`` at ``as_of`` on the project of ``config``."""
    project = open_project(config)
    found = scorer.score(project.features([as_of]), project=project)
    return found.scores, found.not_scored


def logit(p):
    return np.log(p / (1 - p))


def test_scores_from_a_saved_model_equal_the_in_memory_model(company):
    config, models, root = company
    for kind, model in models.items():
        saved, _ = _score(Scorer.load(root / f"{kind}.skops"), config)
        memory, _ = _score(Scorer(model, "in-memory"), config)
        assert list(saved.columns) == ["account_id", "domain", *SCORE_COLUMNS]
        pd.testing.assert_frame_equal(saved.drop(columns="model_version"),
                                      memory.drop(columns="model_version"))
        assert saved.model_version.iloc[0].startswith(f"{kind}.skops@")
        X = build_features(config, as_of=AS_OF).set_index("account_id").loc[saved.account_id]
        assert saved.probability.to_numpy() == pytest.approx(model.predict(X), rel=1e-12)


def test_logistic_reasons_sum_with_the_intercept_to_the_log_odds(company):
    config, models, _ = company
    model = models["logistic"]
    X = build_features(config, as_of=AS_OF)
    C, base, exact = contributions(model, X)
    assert exact and list(C.columns) == model.features
    p = model.predict(X)
    assert base + C.sum(axis=1).to_numpy() == pytest.approx(logit(p), abs=1e-9)
    # independently: the pipeline's own decision function, through the Platt curve
    pipe, curve = model.estimator.base_estimator_, model.estimator.calibrator_
    raw = pipe.decision_function(X[model.features].to_numpy(float))
    assert base + C.sum(axis=1).to_numpy() == pytest.approx(
        curve.coef_[0, 0] * raw + curve.intercept_[0], abs=1e-9)
    G = signal_contributions(model, X, C)
    assert G.sum(axis=1).to_numpy() == pytest.approx(C.sum(axis=1).to_numpy(), abs=1e-9)
    assert G.shape[1] < len(model.features) / 2                # windows summed to signals
    assert {"active_users", "activity", "industry", "segment", "task_created"} <= set(G.columns)


def test_boosting_reasons_are_shap_values_that_add_up(company):
    config, models, _ = company
    model = models["gradient_boosting"]
    X = build_features(config, as_of=AS_OF).head(300)
    C, base, exact = contributions(model, X)
    assert exact
    assert base + C.sum(axis=1).to_numpy() == pytest.approx(logit(model.predict(X)), abs=1e-6)


def test_reasons_are_sentences_with_direction_and_value(company):
    config, models, _ = company
    model = models["logistic"]
    X = build_features(config, as_of=AS_OF)
    R = reasons(model, X)
    G = explain(model, X).contributions          # reason groups, against the reference
    top = G.abs().idxmax(axis=1)
    assert (R.reason_1.str[:4].isin(["(+) ", "(-) "])).all()
    # the strongest group's sentence, and its sign, for an account led by its team's usage
    led = []
    for signal in ("active_users", "activity"):
        group = next((g for g in G.columns if signal in g.split(" or ")), None)
        led = [] if group is None else np.flatnonzero((top == group).to_numpy())
        if len(led):
            break
    assert len(led), "no account is led by its active users or its activity"
    i = int(led[0])
    sign = "(+)" if G[group].iloc[i] >= 0 else "(-)"
    assert R.reason_1.iloc[i].startswith(sign)
    assert any(words in R.reason_1.iloc[i] for words in (
        "active users in the last 30 days", "product events in the last 30 days",
        "different features", "users in total"))
    # reason_1 is never weaker than reason_2
    strength = np.sort(G.abs().to_numpy(), axis=1)
    assert (strength[:, -1] >= strength[:, -2]).all()


def test_events_after_as_of_change_no_score(company, tmp_path):
    config, models, _ = company
    later = tmp_path / "later"
    shutil.copytree(config.parent, later)
    events = pd.read_parquet(later / "events.parquet")
    cut = pd.Timestamp(AS_OF, tz="UTC")
    after = events[events.ts >= cut - pd.Timedelta(days=40)].copy()
    after["ts"] = cut + pd.Timedelta(hours=1) + (after.ts - after.ts.min())     # all after as_of
    after["event_id"] = after.event_id + 10**9
    pd.concat([events, after]).to_parquet(later / "events.parquet")
    scorer = Scorer(models["logistic"], "m")
    a, gone_a = _score(scorer, config)
    b, gone_b = _score(scorer, later / config.name)
    assert len(after) > 1_000
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(gone_a, gone_b)


def test_every_account_and_orphan_user_is_scored_or_listed(company, tmp_path):
    config, models, _ = company
    data = tmp_path / "data"
    shutil.copytree(config.parent, data)
    accounts = pd.read_parquet(data / "accounts.parquet")
    quiet = accounts.iloc[[0]].assign(account_id="a_quiet", domain="quiet-example.io",
                                      created_at=pd.Timestamp("2024-01-05", tz="UTC"))
    pd.concat([accounts, quiet]).to_parquet(data / "accounts.parquet")   # no events, ever
    as_of = "2024-06-01"
    scores, gone = _score(Scorer(models["logistic"], "m"), data / config.name, as_of)
    accounts = set(pd.read_parquet(data / "accounts.parquet").account_id)
    listed = set(gone.account_id.dropna())
    assert set(scores.account_id) | listed == accounts and not set(scores.account_id) & listed
    assert len(gone.account_id.dropna()) == len(listed)                 # each listed once
    codes = gone.set_index("account_id").code
    assert codes["a_quiet"] == "no_events"
    created = pd.read_parquet(data / "accounts.parquet").set_index("account_id").created_at
    assert set(codes[codes == "created_after_as_of"].index) == set(
        created[created >= pd.Timestamp(as_of, tz="UTC")].index) - {"a_quiet"}
    outcomes = pd.read_parquet(data / "outcomes.parquet")
    conv = outcomes[(outcomes.outcome == "conversion") & (outcomes.ts <= pd.Timestamp(as_of, tz="UTC"))]
    assert set(codes[codes == "customer"].index) == set(conv.account_id)
    users = open_project(data / config.name).users.execute()
    orphans = users[users.account_id.isnull()]
    assert set(gone.user_id.dropna()) == set(orphans.user_id) and len(orphans) > 0
    assert gone.loc[gone.user_id.notnull(), "code"].isin(["free_mail", "no_domain",
                                                          "unmatched_domain"]).all()


def test_accounts_without_an_enrichment_row_are_scored_as_unknown(company, tmp_path):
    config, models, _ = company
    data = tmp_path / "data"
    shutil.copytree(config.parent, data)
    enrichment = pd.read_csv(data / "enrichment.csv")
    accounts = pd.read_parquet(data / "accounts.parquet")
    covered = set(enrichment.domain.str.lower().str.removeprefix("www."))
    first = accounts.domain.iloc[0]
    pd.concat([enrichment[~enrichment.domain.str.lower().str.endswith(first)],
               enrichment.head(0)]).to_csv(data / "enrichment.csv", index=False)   # one more gap
    model = models["gradient_boosting"]
    assert "enriched" in model.features and "enriched_industry_unknown" in model.features
    scores, gone = _score(Scorer(model, "m"), data / config.name)
    X = build_features(data / config.name, as_of=AS_OF).set_index("account_id")
    missing = accounts[~accounts.domain.isin(covered) | (accounts.domain == first)].account_id
    eligible = missing[missing.isin(X.index)]
    assert len(eligible) > 50
    assert set(eligible) <= set(scores.account_id) | set(gone.account_id.dropna())
    assert set(eligible) & set(scores.account_id)                 # scored, not dropped
    assert (X.loc[eligible, "enriched"] == 0).all()
    assert (X.loc[eligible, "enriched_industry_unknown"] == 1).all()
    assert scores.set_index("account_id").loc[list(set(eligible) & set(scores.account_id)),
                                              "probability"].between(0, 1).all()


def test_schema_guard_lists_missing_and_extra_columns(company, tmp_path):
    config, models, root = company
    scorer = Scorer.load(root / "logistic.skops")
    X = build_features(config, as_of=AS_OF)
    bad = X.drop(columns=["events_30d", "active_users_30d"]).assign(new_signal_30d=1)
    with pytest.raises(PqlmlError, match=r"missing events_30d, active_users_30d; extra "
                                         r"new_signal_30d\. Fix: build features with the training"):
        scorer.score(bad, project=open_project(config))
    (tmp_path / "x.skops").write_bytes(b"not a model")
    with pytest.raises(PqlmlError, match=r"x\.skops is not a pqlml model"):
        Scorer.load(tmp_path / "x.skops")
    with pytest.raises(PqlmlError, match=r"No model at .*nowhere\.skops"):
        Scorer.load(tmp_path / "nowhere.skops")


def test_scoring_takes_the_features_of_one_as_of_keyed_by_the_models_entity(company):
    config, models, _ = company
    project = open_project(config)
    scorer = Scorer(models["logistic"], "m")
    with pytest.raises(PqlmlError, match=r"holds as_of 2024-10-01, 2024-11-01; scoring needs "
                                         r"exactly one\. Fix: pass project\.features\(\[DATE\]\)"):
        scorer.score(project.features(["2024-10-01", AS_OF]), project=project)
    with pytest.raises(PqlmlError, match=r"needs exactly one \(2024-10-01\)"):
        scorer.score(project.features([AS_OF]), project=project, as_of="2024-10-01")
    users = project.features([AS_OF]).rename(columns={"account_id": "user_id"})
    with pytest.raises(PqlmlError, match=r"no account_id column: this model scores accounts\. "
                                         r"Fix: pass project\.features\(\[DATE\], "
                                         r'entity="account"\)'):
        scorer.score(users, project=project)


def test_cli_score_writes_scores_not_scored_and_a_database_table(company, tmp_path, capsys):
    config, _, root = company
    assert main(["score", "--config", str(config), "--model", str(root / "logistic.skops"),
                 "--out", str(tmp_path)]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    gone = pd.read_csv(tmp_path / "not_scored.csv")
    # the command adds whom to call in the worked tiers (issue 26) before model_version
    assert list(scores.columns) == ["account_id", "domain", *SCORE_COLUMNS[:-1],
                                    *CONTACT_COLUMNS, SCORE_COLUMNS[-1]]
    assert scores.as_of.nunique() == 1 and scores.as_of.iloc[0].startswith("2024-12-30")
    assert len(scores) + gone.account_id.notna().sum() == 1_200
    printed = capsys.readouterr().out
    assert f"scored {len(scores):,} accounts" in printed and "Tier 1 at 2024-12-30" in printed

    # a warehouse config: the same tables in a DuckDB file, scores written back as a table
    wh = tmp_path / "wh.duckdb"
    tables = re.findall(r'source = "(\w+)\.parquet"', config.read_text())   # every one read
    assert {"events", "users", "outcomes", "leads"} <= set(tables)
    with duckdb.connect(str(wh)) as db:
        for t in tables:
            db.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{config.parent / t}.parquet')")
        db.execute(f"CREATE TABLE enrichment AS SELECT * FROM read_csv('{config.parent}/enrichment.csv')")
    text = config.read_text().replace('root = "."', f'root = "."\nconnection = "duckdb:///{wh}"')
    for t in tables:
        text = text.replace(f'source = "{t}.parquet"', f'source = "{t}"')
    text = text.replace('source = "enrichment.csv"', 'source = "enrichment"')
    (tmp_path / "wh.toml").write_text(text.replace('root = "."', f'root = "{config.parent}"'))
    assert main(["score", "--config", str(tmp_path / "wh.toml"), "--model",
                 str(root / "logistic.skops"), "--to-table", "pqa_scores"]) == 0
    with duckdb.connect(str(wh), read_only=True) as db:
        back = db.sql("SELECT * FROM pqa_scores ORDER BY probability DESC").to_arrow_table().to_pandas()
        n_gone = db.execute("SELECT count(*) FROM pqa_scores_not_scored").fetchone()[0]
    assert back.probability.to_numpy() == pytest.approx(scores.probability.to_numpy())
    assert n_gone == len(gone)
    assert main(["score", "--config", str(config), "--model", str(root / "logistic.skops"),
                 "--to-table", "t"]) == 2
    assert "--to-table writes into the configured database" in capsys.readouterr().err


def test_scorer_loads_the_registered_champion(company, tmp_path, monkeypatch):
    import mlflow

    config, _, root = company
    # this test's own store (the shared config's default store is beside it)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "m.skops")]) == 0
    from_registry = Scorer.load("models:/pqlml@champion")
    assert from_registry.version == "pqlml/1"
    a, _ = _score(from_registry, config)
    b, _ = _score(Scorer.load(tmp_path / "m.skops"), config)
    pd.testing.assert_frame_equal(a.drop(columns="model_version"), b.drop(columns="model_version"))
    with pytest.raises(PqlmlError, match=r"MLflow has no model at models:/pqlml@nope"):
        Scorer.load("models:/pqlml@nope")

    class Other(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: pd.DataFrame) -> pd.DataFrame:
            return model_input

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="other", python_model=Other(), pip_requirements=[])
    with pytest.raises(PqlmlError, match=r"is not a pqlml model \(its MLmodel has no 'pqlml_format"):
        Scorer.load(info.model_uri)


def test_a_user_level_model_scores_users(company, tmp_path):
    config, _, _ = company
    user_cfg = tmp_path / "users.toml"
    user_cfg.write_text(config.read_text().replace('entity = "account"', 'entity = "user"')
                        .replace('root = "."', f'root = "{config.parent}"'))
    user_project = open_project(user_cfg)
    model = train(user_project.snapshots(), settings=user_project.config, kind="logistic")
    scores, gone = _score(Scorer(model, "m"), user_cfg)
    assert scores.columns[0] == "user_id" and scores.user_id.is_unique
    users = pd.read_parquet(config.parent / "users.parquet")
    assert set(scores.user_id) | set(gone.user_id) == set(users.user_id)
    assert not set(scores.user_id) & set(gone.user_id)
    assert scores.tier.isin(["tier_1", "tier_2", "tier_3", "self_serve"]).all()
    assert (scores.reason_1.str[:4].isin(["(+) ", "(-) "])).all()


def test_an_events_growth_and_active_users_read_as_words():
    from pqlml.explain import render, signal_of

    cols = ["events_invite_sent_30d", "events_invite_sent_prev_30d",
            "events_invite_sent_velocity_30d", "active_users_invite_sent_30d"]
    assert {signal_of(c) for c in cols} == {"invite_sent"}
    assert (signal_of("events_60d"), signal_of("active_users_60d")) == ("activity", "active_users")
    X = pd.DataFrame([[12, 3, np.log(13 / 4), 4]] * 3, columns=cols)
    C = pd.DataFrame([[0.1, 0.0, 0.9, 0.0], [0.1, 0.0, 0.0, -0.8], [0.5, 0.1, 0.1, 0.0]],
                     columns=cols)
    assert render("invite_sent", X, C) == [
        "(+) invite sent: 12 in the last 30 days vs 3 the 30 before",
        "(-) invite sent: 4 users in the last 30 days",
        "(+) invited teammates 12 times in the last 30 days"]
