"""``linking.yaml``: the demo file holds the defaults, a file says what Python would, a bad file names the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.errors import ConfigError
from dedup import load_link_settings
from dedup.settings import (
    BirthDateComparison,
    BlockingRule,
    IdNumberComparison,
    LinkSettings,
    ModelSpec,
    NameComparison,
    SexComparison,
)

DEMO_LINKING = Path(__file__).resolve().parents[2] / "demo" / "linking.yaml"


def load(tmp_path: Path, text: str) -> LinkSettings:
    path = tmp_path / "linking.yaml"
    path.write_text(text, encoding="utf-8")
    return load_link_settings(path)


def test_the_demo_file_holds_exactly_the_defaults() -> None:
    assert load_link_settings(DEMO_LINKING) == LinkSettings()


def test_every_key_left_out_takes_its_default(tmp_path: Path) -> None:
    assert load(tmp_path, "version: 1\n") == LinkSettings()
    assert load(tmp_path, "model: {estimate: false}\n") == LinkSettings(model=ModelSpec(estimate=False))


def test_a_file_says_what_the_python_constructor_says(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """
version: 1
match_probability: 0.99
review_margin: 2.5
blocking_rules:
  - {name: id_number, keys: [id_number]}
  - {name: pinyin_birth_month, keys: [name_pinyin, birth_ym], max_block_size: 200}
comparisons:
  id_number:
  name: {similar_threshold: 0.7, weights: {similar: -2.0, 'null': 0.0}}
  birth_date: {}
  sex: {weights: {different: -12.0}}
vetoes: [distinct_valid_ids, different_sex]
model: {u_source: candidates, fixed_levels: [name.similar]}
""",
    )
    built = LinkSettings(
        match_probability=0.99,
        review_margin=2.5,
        blocking_rules=(
            BlockingRule("id_number", keys=("id_number",)),
            BlockingRule("pinyin_birth_month", keys=("name_pinyin", "birth_ym"), max_block_size=200),
        ),
        comparisons=(
            IdNumberComparison(),
            NameComparison(similar_threshold=0.7).with_weights({"similar": -2.0}),
            BirthDateComparison(),
            SexComparison().with_weights({"different": -12.0}),
        ),
        vetoes=("distinct_valid_ids", "different_sex"),
        model=ModelSpec(u_source="candidates", fixed_levels=("name.similar",)),
    )
    assert loaded == built
    assert loaded.match_threshold == pytest.approx(math.log2(99))
    # The fields listed are compared, in the order listed; the others are not.
    assert [c.field for c in loaded.comparisons] == ["id_number", "name", "birth_date", "sex"]
    assert loaded.comparison("name").weight("similar") == -2.0
    assert loaded.comparison("name").weight("exact") == NameComparison().weight("exact")


BAD_FILES = [
    # (file text, what the message must say, why)
    ("match_treshold: 12\n", "unknown setting 'match_treshold' (did you mean 'match_threshold'?)", "a misspelt key"),
    ("hard_rules: []\n", "unknown setting 'hard_rules' (renamed 'vetoes')", "the old name of vetoes"),
    ("version: 2\n", "version", "a format this code does not read"),
    ("match_probability: 1.5\n",
     "match_probability must be a probability strictly between 0 and 1, got 1.5; e.g. match_probability: 0.999",
     "a probability out of range"),
    ("match_probability: 0.999\nmatch_threshold: 10\n", "match_threshold (bits) or match_probability, not both",
     "two thresholds"),
    ("review_margin: -1\n", "review_margin: must be a number of bits >= 0, got -1; e.g. review_margin: 4.0",
     "a negative margin"),
    ("comparisons: {name: {weights: {homofone: 3.0}}}\n",
     "NameComparison has no level 'homofone' (did you mean 'homophone'?); its levels are null, exact, homophone",
     "an unknown level label in weights"),
    ("comparisons: {name: {weights: {exact: high}}}\n", "name.weights.exact: must be a finite number of bits, got 'high'",
     "a weight that is not a number"),
    ("comparisons: {sex: {weights: {null: 1.0}}}\n", "write the null level's label in quotes ('null': 0.0)",
     "YAML reads a bare null key as nothing"),
    ("comparisons: {nmae: {}}\n", "unknown comparison 'nmae' (did you mean 'name'?)", "an unknown field"),
    ("comparisons: {name: {similar: 0.5}}\n",
     "name: unknown key 'similar'; name takes similar_threshold, pinyin_threshold, word_threshold, weights",
     "a threshold misnamed"),
    ("comparisons: {name: {similar_threshold: 1.5}}\n", "similar_threshold must be a similarity in (0, 1], got 1.5",
     "a similarity out of range"),
    ("comparisons: {name: {}, birth_date: {}}\n", "veto 'distinct_valid_ids' needs a id_number comparison",
     "a veto without the comparison it reads"),
    ("blocking_rules: [{name: phone, keys: [telephone]}]\n", "rule 1: blocking rule 'phone': unknown key(s) ['telephone']",
     "a blocking key that is no prepared column"),
    ("blocking_rules: [{name: phone, key: [phone]}]\n", "rule 1: unknown key 'key'", "a misspelt rule key"),
    ("vetoes: [no_twins]\n", "unknown veto 'no_twins'; choose from distinct_valid_ids", "an unknown veto"),
    ("vetoes: [distinct_valid_ids, same_source_mismatch]\n",
     "the veto 'same_source_mismatch' was removed: it assumed a department copies its own spelling",
     "a veto an older file still lists, told what replaced it"),
    ("model: {u_source: labels}\n", "model.u_source: must be one of random, candidates, got 'labels'; e.g. u_source: random",
     "a bad model setting, named by its key path"),
    ("model: {fixed_levels: [name.simlar]}\n", "'name.simlar' is no declared level (did you mean 'name.similar'?)",
     "a fixed level that is not declared"),
    ("chunk_size: 1e6\n", "chunk_size: must be a positive integer, got '1e6'; e.g. chunk_size: 1000000",
     "YAML reads 1e6 as text"),
    ("engine: spark\nspark: {stage_rows: 0}\n", "spark.stage_rows: must be a positive integer, got 0; e.g. stage_rows: 50000",
     "no rows to a staging task"),
    ("engine: spark\nspark: {master: 'lokal[2]'}\n", "spark.master: must be a Spark master URL: local[N], spark://host:port",
     "a misspelt master"),
    ("engine: spark\nspark: {driver_memory: 1k}\n", "spark.driver_memory: must be an amount of memory as Spark writes it, "
     "at least 512m", "a JVM that cannot start"),
]


@pytest.mark.parametrize(("text", "message", "why"), BAD_FILES, ids=[case[2] for case in BAD_FILES])
def test_a_bad_file_fails_at_load_naming_the_file_and_the_key(tmp_path: Path, text: str, message: str, why: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert str(error.value).startswith(f"{tmp_path / 'linking.yaml'}: invalid linking settings"), why
    assert message in str(error.value), why


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml: linking settings (file )?not found"):
        load_link_settings(tmp_path / "absent.yaml")
