"""Security notices through the API: a change's notice is mailed after it commits, and one
that failed to commit mails nothing (the jobs themselves: tests/services/)."""

from email.message import EmailMessage

from gql_app.models import User
from tests.factories import USER_PASSWORD
from tests.graphql import GraphQLClient, login_tokens
from tests.operations import CHANGE_PASSWORD

NEW_PASSWORD = "violet tangerine submarine 42"


async def test_a_password_change_is_told_to_the_owner(
    gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
) -> None:
    token = (await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)).access

    response = await gql(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": USER_PASSWORD, "newPassword": NEW_PASSWORD}},
        token=token,
    )

    assert response.errors == [], response.body
    [notice] = outbox
    assert (notice["To"], notice["Subject"]) == (test_user.email, "Your password was changed")


async def test_a_refused_change_is_told_nothing(
    gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
) -> None:
    token = (await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)).access

    response = await gql(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": "not the password", "newPassword": NEW_PASSWORD}},
        token=token,
    )

    assert response.single_error("BAD_USER_INPUT")
    assert outbox == []
