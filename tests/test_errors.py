"""seqgen.errors: one message, worded for the command line or for a front end's own field names."""

from seqgen.errors import SeqgenError


def test_a_setting_reads_as_its_flag_or_as_the_front_ends_name():
    error = SeqgenError("{--min-count} 100 removed every token: lower {--min-count} to 62 or less.")
    assert str(error) == "--min-count 100 removed every token: lower --min-count to 62 or less."
    assert error.worded({"--min-count": "min-count"}) == "min-count 100 removed every token: lower min-count to 62 or less."
    assert error.worded({}) == str(error)
    assert error.template.startswith("{--min-count} 100")  # what a training process sends to the server


def test_braces_that_name_no_flag_stay():
    assert str(SeqgenError("config {'a': 1} and {--} and {Length}")) == "config {'a': 1} and {--} and {Length}"
    assert str(SeqgenError()) == ""
