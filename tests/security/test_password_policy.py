import pytest

from gql_app.error_reasons import FieldErrorCode
from gql_app.security.password_policy import (
    GUESSABLE,
    MAX_LENGTH,
    MIN_LENGTH,
    SIMILAR_TO_ACCOUNT,
    PasswordProblem,
    password_problem,
)

TOO_SHORT = PasswordProblem(
    FieldErrorCode.TOO_SHORT, f"Password must be at least {MIN_LENGTH} characters long"
)
TOO_LONG = PasswordProblem(
    FieldErrorCode.TOO_LONG, f"Password must be at most {MAX_LENGTH} characters long"
)
SAME_AS_EMAIL = PasswordProblem(
    FieldErrorCode.TOO_SIMILAR_TO_ACCOUNT, "Password must not be the same as the email address"
)

EMAIL = "zygmunt.kowalczyk@example.com"
# Strong on its own; weak once the account's email or name are known.
STRONG_UNLESS_PERSONAL = "zygmunt.kowalczyk!"
LONG_PASSPHRASE = ("zebra-kettle-orbit-93-" * 6)[:MAX_LENGTH]


@pytest.mark.parametrize(
    ("password", "email", "full_name", "reason"),
    [
        pytest.param("", EMAIL, None, TOO_SHORT, id="empty"),
        pytest.param("vR7#kq9!Lm2", EMAIL, None, TOO_SHORT, id="one-below-minimum"),
        pytest.param(LONG_PASSPHRASE + "x", EMAIL, None, TOO_LONG, id="one-above-maximum"),
        pytest.param(EMAIL, EMAIL, None, SAME_AS_EMAIL, id="the-email"),
        pytest.param(EMAIL.upper(), EMAIL, None, SAME_AS_EMAIL, id="the-email-uppercased"),
        pytest.param(f"  {EMAIL}  ", EMAIL, None, SAME_AS_EMAIL, id="the-email-padded"),
    ],
)
def test_rejected_passwords_come_with_the_reason(
    password: str, email: str, full_name: str | None, reason: PasswordProblem
) -> None:
    assert password_problem(password, email=email, full_name=full_name) == reason


@pytest.mark.parametrize(
    ("password", "email", "full_name", "code", "summary_and_advice"),
    [
        pytest.param(
            "password1234",
            EMAIL,
            None,
            FieldErrorCode.TOO_COMMON,
            (GUESSABLE, "This is a very common password."),
            id="common-word-and-digits",
        ),
        pytest.param(
            "Password123!",
            EMAIL,
            None,
            FieldErrorCode.TOO_COMMON,
            (GUESSABLE, "Capitalization doesn't help very much."),
            id="common-with-symbols",
        ),
        pytest.param(
            "123456789012",
            EMAIL,
            None,
            FieldErrorCode.TOO_COMMON,
            (GUESSABLE, "Add another word or two."),
            id="digit-run",
        ),
        pytest.param(
            "aaaaaaaaaaaa",
            EMAIL,
            None,
            FieldErrorCode.TOO_COMMON,
            (GUESSABLE, 'Repeats like "aaa" are easy to guess.'),
            id="repeated-character",
        ),
        pytest.param(
            "qwertyuiopasdf",
            EMAIL,
            None,
            FieldErrorCode.TOO_COMMON,
            (GUESSABLE, "Add another word or two."),
            id="keyboard-walk",
        ),
        pytest.param(
            "abcdefghijkl",
            EMAIL,
            None,
            FieldErrorCode.TOO_COMMON,
            (GUESSABLE, "Add another word or two."),
            id="alphabet-run",
        ),
        pytest.param(
            STRONG_UNLESS_PERSONAL,
            EMAIL,
            None,
            FieldErrorCode.TOO_SIMILAR_TO_ACCOUNT,
            (SIMILAR_TO_ACCOUNT, "Add another word or two."),
            id="built-from-the-email",
        ),
        pytest.param(
            "bartholomewquizzlewick",
            "bq@example.com",
            "Bartholomew Quizzlewick",
            FieldErrorCode.TOO_SIMILAR_TO_ACCOUNT,
            (SIMILAR_TO_ACCOUNT, "Add another word or two."),
            id="built-from-the-full-name",
        ),
    ],
)
def test_guessable_passwords_say_which_rule_and_how_to_do_better(
    password: str,
    email: str,
    full_name: str | None,
    code: FieldErrorCode,
    summary_and_advice: tuple[str, str],
) -> None:
    summary, advice = summary_and_advice
    problem = password_problem(password, email=email, full_name=full_name)

    assert problem is not None
    assert problem.code is code
    # The rule first, then the strength checker's own feedback, which a form can show.
    assert problem.message.startswith(f"{summary}. ")
    assert advice in problem.message


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("vR7#kq9!Lm2$", id="random-at-minimum-length"),
        pytest.param("correct horse battery staple", id="passphrase"),
        pytest.param("purple monkey dishwasher", id="another-passphrase"),
        pytest.param(LONG_PASSPHRASE, id="at-maximum-length"),
        pytest.param("pässwörd-ünïcødé-🔑-2030", id="non-ascii"),
    ],
)
def test_accepted_passwords(password: str) -> None:
    assert password_problem(password, email=EMAIL, full_name="Someone Else") is None


def test_personal_information_only_counts_for_its_own_account() -> None:
    assert password_problem(STRONG_UNLESS_PERSONAL, email="other@example.com") is None
    assert password_problem("bartholomewquizzlewick", email="bq@example.com") is None


def test_length_is_counted_in_characters_not_bytes() -> None:
    eleven_wide_characters = "ä" * (MIN_LENGTH - 1)  # 22 bytes in UTF-8

    assert password_problem(eleven_wide_characters, email=EMAIL) == TOO_SHORT
