"""Fitted preprocessing: statistics from training rows only, unseen values, JSON state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from house_multitask.config import CleanParams, SplitParams
from house_multitask.data.category import derive_house_category
from house_multitask.data.clean import clean_frame
from house_multitask.data.io import read_json, write_json, write_parquet
from house_multitask.data.split import split_frame
from house_multitask.errors import DataError, ModelDirError
from house_multitask.features.preprocess import (
    STATE_FORMAT_VERSION,
    STOREYS,
    Preprocessor,
    price_to_target,
    target_to_price,
)
from house_multitask.schema import (
    CATEGORY_COLUMN,
    CATEGORY_RULE_COLUMNS,
    ID_COLUMN,
    NUMERIC_FEATURES,
    PRICE_COLUMN,
    QUALITY_SCALE,
)

REQUIRED = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)


@pytest.fixture(scope="module")
def cleaned(make_raw_frame) -> pd.DataFrame:
    """The synthetic table after clean and derive_category, 24 rows."""
    frame, _ = clean_frame(make_raw_frame(), CleanParams().max_missing_share, protected=REQUIRED)
    frame[CATEGORY_COLUMN] = derive_house_category(frame)
    return frame


@pytest.fixture(scope="module")
def train(cleaned: pd.DataFrame) -> pd.DataFrame:
    """Three rows of every four of `cleaned`: the synthetic training part, 18 rows."""
    return cleaned[cleaned.index % 4 != 3].copy()


@pytest.fixture(scope="module")
def holdout(cleaned: pd.DataFrame) -> pd.DataFrame:
    """Every fourth row of `cleaned`: the synthetic validation and test rows, 6 rows."""
    return cleaned[cleaned.index % 4 == 3].copy()


@pytest.fixture(scope="module")
def fitted(train: pd.DataFrame) -> Preprocessor:
    """The preprocessor fitted on `train`; tests must not modify it."""
    return Preprocessor.fit(train)


def extreme(frame: pd.DataFrame, fitted: Preprocessor) -> pd.DataFrame:
    """`frame` with huge numbers, unseen categories, missing cells and huge prices."""
    changed = frame.copy()
    for column in fitted.numeric_features:
        changed[column] = 1e9
    for column in fitted.categorical_features:
        changed[column] = "never-seen"
    changed.iloc[0, changed.columns.get_loc("LotArea")] = np.nan
    changed[PRICE_COLUMN] = 1e9
    return changed


def test_fit_on_train_ignores_val_and_test_changes(make_raw_frame) -> None:
    frame = make_raw_frame(rows_per_class=7)
    frame[CATEGORY_COLUMN] = derive_house_category(frame)
    parts = split_frame(frame, SplitParams(), CATEGORY_COLUMN)
    fitted = Preprocessor.fit(parts["train"])
    holdout = frame[ID_COLUMN].isin(pd.concat([parts["val"], parts["test"]])[ID_COLUMN])
    changed = frame.copy()
    changed.loc[holdout] = extreme(frame.loc[holdout], fitted)

    changed_parts = split_frame(changed, SplitParams(), CATEGORY_COLUMN)

    assert Preprocessor.fit(changed_parts["train"]).to_dict() == fitted.to_dict()


def test_fit_changes_when_training_rows_change(train: pd.DataFrame, fitted) -> None:
    # The counterpart of the test above: the fitted state does depend on the training rows.
    changed = train.copy()
    changed["LotArea"] = changed["LotArea"] * 2

    assert Preprocessor.fit(changed).ranges["LotArea"] != fitted.ranges["LotArea"]


def test_fit_ranges_come_from_train(train: pd.DataFrame, fitted: Preprocessor) -> None:
    assert fitted.ranges["LotArea"] == [train["LotArea"].min(), train["LotArea"].max()]


def test_transform_scales_train_to_unit_interval(
    train: pd.DataFrame, fitted: Preprocessor
) -> None:
    scaled, _ = fitted.transform(train)

    values = scaled[fitted.scaled_columns].to_numpy()
    assert values.min() == pytest.approx(0.0)
    assert values.max() == pytest.approx(1.0)


def test_transform_holdout_may_leave_unit_interval(holdout, fitted: Preprocessor) -> None:
    scaled, _ = fitted.transform(extreme(holdout, fitted))

    assert scaled["LotArea"].max() > 1.0


def test_transform_unseen_category_gets_reserved_code(holdout, fitted: Preprocessor) -> None:
    frame = holdout.copy()
    frame["Neighborhood"] = "Atlantis"

    scaled, _ = fitted.transform(frame)

    codes = fitted.category_codes(scaled)
    column = fitted.categorical_features.index("Neighborhood")
    assert set(codes[:, column]) == {len(fitted.categories["Neighborhood"])}


def test_transform_unseen_category_counted_in_report(holdout, fitted: Preprocessor) -> None:
    frame = holdout.copy()
    frame["Neighborhood"] = "Atlantis"

    _, report = fitted.transform(frame)

    assert report.unseen["Neighborhood"] == {"Atlantis": len(holdout)}


def test_transform_seen_categories_report_nothing_unseen(train, fitted: Preprocessor) -> None:
    _, report = fitted.transform(train)

    assert report.unseen == {}


def test_transform_reserved_code_distinct_after_scaling(holdout, fitted: Preprocessor) -> None:
    frame = holdout.copy()
    frame["Street"] = "Dirt"

    scaled, _ = fitted.transform(frame)

    known = np.arange(len(fitted.categories["Street"]))
    low, high = fitted.ranges["Street"]
    assert not np.isin(scaled["Street"].to_numpy(), (known - low) / (high - low)).any()


def test_transform_imputes_numeric_with_train_median(train, holdout, fitted: Preprocessor) -> None:
    frame = holdout.copy()
    frame["LotArea"] = np.nan
    median = train["LotArea"].median()
    low, high = fitted.ranges["LotArea"]

    scaled, _ = fitted.transform(frame)

    assert scaled["LotArea"].tolist() == pytest.approx([(median - low) / (high - low)] * 6)


def test_transform_imputes_category_with_train_mode(train, holdout, fitted: Preprocessor) -> None:
    frame = holdout.copy()
    frame["MSZoning"] = np.nan
    mode = train["MSZoning"].mode().iloc[0]

    scaled, _ = fitted.transform(frame)

    column = fitted.categorical_features.index("MSZoning")
    expected = fitted.categories["MSZoning"].index(mode)
    assert set(fitted.category_codes(scaled)[:, column]) == {expected}


def test_transform_counts_imputed_cells(holdout, fitted: Preprocessor) -> None:
    frame = holdout.copy()
    frame.loc[frame.index[:3], "GarageArea"] = np.nan

    _, report = fitted.transform(frame)

    assert report.imputed == {"GarageArea": 3}


def test_fit_median_ignores_missing(train: pd.DataFrame, fitted: Preprocessor) -> None:
    # Row 2 of the synthetic table has no MasVnrArea.
    assert fitted.medians["MasVnrArea"] == train["MasVnrArea"].dropna().median()


def test_fit_mode_of_masvnrtype_may_be_none_category(train: pd.DataFrame) -> None:
    frame = train.copy()
    frame["MasVnrType"] = ["None"] * 10 + ["Stone"] * 8

    assert Preprocessor.fit(frame).modes["MasVnrType"] == "None"


def test_transform_passes_id_and_targets(train: pd.DataFrame, fitted: Preprocessor) -> None:
    scaled, _ = fitted.transform(train)

    assert scaled[[ID_COLUMN, PRICE_COLUMN, CATEGORY_COLUMN]].equals(
        train[[ID_COLUMN, PRICE_COLUMN, CATEGORY_COLUMN]]
    )


def test_transform_missing_predictor_column(train: pd.DataFrame, fitted: Preprocessor) -> None:
    with pytest.raises(DataError, match="input lacks predictor column\\(s\\): LotArea, Street"):
        fitted.transform(train.drop(columns=["LotArea", "Street"]))


def test_transform_without_targets(train: pd.DataFrame, fitted: Preprocessor) -> None:
    scaled, _ = fitted.transform(train.drop(columns=[PRICE_COLUMN, CATEGORY_COLUMN]))

    assert PRICE_COLUMN not in scaled.columns


def test_fit_ordinal_quality_codes(train: pd.DataFrame) -> None:
    fitted = Preprocessor.fit(train, ordinal_quality=True)

    assert fitted.categories["ExterQual"] == list(QUALITY_SCALE)


def test_fit_alphabetical_codes_by_default(train: pd.DataFrame, fitted: Preprocessor) -> None:
    assert fitted.categories["ExterQual"] == sorted(train["ExterQual"].unique())


def test_cardinalities_include_reserved_code(fitted: Preprocessor) -> None:
    assert fitted.cardinalities()[0] == len(fitted.categories[fitted.categorical_features[0]]) + 1


def test_fit_uses_only_present_columns(fitted: Preprocessor) -> None:
    assert "LotFrontage" not in fitted.predictors


def test_fit_column_without_values(train: pd.DataFrame) -> None:
    frame = train.copy()
    frame["Alley"] = np.nan

    with pytest.raises(DataError, match="column Alley: no training value to impute with"):
        Preprocessor.fit(frame)


def test_state_round_trip(holdout: pd.DataFrame, fitted: Preprocessor) -> None:
    rebuilt = Preprocessor.from_dict(fitted.to_dict())

    pd.testing.assert_frame_equal(rebuilt.transform(holdout)[0], fitted.transform(holdout)[0])


def test_state_round_trip_through_json(tmp_path: Path, fitted: Preprocessor) -> None:
    path = tmp_path / "preprocessor.json"

    write_json(fitted.to_dict(), path)

    assert Preprocessor.from_dict(read_json(path)).to_dict() == fitted.to_dict()


def test_state_is_plain_json(fitted: Preprocessor) -> None:
    state = fitted.to_dict()

    assert json.loads(json.dumps(state, allow_nan=False)) == state


@pytest.mark.parametrize("version", [STATE_FORMAT_VERSION + 1, None, "1"])
def test_from_dict_wrong_format_version(fitted: Preprocessor, version: object) -> None:
    state = fitted.to_dict()
    state["format_version"] = version

    with pytest.raises(ModelDirError, match=f"format_version {version!r} is not supported"):
        Preprocessor.from_dict(state, "state.json")


def test_from_dict_missing_field(fitted: Preprocessor) -> None:
    state = fitted.to_dict()
    del state["medians"]

    with pytest.raises(ModelDirError, match="state.json: missing field\\(s\\) medians"):
        Preprocessor.from_dict(state, "state.json")


def test_from_dict_not_a_mapping() -> None:
    with pytest.raises(ModelDirError, match="format_version None is not supported"):
        Preprocessor.from_dict([], "state.json")


@pytest.mark.parametrize("kind", ["raw", "log_standardized"])
def test_price_target_round_trip(kind: str) -> None:
    prices = np.array([50_000.0, 180_000.0, 755_000.0])

    target = price_to_target(prices, kind, 12.0, 0.4)

    assert target_to_price(target, kind, 12.0, 0.4) == pytest.approx(prices)


def test_fit_price_statistics_from_train(train: pd.DataFrame, fitted: Preprocessor) -> None:
    assert fitted.price_log_mean == pytest.approx(np.log(train[PRICE_COLUMN]).mean())


def test_encode_scale_stage_ignores_val_and_test(
    tmp_path: Path,
    repo_root: Path,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    fitted: Preprocessor,
) -> None:
    """The stage's fitted state and training inputs stay the same when only val/test change."""
    (tmp_path / "params.yaml").write_text("encode_scale:\n  ordinal_quality: false\n")
    outputs = {}
    for name, val_test in (("original", holdout), ("extreme", extreme(holdout, fitted))):
        split_dir = tmp_path / name / "split"
        write_parquet(train, split_dir / "train.parquet")
        write_parquet(val_test.iloc[:3], split_dir / "val.parquet")
        write_parquet(val_test.iloc[3:], split_dir / "test.parquet")
        command = [
            sys.executable,
            str(repo_root / "stages" / "encode_scale.py"),
            str(split_dir),
            str(tmp_path / name / "encoded"),
            str(tmp_path / name / "state.json"),
            str(tmp_path / name / "metrics.json"),
        ]
        subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
        outputs[name] = tmp_path / name

    original, changed = outputs["original"], outputs["extreme"]
    assert read_json(changed / "state.json") == read_json(original / "state.json")
    pd.testing.assert_frame_equal(
        pd.read_parquet(changed / "encoded" / "train.parquet"),
        pd.read_parquet(original / "encoded" / "train.parquet"),
    )


def test_numeric_features_keep_schema_order(train: pd.DataFrame, fitted: Preprocessor) -> None:
    assert fitted.numeric_features == [c for c in NUMERIC_FEATURES if c in train.columns]


def unscaled(fitted: Preprocessor, scaled: pd.DataFrame, column: str) -> pd.Series:
    low, high = fitted.ranges[column]
    return scaled[column] * (high - low) + low


def test_fit_lists_derived_inputs(fitted: Preprocessor) -> None:
    assert fitted.derived_features == [
        "TotalSF",
        "AgeAtSale",
        "YearsSinceRemodel",
        "RemodelGap",
        "TotalBathrooms",
        "Storeys",
    ]


def test_transform_derived_inputs_values(train: pd.DataFrame, fitted: Preprocessor) -> None:
    scaled, _ = fitted.transform(train)

    floors = train["TotalBsmtSF"] + train["1stFlrSF"] + train["2ndFlrSF"]
    np.testing.assert_allclose(unscaled(fitted, scaled, "TotalSF"), floors)
    gap = train["YearRemodAdd"] - train["YearBuilt"]
    np.testing.assert_allclose(unscaled(fitted, scaled, "RemodelGap"), gap)
    counts = {"1Story": 1.0, "1.5Fin": 1.5, "2Story": 2.0, "SLvl": 2.0, "SFoyer": 2.0}
    storeys = train["HouseStyle"].map(counts)
    assert storeys.notna().all()
    np.testing.assert_allclose(unscaled(fitted, scaled, "Storeys"), storeys)


def test_storeys_cover_described_styles() -> None:
    described = {"1Story", "1.5Fin", "1.5Unf", "2Story", "2.5Fin", "2.5Unf", "SFoyer", "SLvl"}

    assert set(STOREYS) == described


@pytest.mark.parametrize("style", ["1Story", "1.5Fin", "1.5Unf", "2Story", "2.5Fin", "2.5Unf"])
def test_storeys_match_style_name(style: str) -> None:
    # "1.5Fin" is "One and one-half story": the number that starts the name.
    storeys = float(re.match(r"[0-9.]+", style).group())

    assert STOREYS[style] == storeys


@pytest.mark.parametrize("style", ["SFoyer", "SLvl"])
def test_storeys_split_styles_count_two(style: str) -> None:
    assert STOREYS[style] == 2.0


@pytest.mark.parametrize(("style", "storeys"), [("1.5Unf", 1.5), ("2.5Fin", 2.5)])
def test_transform_listed_unseen_style_storeys(
    holdout, fitted: Preprocessor, style: str, storeys: float
) -> None:
    assert style not in fitted.categories["HouseStyle"]
    frame = holdout.copy()
    frame["HouseStyle"] = style

    scaled, report = fitted.transform(frame)

    np.testing.assert_allclose(unscaled(fitted, scaled, "Storeys"), storeys)
    assert report.unseen["HouseStyle"] == {style: len(holdout)}


def test_transform_unlisted_style_storeys(holdout, fitted) -> None:
    frame = holdout.copy()
    frame["HouseStyle"] = "3Story"

    scaled, report = fitted.transform(frame)

    mode = STOREYS[fitted.modes["HouseStyle"]]
    np.testing.assert_allclose(unscaled(fitted, scaled, "Storeys"), mode)
    assert report.unseen["HouseStyle"] == {"3Story": len(holdout)}


def test_fit_unlisted_style_drops_storeys(train, caplog) -> None:
    frame = train.copy()
    frame.loc[frame.index[0], "HouseStyle"] = "3Story"

    fitted = Preprocessor.fit(frame)

    assert "Storeys" not in fitted.derived_features
    assert "TotalSF" in fitted.derived_features
    assert "3Story" in caplog.text
