"""schema.graphql is the published contract: it must match the code, field for field."""

from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_introspection_type,
    is_specified_scalar_type,
)
from strawberry.printer import print_schema

from gql_app.api.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"
REGENERATE = (
    "schema.graphql is out of date with the code: run `make schema` "
    "(gql-app export-schema) "
    "and commit the result"
)

USER = {
    "id": "ID!",
    "email": "String!",
    "fullName": "String",
    "isActive": "Boolean!",
    "isSuperuser": "Boolean!",
    "isVerified": "Boolean!",
    "createdAt": "DateTime!",
    "updatedAt": "DateTime!",
    "mfaEnabled": "Boolean!",
}
OBJECT_TYPES: dict[str, dict[str, str]] = {
    "User": USER,
    "AuthPayload": {
        "accessToken": "String!",
        "refreshToken": "String",
        "tokenType": "String!",
        "expiresIn": "Int!",
        "user": "User!",
    },
    "PageInfo": {
        "hasNextPage": "Boolean!",
        "hasPreviousPage": "Boolean!",
        "startCursor": "String",
        "endCursor": "String",
    },
    "UserEdge": {"cursor": "String!", "node": "User!"},
    "UserConnection": {"edges": "[UserEdge!]!", "pageInfo": "PageInfo!", "totalCount": "Int!"},
    "Session": {
        "id": "ID!",
        "createdAt": "DateTime!",
        "lastUsedAt": "DateTime",
        "expiresAt": "DateTime!",
        "userAgent": "String",
        "ipAddress": "String",
        "current": "Boolean!",
        "authMethods": "[String!]!",
        "authenticatedAt": "DateTime!",
    },
    "TotpEnrollment": {"secret": "String!", "otpauthUri": "String!", "qrCodeSvg": "String!"},
    "MfaStatus": {
        "enabled": "Boolean!",
        "methods": "[MfaMethod!]!",
        "recoveryCodesRemaining": "Int!",
    },
    "Passkey": {
        "id": "ID!",
        "name": "String!",
        "createdAt": "DateTime!",
        "lastUsedAt": "DateTime",
        "backedUp": "Boolean!",
        "transports": "[String!]!",
    },
    "PasskeyOptions": {"challengeId": "String!", "options": "JSON!"},
    "Query": {
        "me": "User!",
        "mySessions": "[Session!]!",
        "users": "UserConnection!",
        "user": "User!",
        "myMfa": "MfaStatus!",
        "myPasskeys": "[Passkey!]!",
        "mySecurityEvents": "SecurityEventConnection!",
        "securityEvents": "SecurityEventConnection!",
    },
    "SecurityEvent": {
        "id": "ID!",
        "type": "SecurityEventType!",
        "occurredAt": "DateTime!",
        "ipAddress": "String",
        "userAgent": "String",
        "sessionId": "ID",
        "user": "User",
        "details": "JSON",
        "addressHash": "String",
    },
    "SecurityEventEdge": {"cursor": "String!", "node": "SecurityEvent!"},
    "SecurityEventConnection": {"edges": "[SecurityEventEdge!]!", "pageInfo": "PageInfo!"},
    "Mutation": {
        "register": "User!",
        "login": "AuthPayload!",
        "refreshToken": "AuthPayload!",
        "logout": "Boolean!",
        "logoutAll": "Boolean!",
        "revokeSession": "Boolean!",
        "updateMe": "User!",
        "changePassword": "Boolean!",
        "requestPasswordReset": "Boolean!",
        "resetPassword": "Boolean!",
        "requestEmailVerification": "Boolean!",
        "verifyEmail": "User!",
        "createUser": "User!",
        "updateUser": "User!",
        "deleteUser": "Boolean!",
        "startTotpEnrollment": "TotpEnrollment!",
        "confirmTotpEnrollment": "[String!]!",
        "disableTotp": "Boolean!",
        "regenerateRecoveryCodes": "[String!]!",
        "completeLogin": "AuthPayload!",
        "reauthenticate": "Boolean!",
        "resetUserMfa": "User!",
        "startPasskeyRegistration": "PasskeyOptions!",
        "finishPasskeyRegistration": "Passkey!",
        "renamePasskey": "Passkey!",
        "deletePasskey": "Boolean!",
        "startPasskeySignIn": "PasskeyOptions!",
        "finishPasskeySignIn": "AuthPayload!",
        "deleteMe": "Boolean!",
        "exportMyData": "JSON!",
    },
}
INPUT_TYPES: dict[str, dict[str, str]] = {
    "MfaFactorInput": {
        "totpCode": "String",
        "recoveryCode": "String",
        "passkey": "FinishPasskeySignInInput",
    },
    "FinishPasskeyRegistrationInput": {
        "challengeId": "String!",
        "credential": "JSON!",
        "name": "String",
    },
    "FinishPasskeySignInInput": {"challengeId": "String!", "credential": "JSON!"},
    "SecurityEventFilter": {
        "userId": "ID",
        "types": "[SecurityEventType!]",
        "since": "DateTime",
        "until": "DateTime",
        "address": "String",
    },
    "CompleteLoginInput": {"challenge": "String!", "factor": "MfaFactorInput!"},
    "ReauthenticateInput": {"password": "String", "factor": "MfaFactorInput"},
    "UserFilter": {"search": "String", "isActive": "Boolean", "isSuperuser": "Boolean"},
    "RegisterInput": {"email": "String!", "password": "String!", "fullName": "String"},
    "LoginInput": {"email": "String!", "password": "String!"},
    "UpdateMeInput": {"fullName": "String", "email": "String"},
    "ChangePasswordInput": {"currentPassword": "String!", "newPassword": "String!"},
    "ResetPasswordInput": {"token": "String!", "newPassword": "String!"},
    "CreateUserInput": {
        "email": "String!",
        "password": "String!",
        "fullName": "String",
        "isActive": "Boolean",
        "isSuperuser": "Boolean",
        "isVerified": "Boolean",
    },
    "UpdateUserInput": {
        "email": "String",
        "fullName": "String",
        "password": "String",
        "isActive": "Boolean",
        "isSuperuser": "Boolean",
        "isVerified": "Boolean",
    },
}
# (type, default) of each argument; Undefined means no default.
ARGUMENTS: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {
    ("Query", "me"): {},
    ("Query", "users"): {
        "first": ("Int", 20),
        "after": ("String", None),
        "filter": ("UserFilter", None),
    },
    ("Query", "user"): {"id": ("ID!", Undefined)},
    ("Mutation", "register"): {"input": ("RegisterInput!", Undefined)},
    ("Mutation", "login"): {"input": ("LoginInput!", Undefined)},
    ("Query", "mySessions"): {},
    ("Mutation", "refreshToken"): {"refreshToken": ("String", None)},
    ("Mutation", "logout"): {"refreshToken": ("String", None)},
    ("Mutation", "logoutAll"): {},
    ("Mutation", "revokeSession"): {"id": ("ID!", Undefined)},
    ("Mutation", "updateMe"): {"input": ("UpdateMeInput!", Undefined)},
    ("Mutation", "changePassword"): {"input": ("ChangePasswordInput!", Undefined)},
    ("Mutation", "requestPasswordReset"): {"email": ("String!", Undefined)},
    ("Mutation", "resetPassword"): {"input": ("ResetPasswordInput!", Undefined)},
    ("Mutation", "requestEmailVerification"): {},
    ("Mutation", "verifyEmail"): {"token": ("String!", Undefined)},
    ("Mutation", "createUser"): {"input": ("CreateUserInput!", Undefined)},
    ("Query", "myMfa"): {},
    ("Mutation", "startTotpEnrollment"): {},
    ("Mutation", "confirmTotpEnrollment"): {"code": ("String!", Undefined)},
    ("Mutation", "disableTotp"): {},
    ("Mutation", "regenerateRecoveryCodes"): {},
    ("Mutation", "completeLogin"): {"input": ("CompleteLoginInput!", Undefined)},
    ("Mutation", "reauthenticate"): {"input": ("ReauthenticateInput!", Undefined)},
    ("Mutation", "resetUserMfa"): {"id": ("ID!", Undefined)},
    ("Query", "myPasskeys"): {},
    ("Query", "mySecurityEvents"): {"first": ("Int", 20), "after": ("String", None)},
    ("Query", "securityEvents"): {
        "first": ("Int", 20),
        "after": ("String", None),
        "filter": ("SecurityEventFilter", None),
    },
    ("Mutation", "startPasskeyRegistration"): {},
    ("Mutation", "finishPasskeyRegistration"): {
        "input": ("FinishPasskeyRegistrationInput!", Undefined)
    },
    ("Mutation", "renamePasskey"): {"id": ("ID!", Undefined), "name": ("String!", Undefined)},
    ("Mutation", "deletePasskey"): {"id": ("ID!", Undefined)},
    ("Mutation", "startPasskeySignIn"): {},
    ("Mutation", "deleteMe"): {"password": ("String!", Undefined)},
    ("Mutation", "exportMyData"): {},
    ("Mutation", "finishPasskeySignIn"): {"input": ("FinishPasskeySignInInput!", Undefined)},
    ("Mutation", "updateUser"): {
        "id": ("ID!", Undefined),
        "input": ("UpdateUserInput!", Undefined),
    },
    ("Mutation", "deleteUser"): {"id": ("ID!", Undefined)},
}


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return schema._schema


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.exists(), REGENERATE
    published = SCHEMA_FILE.read_text(encoding="utf-8")

    assert published.strip() == print_schema(schema).strip(), REGENERATE


@pytest.mark.parametrize("type_name", sorted(OBJECT_TYPES))
def test_object_type_fields_and_nullability(graphql_schema: GraphQLSchema, type_name: str) -> None:
    graphql_type = graphql_schema.get_type(type_name)

    assert isinstance(graphql_type, GraphQLObjectType), type_name
    fields = {name: str(field.type) for name, field in graphql_type.fields.items()}
    assert fields == OBJECT_TYPES[type_name]


@pytest.mark.parametrize("type_name", sorted(INPUT_TYPES))
def test_input_type_fields_and_nullability(graphql_schema: GraphQLSchema, type_name: str) -> None:
    graphql_type = graphql_schema.get_type(type_name)

    assert isinstance(graphql_type, GraphQLInputObjectType), type_name
    fields = {name: str(field.type) for name, field in graphql_type.fields.items()}
    assert fields == INPUT_TYPES[type_name]
    for name, field in graphql_type.fields.items():
        if str(field.type).endswith("!"):
            assert field.default_value is Undefined, f"{type_name}.{name} is required"


def test_create_user_input_flags_default_to_an_ordinary_active_unverified_account(
    graphql_schema: GraphQLSchema,
) -> None:
    graphql_type = graphql_schema.get_type("CreateUserInput")
    assert isinstance(graphql_type, GraphQLInputObjectType)

    defaults = {
        name: graphql_type.fields[name].default_value
        for name in ("isActive", "isSuperuser", "isVerified")
    }

    assert defaults == {"isActive": True, "isSuperuser": False, "isVerified": False}


@pytest.mark.parametrize(("type_name", "field_name"), sorted(ARGUMENTS))
def test_operation_arguments(
    graphql_schema: GraphQLSchema, type_name: str, field_name: str
) -> None:
    root = graphql_schema.get_type(type_name)
    assert isinstance(root, GraphQLObjectType)

    arguments = {
        name: (str(argument.type), argument.default_value)
        for name, argument in root.fields[field_name].args.items()
    }

    assert arguments == ARGUMENTS[type_name, field_name]


def test_root_operation_types(graphql_schema: GraphQLSchema) -> None:
    assert graphql_schema.query_type is not None
    assert graphql_schema.query_type.name == "Query"
    assert graphql_schema.mutation_type is not None
    assert graphql_schema.mutation_type.name == "Mutation"
    assert graphql_schema.subscription_type is None


def _project_types(graphql_schema: GraphQLSchema) -> list[GraphQLNamedType]:
    return [
        graphql_type
        for graphql_type in graphql_schema.type_map.values()
        if not is_introspection_type(graphql_type) and not is_specified_scalar_type(graphql_type)
    ]


def _undocumented(graphql_schema: GraphQLSchema) -> list[str]:
    missing: list[str] = []
    for graphql_type in _project_types(graphql_schema):
        if not (graphql_type.description or "").strip():
            missing.append(graphql_type.name)
        if not isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType):
            continue
        fields: dict[str, GraphQLField | GraphQLInputField] = dict(graphql_type.fields)
        for field_name, field in fields.items():
            if not (field.description or "").strip():
                missing.append(f"{graphql_type.name}.{field_name}")
            arguments: dict[str, GraphQLArgument] = getattr(field, "args", {})
            for argument_name, argument in arguments.items():
                if not (argument.description or "").strip():
                    missing.append(f"{graphql_type.name}.{field_name}({argument_name})")
    return missing


def test_every_type_field_and_argument_is_described(graphql_schema: GraphQLSchema) -> None:
    assert {t.name for t in _project_types(graphql_schema)} >= set(OBJECT_TYPES) | set(INPUT_TYPES)

    assert _undocumented(graphql_schema) == []
