import strawberry

from gql_app.crud import users as users_crud
from gql_app.services.accounts import PasswordChange, PasswordReset, ProfileChanges
from gql_app.services.admin import AccountChanges, NewAccount
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


@strawberry.input(
    description="Changes to your own profile; omitted or null fields stay as they are."
)
class UpdateMeInput:
    full_name: str | None = strawberry.field(
        default=None, description="New display name; an empty string clears it."
    )
    email: str | None = strawberry.field(
        default=None,
        description="New email address; it becomes unverified and a confirmation link is sent.",
    )

    def to_domain(self) -> ProfileChanges:
        return ProfileChanges(full_name=self.full_name, email=self.email)


@strawberry.input(description="Your current password and the new one.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password in use now.")
    new_password: str = strawberry.field(
        description="12 to 128 characters; common or guessable passwords are refused."
    )

    def to_domain(self) -> PasswordChange:
        return PasswordChange(
            current_password=self.current_password, new_password=self.new_password
        )


@strawberry.input(description="The token from a password reset email and the new password.")
class ResetPasswordInput:
    token: str = strawberry.field(description="The token from the emailed link.")
    new_password: str = strawberry.field(
        description="12 to 128 characters; common or guessable passwords are refused."
    )

    def to_domain(self) -> PasswordReset:
        return PasswordReset(token=self.token, new_password=self.new_password)


@strawberry.input(description="An account created by a superuser.")
class CreateUserInput:
    email: str = strawberry.field(description="Email address; unique in any letter case.")
    password: str = strawberry.field(
        description="12 to 128 characters; common or guessable passwords are refused."
    )
    full_name: str | None = strawberry.field(default=None, description="Optional display name.")
    is_active: bool | None = strawberry.field(default=True, description="May sign in.")
    is_superuser: bool | None = strawberry.field(
        default=False, description="Administers other accounts."
    )
    is_verified: bool | None = strawberry.field(
        default=False, description="Email address counts as confirmed."
    )

    def to_domain(self) -> NewAccount:
        return NewAccount(
            email=self.email,
            password=self.password,
            full_name=self.full_name,
            is_active=self.is_active is not False,
            is_superuser=self.is_superuser is True,
            is_verified=self.is_verified is True,
        )


@strawberry.input(description="Changes to an account; omitted or null fields stay as they are.")
class UpdateUserInput:
    email: str | None = strawberry.field(
        default=None, description="New email address; it becomes unverified unless isVerified."
    )
    full_name: str | None = strawberry.field(
        default=None, description="New display name; an empty string clears it."
    )
    password: str | None = strawberry.field(
        default=None, description="New password; ends all of the user's sessions."
    )
    is_active: bool | None = strawberry.field(
        default=None, description="false deactivates the account and ends its sessions."
    )
    is_superuser: bool | None = strawberry.field(default=None, description="Grant or remove.")
    is_verified: bool | None = strawberry.field(
        default=None, description="Mark the email address confirmed or not."
    )

    def to_domain(self) -> AccountChanges:
        return AccountChanges(
            email=self.email,
            full_name=self.full_name,
            password=self.password,
            is_active=self.is_active,
            is_superuser=self.is_superuser,
            is_verified=self.is_verified,
        )
