import strawberry

from gql_app.crud import users as users_crud
from gql_app.services.auth import Credentials, Registration


@strawberry.input(description="Narrows the users listing; all given conditions must hold.")
class UserFilter:
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the email or the full name."
    )
    is_active: bool | None = strawberry.field(
        default=None, description="Only active (true) or only deactivated (false) accounts."
    )
    is_superuser: bool | None = strawberry.field(
        default=None, description="Only superusers (true) or only ordinary users (false)."
    )

    def to_domain(self) -> users_crud.UserFilter:
        return users_crud.UserFilter(
            search=self.search, is_active=self.is_active, is_superuser=self.is_superuser
        )


@strawberry.input(description="A new account's details.")
class RegisterInput:
    email: str = strawberry.field(description="Email address; unique in any letter case.")
    password: str = strawberry.field(
        description="12 to 128 characters; common or guessable passwords are refused."
    )
    full_name: str | None = strawberry.field(default=None, description="Optional display name.")

    def to_domain(self) -> Registration:
        return Registration(email=self.email, password=self.password, full_name=self.full_name)


@strawberry.input(description="Email and password to sign in with.")
class LoginInput:
    email: str = strawberry.field(description="The account's email address, in any letter case.")
    password: str = strawberry.field(description="The account's password.")

    def to_domain(self) -> Credentials:
        return Credentials(email=self.email, password=self.password)
