import pytest

from harness.analysis.prices import SHIPPED, parse_price, price_table, usd_for_seconds, usd_per_million
from harness.errors import ConfigError


def test_parse_price_reads_name_and_dollars_per_hour():
    price = parse_price("my_box=0.12")
    assert (price.name, price.usd_per_hour) == ("my_box", 0.12)


@pytest.mark.parametrize(("text", "says"), [
    ("my_box", "no '=' found"),
    ("My Box=0.1", "NAME must be lower-case"),
    ("my_box=cheap", "must be a number of dollars per hour"),
    ("my_box=-1", "finite number > 0"),
    ("my_box=nan", "finite number > 0"),
])
def test_parse_price_rejects_bad_input_in_one_line_naming_what_was_expected(text, says):
    with pytest.raises(ConfigError) as err:
        parse_price(text)
    message = str(err.value)
    assert says in message and repr(text) in message and "\n" not in message


def test_cost_per_million_is_price_over_hourly_throughput():
    # 1e6 items at 1000 items/s take 1000 s: a $3.60/h machine spends $1 on them
    assert usd_per_million(3.6, 1000.0) == pytest.approx(1.0)
    assert usd_per_million(3.6, 2000.0) == pytest.approx(usd_per_million(3.6, 1000.0) / 2)
    assert usd_for_seconds(3.6, 1000.0) == pytest.approx(1.0)


def test_zero_throughput_cannot_be_priced():
    with pytest.raises(ConfigError, match="throughput must be > 0"):
        usd_per_million(1.0, 0.0)


def test_shipped_prices_are_dated_and_sourced_and_a_user_price_replaces_one():
    assert all(p.date and p.source.startswith("https://") and p.usd_per_hour > 0 for p in SHIPPED)
    first = SHIPPED[0]
    table = price_table([parse_price(f"{first.name}=9.5"), parse_price("mine=1")])
    by_name = {p.name: p.usd_per_hour for p in table}
    assert by_name[first.name] == 9.5 and by_name["mine"] == 1 and len(table) == len(SHIPPED) + 1


def test_bad_price_option_is_a_usage_error_naming_the_value(pytester):
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--optbench-price", "my_box=cheap", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--optbench-price*USD_PER_HOUR must be a number of dollars per hour*'cheap'*"])
