"""Settings validate in their constructors and show a correct example when they refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from dedup.settings import (
    AddressComparison,
    BlockingRule,
    ComparisonLevel,
    IdNumberComparison,
    LinkSettings,
    ModelSpec,
    NameComparison,
    SexComparison,
)


def test_defaults_are_valid_and_cover_every_field() -> None:
    settings = LinkSettings()
    assert {c.field for c in settings.comparisons} == {
        "id_number", "name", "birth_date", "sex", "phone", "address", "community", "source"
    }
    assert settings.blocking_rules[0].keys == ("id_number",)
    assert settings.comparison("name").weight("homophone") > 0 > settings.comparison("name").weight("different")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: BlockingRule("Phone Rule", keys=("phone",)), "snake_case"),
        (lambda: BlockingRule("phone", keys=()), "non-empty tuple"),
        (lambda: BlockingRule("phone", keys="phone"), "non-empty tuple"),
        (lambda: BlockingRule("phone", keys=("telephone",)), "unknown key"),
        (lambda: BlockingRule("phone", keys=("phone", "phone")), "repeat"),
        (lambda: BlockingRule("phone", keys=("phone",), max_block_size=1), "max_block_size"),
        (lambda: ComparisonLevel("exact", float("nan"), test="equal"), "finite"),
        (lambda: ComparisonLevel("exact", 5.0, test="Exact Match"), "level test"),
        (
            lambda: IdNumberComparison(
                levels=(ComparisonLevel("null", 0, test="id_number.missing"), ComparisonLevel("exact", 9, test="id_number.exact"))
            ),
            "end with a level whose test is 'else'",
        ),
        (
            lambda: SexComparison(levels=(ComparisonLevel("equal", 1, test="equal"), ComparisonLevel("different", -1, test="else"))),
            "start with 'null'",
        ),
        (
            lambda: SexComparison(
                levels=(
                    ComparisonLevel("null", 0, test="missing"),
                    ComparisonLevel("different", 1, test="equal"),
                    ComparisonLevel("different", -1, test="else"),
                )
            ),
            "unique",
        ),
        (lambda: SexComparison(levels=(ComparisonLevel("null", 0, test="missing"), ComparisonLevel("other", -1, test="else"))), "'equal'"),
        (lambda: NameComparison().with_weights({"homofone": 3.0}), "did you mean 'homophone'"),
        (lambda: NameComparison().code("initials"), "no level 'initials'"),
        (lambda: NameComparison(similar_threshold=1.5), "similar_threshold"),
        (lambda: AddressComparison(partial_threshold=0), "partial_threshold"),
        (lambda: LinkSettings(blocking_rules=()), "at least one BlockingRule"),
        (lambda: LinkSettings(match_threshold=float("inf")), "finite"),
        (lambda: LinkSettings(review_margin=-1), "review_margin"),
        (lambda: LinkSettings(max_block_size=1), "max_block_size"),
        (lambda: LinkSettings(chunk_size=0), "chunk_size"),
        (lambda: LinkSettings(vetoes=("no_twins",)), "unknown veto 'no_twins'"),
        (lambda: LinkSettings(hard_rules=()), "renamed 'vetoes'"),
        (lambda: LinkSettings(match_threshold=12.0, match_probability=0.99), "not both"),
        (lambda: LinkSettings(model=ModelSpec(fixed_levels=("name.simlar",))), "did you mean 'name.similar'"),
        (lambda: LinkSettings(comparisons=(NameComparison(),)), "needs a id_number comparison"),
        (lambda: LinkSettings(comparisons=(SexComparison(), SexComparison()), vetoes=()), "one comparison per field"),
        (
            lambda: LinkSettings(
                blocking_rules=(BlockingRule("phone", keys=("phone",)), BlockingRule("phone", keys=("name",)))
            ),
            "unique",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_reason(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_refusals_show_a_correct_example() -> None:
    with pytest.raises(ConfigError) as error:
        BlockingRule("pinyin", keys=("pinyin",))
    assert 'BlockingRule("pinyin_birth_month", keys=("name_pinyin", "birth_ym"))' in str(error.value)
    # ... and the example itself is valid.
    assert BlockingRule("pinyin_birth_month", keys=("name_pinyin", "birth_ym")).name == "pinyin_birth_month"


def test_weights_are_overridden_by_label_and_nothing_else_changes() -> None:
    sex = SexComparison().with_weights({"equal": 1.0, "different": -20.0})
    assert sex.weights() == (0.0, 1.0, -20.0)
    assert sex.labels == SexComparison().labels
    assert [level.test for level in sex.levels] == [level.test for level in SexComparison().levels]


def test_a_level_code_is_its_position_in_the_declaration() -> None:
    name = NameComparison()
    assert [name.code(label) for label in name.labels] == list(range(len(name.levels)))
    assert name.labels[0] == "null" and name.levels[-1].test == "else"


def test_settings_are_immutable() -> None:
    settings = LinkSettings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.match_threshold = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.comparison("name").similar_threshold = 0.1  # type: ignore[misc]


def test_every_blocking_key_is_a_prepared_column() -> None:
    from dedup.prepare import PREPARED_COLUMNS
    from dedup.settings import BLOCKING_KEYS

    assert BLOCKING_KEYS <= set(PREPARED_COLUMNS)
